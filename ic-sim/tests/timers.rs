//! The global timer, raw and through ic-cdk-timers (IC-SEMANTICS.md, "Limits: global timer",
//! "Lifecycle", "Messages").

mod common;

use std::time::Duration;

use common::*;

const SECOND: u64 = 1_000_000_000;

/// Fidelity check: ic0.global_timer_set returns the previous deadline, and 0 disarms.
#[test]
fn global_timer_set_returns_previous_and_zero_disarms() {
    let sim = Sim::new();
    let id = new_wat(&sim, "global_timer");
    let t = now(&sim);
    assert_eq!(
        wat_timer_set(&sim, id, t + 10 * SECOND),
        0,
        "no timer at first"
    );
    assert_eq!(wat_timer_set(&sim, id, t + 20 * SECOND), t + 10 * SECOND);
    assert_eq!(
        wat_timer_set(&sim, id, 0),
        t + 20 * SECOND,
        "0 disarms and returns the old one"
    );
    advance(&sim, Duration::from_secs(30));
    assert_eq!(
        wat_timer_fired(&sim, id),
        0,
        "a disarmed timer does not fire"
    );
    assert_eq!(wat_timer_set(&sim, id, 0), 0);
}

/// The global timer fires once time >= deadline, once, with the management canister as caller,
/// and is deactivated when it fires.
#[test]
fn global_timer_fires_once_when_due() {
    let sim = Sim::new();
    let id = new_wat(&sim, "global_timer");
    let deadline = now(&sim) + 10 * SECOND;
    wat_timer_set(&sim, id, deadline);
    advance(&sim, Duration::from_secs(5));
    assert_eq!(wat_timer_fired(&sim, id), 0, "not due yet");
    advance(&sim, Duration::from_secs(6));
    assert_eq!(wat_timer_fired(&sim, id), 1, "fired once due");
    advance(&sim, Duration::from_secs(60));
    assert_eq!(wat_timer_fired(&sim, id), 1, "fires only once");
    assert_eq!(wat_timer_set(&sim, id, 0), 0, "deactivated when it fired");
    let caller_size = i32::from_le_bytes(
        sim.query_call(id, Principal::anonymous(), "caller_size", vec![])
            .unwrap()[..4]
            .try_into()
            .unwrap(),
    );
    assert_eq!(
        caller_size, 0,
        "the caller is the management canister (an empty id)"
    );
    assert!(
        sim.debug_log(id)
            .iter()
            .any(|l| l.contains("global timer fired"))
    );
}

/// A deadline in the past fires at the next round.
#[test]
fn global_timer_in_the_past_fires_at_once() {
    let sim = Sim::new();
    let id = new_wat(&sim, "global_timer");
    wat_timer_set(&sim, id, 1);
    ticks(&sim, 3);
    assert_eq!(wat_timer_fired(&sim, id), 1);
}

/// ic-cdk-timers timers fire (through canister_global_timer and the self-call executor).
#[test]
fn ic_cdk_timers_fire() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let () = update(&sim, id, "set_timer", Encode!(&5u64).unwrap()).unwrap();
    let () = update(&sim, id, "set_timer", Encode!(&10u64).unwrap()).unwrap();
    advance(&sim, Duration::from_secs(6));
    assert_eq!(timers_fired(&sim, id), 1);
    advance(&sim, Duration::from_secs(5));
    assert_eq!(timers_fired(&sim, id), 2);
    assert!(
        sim.debug_log(id)
            .iter()
            .any(|l| l.contains("probe: timer fired"))
    );
}

/// A trap discards the timer changes of its execution.
#[test]
fn trap_discards_timer_changes() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let result = sim.update_call(
        id,
        Principal::anonymous(),
        "set_timer_then_trap",
        Encode!(&1u64).unwrap(),
    );
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterCalledTrap,
        &[&called_trap("probe: set_timer_then_trap")],
    );
    advance(&sim, Duration::from_secs(5));
    assert_eq!(timers_fired(&sim, id), 0);
}

/// Timers run only while running: a stopped canister's due timer waits until it starts.
#[test]
fn timers_run_only_while_running() {
    let sim = Sim::new();
    let id = new_wat(&sim, "global_timer");
    wat_timer_set(&sim, id, now(&sim) + 5 * SECOND);
    sim.stop_canister(id, None).unwrap();
    advance(&sim, Duration::from_secs(10));
    assert!(
        !sim.debug_log(id)
            .iter()
            .any(|l| l.contains("global timer fired")),
        "no timer while stopped"
    );
    sim.start_canister(id, None).unwrap();
    ticks(&sim, 3);
    assert_eq!(
        wat_timer_fired(&sim, id),
        1,
        "the due timer fires once running again"
    );
}

/// An upgrade resets the global timer to 0 (ic-cdk-timers' state is lost; re-arm in
/// post_upgrade).
#[test]
fn upgrade_resets_the_global_timer() {
    let sim = Sim::new();
    let raw = new_wat(&sim, "global_timer");
    wat_timer_set(&sim, raw, now(&sim) + 5 * SECOND);
    sim.upgrade_canister(raw, wat_fixture("global_timer"), vec![], None)
        .unwrap();
    assert_eq!(
        wat_timer_set(&sim, raw, 0),
        0,
        "the upgrade disarmed the timer"
    );

    let probe = new_probe(&sim);
    let () = update(&sim, probe, "set_timer", Encode!(&5u64).unwrap()).unwrap();
    sim.upgrade_canister(probe, probe_wasm(), no_init(), None)
        .unwrap();
    advance(&sim, Duration::from_secs(10));
    assert_eq!(
        timers_fired(&sim, probe),
        0,
        "a timer set before the upgrade is lost"
    );
    assert!(
        !sim.debug_log(probe)
            .iter()
            .any(|l| l.contains("probe: timer fired"))
    );
}

/// Uninstall leaves no timer behind: after reinstalling, nothing fires.
#[test]
fn uninstall_clears_the_global_timer() {
    let sim = Sim::new();
    let id = new_wat(&sim, "global_timer");
    wat_timer_set(&sim, id, now(&sim) + 5 * SECOND);
    sim.uninstall_canister(id, None).unwrap();
    sim.install_canister(id, wat_fixture("global_timer"), vec![], None);
    advance(&sim, Duration::from_secs(10));
    assert_eq!(wat_timer_fired(&sim, id), 0);
    assert_eq!(wat_timer_set(&sim, id, 0), 0);
}

/// `skip_idle_time` moves time to the next due timer (or by its bound) without running a round:
/// the timer fires only at the next tick, so a test sees the state in between.
#[test]
fn skip_idle_time_stops_at_the_next_timer_without_running_it() {
    let sim = Sim::new();
    let id = new_wat(&sim, "global_timer");
    let start = now(&sim);
    wat_timer_set(&sim, id, start + 10 * SECOND);
    let at = now(&sim);
    assert!(sim.skip_idle_time(Duration::from_secs(3)));
    assert_eq!(now(&sim), at + 3 * SECOND, "bounded by at_most");
    assert!(sim.skip_idle_time(Duration::from_secs(60)));
    assert_eq!(
        now(&sim),
        start + 10 * SECOND,
        "stops at the timer's deadline"
    );
    assert_eq!(wat_timer_fired(&sim, id), 0, "no round ran: not fired yet");
    assert!(
        !sim.skip_idle_time(Duration::from_secs(60)),
        "the due timer is work"
    );
    sim.tick();
    assert_eq!(wat_timer_fired(&sim, id), 1, "the next round fires it");
}
