//! The agent's methods the watchdog calls, typed. Heartbeats are bounded-wait calls (a hung
//! agent cannot hang the watchdog); the rest wait unboundedly for an answer.

use candid::Principal;
use canister_api::agent::{
    AgentError, Health, RepairNotice, StateDigest, UpgradeOutcome, UpgradeRecord,
};
use canister_api::ic::{self, CallError};
use canister_api::watchdog::ArmReceipt;

/// `health`, waiting at most `timeout_secs`.
pub async fn health(agent: Principal, timeout_secs: u32) -> Result<Health, CallError> {
    ic::call(agent, "health", &(), Some(timeout_secs)).await
}

/// A heartbeat: `health` answered, and not with status `unhealthy`. A dropped response is
/// retried at once (`ic::heartbeat_call`), so random losses do not count as failures.
pub async fn heartbeat(agent: Principal, timeout_secs: u32) -> Result<Health, String> {
    let h: Health = ic::heartbeat_call(agent, "health", timeout_secs, ic::HEARTBEAT_ATTEMPTS)
        .await
        .map_err(|e| e.to_string())?;
    if h.status == canister_api::agent::HEALTH_UNHEALTHY {
        return Err(format!(
            "health answered `{}` (version {}, schema {})",
            h.status, h.version, h.schema_version
        ));
    }
    Ok(h)
}

/// `state_digest`, waiting at most `timeout_secs`; a dropped response is retried at once.
pub async fn digest(agent: Principal, timeout_secs: u32) -> Result<StateDigest, CallError> {
    ic::heartbeat_call(agent, "state_digest", timeout_secs, ic::HEARTBEAT_ATTEMPTS).await
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
    ic::call(agent, "upgrade_armed", receipt, None).await
}

/// `complete_upgrade`: the verdict.
pub async fn complete_upgrade(
    agent: Principal,
    id: u64,
    outcome: &UpgradeOutcome,
) -> Result<Result<UpgradeRecord, AgentError>, CallError> {
    ic::call_args(agent, "complete_upgrade", &(id, outcome.clone()), Some(60)).await
}

/// `note_repair`: a restore of the agent, for its journal.
pub async fn note_repair(
    agent: Principal,
    notice: &RepairNotice,
) -> Result<Result<(), AgentError>, CallError> {
    ic::call(agent, "note_repair", notice, Some(60)).await
}
