//! Whether the watchdog controls the agent: the alert when a canister_status or a restore
//! was refused because it is no longer a controller, and its end. Both the tick
//! (`crate::supervise`) and the restore ladder (`crate::ladder`) find it out.

use crate::store;
use canister_api::cdk::now;

/// The watchdog is not a controller of the agent any more (a canister_status was refused).
pub fn lost_control(detail: String) {
    if store::get().control_lost.is_none() {
        store::event(
            "control.lost",
            None,
            format!(
                "ALERT: the watchdog is no longer a controller of the agent ({detail}): it cannot \
                 snapshot, restore or roll it back until an operator adds it back \
                 (dfx canister update-settings agent --add-controller WATCHDOG)"
            ),
        );
        store::update(|s| s.control_lost = Some((now(), detail)));
    }
}

/// The watchdog controls the agent again.
pub fn regained_control() {
    if let Some((since, _)) = store::get().control_lost {
        store::event(
            "control.regained",
            None,
            format!("the watchdog controls the agent again (lost since {since})"),
        );
        store::update(|s| s.control_lost = None);
    }
}
