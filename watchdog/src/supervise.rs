//! Service: one supervision step per tick (an ic-cdk-timers interval, re-armed in
//! post_upgrade). Each step reads the state, does one phase's work and writes its progress
//! after every await, so a step that traps half-way is resumed by the next tick.
//!
//! ```text
//! no upgrade armed:  heartbeat -> N failures in a row -> restore ladder
//! Arming:            LKG copy (hash-checked) -> digest -> stop -> snapshot -> start -> upgrade_armed
//! AwaitingInstall:   module hash = candidate -> Probation; = parent after the deadline -> Failed
//! Probation:         K healthy heartbeats (module, version, health) -> Committing;
//!                    N failed heartbeats in a row -> restore ladder
//! Committing:        candidate fetched and hash-checked -> new LKG -> verdict to the agent
//! ```
//!
//! Verdicts to the agent (`complete_upgrade`) are queued and retried every tick until the agent
//! acknowledges them.

use crate::store::{self, Restore, State};
use crate::{agent_client, ladder};
use canister_api::agent::UpgradeOutcome;
use canister_api::ic::management;
use canister_api::watchdog::{
    ArmPhase, ArmReceipt, ArmedUpgrade, Heartbeat, Incident, LadderStep, LkgInfo,
};
use std::cell::Cell;

/// A tick older than this is considered dead (it trapped after an await).
const BUSY_EXPIRY_NS: u64 = 10 * 60 * 1_000_000_000;

thread_local! {
    static BUSY_SINCE: Cell<Option<u64>> = const { Cell::new(None) };
}

fn now() -> u64 {
    ic_cdk::api::time()
}

/// One supervision step (skipped if the previous one is still running).
pub async fn tick() {
    let t = now();
    if BUSY_SINCE
        .with(|b| b.get())
        .is_some_and(|since| t < since + BUSY_EXPIRY_NS)
    {
        return;
    }
    BUSY_SINCE.with(|b| b.set(Some(t)));
    step().await;
    deliver_verdicts().await;
    BUSY_SINCE.with(|b| b.set(None));
}

async fn step() {
    let st = store::get();
    if st.paused {
        return;
    }
    if st.restore.is_some() {
        return ladder::run().await;
    }
    match st.armed.as_ref().map(|a| a.phase.clone()) {
        None => heartbeat(&st).await,
        Some(ArmPhase::Arming) => arm(&st).await,
        Some(ArmPhase::AwaitingInstall | ArmPhase::Probation) => verify(&st).await,
        Some(ArmPhase::Committing) => commit(&st).await,
        Some(ArmPhase::RollingBack) => {} // the restore record drives it
    }
}

fn set_armed(f: impl FnOnce(&mut ArmedUpgrade)) {
    store::update(|s| {
        if let Some(a) = s.armed.as_mut() {
            f(a)
        }
    });
}

/// Queues a verdict for the agent.
pub fn queue_verdict(id: u64, outcome: UpgradeOutcome) {
    store::update(|s| {
        s.verdicts.retain(|(v, _)| *v != id);
        s.verdicts.push((id, outcome));
    });
}

async fn deliver_verdicts() {
    let st = store::get();
    for (id, outcome) in st.verdicts {
        match agent_client::complete_upgrade(st.agent, id, &outcome).await {
            Ok(answer) => {
                store::update(|s| s.verdicts.retain(|(v, _)| *v != id));
                store::event(
                    "verdict.delivered",
                    Some(id),
                    format!("{outcome:?}: agent answered {:?}", answer.map(|r| r.state)),
                );
            }
            Err(e) => store::event("verdict.retry", Some(id), e.to_string()),
        }
    }
}

fn record_heartbeat(healthy: bool, detail: String, schema: Option<u32>) -> u32 {
    store::update(|s| {
        s.last_heartbeat = Some(Heartbeat {
            at: now(),
            healthy,
            detail,
        });
        if healthy {
            s.consecutive_failures = 0;
            if schema.is_some() {
                s.last_schema = schema;
            }
        } else {
            s.consecutive_failures += 1;
        }
        s.consecutive_failures
    })
}

/// Steady state: one heartbeat; N failures in a row start the ladder.
async fn heartbeat(st: &State) {
    let timeout = st.config.heartbeat_timeout_secs;
    let failures = match agent_client::health(st.agent, timeout).await {
        Ok(h) => record_heartbeat(
            true,
            format!("{} ({})", h.version, h.status),
            Some(h.schema_version),
        ),
        Err(e) => record_heartbeat(false, e.to_string(), None),
    };
    if failures >= st.config.failure_threshold {
        let cause = format!(
            "{failures} heartbeats failed in a row (last: {})",
            store::get()
                .last_heartbeat
                .map_or(String::new(), |h| h.detail)
        );
        start_restore(cause, None);
    }
}

/// Opens an incident and starts the ladder at its first rung.
pub fn start_restore(cause: String, upgrade_id: Option<u64>) {
    let st = store::get();
    let armed = st
        .armed
        .clone()
        .filter(|a| Some(a.upgrade_id) == upgrade_id);
    let candidate_schema = armed
        .as_ref()
        .and_then(|a| a.candidate_schema_range)
        .map(|r| r.max);
    let schema = match (st.last_schema, candidate_schema) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let incident_id = store::add_incident(Incident {
        id: 0,
        upgrade_id,
        cause: cause.clone(),
        detected_at: now(),
        restored_at: None,
        ladder_step: None,
        attempts: vec![],
        lkg_hash: st.lkg.as_ref().map_or_else(Vec::new, |l| l.hash.clone()),
        digest_before: armed
            .as_ref()
            .and_then(|a| a.digest_before.clone())
            .or(st.last_digest.clone()),
        digest_after: None,
        records_lost: None,
        data_lost: "unknown until restored".into(),
        alert: false,
    });
    store::update(|s| {
        s.restore = Some(Restore {
            incident_id,
            step: LadderStep::CodeOnly,
            upgrade_id,
            schema,
            snapshot_id: armed.as_ref().and_then(|a| a.snapshot_id.clone()),
            passes: 0,
        });
        if let Some(a) = s.armed.as_mut() {
            a.phase = ArmPhase::RollingBack;
            a.incident_id = Some(incident_id);
        }
    });
    store::event(
        "ladder.start",
        upgrade_id,
        format!("incident {incident_id}: {cause}"),
    );
}

/// Abandons the armed upgrade with a `Failed` verdict (nothing to restore: the candidate never
/// ran).
fn abandon(id: u64, reason: String) {
    store::update(|s| s.armed = None);
    store::event("arm.abandoned", Some(id), reason.clone());
    queue_verdict(id, UpgradeOutcome::Failed(reason));
}

async fn arm(st: &State) {
    let a = st.armed.clone().expect("arming");
    let id = a.upgrade_id;
    let agent = st.agent;
    // 1. The LKG copy: the parent, checked against the hash the IC reports for the agent.
    if st.lkg.as_ref().map(|l| &l.hash) != Some(&a.parent_hash) {
        let running = match management::status(agent).await {
            Ok(s) => s.module_hash,
            Err(e) => return abandon(id, format!("canister_status of the agent failed: {e}")),
        };
        if running.as_ref() != Some(&a.parent_hash) {
            return abandon(
                id,
                format!(
                    "the agent runs {}, not the parent {} named in the arm request",
                    running.map_or("no module".into(), hex::encode),
                    hex::encode(&a.parent_hash)
                ),
            );
        }
        let bytes = match agent_client::module(agent, &a.parent_hash).await {
            Ok(b) => b,
            Err(e) => return abandon(id, format!("fetching the LKG module failed: {e}")),
        };
        let info = LkgInfo {
            hash: a.parent_hash.clone(),
            version: a.parent_version.clone(),
            schema_range: a.parent_schema_range,
            size: bytes.len() as u64,
            since: now(),
        };
        store::set_lkg(info, &bytes);
        store::event(
            "arm.lkg",
            Some(id),
            format!(
                "LKG {} ({} bytes) copied and hash-checked",
                hex::encode(&a.parent_hash),
                bytes.len()
            ),
        );
    }
    // 2. The logical state before.
    if a.digest_before.is_none() {
        match agent_client::digest(agent, st.config.heartbeat_timeout_secs.max(30)).await {
            Ok(d) => {
                store::update(|s| s.last_digest = Some(d.clone()));
                set_armed(|x| x.digest_before = Some(d));
            }
            Err(e) => return abandon(id, format!("state_digest of the agent failed: {e}")),
        }
    }
    // 3. Stop, snapshot (rotating), start.
    if a.snapshot_id.is_none() {
        if let Err(e) = management::stop(agent).await {
            let _ = management::start(agent).await;
            return abandon(
                id,
                format!("the agent could not be stopped for its snapshot: {e}"),
            );
        }
        let replace = match management::list_snapshots(agent).await {
            Ok(list) if list.len() as u32 >= st.config.max_snapshots => list
                .into_iter()
                .min_by_key(|s| s.taken_at_timestamp)
                .map(|s| s.id),
            Ok(_) => None,
            Err(e) => {
                let _ = management::start(agent).await;
                return abandon(id, format!("listing the agent's snapshots failed: {e}"));
            }
        };
        let taken = management::take_snapshot(agent, replace.clone()).await;
        let started = management::start(agent).await;
        match taken {
            Ok(snap) => {
                set_armed(|x| x.snapshot_id = Some(snap.id.clone()));
                store::event(
                    "arm.snapshot",
                    Some(id),
                    format!(
                        "snapshot {} ({} bytes){}",
                        hex::encode(&snap.id),
                        snap.total_size,
                        replace
                            .map_or(String::new(), |r| format!(", replacing {}", hex::encode(r)))
                    ),
                );
            }
            Err(e) => return abandon(id, format!("the snapshot failed: {e}")),
        }
        if let Err(e) = started {
            store::event("arm.start_retry", Some(id), e.to_string());
            return; // the next tick starts it and continues
        }
    } else if let Err(e) = management::start(agent).await {
        store::event("arm.start_retry", Some(id), e.to_string());
        return;
    }
    // 4. Tell the agent: it installs the candidate.
    let a = store::get().armed.expect("arming");
    let receipt = ArmReceipt {
        upgrade_id: id,
        snapshot_id: a.snapshot_id.clone().unwrap_or_default(),
        lkg_hash: store::get().lkg.map_or_else(Vec::new, |l| l.hash),
        deadline: a.deadline,
    };
    match agent_client::upgrade_armed(agent, &receipt).await {
        Ok(Ok(_)) => {
            set_armed(|x| x.phase = ArmPhase::AwaitingInstall);
            store::event(
                "arm.armed",
                Some(id),
                "the agent is installing the candidate".into(),
            );
        }
        Ok(Err(e)) => abandon(id, format!("the agent refused to install: {e}")),
        Err(e) => abandon(id, format!("upgrade_armed failed: {e}")),
    }
}

async fn verify(st: &State) {
    let a = st.armed.clone().expect("armed");
    let id = a.upgrade_id;
    let module = match management::status(st.agent).await {
        Ok(s) => s.module_hash,
        Err(e) => {
            let failures = record_heartbeat(false, format!("canister_status failed: {e}"), None);
            if failures >= st.config.failure_threshold {
                start_restore(
                    format!("canister_status of the agent failed {failures} times: {e}"),
                    Some(id),
                );
            }
            return;
        }
    };
    if module.as_ref() == Some(&a.parent_hash) {
        if now() > a.deadline {
            abandon(
                id,
                format!(
                    "install_code did not take effect by the deadline: the agent still runs the parent {}",
                    hex::encode(&a.parent_hash)
                ),
            );
        }
        return;
    }
    if module.as_ref() != Some(&a.candidate_hash) {
        let cause = format!(
            "the agent runs {}, neither the candidate {} nor the parent",
            module.map_or("no module".into(), hex::encode),
            hex::encode(&a.candidate_hash)
        );
        return start_restore(cause, Some(id));
    }
    if a.phase == ArmPhase::AwaitingInstall {
        set_armed(|x| x.phase = ArmPhase::Probation);
        store::event(
            "verify.installed",
            Some(id),
            "the candidate's module hash is running".into(),
        );
    }
    let check = match agent_client::health(st.agent, st.config.heartbeat_timeout_secs).await {
        Err(e) => Err(e.to_string()),
        Ok(h) if h.version != a.candidate_version => Err(format!(
            "health reports version {}, expected {}",
            h.version, a.candidate_version
        )),
        Ok(h) if h.running_module_hash.as_ref() != Some(&a.candidate_hash) => Err(
            "health does not report the candidate as its running module (no Booted record)".into(),
        ),
        Ok(h) => Ok(h),
    };
    match check {
        Ok(h) => {
            record_heartbeat(
                true,
                format!("{} on probation", h.version),
                Some(h.schema_version),
            );
            let healthy = a.healthy_heartbeats + 1;
            set_armed(|x| x.healthy_heartbeats = healthy);
            if healthy >= st.config.probation_heartbeats {
                set_armed(|x| x.phase = ArmPhase::Committing);
                store::event(
                    "verify.probation_passed",
                    Some(id),
                    format!("{healthy} healthy heartbeats"),
                );
                commit(&store::get()).await;
            }
        }
        Err(why) => {
            let failures = record_heartbeat(false, why.clone(), None);
            store::event(
                "verify.unhealthy",
                Some(id),
                format!("{failures} in a row: {why}"),
            );
            if failures >= st.config.failure_threshold {
                start_restore(
                    format!(
                        "the candidate failed {failures} heartbeats in a row on probation (last: {why})"
                    ),
                    Some(id),
                );
            }
        }
    }
}

async fn commit(st: &State) {
    let a = st.armed.clone().expect("committing");
    let id = a.upgrade_id;
    if st.lkg.as_ref().map(|l| &l.hash) != Some(&a.candidate_hash) {
        match agent_client::module(st.agent, &a.candidate_hash).await {
            Ok(bytes) => {
                let info = LkgInfo {
                    hash: a.candidate_hash.clone(),
                    version: a.candidate_version.clone(),
                    schema_range: a.candidate_schema_range,
                    size: bytes.len() as u64,
                    since: now(),
                };
                store::set_lkg(info, &bytes);
            }
            Err(e) => {
                store::event(
                    "commit.retry",
                    Some(id),
                    format!("fetching the new LKG failed: {e}"),
                );
                return;
            }
        }
    }
    store::update(|s| s.armed = None);
    store::event(
        "commit",
        Some(id),
        format!("{} is the LKG", hex::encode(&a.candidate_hash)),
    );
    queue_verdict(id, UpgradeOutcome::Committed);
}
