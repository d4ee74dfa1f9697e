//! The suite cannot pass by accident: deliberately broken systems and careless scenarios must
//! fail the invariant that covers them, with a report, never a panic.
//!
//! - A panic in a scenario's injection is that run's failure (`ran_to_the_end`), and the
//!   invariants are still checked.
//! - A system whose canisters no longer answer gets a report that names what broke.
//! - A scenario that checks no trace of its fault, or ends `rejected` without checking why,
//!   fails `fault_took_effect`.
//! - `forbidden_import`'s module is wrong in exactly one way: without the import it commits.
//! - A controller dropped, supervision left paused, an upgrade left waiting and one kind of
//!   write broken (while `remember` still works) each fail their invariant.

use candid::Encode;
use canister_api::agent::{AgentError, Autonomy, PromptLayer, UpgradeState};
use canister_api::watchdog::WatchdogError;
use chaos_tests::scenarios::{FORBIDDEN_IMPORT, scenario, with_import};
use chaos_tests::{Check, Outcome, Report, run};
use std::time::Duration;
use testbed::{Options, Testbed, operator};

const ANY: &[Outcome] = &[
    Outcome::Committed,
    Outcome::Rejected,
    Outcome::RolledBack,
    Outcome::Failed,
];

fn check<'a>(r: &'a Report, name: &str) -> &'a Check {
    r.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {:#?}", r.checks))
}

fn failed(r: &Report) -> Vec<&'static str> {
    r.checks.iter().filter(|c| !c.ok).map(|c| c.name).collect()
}

#[test]
fn a_panicking_injection_is_that_runs_failure_and_the_invariants_are_still_checked() {
    let s = scenario("panics", "the injection panics", ANY, |run| {
        run.propose(&[], "empty");
        run.expect_refusal("as empty", |r| r.refuses_the_module());
        panic!("boom in the injection");
    });
    let r = run(&s, 1);
    assert!(!r.passed);
    let ran = check(&r, "ran_to_the_end");
    assert!(
        !ran.ok && ran.detail.contains("boom in the injection"),
        "{ran:?}"
    );
    // The system itself is fine: every other invariant was checked, and held.
    assert_eq!(failed(&r), ["ran_to_the_end"], "{:#?}", r.checks);
    assert!(r.checks.len() >= 11, "{:#?}", r.checks);
}

#[test]
fn a_system_that_no_longer_answers_gets_a_report_naming_what_broke() {
    let s = scenario(
        "uninstalled",
        "the operator uninstalls the agent and the watchdog",
        ANY,
        |run| {
            let (tb, op) = (&run.tb, Some(operator()));
            tb.sim.uninstall_canister(tb.agent, op).expect("uninstall");
            tb.sim
                .uninstall_canister(tb.watchdog, op)
                .expect("uninstall");
            run.saw("uninstalled both");
        },
    );
    let r = run(&s, 2);
    assert!(!r.passed);
    assert!(check(&r, "ran_to_the_end").ok, "{:#?}", r.checks);
    let failed = failed(&r);
    for name in [
        "runs_verified_version",
        "state_preserved",
        "journal_settled",
        "watchdog_alive",
        "no_pause_left",
        "writes_resumed",
    ] {
        assert!(failed.contains(&name), "{name} held: {:#?}", r.checks);
    }
    assert!(
        check(&r, "watchdog_alive").detail.contains("rejected"),
        "{:?}",
        check(&r, "watchdog_alive")
    );
}

#[test]
fn a_run_that_checks_no_trace_fails_fault_took_effect() {
    let r = run(&scenario("nothing", "injects nothing", ANY, |_| {}), 3);
    let c = check(&r, "fault_took_effect");
    assert!(!c.ok && c.detail.contains("checked no trace"), "{c:?}");
    assert_eq!(failed(&r), ["fault_took_effect"], "{:#?}", r.checks);
}

#[test]
fn a_rejection_not_checked_for_its_reason_fails_fault_took_effect() {
    let s = scenario("unchecked", "proposes an empty module", ANY, |run| {
        run.propose(&[], "empty");
        run.saw("proposed");
    });
    let r = run(&s, 4);
    assert_eq!(r.outcome, Outcome::Rejected);
    let c = check(&r, "fault_took_effect");
    assert!(!c.ok && c.detail.contains("never checked why"), "{c:?}");
}

#[test]
fn forbidden_import_is_wrong_in_exactly_one_way() {
    let tb = Testbed::deploy(Options::default());
    let refused = tb
        .try_release(&with_import(Some(FORBIDDEN_IMPORT)), "forbidden", false)
        .expect_err("the import is refused");
    assert!(
        matches!(&refused.error, AgentError::Validation(m) if m.contains(FORBIDDEN_IMPORT.1)),
        "{refused}"
    );
    // The same module through the same steps, without the import: it passes every check.
    let rec = tb
        .try_release(&with_import(None), "the same without the import", false)
        .expect("accepted");
    tb.run_until(Duration::from_secs(3600), |tb| {
        tb.try_record(rec.id).is_some_and(|r| r.state.is_terminal())
    });
    assert_eq!(tb.record(rec.id).state, UpgradeState::Committed);
}

#[test]
fn weakened_controllers_pause_journal_and_writes_each_fail_their_invariant() {
    let s = scenario(
        "weakened",
        "drops the operator from staging, pauses supervision, leaves an upgrade waiting, fills the prompt layers",
        ANY,
        |run| {
            let tb = &run.tb;
            let op = operator();
            tb.sim
                .set_controllers(tb.staging, Some(op), vec![tb.agent])
                .expect("set_controllers");
            let paused: Result<(), WatchdogError> =
                tb.watchdog_update(op, "pause", Encode!().expect("encode"));
            paused.expect("pause");
            for i in 0..4 {
                let layers: Result<Vec<PromptLayer>, AgentError> = tb.agent_update(
                    op,
                    "set_prompt_layer",
                    Encode!(&format!("layer-{i}"), &Some("Be brief.")).unwrap(),
                );
                layers.expect("set_prompt_layer");
            }
            // Under ApproveEach the agent's own upgrade waits for an operator who never comes.
            let set: Result<(), AgentError> =
                tb.agent_update(op, "set_autonomy", Encode!(&Autonomy::ApproveEach).unwrap());
            set.expect("set_autonomy");
            let waiting = tb.self_upgrade_greeting("waits for approval");
            run.saw(format!("weakened; the self_upgrade answered {waiting:?}"));
        },
    );
    let r = run(&s, 5);
    assert!(check(&r, "ran_to_the_end").ok, "{:#?}", r.checks);
    let detail = |name| check(&r, name).detail.clone();
    assert!(!check(&r, "controllers_intact").ok, "{:#?}", r.checks);
    assert!(
        detail("controllers_intact").contains("staging [agent]"),
        "{}",
        detail("controllers_intact")
    );
    assert!(!check(&r, "no_pause_left").ok);
    assert!(
        detail("no_pause_left").contains("supervision is paused"),
        "{}",
        detail("no_pause_left")
    );
    assert!(!check(&r, "journal_settled").ok);
    assert!(
        detail("journal_settled").contains("upgrade 1 is"),
        "{}",
        detail("journal_settled")
    );
    // `remember` still works; one kind of write does not.
    let writes = detail("writes_resumed");
    assert!(!check(&r, "writes_resumed").ok, "{writes}");
    assert!(
        writes.contains("set_prompt_layer") && !writes.contains("remember"),
        "{writes}"
    );
}
