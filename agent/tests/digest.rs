//! The logical state digest is kept up to date on every write: reading it costs the same at
//! thousands of records as at ten, it does not depend on the order of the writes, and it always
//! agrees with the records the agent answers (also after a build that kept none ran).

mod common;
use common::*;

#[test]
fn reading_the_digest_costs_the_same_at_thousands_of_records_as_at_ten() {
    let env = Env::latest(Autonomy::Manual);
    for i in 0..5 {
        env.submit(&format!("task {i}"), None);
        env.remember("default", &format!("k{i}"), "v");
    }
    let small = env.digest();
    assert_eq!((small.tasks, small.facts), (5, 5));
    for i in 5..1_000 {
        env.submit(&format!("task {i}"), None);
        env.remember("default", &format!("k{i}"), "a value of some length");
    }
    let large = env.digest();
    assert_eq!((large.tasks, large.facts), (1_000, 1_000));
    // A scan of 2,000 records costs tens of millions of instructions; the kept digest, a few
    // thousand at any size.
    assert!(
        large.instructions <= small.instructions * 2 + 10_000,
        "10 records: {} instructions; 2,000 records: {}",
        small.instructions,
        large.instructions
    );
    env.assert_digest_matches_records();
}

#[test]
fn the_digest_does_not_depend_on_the_order_of_the_writes() {
    let a = Env::latest(Autonomy::Manual);
    let b = Env::latest(Autonomy::Manual);
    for (ns, k, v) in [
        ("default", "x", "1"),
        ("prefs", "y", "2"),
        ("default", "z", "3"),
    ] {
        a.remember(ns, k, v);
    }
    // The same facts, another order, with a detour: one written and forgotten, one replaced
    // and put back.
    b.remember("default", "z", "3");
    b.remember("default", "gone", "soon");
    b.remember("prefs", "y", "other");
    b.remember("default", "x", "1");
    let _: Result<Option<String>, AgentError> = b.update(
        operator(),
        "forget",
        Encode!(&Some("default"), &"gone").unwrap(),
    );
    b.remember("prefs", "y", "2");
    let (da, db) = (a.digest(), b.digest());
    assert!(da.same_state(&db), "{da:?} vs {db:?}");
    // A different state has a different digest.
    b.remember("prefs", "y", "3");
    assert!(!a.digest().same_state(&b.digest()));
    a.assert_digest_matches_records();
    b.assert_digest_matches_records();
}

#[test]
fn task_changes_keep_the_digest_and_the_records_in_agreement() {
    let env = Env::latest(Autonomy::Manual);
    let t = env.submit("first", Some(Priority::High));
    env.submit("second", None);
    let before = env.digest();
    let r: Result<Task, AgentError> = env.update(
        operator(),
        "set_task_status",
        Encode!(&t.id, &TaskStatus::Done).unwrap(),
    );
    r.unwrap();
    assert!(
        !env.digest().same_state(&before),
        "a status change changes it"
    );
    env.assert_digest_matches_records();
    // An upgrade keeps it (the kept digest is trusted, not recounted) and it still agrees.
    let kept = env.digest();
    env.upgrade_to("agent").expect("upgrade");
    assert!(env.digest().same_state(&kept));
    env.assert_digest_matches_records();
}

#[test]
fn the_journal_and_the_audit_log_are_counted_for_what_a_restore_drops() {
    let env = Env::latest(Autonomy::Manual);
    let before = env.digest();
    let _: Result<(), AgentError> = env.update(
        operator(),
        "set_autonomy",
        Encode!(&Autonomy::ApproveEach).unwrap(),
    );
    let after = env.digest();
    assert_eq!(
        after.audit_next.unwrap(),
        before.audit_next.unwrap() + 1,
        "one audit entry more"
    );
    assert_eq!(after.journal_transitions, Some(0), "no upgrade yet");
    assert!(after.same_state(&before), "settings are not records");
}
