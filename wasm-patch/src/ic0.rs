//! The `ic0` System API as the IC exports it to wasm32 canisters: every function name with its
//! exact Wasm signature.
//!
//! This table is the single source of truth for the project: the simulator refuses a module that
//! imports anything else (as the replica does at install), and `validate` refuses such a
//! candidate before it gets anywhere near `install_code`. It follows `ic0` 1.2 (the crate that
//! ic-cdk 0.20 links), where `usize` is `i32` and `u64` is `i64` on wasm32.

/// A Wasm value type as it appears in an `ic0` signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ic0Type {
    /// 32-bit integer (pointers, sizes, `u32`).
    I32,
    /// 64-bit integer (`u64`: time, stable offsets, cycles halves).
    I64,
}

/// One `ic0` function: its import name and signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ic0Function {
    /// The import's field name in module `ic0`.
    pub name: &'static str,
    /// Parameter types, in order.
    pub params: &'static [Ic0Type],
    /// Result types (empty or one).
    pub results: &'static [Ic0Type],
}

use crate::error::signature;
use Ic0Type::{I32, I64};

const fn f(
    name: &'static str,
    params: &'static [Ic0Type],
    results: &'static [Ic0Type],
) -> Ic0Function {
    Ic0Function {
        name,
        params,
        results,
    }
}

/// Every function of module `ic0` that a wasm32 canister may import.
pub const IC0_FUNCTIONS: &[Ic0Function] = &[
    // message
    f("msg_arg_data_size", &[], &[I32]),
    f("msg_arg_data_copy", &[I32, I32, I32], &[]),
    f("msg_caller_size", &[], &[I32]),
    f("msg_caller_copy", &[I32, I32, I32], &[]),
    f("msg_caller_info_data_size", &[], &[I32]),
    f("msg_caller_info_data_copy", &[I32, I32, I32], &[]),
    f("msg_caller_info_signer_size", &[], &[I32]),
    f("msg_caller_info_signer_copy", &[I32, I32, I32], &[]),
    f("msg_reject_code", &[], &[I32]),
    f("msg_reject_msg_size", &[], &[I32]),
    f("msg_reject_msg_copy", &[I32, I32, I32], &[]),
    f("msg_deadline", &[], &[I64]),
    f("msg_reply_data_append", &[I32, I32], &[]),
    f("msg_reply", &[], &[]),
    f("msg_reject", &[I32, I32], &[]),
    f("msg_method_name_size", &[], &[I32]),
    f("msg_method_name_copy", &[I32, I32, I32], &[]),
    f("accept_message", &[], &[]),
    // cycles
    f("msg_cycles_available128", &[I32], &[]),
    f("msg_cycles_refunded128", &[I32], &[]),
    f("msg_cycles_accept128", &[I64, I64, I32], &[]),
    f("cycles_burn128", &[I64, I64, I32], &[]),
    f("canister_cycle_balance128", &[I32], &[]),
    f("canister_liquid_cycle_balance128", &[I32], &[]),
    f("call_cycles_add128", &[I64, I64], &[]),
    // canister and subnet
    f("canister_self_size", &[], &[I32]),
    f("canister_self_copy", &[I32, I32, I32], &[]),
    f("canister_status", &[], &[I32]),
    f("canister_version", &[], &[I64]),
    f("subnet_self_size", &[], &[I32]),
    f("subnet_self_copy", &[I32, I32, I32], &[]),
    f("subnet_self_node_count", &[], &[I32]),
    f("root_key_size", &[], &[I32]),
    f("root_key_copy", &[I32, I32, I32], &[]),
    // calls
    f("call_new", &[I32, I32, I32, I32, I32, I32, I32, I32], &[]),
    f("call_on_cleanup", &[I32, I32], &[]),
    f("call_data_append", &[I32, I32], &[]),
    f("call_with_best_effort_response", &[I32], &[]),
    f("call_perform", &[], &[I32]),
    // stable memory
    f("stable64_size", &[], &[I64]),
    f("stable64_grow", &[I64], &[I64]),
    f("stable64_write", &[I64, I64, I64], &[]),
    f("stable64_read", &[I64, I64, I64], &[]),
    // certification
    f("certified_data_set", &[I32, I32], &[]),
    f("data_certificate_present", &[], &[I32]),
    f("data_certificate_size", &[], &[I32]),
    f("data_certificate_copy", &[I32, I32, I32], &[]),
    // time, timer, counters, misc
    f("time", &[], &[I64]),
    f("global_timer_set", &[I64], &[I64]),
    f("performance_counter", &[I32], &[I64]),
    f("is_controller", &[I32, I32], &[I32]),
    f("in_replicated_execution", &[], &[I32]),
    f("debug_print", &[I32, I32], &[]),
    f("trap", &[I32, I32], &[]),
    // costs
    f("cost_call", &[I64, I64, I32], &[]),
    f("cost_create_canister", &[I32], &[]),
    f("cost_http_request", &[I64, I64, I32], &[]),
    f("cost_http_request_v2", &[I32, I32, I32], &[]),
    f("cost_sign_with_ecdsa", &[I32, I32, I32, I32], &[I32]),
    f("cost_sign_with_schnorr", &[I32, I32, I32, I32], &[I32]),
    f("cost_vetkd_derive_key", &[I32, I32, I32, I32], &[I32]),
    // environment variables
    f("env_var_count", &[], &[I32]),
    f("env_var_name_size", &[I32], &[I32]),
    f("env_var_name_copy", &[I32, I32, I32, I32], &[]),
    f("env_var_name_exists", &[I32, I32], &[I32]),
    f("env_var_value_size", &[I32, I32], &[I32]),
    f("env_var_value_copy", &[I32, I32, I32, I32, I32], &[]),
];

/// Looks up an `ic0` function by its import name.
pub fn lookup(name: &str) -> Option<&'static Ic0Function> {
    IC0_FUNCTIONS.iter().find(|func| func.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = IC0_FUNCTIONS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn lookup_finds_exact_signature() {
        let f = lookup("stable64_write").unwrap();
        assert_eq!(f.params, &[I64, I64, I64]);
        assert!(f.results.is_empty());
        assert!(
            lookup("stable_write").is_none(),
            "32-bit stable API is not offered"
        );
    }
}

fn ic0_type_name(ty: &Ic0Type) -> &'static str {
    match ty {
        Ic0Type::I32 => "i32",
        Ic0Type::I64 => "i64",
    }
}

/// `(i32, i32) -> ()` for an `ic0` function.
pub(crate) fn ic0_signature(func: &Ic0Function) -> String {
    signature(
        func.params.iter().map(ic0_type_name),
        func.results.iter().map(ic0_type_name),
    )
}
