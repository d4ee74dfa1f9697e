//! Repository and service: the logical state digest (`state_digest`), kept up to date on every
//! write (MemoryId `DIGEST`), so reading it costs the same at a million records as at ten. The
//! record encoding and the order-independent sum are `canister_api::digest`'s; the repositories
//! of tasks and facts report every change here ([`task_changed`], [`fact_changed`]), the journal
//! every transition ([`transition_recorded`]).
//!
//! # Layout (layout version 1)
//!
//! ```text
//! 0          8         12         16       24       32       40            48        56            120
//! +----------+---------+----------+--------+--------+--------+-------------+---------+-------------+
//! | AGDIGEST | layout  | reserved | token  | tasks  | facts  | transitions | pending | record sum  |
//! |          | u32 LE  | u32 = 0  | u64 LE | u64 LE | u64 LE | u64 LE      | u64 LE  | 64 bytes LE |
//! +----------+---------+----------+--------+--------+--------+-------------+---------+-------------+
//! ```
//!
//! The cell also keeps the number of pending tasks (`health.pending_tasks`), for the same
//! reason: `health` is polled every few seconds and must not scan the queue.
//!
//! # When the kept digest is trusted
//!
//! The cell is trusted only when its `token` equals `Markers::digest_token`. Every build that
//! keeps the digest writes both together. A build that does not (any build before this cell
//! existed) rewrites the markers at every boot (`sandbox::record_identity`) without the field it
//! does not know, so after such a build ran, the tokens differ, and boot recounts the digest
//! from the records (`recount`), once. (Migration steps rewrite no record. A candidate whose
//! code changes records behind the digest's back is caught by the rehearsal, which checks the
//! digest against the records it reads.)

use crate::api::{StateDigest, Task, TaskStatus};
use crate::memory::{self, Mem};
use crate::{audit, config, schema};
use canister_api::digest::{RecordSum, SUM_BYTES, fact_hash, task_hash};
use ic_stable_structures::Cell as StableCell;
use ic_stable_structures::Storable;
use ic_stable_structures::storable::Bound;
use std::borrow::Cow;
use std::cell::RefCell;

const MAGIC: &[u8; 8] = b"AGDIGEST";
const LAYOUT: u32 = 1;
const LEN: usize = 56 + SUM_BYTES;

/// What the cell holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DigestState {
    /// Matches `Markers::digest_token` while the cell can be trusted (0: never written).
    pub token: u64,
    /// Tasks stored.
    pub tasks: u64,
    /// Facts stored.
    pub facts: u64,
    /// Transitions in the upgrade journal.
    pub transitions: u64,
    /// Tasks in `Pending`.
    pub pending: u64,
    /// The sum of the records' hashes.
    pub sum: RecordSum,
}

impl Storable for DigestState {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        let mut out = Vec::with_capacity(LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&LAYOUT.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        for n in [
            self.token,
            self.tasks,
            self.facts,
            self.transitions,
            self.pending,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&self.sum.to_bytes());
        Cow::Owned(out)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.to_bytes().into_owned()
    }

    /// Anything that is not this layout reads as a never-written cell (token 0), which is
    /// never trusted.
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        if bytes.len() != LEN || &bytes[..8] != MAGIC || bytes[8..12] != LAYOUT.to_le_bytes() {
            return DigestState::default();
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        let sum: [u8; SUM_BYTES] = bytes[56..].try_into().expect("64 bytes");
        DigestState {
            token: u64_at(16),
            tasks: u64_at(24),
            facts: u64_at(32),
            transitions: u64_at(40),
            pending: u64_at(48),
            sum: RecordSum::from_bytes(&sum),
        }
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: LEN as u32,
        is_fixed_size: true,
    };
}

thread_local! {
    static CELL: RefCell<StableCell<DigestState, Mem>> = RefCell::new(StableCell::init(
        memory::get(memory::DIGEST),
        DigestState::default(),
    ));
}

fn get() -> DigestState {
    CELL.with(|c| *c.borrow().get())
}

fn update(f: impl FnOnce(&mut DigestState)) {
    CELL.with(|c| {
        let mut s = *c.borrow().get();
        f(&mut s);
        c.borrow_mut().set(s);
    });
}

/// Whether the kept digest can be trusted (see the module doc).
pub fn trusted() -> bool {
    let token = get().token;
    token != 0 && config::markers().digest_token == Some(token)
}

/// Replaces the kept digest with a recount of the records (its `token` is ignored: a new one
/// is drawn).
pub fn replace(recount: DigestState) {
    let token = get().token.wrapping_add(1).max(1);
    CELL.with(|c| c.borrow_mut().set(DigestState { token, ..recount }));
    config::update_markers(|m| m.digest_token = Some(token));
}

/// A task was added (`old` is `None`) or changed.
pub fn task_changed(old: Option<&Task>, new: &Task) {
    let pending = |t: &Task| t.status == TaskStatus::Pending;
    update(|s| {
        match old {
            Some(old) => {
                s.sum.remove(&task_hash(old));
                if pending(old) {
                    s.pending = s.pending.saturating_sub(1);
                }
            }
            None => s.tasks += 1,
        }
        s.sum.add(&task_hash(new));
        if pending(new) {
            s.pending += 1;
        }
    });
}

/// A task was removed (the canary's own).
pub fn task_removed(old: &Task) {
    update(|s| {
        s.sum.remove(&task_hash(old));
        s.tasks = s.tasks.saturating_sub(1);
        if old.status == TaskStatus::Pending {
            s.pending = s.pending.saturating_sub(1);
        }
    });
}

/// Tasks in `Pending`.
pub fn pending() -> u64 {
    get().pending
}

/// A fact was added, replaced (`old` and `new`) or removed (`new` is `None`).
pub fn fact_changed(namespace: &str, key: &str, old: Option<&str>, new: Option<&str>) {
    if old.is_none() && new.is_none() {
        return;
    }
    update(|s| {
        if let Some(old) = old {
            s.sum.remove(&fact_hash(namespace, key, old));
            s.facts = s.facts.saturating_sub(1);
        }
        if let Some(new) = new {
            s.sum.add(&fact_hash(namespace, key, new));
            s.facts += 1;
        }
    });
}

/// The journal recorded a transition.
pub fn transition_recorded() {
    update(|s| s.transitions += 1);
}

/// The digest of the state as it is now.
pub fn compute() -> StateDigest {
    let start = ic_cdk::api::performance_counter(0);
    let s = get();
    StateDigest {
        schema_version: schema::stored_version(),
        tasks: s.tasks,
        facts: s.facts,
        sha256: s.sum.sha256(s.tasks, s.facts),
        journal_transitions: Some(s.transitions),
        audit_next: Some(audit::next_seq()),
        instructions: ic_cdk::api::performance_counter(0) - start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cell_bytes_are_golden_and_foreign_bytes_are_never_trusted() {
        let mut sum = RecordSum::default();
        sum.add(&[1; SUM_BYTES]);
        let s = DigestState {
            token: 7,
            tasks: 2,
            facts: 3,
            transitions: 4,
            pending: 1,
            sum,
        };
        let bytes = s.to_bytes().into_owned();
        let mut golden = b"AGDIGEST\x01\0\0\0\0\0\0\0".to_vec();
        for n in [7u64, 2, 3, 4, 1] {
            golden.extend_from_slice(&n.to_le_bytes());
        }
        golden.extend_from_slice(&[1; SUM_BYTES]);
        assert_eq!(bytes, golden);
        assert_eq!(DigestState::from_bytes(Cow::Owned(bytes)), s);
        let foreign = DigestState::from_bytes(Cow::Borrowed(&[0u8; LEN]));
        assert_eq!(foreign.token, 0);
    }
}
