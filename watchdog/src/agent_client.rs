//! The agent's methods the watchdog calls, typed and named through `AgentMethod` (the agent's
//! control plane). Heartbeats are bounded-wait calls (a hung agent cannot hang the watchdog);
//! the rest wait unboundedly for an answer. A failed heartbeat carries its class
//! ([`Failure`]): only the code's own failures count towards a rollback.

use candid::Principal;
use canister_api::agent::{
    AgentError, AgentMethod, Health, RepairNotice, StateDigest, UpgradeOutcome, UpgradeRecord,
    is_healthy_status,
};
use canister_api::failure::Failure;
use canister_api::ic::{self, CallError};
use canister_api::watchdog::ArmReceipt;

/// A failed heartbeat: whose fault ([`Failure`]) and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeatFailure {
    /// The class.
    pub class: Failure,
    /// What was seen.
    pub detail: String,
    /// Whether the call ran out of time (SYS_UNKNOWN at its deadline): the agent did not
    /// answer, which its code, a slow subnet or a held response can cause alike.
    pub unanswered: bool,
}

impl std::fmt::Display for BeatFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl BeatFailure {
    /// A failure of the agent's code.
    pub fn code(detail: String) -> Self {
        BeatFailure {
            class: Failure::Code,
            detail,
            unanswered: false,
        }
    }
}

impl From<CallError> for BeatFailure {
    fn from(e: CallError) -> Self {
        BeatFailure {
            class: e.failure(),
            detail: e.to_string(),
            unanswered: e.late,
        }
    }
}

/// `health`, waiting at most `timeout_secs`.
pub async fn health(agent: Principal, timeout_secs: u32) -> Result<Health, CallError> {
    ic::agent_call(agent, AgentMethod::Health, &(), Some(timeout_secs)).await
}

/// A heartbeat: `health` answered with a healthy status. A dropped response is retried at
/// once (`ic::heartbeat_call`), so random losses do not count as failures.
pub async fn heartbeat(agent: Principal, timeout_secs: u32) -> Result<Health, BeatFailure> {
    let h: Health = ic::heartbeat_call(
        agent,
        AgentMethod::Health.name(),
        timeout_secs,
        ic::HEARTBEAT_ATTEMPTS,
    )
    .await?;
    if !is_healthy_status(&h.status) {
        return Err(BeatFailure::code(format!(
            "health answered `{}` (version {}, schema {}){}",
            h.status,
            h.version,
            h.schema_version,
            if h.alerts.is_empty() {
                String::new()
            } else {
                format!(": {}", h.alerts.join("; "))
            }
        )));
    }
    Ok(h)
}

/// The canary write (a fact and a task written and undone): the candidate's writes work.
pub async fn canary(agent: Principal, timeout_secs: u32) -> Result<String, BeatFailure> {
    let answer: Result<String, AgentError> =
        ic::agent_call(agent, AgentMethod::CanaryWrite, &(), Some(timeout_secs)).await?;
    answer.map_err(|e| BeatFailure::code(format!("canary_write: {e}")))
}

/// `state_digest`, waiting at most `timeout_secs`; a dropped response is retried at once.
pub async fn digest(agent: Principal, timeout_secs: u32) -> Result<StateDigest, CallError> {
    ic::heartbeat_call(
        agent,
        AgentMethod::StateDigest.name(),
        timeout_secs,
        ic::HEARTBEAT_ATTEMPTS,
    )
    .await
}

/// A stored module of the agent, fetched in pieces and checked against `hash`.
pub async fn module(agent: Principal, hash: &[u8]) -> Result<Vec<u8>, String> {
    ic::agent_module(agent, hash).await
}

/// `upgrade_armed`: the agent installs the candidate when this answers `Ok`.
pub async fn upgrade_armed(
    agent: Principal,
    receipt: &ArmReceipt,
) -> Result<Result<UpgradeRecord, AgentError>, CallError> {
    ic::agent_call(agent, AgentMethod::UpgradeArmed, &(receipt,), None).await
}

/// `complete_upgrade`: the verdict.
pub async fn complete_upgrade(
    agent: Principal,
    id: u64,
    outcome: &UpgradeOutcome,
) -> Result<Result<UpgradeRecord, AgentError>, CallError> {
    ic::agent_call(
        agent,
        AgentMethod::CompleteUpgrade,
        &(id, outcome.clone()),
        Some(60),
    )
    .await
}

/// `note_repair`: a restore of the agent, for its journal.
pub async fn note_repair(
    agent: Principal,
    notice: &RepairNotice,
) -> Result<Result<(), AgentError>, CallError> {
    ic::agent_call(agent, AgentMethod::NoteRepair, &(notice,), Some(60)).await
}

/// A page of `list_versions` from the version `from` (an operator's rollback to a stored
/// version).
pub async fn list_versions(
    agent: Principal,
    from: Option<Vec<u8>>,
) -> Result<Result<canister_api::agent::VersionPage, AgentError>, CallError> {
    let from = from.map(serde_bytes::ByteBuf::from);
    ic::agent_call(agent, AgentMethod::ListVersions, &(from,), Some(30)).await
}
