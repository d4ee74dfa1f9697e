//! The host ABI every agent build exports (`agent_tool_abi.v1.*`, see [`tool_spec::abi`]), and
//! the two hooks a patch rewrites.
//!
//! Each export forwards to the [`Host`] of the call in progress ([`with_call`]); outside a call
//! the ABI does nothing but `bytes_push`, which then collects the registry that the registry
//! hook pushes ([`registry_bytes`]).
//!
//! The hooks are ordinary exported functions that answer "no tools": a volatile read keeps the
//! compiler from assuming what they return and `inline(never)` keeps the agent calling them by
//! their function index, the one a patch finds through the export and whose body it replaces.

use super::runtime::{AgentBudget, AgentFacts};
use std::cell::RefCell;
use tool_spec::host::Host;

/// The host of a compiled call.
pub type AgentHost = Host<AgentFacts, AgentBudget>;

thread_local! {
    static HOST: RefCell<Option<AgentHost>> = const { RefCell::new(None) };
    static PUSHED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `dispatch(tool)` with `host` as the call's host; answers the host back with what the
/// compiled function returned.
pub fn with_call(host: AgentHost, tool: u32) -> (AgentHost, i32) {
    HOST.with(|h| *h.borrow_mut() = Some(host));
    let result = dispatch(tool as i32);
    let host = HOST
        .with(|h| h.borrow_mut().take())
        .expect("the call's host is only taken here");
    (host, result)
}

/// The registry's bytes, as this module's registry hook pushes them (empty: no tools).
pub fn registry_bytes() -> Vec<u8> {
    PUSHED.with(|p| p.borrow_mut().clear());
    let pushed = registry();
    let bytes = PUSHED.with(|p| std::mem::take(&mut *p.borrow_mut()));
    if pushed == 0 { vec![] } else { bytes }
}

fn host<R>(fallback: R, f: impl FnOnce(&mut AgentHost) -> R) -> R {
    HOST.with(|h| match h.borrow_mut().as_mut() {
        Some(host) => f(host),
        None => fallback,
    })
}

static NO_TOOL: i32 = tool_spec::abi::NO_SUCH_TOOL;
static NO_REGISTRY: i32 = 0;
static mut LAST_TOOL: i32 = 0;

/// The dispatch hook: a patch replaces this body with calls of the compiled tools.
///
/// The stub must use `tool`: LLVM replaces an argument the callee ignores with an undefined
/// value at every call site, even for an exported function, and the patched body would then
/// dispatch on garbage. A volatile write is a use no optimisation removes.
#[unsafe(export_name = "agent_tool_abi.v1.dispatch")]
#[inline(never)]
extern "C" fn dispatch(tool: i32) -> i32 {
    // SAFETY: the canister is single-threaded; a volatile write to and read from statics.
    unsafe {
        core::ptr::write_volatile(&raw mut LAST_TOOL, tool);
        core::ptr::read_volatile(&NO_TOOL)
    }
}

/// The registry hook: a patch replaces this body with pushes of the registry's bytes.
#[unsafe(export_name = "agent_tool_abi.v1.registry")]
#[inline(never)]
extern "C" fn registry() -> i32 {
    // SAFETY: reading a static.
    unsafe { core::ptr::read_volatile(&NO_REGISTRY) }
}

#[unsafe(export_name = "agent_tool_abi.v1.bytes_push")]
extern "C" fn bytes_push(chunk: i64, n: i32) {
    let in_call = HOST.with(|h| h.borrow().is_some());
    if in_call {
        host((), |h| h.bytes_push(chunk, n));
    } else {
        // The registry hook; a bad count is dropped, and the registry then fails to parse.
        PUSHED.with(|p| {
            let _ = tool_spec::host::push_bytes(&mut p.borrow_mut(), chunk, n);
        });
    }
}

/// The rest of the ABI: each export forwards to the host's method of the same name.
macro_rules! forward {
    ($($name:ident ($($arg:ident : $ty:ty),*) -> $ret:ty = $fallback:expr;)*) => {
        $(
            #[unsafe(export_name = concat!("agent_tool_abi.v1.", stringify!($name)))]
            extern "C" fn $name($($arg: $ty),*) -> $ret {
                host($fallback, |h| h.$name($($arg),*))
            }
        )*
    };
}

forward! {
    const_str() -> i32 = -1;
    arg_int(i: i32) -> i64 = 0;
    arg_bool(i: i32) -> i32 = 0;
    str_concat(a: i32, b: i32) -> i32 = -1;
    str_len(s: i32) -> i64 = 0;
    str_slice(s: i32, from: i64, to: i64) -> i32 = -1;
    str_cmp(a: i32, b: i32) -> i32 = 0;
    str_parse_int(s: i32, default: i64) -> i64 = default;
    int_to_str(i: i64) -> i32 = -1;
    bool_to_str(b: i32) -> i32 = -1;
    list_len(l: i32) -> i32 = 0;
    list_get(l: i32, i: i32) -> i32 = -1;
    json_null() -> i32 = -1;
    json_int(i: i64) -> i32 = -1;
    json_bool(b: i32) -> i32 = -1;
    json_str(s: i32) -> i32 = -1;
    json_list(l: i32) -> i32 = -1;
    json_object() -> i32 = -1;
    json_set(obj: i32, key: i32, v: i32) -> i32 = -1;
    json_array() -> i32 = -1;
    json_push(arr: i32, v: i32) -> i32 = -1;
    json_copy(v: i32) -> i32 = -1;
    fact_get(key: i32, default: i32) -> i32 = -1;
    fact_put(key: i32, v: i32) -> i32 = -1;
    fact_delete(key: i32) -> i32 = -1;
    fact_keys(prefix: i32, limit: i32) -> i32 = -1;
    tick() -> i32 = -1;
    mark() -> i32 = 0;
    release(mark: i32, keep: i32) -> i32 = keep;
    fault(code: i32, node: i32) -> () = ();
}
