//! Record encodings of every schema version, hand-rolled so that a layout change is a diff
//! here and a failing golden-bytes test, never an accident of a serialiser upgrade.
//!
//! # Task value (map `tasks`: key = task id, `u64`, ic-stable-structures' big-endian encoding)
//!
//! v1 (schema 1):
//! ```text
//! 0     1              9              17       18              22
//! +-----+--------------+--------------+--------+---------------+----------------+
//! | 01  | created_at   | updated_at   | status | desc_len      | description    |
//! |     | u64 LE ns    | u64 LE ns    | u8     | u32 LE        | UTF-8          |
//! +-----+--------------+--------------+--------+---------------+----------------+
//! ```
//! v2 (schemas 2 and 3): the same with a priority byte after the status:
//! ```text
//! 0     1              9              17       18         19              23
//! +-----+--------------+--------------+--------+----------+---------------+-------------+
//! | 02  | created_at   | updated_at   | status | priority | desc_len      | description |
//! +-----+--------------+--------------+--------+----------+---------------+-------------+
//! ```
//! status: 0 pending, 1 running, 2 done, 3 failed. priority: 0 low, 1 normal, 2 high.
//! The first byte is the record version, so a v1 record can never be read as v2. Schemas 2 and
//! 3 write v2 records and read both: a v1 record (from before the v1 -> v2 step, which does not
//! rewrite records) reads with priority `Normal` until the task is written again.
//!
//! # Facts
//!
//! Schemas 1 and 2: map `facts_v1`, key = the fact key (UTF-8), value = the value (UTF-8).
//!
//! Schema 3: map `facts`, key = [`FactKey`], value = the value (UTF-8); and the facts written
//! before schema 3, still in `facts_v1`, read as namespace `default` (the v2 -> v3 step does not
//! move them; a fact leaves `facts_v1` when it is written or forgotten under schema 3):
//! ```text
//! +----------------+------+----------------+
//! | namespace      | 00   | key            |
//! | UTF-8, no NUL  |      | UTF-8          |
//! +----------------+------+----------------+
//! ```
//! The NUL separator keeps a namespace's facts adjacent in key order (a length prefix would
//! sort by length first).

use ic_stable_structures::Storable;
use ic_stable_structures::storable::Bound;
use std::borrow::Cow;

/// A task's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Submitted, not started.
    Pending,
    /// Being worked on.
    Running,
    /// Finished.
    Done,
    /// Given up.
    Failed,
}

/// A task's priority (schema 2 and later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// Later.
    Low,
    /// The default, and what v1 tasks get.
    #[default]
    Normal,
    /// Sooner.
    High,
}

/// A task as the agent sees it. Stored in the format of the schema in force
/// ([`Task::encode`]); schema 1 drops the priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// What to do.
    pub description: String,
    /// Where it is.
    pub status: TaskStatus,
    /// How soon (always `Normal` under schema 1).
    pub priority: Priority,
    /// Submission time, ns since the epoch.
    pub created_at: u64,
    /// Last status change, ns since the epoch.
    pub updated_at: u64,
}

/// A stored record that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The record's version byte is not the expected one.
    #[error("task record: version byte {found}, expected {expected}")]
    WrongVersion {
        /// Expected record version.
        expected: u8,
        /// Found record version.
        found: u8,
    },
    /// The record ends early or has bytes that mean nothing.
    #[error("task record: {0}")]
    Malformed(&'static str),
}

fn status_byte(status: TaskStatus) -> u8 {
    match status {
        TaskStatus::Pending => 0,
        TaskStatus::Running => 1,
        TaskStatus::Done => 2,
        TaskStatus::Failed => 3,
    }
}

fn byte_status(byte: u8) -> Result<TaskStatus, RecordError> {
    Ok(match byte {
        0 => TaskStatus::Pending,
        1 => TaskStatus::Running,
        2 => TaskStatus::Done,
        3 => TaskStatus::Failed,
        _ => return Err(RecordError::Malformed("unknown status byte")),
    })
}

fn priority_byte(priority: Priority) -> u8 {
    match priority {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
    }
}

fn byte_priority(byte: u8) -> Result<Priority, RecordError> {
    Ok(match byte {
        0 => Priority::Low,
        1 => Priority::Normal,
        2 => Priority::High,
        _ => return Err(RecordError::Malformed("unknown priority byte")),
    })
}

/// The task record version a schema stores.
pub fn task_record_version(schema: u32) -> u8 {
    if schema >= 2 { 2 } else { 1 }
}

impl Task {
    /// The record bytes under `schema` (see the module docs).
    pub fn encode(&self, schema: u32) -> Vec<u8> {
        let version = task_record_version(schema);
        let desc = self.description.as_bytes();
        let mut out = Vec::with_capacity(23 + desc.len());
        out.push(version);
        out.extend_from_slice(&self.created_at.to_le_bytes());
        out.extend_from_slice(&self.updated_at.to_le_bytes());
        out.push(status_byte(self.status));
        if version >= 2 {
            out.push(priority_byte(self.priority));
        }
        out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        out.extend_from_slice(desc);
        out
    }

    /// Decodes a record stored under `schema`: a v1 record under schema 1; a v1 or v2 record
    /// under schemas 2 and 3 (see the module docs).
    pub fn decode(bytes: &[u8], schema: u32) -> Result<Task, RecordError> {
        let newest = task_record_version(schema);
        let found = *bytes.first().ok_or(RecordError::Malformed("empty"))?;
        if !(1..=newest).contains(&found) {
            return Err(RecordError::WrongVersion {
                expected: newest,
                found,
            });
        }
        let expected = found;
        let fixed = if expected >= 2 { 23 } else { 22 };
        if bytes.len() < fixed {
            return Err(RecordError::Malformed("shorter than its fixed part"));
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        let status = byte_status(bytes[17])?;
        let priority = if expected >= 2 {
            byte_priority(bytes[18])?
        } else {
            Priority::Normal
        };
        let len = u32::from_le_bytes(bytes[fixed - 4..fixed].try_into().expect("4")) as usize;
        if bytes.len() != fixed + len {
            return Err(RecordError::Malformed("description length does not match"));
        }
        let description = String::from_utf8(bytes[fixed..].to_vec())
            .map_err(|_| RecordError::Malformed("description is not UTF-8"))?;
        Ok(Task {
            description,
            status,
            priority,
            created_at: u64_at(1),
            updated_at: u64_at(9),
        })
    }
}

/// The key of a fact under schema 3: `(namespace, key)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FactKey {
    /// The namespace (no NUL byte; see [`FactKey::new`]).
    pub namespace: String,
    /// The key within the namespace.
    pub key: String,
}

impl FactKey {
    /// A key; `None` if the namespace contains a NUL byte (the separator).
    pub fn new(namespace: &str, key: &str) -> Option<FactKey> {
        (!namespace.contains('\0')).then(|| FactKey {
            namespace: namespace.to_string(),
            key: key.to_string(),
        })
    }
}

impl Storable for FactKey {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        let mut out = Vec::with_capacity(self.namespace.len() + 1 + self.key.len());
        out.extend_from_slice(self.namespace.as_bytes());
        out.push(0);
        out.extend_from_slice(self.key.as_bytes());
        Cow::Owned(out)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.to_bytes().into_owned()
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // Only bytes written by to_bytes reach here; a missing separator would be corruption.
        let at = bytes
            .iter()
            .position(|b| *b == 0)
            .expect("FactKey: stored key lacks the NUL separator");
        FactKey {
            namespace: String::from_utf8_lossy(&bytes[..at]).into_owned(),
            key: String::from_utf8_lossy(&bytes[at + 1..]).into_owned(),
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Task {
        Task {
            description: "hi".to_string(),
            status: TaskStatus::Running,
            priority: Priority::High,
            created_at: 0x0102,
            updated_at: 0x0304,
        }
    }

    #[test]
    fn v1_task_bytes_are_golden() {
        let bytes = sample().encode(1);
        let golden = [
            1, 2, 1, 0, 0, 0, 0, 0, 0, 4, 3, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, b'h', b'i',
        ];
        assert_eq!(bytes, golden);
        let back = Task::decode(&bytes, 1).unwrap();
        assert_eq!(
            back.priority,
            Priority::Normal,
            "v1 has no priority: Normal"
        );
    }

    #[test]
    fn v2_task_bytes_are_golden() {
        let bytes = sample().encode(3);
        let golden = [
            2, 2, 1, 0, 0, 0, 0, 0, 0, 4, 3, 0, 0, 0, 0, 0, 0, 1, 2, 2, 0, 0, 0, b'h', b'i',
        ];
        assert_eq!(bytes, golden);
        assert_eq!(Task::decode(&bytes, 2).unwrap(), sample());
    }

    #[test]
    fn a_record_of_another_version_is_refused() {
        let v2 = sample().encode(3);
        assert_eq!(
            Task::decode(&v2, 1),
            Err(RecordError::WrongVersion {
                expected: 1,
                found: 2
            }),
            "schema 1 does not know v2 records"
        );
        let mut v9 = v2.clone();
        v9[0] = 9;
        assert!(matches!(
            Task::decode(&v9, 3),
            Err(RecordError::WrongVersion { found: 9, .. })
        ));
        let v1 = sample().encode(1);
        assert!(Task::decode(&v1[..10], 1).is_err());
    }

    #[test]
    fn schemas_2_and_3_read_a_v1_record_with_normal_priority() {
        let v1 = sample().encode(1);
        let task = Task::decode(&v1, 3).unwrap();
        assert_eq!(
            task,
            Task {
                priority: Priority::Normal,
                ..sample()
            }
        );
        assert_eq!(Task::decode(&v1, 2), Ok(task));
    }

    #[test]
    fn fact_key_bytes_are_golden_and_group_by_namespace() {
        let key = FactKey::new("ns", "k").unwrap();
        assert_eq!(key.to_bytes().as_ref(), b"ns\0k");
        assert_eq!(FactKey::from_bytes(key.to_bytes()), key);
        assert!(FactKey::new("a\0b", "k").is_none());
        // "a" < "a-b" as namespaces, whatever the keys.
        let a = FactKey::new("a", "zzz").unwrap().to_bytes().into_owned();
        let ab = FactKey::new("a-b", "a").unwrap().to_bytes().into_owned();
        assert!(a < ab);
    }
}
