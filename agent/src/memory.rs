//! Every stable-memory region of the agent: one [`MemoryId`] per store, declared once here.
//!
//! Ids are never reused: a retired store keeps its line with a comment, because an old image may
//! still hold its bytes. The MemoryManager uses 16-page (1 MiB) buckets instead of the default
//! 128 pages (8 MiB), so a fresh agent's stable memory is about a dozen MiB, not a hundred
//! (the bucket size is fixed in the manager's header when it is first created).
//!
//! | id | store | type | since |
//! | --- | --- | --- | --- |
//! | 0 | schema header | raw, see `migrations::header` | v1 |
//! | 1 | tasks | `BTreeMap<u64, task record>` | v1 |
//! | 2 | facts_v1 | `BTreeMap<String, String>`; from v3 on read as namespace `default` and drained as its facts are written again (never written to) | v1 |
//! | 3 | facts | `BTreeMap<FactKey, String>` | v3 |
//! | 4 | config | `Cell<Config>` (candid) | v1 |
//! | 5 | markers | `Cell<Markers>` (candid): running, LKG and watchdog hashes, last error | v1 |
//! | 6 | uploads | `BTreeMap<(kind u8, chunk u32), Vec<u8>>`: chunks being uploaded | v1 |
//! | 7 | blobs | `BTreeMap<([u8; 32], u32), Vec<u8>>`: stored modules by hash, in 1 MiB pieces | v1 |
//! | 8 | versions | `BTreeMap<[u8; 32], VersionRecord>` (candid) | v1 |
//! | 9 | journal | `BTreeMap<u64, UpgradeRecord>` (candid) | v1 |
//! | 10 | audit | `BTreeMap<u64, AuditEntry>` (candid), bounded | v1 |
//! | 11 | digest | `Cell<DigestState>` (raw, see `digest`): the state digest kept up to date | v3 |
//!
//! Only ids 0-3 are part of the versioned schema (the `migrations` crate); the others hold
//! candid records whose new fields are always `opt`, which candid decodes from older bytes.

use ic_stable_structures::DefaultMemoryImpl;
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use std::cell::RefCell;

/// A virtual memory of the agent.
pub type Mem = VirtualMemory<DefaultMemoryImpl>;

/// Bucket size of the MemoryManager, in 64 KiB pages.
pub const BUCKET_PAGES: u16 = 16;

/// The schema header.
pub const HEADER: MemoryId = MemoryId::new(0);
/// The task queue.
pub const TASKS: MemoryId = MemoryId::new(1);
/// Facts of schemas 1-2; schema 3 reads them as namespace `default` until they are written
/// again.
pub const FACTS_V1: MemoryId = MemoryId::new(2);
/// Facts of schema 3, keyed by namespace and key.
pub const FACTS: MemoryId = MemoryId::new(3);
/// The configuration cell.
pub const CONFIG: MemoryId = MemoryId::new(4);
/// Module markers (running, LKG, watchdog) and the last error.
pub const MARKERS: MemoryId = MemoryId::new(5);
/// Chunks of uploads in progress.
pub const UPLOADS: MemoryId = MemoryId::new(6);
/// Stored modules, by hash.
pub const BLOBS: MemoryId = MemoryId::new(7);
/// Version records, by module hash.
pub const VERSIONS: MemoryId = MemoryId::new(8);
/// The upgrade journal.
pub const JOURNAL: MemoryId = MemoryId::new(9);
/// The audit log.
pub const AUDIT: MemoryId = MemoryId::new(10);
/// The state digest, kept up to date on every write.
pub const DIGEST: MemoryId = MemoryId::new(11);

thread_local! {
    static MANAGER: RefCell<Option<MemoryManager<DefaultMemoryImpl>>> = const { RefCell::new(None) };
}

/// The virtual memory `id`.
pub fn get(id: MemoryId) -> Mem {
    MANAGER.with(|m| {
        m.borrow_mut()
            .get_or_insert_with(|| {
                MemoryManager::init_with_bucket_size(DefaultMemoryImpl::default(), BUCKET_PAGES)
            })
            .get(id)
    })
}

/// The schema's stores, for `migrations::migrate`.
pub fn schema_stores() -> migrations::Stores<Mem> {
    migrations::Stores {
        header: get(HEADER),
        tasks: get(TASKS),
        facts_v1: get(FACTS_V1),
        facts: get(FACTS),
    }
}

pub use canister_api::stable::Candid;
