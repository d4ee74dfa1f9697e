//! The replica's reject messages, verbatim (see docs/ic-messages.md for each string's source in
//! dfinity/ic). Every rejection the simulator produces is built here, so a wording change of the
//! IC is one edit.

use candid::Principal;

use crate::canister::ReplyTo;
use crate::execution::TrapKind;
use crate::types::{ErrorCode, RejectCode, RejectResponse};

const DOCS: &str = "http://internetcomputer.org/docs/current/references/execution-errors";
const TOOLCHAIN_HELP: &str = "This is likely an error with the compiler/CDK toolchain being used to build the canister. Please report the error to IC devs on the forum: https://forum.dfinity.org and include which language/CDK was used to create the canister.";

fn help(suggestion: &str, section: &str) -> String {
    format!("{suggestion} See documentation: {DOCS}#{section}")
}

/// `HypervisorError::into_user_error`: "Error from Canister {id}: {display}.\n{help}".
fn from_canister(id: Principal, display: &str, help: Option<String>) -> String {
    match help {
        Some(help) => format!("Error from Canister {id}: {display}.\n{help}"),
        None => format!("Error from Canister {id}: {display}"),
    }
}

/// The rejection for a trapped execution.
pub(crate) fn trap(id: Principal, trap: &TrapKind, limit: u64) -> RejectResponse {
    let trapped_help = |section| {
        help(
            "Consider gracefully handling failures from this canister or altering the canister to handle exceptions.",
            section,
        )
    };
    match trap {
        TrapKind::Explicit(message) => RejectResponse::new(
            ErrorCode::CanisterCalledTrap,
            from_canister(
                id,
                &format!("Canister called `ic0.trap` with message: '{message}'"),
                Some(trapped_help("trapped-explicitly")),
            ),
        ),
        TrapKind::Injected => RejectResponse::new(
            ErrorCode::CanisterCalledTrap,
            from_canister(
                id,
                "Canister called `ic0.trap` with message: 'ic-sim: injected fault'",
                Some(trapped_help("trapped-explicitly")),
            ),
        ),
        TrapKind::Wasm(what) if what == "indirect call signature mismatch" => RejectResponse::new(
            ErrorCode::CanisterContractViolation,
            from_canister(
                id,
                "Canister violated contract: function invocation does not match its signature",
                Some(TOOLCHAIN_HELP.to_string()),
            ),
        ),
        TrapKind::Wasm(what) => {
            const KNOWN: &[&str] = &[
                "stack overflow",
                "heap out of bounds",
                "stable memory out of bounds",
                "integer division by 0",
                "unreachable",
                "table out of bounds",
            ];
            let what = if KNOWN.contains(&what.as_str()) {
                what.as_str()
            } else {
                "unknown"
            };
            RejectResponse::new(
                ErrorCode::CanisterTrapped,
                from_canister(
                    id,
                    &format!("Canister trapped: {what}"),
                    Some(trapped_help("trapped")),
                ),
            )
        }
        TrapKind::ContractViolation(message) => {
            let help_text = if message.contains("cannot be executed in") {
                help(
                    "Check the ICP documentation to make sure APIs are being called in the correct message types.",
                    "calling-a-system-api-from-the-wrong-mode",
                )
            } else {
                TOOLCHAIN_HELP.to_string()
            };
            RejectResponse::new(
                ErrorCode::CanisterContractViolation,
                from_canister(
                    id,
                    &format!("Canister violated contract: {message}"),
                    Some(help_text),
                ),
            )
        }
        TrapKind::InstructionLimit => RejectResponse::new(
            ErrorCode::CanisterInstructionLimitExceeded,
            from_canister(
                id,
                &format!(
                    "Canister exceeded the limit of {limit} instructions for single message execution."
                ),
                Some(help(
                    "Try optimizing this method to consume fewer instructions or split the work across multiple messages.",
                    "instruction-limit-exceeded",
                )),
            ),
        ),
    }
}

/// A trapping callback whose cleanup trapped too (`HypervisorError::Cleanup` in
/// rs/interfaces execution_environment/errors.rs): the callback's error code, then both texts
/// joined by "call_on_cleanup also failed".
pub(crate) fn cleanup_also_failed(
    callback: RejectResponse,
    cleanup: &RejectResponse,
) -> RejectResponse {
    RejectResponse {
        reject_message: format!(
            "{}\n\ncall_on_cleanup also failed:\n\n{}",
            callback.reject_message, cleanup.reject_message
        ),
        ..callback
    }
}

/// What a calling canister sees of a rejection: failed executions carry the `ICxxxx: ` prefix,
/// an unanswered call becomes "No response" (interface: `Payload::from(user_error)`).
pub(crate) fn for_reply_to(reply_to: &ReplyTo, reject: RejectResponse) -> RejectResponse {
    if !matches!(reply_to, ReplyTo::Canister { .. }) {
        return reject;
    }
    match reject.error_code {
        ErrorCode::CanisterDidNotReply => RejectResponse {
            reject_code: RejectCode::CanisterError,
            reject_message: "No response".to_string(),
            ..reject
        },
        _ => RejectResponse {
            reject_message: format!("{}: {}", reject.error_code, reject.reject_message),
            ..reject
        },
    }
}

pub(crate) fn did_not_reply(id: Principal) -> String {
    format!("Canister {id} did not reply to the call")
}

pub(crate) fn method_not_found(id: Principal, kind: &str, method: &str) -> String {
    from_canister(
        id,
        &format!("Canister has no {kind} method '{method}'."),
        Some(help(
            "Check that the method being called is exported by the target canister.",
            "method-not-found",
        )),
    )
}

/// A message to an empty canister, from the execution path (canister calls, queries, upgrades).
pub(crate) fn no_wasm_module(id: Principal) -> String {
    from_canister(
        id,
        "Attempted to execute a message, but the canister contains no Wasm module.",
        Some(help(
            "Please install code to this canister before calling it.",
            "wasm-module-not-found",
        )),
    )
}

/// An ingress update to an empty canister (the ingress filter's wording).
pub(crate) fn ingress_no_wasm_module() -> String {
    "Requested canister has no wasm module".to_string()
}

pub(crate) fn stopping(id: Principal) -> String {
    format!("Canister {id} is stopping")
}

pub(crate) fn stopped(id: Principal) -> String {
    format!("Canister {id} is stopped")
}

/// Routing: the destination does not exist.
pub(crate) fn canister_not_found(id: Principal) -> String {
    format!("Canister {id} not found")
}

/// The management canister: the target does not exist.
pub(crate) fn management_canister_not_found(id: Principal) -> String {
    format!(
        "Canister {id} not found.\n{}",
        help(
            "Check the ICP dashboard to ensure the canister exists.",
            "canister-not-found"
        )
    )
}

pub(crate) fn queue_full(id: Principal) -> String {
    format!("Canister {id} input queue is full")
}

pub(crate) fn out_of_cycles(id: Principal) -> String {
    format!("Canister {id} is out of cycles")
}

pub(crate) fn inspect_rejected(id: Principal) -> String {
    from_canister(id, "Canister rejected the message", None)
}

pub(crate) fn deadline_expired() -> String {
    "Call deadline has expired.".to_string()
}

pub(crate) fn response_dropped() -> String {
    "Response was dropped.".to_string()
}

pub(crate) fn stop_timeout() -> String {
    "Stop canister request timed out".to_string()
}

pub(crate) fn stop_cancelled(reply_to: &ReplyTo, id: Principal) -> RejectResponse {
    match reply_to {
        ReplyTo::Canister { .. } => RejectResponse {
            reject_code: RejectCode::CanisterError,
            reject_message: format!("Canister {id}'s stop request cancelled"),
            error_code: ErrorCode::CanisterStoppingCancelled,
            certified: true,
        },
        _ => RejectResponse::new(
            ErrorCode::CanisterStoppingCancelled,
            format!("Canister {id}'s stop request was cancelled."),
        ),
    }
}

pub(crate) fn uninstalled() -> String {
    "Canister has been uninstalled.".to_string()
}

pub(crate) fn not_controller(
    id: Principal,
    controllers: &[Principal],
    sender: Principal,
) -> RejectResponse {
    let list: Vec<String> = controllers.iter().map(Principal::to_string).collect();
    RejectResponse::new(
        ErrorCode::CanisterInvalidController,
        format!(
            "Only the controllers of the canister {id} can control it.\nCanister's controllers: {}\nSender's ID: {sender}\n{}",
            list.join(" "),
            help(
                "Execute this call from a controller of the target canister or add the current caller as a controller.",
                "invalid-controller"
            )
        ),
    )
}

pub(crate) fn not_empty(id: Principal) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::CanisterNonEmpty,
        format!(
            "Canister {id} cannot be installed because the canister is not empty. Try installing with mode='reinstall' instead.\n{}",
            help(
                "Check that you want to overwrite the canister and, if so, use mode='reinstall'.",
                "canister-not-empty"
            )
        ),
    )
}

pub(crate) fn delete_not_stopped(id: Principal) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::CanisterNotStopped,
        format!(
            "Canister {id} must be stopped before it is deleted.\n{}",
            help(
                "Stop the canister before deleting it.",
                "delete-canister-not-stopped"
            )
        ),
    )
}

pub(crate) fn delete_self(id: Principal) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::CanisterInvalidController,
        format!(
            "Canister {id} cannot delete itself.\n{}",
            help(
                "Delete the canister from one of its other controllers.",
                "delete-canister-self"
            )
        ),
    )
}

/// A module refused at install; `specific_help` is (suggestion, documentation section) for the
/// errors the replica gives their own advice (limits), the toolchain help otherwise.
pub(crate) fn invalid_wasm(
    id: Principal,
    reason: &str,
    specific_help: Option<(&str, &str)>,
) -> RejectResponse {
    let help_text = specific_help.map_or_else(
        || TOOLCHAIN_HELP.to_string(),
        |(s, section)| help(s, section),
    );
    RejectResponse::new(
        ErrorCode::CanisterInvalidWasm,
        from_canister(
            id,
            &format!("Canister's Wasm module is not valid: {reason}"),
            Some(help_text),
        ),
    )
}

pub(crate) fn invalid_upgrade_option() -> RejectResponse {
    RejectResponse::new(
        ErrorCode::CanisterContractViolation,
        "Invalid upgrade option: The `wasm_memory_persistence: opt Keep` upgrade option requires that the new canister module supports enhanced orthogonal persistence.",
    )
}

fn snapshot_help() -> String {
    help(
        "Use the `list_canister_snapshot` API to see which snapshots are present.",
        "canister-snapshot-not-found",
    )
}

pub(crate) fn snapshot_not_found(id: Principal, snapshot: &[u8]) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::CanisterSnapshotNotFound,
        format!(
            "Could not find the snapshot ID {} for canister {id}.\n{}",
            hex::encode(snapshot),
            snapshot_help()
        ),
    )
}

pub(crate) fn snapshot_not_owned(id: Principal, snapshot: &[u8]) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::CanisterRejectedMessage,
        format!(
            "The snapshot {} does not belong to canister {id}.\n{}",
            hex::encode(snapshot),
            help(
                "Use the `list_canister_snapshot` API to see which snapshots are present.",
                "canister-snapshot-invalid-ownership"
            )
        ),
    )
}

pub(crate) fn snapshot_limit(id: Principal, limit: usize) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::CanisterRejectedMessage,
        format!(
            "Canister {id} has reached the maximum number of snapshots allowed: {limit}.\nConsider deleting an unnecessary snapshot of the specified canister before creating a new one. See documentation: canister-snapshot-limit-exceeded"
        ),
    )
}

pub(crate) fn snapshot_of_empty(id: Principal) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::CanisterRejectedMessage,
        format!("Failed to create snapshot for empty canister {id}:"),
    )
}

fn chunk_store_error(text: String) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::CanisterContractViolation,
        format!(
            "Error from Wasm chunk store: {text}\n{}",
            help(
                "Use the `stored_chunks` API to check which hashes are present or top up the canister if it is low on cycles.",
                "wasm-chunk-store-error"
            )
        ),
    )
}

pub(crate) fn chunk_too_large(len: usize, max: usize) -> RejectResponse {
    chunk_store_error(format!(
        "Wasm chunk size {len} exceeds the maximum chunk size of {max}."
    ))
}

pub(crate) fn chunk_not_found(hash: &[u8]) -> RejectResponse {
    chunk_store_error(format!("Chunk hash {hash:?} was not found."))
}

pub(crate) fn chunk_hash_invalid() -> RejectResponse {
    chunk_store_error("Chunk hash is invalid. The length is not 32.".to_string())
}

pub(crate) fn chunk_store_full(max_chunks: usize) -> RejectResponse {
    chunk_store_error(format!(
        "Wasm chunk store has already reached maximum capacity of {} bytes or the maximum number of entries, {max_chunks}",
        max_chunks * 1024 * 1024
    ))
}

pub(crate) fn chunked_hash_mismatch(actual: &[u8; 32], expected: &[u8]) -> RejectResponse {
    chunk_store_error(format!(
        "Wasm module hash {actual:?} does not match given hash {expected:?}."
    ))
}

pub(crate) fn canister_id_exists(id: Principal) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::CanisterIdAlreadyExists,
        format!("Unsuccessful canister creation: canister id {id} already exists."),
    )
}

/// canister_manager/types.rs `InvalidSpecifiedId`, with its suggestion (no documentation link).
pub(crate) fn invalid_specified_id(id: Principal) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::InvalidManagementPayload,
        format!(
            "The `specified_id` {id} is invalid because it belongs to the canister allocation ranges of the test environment.\nUse a `specified_id` that matches a canister ID on the ICP mainnet and a test environment that supports canister creation with `specified_id` (e.g., PocketIC)."
        ),
    )
}

pub(crate) fn snapshot_not_controller(
    sender: Principal,
    id: Principal,
    snapshot: &[u8],
) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::CanisterRejectedMessage,
        format!(
            "Only a controller of the canister that snapshot {} belongs to can load it on canister {id}. Sender: {sender}.\nMake sure you are a controller of the canister that the snapshot belongs to. See documentation: canister-snapshot-not-controller",
            hex::encode(snapshot)
        ),
    )
}

pub(crate) fn snapshot_immutable() -> RejectResponse {
    RejectResponse::new(
        ErrorCode::CanisterSnapshotImmutable,
        "Only canister snapshots created by metadata upload can be mutated.",
    )
}

pub(crate) fn invalid_slice(offset: u64, size: u64) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::InvalidManagementPayload,
        format!(
            "Invalid subslice into wasm module / main memory / stable memory: offset: {offset}, size: {size}"
        ),
    )
}

/// Methods only canisters may call (canister_info), refused to ingress.
pub(crate) fn only_canisters_can_call(method: &str) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::CanisterRejectedMessage,
        format!("Only canisters can call ic00 method {method}"),
    )
}

/// fetch_canister_logs in replicated execution.
pub(crate) fn fetch_logs_replicated() -> RejectResponse {
    RejectResponse::new(
        ErrorCode::CanisterRejectedMessage,
        "fetch_canister_logs API is only accessible in non-replicated mode",
    )
}

/// A specified id in the NNS or II range of mainnet while no such subnet exists (PocketIC's
/// message: it creates these subnets only when asked to up front).
pub(crate) fn named_subnet_missing(
    id: Principal,
    kind: crate::subnet::SubnetKind,
) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::InvalidManagementPayload,
        format!(
            "The effective canister ID {id} belongs to the NNS or II subnet on the IC mainnet for which PocketIC provides a `SubnetKind`: please set up your PocketIC instance with a subnet of that `SubnetKind`. ({kind:?})"
        ),
    )
}

/// The threshold-key methods: the simulator holds no keys, as a subnet without keys answers.
pub(crate) fn unknown_threshold_key(method: &str, key: &str) -> RejectResponse {
    let text = if method.starts_with("sign_with") || method.ends_with("derive_key") {
        format!("Requested unknown or disabled threshold key: {key}, existing enabled keys: []")
    } else {
        format!("Requested unknown threshold key: {key}, existing keys: []")
    };
    RejectResponse::new(ErrorCode::CanisterRejectedMessage, text)
}

pub(crate) fn unknown_management_method(method: &str) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::CanisterMethodNotFound,
        format!("Management canister has no method '{method}'"),
    )
}

pub(crate) fn invalid_payload(method: &str, reason: &str) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::InvalidManagementPayload,
        format!("Error decoding candid for management method '{method}': {reason}"),
    )
}

/// The IC answers an oversized ingress message with HTTP 413 and no error code; the simulator
/// reports it as a rejection with the HTTP endpoint's text.
pub(crate) fn ingress_too_large(message_id: &str, size: usize, max: usize) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::CanisterRejectedMessage,
        format!(
            "Request {message_id} is too large. Message byte size {size} is larger than the max allowed {max}."
        ),
    )
}

pub(crate) fn ingress_pending(rounds: u64) -> RejectResponse {
    RejectResponse::new(
        ErrorCode::IngressMessageTimeout,
        format!(
            "Ingress message is still pending after {rounds} rounds with no work left on the subnet: it waits for simulated time to pass (advance_time), for held responses (release_held_responses), or for a stopping canister."
        ),
    )
}
