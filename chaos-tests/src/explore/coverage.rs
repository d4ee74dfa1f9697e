//! What the histories reached: journal transitions, ladder rungs, terminal outcomes and error
//! kinds, against the lists of what there is to reach ([`Coverage::missed`]).

use canister_api::agent::{UpgradeRecord, UpgradeState};
use canister_api::watchdog::Incident;
use serde::Serialize;
use std::collections::BTreeSet;

/// The journal's states in pipeline order, ending with the one terminal state of success.
pub(super) const CHAIN: &[&str] = &[
    "Proposed",
    "Patched",
    "Validated",
    "Rehearsed",
    "Approved",
    "Armed",
    "Installing",
    "Booted",
    "Committed",
];

/// The ladder's rungs (`LadderStep`).
pub const RUNGS: &[&str] = &["CodeOnly", "Snapshot", "Reinstall", "Version", "Previous"];

/// The error kinds there are: `agent.` + `AgentError`'s variants, `watchdog.` + `WatchdogError`'s.
/// Left out: `agent.NoUpload`, which the agent never answers (nothing in `agent/src` builds it:
/// a commit without an upload answers `NotFound("no Release upload in progress")`).
pub const ERRORS: &[&str] = &[
    "agent.Unauthorized",
    "agent.InvalidArgument",
    "agent.NotFound",
    "agent.UnknownTool",
    "agent.UpgradeInFlight",
    "agent.RateLimited",
    "agent.AutonomyForbids",
    "agent.WrongState",
    "agent.ChunkTooLarge",
    "agent.UploadTooLarge",
    "agent.HashMismatch",
    "agent.Patch",
    "agent.Validation",
    "agent.ManagementCall",
    "agent.WritesPaused",
    "agent.CallFailed",
    "agent.ToolFailed",
    "watchdog.Unauthorized",
    "watchdog.InvalidArgument",
    "watchdog.Busy",
    "watchdog.Paused",
    "watchdog.NotFound",
    "watchdog.Refused",
];

/// A journal state's name without its reason (`Failed`).
pub fn state_name(state: &UpgradeState) -> String {
    let text = format!("{state:?}");
    text.split('(').next().unwrap_or_default().to_string()
}

/// The transitions the journal can make: along the chain from `Validated` on, and from each
/// non-terminal state to `Failed`; to `Rejected` before install; to `RolledBack` once approved.
///
/// Left out because the agent never makes them: a record is first stored `Validated`
/// (`agent/src/upgrade.rs` `record` writes Proposed, Patched and Validated in the one message
/// that admits the candidate, after the patch and validation succeeded), so nothing leaves
/// `Proposed` or `Patched` but along the chain (no `Proposed->Validated`, no `->Failed`, no
/// `->Rejected` from either). `Approved->RolledBack` is in: a restored arm-time snapshot holds
/// its upgrade `Approved`, and `pipeline::end_after_restore` ends it `RolledBack`.
pub fn known_transitions() -> Vec<String> {
    let mut out: Vec<String> = CHAIN
        .windows(2)
        .map(|w| format!("{}->{}", w[0], w[1]))
        .collect();
    for (i, from) in CHAIN[..CHAIN.len() - 1].iter().enumerate().skip(2) {
        out.push(format!("{from}->Failed"));
        if i <= 4 {
            out.push(format!("{from}->Rejected"));
        }
        if i >= 4 {
            out.push(format!("{from}->RolledBack"));
        }
    }
    out
}

/// What was reached.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Journal transitions (`Booted->Committed`).
    pub transitions: BTreeSet<String>,
    /// Ladder rungs that restored an incident.
    pub rungs: BTreeSet<String>,
    /// Error kinds answered (`agent.WritesPaused`, `reject IC0508`, `release refused at commit_wasm`).
    pub errors: BTreeSet<String>,
}

/// What no history reached.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Missed {
    /// Transitions of [`known_transitions`] not seen.
    pub transitions: Vec<String>,
    /// Rungs of [`RUNGS`] not seen.
    pub rungs: Vec<String>,
    /// Error kinds of [`ERRORS`] not seen.
    pub errors: Vec<String>,
}

impl Coverage {
    /// Notes the transitions of `records` and the rungs of `incidents`.
    pub fn observe(&mut self, records: &[UpgradeRecord], incidents: &[Incident]) {
        for r in records {
            for w in r.history.windows(2) {
                self.transitions.insert(format!(
                    "{}->{}",
                    state_name(&w[0].state),
                    state_name(&w[1].state)
                ));
            }
        }
        for i in incidents {
            if let Some(step) = &i.ladder_step {
                self.rungs.insert(format!("{step:?}"));
            }
        }
    }

    /// Adds what `other` reached.
    pub fn merge(&mut self, other: &Coverage) {
        self.transitions.extend(other.transitions.iter().cloned());
        self.rungs.extend(other.rungs.iter().cloned());
        self.errors.extend(other.errors.iter().cloned());
    }

    /// What is known and was not reached.
    pub fn missed(&self) -> Missed {
        let not = |known: Vec<String>, seen: &BTreeSet<String>| {
            known.into_iter().filter(|k| !seen.contains(k)).collect()
        };
        Missed {
            transitions: not(known_transitions(), &self.transitions),
            rungs: not(RUNGS.iter().map(|s| s.to_string()).collect(), &self.rungs),
            errors: not(ERRORS.iter().map(|s| s.to_string()).collect(), &self.errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missed_lists_what_was_not_reached() {
        let mut c = Coverage::default();
        c.transitions.insert("Proposed->Patched".into());
        c.rungs.insert("CodeOnly".into());
        c.errors.insert("agent.WritesPaused".into());
        let m = c.missed();
        assert!(!m.transitions.contains(&"Proposed->Patched".to_string()));
        assert!(m.transitions.contains(&"Booted->RolledBack".to_string()));
        assert!(!m.transitions.contains(&"Booted->Rejected".to_string()));
        // The agent stores a record first in Validated: nothing fails or is rejected before.
        assert!(!m.transitions.contains(&"Proposed->Failed".to_string()));
        assert!(!m.transitions.contains(&"Patched->Rejected".to_string()));
        assert!(m.transitions.contains(&"Approved->RolledBack".to_string()));
        assert_eq!(known_transitions().len(), 8 + 6 + 3 + 4);
        assert_eq!(m.rungs.len(), RUNGS.len() - 1);
        assert_eq!(m.errors.len(), ERRORS.len() - 1);
    }
}
