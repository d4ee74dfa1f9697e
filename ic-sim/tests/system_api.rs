//! The System API (`ic0`): which imports a module may have, what each call returns, and which
//! contexts may call what (IC-SEMANTICS.md, "System API").

mod common;

use std::time::Duration;

use common::*;

/// The probe imports most of what ic-cdk 0.20 and ic-cdk-timers 1.0 use, with their exact
/// signatures: it installs, and a failed validation of another module leaves a canister empty.
#[test]
fn ic_cdk_imports_are_all_provided() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    assert_eq!(sim.module_hash(id), Some(sha256(&probe_wasm())));
    assert_eq!(inc(&sim, id), 1);
}

/// An import the IC does not export is refused at install: IC0505.
#[test]
fn unknown_import_is_refused_at_install() {
    let sim = Sim::new();
    let id = new_empty(&sim);
    let result = sim.install_code(
        CanisterInstallMode::Install,
        id,
        wat_fixture("import_unknown"),
        vec![],
        None,
    );
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterInvalidWasm,
        &[
            &error_from(id),
            "Canister's Wasm module is not valid: Wasm module has an invalid import section. \
         Module imports function 'not_a_function' from 'ic0' that is not exported by the runtime.",
        ],
    );
    assert_eq!(
        sim.module_hash(id),
        None,
        "a refused module leaves the canister empty"
    );
}

/// A System API function imported with the wrong signature is refused: IC0505.
#[test]
fn import_with_wrong_signature_is_refused() {
    let sim = Sim::new();
    let id = new_empty(&sim);
    let result = sim.install_code(
        CanisterInstallMode::Install,
        id,
        wat_fixture("import_wrong_signature"),
        vec![],
        None,
    );
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterInvalidWasm,
        &[
            "Canister's Wasm module is not valid: Wasm module has an invalid function signature.",
            "for 'msg_reply'",
        ],
    );
}

/// A System API function imported from `env` instead of `ic0` is refused: IC0505.
#[test]
fn import_from_env_is_refused() {
    let sim = Sim::new();
    let id = new_empty(&sim);
    let result = sim.install_code(
        CanisterInstallMode::Install,
        id,
        wat_fixture("import_env"),
        vec![],
        None,
    );
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterInvalidWasm,
        &[
            "Wasm module has an invalid import section. Module imports function \"msg_reply\" from \
         \"env\", expected to be imported from one of [\"ic0\"] instead.",
        ],
    );
}

/// The smallest valid module installs; calling it finds no method.
#[test]
fn empty_module_installs() {
    let sim = Sim::new();
    let id = new_wat(&sim, "empty");
    assert_eq!(sim.module_hash(id), Some(sha256(&wat_fixture("empty"))));
    let result = sim.update_call(id, Principal::anonymous(), "anything", vec![]);
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterMethodNotFound,
        &["Canister has no update method 'anything'"],
    );
}

/// Fidelity check: stack overflow traps (IC0502 "stack overflow"), in raw Wasm and in Rust.
#[test]
fn stack_overflow_traps() {
    let sim = Sim::new();
    let wat = new_wat(&sim, "stack_overflow");
    let result = sim.update_call(wat, Principal::anonymous(), "overflow", vec![]);
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterTrapped,
        &[&error_from(wat), "Canister trapped: stack overflow"],
    );

    let probe = new_probe(&sim);
    let shallow: u64 = update(&sim, probe, "recurse", Encode!(&100u64).unwrap()).unwrap();
    assert_ne!(shallow, 0, "a shallow recursion returns");
    let deep = sim.update_call(
        probe,
        Principal::anonymous(),
        "recurse",
        Encode!(&100_000_000u64).unwrap(),
    );
    expect_reject(
        deep,
        RejectCode::CanisterError,
        ErrorCode::CanisterTrapped,
        &[&error_from(probe), "Canister trapped: stack overflow"],
    );
    // The canister survives its trap.
    assert_eq!(inc(&sim, probe), 1);
}

/// Replying twice is a contract violation (IC0504) and the first reply is discarded with it.
#[test]
fn second_reply_is_a_contract_violation() {
    let sim = Sim::new();
    let id = new_wat(&sim, "double_reply");
    let result = sim.update_call(id, Principal::anonymous(), "twice", vec![]);
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterContractViolation,
        &[
            &error_from(id),
            "Canister violated contract: ic0.msg_reply: the call is already replied",
        ],
    );
}

/// A System API used outside its context traps: msg_reply in a timer (the timer's increment is
/// rolled back and the timer is gone) and global_timer_set in a query (IC0504).
#[test]
fn system_api_outside_its_context_traps() {
    let sim = Sim::new();
    let id = new_wat(&sim, "timer_reply");
    let deadline = now(&sim) + 1_000_000_000;
    let previous = raw_u64(
        &sim.update_call(
            id,
            Principal::anonymous(),
            "set",
            deadline.to_le_bytes().to_vec(),
        )
        .unwrap(),
    );
    assert_eq!(previous, 0);
    let executions = sim.execution_stats(id).executions;
    advance(&sim, Duration::from_secs(2));
    assert_eq!(
        sim.execution_stats(id).executions,
        executions + 1,
        "the timer ran once"
    );
    assert_eq!(
        wat_timer_fired(&sim, id),
        0,
        "the handler trapped on msg_reply, so its increment was rolled back"
    );
    let executions = sim.execution_stats(id).executions;
    advance(&sim, Duration::from_secs(2));
    assert_eq!(
        sim.execution_stats(id).executions,
        executions,
        "a trapped timer is not retried"
    );
    assert_eq!(wat_timer_fired(&sim, id), 0);

    let result = sim.query_call(id, Principal::anonymous(), "set_in_query", vec![]);
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterContractViolation,
        &[
            &error_from(id),
            "\"ic0_global_timer_set\" cannot be executed in non replicated query mode",
        ],
    );
}

/// `ic0.msg_deadline` is 0 for ingress and unbounded-wait calls; a bounded-wait call's deadline
/// is the caller's time plus the timeout, capped at 300 s.
#[test]
fn msg_deadline_reflects_the_call_kind() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    let ingress: u64 = update(&sim, b, "deadline", Encode!().unwrap()).unwrap();
    assert_eq!(ingress, 0, "ingress messages have no deadline");

    let unbounded: u64 = probe_call(&sim, a, CallArgs::no_arg(b, "deadline")).reply();
    assert_eq!(unbounded, 0, "unbounded-wait calls have no deadline");

    let t0 = now(&sim);
    let bounded: u64 = probe_call(&sim, a, CallArgs::no_arg(b, "deadline").bounded(60)).reply();
    assert!(
        (t0 + 60_000_000_000..=t0 + 61_000_000_000).contains(&bounded),
        "deadline {bounded} should be about {t0} + 60 s"
    );

    let t1 = now(&sim);
    let capped: u64 = probe_call(&sim, a, CallArgs::no_arg(b, "deadline").bounded(1_000)).reply();
    assert!(
        (t1 + 300_000_000_000..=t1 + 301_000_000_000).contains(&capped),
        "deadline {capped} should be capped at {t1} + 300 s"
    );
}

/// `ic0.time` is constant within one execution.
#[test]
fn time_is_constant_within_an_execution() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let constant: bool = update(&sim, id, "time_is_constant", Encode!().unwrap()).unwrap();
    assert!(constant);
}

/// Fidelity check: time advances monotonically, and `advance_time` moves canister time.
#[test]
fn time_advances_monotonically() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let t1: u64 = update(&sim, id, "time", Encode!().unwrap()).unwrap();
    let t2: u64 = update(&sim, id, "time", Encode!().unwrap()).unwrap();
    assert!(t2 >= t1, "time went back: {t1} -> {t2}");
    sim.advance_time(Duration::from_secs(10));
    let t3: u64 = update(&sim, id, "time", Encode!().unwrap()).unwrap();
    assert!(
        t3 >= t2 + 10_000_000_000,
        "advance_time(10 s) moved time only {t2} -> {t3}"
    );
    let tq: u64 = query(&sim, id, "time_query", Encode!().unwrap()).unwrap();
    assert!(tq >= t3, "a later query sees earlier time: {t3} -> {tq}");
    assert!(now(&sim) >= t3);
}

/// `ic0.performance_counter(0)` counts this execution's instructions; the simulator's own figure
/// agrees.
#[test]
fn performance_counter_counts_instructions() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let counted: u64 = update(
        &sim,
        id,
        "burn_instructions",
        Encode!(&5_000_000u64).unwrap(),
    )
    .unwrap();
    assert!(counted >= 5_000_000, "performance_counter(0) = {counted}");
    assert!(sim.last_instructions(id) >= counted);
    // A fresh execution starts from zero again.
    let small: u64 = update(&sim, id, "burn_instructions", Encode!(&1u64).unwrap()).unwrap();
    assert!(
        small < 5_000_000,
        "the counter is per execution, got {small}"
    );
}

/// `ic0.is_controller` answers for controllers and others.
#[test]
fn is_controller_tells_controllers_apart() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let anonymous: bool = query(
        &sim,
        id,
        "is_controller",
        Encode!(&Principal::anonymous()).unwrap(),
    )
    .unwrap();
    let other: bool = query(&sim, id, "is_controller", Encode!(&stranger()).unwrap()).unwrap();
    assert!(anonymous, "create_canister's caller controls the canister");
    assert!(!other);
}

/// `ic0.in_replicated_execution`: a query method run as an update is replicated, as a query not.
#[test]
fn in_replicated_execution_tells_updates_from_queries() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let as_update: bool = update(&sim, id, "replicated", Encode!().unwrap()).unwrap();
    let as_query: bool = query(&sim, id, "replicated", Encode!().unwrap()).unwrap();
    assert!(as_update);
    assert!(!as_query);
}

/// `ic0.canister_status` is 1 while running.
#[test]
fn canister_status_system_api_is_running() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let status: u32 = query(&sim, id, "status_code", Encode!().unwrap()).unwrap();
    assert_eq!(status, 1);
}

/// `ic0.msg_caller` is the sender of an ingress message.
#[test]
fn msg_caller_is_the_sender() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let alice = user("alice");
    let bytes = sim
        .update_call(id, alice, "caller", Encode!().unwrap())
        .unwrap();
    assert_eq!(Decode!(&bytes, Principal).unwrap(), alice);
}

/// Cycles: balance, burning, and the liquid balance and call cost that ic-cdk compares before
/// every call must be sane.
#[test]
fn cycles_balance_burn_and_call_cost_are_sane() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let before: Nat = query(&sim, id, "balance", Encode!().unwrap()).unwrap();
    assert_eq!(before, Nat::from(sim.cycle_balance(id)));
    let burnt: Nat = update(
        &sim,
        id,
        "burn_cycles",
        Encode!(&Nat::from(1_000_000u64)).unwrap(),
    )
    .unwrap();
    assert_eq!(burnt, Nat::from(1_000_000u64));
    let after: Nat = query(&sim, id, "balance", Encode!().unwrap()).unwrap();
    assert!(
        after.clone() + Nat::from(1_000_000u64) <= before,
        "{before} -> {after}"
    );

    let liquid: Nat = query(&sim, id, "liquid_balance", Encode!().unwrap()).unwrap();
    let cost: Nat = query(&sim, id, "cost_call", Encode!(&3u64, &100u64).unwrap()).unwrap();
    assert!(
        liquid <= after && liquid > 0u8,
        "liquid {liquid}, balance {after}"
    );
    assert!(
        cost > 0u8 && cost < liquid,
        "cost_call {cost}, liquid {liquid}"
    );
    assert_eq!(sim.cycle_balance(id), u128::try_from(after.0).unwrap());
}

/// `ic0.stable64_grow` returns the previous size, or -1 past the 500 GiB stable-memory limit
/// (which leaves the size unchanged).
#[test]
fn stable_grow_fails_past_500_gib() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let grow =
        |pages: u64| -> i64 { update(&sim, id, "stable_grow", Encode!(&pages).unwrap()).unwrap() };
    assert_eq!(grow(1), 0, "returns the previous size in pages");
    assert_eq!(grow(2), 1);
    let limit_pages = 500 * 1024 * 1024 * 1024 / 65_536u64;
    assert_eq!(grow(limit_pages), -1, "growing to past 500 GiB fails");
    assert_eq!(grow(0), 3, "a failed grow leaves the size unchanged");
}

/// `ic0.debug_print` output is collected per canister.
#[test]
fn debug_print_is_recorded() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let () = update(
        &sim,
        id,
        "debug_print",
        Encode!(&"hello from the probe").unwrap(),
    )
    .unwrap();
    assert!(
        sim.debug_log(id)
            .iter()
            .any(|line| line.contains("hello from the probe")),
        "log: {:?}",
        sim.debug_log(id)
    );
}
