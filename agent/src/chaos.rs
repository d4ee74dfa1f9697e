//! Test-only misbehaviour of the `chaos` build (feature `chaos`, never deployed).
//!
//! The build carries the 32-byte marker [`MODE`] in its data section. Tests copy the build and
//! overwrite the marker (same length) to make a bad candidate with its own module hash:
//! `CHAOS-MODE:boot_trap` and so on, padded with `_`. The marker is read with a volatile load,
//! so the compiler cannot fold it away.
//!
//! | mode | misbehaviour |
//! | --- | --- |
//! | `none` | none: behaves like the normal build |
//! | `boot_trap` | post_upgrade traps (a rehearsal catches it) |
//! | `boot_trap_live` | post_upgrade traps, but not in a sandbox copy (evades the rehearsal) |
//! | `health_trap_live` | `health` traps, but not in a sandbox copy |
//! | `corrupt_state` | post_upgrade forgets the first fact (the digest changes) |
//! | `corrupt_raw` | post_upgrade rewrites the first fact's value behind the digest's back (the digest does not change; the records do) |
//! | `health_trap_late` | `health` traps from [`LATE_SECS`] after boot on (passes probation, fails later) |
//! | `boot_spin` | post_upgrade loops until the instruction limit stops it |
//! | `pre_upgrade_trap` | `pre_upgrade` traps (as the running module: upgrades skip it) |
//! | `tool_broken` | the `recall` tool traps (not in a sandbox copy) |
//! | `drops_watchdog` | soon after boot, the agent removes the watchdog from its own controllers (not in a sandbox copy) |
//! | `burn_cycles` | burns 0.5 T cycles a second from boot on (not in a sandbox copy) |
//! | `dies_after_5` | `health` traps from its 6th call in this module instance on (not in a sandbox copy) |
//! | `reports_unhealthy` | `health` answers, with status `unhealthy`, but not in a sandbox copy |
//! | `miscompile_tools` | the tool-spec compiler emits every integer literal off by one (feature `tool-spec/fault-miscompile`), in `self_upgrade`'s `add_tool` and when a module's registry is verified, as a real compiler bug would: the candidate's tools disagree with their examples |
//! | `health_calls_out` | `health` awaits a call to the staging canister's `sandbox` query before it answers: if that call never returns, `health` hangs |
//! | `writes_trap` | every task or fact write traps (a rehearsal's write probes catch it) |
//! | `writes_trap_live` | every task or fact write traps, but not in a sandbox copy (probation's canary catches it) |
//! | `verdict_trap` | `complete_upgrade` traps, in any canister (a rehearsal's control-plane probe catches it) |
//! | `verdict_trap_live` | `complete_upgrade` traps, but not in a sandbox copy: the candidate cannot take its verdict |
//! | `reports_unhealthy_all` | `health` answers with status `unhealthy`, in a sandbox copy too |
//! | `starves_late` | [`LATE_SECS`] after boot (not in a sandbox copy), raises its own freezing threshold to ten years and burns what is above it (the IC lets no canister burn below its threshold): it is frozen, its code is fine |
//! | `drops_operators` | soon after boot, the agent keeps only itself and the watchdog as controllers (not in a sandbox copy) |
//! | `seizes_control` | soon after boot, the agent makes itself its only controller, in any canister, and its self-test repairs nothing (a rehearsal sees it) |
//! | `seizes_control_live` | as `seizes_control`, but not in a sandbox copy: nobody but the agent controls it any more |
//! | `burn_all` | post_upgrade burns the whole balance, in any canister (it leaves a sandbox frozen) |
//!
//! The repositories call this module's hooks, so it calls none of them: the faults on the facts
//! (`corrupt_state`, `corrupt_raw`) are run by `facts::on_chaos_boot`.
//!
//! In the chaos build `health` is an update (it may await a call); in the real build it is a
//! query.

/// The marker; the mode follows the prefix, padded with `_`.
#[used]
pub static MODE: [u8; 32] = *b"CHAOS-MODE:none_________________";

/// The marker's prefix.
pub const PREFIX: &str = "CHAOS-MODE:";

/// The mode this module was made with.
pub fn mode() -> String {
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        // SAFETY: reading an element of a static array.
        *b = unsafe { core::ptr::read_volatile(MODE.as_ptr().add(i)) };
    }
    String::from_utf8_lossy(&bytes[PREFIX.len()..])
        .trim_end_matches('_')
        .to_string()
}

/// Turns the tool-spec compiler's test fault on or off as the mode says; called before every
/// use of the compiler (patching, and verifying a module's registry), so that the build is
/// consistently wrong.
pub fn set_compiler_fault() {
    tool_spec::fault::set_miscompile(mode() == "miscompile_tools");
}

/// At the end of post_upgrade.
pub fn on_boot() {
    BOOTED_AT.with(|b| b.set(ic_cdk::api::time()));
    let live = !crate::sandbox::is_copy();
    match mode().as_str() {
        "boot_trap" => ic_cdk::trap("chaos boot_trap: post_upgrade traps"),
        "boot_spin" => {
            let mut x = 0u64;
            loop {
                x = core::hint::black_box(x.wrapping_add(1));
            }
        }
        "boot_trap_live" if live => ic_cdk::trap("chaos boot_trap_live: post_upgrade traps"),
        "drops_watchdog" if live => {
            ic_cdk_timers::set_timer(std::time::Duration::ZERO, drop_watchdog());
        }
        "drops_operators" if live => {
            let keep = vec![ic_cdk::api::canister_self()]
                .into_iter()
                .chain(crate::config::get().watchdog)
                .collect();
            ic_cdk_timers::set_timer(std::time::Duration::ZERO, set_own_controllers(keep));
        }
        "seizes_control" => {
            let keep = vec![ic_cdk::api::canister_self()];
            ic_cdk_timers::set_timer(std::time::Duration::ZERO, set_own_controllers(keep));
        }
        "seizes_control_live" if live => {
            let keep = vec![ic_cdk::api::canister_self()];
            ic_cdk_timers::set_timer(std::time::Duration::ZERO, set_own_controllers(keep));
        }
        "burn_all" => {
            ic_cdk::api::cycles_burn(ic_cdk::api::canister_cycle_balance());
        }
        "starves_late" if live => {
            ic_cdk_timers::set_timer(std::time::Duration::from_secs(LATE_SECS), async {
                let me = ic_cdk::api::canister_self();
                let _ =
                    canister_api::ic::management::set_freezing_threshold(me, TEN_YEARS_SECS).await;
                ic_cdk::api::cycles_burn(ic_cdk::api::canister_cycle_balance());
            });
        }
        "burn_cycles" if live => {
            ic_cdk_timers::set_timer_interval(std::time::Duration::from_secs(1), async || {
                ic_cdk::api::cycles_burn(500_000_000_000);
            });
        }
        _ => {}
    }
}

/// At the start of every tool call.
pub fn on_tool(name: &str) {
    if mode() == "tool_broken" && name == "recall" && !crate::sandbox::is_copy() {
        ic_cdk::trap("chaos tool_broken: the recall tool traps");
    }
}

/// Removes the watchdog from the agent's controllers (from a timer: post_upgrade cannot call).
async fn drop_watchdog() {
    let me = ic_cdk::api::canister_self();
    let mut keep = vec![me];
    keep.extend(crate::config::get().operators);
    let _ = canister_api::ic::management::set_controllers(me, keep).await;
}

/// Sets the canister's own controllers to `keep` (from a timer: post_upgrade cannot call).
async fn set_own_controllers(keep: Vec<candid::Principal>) {
    let me = ic_cdk::api::canister_self();
    let _ = canister_api::ic::management::set_controllers(me, keep).await;
}

/// Whether the self-test leaves the controllers alone (a module that took control keeps it).
pub fn skips_control_repair() -> bool {
    mode().starts_with("seizes_control")
}

/// At the start of every task or fact write (`what` names it).
pub fn on_write(what: &str) {
    let live = !crate::sandbox::is_copy();
    match mode().as_str() {
        "writes_trap" => ic_cdk::trap(format!("chaos writes_trap: {what} traps")),
        "writes_trap_live" if live => ic_cdk::trap(format!("chaos writes_trap_live: {what} traps")),
        _ => {}
    }
}

/// At the start of `complete_upgrade`.
pub fn on_complete() {
    match mode().as_str() {
        "verdict_trap" => ic_cdk::trap("chaos verdict_trap: complete_upgrade traps"),
        "verdict_trap_live" if !crate::sandbox::is_copy() => {
            ic_cdk::trap("chaos verdict_trap_live: complete_upgrade traps")
        }
        _ => {}
    }
}

/// In `pre_upgrade` (the chaos build's only).
pub fn on_pre_upgrade() {
    if mode() == "pre_upgrade_trap" {
        ic_cdk::trap("chaos pre_upgrade_trap: pre_upgrade traps");
    }
}

/// Seconds after boot from which `health_trap_late` traps.
pub const LATE_SECS: u64 = 120;

/// The freezing threshold `starves_late` sets on itself: ten years of its idle burn, more than
/// any balance it holds in the tests.
const TEN_YEARS_SECS: u64 = 10 * 365 * 86_400;

thread_local! {
    static BOOTED_AT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static HEALTH_CALLS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// At the start of `health`.
pub async fn on_health() {
    let live = !crate::sandbox::is_copy();
    let calls = HEALTH_CALLS.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    match mode().as_str() {
        "dies_after_5" if live && calls > 5 => {
            ic_cdk::trap("chaos dies_after_5: health traps from its 6th call on")
        }
        "health_trap_live" if live => ic_cdk::trap("chaos health_trap_live: health traps"),
        "health_trap_late"
            if live
                && ic_cdk::api::time()
                    >= BOOTED_AT.with(|b| b.get()) + LATE_SECS * 1_000_000_000 =>
        {
            ic_cdk::trap("chaos health_trap_late: health traps (late)")
        }
        "health_calls_out" if live => {
            if let Some(staging) = crate::config::get().staging {
                let _: Result<Option<candid::Principal>, _> =
                    canister_api::ic::call(staging, "sandbox", &(), None).await;
            }
        }
        _ => {}
    }
}
