//! Repository: chunks of uploads in progress (MemoryId `UPLOADS`), one upload per [`WasmKind`],
//! and one more slot for the running module coming back from the watchdog (`handback`).
//!
//! Chunks are appended in arrival order; `commit_wasm` concatenates and checks them, then clears
//! them whatever the outcome. Kept in stable memory so an upload, and a handback, survive an
//! upgrade.

use crate::api::{UploadProgress, WasmKind};
use crate::memory::{self, Mem};
use ic_stable_structures::StableBTreeMap;
use std::cell::RefCell;

/// Largest chunk, like the management canister's `upload_chunk`.
pub const MAX_CHUNK: u64 = 1024 * 1024;
/// The IC's limit on an inter-canister request within a subnet: the `install_code` message
/// that carries a module (the agent's own install, staging's on its sandbox) must fit in it.
pub const MAX_REQUEST: u64 = 10 * 1024 * 1024;
/// Room left in that message for everything but the module: the candid envelope of
/// `install_code`'s argument (canister id, mode, the upgrade argument) with a wide margin.
pub const ENVELOPE: u64 = 64 * 1024;
/// Largest module (the bytes as uploaded, gzip or not), so that the `install_code` message
/// carrying it stays within [`MAX_REQUEST`].
pub const MAX_WASM: u64 = MAX_REQUEST - ENVELOPE;

thread_local! {
    static UPLOADS: RefCell<StableBTreeMap<(u8, u32), Vec<u8>, Mem>> =
        RefCell::new(StableBTreeMap::init(memory::get(memory::UPLOADS)));
}

/// The slot of the handback's chunks (never a [`WasmKind`]'s: an operator's `Running` upload
/// and the handback do not mix their chunks).
const HANDBACK: u8 = 3;

fn tag(kind: WasmKind) -> u8 {
    match kind {
        WasmKind::Running => 0,
        WasmKind::Watchdog => 1,
        WasmKind::Release => 2,
    }
}

fn totals(t: u8) -> (u32, u64) {
    UPLOADS.with(|u| {
        u.borrow()
            .range((t, 0)..=(t, u32::MAX))
            .fold((0u32, 0u64), |(c, b), e| {
                (c + 1, b + e.value().len() as u64)
            })
    })
}

fn push(t: u8, chunk: Vec<u8>) {
    let (chunks, _) = totals(t);
    UPLOADS.with(|u| u.borrow_mut().insert((t, chunks), chunk));
}

fn concat(t: u8) -> Vec<u8> {
    UPLOADS.with(|u| {
        let mut out = Vec::new();
        for e in u.borrow().range((t, 0)..=(t, u32::MAX)) {
            out.extend_from_slice(&e.value());
        }
        out
    })
}

fn drop_slot(t: u8) {
    UPLOADS.with(|u| {
        let mut map = u.borrow_mut();
        let keys: Vec<(u8, u32)> = map.keys_range((t, 0)..=(t, u32::MAX)).collect();
        for k in keys {
            map.remove(&k);
        }
    });
}

/// Chunks and bytes of the upload of `kind`.
pub fn progress(kind: WasmKind) -> UploadProgress {
    let (chunks, bytes) = totals(tag(kind));
    UploadProgress {
        kind,
        chunks,
        bytes,
    }
}

/// Appends a chunk (the caller checked the limits).
pub fn append(kind: WasmKind, chunk: Vec<u8>) -> UploadProgress {
    push(tag(kind), chunk);
    progress(kind)
}

/// The upload's bytes, concatenated.
pub fn bytes(kind: WasmKind) -> Vec<u8> {
    concat(tag(kind))
}

/// Drops the upload of `kind`.
pub fn clear(kind: WasmKind) {
    drop_slot(tag(kind));
}

/// Bytes of the running module the handback has received so far.
pub fn handback_bytes() -> u64 {
    totals(HANDBACK).1
}

/// Appends a piece the watchdog sent (the caller checked it against the offset and the total).
pub fn handback_append(chunk: Vec<u8>) {
    push(HANDBACK, chunk);
}

/// The handback's bytes, concatenated.
pub fn handback_received() -> Vec<u8> {
    concat(HANDBACK)
}

/// Drops the handback's bytes.
pub fn handback_clear() {
    drop_slot(HANDBACK);
}
