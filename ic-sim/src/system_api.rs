//! The `ic0` System API: the host functions a canister imports, with the spec's availability
//! rules, bounds checks and instruction charges.
//!
//! Every function first checks that it may run in the current context (a function called
//! outside its allowed context traps with a contract violation, as on the IC), then charges
//! instructions: a fixed overhead plus one per byte moved. Changes go to the [`ExecCtx`] and are
//! committed by the caller only if the execution does not trap.

use std::sync::OnceLock;

use candid::Principal;
use wasmtime::{Caller, Engine, Linker, Memory};

use crate::api_context::{ExecCtx, PendingCall, Response};
use crate::config::Fees;
use crate::types::RejectCode;

/// Fixed instruction overhead of one System API call.
const SYSTEM_API_OVERHEAD: u64 = 20;
/// The IC's stable memory limit (500 GiB), in 64 KiB pages.
const MAX_STABLE_PAGES: u64 = 500 * 1024 * 1024 / 64;
/// Best-effort call timeouts are capped at 300 seconds.
const MAX_CALL_TIMEOUT_SECS: u32 = 300;
/// A deterministic stand-in for the IC's root key (DER-encoded BLS key length).
pub(crate) const ROOT_KEY: [u8; 133] = [0x30; 133];

/// What a canister's store carries between the host functions.
pub(crate) struct HostState {
    /// The current execution; `None` outside one (a call then is a simulator bug).
    pub(crate) ctx: Option<ExecCtx>,
    /// The module's memory, exported by instrumentation as `__sim_memory`.
    pub(crate) memory: Option<Memory>,
    /// The fee schedule, for the `cost_*` functions.
    pub(crate) fees: Fees,
}

/// Why an execution stopped early, when the reason is not a plain Wasm trap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostTrap {
    /// `ic0.trap` with the canister's message.
    Explicit(String),
    /// A System API used against its contract (wrong context, out of bounds, ...).
    ContractViolation(String),
    /// The instruction limit ran out inside a System API call.
    InstructionLimit,
    /// A trap the IC reports like a Wasm trap (e.g. stable memory out of bounds).
    Wasm(String),
}

impl std::fmt::Display for HostTrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostTrap::Explicit(msg) => write!(f, "trapped explicitly: {msg}"),
            HostTrap::ContractViolation(msg) => write!(f, "violated contract: {msg}"),
            HostTrap::InstructionLimit => write!(f, "instruction limit exceeded"),
            HostTrap::Wasm(what) => write!(f, "trapped: {what}"),
        }
    }
}

impl std::error::Error for HostTrap {}

type HostResult<T> = wasmtime::Result<T>;

fn violation<T>(msg: impl Into<String>) -> HostResult<T> {
    Err(wasmtime::Error::new(HostTrap::ContractViolation(
        msg.into(),
    )))
}

fn stable_out_of_bounds<T>() -> HostResult<T> {
    Err(wasmtime::Error::new(HostTrap::Wasm(
        "stable memory out of bounds".to_string(),
    )))
}

fn ctx<'a>(caller: &'a mut Caller<'_, HostState>) -> &'a mut ExecCtx {
    caller
        .data_mut()
        .ctx
        .as_mut()
        .expect("System API called outside an execution")
}

/// Checks the context and charges `SYSTEM_API_OVERHEAD + bytes` instructions.
fn enter(caller: &mut Caller<'_, HostState>, name: &str, bytes: u64) -> HostResult<()> {
    let kind = ctx(caller).kind;
    if !kind.allows(name) {
        return violation(format!(
            "\"ic0_{name}\" cannot be executed in {} mode",
            kind.mode_name()
        ));
    }
    charge(caller, SYSTEM_API_OVERHEAD + bytes)
}

fn charge(caller: &mut Caller<'_, HostState>, instructions: u64) -> HostResult<()> {
    let fuel = caller.get_fuel()?;
    if fuel < instructions {
        caller.set_fuel(0)?;
        return Err(wasmtime::Error::new(HostTrap::InstructionLimit));
    }
    caller.set_fuel(fuel - instructions)?;
    ctx(caller).system_instructions += instructions;
    Ok(())
}

fn memory(caller: &Caller<'_, HostState>) -> Memory {
    caller
        .data()
        .memory
        .expect("instrumented modules always export their memory")
}

fn read_heap(
    caller: &mut Caller<'_, HostState>,
    src: u64,
    size: u64,
    api: &str,
) -> HostResult<Vec<u8>> {
    let mem = memory(caller);
    let data = mem.data(&caller);
    let end = src
        .checked_add(size)
        .filter(|end| *end <= data.len() as u64);
    match end {
        Some(end) => Ok(data[src as usize..end as usize].to_vec()),
        None => violation(format!(
            "{api}: src={src} + length={size} exceeds the slice size={}",
            data.len()
        )),
    }
}

fn write_heap(
    caller: &mut Caller<'_, HostState>,
    dst: u64,
    bytes: &[u8],
    api: &str,
) -> HostResult<()> {
    let mem = memory(caller);
    let data = mem.data_mut(&mut *caller);
    let end = dst
        .checked_add(bytes.len() as u64)
        .filter(|end| *end <= data.len() as u64);
    match end {
        Some(end) => {
            data[dst as usize..end as usize].copy_from_slice(bytes);
            Ok(())
        }
        None => violation(format!(
            "{api}: dst={dst} + length={} exceeds the slice size={}",
            bytes.len(),
            data.len()
        )),
    }
}

/// Where the bytes of a `*_size` / `*_copy` pair of the System API come from.
type ByteSource = fn(&ExecCtx) -> &[u8];

/// The byte sources of the System API, by function-name stem: `{stem}_size` returns the length,
/// `{stem}_copy(dst, offset, size)` copies `source[offset..offset + size]` to the heap.
const BYTE_SOURCES: &[(&str, &str, ByteSource)] = &[
    ("msg_arg_data_size", "msg_arg_data_copy", |x| &x.arg),
    ("msg_caller_size", "msg_caller_copy", |x| {
        x.caller.as_slice()
    }),
    (
        "msg_caller_info_data_size",
        "msg_caller_info_data_copy",
        |_| &[],
    ),
    (
        "msg_caller_info_signer_size",
        "msg_caller_info_signer_copy",
        |_| &[],
    ),
    ("msg_reject_msg_size", "msg_reject_msg_copy", |x| {
        x.reject.as_ref().map_or(&[], |(_, m)| m.as_bytes())
    }),
    ("msg_method_name_size", "msg_method_name_copy", |x| {
        x.method_name.as_bytes()
    }),
    ("canister_self_size", "canister_self_copy", |x| {
        x.canister_id.as_slice()
    }),
    ("subnet_self_size", "subnet_self_copy", |x| {
        x.subnet_id.as_slice()
    }),
    ("root_key_size", "root_key_copy", |_| &ROOT_KEY),
];

fn define_byte_sources(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    for &(size_fn, copy_fn, source) in BYTE_SOURCES {
        l.func_wrap(
            "ic0",
            size_fn,
            move |mut c: Caller<'_, HostState>| -> HostResult<i32> {
                enter(&mut c, size_fn, 0)?;
                Ok(source(ctx(&mut c)).len() as i32)
            },
        )?;
        l.func_wrap(
            "ic0",
            copy_fn,
            move |mut c: Caller<'_, HostState>, dst: u32, off: u32, size: u32| {
                copy_out(&mut c, copy_fn, source, dst, off, size)
            },
        )?;
    }
    Ok(())
}

/// A `*_copy(dst, offset, size)` call: copies `source[offset..offset+size]` to the heap.
fn copy_out(
    caller: &mut Caller<'_, HostState>,
    api: &str,
    source: ByteSource,
    dst: u32,
    offset: u32,
    size: u32,
) -> HostResult<()> {
    enter(caller, api, size as u64)?;
    let data = source(ctx(caller));
    let (offset, size) = (offset as usize, size as usize);
    let Some(slice) = offset
        .checked_add(size)
        .and_then(|end| data.get(offset..end))
    else {
        return violation(format!(
            "ic0.{api}: src={offset} + length={size} exceeds the slice size={}",
            data.len()
        ));
    };
    let slice = slice.to_vec();
    write_heap(caller, dst as u64, &slice, &format!("ic0.{api}"))
}

fn read_principal(
    caller: &mut Caller<'_, HostState>,
    src: u32,
    size: u32,
    api: &str,
) -> HostResult<Principal> {
    let bytes = read_heap(caller, src as u64, size as u64, api)?;
    match Principal::try_from_slice(&bytes) {
        Ok(p) => Ok(p),
        Err(e) => violation(format!("{api}: invalid principal: {e}")),
    }
}

fn write_u128(
    caller: &mut Caller<'_, HostState>,
    dst: u32,
    value: u128,
    api: &str,
) -> HostResult<()> {
    write_heap(caller, dst as u64, &value.to_le_bytes(), api)
}

fn amount(high: u64, low: u64) -> u128 {
    ((high as u128) << 64) | low as u128
}

fn already_responded(c: &ExecCtx) -> bool {
    c.already_responded || c.response.is_some()
}

fn pending_call<'a>(
    caller: &'a mut Caller<'_, HostState>,
    api: &str,
) -> HostResult<&'a mut PendingCall> {
    match ctx(caller).pending_call.as_mut() {
        Some(call) => Ok(call),
        None => violation(format!("{api} called when no call is under construction.")),
    }
}

/// The name of environment variable `index` (in name order), or a trap.
fn env_var_at(x: &ExecCtx, index: u32, api: &str) -> HostResult<String> {
    match x.env_vars.get(index as usize) {
        Some((name, _)) => Ok(name.clone()),
        None => violation(format!(
            "{api}: environment variable index out of bounds: {index} (the canister has {} environment variables).",
            x.env_vars.len()
        )),
    }
}

/// The longest environment variable name (the replica's `MAX_ENVIRONMENT_VARIABLE_NAME_LENGTH`).
const MAX_ENV_VAR_NAME_LENGTH: u32 = 128;

/// Reads an environment variable name from the heap.
fn env_var_name(
    c: &mut Caller<'_, HostState>,
    src: u32,
    size: u32,
    api: &str,
) -> HostResult<String> {
    if size > MAX_ENV_VAR_NAME_LENGTH {
        return violation(format!(
            "{api}: environment variable name length {size} exceeds the maximum of {MAX_ENV_VAR_NAME_LENGTH}."
        ));
    }
    let bytes = read_heap(c, src as u64, size as u64, api)?;
    match String::from_utf8(bytes) {
        Ok(name) => Ok(name),
        Err(_) => violation(format!(
            "{api}: environment variable name is not valid UTF-8."
        )),
    }
}

/// The value of the environment variable named at `src`, or a trap when there is none.
fn env_var_value(
    c: &mut Caller<'_, HostState>,
    src: u32,
    size: u32,
    api: &str,
) -> HostResult<String> {
    let name = env_var_name(c, src, size, api)?;
    match ctx(c).env_vars.iter().find(|(n, _)| *n == name) {
        Some((_, value)) => Ok(value.clone()),
        None => violation(format!("{api}: environment variable \"{name}\" not found.")),
    }
}

/// Copies `data[offset..offset + size]` to the heap at `dst`.
fn copy_slice(
    c: &mut Caller<'_, HostState>,
    data: &[u8],
    dst: u32,
    offset: u32,
    size: u32,
    api: &str,
) -> HostResult<()> {
    let (offset, size) = (offset as usize, size as usize);
    let Some(slice) = offset
        .checked_add(size)
        .and_then(|end| data.get(offset..end))
    else {
        return violation(format!(
            "{api}: src={offset} + length={size} exceeds the slice size={}",
            data.len()
        ));
    };
    let slice = slice.to_vec();
    write_heap(c, dst as u64, &slice, api)
}

/// The linker that provides module `ic0`, shared by every canister.
pub(crate) fn linker(engine: &Engine) -> &'static Linker<HostState> {
    static LINKER: OnceLock<Linker<HostState>> = OnceLock::new();
    LINKER.get_or_init(|| {
        let mut linker = Linker::new(engine);
        define(&mut linker).expect("ic0 functions are defined once each");
        linker
    })
}

#[allow(clippy::too_many_lines)]
fn define(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    define_byte_sources(l)?;
    // --- message -----------------------------------------------------------------------------
    l.func_wrap(
        "ic0",
        "msg_reject_code",
        |mut c: Caller<'_, HostState>| -> HostResult<i32> {
            enter(&mut c, "msg_reject_code", 0)?;
            Ok(ctx(&mut c)
                .reject
                .as_ref()
                .map_or(0, |(code, _)| *code as i32))
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_deadline",
        |mut c: Caller<'_, HostState>| -> HostResult<u64> {
            enter(&mut c, "msg_deadline", 0)?;
            Ok(ctx(&mut c).deadline)
        },
    )?;
    l.func_wrap("ic0", "msg_reply_data_append", |mut c: Caller<'_, HostState>, src: u32, size: u32| {
        enter(&mut c, "msg_reply_data_append", size as u64)?;
        if already_responded(ctx(&mut c)) {
            return violation("ic0.msg_reply_data_append: the call is already replied.");
        }
        let bytes = read_heap(&mut c, src as u64, size as u64, "ic0.msg_reply_data_append")?;
        let x = ctx(&mut c);
        let total = x.reply_buf.len() + bytes.len();
        if total > x.max_reply_size {
            return violation(format!(
                "ic0.msg_reply_data_append: application payload size ({total}) cannot be larger than {}.",
                x.max_reply_size
            ));
        }
        x.reply_buf.extend_from_slice(&bytes);
        Ok(())
    })?;
    l.func_wrap("ic0", "msg_reply", |mut c: Caller<'_, HostState>| {
        enter(&mut c, "msg_reply", 0)?;
        let x = ctx(&mut c);
        if already_responded(x) {
            return violation("ic0.msg_reply: the call is already replied");
        }
        x.response = Some(Response::Reply(std::mem::take(&mut x.reply_buf)));
        Ok(())
    })?;
    l.func_wrap(
        "ic0",
        "msg_reject",
        |mut c: Caller<'_, HostState>, src: u32, size: u32| {
            enter(&mut c, "msg_reject", size as u64)?;
            if already_responded(ctx(&mut c)) {
                return violation("ic0.msg_reject: the call is already replied");
            }
            let bytes = read_heap(&mut c, src as u64, size as u64, "ic0.msg_reject")?;
            let message = String::from_utf8_lossy(&bytes).into_owned();
            ctx(&mut c).response = Some(Response::Reject(RejectCode::CanisterReject, message));
            Ok(())
        },
    )?;
    l.func_wrap("ic0", "accept_message", |mut c: Caller<'_, HostState>| {
        enter(&mut c, "accept_message", 0)?;
        let x = ctx(&mut c);
        if x.accepted_message {
            return violation("ic0.accept_message: the function was already called.");
        }
        x.accepted_message = true;
        Ok(())
    })?;

    // --- cycles ------------------------------------------------------------------------------
    l.func_wrap(
        "ic0",
        "msg_cycles_available128",
        |mut c: Caller<'_, HostState>, dst: u32| {
            enter(&mut c, "msg_cycles_available128", 16)?;
            let v = ctx(&mut c).cycles_available;
            write_u128(&mut c, dst, v, "ic0.msg_cycles_available128")
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_cycles_refunded128",
        |mut c: Caller<'_, HostState>, dst: u32| {
            enter(&mut c, "msg_cycles_refunded128", 16)?;
            let v = ctx(&mut c).cycles_refunded;
            write_u128(&mut c, dst, v, "ic0.msg_cycles_refunded128")
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_cycles_accept128",
        |mut c: Caller<'_, HostState>, hi: u64, lo: u64, dst: u32| {
            enter(&mut c, "msg_cycles_accept128", 16)?;
            let x = ctx(&mut c);
            let accepted = amount(hi, lo).min(x.cycles_available);
            x.cycles_available -= accepted;
            x.cycles_accepted += accepted;
            x.balance += accepted;
            write_u128(&mut c, dst, accepted, "ic0.msg_cycles_accept128")
        },
    )?;
    l.func_wrap(
        "ic0",
        "cycles_burn128",
        |mut c: Caller<'_, HostState>, hi: u64, lo: u64, dst: u32| {
            enter(&mut c, "cycles_burn128", 16)?;
            let x = ctx(&mut c);
            // Burning stops at the freezing threshold (the replica's `cycles_burn`).
            let burned = amount(hi, lo).min(x.balance.saturating_sub(x.freezing_threshold));
            x.balance -= burned;
            write_u128(&mut c, dst, burned, "ic0.cycles_burn128")
        },
    )?;
    for (name, liquid) in [
        ("canister_cycle_balance128", false),
        ("canister_liquid_cycle_balance128", true),
    ] {
        l.func_wrap(
            "ic0",
            name,
            move |mut c: Caller<'_, HostState>, dst: u32| {
                enter(&mut c, name, 16)?;
                let x = ctx(&mut c);
                // The liquid balance is what the canister can spend before it freezes.
                let v = if liquid {
                    x.balance.saturating_sub(x.freezing_threshold)
                } else {
                    x.balance
                };
                write_u128(&mut c, dst, v, name)
            },
        )?;
    }
    l.func_wrap(
        "ic0",
        "call_cycles_add128",
        |mut c: Caller<'_, HostState>, hi: u64, lo: u64| {
            enter(&mut c, "call_cycles_add128", 0)?;
            let add = amount(hi, lo);
            let x = ctx(&mut c);
            // Cycles sent with a call may not take the balance below the freezing threshold
            // (`withdraw_cycles_for_transfer`).
            if x.balance.saturating_sub(x.freezing_threshold) < add {
                let id = ctx(&mut c).canister_id;
                return violation(format!("Canister {id} is out of cycles"));
            }
            pending_call(&mut c, "ic0.call_cycles_add128")?.cycles += add;
            ctx(&mut c).balance -= add;
            Ok(())
        },
    )?;

    // --- canister and subnet -------------------------------------------------------------------
    l.func_wrap(
        "ic0",
        "canister_status",
        |mut c: Caller<'_, HostState>| -> HostResult<i32> {
            enter(&mut c, "canister_status", 0)?;
            Ok(ctx(&mut c).canister_status as i32)
        },
    )?;
    l.func_wrap(
        "ic0",
        "canister_version",
        |mut c: Caller<'_, HostState>| -> HostResult<u64> {
            enter(&mut c, "canister_version", 0)?;
            Ok(ctx(&mut c).canister_version)
        },
    )?;
    l.func_wrap(
        "ic0",
        "subnet_self_node_count",
        |mut c: Caller<'_, HostState>| -> HostResult<i32> {
            enter(&mut c, "subnet_self_node_count", 0)?;
            Ok(ctx(&mut c).subnet_nodes as i32)
        },
    )?;

    // --- calls -------------------------------------------------------------------------------
    l.func_wrap(
        "ic0",
        "call_new",
        |mut c: Caller<'_, HostState>,
         callee_src: u32,
         callee_size: u32,
         name_src: u32,
         name_size: u32,
         reply_fun: u32,
         reply_env: u32,
         reject_fun: u32,
         reject_env: u32| {
            enter(&mut c, "call_new", callee_size as u64 + name_size as u64)?;
            let callee = read_principal(&mut c, callee_src, callee_size, "ic0.call_new")?;
            let name = read_heap(&mut c, name_src as u64, name_size as u64, "ic0.call_new")?;
            let Ok(method) = String::from_utf8(name) else {
                return violation("ic0.call_new: the method name is not valid UTF-8");
            };
            // A call assembled but never performed is discarded by the next call_new.
            ctx(&mut c).pending_call = Some(PendingCall {
                callee,
                method,
                arg: Vec::new(),
                cycles: 0,
                reply: (reply_fun, reply_env),
                reject: (reject_fun, reject_env),
                cleanup: None,
                timeout_secs: None,
            });
            Ok(())
        },
    )?;
    l.func_wrap(
        "ic0",
        "call_on_cleanup",
        |mut c: Caller<'_, HostState>, fun: u32, env: u32| {
            enter(&mut c, "call_on_cleanup", 0)?;
            let call = pending_call(&mut c, "ic0.call_on_cleanup")?;
            if call.cleanup.is_some() {
                return violation("ic0.call_on_cleanup: the cleanup callback was already set");
            }
            call.cleanup = Some((fun, env));
            Ok(())
        },
    )?;
    l.func_wrap("ic0", "call_data_append", |mut c: Caller<'_, HostState>, src: u32, size: u32| {
        enter(&mut c, "call_data_append", size as u64)?;
        let bytes = read_heap(&mut c, src as u64, size as u64, "ic0.call_data_append")?;
        let limit = ctx(&mut c).max_request_size;
        let call = pending_call(&mut c, "ic0.call_data_append")?;
        let total = call.arg.len() + bytes.len();
        if total > limit {
            let (callee, method) = (call.callee, call.method.clone());
            return violation(format!(
                "Request to {callee}:{method} has a payload size of {total}, which exceeds the allowed limit of {limit}."
            ));
        }
        call.arg.extend_from_slice(&bytes);
        Ok(())
    })?;
    l.func_wrap(
        "ic0",
        "call_with_best_effort_response",
        |mut c: Caller<'_, HostState>, timeout: u32| {
            enter(&mut c, "call_with_best_effort_response", 0)?;
            let call = pending_call(&mut c, "ic0.call_with_best_effort_response")?;
            if call.timeout_secs.is_some() {
                return violation(
                    "ic0.call_with_best_effort_response: the timeout was already set",
                );
            }
            call.timeout_secs = Some(timeout.min(MAX_CALL_TIMEOUT_SECS));
            Ok(())
        },
    )?;
    l.func_wrap(
        "ic0",
        "call_perform",
        |mut c: Caller<'_, HostState>| -> HostResult<i32> {
            enter(&mut c, "call_perform", 0)?;
            let fees = c.data().fees.clone();
            let x = ctx(&mut c);
            let Some(call) = x.pending_call.take() else {
                return violation("ic0.call_perform called when no call is under construction.");
            };
            // The request, the largest response and the longest callback are withdrawn now, above
            // the freezing threshold (`withdraw_request_cycles`); the unused part comes back with
            // the response.
            let cost = fees
                .request_transmission_cost(call.method.len() as u64, call.arg.len() as u64)
                + fees.response_transmission_prepayment()
                + x.callback_prepayment;
            if x.balance < x.freezing_threshold + cost {
                // The cycles attached to the discarded call go back to the balance.
                x.balance += call.cycles;
                return Ok(RejectCode::SysTransient as i32);
            }
            x.balance -= cost;
            x.calls.push(call);
            Ok(0)
        },
    )?;

    // --- stable memory -------------------------------------------------------------------------
    l.func_wrap(
        "ic0",
        "stable64_size",
        |mut c: Caller<'_, HostState>| -> HostResult<u64> {
            enter(&mut c, "stable64_size", 0)?;
            Ok(ctx(&mut c).stable.len() as u64 / 65536)
        },
    )?;
    l.func_wrap(
        "ic0",
        "stable64_grow",
        |mut c: Caller<'_, HostState>, pages: u64| -> HostResult<u64> {
            enter(&mut c, "stable64_grow", 0)?;
            let x = ctx(&mut c);
            let old = x.stable.len() as u64 / 65536;
            match old.checked_add(pages) {
                Some(new) if new <= MAX_STABLE_PAGES => {
                    x.stable.resize((new * 65536) as usize, 0);
                    Ok(old)
                }
                _ => Ok(u64::MAX),
            }
        },
    )?;
    l.func_wrap(
        "ic0",
        "stable64_write",
        |mut c: Caller<'_, HostState>, offset: u64, src: u64, size: u64| {
            enter(&mut c, "stable64_write", size)?;
            let bytes = read_heap(&mut c, src, size, "ic0.stable64_write")?;
            let x = ctx(&mut c);
            let Some(end) = offset
                .checked_add(size)
                .filter(|end| *end <= x.stable.len() as u64)
            else {
                return stable_out_of_bounds();
            };
            let (start, end) = (offset as usize, end as usize);
            // Only bytes that existed before this execution need undoing; growth is truncated.
            let undo_end = end.min(x.stable_len_before);
            if start < undo_end {
                x.stable_undo
                    .push((offset, x.stable[start..undo_end].to_vec()));
            }
            x.stable[start..end].copy_from_slice(&bytes);
            Ok(())
        },
    )?;
    l.func_wrap(
        "ic0",
        "stable64_read",
        |mut c: Caller<'_, HostState>, dst: u64, offset: u64, size: u64| {
            enter(&mut c, "stable64_read", size)?;
            let x = ctx(&mut c);
            let Some(end) = offset
                .checked_add(size)
                .filter(|end| *end <= x.stable.len() as u64)
            else {
                return stable_out_of_bounds();
            };
            let bytes = x.stable[offset as usize..end as usize].to_vec();
            write_heap(&mut c, dst, &bytes, "ic0.stable64_read")
        },
    )?;

    // --- certification ---------------------------------------------------------------------------
    l.func_wrap("ic0", "certified_data_set", |mut c: Caller<'_, HostState>, src: u32, size: u32| {
        enter(&mut c, "certified_data_set", size as u64)?;
        if size > 32 {
            return violation(format!(
                "ic0_certified_data_set failed because the passed data must be no larger than 32 bytes. Found {size} bytes."
            ));
        }
        let bytes = read_heap(&mut c, src as u64, size as u64, "ic0.certified_data_set")?;
        ctx(&mut c).certified_data = bytes;
        Ok(())
    })?;
    l.func_wrap(
        "ic0",
        "data_certificate_present",
        |mut c: Caller<'_, HostState>| -> HostResult<i32> {
            enter(&mut c, "data_certificate_present", 0)?;
            Ok(0)
        },
    )?;
    l.func_wrap(
        "ic0",
        "data_certificate_size",
        |mut c: Caller<'_, HostState>| -> HostResult<i32> {
            enter(&mut c, "data_certificate_size", 0)?;
            violation("ic0.data_certificate_size: the simulator does not certify query responses")
        },
    )?;
    l.func_wrap(
        "ic0",
        "data_certificate_copy",
        |mut c: Caller<'_, HostState>, _d: u32, _o: u32, _s: u32| -> HostResult<()> {
            enter(&mut c, "data_certificate_copy", 0)?;
            violation("ic0.data_certificate_copy: the simulator does not certify query responses")
        },
    )?;

    // --- time, timer, counters, misc ------------------------------------------------------------
    l.func_wrap(
        "ic0",
        "time",
        |mut c: Caller<'_, HostState>| -> HostResult<u64> {
            enter(&mut c, "time", 0)?;
            Ok(ctx(&mut c).time)
        },
    )?;
    l.func_wrap(
        "ic0",
        "global_timer_set",
        |mut c: Caller<'_, HostState>, ts: u64| -> HostResult<u64> {
            enter(&mut c, "global_timer_set", 0)?;
            let x = ctx(&mut c);
            Ok(std::mem::replace(&mut x.global_timer, ts))
        },
    )?;
    l.func_wrap(
        "ic0",
        "performance_counter",
        |mut c: Caller<'_, HostState>, kind: u32| -> HostResult<u64> {
            enter(&mut c, "performance_counter", 0)?;
            let fuel = c.get_fuel()?;
            let x = ctx(&mut c);
            let used = x.instruction_limit.saturating_sub(fuel);
            match kind {
                0 => Ok(used),
                1 => Ok(x.call_context_instructions + used),
                other => violation(format!(
                    "ic0.performance_counter: unknown counter type {other}"
                )),
            }
        },
    )?;
    l.func_wrap(
        "ic0",
        "is_controller",
        |mut c: Caller<'_, HostState>, src: u32, size: u32| -> HostResult<i32> {
            enter(&mut c, "is_controller", size as u64)?;
            let p = read_principal(&mut c, src, size, "ic0.is_controller")?;
            Ok(ctx(&mut c).controllers.contains(&p) as i32)
        },
    )?;
    l.func_wrap(
        "ic0",
        "in_replicated_execution",
        |mut c: Caller<'_, HostState>| -> HostResult<i32> {
            enter(&mut c, "in_replicated_execution", 0)?;
            Ok(ctx(&mut c).kind.replicated() as i32)
        },
    )?;
    l.func_wrap(
        "ic0",
        "debug_print",
        |mut c: Caller<'_, HostState>, src: u32, size: u32| {
            enter(&mut c, "debug_print", size as u64)?;
            let bytes = read_heap(&mut c, src as u64, size as u64, "ic0.debug_print")?;
            let line = String::from_utf8_lossy(&bytes).into_owned();
            ctx(&mut c).debug_prints.push(line);
            Ok(())
        },
    )?;
    l.func_wrap(
        "ic0",
        "trap",
        |mut c: Caller<'_, HostState>, src: u32, size: u32| -> HostResult<()> {
            enter(&mut c, "trap", size as u64)?;
            let bytes = read_heap(&mut c, src as u64, size as u64, "ic0.trap")?;
            Err(wasmtime::Error::new(HostTrap::Explicit(
                String::from_utf8_lossy(&bytes).into_owned(),
            )))
        },
    )?;

    // --- costs -------------------------------------------------------------------------------------
    l.func_wrap(
        "ic0",
        "cost_call",
        |mut c: Caller<'_, HostState>, name_size: u64, payload_size: u64, dst: u32| {
            enter(&mut c, "cost_call", 16)?;
            let x = ctx(&mut c);
            let prepayment = x.callback_prepayment;
            let fees = &c.data().fees;
            let cost = fees.request_transmission_cost(name_size, payload_size)
                + fees.response_transmission_prepayment()
                + prepayment;
            write_u128(&mut c, dst, cost, "ic0.cost_call")
        },
    )?;
    l.func_wrap(
        "ic0",
        "cost_create_canister",
        |mut c: Caller<'_, HostState>, dst: u32| {
            enter(&mut c, "cost_create_canister", 16)?;
            let cost = c.data().fees.canister_creation;
            write_u128(&mut c, dst, cost, "ic0.cost_create_canister")
        },
    )?;
    l.func_wrap(
        "ic0",
        "cost_http_request",
        |mut c: Caller<'_, HostState>, req: u64, max_res: u64, dst: u32| {
            enter(&mut c, "cost_http_request", 16)?;
            let nodes = ctx(&mut c).subnet_nodes;
            let cost = c.data().fees.http_request_cost(nodes, req, max_res);
            write_u128(&mut c, dst, cost, "ic0.cost_http_request")
        },
    )?;
    l.func_wrap(
        "ic0",
        "cost_http_request_v2",
        |mut c: Caller<'_, HostState>, _src: u32, size: u32, dst: u32| {
            enter(&mut c, "cost_http_request_v2", 16)?;
            let nodes = ctx(&mut c).subnet_nodes;
            let cost = c
                .data()
                .fees
                .http_request_cost(nodes, u64::from(size), 2_000_000);
            write_u128(&mut c, dst, cost, "ic0.cost_http_request_v2")
        },
    )?;
    for (name, fee) in [
        ("cost_sign_with_ecdsa", 26_153_846_153u128),
        ("cost_sign_with_schnorr", 26_153_846_153u128),
        ("cost_vetkd_derive_key", 26_153_846_153u128),
    ] {
        l.func_wrap(
            "ic0",
            name,
            move |mut c: Caller<'_, HostState>,
                  src: u32,
                  size: u32,
                  curve: u32,
                  dst: u32|
                  -> HostResult<i32> {
                enter(&mut c, name, size as u64 + 16)?;
                let key = read_heap(&mut c, src as u64, size as u64, name)?;
                if curve > 1 {
                    return Ok(1);
                }
                if !matches!(key.as_slice(), b"key_1" | b"test_key_1" | b"dfx_test_key") {
                    return Ok(2);
                }
                write_u128(&mut c, dst, fee, name)?;
                Ok(0)
            },
        )?;
    }

    // --- environment variables (settings.environment_variables, in name order) -----------------
    l.func_wrap(
        "ic0",
        "env_var_count",
        |mut c: Caller<'_, HostState>| -> HostResult<i32> {
            enter(&mut c, "env_var_count", 0)?;
            Ok(ctx(&mut c).env_vars.len() as i32)
        },
    )?;
    l.func_wrap(
        "ic0",
        "env_var_name_size",
        |mut c: Caller<'_, HostState>, index: u32| -> HostResult<i32> {
            enter(&mut c, "env_var_name_size", 0)?;
            let name = env_var_at(ctx(&mut c), index, "ic0_env_var_name_size")?;
            Ok(name.len() as i32)
        },
    )?;
    l.func_wrap(
        "ic0",
        "env_var_name_copy",
        |mut c: Caller<'_, HostState>, index: u32, dst: u32, offset: u32, size: u32| {
            enter(&mut c, "env_var_name_copy", size as u64)?;
            let name = env_var_at(ctx(&mut c), index, "ic0_env_var_name_copy")?;
            copy_slice(
                &mut c,
                name.as_bytes(),
                dst,
                offset,
                size,
                "ic0.env_var_name_copy",
            )
        },
    )?;
    l.func_wrap(
        "ic0",
        "env_var_name_exists",
        |mut c: Caller<'_, HostState>, src: u32, size: u32| -> HostResult<i32> {
            enter(&mut c, "env_var_name_exists", size as u64)?;
            let name = env_var_name(&mut c, src, size, "ic0_env_var_name_exists")?;
            Ok(ctx(&mut c).env_vars.iter().any(|(n, _)| *n == name) as i32)
        },
    )?;
    l.func_wrap(
        "ic0",
        "env_var_value_size",
        |mut c: Caller<'_, HostState>, src: u32, size: u32| -> HostResult<i32> {
            enter(&mut c, "env_var_value_size", size as u64)?;
            let value = env_var_value(&mut c, src, size, "ic0_env_var_value_size")?;
            Ok(value.len() as i32)
        },
    )?;
    l.func_wrap(
        "ic0",
        "env_var_value_copy",
        |mut c: Caller<'_, HostState>,
         src: u32,
         name_size: u32,
         dst: u32,
         offset: u32,
         size: u32|
         -> HostResult<()> {
            enter(&mut c, "env_var_value_copy", name_size as u64 + size as u64)?;
            let value = env_var_value(&mut c, src, name_size, "ic0_env_var_value_copy")?;
            copy_slice(
                &mut c,
                value.as_bytes(),
                dst,
                offset,
                size,
                "ic0.env_var_value_copy",
            )
        },
    )?;
    Ok(())
}

/// Names of the functions `define` provides, for the test that keeps it equal to the ic0 table.
#[cfg(test)]
pub(crate) fn defined_names(engine: &Engine) -> Vec<String> {
    let mut store = wasmtime::Store::new(
        engine,
        HostState {
            ctx: None,
            memory: None,
            fees: Fees::default(),
        },
    );
    linker(engine)
        .iter(&mut store)
        .map(|(module, name, _)| format!("{module}.{name}"))
        .collect()
}
