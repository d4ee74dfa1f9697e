//! Messages: replies, rejects, traps and their rollback, call contexts, one-way and inter-canister
//! calls (IC-SEMANTICS.md, "Messages").

mod common;

use common::*;

/// Fidelity check: the counter survives updates and a query sees it.
#[test]
fn counter_survives_updates_and_is_seen_by_query() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    assert_eq!(inc(&sim, id), 1);
    assert_eq!(inc(&sim, id), 2);
    assert_eq!(inc(&sim, id), 3);
    assert_eq!(read(&sim, id), 3);
    assert_eq!(stable_inc(&sim, id), 1);
    assert_eq!(stable_read(&sim, id), 1);
    // A query's own changes are discarded: reading twice does not move anything.
    assert_eq!(read(&sim, id), 3);
}

/// Fidelity check: an explicit reject is CANISTER_REJECT (4) / IC0406 and carries the canister's
/// own text, while a trap is CANISTER_ERROR (5) / IC0503.
#[test]
fn explicit_reject_and_trap_have_different_codes() {
    let sim = Sim::new();
    let id = new_probe(&sim);

    let rejected = sim.update_call(
        id,
        Principal::anonymous(),
        "reject",
        Encode!(&"go away").unwrap(),
    );
    expect_reject(
        rejected,
        RejectCode::CanisterReject,
        ErrorCode::CanisterRejectedMessage,
        &["go away"],
    );

    let trapped = sim.update_call(
        id,
        Principal::anonymous(),
        "trap",
        Encode!(&"boom").unwrap(),
    );
    expect_reject(
        trapped,
        RejectCode::CanisterError,
        ErrorCode::CanisterCalledTrap,
        &[&error_from(id), &called_trap("boom"), "trapped-explicitly"],
    );
}

/// A trap discards the execution's heap and stable-memory changes.
#[test]
fn trap_discards_heap_and_stable_memory_changes() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    inc(&sim, id);
    stable_inc(&sim, id);

    let result = sim.update_call(
        id,
        Principal::anonymous(),
        "inc_then_trap",
        Encode!(&"undo").unwrap(),
    );
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterCalledTrap,
        &[&called_trap("undo")],
    );

    assert_eq!(read(&sim, id), 1, "heap increment rolled back");
    assert_eq!(stable_read(&sim, id), 1, "stable increment rolled back");
}

/// A trap after `msg_reply` discards the reply too: the caller sees the trap.
#[test]
fn trap_discards_the_reply() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let result = sim.update_call(
        id,
        Principal::anonymous(),
        "reply_then_trap",
        Encode!(&"late").unwrap(),
    );
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterCalledTrap,
        &[&called_trap("late")],
    );
}

/// A trap discards the calls the execution made: the callee never sees the request.
#[test]
fn trap_discards_calls_made_in_that_execution() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    let args = CallArgs::no_arg(b, "inc");
    let result = sim.update_call(
        a,
        Principal::anonymous(),
        "call_and_trap_before_await",
        Encode!(&args).unwrap(),
    );
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterCalledTrap,
        &[&called_trap("probe: call_and_trap_before_await")],
    );
    ticks(&sim, 5);
    assert_eq!(
        read(&sim, b),
        0,
        "the request of a trapped execution was never sent"
    );
}

/// Each `await` splits a method into executions: a trap in the callback rolls back only the
/// callback, so the increment before the call stays.
#[test]
fn trap_after_await_rolls_back_only_the_callback() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    let args = CallArgs::no_arg(b, "inc");
    let result = sim.update_call(
        a,
        Principal::anonymous(),
        "call_then_trap",
        Encode!(&args).unwrap(),
    );
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterCalledTrap,
        &[&error_from(a), &called_trap("probe: call_then_trap")],
    );
    assert_eq!(
        read(&sim, a),
        1,
        "the increment before the await survives, the one after does not"
    );
    assert_eq!(read(&sim, b), 1, "the callee executed the request");
}

/// A call context that ends without a reply and without outstanding calls is rejected IC0506.
#[test]
fn no_reply_is_ic0506() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let result = sim.update_call(id, Principal::anonymous(), "no_reply", Encode!().unwrap());
    let err = expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterDidNotReply,
        &[],
    );
    assert_eq!(
        err.reject_message,
        format!("Canister {id} did not reply to the call")
    );
}

/// A canister caller sees a callee's missing reply as CANISTER_ERROR (there is no error code
/// between canisters, only the reject code and the text).
#[test]
fn no_reply_seen_by_a_canister_caller() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    let outcome = probe_call(&sim, a, CallArgs::no_arg(b, "no_reply"));
    assert_call_reject(&outcome, RejectCode::CanisterError, &["No response"]);
}

/// A canister caller sees the callee's trap with the `ICxxxx: ` prefix of the user error.
#[test]
fn callee_trap_seen_by_a_canister_caller() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    let outcome = probe_call(&sim, a, CallArgs::new(b, "trap", Encode!(&"deep").unwrap()));
    let (code, message) = outcome.reject();
    assert_eq!(code, RejectCode::CanisterError as u32);
    assert!(
        message.starts_with(&format!("IC0503: {}", error_from(b))),
        "message {message:?}"
    );
    assert!(
        message.contains(&called_trap("deep")),
        "message {message:?}"
    );
}

/// A canister caller sees an explicit reject as CANISTER_REJECT with the callee's text verbatim.
#[test]
fn callee_reject_seen_by_a_canister_caller() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    let outcome = probe_call(
        &sim,
        a,
        CallArgs::new(b, "reject", Encode!(&"nope").unwrap()),
    );
    assert_eq!(
        outcome,
        CallOutcome::Reject {
            code: RejectCode::CanisterReject as u32,
            message: "nope".to_string()
        }
    );
}

/// A reply travels back to the caller unchanged.
#[test]
fn callee_reply_reaches_the_caller() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    let outcome = probe_call(&sim, a, CallArgs::no_arg(b, "inc"));
    assert_eq!(outcome.reply::<u64>(), 1);
    let caller: Principal = probe_call(&sim, a, CallArgs::no_arg(b, "caller")).reply();
    assert_eq!(
        caller, a,
        "msg_caller of an inter-canister call is the calling canister"
    );
    // The response callback ran while the caller was running (ic0.canister_status = 1).
    assert_eq!(
        query::<u32>(&sim, a, "last_callback_status", Encode!().unwrap()).unwrap(),
        1
    );
}

/// A one-way call (callback index usize::MAX): the caller replies at once, the callee runs, and
/// the response is dropped without running anything in the caller.
#[test]
fn oneway_call_drops_the_response() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    let sent: Result<(), String> = update(
        &sim,
        a,
        "oneway",
        Encode!(&CallArgs::no_arg(b, "inc")).unwrap(),
    )
    .unwrap();
    assert_eq!(sent, Ok(()));
    ticks(&sim, 5);
    assert_eq!(read(&sim, b), 1, "the one-way request was delivered");
    assert_eq!(
        query::<u32>(&sim, a, "last_callback_status", Encode!().unwrap()).unwrap(),
        0,
        "no callback of the caller ran"
    );
    // The caller is healthy afterwards.
    assert_eq!(inc(&sim, a), 1);
}

/// Calling a method the module does not export: IC0536.
#[test]
fn missing_method_is_ic0536() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let update_result = sim.update_call(id, Principal::anonymous(), "nope", Encode!().unwrap());
    expect_reject(
        update_result,
        RejectCode::CanisterError,
        ErrorCode::CanisterMethodNotFound,
        &[&error_from(id), "Canister has no update method 'nope'"],
    );
    let query_result = sim.query_call(id, Principal::anonymous(), "nope", Encode!().unwrap());
    expect_reject(
        query_result,
        RejectCode::CanisterError,
        ErrorCode::CanisterMethodNotFound,
        &[&error_from(id), "Canister has no query method 'nope'"],
    );
}

/// Messages to an empty canister: IC0537 (ingress filter text for updates, execution text for
/// queries).
#[test]
fn messages_to_an_empty_canister_are_ic0537() {
    let sim = Sim::new();
    let id = new_empty(&sim);
    let update_result = sim.update_call(id, Principal::anonymous(), "inc", Encode!().unwrap());
    expect_reject(
        update_result,
        RejectCode::CanisterError,
        ErrorCode::CanisterWasmModuleNotFound,
        &["Requested canister has no wasm module"],
    );
    let query_result = sim.query_call(id, Principal::anonymous(), "read", Encode!().unwrap());
    expect_reject(
        query_result,
        RejectCode::CanisterError,
        ErrorCode::CanisterWasmModuleNotFound,
        &["Attempted to execute a message, but the canister contains no Wasm module"],
    );
}

/// Calls to a canister that does not exist: IC0301 for ingress, DESTINATION_INVALID between
/// canisters.
#[test]
fn calls_to_a_missing_canister_are_destination_invalid() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let ghost = Principal::from_slice(&[0, 0, 0, 0, 0, 0x0f, 0xff, 0xff, 1, 1]);
    assert!(!sim.canister_exists(ghost));

    let ingress = sim.update_call(ghost, Principal::anonymous(), "inc", Encode!().unwrap());
    expect_reject(
        ingress,
        RejectCode::DestinationInvalid,
        ErrorCode::CanisterNotFound,
        &[&format!("Canister {ghost} not found")],
    );

    let outcome = probe_call(&sim, a, CallArgs::no_arg(ghost, "inc"));
    assert_call_reject(
        &outcome,
        RejectCode::DestinationInvalid,
        &[&format!("Canister {ghost} not found")],
    );
}
