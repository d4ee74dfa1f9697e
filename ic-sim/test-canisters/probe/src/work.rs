//! Work the optimiser cannot remove: burning instructions and deep recursion.

use std::hint::black_box;

/// Executes at least `n` instructions (as the system counts them) and returns
/// `performance_counter(0)` at the end.
///
/// Stops on the system's own counter rather than an iteration count, so the amount burnt does not
/// depend on how the simulator prices each Wasm instruction.
pub fn burn_instructions(n: u64) -> u64 {
    let start = ic_cdk::api::performance_counter(0);
    let mut x: u64 = 1;
    while ic_cdk::api::performance_counter(0).saturating_sub(start) < n {
        for i in 0..1_000u64 {
            x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
        }
    }
    black_box(x);
    ic_cdk::api::performance_counter(0)
}

/// The recursive step, called indirectly so that it is neither inlined nor turned into a loop.
static RECURSE: fn(u64) -> u64 = recurse_step;

/// Recurses `depth` times, non-tail; a large depth exhausts the Wasm call stack.
///
/// The step keeps nothing in linear memory (no shadow-stack frame), so the overflow is of the
/// engine's call stack ("stack overflow"), not an out-of-bounds access below the shadow stack.
pub fn recurse(depth: u64) -> u64 {
    recurse_step(depth)
}

fn recurse_step(depth: u64) -> u64 {
    if depth == 0 {
        return 1;
    }
    // SAFETY: `RECURSE` is an initialised, properly aligned static; the volatile read only hides
    // its (constant) value from the optimiser.
    let next = unsafe { std::ptr::read_volatile(&RECURSE) };
    next(depth - 1).wrapping_mul(3).wrapping_add(depth)
}
