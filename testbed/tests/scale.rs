//! The scale benchmark (issue 13, item 5): an agent holding hundreds of thousands of tasks and
//! facts goes through a self-patch, a rehearsal and a commit, and every step stays within the
//! IC's limits. Prints instructions per step and bytes copied.
//!
//! ```sh
//! cargo test -p testbed --test scale -- --ignored --nocapture   # 100,000 tasks, 200,000 facts
//! cargo test -p testbed --test scale                            # the small check in the test command
//! ```
//!
//! The records are written by a test-only bulk path, not by update calls (300,000 calls would
//! measure the simulator, not the agent): they are inserted natively into a copy of the agent's
//! stable memory with the agent's own encodings and MemoryIds, its kept digest is reset, and
//! the agent is upgraded to its own module, which recounts the digest from the records at boot
//! (as for a state written by a build that kept no digest). Everything after that goes through
//! the canisters' own endpoints.

use agent::digest::DigestState;
use agent::memory::{BUCKET_PAGES, DIGEST, FACTS, TASKS};
use candid::Encode;
use canister_api::agent::{UpgradeRecord, UpgradeState};
use canister_api::staging::ProbeResult;
use ic_stable_structures::memory_manager::MemoryManager;
use ic_stable_structures::{Cell as StableCell, StableBTreeMap, VectorMemory};
use migrations::FactKey;
use std::time::{Duration, Instant};
use testbed::{Options, Testbed, installable, operator};

const LIMIT: Duration = Duration::from_secs(3 * 3600);

/// Writes `tasks` tasks and `facts` facts into the agent's stable memory (see the module doc)
/// and reloads it; answers the instructions of the reload (the digest recount).
fn bulk_load(tb: &Testbed, tasks: u64, facts: u64) -> u64 {
    let memory = VectorMemory::default();
    *memory.borrow_mut() = tb.sim.get_stable_memory(tb.agent);
    {
        let manager = MemoryManager::init_with_bucket_size(memory.clone(), BUCKET_PAGES);
        let mut task_map: StableBTreeMap<u64, Vec<u8>, _> =
            StableBTreeMap::init(manager.get(TASKS));
        let first = task_map.last_key_value().map_or(1, |(k, _)| k + 1);
        for id in first..first + tasks {
            let task = migrations::Task {
                description: format!("scale task {id}: summarise the findings of source {id}"),
                status: if id % 3 == 0 {
                    migrations::TaskStatus::Done
                } else {
                    migrations::TaskStatus::Pending
                },
                priority: migrations::Priority::Normal,
                created_at: id,
                updated_at: id,
            };
            task_map.insert(id, task.encode(migrations::LATEST));
        }
        let mut fact_map: StableBTreeMap<FactKey, String, _> =
            StableBTreeMap::init(manager.get(FACTS));
        for i in 0..facts {
            let key = FactKey::new(&format!("ns{}", i % 8), &format!("fact-{i:07}")).unwrap();
            fact_map.insert(key, format!("value of fact {i}, {}", "x".repeat(32)));
        }
        let mut cell = StableCell::init(manager.get(DIGEST), DigestState::default());
        cell.set(DigestState::default());
    }
    let image = memory.borrow().clone();
    tb.sim.set_stable_memory(tb.agent, image);
    tb.sim
        .upgrade_canister(
            tb.agent,
            installable("agent"),
            Encode!().unwrap(),
            Some(operator()),
        )
        .expect("the agent reloads the loaded state");
    tb.sim.last_instructions(tb.agent)
}

fn probe<'a>(rec: &'a UpgradeRecord, name: &str) -> &'a ProbeResult {
    rec.rehearsal
        .as_ref()
        .and_then(|r| r.probes.iter().find(|p| p.name == name))
        .unwrap_or_else(|| panic!("no probe {name}"))
}

fn at(rec: &UpgradeRecord, state: UpgradeState) -> u64 {
    rec.history
        .iter()
        .find(|t| t.state == state)
        .unwrap_or_else(|| panic!("no {state:?}"))
        .at
}

/// Runs the benchmark at `tasks` tasks and `facts` facts; checks the outcome and prints figures.
fn run(tasks: u64, facts: u64) {
    let wall = Instant::now();
    let tb = Testbed::deploy(Options::default());
    tb.run_until(LIMIT, |tb| tb.watchdog_status().lkg.is_some())
        .expect("the watchdog holds the LKG");
    let reload = bulk_load(&tb, tasks, facts);
    let loaded = wall.elapsed();
    let before = tb.digest();
    assert_eq!((before.tasks, before.facts), (tasks, facts));
    let health = tb.health();
    assert_eq!(health.pending_tasks, tasks - tasks / 3);
    let stable = health.stable_memory_bytes;

    let canisters = [tb.agent, tb.watchdog, tb.staging];
    let totals = |tb: &Testbed| canisters.map(|c| tb.sim.execution_stats(c).total_instructions);
    let start = totals(&tb);
    let out = tb
        .self_upgrade_greeting("greet, at scale")
        .expect("self_upgrade");
    let id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"]
        .as_u64()
        .unwrap();
    tb.run_until(LIMIT, |tb| tb.record(id).state.is_terminal())
        .expect("the upgrade finishes");
    let rec = tb.record(id);
    assert_eq!(rec.state, UpgradeState::Committed, "{:?}", rec.history);
    let end = totals(&tb);
    let report = rec.rehearsal.clone().expect("a rehearsal report");
    assert!(report.passed);
    let after = tb.digest();
    assert!(after.same_state(&before), "nothing lost");
    let health = tb.health();
    let sandbox = report.sandbox;
    let snapshot = tb
        .events()
        .into_iter()
        .find(|e| e.action == "arm.snapshot")
        .map(|e| e.detail)
        .unwrap_or_default();

    let m = |n: u64| format!("{:.2} M", n as f64 / 1e6);
    let b = |n: u64| format!("{:.2} B", n as f64 / 1e9);
    println!("\nscale benchmark: {tasks} tasks, {facts} facts");
    println!(
        "  state                         {:.1} MB of stable memory",
        stable as f64 / 1e6
    );
    println!(
        "  bulk load + reload            {:.1} s wall; reload (digest recount) {} instructions ({} per record)",
        loaded.as_secs_f64(),
        b(reload),
        reload / (tasks + facts).max(1)
    );
    println!(
        "  state_digest                  {} instructions",
        after.instructions
    );
    println!(
        "  self-patch (patch + validate) {} instructions",
        b(rec.instructions)
    );
    println!(
        "  rehearsal, staging            {} instructions (all its messages)",
        b(report.staging_instructions)
    );
    println!(
        "  rehearsal, bytes copied       {} bytes of stable memory ({})",
        report.state_bytes,
        probe(&rec, "import_state").detail
    );
    println!(
        "  rehearsal, candidate boot     {} instructions",
        report.post_upgrade_instructions.map_or("?".into(), m)
    );
    for name in [
        "replay list_tasks",
        "replay list_facts",
        "digest_matches_records",
    ] {
        println!("  rehearsal, {name:<19} {}", probe(&rec, name).detail);
    }
    println!(
        "  sandbox, all messages         {}",
        b(tb.sim.execution_stats(sandbox).total_instructions)
    );
    println!("  arm                           {snapshot}");
    println!(
        "  agent boot (post_upgrade)     {} instructions",
        health.boot_instructions.map_or("?".into(), m)
    );
    println!(
        "  install -> Committed          {:.0} s simulated",
        (at(&rec, UpgradeState::Committed) - at(&rec, UpgradeState::Installing)) as f64 / 1e9
    );
    println!(
        "  instructions during the upgrade: agent {}, watchdog {}, staging {}",
        b(end[0] - start[0]),
        b(end[1] - start[1]),
        b(end[2] - start[2])
    );
    println!(
        "  wall time                     {:.1} s",
        wall.elapsed().as_secs_f64()
    );
    // Every step within the IC's limits: post_upgrade under 300 B, no message over 40 B (the
    // staging total spans many messages), the digest O(1).
    assert!(report.post_upgrade_instructions.unwrap() < 300_000_000_000);
    assert!(after.instructions < 1_000_000, "{}", after.instructions);
}

/// The check the test command runs: a few thousand records through the whole upgrade.
#[test]
fn a_state_of_thousands_of_records_goes_through_patch_rehearsal_and_commit() {
    run(2_000, 4_000);
}

/// The benchmark: 100,000 tasks and 200,000 facts (opt-in; minutes of wall time).
#[test]
#[ignore = "the scale benchmark: cargo test -p testbed --test scale -- --ignored --nocapture"]
fn scale_benchmark_100k_tasks_200k_facts() {
    run(100_000, 200_000);
}
