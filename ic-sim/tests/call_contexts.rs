//! Call contexts whose callbacks trap (IC-SEMANTICS.md, "Messages"; issue "ic-sim against suites
//! written by others", items 1 and 2).
//!
//! The replica keeps a call context open while any of its callbacks is outstanding, whatever the
//! executions before did; a trap is reported only by the execution that closes the context
//! (rs/replicated_state/src/canister_state/system_state/call_context_manager.rs,
//! `on_canister_result`: `(Err(_), Responded::No, OutstandingCalls::Yes) => NotYetResponded`).
//! A trapping cleanup is reported after the callback's trap
//! (rs/interfaces/src/execution_environment/errors.rs, `HypervisorError::Cleanup`:
//! `"{callback}\n\ncall_on_cleanup also failed:\n\n{cleanup}"` with the callback's error code).

mod common;

use common::*;

/// Item 1: a one-way call made while the method awaits another call. The one-way response runs
/// the callback at index usize::MAX, which traps; the awaited call is still outstanding, so the
/// call context stays open, and the method replies once the awaited response arrives.
#[test]
fn trapping_callback_does_not_fail_a_context_with_outstanding_calls() {
    let sim = Sim::new();
    let caller = new_probe(&sim);
    let oneway_target = new_probe(&sim);
    let slow = new_probe(&sim);
    sim.inject(Fault::HoldResponses { from: slow });
    let args = Encode!(
        &CallArgs::no_arg(oneway_target, "inc"),
        &CallArgs::no_arg(slow, "inc")
    )
    .unwrap();
    let id = sim
        .submit_call(
            caller,
            Principal::anonymous(),
            "oneway_while_awaiting",
            args,
        )
        .unwrap();
    ticks(&sim, 4);
    assert_eq!(read(&sim, oneway_target), 1, "the one-way call ran");
    assert_eq!(read(&sim, slow), 1, "the awaited call ran");
    assert_eq!(sim.held_responses(), 1, "the awaited response is held");
    assert!(
        sim.ingress_status(id.clone()).is_none(),
        "the one-way callback's trap must not answer the call while another call is outstanding: {:?}",
        sim.ingress_status(id.clone())
    );
    sim.clear_faults();
    sim.release_held_responses();
    let outcome = decode_outcome(sim.await_call(id));
    assert_eq!(
        outcome.reply::<u64>(),
        1,
        "the awaited call's reply reaches the method"
    );
}

/// Item 1, the other half: when the trapping callback is the last outstanding one and the call
/// was not answered, the context fails with that trap.
#[test]
fn trapping_last_callback_fails_the_context_with_its_trap() {
    let sim = Sim::new();
    let caller = new_probe(&sim);
    let callee = new_probe(&sim);
    let result = sim.update_call(
        caller,
        Principal::anonymous(),
        "call_then_trap",
        Encode!(&CallArgs::no_arg(callee, "inc")).unwrap(),
    );
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterCalledTrap,
        &[&called_trap("probe: call_then_trap")],
    );
}

fn wat_canister(sim: &Sim) -> Principal {
    let id = new_empty(sim);
    sim.install_canister(id, wat_fixture("cleanup_trap"), vec![], None);
    id
}

fn cleaned(sim: &Sim, id: Principal) -> u64 {
    raw_u64(
        &sim.query_call(id, Principal::anonymous(), "cleaned", vec![])
            .unwrap(),
    )
}

/// Item 2: the reply callback traps and so does its cleanup: both traps are reported, the
/// callback's first, with the callback's error code; the cleanup's changes are rolled back.
#[test]
fn trapping_cleanup_is_reported_after_the_callback_trap() {
    let sim = Sim::new();
    let caller = wat_canister(&sim);
    let callee = wat_canister(&sim);
    sim.update_call(
        caller,
        Principal::anonymous(),
        "arm",
        1u64.to_le_bytes().to_vec(),
    )
    .unwrap();
    let err = sim
        .update_call(
            caller,
            Principal::anonymous(),
            "go",
            callee.as_slice().to_vec(),
        )
        .unwrap_err();
    assert_reject(
        &err,
        RejectCode::CanisterError,
        ErrorCode::CanisterCalledTrap,
        &[&called_trap("callback trap"), &called_trap("cleanup trap")],
    );
    let (callback, cleanup) = err
        .reject_message
        .split_once("\n\ncall_on_cleanup also failed:\n\n")
        .unwrap_or_else(|| panic!("no cleanup section in {:?}", err.reject_message));
    assert!(callback.starts_with(&error_from(caller)), "{callback}");
    assert!(
        callback.contains(&called_trap("callback trap")),
        "{callback}"
    );
    assert!(cleanup.starts_with(&error_from(caller)), "{cleanup}");
    assert!(cleanup.contains(&called_trap("cleanup trap")), "{cleanup}");
    assert_eq!(
        cleaned(&sim, caller),
        0,
        "a trapping cleanup keeps none of its changes"
    );
}

/// Item 2, the other half: a cleanup that succeeds keeps its changes, and only the callback's
/// trap is reported.
#[test]
fn successful_cleanup_keeps_its_changes_and_only_the_callback_trap_is_reported() {
    let sim = Sim::new();
    let caller = wat_canister(&sim);
    let callee = wat_canister(&sim);
    let err = sim
        .update_call(
            caller,
            Principal::anonymous(),
            "go",
            callee.as_slice().to_vec(),
        )
        .unwrap_err();
    assert_reject(
        &err,
        RejectCode::CanisterError,
        ErrorCode::CanisterCalledTrap,
        &[&called_trap("callback trap")],
    );
    assert!(!err.reject_message.contains("call_on_cleanup"), "{err}");
    assert_eq!(cleaned(&sim, caller), 10, "the cleanup's change is kept");
}
