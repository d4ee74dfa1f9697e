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
