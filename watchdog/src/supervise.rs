//! Service: one supervision step per tick (an ic-cdk-timers interval at the cadence the state
//! calls for, [`sync_timer`], re-armed in post_upgrade). Each step reads the state, does one phase's work and writes its progress
//! after every await, so a step that traps half-way is resumed by the next tick.
//!
//! ```text
//! no upgrade armed:  heartbeat (health, canister_status) -> N code failures in a row -> ladder
//! Arming:            running = parent (canister_status) -> LKG copy (hash-checked) -> digest
//!                    -> stop -> snapshot -> start -> upgrade_armed
//! AwaitingInstall:   module hash = candidate -> Probation; = parent after the deadline -> Failed
//! Probation:         K healthy heartbeats (module, controllers, version, health, canary write)
//!                    -> Committing; N code failures in a row -> restore ladder
//! Committing:        candidate fetched and hash-checked -> verdict accepted by the agent
//!                    -> new LKG; N code failures in a row -> restore ladder
//! ```
//!
//! Failures are classified (`canister_api::failure`): only the code's own (a trap, a reject, a
//! hang, an unhealthy answer, a broken write, changed controllers) count towards the ladder. A
//! stopped or stopping agent, one out of cycles, and the network raise `status.alerts` (the
//! agent's `condition`) and are never rolled back: canister_status says whether the agent is
//! stopped, so an operator's stop is told apart from a trap. A watchdog that is no longer a
//! controller of the agent says so (`control_lost`), and a restore waits for control.
//!
//! In steady state each tick also reads canister_status: a module the IC runs that is not the
//! LKG was installed outside the pipeline (`agent.out_of_band`); the watchdog adopts it as the
//! LKG once the agent stores it as its running module, so a later restore does not undo it.
//!
//! Verdicts to the agent (`complete_upgrade`) and notices of restores (`note_repair`) are
//! queued and retried every tick, at most [`MAX_DELIVERIES`] times each; one given up is an
//! event and an alert. The commit's own verdict is not queued: the candidate becomes the LKG
//! only once it accepted it, and a candidate that cannot take it is rolled back.
//!
//! The watchdog copies its LKG module from the agent when it has none: the record it was
//! installed with (`WatchdogInit.lkg`, after the agent repaired it), or else the agent's running
//! module once the agent answers healthy. No heartbeat is sent while the watchdog's balance is
//! under `cycles_reserve`; balances under `cycles_floor` are logged once and shown in `status`.

use crate::agent_client::BeatFailure;
use crate::control::{lost_control, regained_control};
use crate::store::{self, Restore, State};
use crate::{agent_client, ladder};
use candid::Principal;
use canister_api::agent::{Health, StateDigest, UpgradeOutcome};
use canister_api::cadence::Cadence;
use canister_api::cdk::{Busy, now};
use canister_api::failure::{Failure, not_a_controller};
use canister_api::ic::management;
use canister_api::watchdog::{
    ArmPhase, ArmReceipt, ArmedUpgrade, Heartbeat, Incident, LadderStep, LkgInfo, RollbackTarget,
};
use ic_management_canister_types::CanisterStatusType;
use std::cell::Cell;

/// A tick older than this is considered dead (it trapped after an await).
const BUSY_EXPIRY_NS: u64 = 10 * 60 * 1_000_000_000;
/// Attempts to deliver one verdict or notice (one per tick) before it is given up.
#[cfg(not(feature = "mutant-verdict-bound"))]
pub const MAX_DELIVERIES: u32 = 60;
/// Mutant (issue 12 item 5 reverted): deliveries are retried without bound.
#[cfg(feature = "mutant-verdict-bound")]
pub const MAX_DELIVERIES: u32 = u32::MAX;

thread_local! {
    static BUSY_SINCE: Cell<Option<u64>> = const { Cell::new(None) };
    /// The supervision interval: its timer, its period and the cadence it was set for.
    static TIMER: Cell<Option<(ic_cdk_timers::TimerId, u64, Cadence)>> = const { Cell::new(None) };
}

/// (Re)arms the supervision interval at the cadence the stored state calls for
/// ([`crate::cadence`]); does nothing while the timer already runs at that period. Called in
/// init and post_upgrade (timers are lost on an upgrade), by the endpoints that change the
/// cadence (`arm`, `rollback`, `resume`, `configure`), as soon as a heartbeat is recorded (a
/// miss in steady state switches to the fast cadence at once) and at the end of every tick.
/// An interval re-armed starts from now: a tick in flight finishes, and its end finds the
/// timer already at the period the state calls for.
///
/// It also re-arms a global timer that a trap in `canister_global_timer` left disarmed
/// ([`canister_api::cdk::rearm_lost_global_timer`]): then no tick would ever run again. Every
/// update an operator or the agent is allowed to call ends here, so supervision resumes in the
/// round after the first such call (`timer.rearmed` event); while the agent runs, its
/// `stalled()` check repairs a watchdog whose heartbeats stopped even if nobody calls.
pub fn sync_timer() {
    set_interval();
    keep_timer_armed();
}

/// Re-arms the global timer if a trapped `canister_global_timer` left it disarmed (see
/// [`sync_timer`]); the updates that do not change the cadence call only this.
pub fn keep_timer_armed() {
    if canister_api::cdk::rearm_lost_global_timer() {
        store::event(
            "timer.rearmed",
            None,
            "the global timer was disarmed (a trap in canister_global_timer): set again, \
             supervision resumes"
                .into(),
        );
    }
}

fn set_interval() {
    let st = store::get();
    let cadence = crate::cadence::of(&st);
    let interval = st.config.beat().interval_of(cadence).max(1);
    let current = TIMER.with(|t| t.get());
    if current.is_some_and(|(_, period, _)| period == interval) {
        return;
    }
    if let Some((old, _, before)) = current {
        ic_cdk_timers::clear_timer(old);
        if before != cadence {
            store::event(
                "cadence",
                None,
                format!("{before:?} -> {cadence:?}: a heartbeat every {interval} s"),
            );
        }
    }
    // A plain interval, not `set_timer_interval_serial`, which after a long gap in time
    // dispatches one self-call per missed period (see the agent's supervision::start); `tick`
    // returns at once while another run is under way.
    let id = ic_cdk_timers::set_timer_interval(std::time::Duration::from_secs(interval), tick);
    TIMER.with(|t| t.set(Some((id, interval, cadence))));
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
    // Cleared also when a callback traps, so the next tick resumes the work instead of waiting
    // for [`BUSY_EXPIRY_NS`].
    let _busy = Busy::hold(&BUSY_SINCE, Some(t));
    step().await;
    deliver_verdicts().await;
    sync_timer();
}

async fn step() {
    let st = store::get();
    if st.paused {
        return;
    }
    if st.lkg_pending.is_some() {
        ensure_lkg().await;
    }
    if st.restore.is_some() {
        return ladder::run().await;
    }
    match st.armed.as_ref().map(|a| a.phase.clone()) {
        None => {
            heartbeat(&st).await;
            ensure_lkg().await;
        }
        Some(ArmPhase::Arming) => arm(&st).await,
        Some(ArmPhase::AwaitingInstall | ArmPhase::Probation) => verify(&st).await,
        Some(ArmPhase::Committing) => commit(&st).await,
        Some(ArmPhase::RollingBack) => {} // the restore record drives it
    }
}

/// Copies the LKG module when the watchdog holds none (see the module doc).
async fn ensure_lkg() {
    let st = store::get();
    if st.lkg_pending.is_none() && (st.lkg.is_some() || st.armed.is_some() || st.restore.is_some())
    {
        return;
    }
    let (info, source) = match (&st.lkg_pending, &st.agent_health) {
        (Some(pending), _) => (pending.clone(), "the record it was installed with"),
        (None, Some(h)) if st.consecutive_failures == 0 => {
            let Some(hash) = h.running_module_hash.clone() else {
                return;
            };
            let info = LkgInfo {
                hash,
                version: h.version.clone(),
                schema_range: Some(h.schema_range),
                size: 0,
                since: now(),
            };
            (info, "the agent's running module")
        }
        _ => return,
    };
    if st.lkg_pending.is_none() {
        // The running module must be what the IC reports, not only what the agent says.
        match management::status(st.agent).await {
            Ok(s) if s.module_hash.as_ref() == Some(&info.hash) => {}
            Ok(s) => {
                return store::event(
                    "lkg.adopt_skipped",
                    None,
                    format!(
                        "the agent reports {} but the IC runs {}",
                        hex::encode(&info.hash),
                        s.module_hash.map_or("no module".into(), hex::encode)
                    ),
                );
            }
            Err(e) => return store::event("lkg.adopt_skipped", None, e.to_string()),
        }
    }
    match agent_client::module(st.agent, &info.hash).await {
        Ok(bytes) => {
            let info = LkgInfo {
                size: bytes.len() as u64,
                ..info
            };
            store::set_lkg(info.clone(), &bytes, false);
            store::update(|s| s.lkg_pending = None);
            store::event(
                "lkg.copied",
                None,
                format!(
                    "LKG {} ({}, {} bytes) copied from {source} and hash-checked",
                    info.version,
                    hex::encode(&info.hash),
                    info.size
                ),
            );
        }
        Err(e) => store::event("lkg.copy_failed", None, e),
    }
}

/// Logs a balance crossing the floor (once per crossing, each way).
fn watch_cycles(who: &str, balance: u128) {
    let st = store::get();
    let floor = st.config.cycles_floor;
    let low = balance < floor;
    let flagged = st.low_cycles.iter().any(|w| w == who);
    if low != flagged {
        store::update(|s| {
            s.low_cycles.retain(|w| w != who);
            if low {
                s.low_cycles.push(who.to_string());
            }
        });
        store::event(
            if low { "cycles.low" } else { "cycles.ok" },
            None,
            format!("the {who} has {balance} cycles (floor {floor})"),
        );
    }
}

fn set_armed(f: impl FnOnce(&mut ArmedUpgrade)) {
    store::update(|s| {
        if let Some(a) = s.armed.as_mut() {
            f(a)
        }
    });
}

async fn deliver_verdicts() {
    let agent = store::get().agent;
    for (id, outcome) in store::verdicts() {
        match agent_client::complete_upgrade(agent, id, &outcome).await {
            Ok(answer) => {
                store::verdict_delivered(id);
                store::update(|s| {
                    if let Some(a) = s.verdict_attempts.as_mut() {
                        a.retain(|(v, _)| *v != id);
                    }
                });
                store::event(
                    "verdict.delivered",
                    Some(id),
                    format!("{outcome:?}: agent answered {:?}", answer.map(|r| r.state)),
                );
            }
            Err(e) => {
                let attempts = store::update(|s| {
                    let a = s.verdict_attempts.get_or_insert_with(Vec::new);
                    let n = match a.iter_mut().find(|(v, _)| *v == id) {
                        Some((_, n)) => {
                            *n += 1;
                            *n
                        }
                        None => {
                            a.push((id, 1));
                            1
                        }
                    };
                    if n >= MAX_DELIVERIES {
                        a.retain(|(v, _)| *v != id);
                    }
                    n
                });
                if attempts >= MAX_DELIVERIES {
                    store::verdict_delivered(id);
                    give_up(
                        "verdict.undeliverable",
                        Some(id),
                        format!(
                            "the verdict {outcome:?} on upgrade {id} was not delivered in \
                             {attempts} attempts (last: {e}); the agent's journal may still show \
                             it in flight"
                        ),
                    );
                } else {
                    store::event(
                        "verdict.retry",
                        Some(id),
                        format!("attempt {attempts}: {e}"),
                    );
                }
            }
        }
    }
    let Some((seq, notice)) = store::notices().into_iter().next() else {
        return;
    };
    match agent_client::note_repair(agent, &notice).await {
        Ok(_) => {
            store::notice_delivered(seq);
            store::update(|s| s.notice_attempts = None);
        }
        Err(e) => {
            let attempts = store::update(|s| {
                let n = s.notice_attempts.unwrap_or(0) + 1;
                s.notice_attempts = if n >= MAX_DELIVERIES { None } else { Some(n) };
                n
            });
            if attempts >= MAX_DELIVERIES {
                store::notice_delivered(seq);
                give_up(
                    "notice.undeliverable",
                    notice.incident_id,
                    format!(
                        "the notice of {} was not delivered in {attempts} attempts (last: {e})",
                        notice.action
                    ),
                );
            } else {
                store::event("notice.retry", None, e.to_string());
            }
        }
    }
}

/// Records a delivery given up: an event, and an alert in `status` (the newest few).
fn give_up(action: &str, upgrade_id: Option<u64>, detail: String) {
    store::event(action, upgrade_id, detail.clone());
    store::update(|s| {
        let list = s.undelivered.get_or_insert_with(Vec::new);
        list.push(detail);
        let excess = list.len().saturating_sub(store::MAX_UNDELIVERED);
        list.drain(..excess);
    });
}

fn record_heartbeat(healthy: bool, detail: String, schema: Option<u32>) -> u32 {
    record_heartbeat_of(healthy, detail, schema, None)
}

/// Records a heartbeat (and the agent's `health`, when it answered) in one state write.
fn record_heartbeat_of(
    healthy: bool,
    detail: String,
    schema: Option<u32>,
    health: Option<canister_api::agent::Health>,
) -> u32 {
    let failures = store::update(|s| {
        if health.is_some() {
            s.agent_health = health;
        }
        s.last_heartbeat = Some(Heartbeat {
            at: now(),
            healthy,
            detail,
        });
        if healthy {
            s.consecutive_failures = 0;
            s.healthy_streak = s.healthy_streak.saturating_add(1);
            if schema.is_some() {
                s.last_schema = schema;
            }
        } else {
            s.consecutive_failures += 1;
            s.healthy_streak = 0;
        }
        s.consecutive_failures
    });
    sync_timer();
    failures
}

/// Steady state: one heartbeat; N failures in a row start the ladder.
async fn heartbeat(st: &State) {
    let own = ic_cdk::api::canister_cycle_balance();
    watch_cycles("watchdog", own);
    if own < st.config.cycles_reserve {
        if st
            .last_heartbeat
            .as_ref()
            .is_none_or(|h| !h.detail.starts_with("skipped"))
        {
            store::event(
                "heartbeat.skipped",
                None,
                format!(
                    "{own} cycles left, under the reserve of {}: no heartbeats until topped up",
                    st.config.cycles_reserve
                ),
            );
        }
        store::update(|s| {
            s.last_heartbeat = Some(Heartbeat {
                at: now(),
                healthy: false,
                detail: format!("skipped: the watchdog has {own} cycles, under its reserve"),
            })
        });
        return;
    }
    let timeout = st.config.heartbeat_timeout_secs;
    let failures = match agent_client::heartbeat(st.agent, timeout).await {
        Ok(h) => {
            watch_cycles("agent", h.cycles);
            let n = record_heartbeat_of(
                true,
                format!("{} ({})", h.version, h.status),
                Some(h.schema_version),
                Some(h.clone()),
            );
            set_condition(None);
            watch_agent(st, &h).await;
            n
        }
        // Mutant (issue 12 item 10 reverted): every failure counts, whatever its class.
        Err(f) if f.class == Failure::Code || cfg!(feature = "mutant-failure-classes") => {
            record_heartbeat(false, f.detail, None)
        }
        Err(f) => return note_condition(st.agent, None, f).await,
    };
    if failures >= st.config.failure_threshold {
        let cause = format!(
            "{failures} heartbeats failed in a row (last: {})",
            store::get()
                .last_heartbeat
                .map_or(String::new(), |h| h.detail)
        );
        // The agent failed after its version was committed: that version is not known-good
        // any more, so the ladder first demotes it to the previous LKG.
        start_restore(cause, None, RollbackTarget::Lkg, None);
        store::update(|s| {
            if let Some(r) = s.restore.as_mut()
                && s.previous_lkg.is_some()
            {
                r.step = LadderStep::Previous;
            }
        });
    }
}

/// The agent's condition (see [`State::condition`]); `None` clears it. Logged when it changes.
fn set_condition(condition: Option<String>) {
    if store::get().condition != condition {
        store::event(
            if condition.is_some() {
                "agent.condition"
            } else {
                "agent.condition_cleared"
            },
            None,
            condition.clone().unwrap_or_default(),
        );
        store::update(|s| s.condition = condition);
    }
}

/// A heartbeat that failed through no fault of the agent's code (`f.class` is not `Code`):
/// the IC's canister_status decides whether the agent is stopped or stopping (an operator's
/// stop; the watchdog's own stops happen only inside arming and the ladder, which send no
/// heartbeat). Recorded as an unhealthy heartbeat and the agent's condition, never counted
/// towards the ladder.
async fn note_condition(agent: Principal, upgrade_id: Option<u64>, f: BeatFailure) {
    let status = management::status(agent).await;
    let what = match &status {
        Ok(s) if s.status == CanisterStatusType::Stopped => Some(
            "stopped: the watchdog does not restore a stopped agent; start it (dfx canister start \
             agent) and heartbeats resume",
        ),
        Ok(s) if s.status == CanisterStatusType::Stopping => Some(
            "stopping: the watchdog waits; a stop that cannot finish times out after 5 minutes \
             and the agent runs again",
        ),
        _ => None,
    };
    let condition = match (what, f.class) {
        (Some(what), _) => format!("the agent is {what}"),
        (None, Failure::OutOfCycles) => format!(
            "the agent is out of cycles or frozen: top it up (dfx canister deposit-cycles agent \
             ...); another version would not help ({})",
            f.detail
        ),
        (None, class) => format!(
            "the agent was unreachable ({}): {}; not counted towards a rollback",
            class.name(),
            f.detail
        ),
    };
    if let Err(e) = &status
        && not_a_controller(&e.message)
    {
        lost_control(e.to_string());
    }
    store::update(|s| {
        s.healthy_streak = 0;
        s.last_heartbeat = Some(Heartbeat {
            at: now(),
            healthy: false,
            detail: condition.clone(),
        })
    });
    if let Some(id) = upgrade_id {
        store::event("verify.waiting", Some(id), condition.clone());
    }
    set_condition(Some(condition));
    sync_timer();
}

/// After a healthy heartbeat in steady state: canister_status tells whether the watchdog still
/// controls the agent, and whether the agent runs a module installed outside the pipeline.
async fn watch_agent(st: &State, h: &Health) {
    let status = match management::status(st.agent).await {
        Ok(s) => s,
        Err(e) => {
            if not_a_controller(&e.message) {
                lost_control(e.to_string());
            }
            return;
        }
    };
    regained_control();
    // The module the pipeline last put there: the LKG, or before the watchdog holds one, the
    // module the agent stores as running.
    let lkg = store::get().lkg;
    let expected = lkg
        .as_ref()
        .map(|l| l.hash.clone())
        .or(h.running_module_hash.clone());
    let (Some(expected), Some(module)) = (expected, status.module_hash) else {
        return;
    };
    if module == expected {
        if store::get().foreign_module.is_some() {
            store::update(|s| s.foreign_module = None);
        }
        return;
    }
    if store::get().foreign_module.as_ref() != Some(&module) {
        store::event(
            "agent.out_of_band",
            None,
            format!(
                "the agent runs {}, installed outside the upgrade pipeline; it was {}. It \
                 becomes the LKG once the agent stores it as its running module (commit_wasm \
                 Running); until then a restore would install the LKG over it",
                hex::encode(&module),
                hex::encode(&expected)
            ),
        );
        store::update(|s| s.foreign_module = Some(module.clone()));
    }
    // Adopted once the agent stores it (without an LKG yet, `ensure_lkg` copies it).
    if lkg.is_none() || h.running_module_hash.as_ref() != Some(&module) {
        return;
    }
    match agent_client::module(st.agent, &module).await {
        Ok(bytes) => {
            let info = LkgInfo {
                hash: module.clone(),
                version: h.version.clone(),
                schema_range: Some(h.schema_range),
                size: bytes.len() as u64,
                since: now(),
            };
            // Re-read: the state may have moved on during the fetch.
            let now_st = store::get();
            if now_st.armed.is_some() || now_st.restore.is_some() {
                return;
            }
            store::set_lkg(info, &bytes, true);
            store::update(|s| s.foreign_module = None);
            store::event(
                "lkg.adopted",
                None,
                format!(
                    "{} ({}), installed outside the pipeline and stored by the agent, is the LKG",
                    h.version,
                    hex::encode(&module)
                ),
            );
        }
        Err(e) => store::event("lkg.adopt_failed", None, e),
    }
}

/// Opens an incident and starts a restore: the ladder at its first rung for the LKG, or the
/// operator's target first. Answers the incident id.
pub fn start_restore(
    cause: String,
    upgrade_id: Option<u64>,
    target: RollbackTarget,
    version: Option<LkgInfo>,
) -> u64 {
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
    // Only the digest taken when the upgrade was armed is known to be current (writes were
    // paused since); otherwise the ladder takes one before its first rung.
    let digest_before: Option<StateDigest> = armed.as_ref().and_then(|a| a.digest_before.clone());
    let incident_id = store::add_incident(Incident {
        id: 0,
        upgrade_id,
        cause: cause.clone(),
        detected_at: now(),
        restored_at: None,
        ladder_step: None,
        attempts: vec![],
        attempts_omitted: None,
        lkg_hash: version
            .as_ref()
            .or(st.lkg.as_ref())
            .map_or_else(Vec::new, |l| l.hash.clone()),
        digest_before,
        digest_after: None,
        records_lost: None,
        data_lost: "unknown until restored".into(),
        journal_entries_lost: None,
        audit_entries_lost: None,
        alert: false,
    });
    let (step, snapshot_id) = match &target {
        RollbackTarget::Lkg => (
            LadderStep::CodeOnly,
            armed.as_ref().and_then(|a| a.snapshot_id.clone()),
        ),
        RollbackTarget::Version(_) => (
            LadderStep::Version,
            armed.as_ref().and_then(|a| a.snapshot_id.clone()),
        ),
        RollbackTarget::Snapshot(id) => (LadderStep::Snapshot, Some(id.clone())),
    };
    store::update(|s| {
        s.healthy_streak = 0;
        s.restore = Some(Restore {
            incident_id,
            step,
            upgrade_id,
            schema,
            snapshot_id,
            passes: 0,
            target,
            version,
            digest_tried: false,
            replaced_from: None,
        });
        if let Some(a) = s
            .armed
            .as_mut()
            .filter(|a| Some(a.upgrade_id) == upgrade_id)
        {
            a.phase = ArmPhase::RollingBack;
            a.incident_id = Some(incident_id);
        }
    });
    store::event(
        "ladder.start",
        upgrade_id,
        format!("incident {incident_id}: {cause}"),
    );
    incident_id
}

/// Abandons the armed upgrade with a `Failed` verdict (nothing to restore: the candidate never
/// ran).
fn abandon(id: u64, reason: String) {
    store::update(|s| s.armed = None);
    store::event("arm.abandoned", Some(id), reason.clone());
    store::queue_verdict(id, UpgradeOutcome::Failed(reason));
}

async fn arm(st: &State) {
    let a = st.armed.clone().expect("arming");
    let id = a.upgrade_id;
    let agent = st.agent;
    // 1. The parent must be what the IC runs (never only what the agent says or what the LKG
    //    was: a module installed out of band would be undone), and the controllers of this
    //    moment are what the candidate must keep.
    let status = match management::status(agent).await {
        Ok(s) => s,
        Err(e) => {
            if not_a_controller(&e.message) {
                lost_control(e.to_string());
            }
            return abandon(id, format!("canister_status of the agent failed: {e}"));
        }
    };
    if status.module_hash.as_ref() != Some(&a.parent_hash) {
        return abandon(
            id,
            format!(
                "the agent runs {}, not the parent {} named in the arm request (a module \
                 installed outside the pipeline: upload it to the agent as its running module \
                 and propose again)",
                status.module_hash.map_or("no module".into(), hex::encode),
                hex::encode(&a.parent_hash)
            ),
        );
    }
    if a.controllers_before.is_none() {
        set_armed(|x| x.controllers_before = Some(status.settings.controllers.clone()));
    }
    // 2. The LKG copy: the parent, checked against the hash the IC reports for the agent.
    if st.lkg.as_ref().map(|l| &l.hash) != Some(&a.parent_hash) {
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
        store::set_lkg(info, &bytes, false);
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
    // 3. The logical state before.
    if a.digest_before.is_none() {
        match agent_client::digest(agent, st.config.heartbeat_timeout_secs.max(30)).await {
            Ok(d) => {
                store::update(|s| s.last_digest = Some(d.clone()));
                set_armed(|x| x.digest_before = Some(d));
            }
            Err(e) => return abandon(id, format!("state_digest of the agent failed: {e}")),
        }
    }
    // 4. Stop, snapshot (rotating), start.
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
    // 5. Tell the agent: it installs the candidate.
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
    let status = match management::status(st.agent).await {
        Ok(s) => s,
        Err(e) => {
            if not_a_controller(&e.message) {
                lost_control(e.to_string());
            }
            let failures = record_heartbeat(false, format!("canister_status failed: {e}"), None);
            if failures >= st.config.failure_threshold {
                start_restore(
                    format!("canister_status of the agent failed {failures} times: {e}"),
                    Some(id),
                    RollbackTarget::Lkg,
                    None,
                );
            }
            return;
        }
    };
    regained_control();
    let module = status.module_hash.clone();
    if module.as_ref() == Some(&a.parent_hash) {
        // The candidate was seen running: the parent is back because someone installed it
        // outside the pipeline during probation. Nothing to restore; the upgrade ends now
        // (waiting for the deadline would keep the agent's writes paused for nothing).
        if a.phase == ArmPhase::Probation {
            return abandon(
                id,
                format!(
                    "the candidate {} ran on probation, then the parent {} was installed again \
                     outside the pipeline: the upgrade ends and the parent stays",
                    hex::encode(&a.candidate_hash),
                    hex::encode(&a.parent_hash)
                ),
            );
        }
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
        start_restore(cause, Some(id), RollbackTarget::Lkg, None);
        return;
    }
    if a.phase == ArmPhase::AwaitingInstall {
        set_armed(|x| x.phase = ArmPhase::Probation);
        store::event(
            "verify.installed",
            Some(id),
            "the candidate's module hash is running".into(),
        );
    }
    let check = probation_check(st, &a, &status.settings.controllers).await;
    if a.probation_start.is_none()
        && let Ok(h) = &check
    {
        let start = (now(), h.cycles);
        set_armed(|x| x.probation_start = Some(start));
    }
    match check {
        Ok(h) => {
            set_condition(None);
            record_heartbeat_of(
                true,
                format!("{} on probation", h.version),
                Some(h.schema_version),
                Some(h.clone()),
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
        // Stopped, stopping, out of cycles, the network: probation waits, nothing counts.
        Err(f) if f.class != Failure::Code => note_condition(st.agent, Some(id), f).await,
        Err(f) => {
            let why = f.detail;
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
                    RollbackTarget::Lkg,
                    None,
                );
            }
        }
    }
}

/// One probation heartbeat of the running candidate: its controllers are those of the arm,
/// `health` answers healthy with the candidate's version and module, its cycle burn is within
/// the limit, and a canary write succeeds.
async fn probation_check(
    st: &State,
    a: &ArmedUpgrade,
    controllers: &[Principal],
) -> Result<Health, BeatFailure> {
    // Mutant (issue 12 item 9 reverted): the controllers are not checked.
    #[cfg(feature = "mutant-controllers")]
    let _ = controllers;
    #[cfg(not(feature = "mutant-controllers"))]
    if let Some(before) = &a.controllers_before {
        let removed: Vec<&Principal> = before.iter().filter(|c| !controllers.contains(c)).collect();
        // The agent's self-test adds a missing expected controller (itself, the watchdog, an
        // operator) on its own, also on probation: an operator set with `set_operators` shortly
        // before a release is added at the candidate's boot, which is no fault of the
        // candidate (found by the explorer: seed 40, where that addition rolled the healthy
        // release back).
        let expected = |c: &Principal| {
            *c == st.agent || *c == ic_cdk::api::canister_self() || st.operators.contains(c)
        };
        let added: Vec<&Principal> = controllers
            .iter()
            .filter(|c| !before.contains(c) && !expected(c))
            .collect();
        if !removed.is_empty() || !added.is_empty() {
            return Err(BeatFailure::code(format!(
                "the candidate changed the agent's controllers: removed {removed:?}, added {added:?}"
            )));
        }
    }
    let timeout = st.config.heartbeat_timeout_secs;
    let h = agent_client::heartbeat(st.agent, timeout).await?;
    if h.version != a.candidate_version {
        return Err(BeatFailure::code(format!(
            "health reports version {}, expected {}",
            h.version, a.candidate_version
        )));
    }
    if h.running_module_hash.as_ref() != Some(&a.candidate_hash) {
        return Err(BeatFailure::code(
            "health does not report the candidate as its running module (no Booted record)".into(),
        ));
    }
    if let Some(rate) = burn_per_day(a, &h, now())
        && rate > st.config.max_cycles_per_day
    {
        return Err(BeatFailure::code(format!(
            "the candidate burns {:.1} T cycles per day (limit {:.1} T)",
            rate as f64 / 1e12,
            st.config.max_cycles_per_day as f64 / 1e12
        )));
    }
    // Mutant (issue 12 item 8 reverted): no canary write on probation.
    #[cfg(not(feature = "mutant-canary"))]
    agent_client::canary(st.agent, timeout.max(30)).await?;
    Ok(h)
}

/// The candidate's cycle burn per day since its first probation heartbeat (`None` until a
/// second heartbeat, or when the balance grew).
fn burn_per_day(a: &ArmedUpgrade, h: &canister_api::agent::Health, at: u64) -> Option<u128> {
    let (t0, c0) = a.probation_start?;
    let spent = c0.checked_sub(h.cycles)?;
    let elapsed = u128::from(at.checked_sub(t0).filter(|d| *d > 0)?);
    Some(spent * 86_400_000_000_000 / elapsed)
}

/// Committing: the candidate's bytes are fetched and hash-checked, the agent accepts its
/// verdict, and only then the candidate becomes the LKG. A candidate that cannot take its
/// verdict (`complete_upgrade` traps) fails like a heartbeat, and N such failures roll it back.
async fn commit(st: &State) {
    let a = st.armed.clone().expect("committing");
    let id = a.upgrade_id;
    let bytes = if st.lkg.as_ref().map(|l| &l.hash) == Some(&a.candidate_hash) {
        None
    } else {
        match agent_client::module(st.agent, &a.candidate_hash).await {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                return commit_failed(st, id, format!("fetching the new LKG failed: {e}"));
            }
        }
    };
    let answer = agent_client::complete_upgrade(st.agent, id, &UpgradeOutcome::Committed).await;
    // Mutant (issue 12 item 5 reverted): the candidate becomes the LKG whatever it answered,
    // and its verdict is queued and retried.
    #[cfg(feature = "mutant-verdict-bound")]
    if !matches!(answer, Ok(Ok(_))) {
        store::queue_verdict(id, UpgradeOutcome::Committed);
    }
    #[cfg(not(feature = "mutant-verdict-bound"))]
    match answer {
        // Taken at once, never queued: kept as decided all the same, so a later restore of
        // this upgrade's arm-time snapshot ends it Committed again (explorer seed 150).
        Ok(Ok(_)) => store::keep_decided(id, &UpgradeOutcome::Committed),
        Ok(Err(e)) => {
            return commit_failed(
                st,
                id,
                format!("the agent refused its Committed verdict: {e}"),
            );
        }
        Err(e) if e.failure() == Failure::Code => {
            return commit_failed(
                st,
                id,
                format!("the candidate cannot take its Committed verdict: {e}"),
            );
        }
        Err(e) => return note_condition(st.agent, Some(id), BeatFailure::from(e)).await,
    }
    if let Some(bytes) = bytes {
        let info = LkgInfo {
            hash: a.candidate_hash.clone(),
            version: a.candidate_version.clone(),
            schema_range: a.candidate_schema_range,
            size: bytes.len() as u64,
            since: now(),
        };
        store::set_lkg(info, &bytes, true);
    }
    store::update(|s| {
        s.armed = None;
        s.consecutive_failures = 0;
        s.healthy_streak = 0;
    });
    store::event(
        "commit",
        Some(id),
        format!("{} is the LKG", hex::encode(&a.candidate_hash)),
    );
    store::event(
        "verdict.delivered",
        Some(id),
        "Committed: the agent accepted it".into(),
    );
}

/// A failed step of the commit, counted like a failed heartbeat.
fn commit_failed(st: &State, id: u64, why: String) {
    let failures = record_heartbeat(false, why.clone(), None);
    store::event(
        "commit.failed",
        Some(id),
        format!("{failures} in a row: {why}"),
    );
    if failures >= st.config.failure_threshold {
        start_restore(
            format!(
                "the candidate passed probation but failed its commit {failures} times in a row (last: {why})"
            ),
            Some(id),
            RollbackTarget::Lkg,
            None,
        );
    }
}
