//! The few ic-cdk helpers every canister of the project uses (feature `cdk`): the time, the
//! canister's own principal, and the guard that frees a single-flight flag when its step ends.

use candid::Principal;
use std::cell::Cell;
use std::thread::LocalKey;

/// The IC's time, in nanoseconds since the UNIX epoch (the same within one message).
pub fn now() -> u64 {
    ic_cdk::api::time()
}

/// This canister's own principal.
pub fn me() -> Principal {
    ic_cdk::api::canister_self()
}

/// Holds a single-flight flag (a thread-local `Cell`: a `bool`, or the `Option` of what runs
/// and since when) for as long as a step runs, and resets it to its default (`false`, `None`)
/// when the step ends, also when a callback of the step traps: ic-cdk drops the step's future
/// in the cleanup callback, which runs this destructor. Without it a trap after an await would
/// leave the flag set until its expiry.
#[must_use = "the flag is reset when the guard is dropped"]
pub struct Busy<T: Default + 'static> {
    flag: &'static LocalKey<Cell<T>>,
}

impl<T: Default + 'static> Busy<T> {
    /// Sets `flag` to `value` and holds it until the guard is dropped.
    pub fn hold(flag: &'static LocalKey<Cell<T>>, value: T) -> Self {
        flag.with(|f| f.set(value));
        Busy { flag }
    }
}

impl<T: Default + 'static> Drop for Busy<T> {
    fn drop(&mut self) {
        self.flag.with(|f| f.set(T::default()));
    }
}

/// Re-arms the IC's global timer when a trapped `canister_global_timer` left it disarmed;
/// answers whether it did.
///
/// The IC deactivates the global timer before it runs the handler, and a trap keeps it so: the
/// handler's own `global_timer_set` is rolled back with the rest of the execution (dfinity/ic
/// `rs/execution_environment/src/execution/call_or_task.rs`, `CallOrTaskHelper::new`: "The
/// global timer is one-off. canister.system_state.global_timer = CanisterTimer::Inactive").
/// ic-cdk-timers (1.x) then never fires again: its heap still holds the timers, and it only
/// moves the global timer earlier than the deadline it believes is set (`update_ic0_timer`).
///
/// This reads the global timer (`global_timer_set` answers the previous deadline) and puts it
/// back; a disarmed one is set to now, so ic-cdk-timers' handler runs in the next round, runs
/// what is due and sets the global timer to its next deadline. For canisters whose timers
/// always include a repeating one (a disarmed global timer is then always the trap's doing);
/// callable only where `global_timer_set` is (init, post_upgrade, updates, callbacks).
pub fn rearm_lost_global_timer() -> bool {
    let deadline = ic_cdk::api::global_timer_set(0);
    if deadline == 0 {
        ic_cdk::api::global_timer_set(now());
        true
    } else {
        ic_cdk::api::global_timer_set(deadline);
        false
    }
}
