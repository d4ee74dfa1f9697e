//! Every fault kind under several seeds: each run must keep every invariant. A failure prints
//! the scenario, the seed (which replays exactly: `agentctl chaos --scenario NAME --seeds ...`)
//! and the invariants that broke. `CHAOS_SEEDS=N` runs more seeds (a longer soak).

use chaos_tests::{all, find, report, run};

fn seeds() -> u64 {
    std::env::var("CHAOS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

fn check(name: &str) {
    let scenario = find(name).unwrap_or_else(|| panic!("no scenario {name}"));
    let reports: Vec<_> = (1..=seeds()).map(|seed| run(&scenario, seed)).collect();
    print!("{}", report::table(&reports));
    for r in &reports {
        assert!(
            r.passed,
            "{} seed {}: {}\nnotes: {:#?}",
            r.scenario,
            r.seed,
            r.failures(),
            r.notes
        );
    }
}

macro_rules! chaos {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { check(stringify!($name)); })*

        #[test]
        fn every_scenario_has_a_test() {
            let listed = [$(stringify!($name)),*];
            for s in all() {
                assert!(listed.contains(&s.name), "scenario {} has no test", s.name);
            }
            assert_eq!(listed.len(), all().len());
        }
    };
}

chaos!(
    truncated_wasm,
    bit_flipped_wasm,
    empty_wasm,
    gzip_garbage_wasm,
    forbidden_import,
    missing_required_export,
    post_upgrade_trap,
    migration_traps_half_way,
    migration_drops_records,
    post_upgrade_over_instruction_limit,
    current_pre_upgrade_traps,
    boots_but_health_traps,
    boots_but_reports_unhealthy,
    boots_healthy_but_a_tool_is_broken,
    candidate_drops_watchdog_controller,
    candidate_burns_cycles,
    dies_after_n_calls,
    health_trap_after_commit,
    hangs_on_probation,
    stuck_in_stopping_during_rollback,
    watchdog_killed_in_steady_state,
    watchdog_killed_mid_upgrade,
    watchdog_killed_mid_bad_upgrade,
    rollback_interrupted,
    lkg_copy_corrupted,
    circuit_breaker,
    concurrent_upgrade_requests,
    snapshot_limit_reached,
    responses_dropped_at_random,
    tool_exceeds_fact_quota,
    tool_loops_to_its_budget,
    tool_shadows_a_builtin,
    tool_abi_bit_flip,
    time_jumps_a_day,
    llm_proposes_bad_upgrade,
    llm_upgrade_storm,
    llm_unavailable,
    upgrade_mid_turn,
);

/// Every scenario declares the trace of its fault it checks; that it checks one is the
/// `fault_took_effect` invariant of each run above (a run that checked none fails it, see
/// `broken_systems.rs`).
#[test]
fn every_scenario_declares_the_trace_it_checks() {
    let candidate = chaos_tests::scenarios::candidate(vec![]);
    for s in all().iter().chain([&candidate]) {
        assert!(!s.trace.is_empty(), "scenario {} declares no trace", s.name);
    }
}

/// A seed replays exactly: the same scenario and seed give the same report (but the wall time),
/// and another seed makes other choices.
#[test]
fn a_seed_replays_exactly() {
    let scenario = find("bit_flipped_wasm").unwrap();
    let strip = |r: &chaos_tests::Report| {
        let mut v = serde_json::to_value(r).unwrap();
        v.as_object_mut().unwrap().remove("wall_ms");
        v
    };
    let a = run(&scenario, 4);
    let b = run(&scenario, 4);
    assert_eq!(strip(&a), strip(&b));
    let c = run(&scenario, 5);
    assert_ne!(
        a.notes, c.notes,
        "seed 5 flips another bit and seeds another state"
    );
}

/// Seeds change the message orders (the simulator chooses among the orders the IC allows, FIFO
/// per pair of canisters) and the round each fault strikes in, not just the amount of state:
/// every seed of an upgrade that boots and fails gives a trace of its own. Prints the count
/// (`CHAOS_SEEDS=20 ... -- --nocapture` for the figure in docs/benchmarks.md).
#[test]
fn seeds_give_distinct_traces() {
    let scenario = find("boots_but_health_traps").unwrap();
    let reports: Vec<_> = (1..=seeds()).map(|seed| run(&scenario, seed)).collect();
    let traces: std::collections::BTreeSet<&str> =
        reports.iter().map(|r| r.trace.as_str()).collect();
    println!(
        "FIGURE {} seeds of boots_but_health_traps: {} distinct traces",
        reports.len(),
        traces.len()
    );
    assert!(reports.iter().all(|r| r.passed));
    assert_eq!(
        traces.len(),
        reports.len(),
        "two seeds replayed the same run"
    );
}
