//! Determinism: the same seed and the same inputs give the same outcome, down to canister ids,
//! times, instruction counts, logs and which responses a fault dropped.

mod common;

use std::time::Duration;

use common::*;

/// Everything observable about one run of [`scenario`].
#[derive(Debug, PartialEq)]
struct Transcript {
    ids: Vec<Principal>,
    outcomes: Vec<CallOutcome>,
    times: Vec<u64>,
    instructions: Vec<u64>,
    counters: Vec<u64>,
    log: Vec<String>,
    balances: Vec<u128>,
}

/// Two probes; 24 best-effort calls, half of whose responses a fault drops at random; timers;
/// an upgrade.
fn scenario(seed: u64) -> Transcript {
    let sim = Sim::with_config(SimConfig {
        seed,
        ..SimConfig::default()
    });
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    sim.inject(Fault::DropResponses {
        from: b,
        probability: 0.5,
    });
    let mut outcomes = Vec::new();
    let mut times = Vec::new();
    let mut instructions = Vec::new();
    for i in 0..24u64 {
        outcomes.push(probe_call(&sim, a, CallArgs::no_arg(b, "inc").bounded(30)));
        instructions.push(sim.last_instructions(a));
        let t: u64 = update(&sim, a, "time", Encode!().unwrap()).unwrap();
        times.push(t);
        if i % 8 == 0 {
            let () = update(&sim, a, "set_timer", Encode!(&1u64).unwrap()).unwrap();
            let () = update(
                &sim,
                a,
                "debug_print",
                Encode!(&format!("step {i}")).unwrap(),
            )
            .unwrap();
            sim.advance_time(Duration::from_millis(1_500));
        }
    }
    sim.clear_faults();
    sim.upgrade_canister(a, probe_wasm(), no_init(), None)
        .unwrap();
    ticks(&sim, 5);
    Transcript {
        ids: vec![a, b],
        outcomes,
        times,
        instructions,
        counters: vec![read(&sim, a), read(&sim, b), timers_fired(&sim, a)],
        log: sim.debug_log(a),
        balances: vec![sim.cycle_balance(a), sim.cycle_balance(b)],
    }
}

/// Same seed, same outcome.
#[test]
fn same_seed_same_outcome() {
    let first = scenario(42);
    let second = scenario(42);
    assert_eq!(first, second);
    // The fault did bite, and not every time: the comparison above is not vacuous.
    let dropped = first
        .outcomes
        .iter()
        .filter(|o| matches!(o, CallOutcome::Reject { code: 6, .. }))
        .count();
    assert!(
        dropped > 0 && dropped < first.outcomes.len(),
        "dropped {dropped} of 24"
    );
    for outcome in &first.outcomes {
        match outcome {
            CallOutcome::Reply(_) => {}
            other => assert_call_reject(other, RejectCode::SysUnknown, &["Response was dropped."]),
        }
    }
}

/// The seed is what varies the faults: some other seed drops a different set of responses.
#[test]
fn different_seeds_drop_different_responses() {
    let pattern = |seed: u64| -> Vec<bool> {
        scenario(seed)
            .outcomes
            .iter()
            .map(|o| matches!(o, CallOutcome::Reply(_)))
            .collect()
    };
    let base = pattern(1);
    assert!(
        (2..6).any(|seed| pattern(seed) != base),
        "five seeds gave the same 24 drop decisions"
    );
}

/// Without faults, two fresh simulators agree on ids, time and instruction counts.
#[test]
fn fresh_simulators_agree() {
    let run = || {
        let sim = Sim::new();
        let id = new_probe(&sim);
        let burnt: u64 = update(
            &sim,
            id,
            "burn_instructions",
            Encode!(&1_000_000u64).unwrap(),
        )
        .unwrap();
        (
            id,
            now(&sim),
            burnt,
            sim.last_instructions(id),
            sim.module_hash(id),
        )
    };
    assert_eq!(run(), run());
}
