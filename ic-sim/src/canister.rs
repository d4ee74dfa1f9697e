//! One canister's state as the subnet holds it: system state (controllers, status, cycles,
//! version, call contexts, callbacks, chunk store, snapshots) and, once code is installed, its
//! execution state (live instance and stable memory).

use std::collections::BTreeMap;
use std::sync::Arc;

use candid::Principal;

use crate::execution::{HeapImage, Instance};
use crate::module::CompiledModule;
use crate::types::RawMessageId;

/// Running, stopping or stopped, as the IC defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RunStatus {
    Running,
    /// Waiting for open call contexts to close; the stop requests to answer when they have.
    Stopping(Vec<StopRequest>),
    Stopped,
}

impl RunStatus {
    /// The number `ic0.canister_status` returns.
    pub(crate) fn code(&self) -> u32 {
        match self {
            RunStatus::Running => 1,
            RunStatus::Stopping(_) => 2,
            RunStatus::Stopped => 3,
        }
    }
}

/// A `stop_canister` call waiting for the canister to stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StopRequest {
    pub(crate) reply_to: ReplyTo,
    /// When the stop was requested; it times out 5 minutes later.
    pub(crate) since: u64,
}

/// Where the response to a call goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReplyTo {
    /// An ingress message.
    Ingress(RawMessageId),
    /// A canister's callback.
    Canister {
        caller: Principal,
        callback_id: u64,
        /// Deadline of a best-effort call (0 for guaranteed response).
        deadline: u64,
    },
    /// No one: a timer or heartbeat.
    System,
}

/// An open call context: a call the canister is handling.
#[derive(Clone, Debug)]
pub(crate) struct CallContext {
    pub(crate) reply_to: ReplyTo,
    pub(crate) caller: Principal,
    pub(crate) deadline: u64,
    pub(crate) responded: bool,
    pub(crate) outstanding_callbacks: u32,
    pub(crate) cycles_available: u128,
    pub(crate) instructions: u64,
}

/// A registered callback of an outgoing call.
#[derive(Clone, Debug)]
pub(crate) struct Callback {
    pub(crate) call_context: u64,
    pub(crate) reply: (u32, u32),
    pub(crate) reject: (u32, u32),
    pub(crate) cleanup: Option<(u32, u32)>,
    /// Deadline of a best-effort call (0 for guaranteed response).
    pub(crate) deadline: u64,
    /// Set once the deadline passed and SYS_UNKNOWN was sent; the real response is then dropped.
    pub(crate) expired: bool,
    /// Cycles withdrawn at `call_perform` for the largest response's transmission and the
    /// longest callback; what they do not use is refunded when the response arrives.
    pub(crate) prepaid: u128,
}

/// Code and data of an installed canister.
pub(crate) struct ExecState {
    pub(crate) instance: Instance,
    pub(crate) stable: Vec<u8>,
}

/// A snapshot: code, heap, stable memory, certified data and chunk store, and what
/// `read_canister_snapshot_metadata` reports of the canister when it was taken.
#[derive(Clone)]
pub(crate) struct SnapshotData {
    pub(crate) taken_at: u64,
    /// Taken from the canister, or created by `upload_canister_snapshot_metadata` (then its
    /// data arrives by `upload_canister_snapshot_data` and it can be changed).
    pub(crate) uploaded: bool,
    /// The module as uploaded (gzip included).
    pub(crate) wasm: Arc<Vec<u8>>,
    /// The compiled module, for snapshots taken from a canister.
    pub(crate) module: Option<Arc<CompiledModule>>,
    pub(crate) heap: HeapImage,
    pub(crate) stable: Vec<u8>,
    pub(crate) certified_data: Vec<u8>,
    pub(crate) chunk_store: BTreeMap<[u8; 32], Vec<u8>>,
    pub(crate) canister_version: u64,
    /// The global timer when taken (0 = inactive); restored on load only for uploaded
    /// snapshots, as the replica does.
    pub(crate) global_timer: u64,
}

impl SnapshotData {
    pub(crate) fn total_size(&self) -> u64 {
        (self.wasm.len() + self.heap.size() + self.stable.len()) as u64
            + self.certified_data.len() as u64
            + self
                .chunk_store
                .values()
                .map(|c| c.len() as u64)
                .sum::<u64>()
    }
}

/// The canister log's default capacity in bytes (the replica's 4 KiB).
pub(crate) const DEFAULT_LOG_MEMORY_LIMIT: u64 = 4096;
/// Changes a canister's history keeps (the replica's `MAX_CANISTER_HISTORY_CHANGES`).
pub(crate) const MAX_HISTORY_CHANGES: usize = 20;

/// The canister's log: what it printed with `ic0.debug_print` and its traps, the oldest records
/// dropped once their contents exceed the log memory limit.
#[derive(Clone, Debug, Default)]
pub(crate) struct CanisterLog {
    pub(crate) records: std::collections::VecDeque<ic_management_canister_types::CanisterLogRecord>,
    pub(crate) next_idx: u64,
    pub(crate) bytes: u64,
}

impl CanisterLog {
    pub(crate) fn append(&mut self, time: u64, content: Vec<u8>, limit: u64) {
        self.bytes += content.len() as u64;
        self.records
            .push_back(ic_management_canister_types::CanisterLogRecord {
                idx: self.next_idx,
                timestamp_nanos: time,
                content,
            });
        self.next_idx += 1;
        while self.bytes > limit {
            match self.records.pop_front() {
                Some(old) => self.bytes -= old.content.len() as u64,
                None => break,
            }
        }
    }
}

/// The canister's history (`canister_info`): the last changes and how many there were.
#[derive(Clone, Debug, Default)]
pub(crate) struct History {
    pub(crate) changes: std::collections::VecDeque<ic_management_canister_types::Change>,
    pub(crate) total: u64,
}

impl History {
    pub(crate) fn push(&mut self, change: ic_management_canister_types::Change) {
        self.changes.push_back(change);
        self.total += 1;
        while self.changes.len() > MAX_HISTORY_CHANGES {
            self.changes.pop_front();
        }
    }

    /// Bytes the history takes (its changes, candid-encoded).
    pub(crate) fn size(&self) -> u64 {
        self.changes
            .iter()
            .map(|c| candid::encode_one(c).map_or(0, |b| b.len() as u64))
            .sum()
    }
}

/// Settings a controller may change with update_settings.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) compute_allocation: u64,
    pub(crate) memory_allocation: u64,
    pub(crate) freezing_threshold: u64,
    pub(crate) reserved_cycles_limit: u128,
    pub(crate) wasm_memory_limit: u64,
    pub(crate) wasm_memory_threshold: u64,
    pub(crate) log_visibility: ic_management_canister_types::LogVisibility,
    pub(crate) log_memory_limit: u64,
    pub(crate) snapshot_visibility: ic_management_canister_types::SnapshotVisibility,
    /// Environment variables by name (the `ic0.env_var_*` functions index them in name order).
    pub(crate) environment_variables: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            compute_allocation: 0,
            memory_allocation: 0,
            freezing_threshold: 2_592_000,
            reserved_cycles_limit: 5_000_000_000_000,
            wasm_memory_limit: 3 * 1024 * 1024 * 1024,
            wasm_memory_threshold: 0,
            log_visibility: ic_management_canister_types::LogVisibility::Controllers,
            log_memory_limit: DEFAULT_LOG_MEMORY_LIMIT,
            snapshot_visibility: ic_management_canister_types::SnapshotVisibility::Controllers,
            environment_variables: BTreeMap::new(),
        }
    }
}

/// Execution statistics, for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecutionStats {
    /// Instructions of the most recent execution.
    pub last_instructions: u64,
    /// Instructions of all executions so far.
    pub total_instructions: u64,
    /// Executions so far (messages, callbacks, timers, lifecycle hooks).
    pub executions: u64,
}

/// A canister on the simulated subnet.
pub(crate) struct Canister {
    pub(crate) id: Principal,
    /// Index of the subnet hosting it.
    pub(crate) subnet: usize,
    pub(crate) controllers: Vec<Principal>,
    pub(crate) settings: Settings,
    pub(crate) cycles: u128,
    pub(crate) status: RunStatus,
    pub(crate) version: u64,
    pub(crate) exec: Option<ExecState>,
    pub(crate) certified_data: Vec<u8>,
    pub(crate) global_timer: u64,
    pub(crate) call_contexts: BTreeMap<u64, CallContext>,
    pub(crate) callbacks: BTreeMap<u64, Callback>,
    pub(crate) next_id: u64,
    pub(crate) chunk_store: BTreeMap<[u8; 32], Vec<u8>>,
    pub(crate) snapshots: BTreeMap<Vec<u8>, SnapshotData>,
    pub(crate) next_snapshot: u64,
    pub(crate) debug_log: Vec<String>,
    pub(crate) log: CanisterLog,
    pub(crate) history: History,
    pub(crate) stats: ExecutionStats,
    /// What the canister was charged, by kind.
    pub(crate) charged: crate::fees::CyclesCharged,
    /// When storage was last charged (the IC charges every 10 s for the time since).
    pub(crate) storage_charged_at: u64,
}

impl Canister {
    pub(crate) fn new(id: Principal, controllers: Vec<Principal>, cycles: u128) -> Self {
        Self {
            id,
            subnet: 0,
            controllers,
            settings: Settings::default(),
            cycles,
            status: RunStatus::Running,
            version: 0,
            exec: None,
            certified_data: Vec::new(),
            global_timer: 0,
            call_contexts: BTreeMap::new(),
            callbacks: BTreeMap::new(),
            next_id: 0,
            chunk_store: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            next_snapshot: 0,
            debug_log: Vec::new(),
            log: CanisterLog::default(),
            history: History::default(),
            stats: ExecutionStats::default(),
            charged: crate::fees::CyclesCharged::default(),
            storage_charged_at: 0,
        }
    }

    pub(crate) fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn module(&self) -> Option<&Arc<CompiledModule>> {
        self.exec.as_ref().map(|e| &e.instance.module)
    }

    pub(crate) fn module_hash(&self) -> Option<[u8; 32]> {
        self.module().map(|m| m.hash)
    }

    pub(crate) fn is_controller(&self, p: &Principal) -> bool {
        self.controllers.contains(p)
    }

    /// Memory the canister uses: heap, stable memory, module, chunks and snapshots.
    pub(crate) fn memory_size(&self) -> u64 {
        let exec = self.exec.as_ref().map_or(0, |e| {
            e.instance.heap_size() as u64
                + e.stable.len() as u64
                + e.instance.module.uploaded_size as u64
        });
        let exec = exec + self.history.size() + self.log.bytes;
        exec + self
            .chunk_store
            .values()
            .map(|c| c.len() as u64)
            .sum::<u64>()
            + self
                .snapshots
                .values()
                .map(SnapshotData::total_size)
                .sum::<u64>()
    }
}
