//! The probe's candid types, kept apart from the endpoints (see `probe.did`).
//!
//! The fidelity suite in `ic-sim/tests` declares mirror types of its own (it cannot link a
//! `cdylib`); candid matches them structurally, so a field added here must be added there too.

use candid::{CandidType, Nat, Principal};
use serde::Deserialize;

/// Argument of `init` and `post_upgrade` (`opt ProbeInit`; absent means "do nothing special").
#[derive(CandidType, Deserialize, Clone, Debug, Default)]
pub struct ProbeInit {
    /// Trap with this message at the end of init / post_upgrade.
    pub trap_with: Option<String>,
    /// Burn this many instructions first (0 = none), to overrun the install limit.
    pub burn_instructions: u64,
}

/// An inter-canister call to make.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct CallArgs {
    /// The callee.
    pub target: Principal,
    /// The callee's method.
    pub method: String,
    /// The raw argument bytes (usually candid).
    #[serde(with = "serde_bytes")]
    pub arg: Vec<u8>,
    /// Cycles attached to the call.
    pub cycles: Nat,
    /// `Some(s)`: a bounded-wait (best-effort) call with an `s`-second timeout; `None`: unbounded.
    pub bounded_wait_secs: Option<u32>,
}

/// What became of an inter-canister call.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// The callee replied with these bytes.
    Reply(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The call was rejected (by the callee or the system).
    Reject {
        /// The reject code (1..=6).
        code: u32,
        /// The reject message.
        message: String,
    },
    /// `ic0.call_perform` refused the call, or the liquid balance could not pay for it.
    PerformFailed(String),
}
