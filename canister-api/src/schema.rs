//! The stable-memory schema range a build declares, which the agent's, staging's and the
//! watchdog's records all carry (re-exported by `crate::agent`, whose `.did` names it).

use candid::{CandidType, Deserialize};
use serde::Serialize;

/// A stable-memory schema range `min..=max`.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaRange {
    /// Lowest schema version the build runs on (by migrating).
    pub min: u32,
    /// Highest schema version (the one it writes).
    pub max: u32,
}
