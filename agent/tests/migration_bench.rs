//! Benchmark: instructions of the v1 -> latest migration per 10,000 records, measured in ic-sim
//! (`post_upgrade` of the latest build on a v1 image), and of the one-time recount of the state
//! digest that a state written by a build that kept no digest gets at its first boot. Prints
//! figures; asserts correctness and the budget of issue 13 (item 5): under 20 K instructions
//! per task and per fact (an instruction count, the same on every run: not a timing). Before
//! the steps stopped rewriting records it was 49.5 K per task and 137 K per fact.
//!
//! `cargo test -p agent --release --test migration_bench -- --nocapture`
//!
//! The v1 image is the stable memory of a real v1 agent, with records added natively through
//! the same MemoryManager layout and the `migrations` crate's v1 encoding (10,000 update calls
//! would measure the simulator, not the migration).

mod common;
use common::*;
use ic_stable_structures::memory_manager::MemoryManager;
use ic_stable_structures::{StableBTreeMap, VectorMemory};
use std::cell::RefCell;
use std::rc::Rc;

const N: u64 = 10_000;

/// A v1 agent's stable memory with `tasks` tasks and `facts` facts added; with `untrusted`, its
/// kept digest is reset (as a build that kept none would leave it), so the boot recounts it.
fn v1_image(env: &Env, tasks: u64, facts: u64, untrusted: bool) -> Vec<u8> {
    let memory: VectorMemory = Rc::new(RefCell::new(env.sim.get_stable_memory(env.agent)));
    {
        let manager =
            MemoryManager::init_with_bucket_size(memory.clone(), agent::memory::BUCKET_PAGES);
        let mut task_map: StableBTreeMap<u64, Vec<u8>, _> =
            StableBTreeMap::init(manager.get(agent::memory::TASKS));
        for id in 1..=tasks {
            let task = migrations::Task {
                description: format!("benchmark task number {id}"),
                status: migrations::TaskStatus::Pending,
                priority: migrations::Priority::Normal,
                created_at: id,
                updated_at: id,
            };
            task_map.insert(id, task.encode(1));
        }
        let mut fact_map: StableBTreeMap<String, String, _> =
            StableBTreeMap::init(manager.get(agent::memory::FACTS_V1));
        for i in 0..facts {
            fact_map.insert(format!("fact-{i:05}"), format!("value of fact {i}"));
        }
        if untrusted {
            use agent::digest::DigestState;
            let mut cell = ic_stable_structures::Cell::init(
                manager.get(agent::memory::DIGEST),
                DigestState::default(),
            );
            cell.set(DigestState::default());
        }
    }
    memory.borrow().clone()
}

fn measure(tasks: u64, facts: u64, untrusted: bool) -> u64 {
    let env = Env::new("agent-schema-v1", Autonomy::Manual);
    let image = v1_image(&env, tasks, facts, untrusted);
    env.sim.set_stable_memory(env.agent, image);
    // Upgraded while stopped, so that no timer the new code sets runs before the figure is read:
    // the last execution is then post_upgrade's.
    env.sim
        .stop_canister(env.agent, Some(operator()))
        .expect("stop");
    env.upgrade_to("agent").expect("v1 -> latest");
    let instructions = env.sim.last_instructions(env.agent);
    env.sim
        .start_canister(env.agent, Some(operator()))
        .expect("start");
    assert_eq!(env.health().schema_version, migrations::LATEST);
    let listed = env.tasks();
    assert_eq!(listed.len() as u64, tasks);
    assert!(listed.iter().all(|t| t.priority == Priority::Normal));
    if facts > 0 {
        assert_eq!(
            env.recall(None, "fact-00042").as_deref(),
            Some("value of fact 42")
        );
    }
    if untrusted {
        env.assert_digest_matches_records();
        assert_eq!(env.health().pending_tasks, tasks);
    }
    instructions
}

#[test]
fn print_migration_instructions_per_10k_records() {
    let empty = measure(0, 0, false);
    let tasks = measure(N, 0, false);
    let facts = measure(0, N, false);
    let both = measure(N, N, false);
    let recounted = measure(N, N, true);
    eprintln!("migration v1 -> v3 in post_upgrade (ic-sim instructions):");
    eprintln!("  empty stores                      {empty:>14}");
    eprintln!(
        "  10,000 tasks (v1->v2: each checked) {tasks:>13}  ({} per record)",
        (tasks - empty) / N
    );
    eprintln!(
        "  10,000 facts (v2->v3: each checked) {facts:>13}  ({} per record)",
        (facts - empty) / N
    );
    eprintln!("  10,000 tasks + 10,000 facts        {both:>14}");
    eprintln!(
        "  the same, digest recounted at boot {recounted:>14}  ({} per record for the recount)",
        (recounted - both) / (2 * N)
    );
    eprintln!("  (install/upgrade limit: 300,000,000,000)");
    for (what, per_record) in [
        ("task (v1 -> v2)", (tasks - empty) / N),
        ("fact (v2 -> v3)", (facts - empty) / N),
    ] {
        assert!(
            per_record < MIGRATION_BUDGET_PER_RECORD,
            "migration costs {per_record} instructions per {what}, over the budget of {MIGRATION_BUDGET_PER_RECORD}"
        );
    }
}

/// Instructions the migration may spend per record (issue 13, item 5).
const MIGRATION_BUDGET_PER_RECORD: u64 = 20_000;
