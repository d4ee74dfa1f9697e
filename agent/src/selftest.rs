//! Service: the agent's self-test, run by a live agent (never a sandbox copy) shortly after
//! every boot and then every [`EVERY_SECS`]:
//!
//! - tools: each read-only tool (`recall`, `upgrade_status`, `list_versions`) is called through
//!   a self-call, so a tool that traps shows up as a reject instead of taking the test down;
//! - mutual control: canister_status of the agent itself must list the agent and the
//!   watchdog as controllers; a missing one is added back (the agent controls itself) and the
//!   repair is audited.
//!
//! A failed tool makes `health` answer `unhealthy` until a later test passes, so the watchdog
//! rolls back a version whose tools are broken even though it boots and answers. Controllers
//! that cannot be checked or repaired (the agent is not its own controller) are an alert in
//! `health.alerts` instead: another version would not fix them.

use crate::api::AgentError;
use crate::{audit, config, sandbox};
use candid::Principal;
use canister_api::ic::{self, CallError, management};
use std::cell::Cell;
use std::time::Duration;

/// Seconds after a boot before the first test (post_upgrade cannot make calls).
pub const AFTER_BOOT_SECS: u64 = 5;
/// Seconds between two tests.
pub const EVERY_SECS: u64 = 600;

/// Read-only tools and the arguments they are tested with.
const TOOLS: &[(&str, &str)] = &[
    ("recall", r#"{"key":"__selftest__"}"#),
    ("upgrade_status", "{}"),
    ("list_versions", "{}"),
];

fn now() -> u64 {
    ic_cdk::api::time()
}

fn me() -> Principal {
    ic_cdk::api::canister_self()
}

/// Schedules the tests of this module instance (called in init and post_upgrade). The last
/// verdict belonged to the module before: it is cleared until this module's first test.
pub fn start() {
    if sandbox::is_copy() {
        return;
    }
    if config::markers().self_test_failures.is_some() {
        config::update_markers(|m| m.self_test_failures = None);
    }
    ic_cdk_timers::set_timer(Duration::from_secs(AFTER_BOOT_SECS), async {
        run().await;
    });
    // A plain interval (see supervision::start for why not a serial one); `run` returns at once
    // while another test is under way.
    ic_cdk_timers::set_timer_interval(Duration::from_secs(EVERY_SECS), run);
}

thread_local! {
    static RUNNING: Cell<bool> = const { Cell::new(false) };
}

/// Clears [`RUNNING`] when a test ends, also when a callback of it traps.
struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.with(|r| r.set(false));
    }
}

/// The tools that failed in the last test (empty when it passed).
pub fn failures() -> Vec<String> {
    config::markers().self_test_failures.unwrap_or_default()
}

/// Why the controllers could not be checked or repaired, if so (an alert, not unhealthy:
/// restoring the agent's code would not fix its controllers).
pub fn control_alert() -> Option<String> {
    config::markers().control_alert
}

/// Runs the test once.
pub async fn run() {
    if RUNNING.with(|r| r.replace(true)) {
        return;
    }
    let _running = Running;
    let mut failed = vec![];
    for (tool, args) in TOOLS {
        match call_tool(tool, args).await {
            Some(Ok(())) => {}
            Some(Err(e)) => failed.push(format!("tool `{tool}`: {e}")),
            // Its response was lost on every attempt: inconclusive, the last verdict stands.
            None => return,
        }
    }
    let control = check_controllers().await.err();
    if control != config::markers().control_alert {
        if let Some(e) = &control {
            audit::append(now(), me(), "controllers.unrepaired", None, e.clone());
        }
        config::update_markers(|m| m.control_alert = control);
    }
    let before = failures();
    if failed != before {
        audit::append(
            now(),
            me(),
            if failed.is_empty() {
                "selftest.passed"
            } else {
                "selftest.failed"
            },
            None,
            failed.join("; "),
        );
    }
    config::update_markers(|m| m.self_test_failures = Some(failed));
}

/// One tool through a self-call: `None` when the outcome stayed unknown (the response was
/// dropped on every attempt), so a lossy network does not fail the test.
async fn call_tool(tool: &str, args: &str) -> Option<Result<(), String>> {
    for _ in 0..ic::HEARTBEAT_ATTEMPTS {
        let answer: Result<Result<String, AgentError>, CallError> = ic::call_args(
            me(),
            "call_tool",
            &(tool.to_string(), args.to_string()),
            Some(30),
        )
        .await;
        match answer {
            Ok(Ok(_)) => return Some(Ok(())),
            Ok(Err(e)) => return Some(Err(e.to_string())),
            Err(e) if e.outcome_unknown => continue,
            Err(e) => return Some(Err(e.to_string())),
        }
    }
    None
}

/// The agent and the watchdog control the agent; a missing one is added back.
async fn check_controllers() -> Result<(), String> {
    let status = management::status(me())
        .await
        .map_err(|e| format!("canister_status of the agent itself: {e}"))?;
    let mut controllers = status.settings.controllers.clone();
    let mut missing = vec![];
    for needed in std::iter::once(me()).chain(config::get().watchdog) {
        if !controllers.contains(&needed) {
            controllers.push(needed);
            missing.push(needed);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    management::set_controllers(me(), controllers)
        .await
        .map_err(|e| format!("adding back the controllers {missing:?}: {e}"))?;
    audit::append(
        now(),
        me(),
        "controllers.repaired",
        None,
        format!("{missing:?} had been removed from the agent's controllers and are back"),
    );
    Ok(())
}
