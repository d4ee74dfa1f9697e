//! Service: the logical state digest: every task and fact, hashed in key order in a canonical
//! encoding that does not depend on the stable-memory schema. Staging compares it before and
//! after a rehearsed upgrade; the watchdog compares it before an upgrade and after a restore,
//! and reports the difference as data lost.
//!
//! Encoding (all integers little-endian):
//! task = `b'T'` id:u64 status:u8 priority:u8 created_at:u64 updated_at:u64 len:u32 description;
//! fact = `b'F'` len:u32 namespace len:u32 key len:u32 value.

use crate::api::{Priority, StateDigest, TaskStatus};
use crate::{facts, schema, tasks};
use sha2::{Digest, Sha256};

fn put_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u32).to_le_bytes());
    h.update(s.as_bytes());
}

/// The digest of the state as it is now.
pub fn compute() -> StateDigest {
    let start = ic_cdk::api::performance_counter(0);
    let mut h = Sha256::new();
    let mut task_count = 0u64;
    let mut from = 0u64;
    loop {
        let page = tasks::list(from, 1000);
        let Some(last) = page.last().map(|t| t.id) else {
            break;
        };
        for t in &page {
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
        }
        task_count += page.len() as u64;
        from = last + 1;
    }
    let all_facts = facts::list(None, usize::MAX);
    for f in &all_facts {
        h.update([b'F']);
        put_str(&mut h, &f.namespace);
        put_str(&mut h, &f.key);
        put_str(&mut h, &f.value);
    }
    StateDigest {
        schema_version: schema::stored_version(),
        tasks: task_count,
        facts: all_facts.len() as u64,
        sha256: h.finalize().to_vec(),
        instructions: ic_cdk::api::performance_counter(0) - start,
    }
}
