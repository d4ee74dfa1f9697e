//! `ic-sim-probe`: the universal test canister of ic-sim's fidelity suite.
//!
//! Every endpoint exercises one rule of `shared/IC-SEMANTICS.md` with as little code as possible,
//! so that a failing test points at the simulator, not at the probe. The candid interface is
//! `probe.did` beside this crate.
//!
//! # Layout
//!
//! - `lib.rs` — the endpoints, thin.
//! - [`api`] — candid types.
//! - [`state`] — counters on the heap and in stable memory (with the stable layout).
//! - [`calls`] — inter-canister calls through `ic_cdk::call::Call`.
//! - [`work`] — instruction burning and deep recursion.

pub mod api;
pub mod calls;
pub mod state;
pub mod work;

use std::time::Duration;

use api::{CallArgs, CallOutcome, ProbeInit};
use candid::{Nat, Principal};
use ic_cdk::{init, post_upgrade, pre_upgrade, query, update};
use ic_management_canister_types::CanisterStatusResult;

// ---- lifecycle --------------------------------------------------------------------------------

#[init]
fn init(arg: Option<ProbeInit>) {
    obey(arg);
}

#[pre_upgrade]
fn pre_upgrade() {
    state::save_heap_counter();
    if state::pre_upgrade_trap() {
        ic_cdk::trap("probe: pre_upgrade trap armed");
    }
}

#[post_upgrade]
fn post_upgrade(arg: Option<ProbeInit>) {
    state::restore_heap_counter();
    obey(arg);
}

/// Burns, then traps, as the init argument asks.
fn obey(arg: Option<ProbeInit>) {
    let arg = arg.unwrap_or_default();
    if arg.burn_instructions > 0 {
        work::burn_instructions(arg.burn_instructions);
    }
    if let Some(message) = arg.trap_with {
        ic_cdk::trap(message);
    }
}

/// Makes the next `pre_upgrade` trap (or not).
#[update]
fn set_pre_upgrade_trap(armed: bool) {
    state::set_pre_upgrade_trap(armed);
}

// ---- counters ---------------------------------------------------------------------------------

#[update]
fn inc() -> u64 {
    state::heap_inc()
}

#[query]
fn read() -> u64 {
    state::heap_read()
}

#[update]
fn stable_inc() -> u64 {
    state::stable_inc()
}

#[query]
fn stable_read() -> u64 {
    state::stable_read()
}

/// Increments both counters, then traps: neither increment may survive.
#[update]
fn inc_then_trap(message: String) {
    state::heap_inc();
    state::stable_inc();
    ic_cdk::trap(message);
}

/// Increments both counters, then burns `n` instructions: an instruction-limit overrun must roll
/// the increments back.
#[update]
fn inc_then_burn(n: u64) -> u64 {
    state::heap_inc();
    state::stable_inc();
    work::burn_instructions(n)
}

// ---- replies, rejects, traps ------------------------------------------------------------------

#[update]
fn trap(message: String) {
    ic_cdk::trap(message);
}

/// Rejects explicitly with `ic0.msg_reject` (CANISTER_REJECT, not CANISTER_ERROR).
#[update(manual_reply = true)]
fn reject(message: String) {
    ic_cdk::api::msg_reject(message);
}

/// Returns without replying and without outstanding calls: the system must answer IC0506.
#[update(manual_reply = true)]
fn no_reply() {}

/// Replies, then traps: the reply is discarded with the rest of the execution.
#[update(manual_reply = true)]
fn reply_then_trap(message: String) {
    ic_cdk::api::msg_reply(candid::encode_one(()).unwrap_or_default());
    ic_cdk::trap(message);
}

/// Replies with `n` raw bytes (not candid), to probe the response size limit.
#[update(manual_reply = true)]
fn reply_bytes(n: u64) {
    ic_cdk::api::msg_reply(vec![0xAB; n as usize]);
}

// ---- inter-canister calls ---------------------------------------------------------------------

#[update]
async fn call(args: CallArgs) -> CallOutcome {
    calls::call(&args).await
}

/// Heap counter +1 before the call and +1 after the response, then traps: only the callback's
/// increment is rolled back, so the counter ends one higher.
#[update]
async fn call_then_trap(args: CallArgs) {
    state::heap_inc();
    let _ = calls::call(&args).await;
    state::heap_inc();
    ic_cdk::trap("probe: call_then_trap");
}

/// Performs a call and traps in the same execution: the call must never be delivered.
#[update]
fn call_and_trap_before_await(args: CallArgs) {
    calls::perform_without_awaiting(&args);
    ic_cdk::trap("probe: call_and_trap_before_await");
}

/// Calls `target.method` with `size` raw bytes of payload (payload-limit tests).
#[update]
async fn call_with_payload(target: Principal, method: String, size: u64) -> CallOutcome {
    let args = CallArgs {
        target,
        method,
        arg: vec![0xCD; size as usize],
        cycles: Nat::from(0u8),
        bounded_wait_secs: None,
    };
    calls::call(&args).await
}

/// A one-way call (callback index usize::MAX); replies at once.
#[update]
fn oneway(args: CallArgs) -> Result<(), String> {
    calls::oneway(&args)
}

/// Makes a one-way call, then awaits another call. The one-way call's callback traps when its
/// response arrives (ic-cdk registers index usize::MAX); while the awaited call is outstanding
/// that trap must not fail this call context.
#[update]
async fn oneway_while_awaiting(oneway: CallArgs, awaited: CallArgs) -> CallOutcome {
    if let Err(e) = calls::oneway(&oneway) {
        return CallOutcome::PerformFailed(e);
    }
    calls::call(&awaited).await
}

/// `ic0.canister_status` as seen by the last response callback of `call` (0 = none yet).
#[query]
fn last_callback_status() -> u32 {
    state::last_callback_status()
}

/// Upgrades itself to `wasm` with a one-way install_code (the canister must control itself).
#[update]
fn self_upgrade_oneway(
    wasm: serde_bytes::ByteBuf,
    arg: serde_bytes::ByteBuf,
) -> Result<(), String> {
    calls::self_upgrade_oneway(wasm.into_vec(), arg.into_vec())
}

/// Upgrades itself and awaits the answer: the response runs a stale callback in the new module.
#[update]
async fn self_upgrade_awaited(
    wasm: serde_bytes::ByteBuf,
    arg: serde_bytes::ByteBuf,
) -> CallOutcome {
    calls::self_upgrade_awaited(wasm.into_vec(), arg.into_vec()).await
}

/// canister_status of `canister` through the management canister, decoded by ic-cdk's types.
#[update]
async fn status_of(canister: Principal) -> Result<CanisterStatusResult, String> {
    calls::status_of(canister).await
}

// ---- timers -----------------------------------------------------------------------------------

#[update]
fn set_timer(delay_secs: u64) {
    ic_cdk_timers::set_timer(Duration::from_secs(delay_secs), async {
        state::timer_fired();
        ic_cdk::api::debug_print("probe: timer fired");
    });
}

/// Sets a timer, then traps: the timer must not survive.
#[update]
fn set_timer_then_trap(delay_secs: u64) {
    set_timer(delay_secs);
    ic_cdk::trap("probe: set_timer_then_trap");
}

#[query]
fn timers_fired() -> u64 {
    state::timers_fired()
}

// ---- instructions, stack, time ----------------------------------------------------------------

#[update]
fn burn_instructions(n: u64) -> u64 {
    work::burn_instructions(n)
}

/// The query twin of `burn_instructions` (query instruction limit).
#[query]
fn burn_instructions_query(n: u64) -> u64 {
    work::burn_instructions(n)
}

#[update]
fn recurse(depth: u64) -> u64 {
    work::recurse(depth)
}

#[update]
fn time() -> u64 {
    ic_cdk::api::time()
}

#[query]
fn time_query() -> u64 {
    ic_cdk::api::time()
}

/// `ic0.time` twice with work in between: equal, because time is constant within one execution.
#[update]
fn time_is_constant() -> bool {
    let before = ic_cdk::api::time();
    work::burn_instructions(100_000);
    before == ic_cdk::api::time()
}

#[query]
fn canister_version() -> u64 {
    ic_cdk::api::canister_version()
}

/// `ic0.msg_deadline`: 0 for ingress and unbounded-wait calls.
#[update]
fn deadline() -> u64 {
    ic_cdk::api::msg_deadline().map_or(0, |d| d.get())
}

/// `ic0.in_replicated_execution`: true when run as an update, false as a query.
#[query]
fn replicated() -> bool {
    ic_cdk::api::in_replicated_execution()
}

/// `ic0.canister_status`: 1 running, 2 stopping, 3 stopped.
#[query]
fn status_code() -> u32 {
    ic_cdk::api::canister_status().into()
}

// ---- cycles, callers, memory, misc ------------------------------------------------------------

#[query]
fn balance() -> Nat {
    Nat::from(ic_cdk::api::canister_cycle_balance())
}

#[update]
fn burn_cycles(amount: Nat) -> Nat {
    let amount = u128::try_from(amount.0).unwrap_or(u128::MAX);
    Nat::from(ic_cdk::api::cycles_burn(amount))
}

/// `ic0.canister_liquid_cycle_balance128`, which ic-cdk compares with `cost_call` before a call.
#[query]
fn liquid_balance() -> Nat {
    Nat::from(ic_cdk::api::canister_liquid_cycle_balance())
}

/// `ic0.cost_call` for a method name and payload of the given sizes.
#[query]
fn cost_call(method_name_size: u64, payload_size: u64) -> Nat {
    Nat::from(ic_cdk::api::cost_call(method_name_size, payload_size))
}

#[update]
fn caller() -> Principal {
    ic_cdk::api::msg_caller()
}

#[query]
fn is_controller(principal: Principal) -> bool {
    ic_cdk::api::is_controller(&principal)
}

/// `ic0.stable64_grow`: the previous size in pages, or -1 on failure.
#[update]
fn stable_grow(pages: u64) -> i64 {
    ic_cdk::api::stable_grow(pages) as i64
}

#[update]
fn certified_data_set(data: serde_bytes::ByteBuf) {
    ic_cdk::api::certified_data_set(data);
}

/// `ic0.subnet_self_copy`: the id of the subnet hosting this canister.
#[query]
fn subnet_self() -> Principal {
    ic_cdk::api::subnet_self()
}

/// `ic0.subnet_self_node_count`.
#[query]
fn subnet_node_count() -> u32 {
    ic_cdk::api::subnet_self_node_count()
}

/// Every environment variable, through `ic0.env_var_count` / `env_var_name_*` /
/// `env_var_value_*`, in index order.
#[query]
fn env_vars() -> Vec<(String, String)> {
    (0..ic_cdk::api::env_var_count())
        .map(|i| {
            let name = ic_cdk::api::env_var_name(i);
            let value = ic_cdk::api::env_var_value(&name);
            (name, value)
        })
        .collect()
}

/// One environment variable through `ic0.env_var_name_exists` and `env_var_value_*`.
#[query]
fn env_var(name: String) -> Option<String> {
    ic_cdk::api::env_var_name_exists(&name).then(|| ic_cdk::api::env_var_value(&name))
}

#[update]
fn debug_print(message: String) {
    ic_cdk::api::debug_print(message);
}
