//! Continuous supervision and mutual repair on ic-sim (issue 5): the watchdog restores an agent
//! that fails after its commit (trapping or hanging `health`) within the detection bound of the
//! cadence in force (fast on probation and after a miss, steady once healthy for a while), a
//! single lost response changes nothing, the agent repairs a killed watchdog with its settings
//! and LKG record, an interrupted rollback completes on retry, and operators roll back to a
//! named version or snapshot.
//!
//! Figures are printed on lines starting `FIGURE`; run with `--nocapture` to see them.

use candid::{Encode, Principal};
use canister_api::agent::{AgentError, Supervision, UpgradeRecord, UpgradeState};
use canister_api::cadence::{Cadence, DetectionBounds, STEADY_AFTER_HEALTHY};
use canister_api::watchdog::{
    LadderStep, RollbackTarget, WatchdogConfig, WatchdogError, WatchdogStatus,
};
use ic_sim::CanisterStatusType;
use ic_sim::Fault;
use std::time::Duration;
use testbed::{Options, Testbed, chaos_release, operator, wasm};

const LIMIT: Duration = Duration::from_secs(30 * 60);
const NS: u64 = 1_000_000_000;

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn seeded() -> Testbed {
    let tb = Testbed::deploy(Options::default());
    tb.seed_state(10, 10);
    tb
}

fn terminal(tb: &Testbed, id: u64) -> UpgradeRecord {
    tb.run_until(LIMIT, |tb| tb.record(id).state.is_terminal())
        .unwrap_or_else(|| panic!("upgrade {id} did not finish: {:?}", tb.record(id)));
    tb.record(id)
}

/// Proposes `bytes` as an operator release and runs it to `Committed`; answers the record.
fn commit_release(tb: &Testbed, bytes: &[u8]) -> UpgradeRecord {
    let rec = tb
        .propose_release(bytes, "release")
        .expect("propose_release");
    let rec = terminal(tb, rec.id);
    assert_eq!(rec.state, UpgradeState::Committed, "{:?}", rec.history);
    rec
}

fn booted_at(rec: &UpgradeRecord) -> u64 {
    rec.history
        .iter()
        .find(|t| t.state == UpgradeState::Booted)
        .expect("booted")
        .at
}

fn restored(tb: &Testbed, n: usize) -> Option<Duration> {
    tb.run_until(LIMIT, |tb| {
        tb.incidents()
            .get(n - 1)
            .is_some_and(|i| i.restored_at.is_some())
    })
}

fn events(tb: &Testbed, action: &str) -> usize {
    tb.events().iter().filter(|e| e.action == action).count()
}

fn audit_has(tb: &Testbed, action: &str) -> bool {
    tb.audit().entries.iter().any(|e| e.action == action)
}

#[test]
fn a_version_whose_health_traps_after_commit_is_demoted_within_the_detection_bound() {
    let tb = seeded();
    let parent = tb.agent_module().unwrap();
    let before = tb.digest();
    let rec = commit_release(&tb, &chaos_release("health_trap_late"));
    assert_eq!(tb.watchdog_status().lkg.unwrap().hash, rec.candidate_hash);
    // From LATE_SECS after its boot, its health traps: by then the agent has been healthy
    // for a while and the watchdog heartbeats it at the steady cadence.
    let fails_from = booted_at(&rec) + 120 * NS;
    tb.run_until(LIMIT, |tb| {
        tb.watchdog_status().cadence == Some(Cadence::Steady)
    })
    .expect("steady after the commit");
    assert!(tb.now_nanos() < fails_from, "steady before the failure");
    restored(&tb, 1).expect("restored");
    let inc = &tb.incidents()[0];
    let config = WatchdogConfig::default();
    let bound = config.steady_detection_bound_secs();
    let detect = inc.detected_at - fails_from;
    assert!(
        detect <= bound * NS,
        "detected {:.1} s after the failure began; the steady bound is {bound} s",
        secs(detect)
    );
    // The first missed heartbeat switched to the fast cadence: the remaining ones came at
    // the fast interval.
    let fast_at = cadence_events(&tb)
        .into_iter()
        .filter(|(at, d)| *at >= fails_from && d.starts_with("Steady -> Fast"))
        .map(|(at, _)| at)
        .next()
        .expect("the miss switched to the fast cadence");
    let fast_part = u64::from(config.failure_threshold - 1) * config.heartbeat_interval_secs
        + u64::from(config.heartbeat_timeout_secs);
    assert!(
        inc.detected_at - fast_at <= fast_part * NS,
        "detected {:.1} s after the switch (at most {fast_part} s at the fast cadence)",
        secs(inc.detected_at - fast_at)
    );
    assert_eq!(inc.upgrade_id, None, "a steady-state failure");
    assert_eq!(
        inc.ladder_step,
        Some(LadderStep::Previous),
        "{:?}",
        inc.attempts
    );
    assert_eq!(inc.records_lost, Some(0), "{}", inc.data_lost);
    assert!(!inc.alert);
    // The version before it runs again and is the LKG on both sides; nothing lost.
    assert_eq!(tb.agent_module(), Some(parent.clone()));
    assert_eq!(tb.watchdog_status().lkg.unwrap().hash, parent);
    assert!(tb.watchdog_status().previous_lkg.is_none());
    assert!(tb.digest().same_state(&before));
    tb.run_until(LIMIT, |tb| {
        tb.health().running_module_hash == Some(parent.clone())
    })
    .expect("the agent learns which module the watchdog restored");
    assert!(audit_has(&tb, "agent.restored_by_watchdog"));
    assert!(tb.versions().iter().any(|v| v.hash == parent && v.is_lkg));
    // It stays healthy: no second incident.
    tb.run_for(Duration::from_secs(600));
    assert_eq!(tb.incidents().len(), 1);
    let bounds = detection_bounds(&tb);
    assert_eq!(bounds.steady_secs, bound);
    assert_eq!(bounds.fast_secs, config.detection_bound_secs());
    println!(
        "FIGURE health traps after commit (steady cadence): detected {:.1} s after the failure began (steady bound {bound} s), restored {:.1} s after detection",
        secs(detect),
        secs(inc.restored_at.unwrap() - inc.detected_at)
    );
}

#[test]
fn a_hung_health_is_caught_by_the_heartbeat_timeout() {
    let tb = seeded();
    let parent = tb.agent_module().unwrap();
    let before = tb.digest();
    commit_release(&tb, &chaos_release("health_calls_out"));
    tb.run_for(Duration::from_secs(30));
    // Just after a commit the watchdog still heartbeats at the fast cadence.
    assert_eq!(tb.watchdog_status().cadence, Some(Cadence::Fast));
    // From now on `health` awaits a call whose response never comes.
    let hang_from = tb.now_nanos();
    tb.sim.inject(Fault::HoldResponses { from: tb.staging });
    restored(&tb, 1).expect("restored");
    let inc = &tb.incidents()[0];
    let bound = WatchdogConfig::default().detection_bound_secs();
    let detect = inc.detected_at - hang_from;
    assert!(detect <= bound * NS, "detected after {:.1} s", secs(detect));
    assert!(inc.cause.contains("heartbeats failed"), "{}", inc.cause);
    // The hung calls keep the agent from stopping; the rung upgrades it while stopping.
    assert!(
        inc.attempts.iter().any(|a| a.contains("stop failed")),
        "{:?}",
        inc.attempts
    );
    assert_eq!(inc.ladder_step, Some(LadderStep::Previous));
    assert_eq!(tb.agent_module(), Some(parent));
    assert!(tb.digest().same_state(&before));
    assert_eq!(
        tb.sim.canister_run_status(tb.agent),
        Some(CanisterStatusType::Running)
    );
    println!(
        "FIGURE hung health: detected {:.1} s after the hang began (bound {bound} s), restored {:.1} s after detection (the stop request times out after 300 s)",
        secs(detect),
        secs(inc.restored_at.unwrap() - inc.detected_at)
    );
}

#[test]
fn one_lost_heartbeat_response_does_not_roll_back() {
    let tb = seeded();
    let module = tb.agent_module();
    tb.run_until(LIMIT, |tb| tb.watchdog_status().lkg.is_some())
        .expect("the watchdog copies the LKG");
    tb.sim.inject(Fault::DropResponses {
        from: tb.agent,
        probability: 1.0,
    });
    tb.run_until(LIMIT, |tb| {
        tb.watchdog_status()
            .last_heartbeat
            .is_some_and(|h| !h.healthy)
    })
    .expect("one heartbeat fails");
    tb.sim.clear_faults();
    let status = tb.watchdog_status();
    let hb = status.last_heartbeat.unwrap();
    assert!(!hb.healthy);
    // Lost on the network: the agent's code is not at fault, so it does not count.
    assert!(hb.detail.contains("network"), "{}", hb.detail);
    assert_eq!(status.consecutive_failures, 0);
    tb.run_for(Duration::from_secs(120));
    let status = tb.watchdog_status();
    assert_eq!(status.consecutive_failures, 0);
    assert!(status.last_heartbeat.unwrap().healthy);
    assert!(tb.incidents().is_empty());
    assert_eq!(events(&tb, "ladder.start"), 0);
    assert_eq!(tb.agent_module(), module);
}

#[derive(Debug, Clone, Copy)]
enum Kill {
    Uninstall,
    Stop,
    ReplaceWithForeignModule,
}

fn kill(tb: &Testbed, how: Kill) {
    let op = Some(operator());
    match how {
        Kill::Uninstall => tb.sim.uninstall_canister(tb.watchdog, op).unwrap(),
        Kill::Stop => tb.sim.stop_canister(tb.watchdog, op).unwrap(),
        Kill::ReplaceWithForeignModule => tb
            .sim
            .reinstall_canister(tb.watchdog, wasm("ic-sim-probe"), Encode!().unwrap(), op)
            .unwrap(),
    }
}

#[test]
fn a_killed_watchdog_is_repaired_by_the_agent_with_its_settings_and_lkg() {
    for how in [Kill::Uninstall, Kill::Stop, Kill::ReplaceWithForeignModule] {
        let tb = seeded();
        let second = Principal::self_authenticating(b"second operator");
        let config = WatchdogConfig {
            probation_heartbeats: 2,
            max_snapshots: 3,
            ..WatchdogConfig::default()
        };
        tb.configure(config).expect("configure");
        let ops: Result<Vec<Principal>, WatchdogError> = tb.watchdog_update(
            operator(),
            "set_operators",
            Encode!(&vec![operator(), second]).unwrap(),
        );
        ops.expect("set_operators");
        let wd_module = tb.watchdog_module();
        tb.run_until(LIMIT, |tb| {
            tb.watchdog_status().lkg.is_some() && tb.health().watchdog.unwrap().last_seen.is_some()
        })
        .expect("both sides have seen each other");
        tb.run_for(Duration::from_secs(20)); // the agent caches the latest status
        let lkg = tb.watchdog_status().lkg.unwrap();

        kill(&tb, how);
        let took = tb
            .run_until(LIMIT, |tb| tb.health().watchdog.unwrap().repairs == 1)
            .unwrap_or_else(|| panic!("{how:?}: not repaired; audit {:?}", tb.audit()));
        assert_eq!(tb.watchdog_module(), wd_module, "{how:?}");
        let status: WatchdogStatus = tb.watchdog_status();
        assert_eq!(status.config, config, "{how:?}: settings restored");
        assert_eq!(status.operators, vec![operator(), second], "{how:?}");
        assert!(!status.paused);
        // The LKG record is back (after a reinstall, its bytes are fetched from the agent).
        tb.run_until(LIMIT, |tb| tb.watchdog_status().lkg.is_some())
            .unwrap_or_else(|| panic!("{how:?}: no LKG; events {:?}", tb.events()));
        assert_eq!(tb.watchdog_status().lkg.unwrap().hash, lkg.hash, "{how:?}");
        // Journaled on both sides.
        assert!(audit_has(&tb, "watchdog.repaired"), "{how:?}");
        tb.run_until(LIMIT, |tb| tb.watchdog_status().repairs == 1)
            .unwrap_or_else(|| panic!("{how:?}: the watchdog did not journal the repair"));
        assert_eq!(events(&tb, "repair.by_agent"), 1, "{how:?}");
        // It supervises again: its heartbeats of the agent resume.
        let at = tb.now_nanos();
        tb.run_until(LIMIT, |tb| {
            tb.watchdog_status()
                .last_heartbeat
                .is_some_and(|h| h.at > at && h.healthy)
        })
        .unwrap_or_else(|| panic!("{how:?}: no heartbeat after the repair"));
        assert!(
            tb.incidents().is_empty(),
            "{how:?}: the agent was never touched"
        );
        let action = tb
            .audit()
            .entries
            .into_iter()
            .find(|e| e.action == "watchdog.repaired")
            .unwrap()
            .detail;
        println!(
            "FIGURE watchdog {how:?}: repaired by the agent {:.1} s after the kill ({}), agent detection bound {} s",
            took.as_secs_f64(),
            action.split(':').next().unwrap_or_default(),
            Supervision::default().detection_bound_secs()
        );
    }
}

#[test]
fn an_operator_rollback_interrupted_half_way_completes_on_retry() {
    let tb = seeded();
    let parent = tb.agent_module().unwrap();
    let before = tb.digest();
    let rec = commit_release(&tb, &chaos_release("none"));
    let id = tb
        .rollback(RollbackTarget::Version(parent.clone()))
        .expect("rollback");
    // The ladder stops the agent; the watchdog traps in its next message (the stop's reply).
    tb.sim.clear_faults();
    assert!(tb.tick_until(1_000_000, |tb| {
        tb.sim.canister_run_status(tb.agent) == Some(CanisterStatusType::Stopped)
    }));
    tb.sim.inject(Fault::TrapNextMessage {
        canister: tb.watchdog,
    });
    tb.sim.tick();
    tb.sim.tick();
    let trapped_at = tb.now_nanos();
    // Half-way: the agent stays stopped with the old module until the next tick retries.
    tb.run_for(Duration::from_secs(5));
    assert!(
        tb.incidents()[0].restored_at.is_none(),
        "interrupted before the install"
    );
    assert_eq!(
        tb.sim.canister_run_status(tb.agent),
        Some(CanisterStatusType::Stopped)
    );
    assert_eq!(tb.agent_module(), Some(rec.candidate_hash.clone()));
    restored(&tb, 1).expect("the next tick completes the rollback");
    let inc = &tb.incidents()[0];
    assert_eq!(inc.id, id);
    assert_eq!(
        inc.ladder_step,
        Some(LadderStep::Version),
        "{:?}",
        inc.attempts
    );
    assert!(inc.cause.contains("operator"), "{}", inc.cause);
    assert_eq!(inc.records_lost, Some(0));
    assert_eq!(tb.agent_module(), Some(parent.clone()));
    assert_eq!(tb.watchdog_status().lkg.unwrap().hash, parent);
    assert!(tb.digest().same_state(&before));
    assert_eq!(
        tb.sim.canister_run_status(tb.agent),
        Some(CanisterStatusType::Running)
    );
    println!(
        "FIGURE interrupted rollback: completed {:.1} s after the trap",
        secs(inc.restored_at.unwrap() - trapped_at)
    );
}

#[test]
fn operators_roll_back_to_a_named_version_or_snapshot_and_bad_targets_are_refused() {
    let tb = seeded();
    let parent = tb.agent_module().unwrap();
    let rec = commit_release(&tb, &chaos_release("none"));
    // Bad targets change nothing.
    match tb.rollback(RollbackTarget::Version(vec![7; 32])) {
        Err(WatchdogError::NotFound(m)) => assert!(m.contains("stored"), "{m}"),
        other => panic!("{other:?}"),
    }
    match tb.rollback(RollbackTarget::Version(vec![7; 3])) {
        Err(WatchdogError::InvalidArgument(_)) => {}
        other => panic!("{other:?}"),
    }
    match tb.rollback(RollbackTarget::Snapshot(vec![1, 2, 3])) {
        Err(WatchdogError::NotFound(m)) => assert!(m.contains("snapshot"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(tb.incidents().is_empty());
    assert_eq!(tb.agent_module(), Some(rec.candidate_hash.clone()));

    // A snapshot: the one taken when the release was armed (it holds the parent module and
    // the state of that moment); writes made since are lost, and the incident says so.
    let snapshots = tb
        .sim
        .list_canister_snapshots(tb.agent, Some(operator()))
        .unwrap();
    assert_eq!(snapshots.len(), 1);
    tb.try_remember("default", "late", "written after the snapshot")
        .expect("remember");
    tb.try_submit("late task").expect("submit");
    let id = tb
        .rollback(RollbackTarget::Snapshot(snapshots[0].id.clone()))
        .expect("rollback to the snapshot");
    restored(&tb, 1).expect("restored");
    let inc = &tb.incidents()[0];
    assert_eq!(inc.id, id);
    assert_eq!(inc.ladder_step, Some(LadderStep::Snapshot));
    assert_eq!(inc.records_lost, Some(2), "{}", inc.data_lost);
    assert!(
        inc.data_lost.contains("11 tasks and 11 facts before"),
        "{}",
        inc.data_lost
    );
    // The journal's Armed, Installing, Booted and Committed were written after the snapshot
    // (with an audit entry each): the load dropped them, and the incident counts them.
    assert_eq!(inc.journal_entries_lost, Some(4), "{}", inc.data_lost);
    assert!(
        inc.audit_entries_lost.is_some_and(|n| n >= 4),
        "{}",
        inc.data_lost
    );
    assert!(
        inc.data_lost.contains("4 journal transitions"),
        "{}",
        inc.data_lost
    );
    assert_eq!(tb.agent_module(), Some(parent.clone()));
    assert_eq!(tb.watchdog_status().lkg.unwrap().hash, parent);

    // A named version: forward again to the release, by its hash.
    let before = tb.digest();
    tb.rollback(RollbackTarget::Version(rec.candidate_hash.clone()))
        .expect("rollback to the release");
    restored(&tb, 2).expect("restored");
    let inc = &tb.incidents()[1];
    assert_eq!(inc.ladder_step, Some(LadderStep::Version));
    assert_eq!(inc.records_lost, Some(0));
    assert_eq!(
        (inc.journal_entries_lost, inc.audit_entries_lost),
        (Some(0), Some(0)),
        "an upgrade in place keeps the logs"
    );
    assert_eq!(tb.agent_module(), Some(rec.candidate_hash.clone()));
    assert_eq!(tb.watchdog_status().lkg.unwrap().hash, rec.candidate_hash);
    assert!(tb.digest().same_state(&before));
    tb.run_until(LIMIT, |tb| {
        tb.health().running_module_hash == Some(rec.candidate_hash.clone())
    })
    .expect("the agent follows");
}

#[test]
fn pause_stops_supervision_and_resume_restarts_it() {
    let tb = seeded();
    let r: Result<(), WatchdogError> = tb.watchdog_update(operator(), "pause", Encode!().unwrap());
    r.unwrap();
    let at = tb.now_nanos();
    tb.run_for(Duration::from_secs(60));
    let status = tb.watchdog_status();
    assert!(status.paused);
    assert!(
        status.last_heartbeat.is_none_or(|h| h.at <= at),
        "no heartbeats while paused"
    );
    assert!(status.alerts.iter().any(|a| a.contains("paused")));
    assert!(matches!(
        tb.rollback(RollbackTarget::Lkg),
        Err(WatchdogError::Paused)
    ));
    // The agent is not alarmed by a paused watchdog.
    assert_eq!(tb.health().watchdog.unwrap().consecutive_failures, 0);
    let r: Result<(), WatchdogError> = tb.watchdog_update(operator(), "resume", Encode!().unwrap());
    r.unwrap();
    let at = tb.now_nanos();
    tb.run_until(LIMIT, |tb| {
        tb.watchdog_status()
            .last_heartbeat
            .is_some_and(|h| h.at > at)
    })
    .expect("heartbeats resume");
}

#[test]
fn configure_checks_settings_and_moves_the_heartbeat_interval() {
    let tb = seeded();
    let bad = WatchdogConfig {
        heartbeat_interval_secs: 0,
        max_snapshots: 11,
        ..WatchdogConfig::default()
    };
    match tb.configure(bad) {
        Err(WatchdogError::InvalidArgument(m)) => {
            assert!(
                m.contains("heartbeat_interval_secs") && m.contains("max_snapshots"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(tb.watchdog_status().config, WatchdogConfig::default());
    let slow = WatchdogConfig {
        heartbeat_interval_secs: 60,
        steady_interval_secs: Some(60), // one cadence: the steady one turned off
        ..WatchdogConfig::default()
    };
    tb.configure(slow).unwrap();
    tb.run_until(LIMIT, |tb| tb.watchdog_status().last_heartbeat.is_some())
        .unwrap();
    let first = tb.watchdog_status().last_heartbeat.unwrap().at;
    tb.run_until(LIMIT, |tb| {
        tb.watchdog_status().last_heartbeat.unwrap().at > first
    })
    .unwrap();
    let second = tb.watchdog_status().last_heartbeat.unwrap().at;
    // Every 60 s, to within one block: rounds that run only timers are paced at the block
    // rate (ic-sim's `min_round_interval`, 600 ms), so a heartbeat lands up to a block late.
    let apart = second - first;
    assert!(
        apart.abs_diff(60 * NS) <= NS,
        "heartbeats every 60 s now, not {} ms apart",
        apart / 1_000_000
    );
    let bounds = detection_bounds(&tb);
    assert_eq!(
        (bounds.fast_secs, bounds.steady_secs),
        (60 * 3 + 5, 60 * 3 + 5)
    );
    // The agent's own settings are checked too.
    match tb.set_supervision(Supervision {
        failure_threshold: 0,
        ..Supervision::default()
    }) {
        Err(AgentError::InvalidArgument(m)) => assert!(m.contains("failure_threshold"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn below_the_reserve_no_heartbeats_are_sent_and_low_balances_are_reported() {
    let tb = seeded();
    let huge = 1_000_000_000_000_000_000u128; // above every balance here
    tb.configure(WatchdogConfig {
        cycles_floor: huge,
        cycles_reserve: huge,
        ..WatchdogConfig::default()
    })
    .unwrap();
    tb.set_supervision(Supervision {
        cycles_floor: huge,
        cycles_reserve: huge,
        ..Supervision::default()
    })
    .unwrap();
    tb.run_for(Duration::from_secs(15));
    let seen = tb.health().watchdog.unwrap().last_seen;
    tb.run_for(Duration::from_secs(120));
    let status = tb.watchdog_status();
    assert!(
        status
            .last_heartbeat
            .as_ref()
            .unwrap()
            .detail
            .starts_with("skipped"),
        "{:?}",
        status.last_heartbeat
    );
    assert!(
        status.alerts.iter().any(|a| a.contains("the watchdog has")),
        "{:?}",
        status.alerts
    );
    assert_eq!(events(&tb, "heartbeat.skipped"), 1, "logged once");
    assert!(events(&tb, "cycles.low") >= 1);
    let health = tb.health();
    assert!(
        health.alerts.iter().any(|a| a.contains("the agent has")),
        "{:?}",
        health.alerts
    );
    assert!(audit_has(&tb, "watchdog.heartbeat_skipped"));
    // Neither heartbeats the other any more.
    assert_eq!(tb.health().watchdog.unwrap().last_seen, seen);
    assert!(tb.incidents().is_empty());
}

#[test]
fn steady_state_heartbeat_cost() {
    let tb = seeded();
    // The cost of a tick at the fast cadence: the steady one is turned off on both sides
    // (`agentctl bench` measures the idle trio at its steady cadence).
    tb.configure(WatchdogConfig {
        steady_interval_secs: Some(10),
        ..WatchdogConfig::default()
    })
    .unwrap();
    tb.set_supervision(Supervision {
        steady_interval_secs: Some(10),
        ..Supervision::default()
    })
    .unwrap();
    tb.run_until(LIMIT, |tb| tb.watchdog_status().lkg.is_some())
        .unwrap();
    tb.run_for(Duration::from_secs(60));
    let hour = Duration::from_secs(3600);
    let (wd0, ag0) = (
        tb.sim.cycle_balance(tb.watchdog),
        tb.sim.cycle_balance(tb.agent),
    );
    let (wi0, ai0) = (
        tb.sim.execution_stats(tb.watchdog).total_instructions,
        tb.sim.execution_stats(tb.agent).total_instructions,
    );
    tb.run_for(hour);
    let wd_cycles = (wd0 - tb.sim.cycle_balance(tb.watchdog)) * 24;
    let ag_cycles = (ag0 - tb.sim.cycle_balance(tb.agent)) * 24;
    let wd_instr = (tb.sim.execution_stats(tb.watchdog).total_instructions - wi0) * 24;
    let ag_instr = (tb.sim.execution_stats(tb.agent).total_instructions - ai0) * 24;
    let beats = 24 * 3600 / WatchdogConfig::default().heartbeat_interval_secs;
    assert!(wd_cycles > 0 && ag_cycles > 0, "heartbeats cost cycles");
    assert!(tb.incidents().is_empty());
    println!(
        "FIGURE heartbeat cost per day (one hour x 24, interval 10 s both ways): watchdog {wd_cycles} cycles, {wd_instr} instructions ({} per tick); agent {ag_cycles} cycles, {ag_instr} instructions ({} per tick)",
        wd_instr / beats,
        ag_instr / beats
    );
}

#[test]
fn a_heartbeat_that_answers_unhealthy_counts_as_a_failure() {
    let tb = seeded();
    let parent = tb.agent_module().unwrap();
    let rec = tb
        .propose_release(&chaos_release("reports_unhealthy"), "answers unhealthy")
        .expect("propose_release");
    let rec = terminal(&tb, rec.id);
    assert!(
        matches!(rec.state, UpgradeState::RolledBack(_)),
        "{:?}",
        rec.history
    );
    let inc = &tb.incidents()[0];
    assert!(inc.cause.contains("unhealthy"), "{}", inc.cause);
    assert_eq!(tb.agent_module(), Some(parent));
}

#[test]
fn the_agent_leaves_the_watchdog_alone_inside_an_armed_window_and_repairs_it_after() {
    let tb = seeded();
    let rec = tb
        .propose_release(&chaos_release("none"), "release")
        .expect("propose_release");
    tb.run_until(LIMIT, |tb| tb.record(rec.id).state == UpgradeState::Booted)
        .expect("booted");
    let armed_since = tb
        .health()
        .writes_paused
        .expect("writes paused on probation");
    assert!(armed_since.starts_with("upgrade"), "{armed_since}");
    // The watchdog dies on probation.
    tb.sim.stop_canister(tb.watchdog, Some(operator())).unwrap();
    let stopped_at = tb.now_nanos();
    tb.run_until(LIMIT, |tb| audit_has(tb, "watchdog.repair_deferred"))
        .expect("the repair is deferred");
    assert!(!audit_has(&tb, "watchdog.repaired"));
    tb.run_until(LIMIT, |tb| audit_has(tb, "watchdog.repaired"))
        .expect("repaired once the window ended");
    let window = WatchdogConfig::default().arm_window_secs * NS;
    let armed_at = tb
        .record(rec.id)
        .history
        .iter()
        .find(|t| t.state == UpgradeState::Approved)
        .unwrap()
        .at;
    assert!(
        tb.now_nanos() >= armed_at + window,
        "not before the window ends ({:.0} s after the stop)",
        secs(tb.now_nanos() - stopped_at)
    );
    // Started again with its state, the watchdog finishes the probation and commits.
    let rec = terminal(&tb, rec.id);
    assert_eq!(rec.state, UpgradeState::Committed, "{:?}", rec.history);
    tb.try_remember("default", "after", "repair")
        .expect("writes resume");
}

/// A snapshot load keeps the agent's live global timer (the replica restores it only for
/// uploaded snapshots) and brings back ic-cdk-timers' record of the deadline it set last, so an
/// agent restored from a snapshot after an uninstall (global timer 0) would never run its
/// timers again: no heartbeats of the watchdog, no pipeline. The watchdog's notice of the
/// restore makes the agent fire its timer at once (issue "ic-sim against suites written by
/// others", item 8).
#[test]
fn an_agent_restored_from_a_snapshot_runs_its_timers_again() {
    let tb = Testbed::deploy(Options::default());
    let seen = |tb: &Testbed| tb.health().watchdog.and_then(|w| w.last_seen);
    tb.run_until(LIMIT, |tb| seen(tb).is_some())
        .expect("the agent heartbeats the watchdog");
    tb.sim
        .take_canister_snapshot(tb.agent, Some(operator()), None)
        .expect("snapshot");
    // The agent loses its code: the watchdog's ladder finds no LKG to upgrade an empty canister
    // with in place and loads the latest snapshot.
    tb.sim
        .uninstall_canister(tb.agent, Some(operator()))
        .expect("uninstall");
    restored(&tb, 1).expect("the watchdog restores the agent");
    let incident = tb.incidents().remove(0);
    assert_eq!(
        incident.ladder_step,
        Some(LadderStep::Snapshot),
        "{incident:?}"
    );
    let restored_at = incident.restored_at.unwrap();
    tb.run_for(Duration::from_secs(120));
    let last = seen(&tb).unwrap_or(0);
    assert!(
        last > restored_at,
        "the restored agent never heartbeat the watchdog again (last seen {} s before the restore)",
        secs(restored_at.saturating_sub(last))
    );
}

/// A ladder that keeps failing (the watchdog was removed from the agent's controllers while the
/// agent was stopped, so every rung is refused) keeps one incident whose attempt lines stay
/// bounded however long it fails; `incidents` answers far under the 2 MiB reply limit. Once an
/// operator gives the watchdog its control back, the next pass restores the agent.
#[test]
fn an_exhausted_ladder_keeps_its_incident_bounded_and_recovers_when_control_is_back() {
    // A restore that cannot act (the watchdog is no longer a controller of the agent) waits,
    // and however long it waits its incident stays small and readable; the bound on attempt
    // lines of a ladder that fails pass after pass is `store::push_attempt`'s (its unit test
    // `an_incident_keeps_the_first_and_newest_attempt_lines`).
    let tb = seeded();
    tb.run_until(LIMIT, |tb| tb.watchdog_status().lkg.is_some())
        .expect("the watchdog holds the LKG");
    tb.sim
        .set_controllers(tb.agent, Some(operator()), vec![operator(), tb.agent])
        .expect("the operator removes the watchdog");
    tb.sim
        .uninstall_canister(tb.agent, Some(operator()))
        .expect("the operator uninstalls the agent's code");
    // Half an hour of ticks: about 180 heartbeats and ladder ticks.
    tb.run_for(Duration::from_secs(1800));
    let status = tb.watchdog_status();
    let restore = status.restore.expect("still restoring");
    assert_eq!(restore.passes, 0, "no rung is tried without control");
    let incidents = tb.incidents();
    assert_eq!(incidents.len(), 1, "one incident, however many ticks");
    let inc = &incidents[0];
    assert!(inc.restored_at.is_none());
    assert!(
        inc.attempts.len() <= 32,
        "{} attempt lines kept",
        inc.attempts.len()
    );
    assert_eq!(
        inc.attempts
            .iter()
            .filter(|l| l.starts_with("waiting"))
            .count(),
        1,
        "the wait is noted once: {:?}",
        inc.attempts
    );
    assert!(inc.attempts.iter().all(|l| l.len() <= 2048));
    let reply = tb
        .sim
        .query_call(
            tb.watchdog,
            testbed::stranger(),
            "incidents",
            Encode!(&0u64, &100u32).unwrap(),
        )
        .expect("incidents answers");
    assert!(reply.len() < 100_000, "{} bytes", reply.len());
    assert!(tb.events().len() <= 5_000);

    // The way out: the operator gives the control back and starts the agent.
    tb.sim
        .set_controllers(
            tb.agent,
            Some(operator()),
            vec![operator(), tb.agent, tb.watchdog],
        )
        .expect("the operator restores the controllers");
    restored(&tb, 1).expect("the next pass restores the agent");
    assert!(tb.watchdog_status().restore.is_none());
}

/// Found by the explorer (seed 1): the agent is uninstalled with no upgrade armed and the watchdog
/// reinstalls it clean (the ladder's last rung). The init argument of that reinstall used to name
/// no staging canister, so every later upgrade waited at `Validated` for good; the watchdog now
/// takes it from the agent's last healthy heartbeat (`Health::staging`).
#[test]
fn a_clean_reinstall_with_no_upgrade_armed_keeps_the_staging_canister() {
    let tb = seeded();
    assert_eq!(tb.health().staging, Some(tb.staging));
    tb.run_until(LIMIT, |tb| {
        tb.watchdog_status().lkg.is_some() && tb.watchdog_status().agent_health.is_some()
    })
    .expect("the watchdog has an LKG and a healthy heartbeat");
    tb.uninstall_agent_until_reinstalled_clean(LIMIT);
    let health = tb.health();
    assert_eq!(
        health.staging,
        Some(tb.staging),
        "the reinstalled agent lost its staging canister"
    );
}

/// Seconds between the watchdog's next two heartbeats.
fn watchdog_heartbeat_gap(tb: &Testbed) -> u64 {
    let at = |tb: &Testbed| tb.watchdog_status().last_heartbeat.map_or(0, |h| h.at);
    let first = at(tb);
    tb.run_until(LIMIT, |tb| at(tb) > first)
        .expect("a heartbeat");
    let second = at(tb);
    tb.run_until(LIMIT, |tb| at(tb) > second)
        .expect("another heartbeat");
    (at(tb) - second) / NS
}

fn steady_on_both_sides(tb: &Testbed) -> bool {
    tb.watchdog_status().cadence == Some(Cadence::Steady)
        && tb.health().watchdog.and_then(|w| w.cadence) == Some(Cadence::Steady)
}

fn cadence_events(tb: &Testbed) -> Vec<(u64, String)> {
    tb.events()
        .into_iter()
        .filter(|e| e.action == "cadence")
        .map(|e| (e.at, e.detail))
        .collect()
}

#[test]
fn heartbeats_are_fast_on_probation_and_steady_once_the_agent_has_been_healthy_for_a_while() {
    let tb = seeded();
    let config = WatchdogConfig::default();
    tb.run_until(LIMIT, steady_on_both_sides)
        .expect("both sides reach the steady cadence");
    assert_eq!(
        watchdog_heartbeat_gap(&tb),
        config.steady_interval_secs(),
        "a steady heartbeat every {} s",
        config.steady_interval_secs()
    );
    let bounds = detection_bounds(&tb);
    assert_eq!(
        bounds,
        DetectionBounds {
            fast_secs: 35,
            steady_secs: 510,
            cadence: Cadence::Steady,
            in_force_secs: 510,
        }
    );
    assert!(
        bounds.steady_secs <= 600,
        "issue 19: steady detection <= 10 minutes"
    );

    // An upgrade armed: fast at once, and its probation heartbeats 10 s apart.
    let rec = tb
        .propose_release(&chaos_release("none"), "release")
        .expect("propose_release");
    tb.run_until(LIMIT, |tb| tb.watchdog_status().armed.is_some())
        .expect("armed");
    assert_eq!(tb.watchdog_status().cadence, Some(Cadence::Fast));
    let probation = |n: u32| {
        move |tb: &Testbed| {
            tb.watchdog_status()
                .armed
                .is_some_and(|a| a.healthy_heartbeats >= n)
        }
    };
    tb.run_until(LIMIT, probation(1)).expect("on probation");
    let first = tb.watchdog_status().last_heartbeat.unwrap().at;
    tb.run_until(LIMIT, probation(2))
        .expect("a second probation heartbeat");
    let second = tb.watchdog_status().last_heartbeat.unwrap().at;
    assert_eq!((second - first) / NS, config.heartbeat_interval_secs);
    // The agent heartbeats the watchdog fast while its upgrade is in flight.
    assert_eq!(
        tb.health().watchdog.and_then(|w| w.cadence),
        Some(Cadence::Fast)
    );
    let rec = terminal(&tb, rec.id);
    assert_eq!(rec.state, UpgradeState::Committed, "{:?}", rec.history);
    let committed_at = rec.history.last().unwrap().at;

    // Committed and healthy for a while: steady again, on both sides.
    tb.run_until(LIMIT, steady_on_both_sides)
        .expect("steady again after the commit");
    let events = cadence_events(&tb);
    let (back_at, _) = events
        .iter()
        .rev()
        .find(|(_, d)| d.starts_with("Fast -> Steady"))
        .unwrap_or_else(|| panic!("no switch back to steady: {events:?}"));
    let after = (back_at - committed_at) / NS;
    let at_most = u64::from(STEADY_AFTER_HEALTHY + 1) * config.heartbeat_interval_secs;
    assert!(
        after <= at_most,
        "steady {after} s after the commit (at most {at_most} s)"
    );
    assert!(
        events.iter().any(|(_, d)| d.starts_with("Steady -> Fast")),
        "{events:?}"
    );
    assert!(
        tb.audit()
            .entries
            .iter()
            .any(|e| e.action == "watchdog.cadence" && e.detail.starts_with("Fast -> Steady")),
        "the agent journals its switch"
    );
    assert!(tb.incidents().is_empty());
}

#[test]
fn the_cadence_after_an_upgrade_of_the_watchdog_comes_from_its_state() {
    let tb = seeded();
    tb.run_until(LIMIT, steady_on_both_sides)
        .expect("both sides reach the steady cadence");
    let switches = cadence_events(&tb).len();
    // Timers are lost on an upgrade: post_upgrade sets the one the stored state calls for.
    tb.sim
        .upgrade_canister(
            tb.watchdog,
            wasm("watchdog"),
            Encode!().unwrap(),
            Some(operator()),
        )
        .expect("upgrade the watchdog");
    assert_eq!(tb.watchdog_status().cadence, Some(Cadence::Steady));
    assert_eq!(
        watchdog_heartbeat_gap(&tb),
        WatchdogConfig::default().steady_interval_secs()
    );
    assert_eq!(
        cadence_events(&tb).len(),
        switches,
        "no switch: {:?}",
        cadence_events(&tb)
    );
    // The agent too: an upgrade that keeps its state keeps its cadence.
    tb.sim
        .upgrade_canister(
            tb.agent,
            wasm("agent"),
            Encode!().unwrap(),
            Some(operator()),
        )
        .expect("upgrade the agent");
    assert_eq!(
        tb.health().watchdog.and_then(|w| w.cadence),
        Some(Cadence::Steady)
    );
    let seen = |tb: &Testbed| tb.health().watchdog.and_then(|w| w.last_seen).unwrap_or(0);
    let first = seen(&tb);
    tb.run_until(LIMIT, |tb| seen(tb) > first)
        .expect("a heartbeat");
    let second = seen(&tb);
    tb.run_until(LIMIT, |tb| seen(tb) > second)
        .expect("another heartbeat");
    assert_eq!(
        (seen(&tb) - second) / NS,
        Supervision::default().beat().steady_interval_secs()
    );
}

#[test]
fn both_cadences_are_configurable_and_bad_settings_change_nothing() {
    let tb = seeded();
    // Shorter than the fast interval, or over a day: refused, nothing changed.
    for steady in [5, 86_401] {
        let bad = WatchdogConfig {
            steady_interval_secs: Some(steady),
            ..WatchdogConfig::default()
        };
        match tb.configure(bad) {
            Err(WatchdogError::InvalidArgument(m)) => {
                assert!(m.contains("steady_interval_secs"), "{m}")
            }
            other => panic!("{steady}: {other:?}"),
        }
        assert_eq!(tb.watchdog_status().config, WatchdogConfig::default());
        match tb.set_supervision(Supervision {
            steady_interval_secs: Some(steady),
            ..Supervision::default()
        }) {
            Err(AgentError::InvalidArgument(m)) => {
                assert!(m.contains("steady_interval_secs"), "{m}")
            }
            other => panic!("{steady}: {other:?}"),
        }
        let cfg: Result<canister_api::agent::Config, AgentError> =
            tb.agent_query("get_config", Encode!().unwrap());
        assert_eq!(cfg.unwrap().supervision, None, "nothing changed");
    }
    // A steady cadence of two minutes: its bound is 120 + 5 + 2 x 10 + 5 s.
    let two_minutes = WatchdogConfig {
        steady_interval_secs: Some(120),
        ..WatchdogConfig::default()
    };
    tb.configure(two_minutes).expect("configure");
    let bounds = detection_bounds(&tb);
    assert_eq!((bounds.fast_secs, bounds.steady_secs), (35, 150));
    tb.run_until(LIMIT, |tb| {
        tb.watchdog_status().cadence == Some(Cadence::Steady)
    })
    .expect("steady");
    assert_eq!(watchdog_heartbeat_gap(&tb), 120);
    // The steady interval equal to the fast one turns the steady cadence off.
    let off = Supervision {
        steady_interval_secs: Some(10),
        ..Supervision::default()
    };
    assert_eq!(
        off.steady_detection_bound_secs(),
        off.detection_bound_secs()
    );
    tb.set_supervision(off).expect("set_supervision");
}

/// The watchdog's `detection_bound_secs` (public: asked as a stranger).
fn detection_bounds(tb: &Testbed) -> DetectionBounds {
    tb.query(
        tb.watchdog,
        testbed::stranger(),
        "detection_bound_secs",
        Encode!().unwrap(),
    )
}

/// Traps `canister`'s timer handler, in which nothing but its own timer runs (the caller made
/// sure of that), and proves it: the trap struck, and nothing runs in it for 20 intervals.
fn trap_the_timer_handler(tb: &Testbed, canister: Principal, name: &str, interval: u64) {
    // Between two ticks: one just started, and its calls and callbacks have run.
    let executions = tb.sim.execution_stats(canister).executions;
    assert!(
        tb.tick_until(1_000, |tb| tb.sim.execution_stats(canister).executions
            > executions),
        "the {name}'s timer runs"
    );
    tb.run_for(Duration::from_secs(3));
    let trapped = tb.sim.faults_fired().trapped;
    tb.sim.inject(Fault::TrapNextMessage { canister });
    tb.run_for(Duration::from_secs(2 * interval));
    assert_eq!(
        tb.sim.faults_fired().trapped,
        trapped + 1,
        "the trap struck"
    );
    tb.sim.clear_faults();
    let executions = tb.sim.execution_stats(canister).executions;
    tb.run_for(Duration::from_secs(20 * interval));
    assert_eq!(
        tb.sim.execution_stats(canister).executions,
        executions,
        "the trap struck the timer handler: nothing runs in the {name} any more"
    );
}

/// The explorer's finding on seed 4: a trap in the watchdog's `canister_global_timer` leaves
/// the IC's global timer disarmed (as on the IC: the timer is deactivated before the handler
/// runs, and a trap rolls back the handler's `global_timer_set`), and ic-cdk-timers never sets
/// it again, so supervision ended for good, `resume` included. Now every update an operator or
/// the agent may call re-arms it (`timer.rearmed`), and supervision resumes within one
/// heartbeat interval of that call.
#[test]
fn a_trap_in_the_watchdogs_timer_handler_is_undone_by_the_next_update() {
    let tb = seeded();
    // Nothing but its own timer runs in the watchdog: the agent, which calls it, is stopped,
    // and a paused watchdog's tick makes no call (no callback can take the trap).
    tb.sim.stop_canister(tb.agent, Some(operator())).unwrap();
    let r: Result<(), WatchdogError> = tb.watchdog_update(operator(), "pause", Encode!().unwrap());
    r.unwrap();
    let interval = tb.watchdog_status().config.heartbeat_interval_secs;
    trap_the_timer_handler(&tb, tb.watchdog, "watchdog", interval);
    assert_eq!(events(&tb, "timer.rearmed"), 0);

    tb.sim.start_canister(tb.agent, Some(operator())).unwrap();
    let r: Result<(), WatchdogError> = tb.watchdog_update(operator(), "resume", Encode!().unwrap());
    r.unwrap();
    let at = tb.now_nanos();
    assert_eq!(events(&tb, "timer.rearmed"), 1, "{:?}", tb.events());
    let took = tb
        .run_until(LIMIT, |tb| {
            tb.watchdog_status()
                .last_heartbeat
                .is_some_and(|h| h.at > at && h.healthy)
        })
        .expect("supervision resumes after the operator's update");
    println!("FIGURE timer_rearmed_heartbeat_after_s {}", took.as_secs());
    assert!(
        took <= Duration::from_secs(interval + 5),
        "a heartbeat within one interval of the update, not {took:?}"
    );
}

/// The explorer's finding on seed 8: an upgrade rolled back by the watchdog (incident 1), then
/// the agent loses its code and the ladder's Snapshot rung loads the newest snapshot, that
/// upgrade's arm-time snapshot, whose journal shows it in flight (`Approved`: the go-ahead
/// follows the snapshot). The agent ended it a second time with the restore's reason, so a
/// terminal record changed. Now the restore's notice carries the outcomes the watchdog decided,
/// and the record ends exactly as it had ended.
#[test]
fn a_restored_arm_time_snapshot_ends_its_upgrade_as_the_watchdog_had_decided() {
    let tb = seeded();
    let rec = tb
        .propose_release(&chaos_release("reports_unhealthy"), "answers unhealthy")
        .expect("propose_release");
    let ended = terminal(&tb, rec.id);
    assert!(
        matches!(&ended.state, UpgradeState::RolledBack(why) if why.contains("(incident 1)")),
        "{:?}",
        ended.history
    );
    tb.sim
        .uninstall_canister(tb.agent, Some(operator()))
        .expect("uninstall");
    restored(&tb, 2).expect("the watchdog restores the agent");
    let incident = tb.incidents().remove(1);
    assert_eq!(
        incident.ladder_step,
        Some(LadderStep::Snapshot),
        "{incident:?}"
    );
    tb.run_until(LIMIT, |tb| {
        tb.try_record(rec.id)
            .is_some_and(|r| r.state.is_terminal() && r.history.len() < ended.history.len())
    })
    .unwrap_or_else(|| panic!("the restored record: {:?}", tb.try_record(rec.id)));
    let again = tb.record(rec.id);
    let n = again.history.len();
    assert_eq!(
        again.history[n - 2].state,
        UpgradeState::Approved,
        "the snapshot's journal held the upgrade in flight: {:?}",
        again.history
    );
    assert_eq!(
        again.state, ended.state,
        "a terminal record never changes: {:?}",
        again.history
    );
    assert!(
        again.history[n - 1]
            .reason
            .contains("as the watchdog had decided"),
        "{:?}",
        again.history[n - 1]
    );
    assert!(tb.health().writes_paused.is_none(), "the pause is lifted");
}

/// The same hole in the agent: a trap in its `canister_global_timer` leaves the IC's global
/// timer disarmed and ic-cdk-timers never sets it again, so the agent's heartbeats of the
/// watchdog (and its pipeline's timers) stop. Every update that succeeds re-arms it
/// (`agent.timer_rearmed`): the next write of an operator brings the heartbeats back.
#[test]
fn a_trap_in_the_agents_timer_handler_is_undone_by_the_next_update() {
    let tb = seeded();
    let seen = |tb: &Testbed| tb.health().watchdog.and_then(|w| w.last_seen);
    tb.run_until(LIMIT, |tb| seen(tb).is_some())
        .expect("the agent heartbeats the watchdog");
    // Nothing but the agent's own timer runs in the agent: a paused watchdog does not call it
    // (and a paused watchdog is not one the agent repairs).
    let r: Result<(), WatchdogError> = tb.watchdog_update(operator(), "pause", Encode!().unwrap());
    r.unwrap();
    let interval = tb.watchdog_status().config.heartbeat_interval_secs;
    trap_the_timer_handler(&tb, tb.agent, "agent", interval);
    assert!(!audit_has(&tb, "agent.timer_rearmed"));

    let at = tb.now_nanos();
    tb.try_remember("notes", "after-the-trap", "written")
        .expect("an operator's write");
    assert!(audit_has(&tb, "agent.timer_rearmed"));
    let took = tb
        .run_until(LIMIT, |tb| seen(tb).is_some_and(|t| t > at))
        .expect("the agent heartbeats the watchdog again");
    println!(
        "FIGURE agent_timer_rearmed_heartbeat_after_s {}",
        took.as_secs()
    );
}
