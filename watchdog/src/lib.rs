//! The watchdog canister: supervises the agent's upgrades and heartbeats the agent.
//!
//! - The agent asks it to `arm` an approved upgrade; the watchdog keeps a hash-checked copy of
//!   the LKG module, snapshots the agent (rotating within `max_snapshots`), and tells the agent
//!   to install (`upgrade_armed`). It then verifies the module hash, `health` and version, keeps
//!   the candidate on probation for K healthy heartbeats and commits it as the new LKG, or rolls
//!   back through the restore ladder ([`ladder`]) and records an incident.
//! - Without an upgrade it heartbeats the agent's `health` (bounded-wait) every interval; N
//!   failures in a row start the ladder. The interval is the fast one while anything happens
//!   and the steady one once the agent has been healthy for a while ([`cadence`]).
//!
//! - Operators steer it with `rollback`, `pause`/`resume`, `configure` and `set_operators`
//!   ([`operator`]); the agent reports its repairs of the watchdog with `note_repair`.
//!
//! Layout: [`store`] (stable state), [`supervise`] (the tick and its timer), [`cadence`]
//! (which interval the state calls for), [`ladder`], [`control`] (whether
//! the watchdog still controls the agent), [`operator`],
//! [`agent_client`], [`access`] (who may send what as an ingress update).
//! The interface is `watchdog.did` beside this crate (a test keeps it equal to the code).
//! Controllers: {agent, operators}; the watchdog must be a controller of the agent.

pub mod access;
pub mod agent_client;
pub mod cadence;
pub mod control;
pub mod ladder;
pub mod operator;
pub mod store;
pub mod supervise;

use candid::Principal;
use canister_api::agent::{ModuleChunk, RepairNotice};
use canister_api::cadence::DetectionBounds;
use canister_api::watchdog::{
    ArmPhase, ArmRequest, ArmedUpgrade, EventPage, IncidentPage, RollbackTarget, WatchdogConfig,
    WatchdogError, WatchdogInit, WatchdogStatus,
};
use ic_cdk::{init, post_upgrade, query, update};
use std::time::Duration;

type WatchdogResult<T> = Result<T, WatchdogError>;

#[init]
fn init(arg: WatchdogInit) {
    store::init(store::State {
        agent: arg.agent,
        operators: arg.operators,
        config: arg.config.unwrap_or_default(),
        paused: false,
        lkg: None,
        previous_lkg: None,
        armed: None,
        restore: None,
        consecutive_failures: 0,
        last_heartbeat: None,
        last_schema: None,
        last_digest: None,
        lkg_pending: arg.lkg,
        agent_health: None,
        repairs: 0,
        low_cycles: vec![],
        verdict_attempts: None,
        notice_attempts: None,
        undelivered: None,
        condition: None,
        control_lost: None,
        foreign_module: None,
        healthy_streak: 0,
    });
    supervise::sync_timer();
}

/// Moves a state of the single-cell layout into the split one (`store::adopt_legacy`); timers
/// do not survive an upgrade, so the supervision interval is set again, at the cadence the
/// stored state calls for.
#[post_upgrade]
fn post_upgrade() {
    if store::adopt_legacy() {
        store::event(
            "store.split",
            None,
            "the state moved from one cell into the split layout".into(),
        );
    }
    supervise::sync_timer();
}

/// An ingress update from a caller who may not call the method is refused here, before it
/// executes (`access::ingress_allowed`).
#[ic_cdk::inspect_message]
fn inspect_message() {
    if access::ingress_allowed(&ic_cdk::api::msg_method_name(), ic_cdk::api::msg_caller()) {
        ic_cdk::api::accept_message();
    }
}

fn caller_is_agent(method: &str) -> WatchdogResult<Principal> {
    let caller = ic_cdk::api::msg_caller();
    if caller == store::get().agent {
        Ok(caller)
    } else {
        Err(WatchdogError::Unauthorized {
            caller,
            method: method.into(),
            allowed: "the agent".into(),
        })
    }
}

fn caller_is_operator(method: &str) -> WatchdogResult<Principal> {
    let caller = ic_cdk::api::msg_caller();
    if store::get().operators.contains(&caller) {
        Ok(caller)
    } else {
        Err(WatchdogError::Unauthorized {
            caller,
            method: method.into(),
            allowed: "operators".into(),
        })
    }
}

/// The agent only: supervise upgrade `req.upgrade_id`. Answers the deadline by which the
/// candidate must run; the snapshot and the go-ahead (`upgrade_armed`) follow from a timer.
#[update]
fn arm(req: ArmRequest) -> WatchdogResult<u64> {
    caller_is_agent("arm")?;
    let st = store::get();
    if st.paused {
        return Err(WatchdogError::Paused);
    }
    if let Some(a) = &st.armed {
        if a.upgrade_id == req.upgrade_id {
            return Ok(a.deadline);
        }
        return Err(WatchdogError::Busy {
            upgrade_id: a.upgrade_id,
            reason: format!("{:?}", a.phase),
        });
    }
    if let Some(r) = &st.restore {
        return Err(WatchdogError::Busy {
            upgrade_id: r.upgrade_id.unwrap_or(0),
            reason: format!("restoring the agent (incident {})", r.incident_id),
        });
    }
    if req.candidate_hash.len() != 32 || req.parent_hash.len() != 32 {
        return Err(WatchdogError::InvalidArgument(
            "module hashes are 32 bytes".into(),
        ));
    }
    if req.candidate_hash == req.parent_hash {
        return Err(WatchdogError::InvalidArgument(
            "the candidate is the module already running".into(),
        ));
    }
    let now = ic_cdk::api::time();
    let deadline = now + st.config.arm_window_secs * 1_000_000_000;
    let phase = if let Some(snapshot) = &req.resume {
        // Adopt an upgrade armed by the watchdog before this one: no new snapshot; the LKG is
        // the parent, copied from the agent at the next tick.
        let parent = canister_api::watchdog::LkgInfo {
            hash: req.parent_hash.clone(),
            version: req.parent_version.clone(),
            schema_range: req.parent_schema_range,
            size: 0,
            since: now,
        };
        store::update(|s| {
            if s.lkg.as_ref().map(|l| &l.hash) != Some(&parent.hash) {
                s.lkg_pending = Some(parent);
            }
        });
        store::event(
            "arm.adopted",
            Some(req.upgrade_id),
            format!(
                "upgrade armed by a previous watchdog; snapshot {}",
                hex::encode(snapshot)
            ),
        );
        ArmPhase::AwaitingInstall
    } else {
        ArmPhase::Arming
    };
    // The agent's journal numbers afresh after a restore: an outcome kept under this id is
    // an older upgrade's.
    store::forget_decided(req.upgrade_id);
    store::update(|s| {
        s.consecutive_failures = 0;
        s.healthy_streak = 0;
        s.armed = Some(ArmedUpgrade {
            upgrade_id: req.upgrade_id,
            phase,
            candidate_hash: req.candidate_hash.clone(),
            candidate_version: req.candidate_version.clone(),
            candidate_schema_range: req.candidate_schema_range,
            parent_hash: req.parent_hash.clone(),
            parent_version: req.parent_version.clone(),
            parent_schema_range: req.parent_schema_range,
            snapshot_id: req.resume.clone().filter(|s| !s.is_empty()),
            digest_before: None,
            armed_at: now,
            deadline,
            healthy_heartbeats: 0,
            probation_start: None,
            incident_id: None,
            restore_init: req.restore_init.clone(),
            controllers_before: None,
        })
    });
    store::event(
        "arm.accepted",
        Some(req.upgrade_id),
        format!(
            "candidate {} ({}), parent {}, deadline {deadline}",
            hex::encode(&req.candidate_hash),
            req.candidate_version,
            hex::encode(&req.parent_hash)
        ),
    );
    ic_cdk_timers::set_timer(Duration::ZERO, supervise::tick());
    // Fast at once: the probation that follows is heartbeat by heartbeat.
    supervise::sync_timer();
    Ok(deadline)
}

/// The agent only: its install of upgrade `id` did not take effect (it still runs the parent).
/// The watchdog checks the module hash before it stops supervising.
#[update]
async fn disarm(id: u64, reason: String) -> WatchdogResult<()> {
    caller_is_agent("disarm")?;
    supervise::keep_timer_armed();
    let st = store::get();
    let Some(a) = st.armed.filter(|a| a.upgrade_id == id) else {
        return Ok(()); // already disarmed (idempotent)
    };
    if a.phase != ArmPhase::AwaitingInstall {
        return Err(WatchdogError::Refused(format!(
            "upgrade {id} is {:?}; only an upgrade awaiting its install can be disarmed",
            a.phase
        )));
    }
    let running = canister_api::ic::management::status(st.agent)
        .await
        .map_err(|e| WatchdogError::Refused(e.to_string()))?
        .module_hash;
    if running.as_ref() != Some(&a.parent_hash) {
        return Err(WatchdogError::Refused(format!(
            "the agent runs {}, not the parent: supervision continues",
            running.map_or("no module".into(), hex::encode)
        )));
    }
    store::update(|s| {
        if s.armed.as_ref().is_some_and(|x| x.upgrade_id == id) {
            s.armed = None;
        }
    });
    store::event("arm.disarmed", Some(id), reason);
    Ok(())
}

/// Public: the agent's supervision at a glance.
#[query]
fn status() -> WatchdogStatus {
    operator::status()
}

// ---- operators ---------------------------------------------------------------------------------

/// Operators: restore the agent to `target` (the LKG, a version stored in the agent by hash, or
/// a snapshot by id). Answers the incident that records it; the work runs from a timer, and
/// `status.restore` and `incidents` show its progress.
#[update]
async fn rollback(target: RollbackTarget) -> WatchdogResult<u64> {
    let caller = caller_is_operator("rollback")?;
    let answer = operator::rollback(caller, target).await;
    supervise::sync_timer();
    answer
}

/// Operators: stop heartbeats, arming and restores until `resume` (an armed upgrade waits).
#[update]
fn pause() -> WatchdogResult<()> {
    let caller = caller_is_operator("pause")?;
    operator::set_paused(caller, true);
    supervise::keep_timer_armed();
    Ok(())
}

/// Operators: resume supervision.
#[update]
fn resume() -> WatchdogResult<()> {
    let caller = caller_is_operator("resume")?;
    operator::set_paused(caller, false);
    supervise::sync_timer();
    Ok(())
}

/// Operators: change the supervision settings; answers the settings in force.
#[update]
fn configure(config: WatchdogConfig) -> WatchdogResult<WatchdogConfig> {
    let caller = caller_is_operator("configure")?;
    operator::configure(caller, config)?;
    supervise::sync_timer();
    Ok(store::get().config)
}

/// Operators: replace the operator list (not empty, no anonymous principal, at most 20).
#[update]
fn set_operators(operators: Vec<Principal>) -> WatchdogResult<Vec<Principal>> {
    let caller = caller_is_operator("set_operators")?;
    let answer = operator::set_operators(caller, operators);
    supervise::keep_timer_armed();
    answer
}

/// The agent only: it repaired the watchdog (journaled here too).
#[update]
fn note_repair(notice: RepairNotice) -> WatchdogResult<()> {
    caller_is_agent("note_repair")?;
    operator::note_repair(notice);
    supervise::keep_timer_armed();
    Ok(())
}

/// The agent and operators: a piece of a module the watchdog holds (its LKG or previous LKG)
/// by hash, from `offset` to the end of a 1 MiB piece. The agent takes its running module back
/// this way when a clean reinstall emptied its version store (the agent's `handback`); an
/// operator may download the LKG with it.
#[query]
fn lkg_chunk(hash: serde_bytes::ByteBuf, offset: u64) -> WatchdogResult<ModuleChunk> {
    let caller = ic_cdk::api::msg_caller();
    let st = store::get();
    if caller != st.agent && !st.operators.contains(&caller) {
        return Err(WatchdogError::Unauthorized {
            caller,
            method: "lkg_chunk".into(),
            allowed: "the agent and operators".into(),
        });
    }
    store::module_piece(&hash, offset)
}

/// Public: a page of incidents with id >= `from`: at most `limit` (capped at 10,000) and 1 MiB
/// of candid; `next_from` continues it.
#[query]
fn incidents(from: u64, limit: u32) -> IncidentPage {
    store::incidents(from, limit)
}

/// Public: events with `from <= seq < to`: at most 200 and 1 MiB of candid per page;
/// `next_from` continues it.
#[query]
fn events(from: u64, to: u64) -> EventPage {
    store::events(from, to)
}

/// Public: the detection bound of each cadence with the current settings, in seconds, and the
/// cadence in force (see `canister_api::cadence`).
#[query]
fn detection_bound_secs() -> DetectionBounds {
    let st = store::get();
    st.config.beat().bounds(cadence::of(&st))
}

/// The generated candid service (`__export_service`, and `get_candid_pointer` for dfx).
#[allow(missing_docs)]
mod candid_export {
    use super::*;
    ic_cdk::export_candid!();

    /// `access::METHODS` names every method of the service with its kind, and nothing else.
    #[test]
    fn the_access_table_covers_the_exported_service() {
        let exported = canister_api::service::methods(&__export_service());
        let mut table: Vec<(String, access::Kind)> = access::METHODS
            .iter()
            .map(|(name, kind, _)| (name.to_string(), *kind))
            .collect();
        table.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(table, exported);
    }

    /// The checked-in `watchdog.did` is the interface the code exports.
    #[test]
    fn checked_in_did_matches_the_exported_service() {
        canister_api::assert_did_current(
            "watchdog",
            concat!(env!("CARGO_MANIFEST_DIR"), "/watchdog.did"),
            &__export_service(),
        );
    }
}
