//! Service: the agent's side of mutual control. It heartbeats the watchdog and, as one of the
//! watchdog's controllers, repairs it from the watchdog Wasm in its version store.
//!
//! ```text
//! every interval: status (bounded wait) -> ok: cache the watchdog's settings, operators, LKG
//!                                       -> failed, or its supervision stalled: N in a row ->
//! repair (never inside an armed upgrade's window):
//!   1. start          (stopped or stopping, the module is ours)
//!   2. upgrade        (the stored watchdog Wasm over its state, skipping pre_upgrade)
//!   3. (re)install    (clean, with the cached settings, operators and LKG record)
//! each rung verified: canister_status runs the stored hash and `status` answers.
//! ```
//!
//! Every repair is journaled in the audit log (`watchdog.repaired`) and reported to the
//! repaired watchdog (`note_repair`), which journals it too. No heartbeat is sent while the
//! agent's own balance is under `Supervision::cycles_reserve`; balances under the floor appear
//! in `health.alerts`. A sandbox copy never supervises, and no heartbeat starts while the agent
//! drains its calls before installing an upgrade (`pipeline::quiet`).

use crate::api::{RepairNotice, WatchdogView};
use crate::config::{self, PeerState};
use crate::{audit, sandbox, selftest, versions, writes};
use candid::Principal;
use canister_api::cadence::{Cadence, STEADY_AFTER_HEALTHY};
use canister_api::cdk::{Busy, me, now};
use canister_api::ic::{self, CallError, management};
use canister_api::watchdog::{
    Heartbeat, LkgInfo, WatchdogConfig, WatchdogError, WatchdogInit, WatchdogStatus,
};
use ic_management_canister_types as mgmt;
use std::cell::Cell;
use std::time::Duration;

/// Seconds an upgrade's window lasts when the watchdog's settings are unknown.
pub const DEFAULT_ARM_WINDOW_SECS: u64 = 600;

thread_local! {
    /// The heartbeat interval: its timer and its period.
    static TIMER: Cell<Option<(ic_cdk_timers::TimerId, u64)>> = const { Cell::new(None) };
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

/// Fires the global timer now, so the timer queue runs and sets the timer again. A snapshot load
/// keeps the live global timer (the replica restores it only for uploaded snapshots), which an
/// uninstall before the load leaves disarmed, and it brings back ic-cdk-timers' record of the
/// deadline it set last, so scheduling a timer would not set it again either: without this an
/// agent restored from a snapshot never runs its timers (heartbeats, pipeline) again.
pub fn rearm_timers() {
    ic_cdk::api::global_timer_set(now());
}

/// Re-arms the global timer when a trap in `canister_global_timer` left it disarmed
/// (`canister_api::cdk::rearm_lost_global_timer`), so the heartbeats of the watchdog and the
/// pipeline's timers run again; audited (`agent.timer_rearmed`). Every update that succeeds
/// calls it (`lib.rs`, `update_method`). Only while the heartbeat interval is set (a watchdog is
/// configured): without a repeating timer a disarmed global timer is the normal state.
pub fn keep_timer_armed() {
    if TIMER.with(|t| t.get()).is_some() && canister_api::cdk::rearm_lost_global_timer() {
        audit::append(
            now(),
            me(),
            "agent.timer_rearmed",
            None,
            "the global timer was disarmed (a trap in canister_global_timer): set again, the \
             heartbeats and the pipeline's timers run again"
                .into(),
        );
    }
}

/// (Re)starts the heartbeat interval (init, post_upgrade, `set_supervision`) at the cadence
/// the stored state calls for (timers do not survive an upgrade).
pub fn start() {
    if let Some((old, _)) = TIMER.with(|t| t.take()) {
        ic_cdk_timers::clear_timer(old);
    }
    sync();
}

/// The cadence the state calls for (see `canister_api::cadence`): fast while an upgrade is in
/// flight here or armed at the watchdog, while the watchdog is restoring the agent, after a
/// failed heartbeat or a repair, until [`STEADY_AFTER_HEALTHY`] healthy heartbeats in a row
/// with none of these; steady after that.
pub fn cadence() -> Cadence {
    let p = peer();
    if crate::journal::in_flight().is_some()
        || writes::current().is_some()
        || p.view.consecutive_failures > 0
        || p.calm.unwrap_or(0) < STEADY_AFTER_HEALTHY
    {
        Cadence::Fast
    } else {
        Cadence::Steady
    }
}

/// Re-arms the heartbeat interval (and the self-test's, which follows the same cadence) when
/// the cadence the state calls for has another period than the one running; called at the end
/// of every heartbeat, as soon as one fails, and when the watchdog arms an upgrade. An interval
/// re-armed starts from now; a heartbeat in flight finishes and finds it re-armed.
pub fn sync() {
    if sandbox::is_copy() || config::get().watchdog.is_none() {
        if let Some((old, _)) = TIMER.with(|t| t.take()) {
            ic_cdk_timers::clear_timer(old);
        }
        return;
    }
    let cadence = cadence();
    let before = peer().view.cadence;
    if before != Some(cadence) {
        if let Some(before) = before {
            audit::append(
                now(),
                me(),
                "watchdog.cadence",
                None,
                format!("{before:?} -> {cadence:?}"),
            );
        }
        set_peer(|p| p.view.cadence = Some(cadence));
    }
    selftest::follow(cadence);
    let interval = config::supervision().beat().interval_of(cadence).max(1);
    let current = TIMER.with(|t| t.get());
    if current.is_some_and(|(_, period)| period == interval) {
        return;
    }
    if let Some((old, _)) = current {
        ic_cdk_timers::clear_timer(old);
    }
    // A plain interval, not `set_timer_interval_serial`: after a long gap in time (a stalled
    // subnet) ic-cdk-timers dispatches a serial interval once per missed period, each a
    // self-call (8,640 after a day at 10 s, some 19 G cycles on a 13-node subnet), a burst the
    // watchdog would bill a candidate on probation; a plain interval dispatches at most 5 and
    // skips ahead. `tick` returns at once while another run is under way.
    let id = ic_cdk_timers::set_timer_interval(Duration::from_secs(interval), tick);
    TIMER.with(|t| t.set(Some((id, interval))));
}

fn peer() -> PeerState {
    config::markers().peer.unwrap_or_default()
}

fn set_peer(f: impl FnOnce(&mut PeerState)) {
    config::update_markers(|m| {
        let mut p = m.peer.clone().unwrap_or_default();
        f(&mut p);
        m.peer = Some(p);
    });
}

/// The agent's view of the watchdog, for `health`.
pub fn view() -> Option<WatchdogView> {
    config::get().watchdog.map(|_| peer().view)
}

/// What operators should look at, for `health.alerts`.
pub fn alerts() -> Vec<String> {
    let sup = config::supervision();
    let own = ic_cdk::api::canister_cycle_balance();
    let mut out = vec![];
    if own < sup.cycles_floor {
        out.push(format!(
            "the agent has {own} cycles, below the floor of {}: top it up; below {} it sends no \
             heartbeats",
            sup.cycles_floor, sup.cycles_reserve
        ));
    }
    if config::get().watchdog.is_some() {
        let p = peer();
        if let Some(c) = p.view.cycles
            && c < sup.cycles_floor
        {
            out.push(format!(
                "the watchdog reported {c} cycles, below the floor of {}: top it up",
                sup.cycles_floor
            ));
        }
        if p.view.consecutive_failures >= sup.failure_threshold {
            out.push(format!(
                "the watchdog failed {} heartbeats in a row (last: {})",
                p.view.consecutive_failures,
                p.view.last_failure.clone().unwrap_or_default()
            ));
        }
        if let Some(a) = p.alert {
            out.push(a);
        }
    }
    out
}

/// One heartbeat of the watchdog; a repair after N failures in a row.
pub async fn tick() {
    // No call starts while the agent drains its calls before installing an upgrade.
    if sandbox::is_copy() || BUSY.with(|b| b.get()) || crate::pipeline::quiet().is_some() {
        return;
    }
    let Some(watchdog) = config::get().watchdog else {
        return;
    };
    let _busy = Busy::hold(&BUSY, true);
    beat(watchdog).await;
    sync();
}

async fn beat(watchdog: Principal) {
    let sup = config::supervision();
    let own = ic_cdk::api::canister_cycle_balance();
    if own < sup.cycles_reserve {
        if !peer().skipping {
            audit::append(
                now(),
                me(),
                "watchdog.heartbeat_skipped",
                None,
                format!(
                    "{own} cycles left, under the reserve of {}: no heartbeats until topped up",
                    sup.cycles_reserve
                ),
            );
        }
        set_peer(|p| p.skipping = true);
        return;
    }
    if peer().skipping {
        set_peer(|p| p.skipping = false);
    }
    let answer: Result<WatchdogPulse, CallError> = ic::heartbeat_call(
        watchdog,
        "status",
        sup.heartbeat_timeout_secs,
        ic::HEARTBEAT_ATTEMPTS,
    )
    .await;
    let failure = match answer {
        Ok(status) => match stalled(&status) {
            None => {
                let quiet = status.armed.is_none() && status.restore.is_none();
                set_peer(|p| {
                    p.calm = Some(if quiet {
                        p.calm.unwrap_or(0).saturating_add(1)
                    } else {
                        0
                    });
                    p.view.last_seen = Some(now());
                    p.view.consecutive_failures = 0;
                    p.view.last_failure = None;
                    p.view.cycles = Some(status.cycles);
                    p.config = Some(status.config);
                    p.operators = status.operators.clone();
                    if status.lkg.is_some() {
                        p.lkg = status.lkg.clone();
                    }
                    p.deferred_logged = false;
                });
                return;
            }
            Some(why) => why,
        },
        Err(e) => e.to_string(),
    };
    let failures = {
        set_peer(|p| {
            p.calm = Some(0);
            p.view.consecutive_failures += 1;
            p.view.last_failure = Some(failure.clone());
        });
        peer().view.consecutive_failures
    };
    // A miss in steady state: the next heartbeats come at the fast cadence.
    sync();
    if failures >= sup.failure_threshold {
        repair(
            watchdog,
            format!("{failures} heartbeats failed in a row (last: {failure})"),
        )
        .await;
    }
}

/// The part of the watchdog's `status` a heartbeat reads (candid skips the other fields, which
/// keeps the heartbeat cheap).
#[derive(candid::CandidType, candid::Deserialize)]
struct WatchdogPulse {
    paused: bool,
    armed: Option<candid::Reserved>,
    restore: Option<candid::Reserved>,
    last_heartbeat: Option<Heartbeat>,
    config: WatchdogConfig,
    operators: Vec<Principal>,
    lkg: Option<LkgInfo>,
    cycles: u128,
    cadence: Option<Cadence>,
}

/// Why a watchdog that answers is still not supervising: its own heartbeats stopped (its
/// timer is gone) while nothing excuses them.
fn stalled(status: &WatchdogPulse) -> Option<String> {
    stalled_at(status, now())
}

/// [`stalled`] at time `now`.
fn stalled_at(status: &WatchdogPulse, now: u64) -> Option<String> {
    if status.paused || status.armed.is_some() || status.restore.is_some() {
        return None;
    }
    let at = status.last_heartbeat.as_ref()?.at;
    let c = status.config;
    // At the steady cadence the last heartbeat may be a steady interval old, whichever
    // cadence it reports now (it may have switched since). A watchdog that reports no cadence
    // does not know the steady one: its interval is the fast one.
    let steady = match status.cadence {
        Some(_) => c.steady_interval_secs(),
        None => c.heartbeat_interval_secs,
    };
    let bound = (steady
        + c.heartbeat_interval_secs * u64::from(c.failure_threshold)
        + u64::from(c.heartbeat_timeout_secs)
        + 60)
        * 1_000_000_000;
    let age = now.saturating_sub(at);
    (age > bound).then(|| {
        format!(
            "the watchdog answers, but its last heartbeat was {} s ago (its interval is {} s): \
             its supervision has stalled",
            age / 1_000_000_000,
            c.heartbeat_interval_secs
        )
    })
}

/// Whether an armed upgrade's window is open: then the watchdog is left alone.
fn in_armed_window() -> Option<u64> {
    let pause = writes::current().filter(|p| p.reason == "upgrade")?;
    let window = peer()
        .config
        .map_or(DEFAULT_ARM_WINDOW_SECS, |c| c.arm_window_secs);
    (now() < pause.since + window * 1_000_000_000).then_some(pause.upgrade_id)
}

fn alert(text: String) {
    audit::append(now(), me(), "watchdog.repair_failed", None, text.clone());
    set_peer(|p| p.alert = Some(text));
}

/// Repairs the watchdog, cheapest rung first.
async fn repair(watchdog: Principal, why: String) {
    if let Some(id) = in_armed_window() {
        if !peer().deferred_logged {
            audit::append(
                now(),
                me(),
                "watchdog.repair_deferred",
                Some(id),
                format!("{why}; upgrade {id} is inside its armed window: no repair until it ends"),
            );
            set_peer(|p| p.deferred_logged = true);
        }
        return;
    }
    let Some(hash) = config::markers().watchdog else {
        return alert(format!(
            "{why}; the watchdog cannot be repaired: no watchdog Wasm is stored (upload and \
             commit it as `watchdog`)"
        ));
    };
    let Some(wasm) = versions::blob(&hash) else {
        return alert(format!(
            "{why}; the stored watchdog Wasm {} is missing",
            hex::encode(hash)
        ));
    };
    let status = match management::status(watchdog).await {
        Ok(s) => s,
        Err(e) => {
            return alert(format!(
                "{why}; canister_status of the watchdog failed ({e}): is the agent still one \
                 of its controllers?"
            ));
        }
    };
    audit::append(
        now(),
        me(),
        "watchdog.repair_started",
        None,
        format!(
            "{why}; the watchdog is {:?} and runs {}",
            status.status,
            status
                .module_hash
                .as_ref()
                .map_or("no module".into(), hex::encode)
        ),
    );
    let ours = status.module_hash.as_deref() == Some(hash.as_slice());
    let mut tried = vec![];
    if ours && status.status != mgmt::CanisterStatusType::Running {
        let r = management::start(watchdog).await.map_err(|e| e.to_string());
        match r.and(verified(watchdog, &hash).await) {
            Ok(()) => return repaired(watchdog, &hash, "start", why, tried).await,
            Err(e) => tried.push(format!("start: {e}")),
        }
    }
    if status.module_hash.is_some() {
        let r = reinstall(watchdog, &wasm, UpgradeMode::KeepState).await;
        match r.and(verified(watchdog, &hash).await) {
            Ok(()) => return repaired(watchdog, &hash, "upgrade", why, tried).await,
            Err(e) => tried.push(format!("upgrade: {e}")),
        }
    }
    let (mode, action) = if status.module_hash.is_some() {
        (UpgradeMode::Clean, "reinstall")
    } else {
        (UpgradeMode::Fresh, "install")
    };
    let r = reinstall(watchdog, &wasm, mode).await;
    match r.and(verified(watchdog, &hash).await) {
        Ok(()) => repaired(watchdog, &hash, action, why, tried).await,
        Err(e) => {
            tried.push(format!("{action}: {e}"));
            alert(format!(
                "{why}; every repair failed: {}; operators must act",
                tried.join("; ")
            ));
        }
    }
}

enum UpgradeMode {
    /// Upgrade: keep the watchdog's stable memory.
    KeepState,
    /// Reinstall: clean, with the cached settings.
    Clean,
    /// Install into an empty canister.
    Fresh,
}

/// The init argument a clean watchdog gets: the settings and operators it last reported, and
/// the LKG the agent itself records (set by the last verdict, so it is never older than the
/// watchdog's last report), else the one the watchdog reported.
fn restore_init() -> WatchdogInit {
    let p = peer();
    let own_lkg = config::markers().lkg.and_then(|hash| {
        versions::get(&hash).map(|v| LkgInfo {
            hash: hash.to_vec(),
            version: v.version,
            schema_range: v.schema_range,
            size: v.size,
            since: v.created_at,
        })
    });
    WatchdogInit {
        agent: me(),
        operators: if p.operators.is_empty() {
            config::get().operators
        } else {
            p.operators
        },
        config: p.config,
        lkg: own_lkg.or(p.lkg),
    }
}

async fn reinstall(watchdog: Principal, wasm: &[u8], mode: UpgradeMode) -> Result<(), String> {
    let (mode, arg) = match mode {
        UpgradeMode::KeepState => (management::upgrade_mode(), vec![]),
        UpgradeMode::Clean => (
            mgmt::CanisterInstallMode::Reinstall,
            candid::encode_one(restore_init()).map_err(|e| e.to_string())?,
        ),
        UpgradeMode::Fresh => (
            mgmt::CanisterInstallMode::Install,
            candid::encode_one(restore_init()).map_err(|e| e.to_string())?,
        ),
    };
    // A stop that fails leaves it stopping; the install goes ahead and the start cancels it.
    let _ = management::stop(watchdog).await;
    // The watchdog may live on another subnet (2 MiB per request there): large modules go in
    // chunks.
    let installed = management::install_anywhere(watchdog, mode, wasm, arg)
        .await
        .map_err(|e| e.to_string());
    let started = management::start(watchdog).await.map_err(|e| e.to_string());
    installed.and(started)
}

/// The watchdog runs `hash` and answers `status`.
async fn verified(watchdog: Principal, hash: &[u8; 32]) -> Result<(), String> {
    let status = management::status(watchdog)
        .await
        .map_err(|e| e.to_string())?;
    if status.module_hash.as_deref() != Some(hash.as_slice()) {
        return Err(format!(
            "it runs {}, not the stored watchdog {}",
            status.module_hash.map_or("no module".into(), hex::encode),
            hex::encode(hash)
        ));
    }
    let timeout = config::supervision().heartbeat_timeout_secs;
    let answer: Result<WatchdogStatus, CallError> =
        ic::call(watchdog, "status", &(), Some(timeout)).await;
    answer
        .map(|_| ())
        .map_err(|e| format!("it does not answer status: {e}"))
}

async fn repaired(
    watchdog: Principal,
    hash: &[u8; 32],
    action: &str,
    why: String,
    tried: Vec<String>,
) {
    let detail = if tried.is_empty() {
        why
    } else {
        format!("{why}; failed first: {}", tried.join("; "))
    };
    audit::append(
        now(),
        me(),
        "watchdog.repaired",
        None,
        format!("{action}: {detail}"),
    );
    set_peer(|p| {
        p.view.repairs += 1;
        p.view.consecutive_failures = 0;
        p.view.last_failure = None;
        p.alert = None;
    });
    let notice = RepairNotice {
        at: now(),
        by: me(),
        repaired: watchdog,
        action: action.to_string(),
        detail,
        incident_id: None,
        module_hash: Some(hash.to_vec()),
        decided: None,
    };
    if action != "start" && action != "upgrade" {
        // A clean watchdog knows nothing of an upgrade in flight.
        crate::pipeline::re_arm(watchdog).await;
    }
    let told: Result<Result<(), WatchdogError>, CallError> =
        ic::call(watchdog, "note_repair", &notice, Some(60)).await;
    let failed = match told {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    audit::append(now(), me(), "watchdog.note_repair_failed", None, failed);
}

/// The watchdog restored the agent: run the timers again ([`rearm_timers`]), journal it, end
/// the upgrade the restored journal shows in flight (`pipeline::end_after_restore`), and follow
/// the module it restored, or fetch it back from the watchdog when the store lacks it
/// (`handback`, after a clean reinstall).
pub fn note_restored(watchdog: Principal, notice: RepairNotice) {
    rearm_timers();
    audit::append(
        now(),
        watchdog,
        "agent.restored_by_watchdog",
        None,
        format!(
            "{} (incident {}): {}",
            notice.action,
            notice.incident_id.map_or("-".into(), |i| i.to_string()),
            notice.detail
        ),
    );
    crate::pipeline::end_after_restore(
        watchdog,
        notice.at,
        &notice.action,
        notice.decided.as_deref().unwrap_or_default(),
    );
    let Some(hash) = notice.module_hash.as_deref().and_then(canister_api::hash32) else {
        return;
    };
    if versions::get(&hash).is_none() {
        // A clean reinstall emptied the version store: the module comes back from the
        // watchdog's copy.
        return crate::handback::request(&format!(
            "the watchdog restored the agent ({}) with module {}, which the version store lacks",
            notice.action,
            hex::encode(hash)
        ));
    }
    {
        config::update_markers(|m| {
            if m.lkg != Some(hash) {
                // A failing LKG demoted to the previous one is not kept as "previous".
                m.previous_lkg = if m.previous_lkg == Some(hash) {
                    None
                } else {
                    m.lkg
                };
            }
            m.running = Some(hash);
            m.lkg = Some(hash);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn pulse(last_heartbeat_at: u64, cadence: Option<Cadence>) -> WatchdogPulse {
        WatchdogPulse {
            paused: false,
            armed: None,
            restore: None,
            last_heartbeat: Some(Heartbeat {
                at: last_heartbeat_at,
                healthy: true,
                detail: String::new(),
            }),
            config: WatchdogConfig::default(),
            operators: vec![],
            lkg: None,
            cycles: 0,
            cadence,
        }
    }

    /// At the steady cadence (480 s by default) a watchdog's last heartbeat may be a steady
    /// interval old: not stalled. A check that allowed for the fast interval only (10 s, plus
    /// the failures, the timeout and a minute: 135 s) would repair a healthy watchdog every
    /// steady interval.
    #[test]
    fn a_watchdog_at_the_steady_cadence_is_not_stalled_between_its_heartbeats() {
        let c = WatchdogConfig::default();
        assert_eq!(c.steady_interval_secs(), 480);
        let fast_only_bound = c.heartbeat_interval_secs
            + c.heartbeat_interval_secs * u64::from(c.failure_threshold)
            + u64::from(c.heartbeat_timeout_secs)
            + 60;
        let t0 = 1_000 * S;
        let steady = pulse(t0, Some(Cadence::Steady));
        let age = 470;
        assert!(
            age > fast_only_bound,
            "the fast-only check would call this stalled"
        );
        assert_eq!(stalled_at(&steady, t0 + age * S), None);
        let bound = c.steady_interval_secs() + fast_only_bound - c.heartbeat_interval_secs;
        assert_eq!(stalled_at(&steady, t0 + bound * S), None);
        assert!(stalled_at(&steady, t0 + (bound + 1) * S).is_some());
        // A watchdog that reports no cadence knows only the fast interval.
        let old = pulse(t0, None);
        assert!(stalled_at(&old, t0 + (fast_only_bound + 1) * S).is_some());
        // A paused watchdog is never stalled.
        let mut paused = pulse(t0, Some(Cadence::Steady));
        paused.paused = true;
        assert_eq!(stalled_at(&paused, t0 + 86_400 * S), None);
    }
}
