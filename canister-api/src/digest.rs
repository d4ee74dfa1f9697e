//! The logical state digest of the agent (`state_digest`): an order-independent hash of its
//! records (tasks and facts) that the agent keeps up to date on every write, so reading it costs
//! the same at a million records as at ten.
//!
//! Each record is hashed with SHA-512 over a canonical encoding that does not depend on the
//! stable-memory schema (all integers little-endian):
//!
//! ```text
//! task = b'T' id:u64 status:u8 priority:u8 created_at:u64 updated_at:u64 len:u32 description
//! fact = b'F' len:u32 namespace len:u32 key len:u32 value
//! ```
//!
//! status: 0 pending, 1 running, 2 done, 3 failed; priority: 0 low, 1 normal, 2 high. The
//! state's [`RecordSum`] is the sum of its records' hashes modulo 2^512 (an additive multiset
//! hash), so adding, removing or replacing one record is one addition or subtraction, in any
//! order. The published `sha256` is SHA-256 over `b"agent-state-v2"`, the task and fact counts
//! (u64 LE each) and the sum (64 bytes LE).
//!
//! The sum detects any accidental change (a change goes unseen only if the hashes of the
//! records it touched sum to the same value modulo 2^512, and the counts are exact). It is not
//! meant to withstand someone who crafts records to collide on purpose: additive set hashes
//! fall to generalized-birthday attacks far faster than their width suggests.
//!
//! Anyone holding the records can compute the same digest ([`RecordSum::add_task`],
//! [`RecordSum::add_fact`]): staging does, from the records its replay probe reads, to check
//! that the digest the agent keeps agrees with the records it holds.

use crate::agent::{Priority, Task, TaskStatus};
use sha2::{Digest, Sha256, Sha512};

/// Bytes of a [`RecordSum`].
pub const SUM_BYTES: usize = 64;

/// The sum of record hashes modulo 2^512 (8 little-endian u64 limbs, least significant first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordSum([u64; 8]);

fn limbs(hash: &[u8; SUM_BYTES]) -> [u64; 8] {
    let mut out = [0u64; 8];
    for (i, limb) in out.iter_mut().enumerate() {
        *limb = u64::from_le_bytes(hash[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    }
    out
}

fn put_str(h: &mut Sha512, s: &str) {
    h.update((s.len() as u32).to_le_bytes());
    h.update(s.as_bytes());
}

/// The hash of a task's canonical encoding.
pub fn task_hash(t: &Task) -> [u8; SUM_BYTES] {
    let mut h = Sha512::new();
    h.update([b'T']);
    h.update(t.id.to_le_bytes());
    h.update([match t.status {
        TaskStatus::Pending => 0u8,
        TaskStatus::Running => 1,
        TaskStatus::Done => 2,
        TaskStatus::Failed => 3,
    }]);
    h.update([match t.priority {
        Priority::Low => 0u8,
        Priority::Normal => 1,
        Priority::High => 2,
    }]);
    h.update(t.created_at.to_le_bytes());
    h.update(t.updated_at.to_le_bytes());
    put_str(&mut h, &t.description);
    h.finalize().into()
}

/// The hash of a fact's canonical encoding.
pub fn fact_hash(namespace: &str, key: &str, value: &str) -> [u8; SUM_BYTES] {
    let mut h = Sha512::new();
    h.update([b'F']);
    put_str(&mut h, namespace);
    put_str(&mut h, key);
    put_str(&mut h, value);
    h.finalize().into()
}

impl RecordSum {
    /// Adds a record's hash.
    pub fn add(&mut self, hash: &[u8; SUM_BYTES]) {
        let mut carry = false;
        for (limb, x) in self.0.iter_mut().zip(limbs(hash)) {
            let (a, c1) = limb.overflowing_add(x);
            let (b, c2) = a.overflowing_add(u64::from(carry));
            *limb = b;
            carry = c1 || c2;
        }
    }

    /// Subtracts a record's hash (the record is gone or replaced).
    pub fn remove(&mut self, hash: &[u8; SUM_BYTES]) {
        let mut borrow = false;
        for (limb, x) in self.0.iter_mut().zip(limbs(hash)) {
            let (a, b1) = limb.overflowing_sub(x);
            let (b, b2) = a.overflowing_sub(u64::from(borrow));
            *limb = b;
            borrow = b1 || b2;
        }
    }

    /// Adds a task.
    pub fn add_task(&mut self, task: &Task) {
        self.add(&task_hash(task));
    }

    /// Adds a fact.
    pub fn add_fact(&mut self, namespace: &str, key: &str, value: &str) {
        self.add(&fact_hash(namespace, key, value));
    }

    /// The sum's bytes (little-endian).
    pub fn to_bytes(self) -> [u8; SUM_BYTES] {
        let mut out = [0u8; SUM_BYTES];
        for (i, limb) in self.0.iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&limb.to_le_bytes());
        }
        out
    }

    /// A sum from its bytes.
    pub fn from_bytes(bytes: &[u8; SUM_BYTES]) -> RecordSum {
        RecordSum(limbs(bytes))
    }

    /// The published digest of a state with these counts and this sum.
    pub fn sha256(&self, tasks: u64, facts: u64) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(b"agent-state-v2");
        h.update(tasks.to_le_bytes());
        h.update(facts.to_le_bytes());
        h.update(self.to_bytes());
        h.finalize().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: u64, status: TaskStatus) -> Task {
        Task {
            id,
            description: format!("task {id}"),
            status,
            priority: Priority::Normal,
            created_at: id,
            updated_at: id + 1,
            answer: None,
            turn_id: None,
        }
    }

    #[test]
    fn the_sum_does_not_depend_on_the_order_and_undoes_exactly() {
        let mut a = RecordSum::default();
        a.add_task(&task(1, TaskStatus::Pending));
        a.add_fact("ns", "k", "v");
        a.add_task(&task(2, TaskStatus::Done));
        let mut b = RecordSum::default();
        b.add_task(&task(2, TaskStatus::Done));
        b.add_task(&task(1, TaskStatus::Pending));
        b.add_fact("ns", "k", "v");
        assert_eq!(a, b);
        // Replace a record and put it back: the same sum.
        b.remove(&task_hash(&task(1, TaskStatus::Pending)));
        b.add_task(&task(1, TaskStatus::Running));
        assert_ne!(a, b);
        b.remove(&task_hash(&task(1, TaskStatus::Running)));
        b.add_task(&task(1, TaskStatus::Pending));
        assert_eq!(a, b);
        // Removing everything comes back to zero, across carries.
        for t in [task(1, TaskStatus::Pending), task(2, TaskStatus::Done)] {
            b.remove(&task_hash(&t));
        }
        b.remove(&fact_hash("ns", "k", "v"));
        assert_eq!(b, RecordSum::default());
        assert_eq!(RecordSum::from_bytes(&a.to_bytes()), a);
    }

    #[test]
    fn carries_and_borrows_cross_limbs() {
        let mut max = [0u8; SUM_BYTES];
        max[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        let mut one = [0u8; SUM_BYTES];
        one[0] = 1;
        let mut s = RecordSum::default();
        s.add(&max);
        s.add(&one);
        let mut expected = [0u8; SUM_BYTES];
        expected[8] = 1;
        assert_eq!(s.to_bytes(), expected);
        s.remove(&one);
        assert_eq!(s.to_bytes(), max);
        // 0 - 1 wraps to 2^512 - 1.
        let mut z = RecordSum::default();
        z.remove(&one);
        assert_eq!(z.to_bytes(), [0xff; SUM_BYTES]);
    }

    #[test]
    fn the_encoding_is_golden() {
        // A change of the canonical encoding changes every digest: it must be deliberate.
        let mut s = RecordSum::default();
        s.add_task(&task(1, TaskStatus::Done));
        s.add_fact("default", "k", "v");
        assert_eq!(hex::encode(s.sha256(1, 1)), GOLDEN);
        assert_eq!(RecordSum::from_bytes(&s.to_bytes()), s);
        assert_ne!(s.sha256(1, 1), s.sha256(1, 2), "the counts are part of it");
        assert_ne!(
            fact_hash("a", "bc", "d"),
            fact_hash("ab", "c", "d"),
            "lengths separate the fields"
        );
    }

    /// Computed independently (Python hashlib) from the encoding in the module doc.
    const GOLDEN: &str = "176163b05f3a95eea72dde47328fdea95ba9bbe123c6a0eca510bc70e5e7d091";
}
