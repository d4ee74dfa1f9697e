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

/// How often each kind of fault struck since the simulator was created: the proof a chaos
/// scenario's injection took effect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultsFired {
    /// Messages trapped by `TrapNextMessage`.
    pub trapped: u64,
    /// Calls rejected by `FailCallsTo`.
    pub calls_failed: u64,
    /// Responses held (by `HoldResponses`, or a guaranteed response `DropResponses` chose).
    pub responses_held: u64,
    /// Best-effort responses dropped by `DropResponses`.
    pub responses_dropped: u64,
}

/// The faults in force.
#[derive(Clone, Debug, Default)]
pub(crate) struct Faults {
    pub(crate) active: Vec<Fault>,
    pub(crate) fired: FaultsFired,
}

impl Faults {
    /// Consumes a pending `TrapNextMessage` for `canister`, if any.
    pub(crate) fn take_trap_next(&mut self, canister: Principal) -> bool {
        let pos = self
            .active
            .iter()
            .position(|f| matches!(f, Fault::TrapNextMessage { canister: c } if *c == canister));
        let taken = pos.map(|p| self.active.remove(p)).is_some();
        self.fired.trapped += u64::from(taken);
        taken
    }

    /// Whether calls to `canister` fail (counted as fired when they do).
    pub(crate) fn calls_fail_to(&mut self, canister: Principal) -> bool {
        let fail = self
            .active
            .iter()
            .any(|f| matches!(f, Fault::FailCallsTo { canister: c } if *c == canister));
        self.fired.calls_failed += u64::from(fail);
        fail
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
