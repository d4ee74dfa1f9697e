//! Repository: the version store. Module bytes by hash (MemoryId `BLOBS`, in 1 MiB pieces) and
//! one [`VersionInfo`] per module (`VERSIONS`): the running module, every candidate with its
//! lineage, operator releases and the watchdog's module. Which one is running, LKG or the
//! watchdog is in the markers cell (`config::Markers`).

use crate::api::VersionInfo;
use crate::config;
use crate::memory::{self, Candid, Mem};
use ic_stable_structures::StableBTreeMap;
use std::cell::RefCell;

const PIECE: usize = 1024 * 1024;

/// Module bytes: `(module hash, piece index) -> piece`.
type Blobs = StableBTreeMap<([u8; 32], u32), Vec<u8>, Mem>;

thread_local! {
    static BLOBS: RefCell<Blobs> =
        RefCell::new(StableBTreeMap::init(memory::get(memory::BLOBS)));
    static VERSIONS: RefCell<StableBTreeMap<[u8; 32], Candid<VersionInfo>, Mem>> =
        RefCell::new(StableBTreeMap::init(memory::get(memory::VERSIONS)));
}

/// Stores module bytes under their hash (idempotent).
pub fn put_blob(hash: [u8; 32], bytes: &[u8]) {
    BLOBS.with(|b| {
        let mut map = b.borrow_mut();
        if map.contains_key(&(hash, 0)) {
            return;
        }
        for (i, piece) in bytes.chunks(PIECE).enumerate() {
            map.insert((hash, i as u32), piece.to_vec());
        }
    });
}

/// Module bytes by hash.
pub fn blob(hash: &[u8; 32]) -> Option<Vec<u8>> {
    BLOBS.with(|b| {
        let map = b.borrow();
        let mut out = Vec::new();
        let mut found = false;
        for e in map.range((*hash, 0)..=(*hash, u32::MAX)) {
            found = true;
            out.extend_from_slice(&e.value());
        }
        found.then_some(out)
    })
}

/// Stores or replaces a version record.
pub fn put(hash: [u8; 32], info: VersionInfo) {
    VERSIONS.with(|v| v.borrow_mut().insert(hash, Candid(info)));
}

/// A version record, with its role flags as of now.
pub fn get(hash: &[u8; 32]) -> Option<VersionInfo> {
    VERSIONS.with(|v| v.borrow().get(hash).map(|c| flagged(c.0)))
}

fn flagged(mut info: VersionInfo) -> VersionInfo {
    let markers = config::markers();
    let hash: Option<[u8; 32]> = info.hash.as_slice().try_into().ok();
    info.is_running = hash.is_some() && markers.running == hash;
    info.is_lkg = hash.is_some() && markers.lkg == hash;
    info
}

/// Every version, oldest first.
pub fn list() -> Vec<VersionInfo> {
    let mut all: Vec<VersionInfo> =
        VERSIONS.with(|v| v.borrow().values().map(|c| flagged(c.0)).collect());
    all.sort_by_key(|v| v.created_at);
    all
}
