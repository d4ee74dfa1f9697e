//! Repository: the upgrade journal (MemoryId `JOURNAL`): one [`UpgradeRecord`] per upgrade.
//! Every state change goes through [`transition`], which appends to the record's history and to
//! the audit log. Storing a finished record ([`put`]) lifts its write pause: whatever path ends
//! an upgrade (a verdict, a failure, an operator's rejection), domain writes resume with it.

use crate::api::{Transition, UpgradePage, UpgradeRecord, UpgradeState};
use crate::memory::{self, Candid, Mem};
use crate::writes;
use crate::{audit, digest};
use candid::Principal;
use canister_api::page;
use ic_stable_structures::StableBTreeMap;
use std::cell::RefCell;

thread_local! {
    static JOURNAL: RefCell<StableBTreeMap<u64, Candid<UpgradeRecord>, Mem>> =
        RefCell::new(StableBTreeMap::init(memory::get(memory::JOURNAL)));
}

/// The next id.
pub fn next_id() -> u64 {
    JOURNAL.with(|j| j.borrow().last_key_value().map_or(1, |(k, _)| k + 1))
}

/// Stores a record as it is (its history already holds its transitions); a finished record's
/// write pause is lifted.
pub fn put(record: &UpgradeRecord) {
    JOURNAL.with(|j| j.borrow_mut().insert(record.id, Candid(record.clone())));
    // Mutant (issue 12 item 1 reverted): ending an upgrade leaves its pause in force.
    if record.state.is_terminal() && !cfg!(feature = "mutant-end-lifts-pause") {
        writes::lift(record.id);
    }
}

/// The record `id`.
pub fn get(id: u64) -> Option<UpgradeRecord> {
    JOURNAL.with(|j| j.borrow().get(&id).map(|c| c.0))
}

/// The newest record.
pub fn latest() -> Option<UpgradeRecord> {
    JOURNAL.with(|j| j.borrow().last_key_value().map(|(_, c)| c.0))
}

/// A page of records with id >= `from` (at most `limit`, see `canister_api::page`).
pub fn page(from: u64, limit: u32) -> UpgradePage {
    JOURNAL.with(|j| {
        let map = j.borrow();
        let items = map.range(from..).map(|e| {
            let (id, record) = e.into_pair();
            (id, record.0)
        });
        let (records, next_from) = page::collect(items, limit, page::PAGE_BYTES);
        UpgradePage { records, next_from }
    })
}

/// The upgrade in flight when it is `Armed` or `Installing`: the agent is about to install it
/// and starts no outgoing call (`pipeline::quiet`).
pub fn installing() -> Option<u64> {
    in_flight()
        .and_then(get)
        .filter(|r| matches!(r.state, UpgradeState::Armed | UpgradeState::Installing))
        .map(|r| r.id)
}

/// The record not in a terminal state, if any (at most one by the gate's rule).
pub fn in_flight() -> Option<u64> {
    JOURNAL.with(|j| {
        j.borrow()
            .iter()
            .rev()
            .map(|e| e.value().0)
            .find(|r| !r.state.is_terminal())
            .map(|r| r.id)
    })
}

/// Creation times of records created at or after `since`.
pub fn created_since(since: u64) -> Vec<u64> {
    JOURNAL.with(|j| {
        j.borrow()
            .iter()
            .rev()
            .map(|e| e.value().0.created_at)
            .take_while(|t| *t >= since)
            .collect()
    })
}

/// Rollbacks recorded at or after `since` (the circuit breaker counts these).
pub fn rollbacks_since(since: u64) -> u32 {
    JOURNAL.with(|j| {
        j.borrow()
            .iter()
            .flat_map(|e| e.value().0.history)
            .filter(|t| t.at >= since && matches!(t.state, UpgradeState::RolledBack(_)))
            .count() as u32
    })
}

/// Transitions of every record (a scan: for recounting the digest).
pub fn transitions_total() -> u64 {
    JOURNAL.with(|j| j.borrow().values().map(|r| r.0.history.len() as u64).sum())
}

/// Name of a state for the audit log (`upgrade.validated`, `upgrade.rejected`...).
pub fn state_name(state: &UpgradeState) -> &'static str {
    match state {
        UpgradeState::Proposed => "proposed",
        UpgradeState::Patched => "patched",
        UpgradeState::Validated => "validated",
        UpgradeState::Rehearsed => "rehearsed",
        UpgradeState::Approved => "approved",
        UpgradeState::Armed => "armed",
        UpgradeState::Installing => "installing",
        UpgradeState::Booted => "booted",
        UpgradeState::Committed => "committed",
        UpgradeState::Rejected(_) => "rejected",
        UpgradeState::Failed(_) => "failed",
        UpgradeState::RolledBack(_) => "rolled_back",
    }
}

/// Moves `record` to `state` (history + audit log). The caller stores the record.
pub fn transition(
    record: &mut UpgradeRecord,
    state: UpgradeState,
    at: u64,
    actor: Principal,
    reason: String,
) {
    audit::append(
        at,
        actor,
        &format!("upgrade.{}", state_name(&state)),
        Some(record.id),
        reason.clone(),
    );
    digest::transition_recorded();
    record.history.push(Transition {
        state: state.clone(),
        at,
        actor,
        reason,
    });
    record.state = state;
}
