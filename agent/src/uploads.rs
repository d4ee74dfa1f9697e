//! Repository: chunks of uploads in progress (MemoryId `UPLOADS`), one upload per [`WasmKind`].
//!
//! Chunks are appended in arrival order; `commit_wasm` concatenates and checks them, then clears
//! them whatever the outcome. Kept in stable memory so an upload survives an upgrade.

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

fn tag(kind: WasmKind) -> u8 {
    match kind {
        WasmKind::Running => 0,
        WasmKind::Watchdog => 1,
        WasmKind::Release => 2,
    }
}

/// Chunks and bytes of the upload of `kind`.
pub fn progress(kind: WasmKind) -> UploadProgress {
    UPLOADS.with(|u| {
        let map = u.borrow();
        let t = tag(kind);
        let (chunks, bytes) = map
            .range((t, 0)..=(t, u32::MAX))
            .fold((0u32, 0u64), |(c, b), e| {
                (c + 1, b + e.value().len() as u64)
            });
        UploadProgress {
            kind,
            chunks,
            bytes,
        }
    })
}

/// Appends a chunk (the caller checked the limits).
pub fn append(kind: WasmKind, chunk: Vec<u8>) -> UploadProgress {
    let before = progress(kind);
    UPLOADS.with(|u| u.borrow_mut().insert((tag(kind), before.chunks), chunk));
    progress(kind)
}

/// The upload's bytes, concatenated.
pub fn bytes(kind: WasmKind) -> Vec<u8> {
    UPLOADS.with(|u| {
        let t = tag(kind);
        let mut out = Vec::new();
        for e in u.borrow().range((t, 0)..=(t, u32::MAX)) {
            out.extend_from_slice(&e.value());
        }
        out
    })
}

/// Drops the upload of `kind`.
pub fn clear(kind: WasmKind) {
    UPLOADS.with(|u| {
        let t = tag(kind);
        let mut map = u.borrow_mut();
        let keys: Vec<(u8, u32)> = map.keys_range((t, 0)..=(t, u32::MAX)).collect();
        for k in keys {
            map.remove(&k);
        }
    });
}
