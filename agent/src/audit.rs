//! Repository: the audit log (MemoryId `AUDIT`): append-only, bounded, queried by range.
//!
//! Entries get consecutive sequence numbers from 0. When [`CAPACITY`] entries are kept, the
//! oldest is evicted on append; sequence numbers are never reused, so a reader can tell what it
//! missed (`AuditPage::oldest`).

use crate::api::{AuditEntry, AuditPage};
use crate::memory::{self, Candid, Mem};
use candid::Principal;
use canister_api::page;
use ic_stable_structures::StableBTreeMap;
use std::cell::RefCell;

/// Entries kept.
pub const CAPACITY: u64 = 10_000;
/// Entries per page.
pub const PAGE: u64 = 200;

thread_local! {
    static AUDIT: RefCell<StableBTreeMap<u64, Candid<AuditEntry>, Mem>> =
        RefCell::new(StableBTreeMap::init(memory::get(memory::AUDIT)));
}

/// Appends an entry; returns its sequence number.
pub fn append(
    at: u64,
    actor: Principal,
    action: &str,
    upgrade_id: Option<u64>,
    detail: String,
) -> u64 {
    AUDIT.with(|a| {
        let mut log = a.borrow_mut();
        let seq = log.last_key_value().map_or(0, |(k, _)| k + 1);
        log.insert(
            seq,
            Candid(AuditEntry {
                seq,
                at,
                actor,
                action: action.to_string(),
                upgrade_id,
                detail,
            }),
        );
        while log.len() > CAPACITY {
            log.pop_first();
        }
        seq
    })
}

/// The next sequence number to be written (entries ever written).
pub fn next_seq() -> u64 {
    AUDIT.with(|a| a.borrow().last_key_value().map_or(0, |(k, _)| k + 1))
}

/// Entries with `from <= seq < to`: a page of at most [`PAGE`] (see `canister_api::page`).
pub fn range(from: u64, to: u64) -> AuditPage {
    AUDIT.with(|a| {
        let log = a.borrow();
        let next = log.last_key_value().map_or(0, |(k, _)| k + 1);
        let oldest = log.first_key_value().map_or(next, |(k, _)| k);
        let (entries, next_from) = if from < to {
            let items = log.range(from..to).map(|e| {
                let (seq, entry) = e.into_pair();
                (seq, entry.0)
            });
            page::collect(items, PAGE as u32, page::PAGE_BYTES)
        } else {
            (vec![], None)
        };
        AuditPage {
            entries,
            oldest,
            next,
            next_from,
        }
    })
}
