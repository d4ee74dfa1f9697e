//! Fault injection: every fault must look like something the IC itself can do
//! (IC-SEMANTICS.md, "Messages": bounded-wait calls and SYS_UNKNOWN; src/faults.rs).

mod common;

use std::time::Duration;

use common::*;

/// TrapNextMessage traps exactly one message of the victim, whose changes are discarded.
#[test]
fn trap_next_message_traps_once() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    sim.inject(Fault::TrapNextMessage { canister: id });
    let err = sim
        .update_call(id, Principal::anonymous(), "inc", Encode!().unwrap())
        .expect_err("the injected trap");
    assert_eq!(err.reject_code, RejectCode::CanisterError, "{err:?}");
    assert!(
        matches!(
            err.error_code,
            ErrorCode::CanisterTrapped | ErrorCode::CanisterCalledTrap
        ),
        "{err:?}"
    );
    assert!(err.reject_message.contains(&error_from(id)), "{err:?}");
    assert_eq!(
        inc(&sim, id),
        1,
        "only one message trapped, and it changed nothing"
    );
    assert_eq!(sim.faults_fired().trapped, 1);
}

/// FailCallsTo: requests to the canister are rejected SYS_TRANSIENT ("input queue is full")
/// and never executed; clear_faults restores delivery.
#[test]
fn fail_calls_to_rejects_with_sys_transient() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    sim.inject(Fault::FailCallsTo { canister: b });
    let outcome = probe_call(&sim, a, CallArgs::no_arg(b, "inc"));
    assert_call_reject(
        &outcome,
        RejectCode::SysTransient,
        &[&format!("Canister {b} input queue is full")],
    );
    assert_eq!(read(&sim, b), 0, "the request never ran");
    assert_eq!(sim.faults_fired().calls_failed, 1);

    sim.clear_faults();
    assert_eq!(
        probe_call(&sim, a, CallArgs::no_arg(b, "inc")).reply::<u64>(),
        1
    );
}

/// HoldResponses: the callee runs, its response waits until released.
#[test]
fn held_responses_arrive_when_released() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    sim.inject(Fault::HoldResponses { from: b });
    let msg = submit_probe_call(&sim, a, CallArgs::no_arg(b, "inc"));
    ticks(&sim, 10);
    assert!(
        sim.ingress_status(msg.clone()).is_none(),
        "the response is held"
    );
    assert_eq!(read(&sim, b), 1, "the request itself ran");
    assert_eq!(sim.faults_fired().responses_held, 1);
    // The held response belongs to a's call: a has a call in flight, b has none.
    assert_eq!(sim.awaited_held_responses_of(a), 1);
    assert_eq!(sim.awaited_held_responses_of(b), 0);
    assert_eq!(sim.awaited_held_responses(), 1);

    // Waiting on a held response while nothing else can happen is a timeout, not a hang.
    let err = sim
        .await_call(msg.clone())
        .expect_err("idle with the message pending");
    assert_eq!(err.error_code, ErrorCode::IngressMessageTimeout, "{err:?}");
    assert_eq!(err.reject_code, RejectCode::SysTransient, "{err:?}");

    sim.release_held_responses();
    assert_eq!(decode_outcome(sim.await_call(msg)).reply::<u64>(), 1);
}

/// A held best-effort call still sees its deadline expire: SYS_UNKNOWN, "Call deadline has
/// expired." (IC0601 for the canister's bookkeeping; canisters see only the code and text).
#[test]
fn bounded_wait_deadline_expires_with_sys_unknown() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    sim.inject(Fault::HoldResponses { from: b });
    let msg = submit_probe_call(&sim, a, CallArgs::no_arg(b, "inc").bounded(10));
    ticks(&sim, 3);
    assert!(sim.ingress_status(msg.clone()).is_none());
    assert_eq!(sim.awaited_held_responses_of(a), 1, "a's call is in flight");
    advance(&sim, Duration::from_secs(11));
    let outcome = decode_outcome(sim.ingress_status(msg).expect("the deadline passed"));
    assert_eq!(
        sim.awaited_held_responses_of(a),
        0,
        "past its deadline the call is over for a: the held response will be dropped"
    );
    assert_call_reject(
        &outcome,
        RejectCode::SysUnknown,
        &["Call deadline has expired."],
    );

    // The late response, once released, is dropped: the call context is already closed.
    sim.release_held_responses();
    ticks(&sim, 5);
    assert_eq!(inc(&sim, a), 1, "the caller is unharmed");
}

/// DropResponses on a best-effort call: SYS_UNKNOWN, "Response was dropped." (IC0602).
#[test]
fn dropped_best_effort_response_is_sys_unknown() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    sim.inject(Fault::DropResponses {
        from: b,
        probability: 1.0,
    });
    let outcome = probe_call(&sim, a, CallArgs::no_arg(b, "inc").bounded(60));
    assert_call_reject(&outcome, RejectCode::SysUnknown, &["Response was dropped."]);
    assert_eq!(
        read(&sim, b),
        1,
        "the callee ran: SYS_UNKNOWN means the outcome is unknown"
    );
    let fired = sim.faults_fired();
    assert_eq!((fired.responses_dropped, fired.responses_held), (1, 0));
}

/// DropResponses on a guaranteed-response call: the IC never drops those, so it is held.
#[test]
fn guaranteed_response_is_held_not_dropped() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    sim.inject(Fault::DropResponses {
        from: b,
        probability: 1.0,
    });
    let msg = submit_probe_call(&sim, a, CallArgs::no_arg(b, "inc"));
    ticks(&sim, 10);
    assert!(
        sim.ingress_status(msg.clone()).is_none(),
        "held, not dropped"
    );
    let fired = sim.faults_fired();
    assert_eq!((fired.responses_dropped, fired.responses_held), (0, 1));
    sim.clear_faults();
    sim.release_held_responses();
    assert_eq!(decode_outcome(sim.await_call(msg)).reply::<u64>(), 1);
}
