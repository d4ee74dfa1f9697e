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
