//! Canister snapshots: take, load, list, delete, and download (read) and upload.
//!
//! Following the replica (rs/execution_environment/src/canister_manager.rs,
//! `take_canister_snapshot` and `load_canister_snapshot`): neither requires any run status (a
//! running canister can be snapshotted and loaded; dfx checks "stopped" on the client side);
//! a load bumps the canister version and records a `load_snapshot` change; the global timer is
//! not restored for snapshots taken from a canister ("We don't restore the state of global
//! timer ... for snapshots created via `take_canister_snapshot` since that would be a breaking
//! change"), only for uploaded ones; a controller of the snapshot's canister may load it onto
//! another canister it controls.

use candid::Principal;
use ic_management_canister_types as mgmt;
use wasmtime::Val;

use super::*;
use crate::execution::HeapImage;

/// Largest slice `read_canister_snapshot_data` returns (the replica's `MAX_SLICE_SIZE_BYTES`).
const MAX_SLICE_SIZE: u64 = 2_000_000;

/// Snapshot ids: the owner's principal bytes followed by an 8-byte big-endian counter.
pub(super) fn snapshot_id(owner: Principal, counter: u64) -> Vec<u8> {
    let mut id = owner.as_slice().to_vec();
    id.extend_from_slice(&counter.to_be_bytes());
    id
}

pub(super) fn snapshot_owner(id: &[u8]) -> Option<Principal> {
    (id.len() > 8)
        .then(|| Principal::try_from_slice(&id[..id.len() - 8]).ok())
        .flatten()
}

fn global_of(value: &Val) -> mgmt::SnapshotMetadataGlobal {
    match value {
        Val::I32(v) => mgmt::SnapshotMetadataGlobal::I32(*v),
        Val::I64(v) => mgmt::SnapshotMetadataGlobal::I64(*v),
        Val::F32(bits) => mgmt::SnapshotMetadataGlobal::F32(f32::from_bits(*bits)),
        Val::F64(bits) => mgmt::SnapshotMetadataGlobal::F64(f64::from_bits(*bits)),
        Val::V128(v) => mgmt::SnapshotMetadataGlobal::V128(candid::Nat::from(v.as_u128())),
        _ => mgmt::SnapshotMetadataGlobal::I32(0),
    }
}

fn val_of(global: &mgmt::SnapshotMetadataGlobal) -> Val {
    match global {
        mgmt::SnapshotMetadataGlobal::I32(v) => Val::I32(*v),
        mgmt::SnapshotMetadataGlobal::I64(v) => Val::I64(*v),
        mgmt::SnapshotMetadataGlobal::F32(v) => Val::F32(v.to_bits()),
        mgmt::SnapshotMetadataGlobal::F64(v) => Val::F64(v.to_bits()),
        mgmt::SnapshotMetadataGlobal::V128(v) => {
            Val::V128(u128::try_from(v.0.clone()).unwrap_or(0).into())
        }
    }
}

fn same_type(a: &Val, b: &Val) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// `[offset, offset + size)` of `data`, or the replica's `InvalidSlice` / `SliceTooLarge`.
fn slice(data: &[u8], offset: u64, size: u64) -> Result<Vec<u8>, RejectResponse> {
    if size > MAX_SLICE_SIZE {
        return Err(RejectResponse::new(
            ErrorCode::InvalidManagementPayload,
            format!("Requested slice too large: {size} > {MAX_SLICE_SIZE}"),
        ));
    }
    match offset.checked_add(size) {
        Some(end) if end <= data.len() as u64 => Ok(data[offset as usize..end as usize].to_vec()),
        _ => Err(errors::invalid_slice(offset, size)),
    }
}

/// Writes `chunk` at `offset` into `data`, which must already be that long.
fn write(data: &mut [u8], offset: u64, chunk: &[u8]) -> Result<(), RejectResponse> {
    match offset.checked_add(chunk.len() as u64) {
        Some(end) if end <= data.len() as u64 => {
            data[offset as usize..end as usize].copy_from_slice(chunk);
            Ok(())
        }
        _ => Err(errors::invalid_slice(offset, chunk.len() as u64)),
    }
}

impl SimState {
    pub(super) fn owned_snapshot(
        &self,
        id: Principal,
        snapshot: &[u8],
    ) -> Result<(), RejectResponse> {
        if snapshot_owner(snapshot).is_some_and(|owner| owner != id) {
            return Err(errors::snapshot_not_owned(id, snapshot));
        }
        if !self.canisters[&id].snapshots.contains_key(snapshot) {
            return Err(errors::snapshot_not_found(id, snapshot));
        }
        Ok(())
    }

    /// Room for one more snapshot of `id`, unless `replace` names one to replace.
    fn snapshot_room(&self, id: Principal, replace: Option<&[u8]>) -> Result<(), RejectResponse> {
        match replace {
            Some(replace) => self.owned_snapshot(id, replace),
            None if self.canisters[&id].snapshots.len() >= MAX_SNAPSHOTS => {
                Err(errors::snapshot_limit(id, MAX_SNAPSHOTS))
            }
            None => Ok(()),
        }
    }

    /// Stores `data` as a new snapshot of `id` (replacing `replace`) and returns its id.
    fn store_snapshot(
        &mut self,
        id: Principal,
        replace: Option<&[u8]>,
        data: SnapshotData,
    ) -> Vec<u8> {
        let canister = self.canisters.get_mut(&id).expect("checked");
        if let Some(replace) = replace {
            canister.snapshots.remove(replace);
        }
        canister.next_snapshot += 1;
        let snapshot_id = snapshot_id(id, canister.next_snapshot);
        canister.snapshots.insert(snapshot_id.clone(), data);
        snapshot_id
    }

    pub(super) fn take_snapshot(
        &mut self,
        sender: Principal,
        args: mgmt::TakeCanisterSnapshotArgs,
        origin: mgmt::ChangeOrigin,
    ) -> Result<mgmt::Snapshot, RejectResponse> {
        let id = args.canister_id;
        self.controlled(id, sender)?;
        if self.canisters[&id].exec.is_none() {
            return Err(errors::snapshot_of_empty(id));
        }
        self.snapshot_room(id, args.replace_snapshot.as_deref())?;
        let time = self.time;
        let canister = self.canisters.get_mut(&id).expect("checked");
        let exec = canister.exec.as_mut().expect("checked");
        let module = exec.instance.module.clone();
        let data = SnapshotData {
            taken_at: time,
            uploaded: false,
            wasm: module.bytes.clone(),
            heap: exec.instance.image(),
            module: Some(module),
            stable: exec.stable.clone(),
            certified_data: canister.certified_data.clone(),
            chunk_store: canister.chunk_store.clone(),
            canister_version: canister.version,
            global_timer: canister.global_timer,
        };
        let total_size = data.total_size();
        let snapshot_id = self.store_snapshot(id, args.replace_snapshot.as_deref(), data);
        if args.uninstall_code == Some(true) {
            self.uninstall(id, origin);
        }
        Ok(mgmt::Snapshot {
            id: snapshot_id,
            taken_at_timestamp: time,
            total_size,
        })
    }

    /// The snapshot `snapshot` for loading onto `id`: its own, or one of a canister the sender
    /// also controls (`CanisterSnapshotNotController` otherwise).
    fn snapshot_to_load(
        &self,
        sender: Principal,
        id: Principal,
        snapshot: &[u8],
    ) -> Result<(Principal, SnapshotData), RejectResponse> {
        let owner = snapshot_owner(snapshot).unwrap_or(id);
        let found = self
            .canisters
            .get(&owner)
            .and_then(|c| c.snapshots.get(snapshot));
        let Some(data) = found else {
            return Err(errors::snapshot_not_found(id, snapshot));
        };
        if owner != id && !self.canisters[&owner].is_controller(&sender) {
            return Err(errors::snapshot_not_controller(sender, id, snapshot));
        }
        Ok((owner, data.clone()))
    }

    pub(super) fn load_snapshot(
        &mut self,
        sender: Principal,
        id: Principal,
        snapshot: &[u8],
        origin: mgmt::ChangeOrigin,
    ) -> Result<(), RejectResponse> {
        self.controlled(id, sender)?;
        let (owner, data) = self.snapshot_to_load(sender, id, snapshot)?;
        let fees = self.fees_of(&self.canisters[&id]);
        let module = match &data.module {
            Some(module) => module.clone(),
            None => module::load(&data.wasm).map_err(|e| errors::invalid_wasm(id, &e.0, e.1))?,
        };
        if data.uploaded {
            let matches = data.heap.globals.len() == module.globals.len();
            let fresh = Instance::new(module.clone(), fees.clone())
                .map_err(|e| errors::invalid_wasm(id, &e, None))?;
            let types_match = matches && {
                let mut fresh = fresh;
                let image = fresh.image();
                image
                    .globals
                    .iter()
                    .zip(&data.heap.globals)
                    .all(|(a, b)| same_type(a, b))
            };
            if !types_match {
                return Err(RejectResponse::new(
                    ErrorCode::InvalidManagementPayload,
                    "Wasm exported globals of canister module and snapshot metadata do not match.",
                ));
            }
        }
        let mut instance =
            Instance::new(module, fees).map_err(|e| errors::invalid_wasm(id, &e, None))?;
        instance
            .restore(&data.heap)
            .map_err(|e| errors::invalid_wasm(id, &e, None))?;
        let time = self.time;
        let canister = self.canisters.get_mut(&id).expect("checked");
        canister.exec = Some(ExecState {
            instance,
            stable: data.stable.clone(),
        });
        canister.certified_data = data.certified_data.clone();
        canister.chunk_store = data.chunk_store.clone();
        if data.uploaded {
            canister.global_timer = data.global_timer;
        }
        canister.version += 1;
        let details = mgmt::ChangeDetails::LoadSnapshot(mgmt::LoadSnapshotRecord {
            from_canister_id: (owner != id).then_some(owner),
            snapshot_id: snapshot.to_vec(),
            canister_version: data.canister_version,
            taken_at_timestamp: data.taken_at,
            source: source_of(&data),
        });
        record_change(canister, time, origin, details);
        Ok(())
    }

    pub(super) fn list_snapshots(&self, id: Principal) -> Vec<mgmt::Snapshot> {
        self.canisters[&id]
            .snapshots
            .iter()
            .map(|(id, s)| mgmt::Snapshot {
                id: id.clone(),
                taken_at_timestamp: s.taken_at,
                total_size: s.total_size(),
            })
            .collect()
    }

    pub(super) fn read_snapshot_metadata(
        &self,
        sender: Principal,
        args: &mgmt::ReadCanisterSnapshotMetadataArgs,
    ) -> Result<mgmt::ReadCanisterSnapshotMetadataResult, RejectResponse> {
        let id = args.canister_id;
        self.controlled_ref(id, sender)?;
        self.owned_snapshot(id, &args.snapshot_id)?;
        let s = &self.canisters[&id].snapshots[&args.snapshot_id];
        Ok(mgmt::ReadCanisterSnapshotMetadataResult {
            source: Some(source_of(s)),
            taken_at_timestamp: s.taken_at,
            wasm_module_size: s.wasm.len() as u64,
            globals: s.heap.globals.iter().map(|g| Some(global_of(g))).collect(),
            wasm_memory_size: s.heap.memory.len() as u64,
            stable_memory_size: s.stable.len() as u64,
            wasm_chunk_store: s
                .chunk_store
                .keys()
                .map(|h| mgmt::ChunkHash { hash: h.to_vec() })
                .collect(),
            canister_version: s.canister_version,
            certified_data: s.certified_data.clone(),
            global_timer: Some(if s.global_timer == 0 {
                mgmt::CanisterTimer::Inactive
            } else {
                mgmt::CanisterTimer::Active(s.global_timer)
            }),
            on_low_wasm_memory_hook_status: Some(
                mgmt::OnLowWasmMemoryHookStatus::ConditionNotSatisfied,
            ),
        })
    }

    pub(super) fn read_snapshot_data(
        &self,
        sender: Principal,
        args: &mgmt::ReadCanisterSnapshotDataArgs,
    ) -> Result<mgmt::ReadCanisterSnapshotDataResult, RejectResponse> {
        let id = args.canister_id;
        self.controlled_ref(id, sender)?;
        self.owned_snapshot(id, &args.snapshot_id)?;
        let s = &self.canisters[&id].snapshots[&args.snapshot_id];
        let chunk = match &args.kind {
            mgmt::SnapshotDataKind::WasmModule { offset, size } => slice(&s.wasm, *offset, *size)?,
            mgmt::SnapshotDataKind::WasmMemory { offset, size } => {
                slice(&s.heap.memory, *offset, *size)?
            }
            mgmt::SnapshotDataKind::StableMemory { offset, size } => {
                slice(&s.stable, *offset, *size)?
            }
            mgmt::SnapshotDataKind::WasmChunk { hash } => {
                let found = <[u8; 32]>::try_from(hash.as_slice())
                    .ok()
                    .and_then(|h| s.chunk_store.get(&h));
                match found {
                    Some(chunk) => chunk.clone(),
                    None => return Err(errors::chunk_not_found(hash)),
                }
            }
        };
        Ok(mgmt::ReadCanisterSnapshotDataResult { chunk })
    }

    pub(super) fn upload_snapshot_metadata(
        &mut self,
        sender: Principal,
        args: mgmt::UploadCanisterSnapshotMetadataArgs,
    ) -> Result<mgmt::UploadCanisterSnapshotMetadataResult, RejectResponse> {
        let id = args.canister_id;
        self.controlled(id, sender)?;
        self.snapshot_room(id, args.replace_snapshot.as_deref())?;
        let memory_size = usize::try_from(args.wasm_memory_size).unwrap_or(usize::MAX);
        let stable_size = usize::try_from(args.stable_memory_size).unwrap_or(usize::MAX);
        let module_size = usize::try_from(args.wasm_module_size).unwrap_or(usize::MAX);
        if memory_size % 65536 != 0 || stable_size % 65536 != 0 {
            return Err(RejectResponse::new(
                ErrorCode::InvalidManagementPayload,
                "Memory sizes of an uploaded snapshot must be multiples of the Wasm page size (65536).",
            ));
        }
        if memory_size > 4 << 30
            || stable_size > 500 << 30
            || module_size > crate::module::limits::MAX_MODULE_SIZE
        {
            return Err(RejectResponse::new(
                ErrorCode::InvalidManagementPayload,
                "The sizes in the snapshot metadata exceed the canister's limits.",
            ));
        }
        let global_timer = match args.global_timer {
            Some(mgmt::CanisterTimer::Active(t)) => t,
            _ => 0,
        };
        let data = SnapshotData {
            taken_at: self.time,
            uploaded: true,
            wasm: std::sync::Arc::new(vec![0; module_size]),
            module: None,
            heap: HeapImage {
                memory: vec![0; memory_size],
                globals: args.globals.iter().map(val_of).collect(),
            },
            stable: vec![0; stable_size],
            certified_data: args.certified_data,
            chunk_store: Default::default(),
            canister_version: self.canisters[&id].version,
            global_timer,
        };
        let snapshot_id = self.store_snapshot(id, args.replace_snapshot.as_deref(), data);
        Ok(mgmt::UploadCanisterSnapshotMetadataResult { snapshot_id })
    }

    pub(super) fn upload_snapshot_data(
        &mut self,
        sender: Principal,
        args: mgmt::UploadCanisterSnapshotDataArgs,
    ) -> Result<(), RejectResponse> {
        let id = args.canister_id;
        self.controlled(id, sender)?;
        self.owned_snapshot(id, &args.snapshot_id)?;
        let canister = self.canisters.get_mut(&id).expect("checked");
        let s = canister
            .snapshots
            .get_mut(&args.snapshot_id)
            .expect("checked");
        if !s.uploaded {
            return Err(errors::snapshot_immutable());
        }
        match args.kind {
            mgmt::SnapshotDataOffset::WasmModule { offset } => write(
                std::sync::Arc::make_mut(&mut s.wasm).as_mut_slice(),
                offset,
                &args.chunk,
            ),
            mgmt::SnapshotDataOffset::WasmMemory { offset } => {
                write(&mut s.heap.memory, offset, &args.chunk)
            }
            mgmt::SnapshotDataOffset::StableMemory { offset } => {
                write(&mut s.stable, offset, &args.chunk)
            }
            mgmt::SnapshotDataOffset::WasmChunk => {
                if args.chunk.len() > MAX_CHUNK_SIZE {
                    return Err(errors::chunk_too_large(args.chunk.len(), MAX_CHUNK_SIZE));
                }
                let hash: [u8; 32] = Sha256::digest(&args.chunk).into();
                s.chunk_store.insert(hash, args.chunk);
                Ok(())
            }
        }
    }
}

fn source_of(data: &SnapshotData) -> mgmt::SnapshotSource {
    if data.uploaded {
        mgmt::SnapshotSource::MetadataUpload(candid::Reserved)
    } else {
        mgmt::SnapshotSource::TakenFromCanister(candid::Reserved)
    }
}
