//! Why a call to a canister failed, in the classes an operator acts on: the code failed, the
//! canister is stopped or stopping, it is out of cycles (frozen), or the network lost the call.
//! The watchdog counts only [`Failure::Code`] towards a rollback, and the agent's self-test
//! fails a tool only for it; the README's failure table says what happens for each class.
//!
//! A calling canister sees a reject code and a message, no `IC0xxx` error code, so the
//! classes follow the replica's texts (docs/ic-messages.md): a request to a stopped or
//! stopping canister is rejected with CANISTER_ERROR and `Canister {id} is stopped` /
//! `Canister {id} is stopping` (rs/messaging/src/routing/stream_handler.rs,
//! `generate_reject_response_for`, rows 20 and 7 there); one the callee cannot pay for is
//! rejected with SYS_TRANSIENT and `Canister {id} is out of cycles` (interfaces `errors.rs`,
//! `CanisterOutOfCyclesError`, row 18). Where a class changes what the caller does, the caller
//! asks canister_status for the IC's own answer (the watchdog does, before it treats a stop as
//! an operator's).

/// The class of a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The callee's code failed: a trap, an explicit reject, an answer that does not decode,
    /// no module or no such method, a call that hung past its bounded wait, or `health`
    /// answering `unhealthy`. Counts towards a rollback.
    Code,
    /// The callee is stopped (IC0508), usually by an operator.
    Stopped,
    /// The callee is stopping (IC0509): an operator's stop, or the watchdog's own stop for a
    /// snapshot.
    Stopping,
    /// The callee is out of cycles or frozen (IC0207): another version would not help; top it
    /// up.
    OutOfCycles,
    /// The network: the response was lost before the deadline (SYS_UNKNOWN), a queue was full
    /// (SYS_TRANSIENT), the call could not be sent. The callee may be fine.
    Network,
}

impl Failure {
    /// Its name in events, alerts and the README table.
    pub fn name(self) -> &'static str {
        match self {
            Failure::Code => "code",
            Failure::Stopped => "stopped",
            Failure::Stopping => "stopping",
            Failure::OutOfCycles => "out_of_cycles",
            Failure::Network => "network",
        }
    }
}

/// SYS_FATAL.
pub const SYS_FATAL: u32 = 1;
/// SYS_TRANSIENT.
pub const SYS_TRANSIENT: u32 = 2;
/// DESTINATION_INVALID.
pub const DESTINATION_INVALID: u32 = 3;
/// CANISTER_REJECT.
pub const CANISTER_REJECT: u32 = 4;
/// CANISTER_ERROR.
pub const CANISTER_ERROR: u32 = 5;
/// SYS_UNKNOWN.
pub const SYS_UNKNOWN: u32 = 6;

/// Classifies a failed call: `reject_code` is the IC's reject code (`None` when the call was
/// answered but the answer did not decode), `message` its text, and `late` whether a
/// bounded-wait call ran out of time (a SYS_UNKNOWN at the deadline is a hung callee; before
/// it, a lost response).
pub fn classify(reject_code: Option<u32>, message: &str, late: bool) -> Failure {
    let Some(code) = reject_code else {
        return Failure::Code;
    };
    match code {
        SYS_TRANSIENT if message.contains("is out of cycles") => Failure::OutOfCycles,
        CANISTER_ERROR if message.ends_with("is out of cycles") => Failure::OutOfCycles,
        CANISTER_ERROR if message.ends_with("is stopped") => Failure::Stopped,
        CANISTER_ERROR if message.ends_with("is stopping") => Failure::Stopping,
        SYS_UNKNOWN if late => Failure::Code,
        SYS_FATAL | SYS_TRANSIENT | SYS_UNKNOWN => Failure::Network,
        // DESTINATION_INVALID (no module, no method), CANISTER_REJECT, CANISTER_ERROR (a trap,
        // a contract violation, the instruction limit) and codes this build does not know.
        _ => Failure::Code,
    }
}

/// Whether a management call was refused because the caller is not a controller of the
/// canister (IC0512: `Only the controllers of the canister {id} can control it.`).
pub fn not_a_controller(message: &str) -> bool {
    message.contains("Only the controllers of the canister")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "rwlgt-iiaaa-aaaaa-aaaaa-cai";

    #[test]
    fn the_replicas_texts_map_to_their_classes() {
        let stopped = format!("Canister {ID} is stopped");
        let stopping = format!("Canister {ID} is stopping");
        let cycles = format!("Canister {ID} is out of cycles");
        let trap = format!(
            "IC0503: Error from Canister {ID}: Canister called `ic0.trap` with message: 'x'"
        );
        assert_eq!(classify(Some(5), &stopped, false), Failure::Stopped);
        assert_eq!(classify(Some(5), &stopping, false), Failure::Stopping);
        assert_eq!(classify(Some(2), &cycles, false), Failure::OutOfCycles);
        assert_eq!(classify(Some(5), &trap, false), Failure::Code);
        assert_eq!(classify(Some(4), "no", false), Failure::Code);
        assert_eq!(classify(Some(3), "no module", false), Failure::Code);
        assert_eq!(classify(Some(2), "queue full", false), Failure::Network);
        assert_eq!(classify(Some(6), "dropped", false), Failure::Network);
        assert_eq!(classify(Some(6), "deadline", true), Failure::Code);
        assert_eq!(classify(None, "bad candid", false), Failure::Code);
    }

    #[test]
    fn a_trap_message_that_mentions_a_stop_is_still_the_code() {
        // The text of a trap is the canister's own: only the routing texts end this way.
        let trap = format!("IC0503: Error from Canister {ID}: 'the watchdog is stopped' seen");
        assert_eq!(classify(Some(5), &trap, false), Failure::Code);
    }
}
