//! Service: the restore ladder, cheapest rung first, each verified before the next is tried.
//!
//! 1. `CodeOnly`: install the LKG in upgrade mode (skipping the bad module's pre_upgrade),
//!    keeping stable memory; only when the LKG reads the schema the state is at.
//! 2. `Snapshot`: load the snapshot taken when the upgrade was armed (writes were paused from
//!    then on, so nothing is lost), or the newest snapshot outside an upgrade.
//! 3. `Reinstall`: reinstall the LKG clean with the agent's init argument; every record is
//!    lost; operators are alerted.
//!
//! A rung is verified by the module hash (canister_status), a `health` answer, and, where the
//! state before is known, an equal state digest. A canister stuck in `stopping` (an open call
//! context that never closes; the IC times the stop request out after 5 minutes) is upgraded
//! while stopping at rung 1, and uninstalled (which rejects its open contexts) before rung 2
//! loads the snapshot. Progress is stored after every rung, so a restore interrupted by a trap
//! resumes at the next tick; a ladder that runs out of rungs raises the alert and starts over.

use crate::agent_client;
use crate::store::{self, Restore};
use crate::supervise::queue_verdict;
use candid::Principal;
use canister_api::agent::{AgentInit, Autonomy, StateDigest, UpgradeOutcome};
use canister_api::ic::management;
use canister_api::watchdog::{LadderStep, LkgInfo};
use ic_management_canister_types as mgmt;

fn now() -> u64 {
    ic_cdk::api::time()
}

fn attempt(incident_id: u64, line: String) {
    store::event(
        "ladder.attempt",
        None,
        format!("incident {incident_id}: {line}"),
    );
    if let Some(mut i) = store::incident(incident_id) {
        i.attempts.push(line);
        store::put_incident(i);
    }
}

fn next_rung(step: LadderStep) -> Option<LadderStep> {
    match step {
        LadderStep::CodeOnly => Some(LadderStep::Snapshot),
        LadderStep::Snapshot => Some(LadderStep::Reinstall),
        LadderStep::Reinstall => None,
    }
}

/// Whether `lkg` reads stable memory at `schema` (unknown schema or range: no).
fn reads(lkg: &LkgInfo, schema: Option<u32>) -> bool {
    match (lkg.schema_range, schema) {
        (Some(r), Some(s)) => r.min <= s && s <= r.max,
        _ => false,
    }
}

/// Runs the ladder from the stored rung until a rung holds or all failed.
pub async fn run() {
    loop {
        let Some(r) = store::get().restore else {
            return;
        };
        match try_rung(&r).await {
            Ok(after) => return finish(&r, after),
            Err(why) => {
                attempt(r.incident_id, format!("{:?}: {why}", r.step));
                match next_rung(r.step) {
                    Some(step) => store::update(|s| {
                        if let Some(x) = s.restore.as_mut() {
                            x.step = step;
                        }
                    }),
                    None => {
                        if let Some(mut i) = store::incident(r.incident_id) {
                            i.alert = true;
                            i.data_lost = "not restored yet: every rung failed; the ladder starts \
                                           over at the next tick"
                                .into();
                            store::put_incident(i);
                        }
                        store::update(|s| {
                            if let Some(x) = s.restore.as_mut() {
                                x.step = LadderStep::CodeOnly;
                                x.passes += 1;
                            }
                        });
                        store::event(
                            "ladder.exhausted",
                            r.upgrade_id,
                            format!("incident {}: ALERT", r.incident_id),
                        );
                        return;
                    }
                }
            }
        }
    }
}

/// The LKG bytes, repaired from the agent's own copy when the watchdog's is corrupted.
async fn lkg(agent: Principal) -> Result<(LkgInfo, Vec<u8>), String> {
    let info = store::get().lkg.ok_or("the watchdog holds no LKG module")?;
    match store::lkg_bytes() {
        Ok(bytes) => Ok((info, bytes)),
        Err(corrupt) => {
            let bytes = agent_client::module(agent, &info.hash)
                .await
                .map_err(|e| format!("{corrupt}; re-fetching it from the agent failed: {e}"))?;
            store::set_lkg(info.clone(), &bytes);
            store::event(
                "ladder.lkg_repaired",
                None,
                format!("{corrupt}; re-fetched from the agent"),
            );
            Ok((info, bytes))
        }
    }
}

async fn try_rung(r: &Restore) -> Result<Option<StateDigest>, String> {
    let st = store::get();
    let agent = st.agent;
    let (info, wasm) = lkg(agent).await?;
    let before = store::incident(r.incident_id).and_then(|i| i.digest_before);
    match r.step {
        LadderStep::CodeOnly => {
            if !reads(&info, r.schema) {
                return Err(format!(
                    "skipped: the LKG reads schema {}, the state is at {}",
                    info.schema_range
                        .map_or("?".into(), |x| format!("{}..={}", x.min, x.max)),
                    r.schema
                        .map_or("an unknown version".into(), |s| s.to_string())
                ));
            }
            if let Err(e) = management::stop(agent).await {
                attempt(
                    r.incident_id,
                    format!("CodeOnly: stop failed ({e}); upgrading the stopping canister"),
                );
            }
            let installed = install(
                agent,
                mgmt::CanisterInstallMode::Upgrade(Some(mgmt::UpgradeFlags {
                    skip_pre_upgrade: Some(true),
                    wasm_memory_persistence: None,
                })),
                &wasm,
                vec![],
            )
            .await;
            let started = management::start(agent).await;
            installed?;
            started.map_err(|e| e.to_string())?;
            verify(
                agent,
                &info,
                before.as_ref(),
                st.config.heartbeat_timeout_secs,
            )
            .await
            .map(Some)
        }
        LadderStep::Snapshot => {
            let snapshot = match &r.snapshot_id {
                Some(id) => id.clone(),
                None => management::list_snapshots(agent)
                    .await
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .max_by_key(|s| s.taken_at_timestamp)
                    .map(|s| s.id)
                    .ok_or("the agent has no snapshot")?,
            };
            if let Err(e) = management::stop(agent).await {
                attempt(
                    r.incident_id,
                    format!("Snapshot: stop failed ({e}); uninstalling to close its call contexts"),
                );
                management::uninstall_code(agent)
                    .await
                    .map_err(|e| e.to_string())?;
                management::stop(agent).await.map_err(|e| e.to_string())?;
            }
            let loaded = management::load_snapshot(agent, snapshot.clone()).await;
            let started = management::start(agent).await;
            loaded.map_err(|e| e.to_string())?;
            started.map_err(|e| e.to_string())?;
            // The snapshot's state predates the arm: its digest is the one taken then.
            let after = verify(agent, &info, None, st.config.heartbeat_timeout_secs).await?;
            if let Some(b) = &before
                && !after.same_state(b)
            {
                attempt(
                    r.incident_id,
                    format!(
                        "Snapshot {}: loaded, but the digest differs from the one taken when armed",
                        hex::encode(&snapshot)
                    ),
                );
            }
            Ok(Some(after))
        }
        LadderStep::Reinstall => {
            let init = st
                .armed
                .as_ref()
                .map(|a| a.restore_init.clone())
                .unwrap_or(AgentInit {
                    operators: st.operators.clone(),
                    watchdog: Some(ic_cdk::api::canister_self()),
                    staging: None,
                    autonomy: Autonomy::Manual,
                    sandbox: None,
                });
            let _ = management::stop(agent).await;
            let arg = candid::encode_one(&init).map_err(|e| e.to_string())?;
            let installed = install(agent, mgmt::CanisterInstallMode::Reinstall, &wasm, arg).await;
            let started = management::start(agent).await;
            installed?;
            started.map_err(|e| e.to_string())?;
            verify(agent, &info, None, st.config.heartbeat_timeout_secs)
                .await
                .map(Some)
        }
    }
}

async fn install(
    agent: Principal,
    mode: mgmt::CanisterInstallMode,
    wasm: &[u8],
    arg: Vec<u8>,
) -> Result<(), String> {
    management::install_code(&mgmt::InstallCodeArgs {
        mode,
        canister_id: agent,
        wasm_module: wasm.to_vec(),
        arg,
        sender_canister_version: None,
    })
    .await
    .map_err(|e| e.to_string())
}

/// The agent runs the LKG, answers `health`, and (when `before` is known) holds the same state.
async fn verify(
    agent: Principal,
    lkg: &LkgInfo,
    before: Option<&StateDigest>,
    timeout: u32,
) -> Result<StateDigest, String> {
    let status = management::status(agent).await.map_err(|e| e.to_string())?;
    if status.module_hash.as_ref() != Some(&lkg.hash) {
        return Err(format!(
            "after the rung the agent runs {}, not the LKG",
            status.module_hash.map_or("no module".into(), hex::encode)
        ));
    }
    agent_client::health(agent, timeout)
        .await
        .map_err(|e| format!("the restored agent does not answer health: {e}"))?;
    let after = agent_client::digest(agent, timeout.max(30))
        .await
        .map_err(|e| format!("the restored agent does not answer state_digest: {e}"))?;
    if let Some(b) = before
        && !after.same_state(b)
    {
        return Err(format!(
            "the restored state differs: {} tasks, {} facts before; {} tasks, {} facts after",
            b.tasks, b.facts, after.tasks, after.facts
        ));
    }
    Ok(after)
}

fn finish(r: &Restore, after: Option<StateDigest>) {
    let at = now();
    let mut incident = store::incident(r.incident_id).expect("the incident of a restore");
    let (lost, text) = match (&incident.digest_before, &after) {
        (Some(b), Some(a)) if a.same_state(b) => (
            Some(0),
            "none: the logical state digest is unchanged".to_string(),
        ),
        (Some(b), Some(a)) => (
            Some(b.records_missing_in(a)),
            format!(
                "{} tasks and {} facts before, {} and {} after (digest {} -> {})",
                b.tasks,
                b.facts,
                a.tasks,
                a.facts,
                hex::encode(&b.sha256[..8]),
                hex::encode(&a.sha256[..8.min(a.sha256.len())])
            ),
        ),
        (None, Some(a)) => (
            None,
            format!(
                "unknown: no digest before (restored state holds {} tasks, {} facts)",
                a.tasks, a.facts
            ),
        ),
        (_, None) => (None, "unknown".to_string()),
    };
    incident.restored_at = Some(at);
    incident.ladder_step = Some(r.step);
    incident.digest_after = after;
    incident.records_lost = lost;
    incident.data_lost = if r.step == LadderStep::Reinstall {
        format!("clean reinstall: {text}")
    } else {
        text
    };
    incident.alert = r.step == LadderStep::Reinstall;
    store::put_incident(incident.clone());
    store::update(|s| {
        s.restore = None;
        s.armed = None;
        s.consecutive_failures = 0;
    });
    store::event(
        "ladder.restored",
        r.upgrade_id,
        format!(
            "incident {} restored by {:?} in {} s; data lost: {}",
            r.incident_id,
            r.step,
            (at - incident.detected_at) / 1_000_000_000,
            incident.data_lost
        ),
    );
    if let Some(id) = r.upgrade_id {
        queue_verdict(
            id,
            UpgradeOutcome::RolledBack {
                reason: incident.cause.clone(),
                incident_id: r.incident_id,
            },
        );
    }
}
