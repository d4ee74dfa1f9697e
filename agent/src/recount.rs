//! Service: recounts the state digest from the records, at boot, when the digest kept in
//! `digest` cannot be trusted (a build that did not keep it ran on this state): one scan of
//! every task, fact and journal record, once. Afterwards every write keeps the digest up to
//! date.

use crate::api::TaskStatus;
use crate::digest::DigestState;
use crate::{digest, facts, journal, tasks};

/// At init and post_upgrade, after the migrations. Answers whether it recounted.
pub fn at_boot() -> bool {
    if digest::trusted() {
        return false;
    }
    let mut state = DigestState::default();
    tasks::visit(|t| {
        state.sum.add_task(t);
        state.tasks += 1;
        if t.status == TaskStatus::Pending {
            state.pending += 1;
        }
    });
    facts::visit(|namespace, key, value| {
        state.sum.add_fact(namespace, key, value);
        state.facts += 1;
    });
    state.transitions = journal::transitions_total();
    digest::replace(state);
    true
}
