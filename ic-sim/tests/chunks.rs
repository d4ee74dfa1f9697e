//! The Wasm chunk store and install_chunked_code (IC-SEMANTICS.md, "Chunks").

mod common;

use common::*;
use ic_management_canister_types::{ChunkHash, UploadChunkArgs};

/// Fidelity check (first half): upload_chunk returns the chunk's SHA-256 and is idempotent.
#[test]
fn upload_chunk_returns_sha256_and_is_idempotent() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let chunk = b"a chunk of something".to_vec();
    let first = sim.upload_chunk(id, None, chunk.clone()).unwrap();
    let second = sim.upload_chunk(id, None, chunk.clone()).unwrap();
    assert_eq!(first, sha256(&chunk).to_vec());
    assert_eq!(second, first);
    assert_eq!(
        sim.stored_chunks(id, None).unwrap(),
        vec![first],
        "stored once"
    );
}

/// A chunk over 1 MiB is refused (IC0504); exactly 1 MiB is fine.
#[test]
fn chunk_over_1_mib_is_refused() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    sim.upload_chunk(id, None, vec![1; 1 << 20])
        .expect("1 MiB is allowed");
    let result = sim.upload_chunk(id, None, vec![2; (1 << 20) + 1]);
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterContractViolation,
        &[
            "Error from Wasm chunk store: Wasm chunk size 1048577 exceeds the maximum chunk size of 1048576.",
        ],
    );
}

/// clear_chunk_store empties the store.
#[test]
fn clear_chunk_store_empties_it() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    sim.upload_chunk(id, None, vec![1]).unwrap();
    sim.upload_chunk(id, None, vec![2]).unwrap();
    assert_eq!(sim.stored_chunks(id, None).unwrap().len(), 2);
    sim.clear_chunk_store(id, None).unwrap();
    assert!(sim.stored_chunks(id, None).unwrap().is_empty());
}

fn upload_in_chunks(sim: &Sim, store: Principal, wasm: &[u8]) -> Vec<Vec<u8>> {
    wasm.chunks(wasm.len() / 3 + 1)
        .map(|chunk| sim.upload_chunk(store, None, chunk.to_vec()).unwrap())
        .collect()
}

/// Fidelity check (second half): install_chunked_code checks wasm_module_hash against the
/// concatenation of the chunks (IC0504 on mismatch); with the right hash it installs.
#[test]
fn install_chunked_code_checks_the_hash() {
    let sim = Sim::new();
    let id = new_empty(&sim);
    let wasm = probe_wasm();
    let hashes = upload_in_chunks(&sim, id, &wasm);
    assert_eq!(hashes.len(), 3);

    let wrong = sha256(b"not the module").to_vec();
    let result = sim.install_chunked_canister(
        id,
        None,
        CanisterInstallMode::Install,
        id,
        hashes.clone(),
        wrong,
        no_init(),
    );
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterContractViolation,
        &[
            "Error from Wasm chunk store: Wasm module hash",
            "does not match given hash",
        ],
    );
    assert_eq!(sim.module_hash(id), None);

    sim.install_chunked_canister(
        id,
        None,
        CanisterInstallMode::Install,
        id,
        hashes,
        sha256(&wasm).to_vec(),
        no_init(),
    )
    .unwrap();
    assert_eq!(sim.module_hash(id), Some(sha256(&wasm)));
    assert_eq!(inc(&sim, id), 1);
}

/// install_chunked_code with a chunk that is not in the store: IC0504.
#[test]
fn install_chunked_code_with_a_missing_chunk_is_refused() {
    let sim = Sim::new();
    let id = new_empty(&sim);
    let wasm = probe_wasm();
    let mut hashes = upload_in_chunks(&sim, id, &wasm);
    hashes[1] = sha256(b"never uploaded").to_vec();
    let result = sim.install_chunked_canister(
        id,
        None,
        CanisterInstallMode::Install,
        id,
        hashes,
        sha256(&wasm).to_vec(),
        no_init(),
    );
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterContractViolation,
        &["Error from Wasm chunk store: Chunk hash", "was not found"],
    );
}

/// install_chunked_code may take the chunks from another store canister of the same controller.
#[test]
fn install_chunked_code_from_another_store_canister() {
    let sim = Sim::new();
    let store = new_empty(&sim);
    let target = new_probe(&sim);
    inc(&sim, target);
    let wasm = probe_wasm_gz();
    let hashes = upload_in_chunks(&sim, store, &wasm);
    sim.install_chunked_canister(
        target,
        None,
        CanisterInstallMode::Upgrade(None),
        store,
        hashes,
        sha256(&wasm).to_vec(),
        no_init(),
    )
    .unwrap();
    assert_eq!(sim.module_hash(target), Some(sha256(&wasm)));
    assert_eq!(read(&sim, target), 1, "an upgrade keeps the state");
}

/// The canister itself may use its chunk store (upload_chunk, stored_chunks) without being its
/// own controller.
#[test]
fn the_canister_itself_may_upload_chunks() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let upload = UploadChunkArgs {
        canister_id: id,
        chunk: b"from inside".to_vec(),
    };
    let hash: ChunkHash = probe_call(
        &sim,
        id,
        CallArgs::new(management(), "upload_chunk", Encode!(&upload).unwrap()),
    )
    .reply();
    assert_eq!(hash.hash, sha256(b"from inside").to_vec());
    let record = ic_management_canister_types::CanisterIdRecord { canister_id: id };
    let stored: Vec<ChunkHash> = probe_call(
        &sim,
        id,
        CallArgs::new(management(), "stored_chunks", Encode!(&record).unwrap()),
    )
    .reply();
    assert_eq!(stored, vec![hash]);
}
