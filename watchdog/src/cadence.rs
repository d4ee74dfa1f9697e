//! Policy: which cadence the watchdog's state calls for (see `canister_api::cadence`). The
//! cadence is read from the stored state only, so the timer that `post_upgrade` sets again
//! after an upgrade, and the one a restore or an operator's call re-arms, run at the same
//! interval the state called for before.
//!
//! Fast while anything happens: an upgrade armed or on probation, a restore, an LKG still to
//! copy, a verdict or repair notice to deliver, a failed heartbeat (of the code, or a
//! condition such as a stopped agent); steady once the agent answered
//! [`STEADY_AFTER_HEALTHY`] healthy heartbeats in a row with none of these.

use crate::store::{self, State};
use canister_api::cadence::{Cadence, STEADY_AFTER_HEALTHY};

/// The cadence `st` calls for.
pub fn of(st: &State) -> Cadence {
    let busy = st.armed.is_some()
        || st.restore.is_some()
        || st.lkg.is_none()
        || st.lkg_pending.is_some()
        || st.consecutive_failures > 0
        || st.condition.is_some()
        || store::has_deliveries();
    if busy || st.healthy_streak < STEADY_AFTER_HEALTHY {
        Cadence::Fast
    } else {
        Cadence::Steady
    }
}
