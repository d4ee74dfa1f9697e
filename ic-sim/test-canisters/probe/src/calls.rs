//! Inter-canister calls through `ic_cdk::call::Call`, the way real canisters make them.

use std::future::{Future, IntoFuture};
use std::pin::pin;
use std::task::{Context, Waker};

use candid::Principal;
use ic_cdk::call::{Call, CallFailed};
use ic_management_canister_types::{
    CanisterIdRecord, CanisterInstallMode, CanisterStatusResult, InstallCodeArgs,
};

use crate::api::{CallArgs, CallOutcome};
use crate::state;

/// The `Call` that `args` describes (bounded wait with `change_timeout` when a timeout is given).
fn build(args: &CallArgs) -> Call<'_, '_> {
    let call = match args.bounded_wait_secs {
        Some(secs) => Call::bounded_wait(args.target, &args.method).change_timeout(secs),
        None => Call::unbounded_wait(args.target, &args.method),
    };
    let cycles = u128::try_from(args.cycles.0.clone()).unwrap_or(u128::MAX);
    call.with_raw_args(&args.arg).with_cycles(cycles)
}

/// Makes the call and reports its outcome; records the canister status seen by the callback.
pub async fn call(args: &CallArgs) -> CallOutcome {
    let result = build(args).await;
    state::set_last_callback_status(ic_cdk::api::canister_status().into());
    outcome(result)
}

/// Performs the call (ic0.call_perform) without awaiting its response.
pub fn perform_without_awaiting(args: &CallArgs) {
    let mut future = pin!(build(args).into_future());
    // The first poll performs the call; the response would wake a no-op waker.
    let _ = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()));
}

/// A one-way call: ic-cdk registers callback index usize::MAX, so the response is dropped.
pub fn oneway(args: &CallArgs) -> Result<(), String> {
    build(args).oneway().map_err(|e| e.to_string())
}

fn outcome(result: Result<ic_cdk::call::Response, CallFailed>) -> CallOutcome {
    match result {
        Ok(response) => CallOutcome::Reply(response.into_bytes()),
        Err(CallFailed::CallRejected(rejected)) => CallOutcome::Reject {
            code: rejected.raw_reject_code(),
            message: rejected.reject_message().to_string(),
        },
        Err(other) => CallOutcome::PerformFailed(other.to_string()),
    }
}

fn self_upgrade_args(wasm: Vec<u8>, arg: Vec<u8>) -> InstallCodeArgs {
    InstallCodeArgs {
        mode: CanisterInstallMode::Upgrade(None),
        canister_id: ic_cdk::api::canister_self(),
        wasm_module: wasm,
        arg,
        sender_canister_version: Some(ic_cdk::api::canister_version()),
    }
}

/// Upgrades this canister with a one-way install_code: nothing waits for the answer.
pub fn self_upgrade_oneway(wasm: Vec<u8>, arg: Vec<u8>) -> Result<(), String> {
    Call::unbounded_wait(Principal::management_canister(), "install_code")
        .with_arg(self_upgrade_args(wasm, arg))
        .oneway()
        .map_err(|e| e.to_string())
}

/// Upgrades this canister and awaits the answer, whose callback then runs in the new module.
pub async fn self_upgrade_awaited(wasm: Vec<u8>, arg: Vec<u8>) -> CallOutcome {
    let result = Call::unbounded_wait(Principal::management_canister(), "install_code")
        .with_arg(self_upgrade_args(wasm, arg))
        .await;
    outcome(result)
}

/// canister_status through the management canister, decoded with ic-cdk's own types.
pub async fn status_of(canister: Principal) -> Result<CanisterStatusResult, String> {
    let response = Call::unbounded_wait(Principal::management_canister(), "canister_status")
        .with_arg(CanisterIdRecord {
            canister_id: canister,
        })
        .await
        .map_err(|e| e.to_string())?;
    response
        .candid::<CanisterStatusResult>()
        .map_err(|e| e.to_string())
}
