//! The migration steps and [`migrate`], which runs the pending ones in order.
//!
//! Each step checks every record of the old format (a record that does not decode fails the
//! step, naming it) but rewrites none: the newer schemas read the older records as they are
//! (`records`), and a record takes the new format when it is next written. Rewriting a record
//! costs a B-tree update (tens of thousands of instructions in ic-stable-structures: every
//! insert re-saves a whole node), reading one a few hundred, so a state of a million records
//! migrates in a fraction of the install limit. Steps run inside one IC message
//! (`post_upgrade`): if any of them fails or traps, the IC discards every write and keeps the
//! old module, so a step never needs to be resumable. The progress hook lets the caller count
//! work (benchmarks) or inject a fault half-way (the agent's `fault-migration-trap` build).

use crate::header::{HeaderError, SchemaHeader};
use crate::records::{RecordError, Task};
use crate::{LATEST, OLDEST};
use ic_stable_structures::{Memory, StableBTreeMap};

/// The virtual memories the schema covers. The agent's `memory.rs` says which ids they are.
#[derive(Clone)]
pub struct Stores<M: Memory + Clone> {
    /// The schema header.
    pub header: M,
    /// `tasks`: `u64 -> task record`.
    pub tasks: M,
    /// `facts_v1` (schemas 1-2, and read as namespace `default` by schema 3): `key -> value`.
    pub facts_v1: M,
    /// `facts` (schema 3): [`FactKey`] `-> value`.
    pub facts: M,
}

/// A migration that could not run. The agent traps with its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrationError {
    /// The header is unreadable.
    #[error("schema migration refused: {0}")]
    Header(#[from] HeaderError),
    /// The stored version is newer than this build.
    #[error(
        "schema migration refused: stable memory is at schema v{stored} but this build supports at most v{build}; downgrades are not supported (install a build whose range includes v{stored})"
    )]
    Downgrade {
        /// The stored version.
        stored: u32,
        /// The build's version.
        build: u32,
    },
    /// The stored version is not one this build knows how to start from.
    #[error(
        "schema migration refused: stable memory is at unknown schema v{stored}; this build migrates v{OLDEST}..=v{build}"
    )]
    UnknownVersion {
        /// The stored version.
        stored: u32,
        /// The build's version.
        build: u32,
    },
    /// A record did not decode.
    #[error("schema migration v{from}->v{to} failed at record {record}: {source}")]
    Record {
        /// Step start.
        from: u32,
        /// Step end.
        to: u32,
        /// The record's key.
        record: String,
        /// Why.
        source: RecordError,
    },
}

/// Where a step is, for the progress hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The version the step migrates to.
    pub to: u32,
    /// Records done so far in this step.
    pub done: u64,
    /// Records the step has in all.
    pub total: u64,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// The version the step migrated to.
    pub to: u32,
    /// Records rewritten.
    pub records: u64,
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The version found (`None`: fresh memory, header written at `to`).
    pub from: Option<u32>,
    /// The version now stored.
    pub to: u32,
    /// The steps run, in order.
    pub steps: Vec<StepReport>,
}

/// Brings the stores from the stored version to `target` (the build's schema version).
///
/// A fresh memory (no header) gets a header at `target` and no step runs. The header is written
/// once, after all steps.
pub fn migrate<M: Memory + Clone>(
    stores: &Stores<M>,
    target: u32,
    progress: &mut dyn FnMut(Progress),
) -> Result<MigrationReport, MigrationError> {
    assert!(
        (OLDEST..=LATEST).contains(&target),
        "target v{target} unknown"
    );
    let Some(header) = SchemaHeader::read(&stores.header)? else {
        SchemaHeader { version: target }.write(&stores.header);
        return Ok(MigrationReport {
            from: None,
            to: target,
            steps: vec![],
        });
    };
    let stored = header.version;
    if stored > target && stored <= LATEST {
        return Err(MigrationError::Downgrade {
            stored,
            build: target,
        });
    }
    if !(OLDEST..=target).contains(&stored) {
        return Err(MigrationError::UnknownVersion {
            stored,
            build: target,
        });
    }
    let mut steps = Vec::new();
    for to in stored + 1..=target {
        let records = match to {
            2 => v1_to_v2(stores, progress)?,
            3 => v2_to_v3(stores, progress)?,
            _ => unreachable!("every version up to LATEST has a step"),
        };
        steps.push(StepReport { to, records });
    }
    SchemaHeader { version: target }.write(&stores.header);
    Ok(MigrationReport {
        from: Some(stored),
        to: target,
        steps,
    })
}

/// v1 -> v2: every task record is checked; none is rewritten (schema 2 reads a v1 record with
/// priority `Normal`).
pub fn v1_to_v2<M: Memory + Clone>(
    stores: &Stores<M>,
    progress: &mut dyn FnMut(Progress),
) -> Result<u64, MigrationError> {
    let tasks: StableBTreeMap<u64, Vec<u8>, M> = StableBTreeMap::init(stores.tasks.clone());
    let total = tasks.len();
    for (done, entry) in (1..).zip(tasks.iter()) {
        let (id, bytes) = entry.into_pair();
        Task::decode(&bytes, 1).map_err(|source| MigrationError::Record {
            from: 1,
            to: 2,
            record: format!("task {id}"),
            source,
        })?;
        progress(Progress { to: 2, done, total });
    }
    Ok(total)
}

/// v2 -> v3: every fact of `facts_v1` is checked (key and value are UTF-8); none is moved
/// (schema 3 reads `facts_v1` as namespace `default`, and moves a fact to `facts` when it is
/// next written).
pub fn v2_to_v3<M: Memory + Clone>(
    stores: &Stores<M>,
    progress: &mut dyn FnMut(Progress),
) -> Result<u64, MigrationError> {
    let old: StableBTreeMap<Vec<u8>, Vec<u8>, M> = StableBTreeMap::init(stores.facts_v1.clone());
    let total = old.len();
    for (done, entry) in (1..).zip(old.iter()) {
        let (key, value) = entry.into_pair();
        if std::str::from_utf8(&key).is_err() || std::str::from_utf8(&value).is_err() {
            return Err(MigrationError::Record {
                from: 2,
                to: 3,
                record: format!("fact {}", String::from_utf8_lossy(&key)),
                source: RecordError::Malformed("key or value is not UTF-8"),
            });
        }
        progress(Progress { to: 3, done, total });
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{FactKey, Priority, TaskStatus};
    use ic_stable_structures::VectorMemory;

    fn stores() -> Stores<VectorMemory> {
        Stores {
            header: VectorMemory::default(),
            tasks: VectorMemory::default(),
            facts_v1: VectorMemory::default(),
            facts: VectorMemory::default(),
        }
    }

    fn task(n: u64) -> Task {
        Task {
            description: format!("task {n}"),
            status: TaskStatus::Done,
            priority: Priority::Normal,
            created_at: n,
            updated_at: n + 1,
        }
    }

    /// A v1 store with `n` tasks and `n` facts.
    fn seed_v1(stores: &Stores<VectorMemory>, n: u64) {
        SchemaHeader { version: 1 }.write(&stores.header);
        let mut tasks: StableBTreeMap<u64, Vec<u8>, _> = StableBTreeMap::init(stores.tasks.clone());
        let mut facts: StableBTreeMap<String, String, _> =
            StableBTreeMap::init(stores.facts_v1.clone());
        for i in 0..n {
            tasks.insert(i, task(i).encode(1));
            facts.insert(format!("k{i}"), format!("v{i}"));
        }
    }

    #[test]
    fn fresh_memory_gets_the_target_header_and_no_step() {
        let s = stores();
        let report = migrate(&s, 3, &mut |_| {}).unwrap();
        assert_eq!(report.from, None);
        assert_eq!(SchemaHeader::read(&s.header).unwrap().unwrap().version, 3);
    }

    #[test]
    fn v1_to_v2_checks_every_task_which_then_reads_with_normal_priority() {
        let s = stores();
        seed_v1(&s, 5);
        let report = migrate(&s, 2, &mut |_| {}).unwrap();
        assert_eq!(report.steps, vec![StepReport { to: 2, records: 5 }]);
        let tasks: StableBTreeMap<u64, Vec<u8>, _> = StableBTreeMap::init(s.tasks.clone());
        for (id, bytes) in tasks.iter().map(|e| e.into_pair()) {
            assert_eq!(bytes[0], 1, "not rewritten");
            assert_eq!(Task::decode(&bytes, 2).unwrap(), task(id));
        }
        // Facts are untouched until v3.
        let facts: StableBTreeMap<String, String, _> = StableBTreeMap::init(s.facts_v1.clone());
        assert_eq!(facts.len(), 5);
    }

    #[test]
    fn v2_to_v3_checks_every_fact_and_leaves_them_where_schema_3_reads_them() {
        let s = stores();
        seed_v1(&s, 4);
        migrate(&s, 2, &mut |_| {}).unwrap();
        let report = migrate(&s, 3, &mut |_| {}).unwrap();
        assert_eq!(report.from, Some(2));
        assert_eq!(report.steps, vec![StepReport { to: 3, records: 4 }]);
        let old: StableBTreeMap<String, String, _> = StableBTreeMap::init(s.facts_v1.clone());
        for i in 0..4 {
            assert_eq!(old.get(&format!("k{i}")), Some(format!("v{i}")));
        }
        let new: StableBTreeMap<FactKey, String, _> = StableBTreeMap::init(s.facts.clone());
        assert!(
            new.is_empty(),
            "nothing moved: schema 3 reads facts_v1 as `default`"
        );
    }

    #[test]
    fn a_fact_that_is_not_utf8_names_its_record() {
        let s = stores();
        seed_v1(&s, 1);
        migrate(&s, 2, &mut |_| {}).unwrap();
        let mut raw: StableBTreeMap<Vec<u8>, Vec<u8>, _> = StableBTreeMap::init(s.facts_v1.clone());
        raw.insert(b"bad".to_vec(), vec![0xff, 0xfe]);
        let err = migrate(&s, 3, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("fact bad"), "{err}");
    }

    #[test]
    fn v1_to_latest_runs_both_steps_in_order() {
        let s = stores();
        seed_v1(&s, 3);
        let mut seen = Vec::new();
        let report = migrate(&s, LATEST, &mut |p| seen.push(p.to)).unwrap();
        assert_eq!(report.steps.len(), 2);
        assert_eq!(seen, vec![2, 2, 2, 3, 3, 3]);
        assert_eq!(SchemaHeader::read(&s.header).unwrap().unwrap().version, 3);
        // Running again is a no-op.
        assert!(migrate(&s, LATEST, &mut |_| {}).unwrap().steps.is_empty());
    }

    #[test]
    fn a_downgrade_is_refused_with_both_versions_named() {
        let s = stores();
        SchemaHeader { version: 3 }.write(&s.header);
        let err = migrate(&s, 2, &mut |_| {}).unwrap_err();
        assert_eq!(
            err,
            MigrationError::Downgrade {
                stored: 3,
                build: 2
            }
        );
        assert!(err.to_string().contains("schema v3") && err.to_string().contains("v2"));
    }

    #[test]
    fn an_unknown_version_is_refused() {
        for stored in [0, LATEST + 1] {
            let s = stores();
            SchemaHeader { version: stored }.write(&s.header);
            assert_eq!(
                migrate(&s, LATEST, &mut |_| {}),
                Err(MigrationError::UnknownVersion {
                    stored,
                    build: LATEST
                })
            );
        }
    }

    #[test]
    fn a_corrupt_task_names_its_record() {
        let s = stores();
        seed_v1(&s, 1);
        let mut tasks: StableBTreeMap<u64, Vec<u8>, _> = StableBTreeMap::init(s.tasks.clone());
        tasks.insert(7, vec![9, 9]);
        let err = migrate(&s, 2, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("task 7"), "{err}");
    }
}
