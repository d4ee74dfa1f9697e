//! The agent's stable-memory schema as a sequence of versions, and the steps between them.
//!
//! | version | what changed | step |
//! | --- | --- | --- |
//! | 1 | tasks `{description, status, created_at, updated_at}`; facts `key -> value` | (initial) |
//! | 2 | tasks gain `priority` (existing tasks read as `Normal` until written again) | [`steps::v1_to_v2`] |
//! | 3 | facts keyed by `(namespace, key)`; old facts read as namespace `default` until written again | [`steps::v2_to_v3`] |
//!
//! The steps check every record but rewrite none (see [`steps`]): the cost of a migration is a
//! read of each record, not a B-tree update.
//!
//! The crate knows record formats and steps, not where they live: the agent hands it the
//! virtual memories of the stores concerned ([`Stores`]) and its schema header memory. It
//! builds natively and for wasm32 and does not depend on ic-cdk, so every step is tested here
//! on plain vector memories, and the agent's `post_upgrade` runs the very same code.
//!
//! # Rules (orbit's habit)
//!
//! - Versions are sequential; [`migrate`] runs every pending step in order, `from+1 ..= target`.
//! - A downgrade (stored version above the build's) and an unknown version (0, or above
//!   [`LATEST`]) are refused with an error whose text names both versions; the agent traps with
//!   it, so the IC keeps the old module and state.
//! - Migrations run before any other stable-memory access of the new module.
//!
//! # Layout
//!
//! - [`header`]: the schema header (magic + version) and its byte layout.
//! - [`records`]: the task and fact-key encodings of every version, with byte diagrams.
//! - [`steps`]: the pure steps and [`migrate`].

pub mod header;
pub mod records;
pub mod steps;

pub use header::{HeaderError, SchemaHeader};
pub use records::{FactKey, Priority, Task, TaskStatus};
pub use steps::{MigrationError, MigrationReport, Progress, StepReport, Stores, migrate};

/// The oldest schema version a current build can migrate from.
pub const OLDEST: u32 = 1;
/// The newest schema version: what a default agent build writes.
pub const LATEST: u32 = 3;

/// The namespace that schema 3 reads the facts of schemas 1-2 in.
pub const DEFAULT_NAMESPACE: &str = "default";
