//! The candid types of the three canisters' interfaces, in one crate because each canister calls
//! the other two: the agent calls staging (`rehearse`) and the watchdog (`arm`, `disarm`);
//! staging calls the agent and its sandbox copy; the watchdog calls the agent (`health`,
//! `export_module`, `upgrade_armed`, `complete_upgrade`).
//!
//! - [`agent`]: everything `agent/agent.did` names.
//! - [`staging`]: everything `staging/staging.did` names.
//! - [`watchdog`]: everything `watchdog/watchdog.did` names.
//!
//! Hashes are `blob`s of 32 bytes in records and lowercase hex in messages; times are
//! nanoseconds since the UNIX epoch; instruction counts are the IC's.

pub mod agent;
pub mod staging;
pub mod watchdog;

/// Largest piece of a module or of stable memory moved in one inter-canister reply: 1 MiB,
/// well under the IC's 2 MiB response limit.
pub const TRANSFER_CHUNK: u64 = 1024 * 1024;

#[cfg(feature = "cdk")]
pub mod ic;
#[cfg(feature = "cdk")]
pub mod stable;
