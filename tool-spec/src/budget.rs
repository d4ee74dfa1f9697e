//! Instruction budgets. Both back ends call [`Budget::tick`] once at the start of every loop
//! iteration (`for_each`, `map`); everything between two ticks is bounded by the size of the
//! body, so the budget bounds the whole call. In the agent the budget counts instructions
//! (`ic0.performance_counter`); elsewhere [`Steps`] counts iterations.

use crate::error::Fault;

/// A call's budget.
pub trait Budget {
    /// One more loop iteration: `Err` once the budget is used up.
    fn tick(&mut self) -> Result<(), Fault>;
}

/// A budget of loop iterations.
#[derive(Debug, Clone)]
pub struct Steps {
    left: u64,
    budget: u64,
}

impl Steps {
    /// At most `budget` iterations.
    pub fn new(budget: u64) -> Self {
        Self {
            left: budget,
            budget,
        }
    }
}

impl Budget for Steps {
    fn tick(&mut self) -> Result<(), Fault> {
        if self.left == 0 {
            return Err(Fault::InstructionBudget {
                budget: self.budget,
            });
        }
        self.left -= 1;
        Ok(())
    }
}

impl<T: Budget + ?Sized> Budget for Box<T> {
    fn tick(&mut self) -> Result<(), Fault> {
        (**self).tick()
    }
}
