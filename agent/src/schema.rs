//! Which schema this build writes, and running the pending migrations at upgrade.
//!
//! The default build is at [`migrations::LATEST`]; the `schema-v1` and `schema-v2` features
//! build older agents (for fixtures and upgrade tests). Every build declares the range
//! `OLDEST..=SCHEMA` ([`RANGE`]): it migrates anything older and refuses anything newer.

use crate::api::SchemaRange;

/// The schema version this build writes.
#[cfg(feature = "schema-v1")]
pub const SCHEMA: u32 = 1;
/// The schema version this build writes.
#[cfg(all(feature = "schema-v2", not(feature = "schema-v1")))]
pub const SCHEMA: u32 = 2;
/// The schema version this build writes.
#[cfg(not(any(feature = "schema-v1", feature = "schema-v2")))]
pub const SCHEMA: u32 = migrations::LATEST;

/// The schema range this build declares (and stamps into its candidates).
pub const RANGE: SchemaRange = SchemaRange {
    min: migrations::OLDEST,
    max: SCHEMA,
};

/// This build's version label.
pub fn build_version() -> String {
    format!("{}-schema{}", env!("CARGO_PKG_VERSION"), SCHEMA)
}

/// Runs the pending migrations up to [`SCHEMA`], before any other stable-memory access.
/// Traps with the migration's own message on a downgrade, an unknown version or a bad record:
/// the IC then keeps the old module and its state.
pub fn migrate() -> migrations::MigrationReport {
    let stores = crate::memory::schema_stores();
    match migrations::migrate(&stores, SCHEMA, &mut fault_hook) {
        Ok(report) => report,
        Err(e) => ic_cdk::trap(e.to_string()),
    }
}

/// The schema version stored in the header (after [`migrate`], always [`SCHEMA`]).
pub fn stored_version() -> u32 {
    migrations::SchemaHeader::read(&crate::memory::get(crate::memory::HEADER))
        .ok()
        .flatten()
        .map_or(0, |h| h.version)
}

#[cfg(feature = "fault-migration-trap")]
fn fault_hook(p: migrations::Progress) {
    if p.to == 3 && p.done * 2 >= p.total {
        ic_cdk::trap(format!(
            "fault-migration-trap: v2->v3 migration trapped after {} of {} facts",
            p.done, p.total
        ));
    }
}

#[cfg(not(feature = "fault-migration-trap"))]
fn fault_hook(_: migrations::Progress) {}
