//! The agent's methods the watchdog calls, typed. Heartbeats are bounded-wait calls (a hung
//! agent cannot hang the watchdog); the rest wait unboundedly for an answer.

use candid::Principal;
use canister_api::agent::{AgentError, Health, ModuleChunk, StateDigest, UpgradeOutcome, UpgradeRecord};
use canister_api::ic::{self, CallError};
use canister_api::watchdog::ArmReceipt;
use sha2::{Digest, Sha256};

/// `health`, waiting at most `timeout_secs`.
pub async fn health(agent: Principal, timeout_secs: u32) -> Result<Health, CallError> {
    ic::call(agent, "health", &(), Some(timeout_secs)).await
}

/// `state_digest`, waiting at most `timeout_secs`.
pub async fn digest(agent: Principal, timeout_secs: u32) -> Result<StateDigest, CallError> {
    ic::call(agent, "state_digest", &(), Some(timeout_secs)).await
}

/// A stored module of the agent, fetched in pieces and checked against `hash`.
pub async fn module(agent: Principal, hash: &[u8]) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    loop {
        let chunk: Result<ModuleChunk, AgentError> = ic::call_args(
            agent,
            "export_module",
            &(serde_bytes::ByteBuf::from(hash.to_vec()), bytes.len() as u64),
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
        let chunk = chunk.map_err(|e| e.to_string())?;
        if chunk.bytes.is_empty() {
            break;
        }
        bytes.extend_from_slice(&chunk.bytes);
        if bytes.len() as u64 >= chunk.total {
            break;
        }
    }
    let actual = Sha256::digest(&bytes);
    if actual.as_slice() != hash {
        return Err(format!(
            "module {} from the agent hashes to {}",
            hex::encode(hash),
            hex::encode(actual)
        ));
    }
    Ok(bytes)
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
