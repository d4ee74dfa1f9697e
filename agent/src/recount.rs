//! Service: recounts the state digest from the records, at boot, when the digest kept in
//! `digest` cannot be trusted (a build that did not keep it ran on this state, or a migration
//! step rewrote the records through the raw stores): one scan of every task, fact and journal
//! record, once. Afterwards every write keeps the digest up to date.

use crate::{digest, facts, journal, tasks};
use canister_api::digest::RecordSum;

/// At init and post_upgrade, after the migrations (`migrated`: some step ran). Answers
/// whether it recounted.
pub fn at_boot(migrated: bool) -> bool {
    if !migrated && digest::trusted() {
        return false;
    }
    let mut sum = RecordSum::default();
    let (mut task_count, mut fact_count) = (0u64, 0u64);
    tasks::visit(|t| {
        sum.add_task(t);
        task_count += 1;
    });
    facts::visit(|namespace, key, value| {
        sum.add_fact(namespace, key, value);
        fact_count += 1;
    });
    digest::replace(task_count, fact_count, journal::transitions_total(), sum);
    true
}
