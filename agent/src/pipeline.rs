//! Service: the upgrade pipeline after validation, driven by timers and by the watchdog.
//!
//! ```text
//! Validated --rehearse (staging)--> Rehearsed --approval--> Approved --arm (watchdog)-->
//!   Armed --> Installing (one-way install_code on itself) --> Booted (new post_upgrade)
//!   --> Committed | RolledBack   (the watchdog's verdict, `complete_upgrade`)
//! Failed: rehearsal failed, the watchdog refused to arm, or install_code did not take effect.
//! ```
//!
//! - [`schedule`] runs [`advance`] in a fresh timer message; proposals, approvals and
//!   post_upgrade call it.
//! - Writes are paused while staging copies the state and from the arm request to the verdict
//!   (`writes`), so the watchdog's snapshot holds every write.
//! - The install is a one-way call (a callback would resume in the new module). If it fails,
//!   the IC keeps the old module, whose [`INSTALL_CHECK_SECS`] timer survives (timers are lost
//!   only by a successful upgrade) and journals `Failed`. The watchdog sees the same from its
//!   side at its deadline.
//! - A sandbox copy ([`sandbox::is_copy`]) never drives the pipeline.

use crate::api::{
    AgentError, AgentInit, AgentUpgradeArg, ArmReceipt, ArmRequest, Autonomy, RehearsalReport,
    RehearsalRequest, UpgradeOutcome, UpgradeRecord, UpgradeState,
};
use crate::{audit, config, journal, sandbox, schema, upgrade, versions, writes};
use candid::Principal;
use canister_api::ic::{self, CallError, management};
use canister_api::staging::StagingError;
use canister_api::watchdog::WatchdogError;
use ic_management_canister_types as mgmt;
use std::cell::Cell;
use std::time::Duration;

/// Seconds after issuing install_code at which the old module, if it still runs, records the
/// install as failed.
pub const INSTALL_CHECK_SECS: u64 = 60;

fn now() -> u64 {
    ic_cdk::api::time()
}

fn me() -> Principal {
    ic_cdk::api::canister_self()
}

fn hash32(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

/// Runs [`advance`] in its own message, soon.
pub fn schedule() {
    if !sandbox::is_copy() {
        ic_cdk_timers::set_timer(Duration::ZERO, advance());
    }
}

thread_local! {
    /// An [`advance`] is running (heap: a new module instance starts with none).
    static ADVANCING: Cell<bool> = const { Cell::new(false) };
}

/// Clears [`ADVANCING`] when an advance ends, also when one of its callbacks traps (ic-cdk
/// drops the future in the cleanup callback, which runs this destructor).
struct Advancing;

impl Drop for Advancing {
    fn drop(&mut self) {
        ADVANCING.with(|a| a.set(false));
    }
}

/// Moves the upgrade in flight as far as it can go without waiting for someone else.
/// Single-flight: two timers firing in one round (a proposal right after post_upgrade
/// scheduled one) would otherwise both rehearse it, and staging's refusal of the second would
/// fail the upgrade. The one running re-reads the journal after every await, so a request made
/// meanwhile is not lost.
pub async fn advance() {
    if sandbox::is_copy() || ADVANCING.with(|a| a.replace(true)) {
        return;
    }
    let _running = Advancing;
    loop {
        let Some(rec) = journal::in_flight().and_then(journal::get) else {
            return;
        };
        let progressed = match rec.state {
            UpgradeState::Validated if rec.rehearsal.is_none() => rehearse(rec).await,
            UpgradeState::Rehearsed if rec.approved_by.is_some() => {
                approve(rec);
                true
            }
            UpgradeState::Approved if writes::current().is_none() => {
                request_arm(rec).await;
                false
            }
            _ => false,
        };
        if !progressed {
            return;
        }
    }
}

/// Ends the record with `state` (terminal), lifts its pause and records the outcome on its
/// version.
fn finish(mut rec: UpgradeRecord, state: UpgradeState, actor: Principal, reason: String) {
    let outcome = journal::state_name(&state).to_string();
    journal::transition(&mut rec, state, now(), actor, reason);
    journal::put(&rec);
    writes::lift(rec.id);
    if let Some(hash) = hash32(&rec.candidate_hash)
        && let Some(mut v) = versions::get(&hash)
    {
        v.outcome = Some(outcome);
        versions::put(hash, v);
    }
    versions::enforce_retention();
}

fn fail(rec: UpgradeRecord, reason: String) {
    finish(rec, UpgradeState::Failed(reason.clone()), me(), reason);
}

/// Rehearses `rec` in staging; `false` if it has to wait (no staging canister configured).
async fn rehearse(rec: UpgradeRecord) -> bool {
    let id = rec.id;
    let Some(staging) = config::get().staging else {
        audit::append(
            now(),
            me(),
            "upgrade.rehearsal_waiting",
            Some(id),
            "no staging canister is configured: the upgrade waits at Validated (every upgrade \
             is rehearsed before it is installed; an operator may reject it)"
                .into(),
        );
        return false;
    };
    let Some(current) = config::markers().running else {
        fail(rec, "the running module is not stored".into());
        return true;
    };
    writes::pause(id, "rehearsal", Some(now() + writes::REHEARSAL_PAUSE_NS));
    audit::append(
        now(),
        me(),
        "upgrade.rehearsal_started",
        Some(id),
        format!("staging {staging}"),
    );
    let request = RehearsalRequest {
        upgrade_id: id,
        current_hash: current.to_vec(),
        candidate_hash: rec.candidate_hash.clone(),
        candidate_schema_range: rec.schema_range,
        budgets: None,
    };
    let answer: Result<Result<RehearsalReport, StagingError>, CallError> =
        ic::call(staging, "rehearse", &request, None).await;
    writes::lift(id);
    // Re-read: an operator may have rejected it meanwhile.
    let Some(mut rec) = journal::get(id).filter(|r| r.state == UpgradeState::Validated) else {
        return true;
    };
    match answer {
        Ok(Ok(report)) if report.passed => {
            let summary = format!(
                "{} probes held on {} bytes of state; post_upgrade {} instructions",
                report.probes.len(),
                report.state_bytes,
                report
                    .post_upgrade_instructions
                    .map_or("?".into(), |i| i.to_string())
            );
            rec.rehearsal = Some(report);
            journal::transition(&mut rec, UpgradeState::Rehearsed, now(), staging, summary);
            journal::put(&rec);
        }
        Ok(Ok(report)) => {
            let why = report
                .first_failure()
                .unwrap_or_else(|| "a probe failed".into());
            rec.rehearsal = Some(report);
            fail(rec, format!("rehearsal failed: {why}"));
        }
        Ok(Err(e)) => fail(rec, format!("staging could not rehearse: {e}")),
        Err(e) => fail(rec, format!("staging could not rehearse: {e}")),
    }
    true
}

fn approve(mut rec: UpgradeRecord) {
    let by = rec.approved_by.unwrap_or_else(me);
    journal::transition(
        &mut rec,
        UpgradeState::Approved,
        now(),
        by,
        format!("approved by {by}"),
    );
    journal::put(&rec);
}

/// The watchdog's `arm` argument for `rec` (`None` when the parent module is unknown).
fn arm_request(
    rec: &UpgradeRecord,
    watchdog: Principal,
    resume: Option<Vec<u8>>,
) -> Option<ArmRequest> {
    let cfg = config::get();
    let parent = rec
        .parent_hash
        .as_deref()
        .and_then(hash32)
        .or(config::markers().running)?;
    let parent_info = versions::get(&parent);
    Some(ArmRequest {
        upgrade_id: rec.id,
        candidate_hash: rec.candidate_hash.clone(),
        candidate_version: rec.version.clone(),
        candidate_schema_range: rec.schema_range,
        parent_hash: parent.to_vec(),
        parent_version: parent_info
            .as_ref()
            .map_or_else(upgrade::build_version, |v| v.version.clone()),
        parent_schema_range: parent_info.and_then(|v| v.schema_range),
        restore_init: AgentInit {
            operators: cfg.operators.clone(),
            watchdog: Some(watchdog),
            staging: cfg.staging,
            autonomy: Autonomy::Manual,
            sandbox: None,
        },
        resume,
    })
}

/// After the agent reinstalled a dead watchdog clean: an upgrade already armed, installing or
/// booted is handed to the new watchdog, which supervises it from where it stands with the
/// snapshot its predecessor took.
pub async fn re_arm(watchdog: Principal) {
    let Some(rec) = journal::in_flight().and_then(journal::get).filter(|r| {
        matches!(
            r.state,
            UpgradeState::Armed | UpgradeState::Installing | UpgradeState::Booted
        )
    }) else {
        return;
    };
    let snapshot = config::markers().armed_snapshot;
    let Some(request) = arm_request(&rec, watchdog, Some(snapshot.unwrap_or_default())) else {
        return;
    };
    let answer: Result<Result<u64, WatchdogError>, CallError> =
        ic::call(watchdog, "arm", &request, None).await;
    audit::append(
        now(),
        watchdog,
        "upgrade.re_armed",
        Some(rec.id),
        format!("the reinstalled watchdog adopts the upgrade: {answer:?}"),
    );
}

async fn request_arm(rec: UpgradeRecord) {
    let id = rec.id;
    let cfg = config::get();
    let Some(watchdog) = cfg.watchdog else {
        return fail(
            rec,
            "no watchdog is configured: nothing could roll back".into(),
        );
    };
    let Some(request) = arm_request(&rec, watchdog, None) else {
        return fail(rec, "the running module is not stored".into());
    };
    writes::pause(id, "upgrade", None);
    let answer: Result<Result<u64, WatchdogError>, CallError> =
        ic::call(watchdog, "arm", &request, None).await;
    let Some(rec) = journal::get(id).filter(|r| r.state == UpgradeState::Approved) else {
        return;
    };
    match answer {
        Ok(Ok(deadline)) => {
            audit::append(
                now(),
                watchdog,
                "upgrade.arm_accepted",
                Some(id),
                format!("the watchdog snapshots the agent; deadline {deadline}"),
            );
        }
        Ok(Err(e)) => fail(rec, format!("the watchdog refused to arm: {e}")),
        Err(e) => fail(rec, format!("the watchdog could not be asked to arm: {e}")),
    }
}

/// The watchdog armed upgrade `receipt.upgrade_id`: journal `Armed`, then `Installing`, and
/// issue the one-way install_code on the agent itself.
pub fn armed(caller: Principal, receipt: ArmReceipt) -> Result<UpgradeRecord, AgentError> {
    let id = receipt.upgrade_id;
    let mut rec = journal::get(id).ok_or_else(|| AgentError::NotFound(format!("upgrade {id}")))?;
    if rec.state != UpgradeState::Approved {
        return Err(AgentError::WrongState {
            id,
            state: journal::state_name(&rec.state).into(),
            reason: "only an approved upgrade can be armed".into(),
        });
    }
    let wasm = hash32(&rec.candidate_hash)
        .and_then(|h| versions::blob(&h))
        .ok_or_else(|| AgentError::NotFound(format!("the candidate module of upgrade {id}")))?;
    config::update_markers(|m| m.armed_snapshot = Some(receipt.snapshot_id.clone()));
    journal::transition(
        &mut rec,
        UpgradeState::Armed,
        now(),
        caller,
        format!(
            "snapshot {}, LKG {}, deadline {}",
            hex::encode(&receipt.snapshot_id),
            hex::encode(&receipt.lkg_hash),
            receipt.deadline
        ),
    );
    let args = mgmt::InstallCodeArgs {
        mode: management::upgrade_mode(),
        canister_id: me(),
        wasm_module: wasm,
        arg: candid::encode_one(Some(AgentUpgradeArg {
            upgrade_id: Some(id),
        }))
        .expect("encoding the upgrade argument"),
        sender_canister_version: None,
    };
    if let Err(e) = management::install_code_oneway(&args) {
        let reason = format!("install_code could not be sent: {e}");
        journal::put(&rec);
        fail(rec, reason.clone());
        return Err(AgentError::CallFailed {
            canister: e.canister,
            method: e.method,
            message: e.message,
        });
    }
    journal::transition(
        &mut rec,
        UpgradeState::Installing,
        now(),
        me(),
        "one-way install_code(upgrade) issued on the agent itself".into(),
    );
    journal::put(&rec);
    ic_cdk_timers::set_timer(Duration::from_secs(INSTALL_CHECK_SECS), install_check(id));
    Ok(rec)
}

/// Runs in the old module only: a successful upgrade drops this timer.
async fn install_check(id: u64) {
    if journal::get(id).is_none_or(|r| r.state != UpgradeState::Installing) {
        return;
    }
    let running = match management::status(me()).await {
        Ok(status) => status.module_hash,
        Err(e) => {
            audit::append(
                now(),
                me(),
                "upgrade.install_check",
                Some(id),
                e.to_string(),
            );
            ic_cdk_timers::set_timer(Duration::from_secs(INSTALL_CHECK_SECS), install_check(id));
            return;
        }
    };
    let Some(rec) = journal::get(id).filter(|r| r.state == UpgradeState::Installing) else {
        return;
    };
    if running.as_deref() == Some(rec.candidate_hash.as_slice()) {
        return; // the candidate runs (this timer outlived it only in theory)
    }
    let reason = format!(
        "install_code did not take effect: the agent still runs {} (the candidate's install \
         trapped or was refused, and the IC kept the old module and its state)",
        running.map_or("no module".into(), hex::encode)
    );
    fail(rec, reason.clone());
    if let Some(watchdog) = config::get().watchdog {
        let told: Result<Result<(), WatchdogError>, CallError> =
            ic::call_args(watchdog, "disarm", &(id, reason), Some(60)).await;
        if let Err(e) = told {
            audit::append(now(), me(), "upgrade.disarm", Some(id), e.to_string());
        }
    }
}

/// In post_upgrade: if this install is the journal's `Installing` upgrade, it booted.
pub fn on_boot(arg: Option<AgentUpgradeArg>) {
    let Some(id) = arg.and_then(|a| a.upgrade_id) else {
        return;
    };
    let Some(mut rec) = journal::get(id).filter(|r| r.state == UpgradeState::Installing) else {
        return;
    };
    journal::transition(
        &mut rec,
        UpgradeState::Booted,
        now(),
        me(),
        format!("post_upgrade ran; schema {}", schema::stored_version()),
    );
    journal::put(&rec);
    if let Some(hash) = hash32(&rec.candidate_hash) {
        config::update_markers(|m| m.running = Some(hash));
    }
}

/// The watchdog's verdict on upgrade `id`. Idempotent: repeating the verdict of a finished
/// upgrade answers its record.
pub fn complete(
    caller: Principal,
    id: u64,
    outcome: UpgradeOutcome,
) -> Result<UpgradeRecord, AgentError> {
    let rec = journal::get(id).ok_or_else(|| AgentError::NotFound(format!("upgrade {id}")))?;
    let state = match &outcome {
        UpgradeOutcome::Committed => UpgradeState::Committed,
        UpgradeOutcome::RolledBack {
            reason,
            incident_id,
        } => UpgradeState::RolledBack(format!("{reason} (incident {incident_id})")),
        UpgradeOutcome::Failed(reason) => UpgradeState::Failed(reason.clone()),
    };
    if rec.state.is_terminal() {
        if journal::state_name(&rec.state) == journal::state_name(&state) {
            writes::lift(id);
            return Ok(rec);
        }
        return Err(AgentError::WrongState {
            id,
            state: journal::state_name(&rec.state).into(),
            reason: "the upgrade already ended".into(),
        });
    }
    if outcome == UpgradeOutcome::Committed && rec.state != UpgradeState::Booted {
        return Err(AgentError::WrongState {
            id,
            state: journal::state_name(&rec.state).into(),
            reason: "only a booted upgrade can be committed".into(),
        });
    }
    let candidate = hash32(&rec.candidate_hash);
    let parent = rec.parent_hash.as_deref().and_then(hash32);
    let reason = match &state {
        UpgradeState::Committed => "probation passed: the candidate is the LKG".to_string(),
        UpgradeState::RolledBack(r) | UpgradeState::Failed(r) => r.clone(),
        _ => unreachable!("outcomes map to terminal states"),
    };
    let committed = state == UpgradeState::Committed;
    let rolled_back = matches!(state, UpgradeState::RolledBack(_));
    finish(rec, state, caller, reason);
    config::update_markers(|m| {
        if committed {
            if m.lkg != candidate {
                m.previous_lkg = m.lkg;
            }
            m.running = candidate;
            m.lkg = candidate;
        } else if rolled_back && parent.is_some() {
            m.running = parent;
        }
    });
    journal::get(id).ok_or_else(|| AgentError::NotFound(format!("upgrade {id}")))
}
