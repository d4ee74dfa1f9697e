//! Service: pausing state-changing calls while an upgrade needs the state to stand still.
//!
//! Two pauses, both recorded in the markers cell (so they survive the upgrade itself):
//! - `rehearsal`: staging is copying stable memory chunk by chunk; a write in between would
//!   tear the copy. Lifted when the report comes back, or after [`REHEARSAL_PAUSE_NS`] at the
//!   latest.
//! - `upgrade`: from the arm request until the watchdog's verdict. The watchdog's snapshot is
//!   taken in this window, so restoring it loses nothing. Lifted by `complete_upgrade` or a
//!   failure.
//!
//! Refusals are [`AgentError::WritesPaused`], which says when to retry.

use crate::api::AgentError;
use crate::config::{self, WritePause};

/// Longest a rehearsal pause lasts if staging never answers.
pub const REHEARSAL_PAUSE_NS: u64 = 15 * 60 * 1_000_000_000;
/// What a refused caller is told to wait, in seconds.
pub const RETRY_AFTER_SECS: u64 = 30;

/// The pause in force, if any (an expired one is ignored).
pub fn current() -> Option<WritePause> {
    let now = ic_cdk::api::time();
    config::markers()
        .writes_paused
        .filter(|p| p.until.is_none_or(|until| now < until))
}

/// Pauses writes for `upgrade_id`.
pub fn pause(upgrade_id: u64, reason: &str, until: Option<u64>) {
    let since = ic_cdk::api::time();
    config::update_markers(|m| {
        m.writes_paused = Some(WritePause {
            upgrade_id,
            reason: reason.to_string(),
            since,
            until,
        })
    });
}

/// Lifts the pause of `upgrade_id` (a pause for another upgrade stays).
pub fn lift(upgrade_id: u64) {
    config::update_markers(|m| {
        if m.writes_paused
            .as_ref()
            .is_some_and(|p| p.upgrade_id == upgrade_id)
        {
            m.writes_paused = None;
        }
    });
}

/// `Ok` if state-changing calls are allowed now.
pub fn check() -> Result<(), AgentError> {
    match current() {
        None => Ok(()),
        Some(p) => Err(AgentError::WritesPaused {
            upgrade_id: p.upgrade_id,
            reason: match p.reason.as_str() {
                "rehearsal" => "its state is being copied for the rehearsal".to_string(),
                _ => "it is armed, installing or on probation".to_string(),
            },
            retry_after_secs: RETRY_AFTER_SECS,
        }),
    }
}

/// The pause as `health` shows it.
pub fn describe() -> Option<String> {
    current().map(|p| format!("{} of upgrade {} since {}", p.reason, p.upgrade_id, p.since))
}
