//! Fault injection for the chaos suite: what may go wrong on the way between canisters.
//!
//! Every fault is one the IC itself can produce: best-effort responses can be dropped (SYS_UNKNOWN),
//! destination queues can be full (SYS_TRANSIENT), responses can be slow, a canister can trap.
//! Guaranteed-response calls are never dropped on the IC, so "dropping" one holds it instead.

use candid::Principal;

/// One injected fault. Faults stay in force until [`crate::Sim::clear_faults`], except
/// `TrapNextMessage`, which fires once.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The next message (update, callback, timer) executed by `canister` traps before running.
    TrapNextMessage {
        /// The victim.
        canister: Principal,
    },
    /// Inter-canister requests to `canister` are rejected with SYS_TRANSIENT (IC0201, queue full),
    /// as the IC does when the destination's input queue is full.
    FailCallsTo {
        /// The unreachable canister.
        canister: Principal,
    },
    /// Responses sent by `from` are held until [`crate::Sim::release_held_responses`]; a
    /// best-effort caller still sees its deadline expire.
    HoldResponses {
        /// The canister whose responses are held.
        from: Principal,
    },
    /// Responses sent by `from` are dropped with the given probability (0.0..=1.0, drawn from
    /// the seeded generator). A best-effort caller then receives SYS_UNKNOWN (IC0602); a
    /// guaranteed-response one has its response held, because the IC never drops those.
    DropResponses {
        /// The canister whose responses are dropped.
        from: Principal,
        /// Probability of dropping each response.
        probability: f64,
    },
}

/// The faults in force.
#[derive(Clone, Debug, Default)]
pub(crate) struct Faults {
    pub(crate) active: Vec<Fault>,
}

impl Faults {
    /// Consumes a pending `TrapNextMessage` for `canister`, if any.
    pub(crate) fn take_trap_next(&mut self, canister: Principal) -> bool {
        let pos = self
            .active
            .iter()
            .position(|f| matches!(f, Fault::TrapNextMessage { canister: c } if *c == canister));
        pos.map(|p| self.active.remove(p)).is_some()
    }

    pub(crate) fn calls_fail_to(&self, canister: Principal) -> bool {
        self.active
            .iter()
            .any(|f| matches!(f, Fault::FailCallsTo { canister: c } if *c == canister))
    }

    pub(crate) fn holds_responses_from(&self, canister: Principal) -> bool {
        self.active
            .iter()
            .any(|f| matches!(f, Fault::HoldResponses { from } if *from == canister))
    }

    pub(crate) fn drop_probability(&self, canister: Principal) -> f64 {
        self.active
            .iter()
            .filter_map(|f| match f {
                Fault::DropResponses { from, probability } if *from == canister => {
                    Some(*probability)
                }
                _ => None,
            })
            .fold(0.0, f64::max)
    }
}
