//! What a synthesized tool runs against in the agent: its namespace of the agent's facts and
//! an instruction budget, and the two ways to run it (compiled through the dispatch hook, or
//! interpreted).

use super::abi;
use crate::facts;
use std::collections::BTreeMap;
use tool_spec::budget::Budget;
use tool_spec::facts::{FactStore, MapStore, Overlay};
use tool_spec::host::Host;
use tool_spec::{Failure, Fault, ToolSpec, Val};

/// A tool's facts: the agent's facts in namespace `tool:NAME`, or an example's map.
pub enum AgentFacts {
    /// The live namespace.
    Live(String),
    /// An example's facts.
    Map(MapStore),
}

impl FactStore for AgentFacts {
    fn get(&self, key: &str) -> Option<String> {
        match self {
            AgentFacts::Live(ns) => facts::recall(ns, key).ok().flatten(),
            AgentFacts::Map(m) => m.get(key),
        }
    }

    fn keys(&self, prefix: &str, limit: usize) -> Vec<String> {
        match self {
            AgentFacts::Live(ns) => facts::keys(ns, prefix, limit),
            AgentFacts::Map(m) => m.keys(prefix, limit),
        }
    }

    fn held_bytes(&self) -> u64 {
        match self {
            AgentFacts::Live(ns) => facts::namespace_bytes(ns),
            AgentFacts::Map(m) => m.held_bytes(),
        }
    }
}

/// The instructions this message has executed so far.
pub fn instructions() -> u64 {
    ic_cdk::api::performance_counter(0)
}

/// A call's instruction budget, counted from its start. The counter is read every
/// [`TICKS_PER_CHECK`] loop iterations, so a call may overrun its budget by that many
/// iterations (each bounded by the body's size).
pub struct AgentBudget {
    start: u64,
    budget: u64,
    ticks: u32,
}

/// Loop iterations between two reads of the instruction counter.
pub const TICKS_PER_CHECK: u32 = 16;

impl AgentBudget {
    /// `budget` instructions from now.
    pub fn new(budget: u64) -> Self {
        Self {
            start: instructions(),
            budget,
            ticks: 0,
        }
    }
}

impl Budget for AgentBudget {
    fn tick(&mut self) -> Result<(), Fault> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks % TICKS_PER_CHECK != 0 {
            return Ok(());
        }
        if instructions().saturating_sub(self.start) > self.budget {
            return Err(Fault::InstructionBudget {
                budget: self.budget,
            });
        }
        Ok(())
    }
}

/// The outcome of one run: the result (as JSON) or the failure, and the writes to apply on
/// success.
pub type Run = (
    Result<serde_json::Value, Failure>,
    BTreeMap<String, Option<String>>,
);

/// Runs tool number `index` (`spec`) compiled, through the dispatch hook.
pub fn compiled(index: usize, spec: &ToolSpec, args: &[Val], facts: AgentFacts) -> Run {
    let host = Host::new(
        args.to_vec(),
        Overlay::new(facts, spec.quota.fact_bytes),
        AgentBudget::new(spec.quota.instructions),
    );
    let (host, returned) = abi::with_call(host, index as u32);
    let finished = host.finish(returned);
    let result = match finished.result {
        // The hook did not know the tool: the module's code and registry disagree.
        Ok(_) if returned == tool_spec::abi::NO_SUCH_TOOL => Err(Failure {
            fault: Fault::AbiMisuse(format!("the dispatch hook has no tool {index}")),
            node: None,
        }),
        other => other.map(Val::into_value),
    };
    (result, finished.writes)
}

/// Runs `spec` in the interpreter.
pub fn interpreted(spec: &ToolSpec, args: &[Val], facts: AgentFacts) -> Run {
    let mut overlay = Overlay::new(facts, spec.quota.fact_bytes);
    let mut budget = AgentBudget::new(spec.quota.instructions);
    let result = tool_spec::interp::run(spec, args, &mut overlay, &mut budget).map(Val::into_value);
    (result, overlay.into_writes())
}
