//! The extra stream's actions on the plain trio (`chaos_tests::explore::reach`): each does what
//! it says and the trio keeps every invariant; and the audit log the single-flight rule reads
//! reads back. The mutants these actions find are in docs/benchmarks.md ("The explorer against
//! the mutants", rows of `reach`).

use chaos_tests::explore::action::{Action, Holder};
use chaos_tests::explore::world::World;
use chaos_tests::explore::{self, Trio, safety_net};
use std::collections::HashMap;
use testbed::{Options, Testbed};

/// `audit_log` answers a `Result`; the rule `rehearsal_single_flight` read it as a bare page
/// and saw no entry at all (it could not fail).
#[test]
fn the_audit_log_the_single_flight_rule_reads_reads_back() {
    let world = World::new(Testbed::deploy(Options::default()), HashMap::new());
    let page = safety_net::audit_page(&world, 0).expect("audit_log answers and decodes");
    assert!(!page.entries.is_empty(), "{page:?}");
}

#[test]
fn the_extra_actions_do_what_they_say_and_the_plain_trio_keeps_every_invariant() {
    let actions = [
        Action::ReleaseWithout("export_module"),
        Action::ApproveMidRehearsal,
        Action::Drain(Holder::Sandbox),
        Action::TopUp(Holder::Sandbox),
    ];
    let h = explore::run(3, &actions, &Trio::default());
    assert!(h.failure.is_none(), "{}", h.timeline());
    let result = |i: usize| h.steps[i].result.as_str();
    assert!(
        result(0).starts_with("refused") && result(0).contains("export_module"),
        "{}",
        h.timeline()
    );
    assert!(
        result(1).contains("approved mid-rehearsal: ok")
            && result(1).contains("rehearsals started so far: 1"),
        "{}",
        h.timeline()
    );
    // The sandbox exists after the rehearsal; the drain leaves it at its freezing threshold.
    let burned = result(2);
    assert!(burned.starts_with("burned "), "{}", h.timeline());
    let left: Vec<&str> = burned
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(left[1], left[2], "left at the threshold: {burned}");
    assert!(result(3).starts_with("balance "), "{}", h.timeline());
}

/// Issue 12 item 1's window: the operator rejects an upgrade once the watchdog accepted its arm
/// (the agent's write pause up, the go-ahead not yet given), and a write at once and one within
/// the lease are accepted: the rejection lifted the pause. Seed 125's history (`generate(125, 1)`)
/// runs this scenario; the `end-lifts-pause` mutant fails it (docs/benchmarks.md).
#[test]
fn a_rejection_while_the_arm_is_in_flight_lifts_the_write_pause() {
    let actions = [
        Action::RejectMidArm(2),
        Action::Remember(2, 1002),
        Action::Wait(300),
        Action::Remember(2, 1003),
    ];
    let h = explore::run(125, &actions, &Trio::default());
    assert!(h.failure.is_none(), "{}", h.timeline());
    let result = |i: usize| h.steps[i].result.as_str();
    // The window struck: the rejection was answered while the watchdog held the accepted arm.
    assert!(
        result(0)
            .contains("rejected while its arm is in flight (the watchdog accepted it): Rejected"),
        "{}",
        h.timeline()
    );
    // The write right after the rejection, and those after, are accepted.
    assert!(result(0).contains("remember k2: ok"), "{}", h.timeline());
    assert!(result(1).starts_with("ok"), "{}", h.timeline());
    assert!(result(3).starts_with("ok"), "{}", h.timeline());
}

/// A cheap minimum of coverage: one history of base actions reaches a rollback and rungs the
/// fixed budget does not (the ladder's CodeOnly after a candidate fails probation, an
/// operator's Version, Previous after a committed version fails late). Not Snapshot: restoring
/// an arm-time snapshot after its upgrade ended is the open finding of seed 8 (README).
#[test]
fn one_history_reaches_rollbacks_and_the_ladders_rungs() {
    use chaos_tests::explore::action::{ReleaseKind, RollbackKind};
    let actions = [
        Action::Release(ReleaseKind::Bad("health_trap_live")),
        Action::Wait(1200),
        Action::Rollback(RollbackKind::Version(0)),
        Action::Wait(600),
        Action::Release(ReleaseKind::Bad("health_trap_late")),
        Action::Wait(3600),
    ];
    let h = explore::run(5, &actions, &Trio::default());
    println!("{}", h.timeline());
    println!("{:?}", h.coverage);
    assert!(h.failure.is_none(), "{}", h.timeline());
    for rung in ["CodeOnly", "Version", "Previous"] {
        assert!(h.coverage.rungs.contains(rung), "{rung}: {:?}", h.coverage);
    }
    assert!(
        h.coverage
            .transitions
            .iter()
            .any(|t| t.ends_with("->RolledBack")),
        "{:?}",
        h.coverage
    );
}
