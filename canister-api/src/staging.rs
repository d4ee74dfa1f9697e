//! The staging canister's interface: rehearsing a candidate on a sandbox copy of the agent.

use crate::schema::SchemaRange;
use candid::{CandidType, Deserialize, Principal};
use serde::Serialize;

/// The staging canister's init argument.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct StagingInit {
    /// The agent whose upgrades it rehearses (the only caller of `rehearse`).
    pub agent: Principal,
    /// Principals that may read reports and reset the sandbox.
    pub operators: Vec<Principal>,
}

/// Instruction budgets a rehearsal holds the candidate to.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RehearsalBudgets {
    /// Most instructions post_upgrade may use on the copied state (default: half the IC's
    /// 300 B install limit).
    pub post_upgrade: u64,
    /// Most instructions one probe query may use (default: half the IC's 5 B query limit).
    pub probe: u64,
}

impl Default for RehearsalBudgets {
    fn default() -> Self {
        Self {
            post_upgrade: 150_000_000_000,
            probe: 2_500_000_000,
        }
    }
}

/// `rehearse`'s argument: what to rehearse. Staging fetches both modules from the agent with
/// `export_module` and checks them against these hashes.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct RehearsalRequest {
    /// The journal entry.
    pub upgrade_id: u64,
    /// The module the agent runs now (installed first on the sandbox).
    pub current_hash: Vec<u8>,
    /// The candidate.
    pub candidate_hash: Vec<u8>,
    /// The schema range the candidate declares, if any.
    pub candidate_schema_range: Option<SchemaRange>,
    /// Budgets; the defaults when absent.
    pub budgets: Option<RehearsalBudgets>,
}

/// One probe of a rehearsal.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    /// What was probed (`install_current`, `import_state`, `upgrade`, `health`, `digest`,
    /// `replay list_tasks`, `post_upgrade_budget`...).
    pub name: String,
    /// Whether it held.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
    /// Instructions it used, where the sandbox reports them.
    pub instructions: Option<u64>,
}

/// What a rehearsal found.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct RehearsalReport {
    /// The journal entry.
    pub upgrade_id: u64,
    /// The candidate.
    pub candidate_hash: Vec<u8>,
    /// The sandbox canister it ran on.
    pub sandbox: Principal,
    /// Whether every probe held.
    pub passed: bool,
    /// Every probe, in order.
    pub probes: Vec<ProbeResult>,
    /// Bytes of stable memory copied from the agent.
    pub state_bytes: u64,
    /// Instructions the candidate's post_upgrade used on the copy (as it reports them).
    pub post_upgrade_instructions: Option<u64>,
    /// Instructions the staging canister spent on this rehearsal (its call context).
    pub staging_instructions: u64,
    /// When it started and ended.
    pub started_at: u64,
    /// When it ended.
    pub finished_at: u64,
}

impl RehearsalReport {
    /// The first probe that failed, as `name: detail`.
    pub fn first_failure(&self) -> Option<String> {
        self.probes
            .iter()
            .find(|p| !p.ok)
            .map(|p| format!("{}: {}", p.name, p.detail))
    }
}

/// Why staging refused or could not rehearse.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StagingError {
    /// The caller may not call this method.
    #[error("{caller} is not allowed to call `{method}` (allowed: {allowed})")]
    Unauthorized {
        /// Who called.
        caller: Principal,
        /// What.
        method: String,
        /// Who may.
        allowed: String,
    },
    /// A rehearsal is already running.
    #[error("rehearsal of upgrade {upgrade_id} is running since {since}; one at a time")]
    Busy {
        /// The upgrade being rehearsed.
        upgrade_id: u64,
        /// Since when.
        since: u64,
    },
    /// An argument is not acceptable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The sandbox could not be set up (a management or agent call failed): not the
    /// candidate's fault; retry later.
    #[error("sandbox set-up failed: {0}")]
    Setup(String),
}
