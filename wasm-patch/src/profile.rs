//! Checkpoints for a cost breakdown of [`crate::apply_patch`] and
//! [`crate::validate_patched`]: a caller that can count instructions (the agent, with
//! `ic0.performance_counter`) installs a hook and is told each step's name as the step ends.
//! Without a hook a checkpoint costs a load and a branch.

use std::cell::Cell;

thread_local! {
    static HOOK: Cell<Option<fn(&'static str)>> = const { Cell::new(None) };
}

/// Installs (or, with `None`, removes) the hook.
pub fn set_hook(hook: Option<fn(&'static str)>) {
    HOOK.with(|h| h.set(hook));
}

/// Step `name` just ended.
pub(crate) fn step(name: &'static str) {
    if let Some(hook) = HOOK.with(Cell::get) {
        hook(name);
    }
}
