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
//!   post_upgrade call it. [`advance`] is single-flight: while one runs (a rehearsal awaits
//!   staging), another returns at once, and the running one re-reads the record after every
//!   await, so an approval that arrives mid-rehearsal is taken up by it.
//! - Writes are paused while staging copies the state and from the arm request to the verdict
//!   (`writes`), so the watchdog's snapshot holds every write. Each pause is a lease with an end;
//!   a finished record lifts its pause wherever it ends (`journal::put`).
//! - Before the install, the agent drains its outgoing calls: once the watchdog armed the
//!   upgrade ([`quiet`]), its heartbeats and self-tests start no call, and the install is issued
//!   only when no call is in flight (a callback that ran after the upgrade would run in the new
//!   module), or the upgrade fails after [`DRAIN_LIMIT_SECS`].
//! - The install is a one-way call (a callback would resume in the new module). If it fails,
//!   the IC keeps the old module, whose [`INSTALL_CHECK_SECS`] timer survives (timers are lost
//!   only by a successful upgrade) and journals `Failed`. The watchdog sees the same from its
//!   side at its deadline.
//! - A verdict that meets a record another path already ended (an operator rejected it while
//!   it was being armed) is reconciled: the record keeps its state, the markers follow what the
//!   watchdog says runs, and the verdict is acknowledged, so the watchdog stops sending it.
//! - A restore by the watchdog ends the upgrade the restored journal shows in flight
//!   ([`end_after_restore`]): a snapshot of an armed upgrade would otherwise keep it in flight,
//!   and writes paused, for good. One the watchdog had decided ends as it had ended (the
//!   restore's notice carries the decided outcomes), so a terminal record never changes.
//! - A sandbox copy ([`sandbox::is_copy`]) never drives the pipeline.

use crate::api::{
    AgentError, AgentInit, AgentUpgradeArg, ArmReceipt, ArmRequest, Autonomy, RehearsalReport,
    RehearsalRequest, UpgradeOutcome, UpgradeRecord, UpgradeSource, UpgradeState,
};
use crate::handback::{self, RunningModule};
use crate::{audit, config, journal, sandbox, schema, versions, writes};
use candid::Principal;
use canister_api::cdk::{Busy, me, now};
use canister_api::hash32;
use canister_api::ic::{self, CallError, management};
use canister_api::staging::StagingError;
use canister_api::watchdog::WatchdogError;
use ic_management_canister_types as mgmt;
use std::cell::Cell;
use std::time::Duration;

/// Seconds after issuing install_code at which the old module, if it still runs, records the
/// install as failed.
pub const INSTALL_CHECK_SECS: u64 = 60;
/// Attempts of that check (canister_status may fail) before the install is journaled failed
/// anyway: the old module still running is proof enough.
pub const INSTALL_CHECKS: u32 = 5;
/// Longest the install waits for outgoing calls to end: the longest bounded wait (300 s) and a
/// minute.
pub const DRAIN_LIMIT_SECS: u64 = 360;
/// Retries of a rehearsal that staging refuses as busy, a minute apart.
pub const STAGING_BUSY_RETRIES: u32 = 10;
/// Seconds between looks at the handback while a rehearsal waits for the running module
/// (`handback`, which ends within its own bound of attempts).
pub const HANDBACK_POLL_SECS: u64 = 10;
/// A running [`advance`] older than this is considered dead (its message trapped after an
/// await without running the cleanup).
const ADVANCE_EXPIRY_NS: u64 = 30 * 60 * 1_000_000_000;

thread_local! {
    /// Since when an [`advance`] runs, if one does.
    static ADVANCING: Cell<Option<u64>> = const { Cell::new(None) };
    /// The upgrade whose wait for the handback is in the audit log already.
    static WAIT_LOGGED: Cell<u64> = const { Cell::new(0) };
    /// Staging's `Busy` answers to the upgrade in flight: (upgrade id, how many).
    static BUSY_ANSWERS: Cell<(u64, u32)> = const { Cell::new((0, 0)) };
}

/// Runs [`advance`] in its own message, soon.
pub fn schedule() {
    if !sandbox::is_copy() {
        ic_cdk_timers::set_timer(Duration::ZERO, advance());
    }
}

/// Whether the agent is about to install itself (the upgrade in flight is `Armed` or
/// `Installing`): then it starts no outgoing call.
pub fn quiet() -> Option<u64> {
    journal::installing()
}

/// Moves the upgrade in flight as far as it can go without waiting for someone else. One at a
/// time: a second call while one runs returns at once.
pub async fn advance() {
    if sandbox::is_copy() {
        return;
    }
    let t = now();
    // Mutant (issue 12 item 3 reverted): any number of advances run at once.
    if ADVANCING
        .with(|a| a.get())
        .is_some_and(|since| t < since + ADVANCE_EXPIRY_NS)
        && !cfg!(feature = "mutant-single-flight")
    {
        return;
    }
    let _advancing = Busy::hold(&ADVANCING, Some(t));
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

/// Ends the record with `state` (terminal; storing it lifts its pause) and records the outcome
/// on its version.
fn finish(mut rec: UpgradeRecord, state: UpgradeState, actor: Principal, reason: String) {
    let outcome = journal::state_name(&state).to_string();
    journal::transition(&mut rec, state, now(), actor, reason);
    journal::put(&rec);
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
    // Staging installs the running module first: its bytes must be stored, and be the module
    // the IC runs (a clean reinstall empties the store: the handback fetches it back).
    let current = match handback::running_module("a release needs the running module").await {
        RunningModule::Stored(hash) => hash,
        RunningModule::Waiting(why) => {
            if WAIT_LOGGED.with(|w| w.replace(id)) != id {
                audit::append(
                    now(),
                    me(),
                    "upgrade.rehearsal_waiting",
                    Some(id),
                    format!("{why}; the rehearsal waits for it"),
                );
            }
            ic_cdk_timers::set_timer(Duration::from_secs(HANDBACK_POLL_SECS), advance());
            return false;
        }
        RunningModule::Unavailable(why) => {
            if let Some(rec) = journal::get(id).filter(|r| r.state == UpgradeState::Validated) {
                fail(rec, why);
            }
            return true;
        }
    };
    // Re-read: an operator may have rejected it meanwhile.
    let Some(rec) =
        journal::get(id).filter(|r| r.state == UpgradeState::Validated && r.rehearsal.is_none())
    else {
        return true;
    };
    // The IC runs another module than the one the upgrade was made against (installed outside
    // the pipeline, or restored, since the proposal): a patch was built on the wrong bytes, a
    // release checked against the wrong interface. It ends here, before a snapshot is taken.
    if let Some(parent) = rec.parent_hash.as_deref().and_then(hash32)
        && parent != current
    {
        let redo = match rec.source {
            UpgradeSource::Release => {
                "propose the release again: it is then checked against the module that runs"
            }
            _ => "ask for the patch again: it is then built on the module that runs",
        };
        let reason = format!(
            "the agent runs {}, not {}, the module this upgrade was made against (installed \
             outside the pipeline or restored since the proposal): {redo}",
            hex::encode(current),
            hex::encode(parent)
        );
        fail(rec, reason);
        return true;
    }
    writes::pause(id, "rehearsal", writes::REHEARSAL_PAUSE_NS);
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
    writes::lift_kind(id, "rehearsal");
    // Re-read: an operator may have rejected it meanwhile.
    let Some(mut rec) = journal::get(id).filter(|r| r.state == UpgradeState::Validated) else {
        return true;
    };
    if let Ok(Err(StagingError::Busy { upgrade_id, since })) = &answer {
        let (seen_for, count) = BUSY_ANSWERS.with(|b| b.get());
        let count = if seen_for == id { count + 1 } else { 1 };
        BUSY_ANSWERS.with(|b| b.set((id, count)));
        if count <= STAGING_BUSY_RETRIES {
            audit::append(
                now(),
                staging,
                "upgrade.rehearsal_retry",
                Some(id),
                format!(
                    "staging is busy with upgrade {upgrade_id} since {since}: retry {count} of \
                     {STAGING_BUSY_RETRIES} in 60 s"
                ),
            );
            ic_cdk_timers::set_timer(Duration::from_secs(60), advance());
            return false;
        }
    }
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
            .map_or_else(schema::build_version, |v| v.version.clone()),
        parent_schema_range: parent_info.and_then(|v| v.schema_range),
        restore_init: AgentInit {
            operators: cfg.operators.clone(),
            watchdog: Some(watchdog),
            staging: cfg.staging,
            autonomy: Autonomy::Manual,
            sandbox: None,
            turn_loop: Some(crate::loop_state::restore_init()),
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
    writes::pause(id, "upgrade", writes::UPGRADE_LEASE_NS);
    // The controllers of this moment are what the candidate must keep: its self-test fails it
    // if one of them is gone (`selftest`).
    if let Ok(status) = management::status(me()).await {
        config::update_markers(|m| m.controllers_seen = Some(status.settings.controllers));
    }
    // Re-read: an operator may have rejected it meanwhile (which lifted the pause).
    if journal::get(id).is_none_or(|r| r.state != UpgradeState::Approved) {
        return;
    }
    let answer: Result<Result<u64, WatchdogError>, CallError> =
        ic::call(watchdog, "arm", &request, None).await;
    // Re-read: an operator may have rejected it meanwhile (which lifted the pause), or the
    // watchdog's go-ahead may have arrived already.
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

/// The watchdog armed upgrade `receipt.upgrade_id`: journal `Armed`, renew the write pause, and
/// install the candidate once no outgoing call is in flight ([`drain_then_install`]).
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
    if hash32(&rec.candidate_hash)
        .and_then(|h| versions::get(&h))
        .is_none()
    {
        return Err(AgentError::NotFound(format!(
            "the candidate module of upgrade {id}"
        )));
    }
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
    journal::put(&rec);
    writes::pause(id, "upgrade", writes::UPGRADE_LEASE_NS);
    let since = now();
    ic_cdk_timers::set_timer(Duration::ZERO, async move {
        drain_then_install(id, since, false)
    });
    Ok(rec)
}

/// Issues the install of upgrade `id` (still `Armed`) once no outgoing call is in flight;
/// checks again every second until [`DRAIN_LIMIT_SECS`] after `since`, then fails the upgrade.
/// The first wait is audited (`announced` afterwards).
fn drain_then_install(id: u64, since: u64, announced: bool) {
    let Some(rec) = journal::get(id).filter(|r| r.state == UpgradeState::Armed) else {
        return;
    };
    let in_flight = ic::calls_in_flight();
    // Mutant (issue 12 item 7 reverted): the install goes out with calls in flight.
    if in_flight == 0 || cfg!(feature = "mutant-drain") {
        return install(rec);
    }
    let waited = now().saturating_sub(since);
    if waited >= DRAIN_LIMIT_SECS * 1_000_000_000 {
        let reason = format!(
            "{in_flight} outgoing call(s) were still in flight {DRAIN_LIMIT_SECS} s after the \
             watchdog armed the upgrade; the install was not issued (their callbacks would run \
             in the new module)"
        );
        fail(rec, reason.clone());
        ic_cdk_timers::set_timer(Duration::ZERO, tell_disarm(id, reason));
        return;
    }
    if !announced {
        audit::append(
            now(),
            me(),
            "upgrade.draining",
            Some(id),
            format!("{in_flight} outgoing call(s) in flight: the install waits for them to end"),
        );
    }
    ic_cdk_timers::set_timer(Duration::from_secs(1), async move {
        drain_then_install(id, since, true)
    });
}

/// Issues the one-way install_code of `rec`'s candidate on the agent itself and journals
/// `Installing`.
fn install(mut rec: UpgradeRecord) {
    let id = rec.id;
    let Some(wasm) = hash32(&rec.candidate_hash).and_then(|h| versions::blob(&h)) else {
        return fail(
            rec,
            format!("the candidate module of upgrade {id} is missing"),
        );
    };
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
        return fail(rec, format!("install_code could not be sent: {e}"));
    }
    journal::transition(
        &mut rec,
        UpgradeState::Installing,
        now(),
        me(),
        "one-way install_code(upgrade) issued on the agent itself; no call in flight".into(),
    );
    journal::put(&rec);
    ic_cdk_timers::set_timer(
        Duration::from_secs(INSTALL_CHECK_SECS),
        install_check(id, 1),
    );
}

/// Tells the watchdog that upgrade `id` will not be installed (it checks that the parent still
/// runs, and stops supervising).
async fn tell_disarm(id: u64, reason: String) {
    if let Some(watchdog) = config::get().watchdog {
        let told: Result<Result<(), WatchdogError>, CallError> =
            ic::call_args(watchdog, "disarm", &(id, reason), Some(60)).await;
        if let Err(e) = told {
            audit::append(now(), me(), "upgrade.disarm", Some(id), e.to_string());
        }
    }
}

/// Runs in the old module only: a successful upgrade drops this timer. Attempt `attempt` of
/// [`INSTALL_CHECKS`].
async fn install_check(id: u64, attempt: u32) {
    if journal::get(id).is_none_or(|r| r.state != UpgradeState::Installing) {
        return;
    }
    let running = match management::status(me()).await {
        Ok(status) => Some(status.module_hash),
        Err(e) if attempt < INSTALL_CHECKS => {
            audit::append(
                now(),
                me(),
                "upgrade.install_check",
                Some(id),
                format!("attempt {attempt} of {INSTALL_CHECKS}: {e}"),
            );
            ic_cdk_timers::set_timer(
                Duration::from_secs(INSTALL_CHECK_SECS),
                install_check(id, attempt + 1),
            );
            return;
        }
        // This timer survives only if the install did not take effect: the old module runs.
        Err(_) => None,
    };
    let Some(rec) = journal::get(id).filter(|r| r.state == UpgradeState::Installing) else {
        return;
    };
    if running
        .as_ref()
        .is_some_and(|r| r.as_deref() == Some(rec.candidate_hash.as_slice()))
    {
        return; // the candidate runs (this timer outlived it only in theory)
    }
    let reason = format!(
        "install_code did not take effect: the agent still runs {} (the candidate's install \
         trapped or was refused, and the IC kept the old module and its state)",
        match running {
            Some(Some(h)) => hex::encode(h),
            Some(None) => "no module".into(),
            None => "its old module (canister_status kept failing)".into(),
        }
    );
    fail(rec, reason.clone());
    tell_disarm(id, reason).await;
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

/// The terminal state a verdict of the watchdog gives an upgrade.
fn state_of(outcome: &UpgradeOutcome) -> UpgradeState {
    match outcome {
        UpgradeOutcome::Committed => UpgradeState::Committed,
        UpgradeOutcome::RolledBack {
            reason,
            incident_id,
        } => UpgradeState::RolledBack(format!("{reason} (incident {incident_id})")),
        UpgradeOutcome::Failed(reason) => UpgradeState::Failed(reason.clone()),
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
    let state = state_of(&outcome);
    let candidate = hash32(&rec.candidate_hash);
    let parent = rec.parent_hash.as_deref().and_then(hash32);
    if rec.state.is_terminal() {
        writes::lift(id);
        if journal::state_name(&rec.state) != journal::state_name(&state) {
            // Another path ended it first (an operator's rejection while it was being armed):
            // the record keeps its state; the markers follow what the watchdog says runs.
            reconcile_markers(&state, candidate, parent);
            audit::append(
                now(),
                caller,
                "upgrade.verdict_reconciled",
                Some(id),
                format!(
                    "the watchdog's verdict {} met the record {}: acknowledged, the record \
                     keeps its state",
                    journal::state_name(&state),
                    journal::state_name(&rec.state)
                ),
            );
        }
        return Ok(rec);
    }
    if outcome == UpgradeOutcome::Committed && rec.state != UpgradeState::Booted {
        return Err(AgentError::WrongState {
            id,
            state: journal::state_name(&rec.state).into(),
            reason: "only a booted upgrade can be committed".into(),
        });
    }
    let reason = match &state {
        UpgradeState::Committed => "probation passed: the candidate is the LKG".to_string(),
        UpgradeState::RolledBack(r) | UpgradeState::Failed(r) => r.clone(),
        _ => unreachable!("outcomes map to terminal states"),
    };
    reconcile_markers(&state, candidate, parent);
    finish(rec, state, caller, reason);
    journal::get(id).ok_or_else(|| AgentError::NotFound(format!("upgrade {id}")))
}

/// The watchdog restored the agent at `restored_at` (a ladder rung or an operator's rollback):
/// an upgrade that the journal shows in flight and that began before the restore cannot go on.
/// A snapshot taken when an upgrade was armed holds that upgrade in flight with writes paused,
/// even when the upgrade ended since; the calls and the arm it waited for were not restored
/// with it, so nothing would ever end it. It ends here. An upgrade the watchdog had decided
/// (`decided`, from the restore's notice) ends as it had ended, so a terminal record never
/// changes: its outcome and reason are the verdict's, as `complete` recorded them; the
/// markers follow the restored module (`supervision::note_restored`), not the verdict. Only an
/// upgrade that reached approval takes a decided outcome (an arm-time snapshot holds it
/// `Approved`: the go-ahead follows the snapshot); the watchdog forgets an outcome kept under
/// an id when it arms that id again (the journal numbers afresh after a restore), so an older
/// upgrade's outcome cannot end an armed one. Any other ends `RolledBack` once it had reached
/// approval (the candidate may have run; the restore undid it), `Failed` before (propose it
/// again). Ending it lifts its write pause (`journal::put`); a pause left by an upgrade that
/// is not in flight is lifted too. Returns the upgrade ended, if any.
pub fn end_after_restore(
    watchdog: Principal,
    restored_at: u64,
    what: &str,
    decided: &[(u64, UpgradeOutcome)],
) -> Option<u64> {
    // Mutant (the snapshot-rollback fix reverted): the restored upgrade stays in flight.
    if cfg!(feature = "mutant-restore-ends-upgrade") {
        return None;
    }
    let ended = journal::in_flight()
        .and_then(journal::get)
        .filter(|rec| rec.created_at <= restored_at)
        .map(|rec| {
            let id = rec.id;
            // An arm-time snapshot is taken before the go-ahead: its record is `Approved`.
            let armed = matches!(
                rec.state,
                UpgradeState::Approved
                    | UpgradeState::Armed
                    | UpgradeState::Installing
                    | UpgradeState::Booted
            );
            let verdict = decided
                .iter()
                .find(|(d, _)| *d == id)
                .filter(|_| armed)
                .map(|(_, outcome)| outcome);
            if let Some(outcome) = verdict {
                let state = state_of(outcome);
                let reason = format!(
                    "the watchdog restored the agent ({what}) to a state from before this \
                     upgrade ended; it ends {} again, as the watchdog had decided",
                    journal::state_name(&state)
                );
                finish(rec, state, watchdog, reason);
                return id;
            }
            let reason = format!(
                "the watchdog restored the agent ({what}) to a module and state from before this \
                 upgrade could finish; propose it again if it is still wanted"
            );
            let state = match rec.state {
                UpgradeState::Approved
                | UpgradeState::Armed
                | UpgradeState::Installing
                | UpgradeState::Booted => UpgradeState::RolledBack(reason.clone()),
                _ => UpgradeState::Failed(reason.clone()),
            };
            finish(rec, state, watchdog, reason);
            id
        });
    if let Some(pause) = config::markers().writes_paused
        && journal::get(pause.upgrade_id).is_none_or(|r| r.state.is_terminal())
    {
        writes::lift(pause.upgrade_id);
    }
    ended
}

/// The running module (and LKG) after a verdict: the candidate when committed, the parent when
/// rolled back, unchanged when the candidate never ran.
fn reconcile_markers(state: &UpgradeState, candidate: Option<[u8; 32]>, parent: Option<[u8; 32]>) {
    config::update_markers(|m| match state {
        UpgradeState::Committed => {
            if m.lkg != candidate {
                m.previous_lkg = m.lkg;
            }
            m.running = candidate;
            m.lkg = candidate;
        }
        UpgradeState::RolledBack(_) if parent.is_some() => m.running = parent,
        _ => {}
    });
}
