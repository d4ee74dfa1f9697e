//! The context one Wasm execution runs in: which entry point ran it (and so which System API
//! functions it may use, per the interface spec's availability table), the message it is
//! handling, and the changes it made that are kept only if it does not trap.

use candid::Principal;

use crate::types::RejectCode;

/// The kind of execution, named as the interface spec's import table names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ApiKind {
    /// `canister_init` or `canister_post_upgrade` (spec: I).
    Init,
    /// `canister_pre_upgrade` (spec: G).
    PreUpgrade,
    /// The Wasm start function (spec: s).
    Start,
    /// An update method, or a query method called as an update (spec: U).
    Update,
    /// A query method called in replicated mode, by another canister or as an update: it runs
    /// replicated, but its changes are discarded (spec: RQ).
    ReplicatedQuery,
    /// A query method in non-replicated mode (spec: NRQ).
    NonReplicatedQuery,
    /// A reply callback (spec: Ry).
    ReplyCallback,
    /// A reject callback (spec: Rt).
    RejectCallback,
    /// A cleanup callback (spec: C).
    Cleanup,
    /// `canister_global_timer` (spec: T).
    GlobalTimer,
    /// `canister_heartbeat` (spec: T).
    Heartbeat,
    /// `canister_inspect_message` (spec: F).
    InspectMessage,
}

impl ApiKind {
    /// The name the replica uses in "cannot be executed in ... mode" messages.
    pub(crate) fn mode_name(self) -> &'static str {
        match self {
            ApiKind::Init => "init",
            ApiKind::PreUpgrade => "pre upgrade",
            ApiKind::Start => "start",
            ApiKind::Update => "update",
            ApiKind::ReplicatedQuery => "replicated query",
            ApiKind::NonReplicatedQuery => "non replicated query",
            ApiKind::ReplyCallback => "reply callback",
            ApiKind::RejectCallback => "reject callback",
            ApiKind::Cleanup => "cleanup",
            ApiKind::GlobalTimer => "global timer",
            ApiKind::Heartbeat => "heartbeat",
            ApiKind::InspectMessage => "inspect message",
        }
    }

    /// Whether `function` may be called in this context (spec, "Overview of imports").
    pub(crate) fn allows(self, function: &str) -> bool {
        use ApiKind::*;
        // The spec's "T" covers both system tasks.
        let k = if self == Heartbeat { GlobalTimer } else { self };
        let any_but_start = k != Start;
        match function {
            "msg_arg_data_size" | "msg_arg_data_copy" => {
                matches!(
                    k,
                    Init | Update
                        | ReplicatedQuery
                        | NonReplicatedQuery
                        | ReplyCallback
                        | InspectMessage
                )
            }
            "msg_caller_size"
            | "msg_caller_copy"
            | "msg_caller_info_data_size"
            | "msg_caller_info_data_copy"
            | "msg_caller_info_signer_size"
            | "msg_caller_info_signer_copy" => any_but_start,
            "msg_reject_code" => matches!(k, ReplyCallback | RejectCallback),
            "msg_reject_msg_size" | "msg_reject_msg_copy" => matches!(k, RejectCallback),
            "msg_deadline" | "msg_reply_data_append" | "msg_reply" | "msg_reject" => matches!(
                k,
                Update | ReplicatedQuery | NonReplicatedQuery | ReplyCallback | RejectCallback
            ),
            "msg_cycles_available128" | "msg_cycles_accept128" => {
                matches!(k, Update | ReplicatedQuery | ReplyCallback | RejectCallback)
            }
            "msg_cycles_refunded128" => matches!(k, ReplyCallback | RejectCallback),
            "cycles_burn128" => matches!(
                k,
                Init | PreUpgrade | Update | ReplyCallback | RejectCallback | Cleanup | GlobalTimer
            ),
            "msg_method_name_size" | "msg_method_name_copy" | "accept_message" => {
                matches!(k, InspectMessage)
            }
            "call_new"
            | "call_on_cleanup"
            | "call_data_append"
            | "call_with_best_effort_response"
            | "call_perform"
            | "call_cycles_add128" => {
                matches!(k, Update | ReplyCallback | RejectCallback | GlobalTimer)
            }
            "root_key_size" | "root_key_copy" => matches!(
                k,
                Init | PreUpgrade
                    | Update
                    | ReplicatedQuery
                    | ReplyCallback
                    | RejectCallback
                    | Cleanup
                    | GlobalTimer
            ),
            "certified_data_set" => matches!(
                k,
                Init | PreUpgrade | Update | ReplyCallback | RejectCallback | GlobalTimer
            ),
            "data_certificate_size" | "data_certificate_copy" => matches!(k, NonReplicatedQuery),
            "global_timer_set" => matches!(
                k,
                Init | PreUpgrade | Update | ReplyCallback | RejectCallback | Cleanup | GlobalTimer
            ),
            // Available everywhere, the start function included.
            "stable64_size"
            | "stable64_grow"
            | "stable64_write"
            | "stable64_read"
            | "performance_counter"
            | "is_controller"
            | "in_replicated_execution"
            | "debug_print"
            | "trap" => true,
            _ => any_but_start,
        }
    }

    /// Whether this execution runs in replicated mode.
    pub(crate) fn replicated(self) -> bool {
        !matches!(self, ApiKind::NonReplicatedQuery | ApiKind::InspectMessage)
    }
}

/// Which function of the module an execution enters.
#[derive(Clone, Debug)]
pub(crate) enum Entry {
    /// An exported function, by export name.
    Export(String),
    /// A function in the module's table, called with `env` (callbacks, cleanup).
    Table {
        /// Table index.
        fun: u32,
        /// The argument passed to the function.
        env: u32,
    },
}

/// An outgoing call under construction (between `call_new` and `call_perform`).
#[derive(Clone, Debug)]
pub(crate) struct PendingCall {
    pub(crate) callee: Principal,
    pub(crate) method: String,
    pub(crate) arg: Vec<u8>,
    pub(crate) cycles: u128,
    pub(crate) reply: (u32, u32),
    pub(crate) reject: (u32, u32),
    pub(crate) cleanup: Option<(u32, u32)>,
    pub(crate) timeout_secs: Option<u32>,
}

/// How an execution answered its call context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Response {
    Reply(Vec<u8>),
    Reject(RejectCode, String),
}

/// The inputs of one execution, and the changes it makes (kept only if it does not trap).
#[derive(Debug)]
pub(crate) struct ExecCtx {
    pub(crate) kind: ApiKind,
    pub(crate) canister_id: Principal,
    pub(crate) subnet_id: Principal,
    /// Index and size of the subnet hosting the canister.
    pub(crate) subnet_index: usize,
    pub(crate) subnet_nodes: u32,
    /// The canister's environment variables, in name order.
    pub(crate) env_vars: Vec<(String, String)>,
    pub(crate) caller: Principal,
    pub(crate) arg: Vec<u8>,
    pub(crate) method_name: String,
    /// The reject being delivered, in a reject callback.
    pub(crate) reject: Option<(RejectCode, String)>,
    pub(crate) deadline: u64,
    pub(crate) time: u64,
    pub(crate) canister_status: u32,
    pub(crate) canister_version: u64,
    pub(crate) controllers: Vec<Principal>,
    pub(crate) instruction_limit: u64,
    /// Instructions already used by earlier executions of this call context
    /// (`performance_counter(1)`).
    pub(crate) call_context_instructions: u64,
    /// Whether the call context was answered before this execution began.
    pub(crate) already_responded: bool,
    /// Cycles still available from the caller (updates and callbacks).
    pub(crate) cycles_available: u128,
    /// Cycles refunded with the response (callbacks).
    pub(crate) cycles_refunded: u128,
    /// The canister's balance; calls, accepts and burns move it.
    pub(crate) balance: u128,
    /// The balance below which the canister is frozen: calls, cycles sent and burns stop there.
    pub(crate) freezing_threshold: u128,
    /// Cycles prepaid at `call_perform` for executing the longest callback.
    pub(crate) callback_prepayment: u128,
    pub(crate) cycles_accepted: u128,
    pub(crate) certified_data: Vec<u8>,
    pub(crate) global_timer: u64,
    pub(crate) stable: Vec<u8>,
    /// Undo log of stable memory: (offset, old bytes); and the size before the execution.
    pub(crate) stable_undo: Vec<(u64, Vec<u8>)>,
    pub(crate) stable_len_before: usize,
    pub(crate) reply_buf: Vec<u8>,
    pub(crate) response: Option<Response>,
    pub(crate) pending_call: Option<PendingCall>,
    pub(crate) calls: Vec<PendingCall>,
    pub(crate) debug_prints: Vec<String>,
    pub(crate) accepted_message: bool,
    pub(crate) max_reply_size: usize,
    pub(crate) max_request_size: usize,
    /// Instructions charged by System API calls (bytes copied and so on), on top of fuel.
    pub(crate) system_instructions: u64,
}

impl ExecCtx {
    /// A context with everything empty, for `kind` on `canister_id`.
    pub(crate) fn new(kind: ApiKind, canister_id: Principal, subnet_id: Principal) -> Self {
        Self {
            kind,
            canister_id,
            subnet_id,
            subnet_index: 0,
            subnet_nodes: 13,
            env_vars: Vec::new(),
            caller: Principal::management_canister(),
            arg: Vec::new(),
            method_name: String::new(),
            reject: None,
            deadline: 0,
            time: 0,
            canister_status: 1,
            canister_version: 0,
            controllers: Vec::new(),
            instruction_limit: 0,
            call_context_instructions: 0,
            already_responded: false,
            cycles_available: 0,
            cycles_refunded: 0,
            balance: 0,
            freezing_threshold: 0,
            callback_prepayment: 0,
            cycles_accepted: 0,
            certified_data: Vec::new(),
            global_timer: 0,
            stable: Vec::new(),
            stable_undo: Vec::new(),
            stable_len_before: 0,
            reply_buf: Vec::new(),
            response: None,
            pending_call: None,
            calls: Vec::new(),
            debug_prints: Vec::new(),
            accepted_message: false,
            max_reply_size: 2 * 1024 * 1024,
            max_request_size: 10 * 1024 * 1024,
            system_instructions: 0,
        }
    }

    /// Undoes this execution's stable-memory writes and growth.
    pub(crate) fn undo_stable(&mut self) {
        while let Some((offset, old)) = self.stable_undo.pop() {
            let start = offset as usize;
            self.stable[start..start + old.len()].copy_from_slice(&old);
        }
        self.stable.truncate(self.stable_len_before);
    }
}
