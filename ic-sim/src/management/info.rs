//! What the management canister tells about a canister: canister_status, canister_info (its
//! history), canister_metadata and its logs (fetch_canister_logs).

use candid::Principal;
use ic_management_canister_types as mgmt;

use super::*;

/// The canister_status record, as ic-management-canister-types (and so ic-cdk) decodes it.
pub(crate) fn status_of(canister: &Canister) -> mgmt::CanisterStatusResult {
    let s = &canister.settings;
    let (heap, stable, binary, custom) = canister.exec.as_ref().map_or((0, 0, 0, 0), |e| {
        let custom: usize = e
            .instance
            .module
            .custom_sections
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        (
            e.instance.heap_size(),
            e.stable.len(),
            e.instance.module.uploaded_size,
            custom,
        )
    });
    let chunks: usize = canister.chunk_store.values().map(Vec::len).sum();
    let snapshots: u64 = canister
        .snapshots
        .values()
        .map(SnapshotData::total_size)
        .sum();
    mgmt::CanisterStatusResult {
        status: match canister.status {
            RunStatus::Running => mgmt::CanisterStatusType::Running,
            RunStatus::Stopping(_) => mgmt::CanisterStatusType::Stopping,
            RunStatus::Stopped => mgmt::CanisterStatusType::Stopped,
        },
        ready_for_migration: false,
        version: canister.version,
        settings: mgmt::DefiniteCanisterSettings {
            controllers: canister.controllers.clone(),
            compute_allocation: nat(s.compute_allocation),
            memory_allocation: nat(s.memory_allocation),
            freezing_threshold: nat(s.freezing_threshold),
            reserved_cycles_limit: nat(s.reserved_cycles_limit),
            log_visibility: s.log_visibility.clone(),
            log_memory_limit: nat(s.log_memory_limit),
            snapshot_visibility: s.snapshot_visibility.clone(),
            wasm_memory_limit: nat(s.wasm_memory_limit),
            wasm_memory_threshold: nat(s.wasm_memory_threshold),
            environment_variables: s
                .environment_variables
                .iter()
                .map(|(name, value)| mgmt::EnvironmentVariable {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        },
        module_hash: canister.module_hash().map(|h| h.to_vec()),
        memory_size: nat(canister.memory_size()),
        memory_metrics: mgmt::MemoryMetrics {
            wasm_memory_size: nat(heap as u64),
            stable_memory_size: nat(stable as u64),
            global_memory_size: nat(0u64),
            wasm_binary_size: nat(binary as u64),
            custom_sections_size: nat(custom as u64),
            canister_history_size: nat(canister.history.size()),
            wasm_chunk_store_size: nat(chunks as u64),
            snapshots_size: nat(snapshots),
            log_memory_store_size: nat(canister.log.bytes),
        },
        cycles: nat(canister.cycles),
        reserved_cycles: nat(0u64),
        idle_cycles_burned_per_day: nat(0u64),
        query_stats: mgmt::QueryStats {
            num_calls_total: nat(0u64),
            num_instructions_total: nat(0u64),
            request_payload_bytes_total: nat(0u64),
            response_payload_bytes_total: nat(0u64),
        },
    }
}

impl SimState {
    /// canister_info: the last `num_requested_changes` changes (at most 20 are kept), their
    /// total count, the module hash and the controllers. Only canisters may call it.
    pub(super) fn canister_info(
        &self,
        args: &mgmt::CanisterInfoArgs,
    ) -> Result<mgmt::CanisterInfoResult, RejectResponse> {
        let Some(canister) = self.canisters.get(&args.canister_id) else {
            return Err(RejectResponse::new(
                ErrorCode::CanisterNotFound,
                errors::management_canister_not_found(args.canister_id),
            ));
        };
        let wanted = args.num_requested_changes.unwrap_or(0) as usize;
        let changes = &canister.history.changes;
        let skip = changes.len().saturating_sub(wanted);
        Ok(mgmt::CanisterInfoResult {
            total_num_changes: canister.history.total,
            recent_changes: changes.iter().skip(skip).cloned().collect(),
            module_hash: canister.module_hash().map(|h| h.to_vec()),
            controllers: canister.controllers.clone(),
        })
    }

    /// canister_metadata: the `icp:public NAME` section for anyone, `icp:private NAME` for
    /// controllers; otherwise the replica's `CanisterMetadataSectionNotFound`, which does not
    /// tell a private section from a missing one.
    pub(super) fn canister_metadata(
        &self,
        sender: Principal,
        args: &mgmt::CanisterMetadataArgs,
    ) -> Result<mgmt::CanisterMetadataResult, RejectResponse> {
        let id = args.canister_id;
        let Some(canister) = self.canisters.get(&id) else {
            return Err(RejectResponse::new(
                ErrorCode::CanisterNotFound,
                errors::management_canister_not_found(id),
            ));
        };
        let Some(module) = canister.module() else {
            return Err(RejectResponse::new(
                ErrorCode::CanisterRejectedMessage,
                format!("The canister {id} has no Wasm module and hence no metadata is available."),
            ));
        };
        let public = module
            .custom_sections
            .get(&format!("icp:public {}", args.name));
        let private = module
            .custom_sections
            .get(&format!("icp:private {}", args.name))
            .filter(|_| canister.is_controller(&sender));
        match public.or(private) {
            Some(value) => Ok(mgmt::CanisterMetadataResult {
                value: value.clone(),
            }),
            None => Err(RejectResponse::new(
                ErrorCode::CanisterRejectedMessage,
                format!(
                    "The canister {id} has no metadata section with the name {}.",
                    args.name
                ),
            )),
        }
    }

    /// fetch_canister_logs (a query of the management canister): the records the log
    /// visibility lets `sender` see, optionally filtered by index or time.
    pub(crate) fn fetch_canister_logs(
        &self,
        sender: Principal,
        arg: &[u8],
    ) -> Result<Vec<u8>, RejectResponse> {
        let args: mgmt::FetchCanisterLogsArgs = decode("fetch_canister_logs", arg)?;
        let id = args.canister_id;
        let Some(canister) = self.canisters.get(&id) else {
            return Err(RejectResponse::new(
                ErrorCode::CanisterNotFound,
                errors::management_canister_not_found(id),
            ));
        };
        let allowed = match &canister.settings.log_visibility {
            mgmt::LogVisibility::Public => true,
            mgmt::LogVisibility::Controllers => canister.is_controller(&sender),
            mgmt::LogVisibility::AllowedViewers(viewers) => {
                canister.is_controller(&sender) || viewers.contains(&sender)
            }
        };
        if !allowed {
            return Err(RejectResponse::new(
                ErrorCode::CanisterRejectedMessage,
                format!("Caller {sender} is not allowed to query ic00 method fetch_canister_logs"),
            ));
        }
        let keep = |r: &mgmt::CanisterLogRecord| match &args.filter {
            None => true,
            Some(mgmt::CanisterLogFilter::ByIdx { start, end }) => *start <= r.idx && r.idx <= *end,
            Some(mgmt::CanisterLogFilter::ByTimestampNanos { start, end }) => {
                *start <= r.timestamp_nanos && r.timestamp_nanos <= *end
            }
        };
        let records = canister
            .log
            .records
            .iter()
            .filter(|r| keep(r))
            .cloned()
            .collect();
        Ok(encode(&mgmt::FetchCanisterLogsResult {
            canister_log_records: records,
        }))
    }
}

/// What `canister_status` answers: [`status_of`] plus the settings the current interface added
/// after `ic-management-canister-types` 0.8 (`minimum_incoming_canister_call_cycles`,
/// `status_visibility`; icp-cli 1.5 requires them). A superset decodes as the older record too.
#[derive(candid::CandidType)]
pub(crate) struct StatusReply {
    status: mgmt::CanisterStatusType,
    ready_for_migration: bool,
    version: u64,
    settings: SettingsReply,
    module_hash: Option<Vec<u8>>,
    memory_size: candid::Nat,
    memory_metrics: mgmt::MemoryMetrics,
    cycles: candid::Nat,
    reserved_cycles: candid::Nat,
    idle_cycles_burned_per_day: candid::Nat,
    query_stats: mgmt::QueryStats,
}

#[derive(candid::CandidType)]
struct SettingsReply {
    controllers: Vec<Principal>,
    compute_allocation: candid::Nat,
    memory_allocation: candid::Nat,
    freezing_threshold: candid::Nat,
    reserved_cycles_limit: candid::Nat,
    log_visibility: mgmt::LogVisibility,
    log_memory_limit: candid::Nat,
    snapshot_visibility: mgmt::SnapshotVisibility,
    /// Same variant as `snapshot_visibility`; controllers only, as on a new canister.
    status_visibility: mgmt::SnapshotVisibility,
    wasm_memory_limit: candid::Nat,
    wasm_memory_threshold: candid::Nat,
    environment_variables: Vec<mgmt::EnvironmentVariable>,
    /// No minimum: the simulator does not model the charge for incoming calls.
    minimum_incoming_canister_call_cycles: candid::Nat,
}

impl From<mgmt::CanisterStatusResult> for StatusReply {
    fn from(r: mgmt::CanisterStatusResult) -> Self {
        let s = r.settings;
        StatusReply {
            status: r.status,
            ready_for_migration: r.ready_for_migration,
            version: r.version,
            settings: SettingsReply {
                controllers: s.controllers,
                compute_allocation: s.compute_allocation,
                memory_allocation: s.memory_allocation,
                freezing_threshold: s.freezing_threshold,
                reserved_cycles_limit: s.reserved_cycles_limit,
                log_visibility: s.log_visibility,
                log_memory_limit: s.log_memory_limit,
                snapshot_visibility: s.snapshot_visibility,
                status_visibility: mgmt::SnapshotVisibility::Controllers,
                wasm_memory_limit: s.wasm_memory_limit,
                wasm_memory_threshold: s.wasm_memory_threshold,
                environment_variables: s.environment_variables,
                minimum_incoming_canister_call_cycles: candid::Nat::from(0u8),
            },
            module_hash: r.module_hash,
            memory_size: r.memory_size,
            memory_metrics: r.memory_metrics,
            cycles: r.cycles,
            reserved_cycles: r.reserved_cycles,
            idle_cycles_burned_per_day: r.idle_cycles_burned_per_day,
            query_stats: r.query_stats,
        }
    }
}
