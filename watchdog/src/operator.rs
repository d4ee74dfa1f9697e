//! Service: what operators do with the watchdog (`dfx canister call watchdog ...`): read its
//! status, roll the agent back to a target, pause and resume supervision, change settings and
//! the operator list; and the agent's repair notices.
//!
//! Every change is an event in the log; the endpoints in `lib.rs` check the caller first.

use crate::store;
use crate::supervise;
use candid::Principal;
use canister_api::agent::{AgentError, RepairNotice, VersionPage};
use canister_api::cdk::now;
use canister_api::ic::{CallError, management};
use canister_api::watchdog::{
    ArmPhase, LkgInfo, RestoreView, RollbackTarget, WatchdogConfig, WatchdogError, WatchdogStatus,
};

/// `status`: the state, the agent as last seen, and the alerts.
pub fn status() -> WatchdogStatus {
    let st = store::get();
    let cycles = ic_cdk::api::canister_cycle_balance();
    WatchdogStatus {
        agent: st.agent,
        lkg: st.lkg.clone(),
        previous_lkg: st.previous_lkg.clone(),
        armed: st.armed.clone(),
        last_heartbeat: st.last_heartbeat.clone(),
        consecutive_failures: st.consecutive_failures,
        incidents: store::incident_count(),
        paused: st.paused,
        config: st.config,
        operators: st.operators.clone(),
        agent_health: st.agent_health.clone(),
        restore: st.restore.as_ref().map(|r| RestoreView {
            incident_id: r.incident_id,
            step: r.step,
            upgrade_id: r.upgrade_id,
            target: r.target.clone(),
            passes: r.passes,
        }),
        cycles,
        alerts: alerts(&st, cycles),
        repairs: st.repairs,
        cadence: Some(crate::cadence::of(&st)),
    }
}

/// What operators should look at.
pub fn alerts(st: &store::State, own_cycles: u128) -> Vec<String> {
    let floor = st.config.cycles_floor;
    let mut out = vec![];
    if own_cycles < floor {
        out.push(format!(
            "the watchdog has {own_cycles} cycles, below the floor of {floor}: top it up \
             (dfx canister deposit-cycles); below {} it sends no heartbeats",
            st.config.cycles_reserve
        ));
    }
    if let Some(h) = &st.agent_health
        && h.cycles < floor
    {
        out.push(format!(
            "the agent had {} cycles at its last heartbeat, below the floor of {floor}: top it up",
            h.cycles
        ));
    }
    if st.paused {
        out.push("supervision is paused: no heartbeats, arming or restores until `resume`".into());
    }
    if st.lkg.is_none() {
        out.push(
            "no LKG module held yet: it is copied when the agent first answers healthy".into(),
        );
    }
    if let Some((since, why)) = &st.control_lost {
        out.push(format!(
            "the watchdog is not a controller of the agent since {since} ({why}): it cannot \
             snapshot, restore or roll it back; add it back with dfx canister update-settings \
             agent --add-controller {} (README: Controller loss)",
            ic_cdk::api::canister_self()
        ));
    }
    if let Some(c) = &st.condition {
        out.push(c.clone());
    }
    for u in st.undelivered.iter().flatten() {
        out.push(format!("undelivered: {u}"));
    }
    if let Some(m) = &st.foreign_module {
        out.push(format!(
            "the agent runs {}, installed outside the pipeline: commit it on the agent as its \
             running module (commit_wasm Running) so the watchdog adopts it as the LKG",
            hex::encode(m)
        ));
    }
    if let Some(r) = &st.restore
        && r.passes > 0
    {
        out.push(format!(
            "incident {}: every rung of the restore ladder failed {} time(s); it keeps trying \
             (see `incidents`)",
            r.incident_id, r.passes
        ));
    }
    out
}

/// Pauses or resumes supervision.
pub fn set_paused(caller: Principal, paused: bool) {
    store::update(|s| s.paused = paused);
    store::event(
        if paused {
            "operator.pause"
        } else {
            "operator.resume"
        },
        None,
        format!("by {caller}"),
    );
}

/// Replaces the settings (the endpoint then re-arms the timer at the cadence they call for).
pub fn configure(caller: Principal, config: WatchdogConfig) -> Result<(), WatchdogError> {
    config.check().map_err(WatchdogError::InvalidArgument)?;
    let before = store::get().config;
    store::update(|s| s.config = config);
    store::event(
        "operator.configure",
        None,
        format!("by {caller}: {before:?} -> {config:?}"),
    );
    Ok(())
}

/// Replaces the operator list.
pub fn set_operators(
    caller: Principal,
    operators: Vec<Principal>,
) -> Result<Vec<Principal>, WatchdogError> {
    canister_api::check_operators(&operators).map_err(WatchdogError::InvalidArgument)?;
    let before = store::get().operators;
    store::update(|s| s.operators = operators.clone());
    store::event(
        "operator.set_operators",
        None,
        format!("by {caller}: {before:?} -> {operators:?}"),
    );
    Ok(operators)
}

/// Records the agent's repair of the watchdog.
pub fn note_repair(notice: RepairNotice) {
    store::update(|s| s.repairs += 1);
    store::event(
        "repair.by_agent",
        None,
        format!("{} at {}: {}", notice.action, notice.at, notice.detail),
    );
}

/// Starts a rollback of the agent to `target`; answers the incident id.
pub async fn rollback(caller: Principal, target: RollbackTarget) -> Result<u64, WatchdogError> {
    let st = store::get();
    if st.paused {
        return Err(WatchdogError::Paused);
    }
    let busy = |upgrade_id: u64, reason: String| Err(WatchdogError::Busy { upgrade_id, reason });
    if let Some(r) = &st.restore {
        return busy(
            r.upgrade_id.unwrap_or(0),
            format!(
                "restore of incident {} in progress at rung {:?}",
                r.incident_id, r.step
            ),
        );
    }
    let upgrade_id = match &st.armed {
        Some(a) if matches!(a.phase, ArmPhase::AwaitingInstall | ArmPhase::Probation) => {
            Some(a.upgrade_id)
        }
        Some(a) => {
            return busy(
                a.upgrade_id,
                format!("{:?}: wait for this phase to end", a.phase),
            );
        }
        None => None,
    };
    let version = match &target {
        RollbackTarget::Lkg => {
            if st.lkg.is_none() {
                return Err(WatchdogError::Refused(
                    "the watchdog holds no LKG module yet; roll back to a version or a snapshot"
                        .into(),
                ));
            }
            None
        }
        RollbackTarget::Version(hash) => Some(stored_version(st.agent, hash, &st).await?),
        RollbackTarget::Snapshot(id) => {
            let snapshots = management::list_snapshots(st.agent)
                .await
                .map_err(|e| WatchdogError::Refused(format!("listing snapshots failed: {e}")))?;
            if !snapshots.iter().any(|s| &s.id == id) {
                return Err(WatchdogError::NotFound(format!(
                    "snapshot {} of the agent; there are: {}",
                    hex::encode(id),
                    snapshots
                        .iter()
                        .map(|s| hex::encode(&s.id))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            None
        }
    };
    // Re-check after the awaits: the state may have moved on.
    let st = store::get();
    if st.restore.is_some() || st.paused {
        return Err(WatchdogError::Busy {
            upgrade_id: upgrade_id.unwrap_or(0),
            reason: "a restore started or supervision was paused meanwhile".into(),
        });
    }
    let cause = format!(
        "operator {caller} asked to roll back to {}",
        describe(&target)
    );
    let incident_id = supervise::start_restore(cause, upgrade_id, target, version);
    ic_cdk_timers::set_timer(std::time::Duration::ZERO, supervise::tick());
    Ok(incident_id)
}

/// A rollback target in words.
pub fn describe(target: &RollbackTarget) -> String {
    match target {
        RollbackTarget::Lkg => "the LKG".into(),
        RollbackTarget::Version(h) => format!("version {}", hex::encode(h)),
        RollbackTarget::Snapshot(id) => format!("snapshot {}", hex::encode(id)),
    }
}

/// The version record of `hash` in the agent's store, if the agent can run it on its state.
async fn stored_version(
    agent: Principal,
    hash: &[u8],
    st: &store::State,
) -> Result<LkgInfo, WatchdogError> {
    if hash.len() != 32 {
        return Err(WatchdogError::InvalidArgument(
            "a version is named by its 32-byte SHA-256".into(),
        ));
    }
    // A page starting at the hash holds the version first, if it is stored.
    let page = |from: Option<Vec<u8>>| async move {
        let answer: Result<Result<VersionPage, AgentError>, CallError> =
            crate::agent_client::list_versions(agent, from).await;
        match answer {
            Ok(Ok(page)) => Ok(page.versions),
            Ok(Err(e)) => Err(WatchdogError::Refused(format!("list_versions: {e}"))),
            Err(e) => Err(WatchdogError::Refused(format!(
                "the agent does not answer list_versions ({e}); roll back to the LKG or a \
                 snapshot instead"
            ))),
        }
    };
    let found = page(Some(hash.to_vec())).await?;
    let Some(v) = found.into_iter().next().filter(|v| v.hash == hash) else {
        let versions = page(None).await?;
        return Err(WatchdogError::NotFound(format!(
            "version {} in the agent's store; stored: {}",
            hex::encode(hash),
            versions
                .iter()
                .map(|v| format!("{} ({})", v.version, hex::encode(&v.hash)))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let schema = st.agent_health.as_ref().map(|h| h.schema_version);
    let reads = match (v.schema_range, schema) {
        (Some(r), Some(s)) => r.min <= s && s <= r.max,
        _ => false,
    };
    if !reads {
        return Err(WatchdogError::Refused(format!(
            "version {} reads schema {}, the agent's state is at {}: installing it would not \
             keep the state; roll back to a snapshot instead",
            v.version,
            v.schema_range.map_or("(not declared)".into(), |r| format!(
                "{}..={}",
                r.min, r.max
            )),
            schema.map_or("an unknown version".into(), |s| s.to_string())
        )));
    }
    Ok(LkgInfo {
        hash: v.hash.clone(),
        version: v.version.clone(),
        schema_range: v.schema_range,
        size: v.size,
        since: now(),
    })
}
