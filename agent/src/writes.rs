//! Service: pausing domain writes (tasks and facts) while an upgrade needs them to stand still.
//!
//! A pause is a lease: it names its upgrade and ends at a time set when it is taken, whatever
//! else happens. Two kinds, both recorded in the markers cell (so they survive the upgrade
//! itself):
//! - `rehearsal`: staging is copying stable memory chunk by chunk; a write in between would
//!   tear the copy. Lifted when the report comes back, or after [`REHEARSAL_PAUSE_NS`].
//! - `upgrade`: from the arm request until the watchdog's verdict. The watchdog's snapshot is
//!   taken in this window, so restoring it loses no task or fact. Renewed when the watchdog
//!   arms the upgrade; ends at the verdict or after [`UPGRADE_LEASE_NS`].
//!
//! Every terminal transition of the upgrade lifts its pause: the journal does it where it
//! stores a finished record (`journal::put`), so no path can forget it. The pause guards domain
//! writes only: operator methods (approval, rejection, autonomy, gate limits, operators,
//! uploads, supervision settings, version retention, the turn loop's settings and prompt
//! layers) are never refused by it, and a sandbox copy (staging's) ignores the pause its copied
//! state carries. An operator's change during a rehearsal's copy may make that rehearsal fail
//! (its copy is then not byte-for-byte one state); it never reaches the live agent's data. Refusals are [`AgentError::WritesPaused`], which says when
//! to retry.

use crate::api::AgentError;
use crate::config::{self, WritePause};
use crate::sandbox;

/// Longest a rehearsal pause lasts if staging never answers.
pub const REHEARSAL_PAUSE_NS: u64 = 15 * 60 * 1_000_000_000;
/// Longest an upgrade pause lasts without a verdict: the watchdog's arm window (600 s by
/// default) for the install, probation, and a restore whose stop requests time out (300 s each),
/// with room to spare. Past it, writes resume and a restore from the snapshot would lose them
/// (the incident then says how many).
pub const UPGRADE_LEASE_NS: u64 = 60 * 60 * 1_000_000_000;
/// What a refused caller is told to wait, in seconds.
pub const RETRY_AFTER_SECS: u64 = 30;

/// The pause in force, if any (an expired lease is ignored; a sandbox copy has none).
pub fn current() -> Option<WritePause> {
    if sandbox::is_copy() {
        return None;
    }
    let now = ic_cdk::api::time();
    config::markers()
        .writes_paused
        .filter(|p| p.until.is_none_or(|until| now < until))
}

/// Pauses writes for `upgrade_id` until `now + lease_ns` (replacing any pause: one upgrade is
/// in flight at a time).
pub fn pause(upgrade_id: u64, reason: &str, lease_ns: u64) {
    let since = ic_cdk::api::time();
    config::update_markers(|m| {
        m.writes_paused = Some(WritePause {
            upgrade_id,
            reason: reason.to_string(),
            since,
            until: Some(since.saturating_add(lease_ns)),
        });
        // Mutant (issue 12 item 1 reverted): a pause without an end.
        #[cfg(feature = "mutant-pause-lease")]
        if let Some(p) = m.writes_paused.as_mut() {
            p.until = None;
        }
    });
}

/// Lifts the pause of `upgrade_id` (a pause for another upgrade stays).
pub fn lift(upgrade_id: u64) {
    lift_if(upgrade_id, |_| true);
}

/// Lifts the pause of `upgrade_id` if it is of kind `reason` (a rehearsal's answer must not
/// lift the pause of the arm that followed it).
pub fn lift_kind(upgrade_id: u64, reason: &str) {
    lift_if(upgrade_id, |p| p.reason == reason);
}

fn lift_if(upgrade_id: u64, keep_unless: impl Fn(&WritePause) -> bool) {
    config::update_markers(|m| {
        if m.writes_paused
            .as_ref()
            .is_some_and(|p| p.upgrade_id == upgrade_id && keep_unless(p))
        {
            m.writes_paused = None;
        }
    });
}

/// `Ok` if domain writes are allowed now.
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
    current().map(|p| {
        format!(
            "{} of upgrade {} since {}{}",
            p.reason,
            p.upgrade_id,
            p.since,
            p.until
                .map_or(String::new(), |u| format!(", at the latest until {u}"))
        )
    })
}
