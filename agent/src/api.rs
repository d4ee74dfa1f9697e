//! The agent's candid types, defined in the `canister-api` crate (the staging and watchdog
//! canisters speak them too) and re-exported here for the agent's code, tests and the CLI.

pub use canister_api::agent::*;
pub use canister_api::staging::{ProbeResult, RehearsalReport, RehearsalRequest};
pub use canister_api::watchdog::{ArmReceipt, ArmRequest};
