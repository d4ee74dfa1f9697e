//! Repository: the version store. Module bytes by hash (MemoryId `BLOBS`, in 1 MiB pieces) and
//! one [`VersionInfo`] per module (`VERSIONS`): the running module, candidates with their
//! lineage, operator releases and the watchdog's module. Which one is running, LKG, previous
//! LKG or the watchdog is in the markers cell (`config::Markers`).
//!
//! The store is bounded ([`enforce_retention`], run whenever a version is added or an upgrade
//! ends): the
//! protected versions (running, LKG, previous LKG, the candidate in flight and its parent, the
//! committed release, the watchdog's module) stay, and of the others only the newest
//! `Config::keep_versions` do; the rest are evicted, each with an audit entry.

use crate::api::{DEFAULT_KEEP_VERSIONS, VersionInfo, VersionPage};
use crate::memory::{self, Candid, Mem};
use crate::{audit, config, journal};
use canister_api::page;
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
    let hash = canister_api::hash32(&info.hash);
    info.is_running = hash.is_some() && markers.running == hash;
    info.is_lkg = hash.is_some() && markers.lkg == hash;
    info
}

/// A page of versions in hash order from `from` on (at most `limit`, see
/// `canister_api::page`).
pub fn page(from: Option<[u8; 32]>, limit: u32) -> VersionPage {
    VERSIONS.with(|v| {
        let map = v.borrow();
        let items = map.range(from.unwrap_or([0; 32])..).map(|e| {
            let (hash, info) = e.into_pair();
            (hash.to_vec(), flagged(info.0))
        });
        let (versions, next_from) = page::collect(items, limit, page::PAGE_BYTES);
        VersionPage {
            versions,
            next_from,
        }
    })
}

/// Every version, oldest first.
pub fn list() -> Vec<VersionInfo> {
    let mut all: Vec<VersionInfo> =
        VERSIONS.with(|v| v.borrow().values().map(|c| flagged(c.0)).collect());
    all.sort_by_key(|v| v.created_at);
    all
}

/// The versions that are never evicted.
fn protected() -> Vec<[u8; 32]> {
    let m = config::markers();
    let mut keep: Vec<[u8; 32]> = [m.running, m.lkg, m.previous_lkg, m.watchdog, m.release]
        .into_iter()
        .flatten()
        .collect();
    if let Some(rec) = journal::in_flight().and_then(journal::get) {
        for hash in [Some(rec.candidate_hash), rec.parent_hash]
            .into_iter()
            .flatten()
        {
            keep.extend(canister_api::hash32(&hash));
        }
    }
    keep
}

/// Removes a version: its record and its bytes.
fn evict(hash: &[u8; 32]) -> Option<VersionInfo> {
    let info = VERSIONS.with(|v| v.borrow_mut().remove(hash))?.0;
    BLOBS.with(|b| {
        let mut map = b.borrow_mut();
        let pieces: Vec<_> = map.keys_range((*hash, 0)..=(*hash, u32::MAX)).collect();
        for key in pieces {
            map.remove(&key);
        }
    });
    Some(info)
}

/// Keeps the protected versions and the newest `Config::keep_versions` others; evicts the rest
/// (audited). Answers the versions evicted.
pub fn enforce_retention() -> Vec<VersionInfo> {
    let keep = config::get().keep_versions.unwrap_or(DEFAULT_KEEP_VERSIONS) as usize;
    let protected = protected();
    let mut others: Vec<([u8; 32], u64)> = VERSIONS.with(|v| {
        v.borrow()
            .iter()
            .map(|e| {
                let (hash, info) = e.into_pair();
                (hash, info.0.created_at)
            })
            .filter(|(hash, _)| !protected.contains(hash))
            .collect()
    });
    others.sort_by_key(|(hash, created_at)| std::cmp::Reverse((*created_at, *hash)));
    let mut evicted = vec![];
    for (hash, _) in others.into_iter().skip(keep) {
        if let Some(info) = evict(&hash) {
            audit::append(
                ic_cdk::api::time(),
                ic_cdk::api::canister_self(),
                "versions.evicted",
                info.upgrade_id,
                format!(
                    "{} {} ({} bytes): more than {keep} unprotected versions are stored",
                    info.version,
                    hex::encode(hash),
                    info.size
                ),
            );
            evicted.push(info);
        }
    }
    evicted
}

/// Bytes of module the store holds (the sum of the stored versions' sizes).
pub fn stored_bytes() -> u64 {
    VERSIONS.with(|v| v.borrow().values().map(|info| info.0.size).sum())
}
