//! The coverage floor: a fixed, small budget of generated histories (the first
//! [`FLOOR_HISTORIES`] seeds whose history of [`FLOOR_STEPS`] base steps the coverage stream
//! inserted into, `explore::cover`) reaches at least a stated set of journal transitions, ladder
//! rungs and error kinds. It fails, printing what was missed, when a change of the generator or
//! the trio stops the histories from reaching them (a scenario removed, a rung that no longer
//! restores). The full figures of a larger budget are in docs/benchmarks.md ("Coverage").

use chaos_tests::explore::{self, Config, Coverage, cover};

/// Base steps per history.
const FLOOR_STEPS: usize = 5;
/// Histories run.
const FLOOR_HISTORIES: usize = 6;

/// What the budget must reach.
const MIN_TRANSITIONS: &[&str] = &[
    "Proposed->Patched",
    "Validated->Rehearsed",
    "Rehearsed->Approved",
    "Approved->Armed",
    "Booted->Committed",
    "Rehearsed->Rejected",
];
const MIN_RUNGS: &[&str] = &["Snapshot"];
const MIN_ERRORS: &[&str] = &["agent.ChunkTooLarge", "watchdog.Paused"];

/// The seeds of the budget: the first ones from 1 on whose history the coverage stream inserted
/// into.
fn floor_seeds() -> Vec<u64> {
    (1..)
        .filter(|&s| cover::inserted(&explore::generate(s, FLOOR_STEPS)))
        .take(FLOOR_HISTORIES)
        .collect()
}

/// What of `want` is not in `seen`.
fn missing(want: &[&str], seen: &std::collections::BTreeSet<String>) -> Vec<String> {
    want.iter()
        .filter(|w| !seen.contains(**w))
        .map(|w| w.to_string())
        .collect()
}

#[test]
fn a_small_budget_of_generated_histories_reaches_the_coverage_floor() {
    let config = Config {
        steps: FLOOR_STEPS,
        shrink_runs: 0,
        ..Config::default()
    };
    let seeds = floor_seeds();
    let mut union = Coverage::default();
    for &seed in &seeds {
        let h = explore::run_seed(seed, &config);
        println!("{}", h.timeline());
        assert_eq!(h.broken(), None, "{}", h.timeline());
        union.merge(&h.coverage);
    }
    let missed = union.missed();
    println!("seeds {seeds:?}: {union:?}\nmissed by this budget: {missed:?}");
    let lacking = [
        missing(MIN_TRANSITIONS, &union.transitions),
        missing(MIN_RUNGS, &union.rungs),
        missing(MIN_ERRORS, &union.errors),
    ]
    .concat();
    assert!(
        lacking.is_empty(),
        "the floor's budget (seeds {seeds:?}, {FLOOR_STEPS} steps) missed {lacking:?}; it reached {union:?}"
    );
}

/// The coverage stream's actions do what they say on the plain trio: each misuse is refused
/// with its own error kind, and a rejection lands in each state it names.
#[test]
fn the_coverage_streams_actions_reach_what_they_name() {
    use chaos_tests::explore::action::{Action, Misuse};
    let mut actions: Vec<Action> = cover::MISUSES.iter().map(|m| Action::Misuse(*m)).collect();
    for stage in 0..cover::REJECTABLE.len() as u8 {
        // The gate's cooldown between two proposals.
        actions.push(Action::Wait(700));
        actions.push(Action::RejectAt(stage));
    }
    let h = explore::run(3, &actions, &explore::Trio::default());
    println!("{}", h.timeline());
    assert_eq!(h.broken(), None, "{}", h.timeline());
    let kinds = [
        (Misuse::ChunkTooLarge, "agent.ChunkTooLarge"),
        (Misuse::UploadTooLarge, "agent.UploadTooLarge"),
        // `AgentError::NoUpload` is never answered (see `coverage::ERRORS`).
        (Misuse::CommitWithoutUpload, "agent.NotFound"),
        (Misuse::CommitWrongHash, "agent.HashMismatch"),
        (Misuse::UnknownTool, "agent.UnknownTool"),
        (Misuse::RollbackWhilePaused, "watchdog.Paused"),
        (Misuse::RollbackUnknownSnapshot, "watchdog.NotFound"),
        (Misuse::RollbackTwice, "watchdog.Busy"),
    ];
    assert_eq!(kinds.len(), cover::MISUSES.len());
    for (m, kind) in kinds {
        assert!(
            h.coverage.errors.contains(kind),
            "{m:?}: no {kind} in {:?}",
            h.coverage
        );
    }
    for state in cover::REJECTABLE {
        let t = format!("{state}->Rejected");
        assert!(
            h.coverage.transitions.contains(&t),
            "no {t} in {:?}",
            h.coverage
        );
    }
}
