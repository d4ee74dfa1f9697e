//! Canister snapshots: take, load, list, delete, limits and ownership
//! (IC-SEMANTICS.md, "Snapshots").

mod common;

use std::time::Duration;

use common::*;

/// Fidelity check: loading a snapshot restores the older counter (heap and stable memory), keeps
/// controllers, cycles and run status, and bumps the version.
#[test]
fn snapshot_load_restores_older_counter() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    inc(&sim, id);
    inc(&sim, id);
    stable_inc(&sim, id);
    let snapshot = sim.take_canister_snapshot(id, None, None).unwrap();
    assert!(!snapshot.id.is_empty());

    inc(&sim, id);
    inc(&sim, id);
    stable_inc(&sim, id);
    let alice = user("alice");
    sim.set_controllers(id, None, vec![Principal::anonymous(), alice])
        .unwrap();
    sim.stop_canister(id, None).unwrap();
    let version_before = sim.canister_status(id, None).unwrap().version;
    let cycles_before = sim.cycle_balance(id);

    sim.load_canister_snapshot(id, None, snapshot.id.clone())
        .unwrap();
    let status = sim.canister_status(id, None).unwrap();
    assert_eq!(
        status.status,
        CanisterStatusType::Stopped,
        "run status kept"
    );
    assert!(status.version > version_before, "load bumps the version");
    let mut controllers = status.settings.controllers.clone();
    controllers.sort();
    let mut want = vec![Principal::anonymous(), alice];
    want.sort();
    assert_eq!(controllers, want, "controllers are not restored");
    assert!(
        sim.cycle_balance(id) <= cycles_before,
        "cycles are not restored"
    );

    sim.start_canister(id, None).unwrap();
    assert_eq!(read(&sim, id), 2, "heap restored");
    assert_eq!(stable_read(&sim, id), 1, "stable memory restored");
}

/// A snapshot captures the module: loading it after an upgrade brings the old module back.
#[test]
fn snapshot_load_restores_the_module() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let snapshot = sim.take_canister_snapshot(id, None, None).unwrap();
    sim.upgrade_canister(id, probe_wasm_gz(), no_init(), None)
        .unwrap();
    assert_eq!(sim.module_hash(id), Some(sha256(&probe_wasm_gz())));
    sim.load_canister_snapshot(id, None, snapshot.id).unwrap();
    assert_eq!(sim.module_hash(id), Some(sha256(&probe_wasm())));
}

/// A snapshot captures the chunk store.
#[test]
fn snapshot_load_restores_the_chunk_store() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let hash = sim.upload_chunk(id, None, vec![7; 100]).unwrap();
    let snapshot = sim.take_canister_snapshot(id, None, None).unwrap();
    sim.clear_chunk_store(id, None).unwrap();
    assert!(sim.stored_chunks(id, None).unwrap().is_empty());
    sim.load_canister_snapshot(id, None, snapshot.id).unwrap();
    assert_eq!(sim.stored_chunks(id, None).unwrap(), vec![hash]);
}

/// Loading a snapshot does not restore the global timer.
#[test]
fn snapshot_load_does_not_restore_the_global_timer() {
    let sim = Sim::new();
    let id = new_wat(&sim, "global_timer");
    let deadline = now(&sim) + 10_000_000_000;
    assert_eq!(wat_timer_set(&sim, id, deadline), 0);
    let snapshot = sim.take_canister_snapshot(id, None, None).unwrap();
    assert_eq!(
        wat_timer_set(&sim, id, 0),
        deadline,
        "disarmed after the snapshot"
    );

    sim.load_canister_snapshot(id, None, snapshot.id).unwrap();
    advance(&sim, Duration::from_secs(20));
    assert_eq!(
        wat_timer_fired(&sim, id),
        0,
        "the snapshot's timer was not restored"
    );
    assert_eq!(wat_timer_set(&sim, id, 0), 0, "the timer is disarmed");
}

/// Snapshots of an empty canister are refused (IC0406).
#[test]
fn snapshot_of_an_empty_canister_is_refused() {
    let sim = Sim::new();
    let id = new_empty(&sim);
    let result = sim.take_canister_snapshot(id, None, None);
    expect_reject(
        result,
        RejectCode::CanisterReject,
        ErrorCode::CanisterRejectedMessage,
        &[&format!(
            "Failed to create snapshot for empty canister {id}"
        )],
    );
}

/// Fidelity check: at most 10 snapshots per canister (IC0406); replacing one is still allowed.
#[test]
fn snapshot_limit_is_10() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let taken: Vec<Snapshot> = (0..10)
        .map(|_| sim.take_canister_snapshot(id, None, None).unwrap())
        .collect();
    let result = sim.take_canister_snapshot(id, None, None);
    expect_reject(
        result,
        RejectCode::CanisterReject,
        ErrorCode::CanisterRejectedMessage,
        &[&format!(
            "Canister {id} has reached the maximum number of snapshots allowed: 10."
        )],
    );
    assert_eq!(sim.list_canister_snapshots(id, None).unwrap().len(), 10);
    sim.take_canister_snapshot(id, None, Some(taken[0].id.clone()))
        .expect("replacing keeps the count at 10");
    assert_eq!(sim.list_canister_snapshots(id, None).unwrap().len(), 10);
}

/// replace_snapshot deletes the replaced snapshot.
#[test]
fn replace_snapshot_deletes_the_replaced_one() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let first = sim.take_canister_snapshot(id, None, None).unwrap();
    let second = sim
        .take_canister_snapshot(id, None, Some(first.id.clone()))
        .unwrap();
    assert_ne!(first.id, second.id);
    let listed: Vec<Vec<u8>> = sim
        .list_canister_snapshots(id, None)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, vec![second.id]);
    let result = sim.load_canister_snapshot(id, None, first.id);
    expect_reject(
        result,
        RejectCode::DestinationInvalid,
        ErrorCode::CanisterSnapshotNotFound,
        &["Could not find the snapshot ID", &id.to_string()],
    );
}

/// list and delete: a deleted snapshot disappears from the list and cannot be loaded (IC0305).
#[test]
fn list_and_delete_snapshots() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    assert!(sim.list_canister_snapshots(id, None).unwrap().is_empty());
    let a = sim.take_canister_snapshot(id, None, None).unwrap();
    let b = sim.take_canister_snapshot(id, None, None).unwrap();
    let mut listed: Vec<Vec<u8>> = sim
        .list_canister_snapshots(id, None)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    listed.sort();
    let mut want = vec![a.id.clone(), b.id.clone()];
    want.sort();
    assert_eq!(listed, want);

    sim.delete_canister_snapshot(id, None, a.id.clone())
        .unwrap();
    let listed: Vec<Vec<u8>> = sim
        .list_canister_snapshots(id, None)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, vec![b.id]);

    let result = sim.delete_canister_snapshot(id, None, a.id.clone());
    expect_reject(
        result,
        RejectCode::DestinationInvalid,
        ErrorCode::CanisterSnapshotNotFound,
        &["Could not find the snapshot ID"],
    );
    let result = sim.load_canister_snapshot(id, None, a.id);
    expect_reject(
        result,
        RejectCode::DestinationInvalid,
        ErrorCode::CanisterSnapshotNotFound,
        &[
            "Could not find the snapshot ID",
            &format!("for canister {id}"),
        ],
    );
}

/// Fidelity check: a snapshot of another canister is refused (IC0406), for delete and for load
/// by someone who does not control the snapshot's owner.
#[test]
fn snapshot_of_another_canister_is_refused() {
    let sim = Sim::new();
    let alice = user("alice");
    let bob = user("bob");
    let a = sim.create_canister_with_settings(Some(alice), None);
    let b = sim.create_canister_with_settings(Some(bob), None);
    for (id, owner) in [(a, alice), (b, bob)] {
        sim.add_cycles(id, CYCLES);
        sim.install_canister(id, probe_wasm(), no_init(), Some(owner));
    }
    let of_a = sim.take_canister_snapshot(a, Some(alice), None).unwrap();

    let result = sim.load_canister_snapshot(b, Some(bob), of_a.id.clone());
    expect_reject(
        result,
        RejectCode::CanisterReject,
        ErrorCode::CanisterRejectedMessage,
        &[&b.to_string()],
    );
    let result = sim.delete_canister_snapshot(b, Some(bob), of_a.id.clone());
    expect_reject(
        result,
        RejectCode::CanisterReject,
        ErrorCode::CanisterRejectedMessage,
        &[&format!("does not belong to canister {b}")],
    );
    let result = sim.take_canister_snapshot(b, Some(bob), Some(of_a.id.clone()));
    expect_reject(
        result,
        RejectCode::CanisterReject,
        ErrorCode::CanisterRejectedMessage,
        &[&format!("does not belong to canister {b}")],
    );
    assert_eq!(
        sim.list_canister_snapshots(a, Some(alice)).unwrap().len(),
        1,
        "a's snapshot intact"
    );
}

/// Fidelity check: a canister's snapshots are deleted with it.
#[test]
fn snapshots_are_deleted_with_the_canister() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let _snapshot = sim.take_canister_snapshot(id, None, None).unwrap();
    sim.stop_canister(id, None).unwrap();
    sim.delete_canister(id, None).unwrap();
    let result = sim.list_canister_snapshots(id, None);
    expect_reject(
        result,
        RejectCode::DestinationInvalid,
        ErrorCode::CanisterNotFound,
        &[&format!("Canister {id} not found")],
    );
}

// ---- the replica's snapshot rules (issue "ic-sim against suites written by others", item 8) ----
//
// rs/execution_environment/src/canister_manager.rs: `take_canister_snapshot` and
// `load_canister_snapshot` check the controller, the snapshot limit and memory, never the run
// status (dfx refuses a running canister on the client side: "The canister should be stopped
// before taking a snapshot (checked by dfx)", packages/pocket-ic/tests/canister_snapshots.rs);
// a load bumps the canister version once and records a `load_snapshot` change; for snapshots
// taken from a canister the global timer is not restored ("We don't restore the state of global
// timer and on low wasm memory hook for snapshots created via `take_canister_snapshot` since
// that would be a breaking change").

fn canister_info(
    sim: &Sim,
    caller: Principal,
    of: Principal,
) -> ic_management_canister_types::CanisterInfoResult {
    let args = ic_management_canister_types::CanisterInfoArgs {
        canister_id: of,
        num_requested_changes: Some(20),
    };
    let call = CallArgs::new(management(), "canister_info", Encode!(&args).unwrap());
    probe_call(sim, caller, call).reply()
}

/// A running canister is snapshotted and loaded as it runs; the load bumps the version by one
/// and is recorded in the canister's history.
#[test]
fn running_canisters_are_snapshotted_and_loaded_as_the_replica_does() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let observer = new_probe(&sim);
    inc(&sim, id);
    let snapshot = sim.take_canister_snapshot(id, None, None).unwrap();
    inc(&sim, id);
    let version = sim.canister_status(id, None).unwrap().version;
    sim.load_canister_snapshot(id, None, snapshot.id.clone())
        .unwrap();
    let status = sim.canister_status(id, None).unwrap();
    assert_eq!(status.status, CanisterStatusType::Running, "never stopped");
    assert_eq!(status.version, version + 1, "one version per load");
    assert_eq!(read(&sim, id), 1, "the snapshot's heap");
    let info = canister_info(&sim, observer, id);
    match info.recent_changes.last().and_then(|c| c.details.clone()) {
        Some(ic_management_canister_types::ChangeDetails::LoadSnapshot(load)) => {
            assert_eq!(load.snapshot_id, snapshot.id);
            assert_eq!(load.taken_at_timestamp, snapshot.taken_at_timestamp);
            assert_eq!(load.from_canister_id, None);
        }
        other => panic!("the last change is not the load: {other:?}"),
    }
    assert_eq!(
        info.recent_changes.last().unwrap().canister_version,
        version + 1
    );
}

/// The hazard a supervisor must handle: after a load, the snapshot's ic-cdk-timers queue is
/// back in the heap but the global timer is still the live one, so the snapshot's due timer does
/// not run until the live deadline (here 1000 s away).
#[test]
fn a_load_keeps_the_live_global_timer_so_the_snapshot_timers_wait() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    update::<()>(&sim, id, "set_timer", Encode!(&10u64).unwrap()).unwrap();
    let snapshot = sim.take_canister_snapshot(id, None, None).unwrap();
    sim.run_for(Duration::from_secs(11));
    assert_eq!(timers_fired(&sim, id), 1, "the live timer fired");
    update::<()>(&sim, id, "set_timer", Encode!(&1000u64).unwrap()).unwrap();
    sim.load_canister_snapshot(id, None, snapshot.id).unwrap();
    assert_eq!(
        timers_fired(&sim, id),
        0,
        "the snapshot's heap: its timer not yet run"
    );
    sim.run_for(Duration::from_secs(500));
    assert_eq!(
        timers_fired(&sim, id),
        0,
        "overdue, but the global timer is the live one"
    );
    sim.run_for(Duration::from_secs(600));
    assert_eq!(timers_fired(&sim, id), 1, "runs at the live deadline");
}

/// A controller of both canisters may load one canister's snapshot onto the other; the
/// history names where it came from.
#[test]
fn a_controller_of_both_loads_one_canisters_snapshot_onto_another() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    let observer = new_probe(&sim);
    inc(&sim, a);
    inc(&sim, a);
    let of_a = sim.take_canister_snapshot(a, None, None).unwrap();
    sim.load_canister_snapshot(b, None, of_a.id.clone())
        .unwrap();
    assert_eq!(read(&sim, b), 2, "b runs a's state");
    match canister_info(&sim, observer, b)
        .recent_changes
        .last()
        .and_then(|c| c.details.clone())
    {
        Some(ic_management_canister_types::ChangeDetails::LoadSnapshot(load)) => {
            assert_eq!(load.from_canister_id, Some(a));
        }
        other => panic!("{other:?}"),
    }
}

// ---- downloading and uploading snapshots (item 4) ---------------------------------------------

use ic_management_canister_types as mgmt;

fn mgmt_update<T: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
    sim: &Sim,
    method: &str,
    args: &T,
) -> Result<R, RejectResponse> {
    sim.update_call(
        management(),
        Principal::anonymous(),
        method,
        Encode!(args).unwrap(),
    )
    .map(|bytes| Decode!(&bytes, R).unwrap())
}

fn download(
    sim: &Sim,
    id: Principal,
    snapshot: &[u8],
    kind: fn(u64, u64) -> mgmt::SnapshotDataKind,
    len: u64,
) -> Vec<u8> {
    let mut out = Vec::new();
    while (out.len() as u64) < len {
        let size = (len - out.len() as u64).min(1_000_000);
        let args = mgmt::ReadCanisterSnapshotDataArgs {
            canister_id: id,
            snapshot_id: snapshot.to_vec(),
            kind: kind(out.len() as u64, size),
        };
        let chunk: mgmt::ReadCanisterSnapshotDataResult =
            mgmt_update(sim, "read_canister_snapshot_data", &args).unwrap();
        out.extend(chunk.chunk);
    }
    out
}

/// A snapshot read out in slices and uploaded to another canister loads there with the same
/// state; a snapshot taken from a canister cannot be written (IC0409); slices are bounded
/// (IC0408).
#[test]
fn snapshots_download_and_upload() {
    let sim = Sim::new();
    let source = new_probe(&sim);
    let target = new_probe(&sim);
    inc(&sim, source);
    inc(&sim, source);
    stable_inc(&sim, source);
    let taken = sim.take_canister_snapshot(source, None, None).unwrap();
    let read_meta = mgmt::ReadCanisterSnapshotMetadataArgs {
        canister_id: source,
        snapshot_id: taken.id.clone(),
    };
    let meta: mgmt::ReadCanisterSnapshotMetadataResult =
        mgmt_update(&sim, "read_canister_snapshot_metadata", &read_meta).unwrap();
    assert_eq!(
        meta.source,
        Some(mgmt::SnapshotSource::TakenFromCanister(candid::Reserved))
    );
    assert_eq!(meta.wasm_module_size, probe_wasm().len() as u64);
    let wasm = download(
        &sim,
        source,
        &taken.id,
        |offset, size| mgmt::SnapshotDataKind::WasmModule { offset, size },
        meta.wasm_module_size,
    );
    assert_eq!(wasm, probe_wasm(), "the module reads back as uploaded");
    let memory = download(
        &sim,
        source,
        &taken.id,
        |offset, size| mgmt::SnapshotDataKind::WasmMemory { offset, size },
        meta.wasm_memory_size,
    );
    let stable = download(
        &sim,
        source,
        &taken.id,
        |offset, size| mgmt::SnapshotDataKind::StableMemory { offset, size },
        meta.stable_memory_size,
    );

    let too_large = mgmt::ReadCanisterSnapshotDataArgs {
        canister_id: source,
        snapshot_id: taken.id.clone(),
        kind: mgmt::SnapshotDataKind::WasmMemory {
            offset: 0,
            size: 3_000_000,
        },
    };
    expect_reject(
        mgmt_update::<_, mgmt::ReadCanisterSnapshotDataResult>(
            &sim,
            "read_canister_snapshot_data",
            &too_large,
        ),
        RejectCode::CanisterReject,
        ErrorCode::InvalidManagementPayload,
        &["Requested slice too large: 3000000 > 2000000"],
    );

    let deadline = now(&sim) + 5_000_000_000;
    let upload = mgmt::UploadCanisterSnapshotMetadataArgs {
        canister_id: target,
        replace_snapshot: None,
        wasm_module_size: meta.wasm_module_size,
        globals: meta.globals.iter().map(|g| g.clone().unwrap()).collect(),
        wasm_memory_size: meta.wasm_memory_size,
        stable_memory_size: meta.stable_memory_size,
        certified_data: meta.certified_data.clone(),
        global_timer: Some(mgmt::CanisterTimer::Active(deadline)),
        on_low_wasm_memory_hook_status: None,
    };
    let uploaded: mgmt::UploadCanisterSnapshotMetadataResult =
        mgmt_update(&sim, "upload_canister_snapshot_metadata", &upload).unwrap();
    for (kind, bytes) in [("module", &wasm), ("memory", &memory), ("stable", &stable)] {
        for (i, chunk) in bytes.chunks(1_000_000).enumerate() {
            let offset = (i * 1_000_000) as u64;
            let kind = match kind {
                "module" => mgmt::SnapshotDataOffset::WasmModule { offset },
                "memory" => mgmt::SnapshotDataOffset::WasmMemory { offset },
                _ => mgmt::SnapshotDataOffset::StableMemory { offset },
            };
            let args = mgmt::UploadCanisterSnapshotDataArgs {
                canister_id: target,
                snapshot_id: uploaded.snapshot_id.clone(),
                kind,
                chunk: chunk.to_vec(),
            };
            mgmt_update::<_, ()>(&sim, "upload_canister_snapshot_data", &args).unwrap();
        }
    }
    sim.load_canister_snapshot(target, None, uploaded.snapshot_id.clone())
        .unwrap();
    assert_eq!(read(&sim, target), 2, "the heap came across");
    assert_eq!(stable_read(&sim, target), 1, "stable memory came across");

    let write_taken = mgmt::UploadCanisterSnapshotDataArgs {
        canister_id: source,
        snapshot_id: taken.id.clone(),
        kind: mgmt::SnapshotDataOffset::WasmMemory { offset: 0 },
        chunk: vec![1],
    };
    expect_reject(
        mgmt_update::<_, ()>(&sim, "upload_canister_snapshot_data", &write_taken),
        RejectCode::CanisterReject,
        ErrorCode::CanisterSnapshotImmutable,
        &["Only canister snapshots created by metadata upload can be mutated."],
    );
}

/// An uploaded snapshot's global timer is restored on load (only uploaded ones: the replica
/// restores it "if snapshot.source() == SnapshotSource::MetadataUpload").
#[test]
fn an_uploaded_snapshot_restores_its_global_timer() {
    let sim = Sim::new();
    let source = new_wat(&sim, "global_timer");
    let target = new_wat(&sim, "global_timer");
    let deadline = now(&sim) + 10_000_000_000;
    wat_timer_set(&sim, source, deadline);
    let taken = sim.take_canister_snapshot(source, None, None).unwrap();
    let meta: mgmt::ReadCanisterSnapshotMetadataResult = mgmt_update(
        &sim,
        "read_canister_snapshot_metadata",
        &mgmt::ReadCanisterSnapshotMetadataArgs {
            canister_id: source,
            snapshot_id: taken.id.clone(),
        },
    )
    .unwrap();
    assert!(
        matches!(meta.global_timer, Some(mgmt::CanisterTimer::Active(t)) if t == deadline),
        "{:?}",
        meta.global_timer
    );
    let wasm = download(
        &sim,
        source,
        &taken.id,
        |offset, size| mgmt::SnapshotDataKind::WasmModule { offset, size },
        meta.wasm_module_size,
    );
    let memory = download(
        &sim,
        source,
        &taken.id,
        |offset, size| mgmt::SnapshotDataKind::WasmMemory { offset, size },
        meta.wasm_memory_size,
    );
    let upload = mgmt::UploadCanisterSnapshotMetadataArgs {
        canister_id: target,
        replace_snapshot: None,
        wasm_module_size: meta.wasm_module_size,
        globals: meta.globals.iter().map(|g| g.clone().unwrap()).collect(),
        wasm_memory_size: meta.wasm_memory_size,
        stable_memory_size: 0,
        certified_data: vec![],
        global_timer: meta.global_timer.clone(),
        on_low_wasm_memory_hook_status: None,
    };
    let uploaded: mgmt::UploadCanisterSnapshotMetadataResult =
        mgmt_update(&sim, "upload_canister_snapshot_metadata", &upload).unwrap();
    for (kind, bytes) in [
        (mgmt::SnapshotDataOffset::WasmModule { offset: 0 }, wasm),
        (mgmt::SnapshotDataOffset::WasmMemory { offset: 0 }, memory),
    ] {
        let args = mgmt::UploadCanisterSnapshotDataArgs {
            canister_id: target,
            snapshot_id: uploaded.snapshot_id.clone(),
            kind,
            chunk: bytes,
        };
        mgmt_update::<_, ()>(&sim, "upload_canister_snapshot_data", &args).unwrap();
    }
    assert_eq!(
        wat_timer_set(&sim, target, 0),
        0,
        "no timer before the load"
    );
    sim.load_canister_snapshot(target, None, uploaded.snapshot_id)
        .unwrap();
    assert_eq!(
        wat_timer_set(&sim, target, 0),
        deadline,
        "restored from the metadata"
    );
}
