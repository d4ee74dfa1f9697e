//! Lifecycle: install modes, atomic upgrades, self-upgrades, uninstall, stop/start and delete
//! (IC-SEMANTICS.md, "Lifecycle").

mod common;

use std::time::Duration;

use common::*;
use ic_management_canister_types::UpgradeFlags;

fn upgrade_with_flags(skip_pre_upgrade: bool) -> CanisterInstallMode {
    CanisterInstallMode::Upgrade(Some(UpgradeFlags {
        skip_pre_upgrade: Some(skip_pre_upgrade),
        wasm_memory_persistence: None,
    }))
}

/// `install` on a non-empty canister: IC0514.
#[test]
fn install_on_a_non_empty_canister_is_ic0514() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let result = sim.install_code(
        CanisterInstallMode::Install,
        id,
        probe_wasm(),
        no_init(),
        None,
    );
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterNonEmpty,
        &[&format!(
            "Canister {id} cannot be installed because the canister is not empty."
        )],
    );
}

/// Fidelity check: upgrading an empty canister is refused (IC0537).
#[test]
fn upgrading_an_empty_canister_is_ic0537() {
    let sim = Sim::new();
    let id = new_empty(&sim);
    let result = sim.upgrade_canister(id, probe_wasm(), no_init(), None);
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterWasmModuleNotFound,
        &[
            &error_from(id),
            "Attempted to execute a message, but the canister contains no Wasm module",
        ],
    );
    assert_eq!(sim.module_hash(id), None);
}

/// Reinstall wipes heap and stable memory.
#[test]
fn reinstall_wipes_heap_and_stable_memory() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    inc(&sim, id);
    stable_inc(&sim, id);
    sim.reinstall_canister(id, probe_wasm(), no_init(), None)
        .unwrap();
    assert_eq!(read(&sim, id), 0);
    assert_eq!(stable_read(&sim, id), 0);
    assert!(
        sim.get_stable_memory(id).is_empty(),
        "stable memory is empty after reinstall"
    );
}

/// An upgrade keeps stable memory, loses the heap (the probe saves it in pre_upgrade and restores
/// it in post_upgrade) and bumps canister_version.
#[test]
fn upgrade_keeps_stable_memory_and_bumps_version() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    inc(&sim, id);
    inc(&sim, id);
    stable_inc(&sim, id);
    let before = version(&sim, id);
    sim.upgrade_canister(id, probe_wasm(), no_init(), None)
        .unwrap();
    assert_eq!(
        read(&sim, id),
        2,
        "restored by post_upgrade from what pre_upgrade saved"
    );
    assert_eq!(stable_read(&sim, id), 1);
    assert_eq!(version(&sim, id), before + 1);
    assert_eq!(sim.canister_status(id, None).unwrap().version, before + 1);
}

/// Fidelity check: a trapping pre_upgrade fails the upgrade (IC0503, old state kept) unless
/// skip_pre_upgrade is set.
#[test]
fn trapping_pre_upgrade_fails_unless_skipped() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    inc(&sim, id);
    let () = update(&sim, id, "set_pre_upgrade_trap", Encode!(&true).unwrap()).unwrap();
    let before = version(&sim, id);

    let result = sim.upgrade_canister(id, probe_wasm_gz(), no_init(), None);
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterCalledTrap,
        &[
            &error_from(id),
            &called_trap("probe: pre_upgrade trap armed"),
        ],
    );
    assert_eq!(read(&sim, id), 1, "old state kept");
    assert_eq!(
        version(&sim, id),
        before,
        "a failed upgrade does not bump the version"
    );
    assert_eq!(
        sim.module_hash(id),
        Some(sha256(&probe_wasm())),
        "old module kept"
    );

    sim.install_code(
        upgrade_with_flags(true),
        id,
        probe_wasm_gz(),
        no_init(),
        None,
    )
    .expect("skip_pre_upgrade bypasses the trap");
    assert_eq!(sim.module_hash(id), Some(sha256(&probe_wasm_gz())));
    assert_eq!(version(&sim, id), before + 1);
}

/// Fidelity check: a trapping post_upgrade keeps the old module and all state (including what
/// pre_upgrade wrote to stable memory).
#[test]
fn trapping_post_upgrade_keeps_old_module_and_state() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    for _ in 0..3 {
        inc(&sim, id);
    }
    let stable_before = sim.get_stable_memory(id);
    let before = version(&sim, id);

    let arg = init_arg(ProbeInit {
        trap_with: Some("post_upgrade says no".into()),
        burn_instructions: 0,
    });
    let result = sim.upgrade_canister(id, probe_wasm_gz(), arg, None);
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterCalledTrap,
        &[&error_from(id), &called_trap("post_upgrade says no")],
    );
    assert_eq!(
        sim.module_hash(id),
        Some(sha256(&probe_wasm())),
        "old module kept"
    );
    assert_eq!(read(&sim, id), 3, "old heap kept");
    assert_eq!(
        sim.get_stable_memory(id),
        stable_before,
        "pre_upgrade's write rolled back"
    );
    assert_eq!(version(&sim, id), before);
}

/// A trap in the new module's start function fails the upgrade (IC0502) and keeps the old one.
#[test]
fn trapping_start_function_keeps_old_module() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    inc(&sim, id);
    let result = sim.upgrade_canister(id, wat_fixture("start_trap"), vec![], None);
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterTrapped,
        &[&error_from(id), "Canister trapped: unreachable"],
    );
    assert_eq!(sim.module_hash(id), Some(sha256(&probe_wasm())));
    assert_eq!(read(&sim, id), 1);
}

/// Fidelity check: an instruction-limit overrun in post_upgrade keeps the old state (IC0522).
///
/// The IC allows 300 B instructions per install_code, too many to burn in a test; the limit is
/// lowered to 200 M here, which is harsher than the IC, never kinder.
#[test]
fn instruction_limit_in_post_upgrade_keeps_old_state() {
    let sim = Sim::with_config(SimConfig {
        instruction_limit_install: 200_000_000,
        ..SimConfig::default()
    });
    let id = new_probe(&sim);
    inc(&sim, id);
    inc(&sim, id);
    let arg = init_arg(ProbeInit {
        trap_with: None,
        burn_instructions: 400_000_000,
    });
    let result = sim.upgrade_canister(id, probe_wasm_gz(), arg, None);
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterInstructionLimitExceeded,
        &[
            &error_from(id),
            "Canister exceeded the limit of 200000000 instructions for single message execution.",
        ],
    );
    assert_eq!(sim.module_hash(id), Some(sha256(&probe_wasm())));
    assert_eq!(read(&sim, id), 2);
    // And an install that overruns leaves the canister empty.
    let fresh = new_empty(&sim);
    let result = sim.install_code(
        CanisterInstallMode::Install,
        fresh,
        probe_wasm(),
        init_arg(ProbeInit {
            trap_with: None,
            burn_instructions: 400_000_000,
        }),
        None,
    );
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterInstructionLimitExceeded,
        &["Canister exceeded the limit of 200000000 instructions"],
    );
    assert_eq!(sim.module_hash(fresh), None);
}

/// Fidelity check: a non-controller's upgrade is refused (IC0512).
#[test]
fn non_controller_upgrade_is_refused() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let result = sim.upgrade_canister(id, probe_wasm_gz(), no_init(), Some(stranger()));
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterInvalidController,
        &[&not_controller(id), &format!("Sender's ID: {}", stranger())],
    );
    assert_eq!(sim.module_hash(id), Some(sha256(&probe_wasm())));
}

/// module_hash is SHA-256 of the uploaded bytes, gzip accepted (the hash is of the gzip bytes).
#[test]
fn module_hash_is_sha256_of_the_uploaded_bytes_gzip_accepted() {
    let sim = Sim::new();
    let id = new_empty(&sim);
    let gz = probe_wasm_gz();
    assert_eq!(&gz[..3], &[0x1f, 0x8b, 0x08]);
    sim.install_canister(id, gz.clone(), no_init(), None);
    assert_eq!(sim.module_hash(id), Some(sha256(&gz)));
    let status = sim.canister_status(id, None).unwrap();
    assert_eq!(status.module_hash, Some(sha256(&gz).to_vec()));
    assert_eq!(inc(&sim, id), 1, "the gzipped module runs");
}

/// Fidelity check: module_hash is Some after install and None after uninstall; calls then find
/// no module.
#[test]
fn module_hash_some_after_install_none_after_uninstall() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    assert_eq!(sim.module_hash(id), Some(sha256(&probe_wasm())));
    sim.uninstall_canister(id, None).unwrap();
    assert_eq!(sim.module_hash(id), None);
    assert_eq!(sim.canister_status(id, None).unwrap().module_hash, None);
    let result = sim.query_call(id, Principal::anonymous(), "read", Encode!().unwrap());
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterWasmModuleNotFound,
        &["contains no Wasm module"],
    );
}

/// Uninstall rejects open call contexts with "Canister has been uninstalled." and no callback of
/// theirs runs.
#[test]
fn uninstall_rejects_open_call_contexts() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    sim.inject(Fault::HoldResponses { from: b });
    let msg = submit_probe_call(&sim, a, CallArgs::no_arg(b, "inc"));
    ticks(&sim, 5);
    assert!(
        sim.ingress_status(msg.clone()).is_none(),
        "still waiting for b"
    );

    sim.uninstall_canister(a, None).unwrap();
    let status = sim
        .ingress_status(msg.clone())
        .expect("the call context was closed");
    expect_reject(
        status,
        RejectCode::CanisterReject,
        ErrorCode::CanisterRejectedMessage,
        &["Canister has been uninstalled."],
    );

    // The held response arrives at an empty canister: nothing runs, nothing changes.
    sim.release_held_responses();
    ticks(&sim, 5);
    sim.install_canister(a, probe_wasm(), no_init(), None);
    assert_eq!(read(&sim, a), 0);
    assert_eq!(
        query::<u32>(&sim, a, "last_callback_status", Encode!().unwrap()).unwrap(),
        0
    );
}

/// Upgrade keeps outstanding callbacks: a canister that upgrades itself and awaits the answer
/// gets its response delivered to the NEW module's table[fun](env), a stale callback that traps.
/// The call context then fails with the callback's trap (CANISTER_ERROR; which trap depends on
/// what the stale env pointer now points at, hence 502 or 503).
#[test]
fn awaited_self_upgrade_runs_a_stale_callback_in_the_new_module() {
    let sim = Sim::new();
    let id = new_self_controlled_probe(&sim);
    let before = version(&sim, id);
    let msg = sim
        .submit_call(
            id,
            Principal::anonymous(),
            "self_upgrade_awaited",
            Encode!(&probe_wasm(), &no_init()).unwrap(),
        )
        .unwrap();
    let result = sim.await_call(msg);
    let err = result.expect_err("the stale callback cannot reply");
    assert_eq!(err.reject_code, RejectCode::CanisterError, "{err:?}");
    assert!(
        matches!(
            err.error_code,
            ErrorCode::CanisterTrapped | ErrorCode::CanisterCalledTrap
        ),
        "{err:?}"
    );
    assert!(err.reject_message.contains(&error_from(id)), "{err:?}");
    assert!(version(&sim, id) > before, "the upgrade itself happened");
}

/// A canister upgrading itself with a one-way call: the upgrade happens, pre/post_upgrade carry
/// the heap counter over, and the dropped response harms nothing.
#[test]
fn oneway_self_upgrade_succeeds() {
    let sim = Sim::new();
    let id = new_self_controlled_probe(&sim);
    inc(&sim, id);
    inc(&sim, id);
    let before = version(&sim, id);
    let sent: Result<(), String> = update(
        &sim,
        id,
        "self_upgrade_oneway",
        Encode!(&probe_wasm_gz(), &no_init()).unwrap(),
    )
    .unwrap();
    assert_eq!(sent, Ok(()));
    ticks(&sim, 10);
    assert_eq!(
        sim.module_hash(id),
        Some(sha256(&probe_wasm_gz())),
        "upgraded"
    );
    assert!(version(&sim, id) > before);
    assert_eq!(
        read(&sim, id),
        2,
        "heap counter carried over by pre/post_upgrade"
    );
    assert_eq!(inc(&sim, id), 3);
}

/// Calls to a stopped canister are rejected IC0508; start makes it callable again.
#[test]
fn stopped_canister_rejects_calls_with_ic0508() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    inc(&sim, id);
    sim.stop_canister(id, None).unwrap();
    assert_eq!(
        sim.canister_status(id, None).unwrap().status,
        CanisterStatusType::Stopped
    );

    let result = sim.update_call(id, Principal::anonymous(), "inc", Encode!().unwrap());
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterStopped,
        &[&format!("Canister {id} is stopped")],
    );
    let result = sim.query_call(id, Principal::anonymous(), "read", Encode!().unwrap());
    // The query path words it "Canister X is stopped[ and therefore ...]" (query_context.rs).
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterStopped,
        &[&format!("Canister {id} is stopped")],
    );

    let a = new_probe(&sim);
    let outcome = probe_call(&sim, a, CallArgs::no_arg(id, "inc"));
    assert_call_reject(
        &outcome,
        RejectCode::CanisterError,
        &[&format!("Canister {id} is stopped")],
    );

    sim.start_canister(id, None).unwrap();
    assert_eq!(inc(&sim, id), 2, "state survives stop/start");
}

/// A stopping canister rejects new calls (IC0509) but still runs responses, and stops once no
/// call context remains.
#[test]
fn stopping_canister_rejects_calls_but_runs_responses() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    sim.inject(Fault::HoldResponses { from: b });
    let call = submit_probe_call(&sim, a, CallArgs::no_arg(b, "inc"));
    ticks(&sim, 3);
    let stop = sim.stop_canister_nonblocking(a, None);
    ticks(&sim, 3);
    assert_eq!(
        sim.canister_status(a, None).unwrap().status,
        CanisterStatusType::Stopping
    );
    assert!(
        sim.ingress_status(stop.clone()).is_none(),
        "stop waits for the open call context"
    );

    let result = sim.update_call(a, Principal::anonymous(), "inc", Encode!().unwrap());
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterStopping,
        &[&format!("Canister {a} is stopping")],
    );

    sim.release_held_responses();
    ticks(&sim, 5);
    assert_eq!(
        decode_outcome(sim.await_call(call)).reply::<u64>(),
        1,
        "the response ran"
    );
    sim.await_call(stop)
        .expect("the stop completes once the call context closed");
    assert_eq!(
        sim.canister_status(a, None).unwrap().status,
        CanisterStatusType::Stopped
    );

    sim.start_canister(a, None).unwrap();
    assert_eq!(
        query::<u32>(&sim, a, "last_callback_status", Encode!().unwrap()).unwrap(),
        2,
        "the callback ran while stopping (ic0.canister_status = 2)"
    );
}

/// Fidelity check: a canister with a pending downstream call stays stopping, and the stop call
/// times out after 5 minutes with IC0206.
#[test]
fn stop_with_pending_call_times_out_after_5_minutes() {
    let sim = Sim::new();
    let (a, stop) = stopping_with_a_held_call(&sim);

    advance(&sim, Duration::from_secs(4 * 60));
    assert!(
        sim.ingress_status(stop.clone()).is_none(),
        "not yet timed out after 4 minutes"
    );
    assert_eq!(
        sim.canister_status(a, None).unwrap().status,
        CanisterStatusType::Stopping
    );

    advance(&sim, Duration::from_secs(61 + 1));
    let status = sim.ingress_status(stop).expect("timed out after 5 minutes");
    expect_reject(
        status,
        RejectCode::SysTransient,
        ErrorCode::StopCanisterRequestTimeout,
        &["Stop canister request timed out"],
    );
    assert_eq!(
        sim.canister_status(a, None).unwrap().status,
        CanisterStatusType::Stopping,
        "the canister stays stopping"
    );
}

/// start_canister while stopping cancels the stop (IC0511) and the canister runs again.
#[test]
fn start_while_stopping_cancels_the_stop() {
    let sim = Sim::new();
    let (a, stop) = stopping_with_a_held_call(&sim);

    sim.start_canister(a, None).unwrap();
    ticks(&sim, 2);
    let status = sim.ingress_status(stop).expect("the stop was answered");
    expect_reject(
        status,
        RejectCode::CanisterError,
        ErrorCode::CanisterStoppingCancelled,
        &[&format!("Canister {a}'s stop request was cancelled.")],
    );
    assert_eq!(
        sim.canister_status(a, None).unwrap().status,
        CanisterStatusType::Running
    );
    assert_eq!(inc(&sim, a), 1);
}

/// delete_canister requires a stopped canister (IC0510); once stopped it goes.
#[test]
fn delete_requires_stopped() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let result = sim.delete_canister(id, None);
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterNotStopped,
        &[&format!(
            "Canister {id} must be stopped before it is deleted."
        )],
    );
    assert!(sim.canister_exists(id));

    sim.stop_canister(id, None).unwrap();
    sim.delete_canister(id, None).unwrap();
    assert!(!sim.canister_exists(id));
    let result = sim.update_call(id, Principal::anonymous(), "inc", Encode!().unwrap());
    expect_reject(
        result,
        RejectCode::DestinationInvalid,
        ErrorCode::CanisterNotFound,
        &[&format!("Canister {id} not found")],
    );
}

/// A canister cannot delete itself (checked first, even before "must be stopped").
#[test]
fn canister_cannot_delete_itself() {
    let sim = Sim::new();
    let id = new_self_controlled_probe(&sim);
    let arg = Encode!(&ic_management_canister_types::CanisterIdRecord { canister_id: id }).unwrap();
    let outcome = probe_call(
        &sim,
        id,
        CallArgs::new(management(), "delete_canister", arg),
    );
    assert_call_reject(
        &outcome,
        RejectCode::CanisterError,
        &[&format!("Canister {id} cannot delete itself.")],
    );
    assert!(sim.canister_exists(id));
}

/// A canister `a` whose call to another canister is held by a fault, and a stop request for `a`
/// submitted after it: `a` is stopping and cannot stop until the response is released.
fn stopping_with_a_held_call(sim: &Sim) -> (Principal, RawMessageId) {
    let a = new_probe(sim);
    let b = new_probe(sim);
    sim.inject(Fault::HoldResponses { from: b });
    let _call = submit_probe_call(sim, a, CallArgs::no_arg(b, "inc"));
    ticks(sim, 3);
    let stop = sim.stop_canister_nonblocking(a, None);
    ticks(sim, 3);
    (a, stop)
}
