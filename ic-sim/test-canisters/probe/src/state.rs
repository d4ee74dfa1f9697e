//! The probe's state: a few heap counters and two stable-memory words.
//!
//! Stable memory layout (one 64 KiB page, grown on first use; little-endian u64 words):
//!
//! ```text
//! offset 0        8               16
//!        +--------+---------------+----------------------
//!        | heap   | stable        |  unused
//!        | counter| counter       |
//!        | (saved | (stable_inc)  |
//!        | by pre_upgrade)        |
//!        +--------+---------------+----------------------
//! ```
//!
//! The heap counter lives in Wasm memory, so an upgrade loses it unless `pre_upgrade` saved it at
//! offset 0 and `post_upgrade` restores it. The stable counter survives upgrades by itself.

use std::cell::Cell;

/// Where `pre_upgrade` saves the heap counter.
const SAVED_HEAP_COUNTER: u64 = 0;
/// Where `stable_inc` keeps its counter.
const STABLE_COUNTER: u64 = 8;

thread_local! {
    static HEAP_COUNTER: Cell<u64> = const { Cell::new(0) };
    static TIMERS_FIRED: Cell<u64> = const { Cell::new(0) };
    static PRE_UPGRADE_TRAP: Cell<bool> = const { Cell::new(false) };
    /// `ic0.canister_status` as seen by the last response callback of `call` (0 = none yet).
    static LAST_CALLBACK_STATUS: Cell<u32> = const { Cell::new(0) };
}

/// Adds one to the heap counter and returns the new value.
pub fn heap_inc() -> u64 {
    HEAP_COUNTER.with(|c| {
        c.set(c.get() + 1);
        c.get()
    })
}

/// The heap counter.
pub fn heap_read() -> u64 {
    HEAP_COUNTER.with(Cell::get)
}

/// Adds one to the stable counter and returns the new value.
pub fn stable_inc() -> u64 {
    let next = stable_read() + 1;
    write_word(STABLE_COUNTER, next);
    next
}

/// The stable counter (0 while stable memory is empty).
pub fn stable_read() -> u64 {
    read_word(STABLE_COUNTER)
}

/// Saves the heap counter to stable memory (pre_upgrade).
pub fn save_heap_counter() {
    write_word(SAVED_HEAP_COUNTER, heap_read());
}

/// Restores the heap counter from stable memory (post_upgrade).
pub fn restore_heap_counter() {
    HEAP_COUNTER.with(|c| c.set(read_word(SAVED_HEAP_COUNTER)));
}

/// Records that a timer fired.
pub fn timer_fired() {
    TIMERS_FIRED.with(|c| c.set(c.get() + 1));
}

/// How many timers fired since the module was installed.
pub fn timers_fired() -> u64 {
    TIMERS_FIRED.with(Cell::get)
}

/// Arms (or disarms) the trap in `pre_upgrade`.
pub fn set_pre_upgrade_trap(armed: bool) {
    PRE_UPGRADE_TRAP.with(|c| c.set(armed));
}

/// Whether `pre_upgrade` must trap.
pub fn pre_upgrade_trap() -> bool {
    PRE_UPGRADE_TRAP.with(Cell::get)
}

/// Remembers the canister status a response callback saw.
pub fn set_last_callback_status(status: u32) {
    LAST_CALLBACK_STATUS.with(|c| c.set(status));
}

/// The canister status the last response callback saw.
pub fn last_callback_status() -> u32 {
    LAST_CALLBACK_STATUS.with(Cell::get)
}

fn read_word(offset: u64) -> u64 {
    if ic_cdk::stable::stable_size() == 0 {
        return 0;
    }
    let mut buf = [0u8; 8];
    ic_cdk::stable::stable_read(offset, &mut buf);
    u64::from_le_bytes(buf)
}

fn write_word(offset: u64, value: u64) {
    if ic_cdk::stable::stable_size() == 0 && ic_cdk::stable::stable_grow(1).is_err() {
        ic_cdk::trap("probe: cannot grow stable memory to one page");
    }
    ic_cdk::stable::stable_write(offset, &value.to_le_bytes());
}
