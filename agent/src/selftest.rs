//! Service: the agent's self-test, run by a live agent (never a sandbox copy) shortly after
//! every boot and then every [`EVERY_SECS`], or every [`STEADY_EVERY_SECS`] while the
//! supervision is at its steady cadence ([`follow`]):
//!
//! - tools: each read-only tool (`recall`, `upgrade_status`, `list_versions`) is called through
//!   a self-call, so a tool that traps shows up as a reject instead of taking the test down;
//! - writes: the canary write (`canary_write`, a fact and a task written and undone), through a
//!   self-call too;
//! - controllers: canister_status of the agent itself must list the expected controllers (the
//!   agent, the watchdog and the operators). A missing one is added back (the agent controls
//!   itself) and the repair is audited. One that the last test had seen and that is gone now
//!   is a failure: a version that drops its operators or its watchdog is not kept. (An
//!   operator added with `set_operators` is made a controller without failing anything.) A
//!   controller nobody expects is an alert only.
//!
//! Only the code's own failures count ([`Failure::Code`]: a trap, an error answer): a call
//! refused because the agent is stopping (the watchdog's snapshot stops it), stopped, out of
//! cycles, or lost on the network is inconclusive, and the last verdict stands. A failure
//! makes `health` answer `unhealthy` until a later test passes, so the watchdog rolls back a
//! version whose tools or writes are broken even though it boots and answers. Controllers that
//! cannot be checked or repaired (the agent is not its own controller) are an alert in
//! `health.alerts` instead: another version would not fix them. No test starts while the agent
//! drains its calls before an install (`pipeline::quiet`).

use crate::api::AgentError;
use crate::{audit, config, pipeline, sandbox};
use candid::Principal;
use canister_api::agent::AgentMethod;
use canister_api::cadence::Cadence;
use canister_api::cdk::{Busy, me, now};
use canister_api::failure::Failure;
use canister_api::ic::{self, CallError, management};
use std::cell::Cell;
use std::time::Duration;

/// Seconds after a boot before the first test (post_upgrade cannot make calls).
pub const AFTER_BOOT_SECS: u64 = 5;
/// Seconds between two tests at the fast cadence (an upgrade in flight, a repair, a missed
/// heartbeat: see `supervision::cadence`).
pub const EVERY_SECS: u64 = 600;
/// Seconds between two tests at the steady cadence (nothing happens: the code that runs has
/// passed its tests since its boot).
pub const STEADY_EVERY_SECS: u64 = 3600;

/// Read-only tools and the arguments they are tested with (the writes are the canary's).
const TOOLS: &[(&str, &str)] = &[
    ("recall", r#"{"key":"__selftest__"}"#),
    ("upgrade_status", "{}"),
    ("list_versions", "{}"),
];

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
    if TIMER.with(|t| t.get()).is_none() {
        follow(Cadence::Fast);
    }
}

/// Runs the tests every [`EVERY_SECS`] at the fast cadence and every [`STEADY_EVERY_SECS`] at
/// the steady one (the supervision's cadence, which calls this when it changes).
pub fn follow(cadence: Cadence) {
    if sandbox::is_copy() {
        return;
    }
    let period = match cadence {
        Cadence::Fast => EVERY_SECS,
        Cadence::Steady => STEADY_EVERY_SECS,
    };
    if TIMER.with(|t| t.get()).is_some_and(|(_, p)| p == period) {
        return;
    }
    if let Some((old, _)) = TIMER.with(|t| t.take()) {
        ic_cdk_timers::clear_timer(old);
    }
    // A plain interval (see supervision::start for why not a serial one); `run` returns at once
    // while another test is under way.
    let id = ic_cdk_timers::set_timer_interval(Duration::from_secs(period), run);
    TIMER.with(|t| t.set(Some((id, period))));
}

thread_local! {
    static RUNNING: Cell<bool> = const { Cell::new(false) };
    /// The interval of the tests and its period.
    static TIMER: Cell<Option<(ic_cdk_timers::TimerId, u64)>> = const { Cell::new(None) };
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
    if pipeline::quiet().is_some() {
        return;
    }
    if RUNNING.with(|r| r.replace(true)) {
        return;
    }
    let _running = Busy::hold(&RUNNING, true);
    let mut failed = vec![];
    for (tool, args) in TOOLS {
        let answer = self_call(AgentMethod::CallTool, &(tool.to_string(), args.to_string())).await;
        match answer {
            Some(Ok(())) => {}
            Some(Err(e)) => failed.push(format!("tool `{tool}`: {e}")),
            // Inconclusive (see the module docs): the last verdict stands.
            None => return,
        }
    }
    // Mutant (issue 12 item 8 reverted): the self-test makes no write.
    #[cfg(not(feature = "mutant-canary"))]
    match self_call(AgentMethod::CanaryWrite, &()).await {
        Some(Ok(())) => {}
        Some(Err(e)) => failed.push(format!("writes: {e}")),
        None => return,
    }
    let control = match check_controllers().await {
        Ok(changed) => {
            if let Some(change) = changed {
                failed.push(format!("controllers: {change}"));
            }
            None
        }
        Err(e) => Some(e),
    };
    if control != config::markers().control_alert {
        if let Some(e) = &control {
            audit::append(now(), me(), "controllers.alert", None, e.clone());
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

/// One self-call of a method answering `Result<_, AgentError>`: `Some(Ok)`, `Some(Err)` for a
/// failure of the code, `None` when the outcome says nothing about the code (the response was
/// lost on every attempt, the agent is stopping or stopped, out of cycles).
async fn self_call<A: candid::utils::ArgumentEncoder>(
    method: AgentMethod,
    args: &A,
) -> Option<Result<(), String>> {
    for _ in 0..ic::HEARTBEAT_ATTEMPTS {
        let answer: Result<Result<String, AgentError>, CallError> =
            ic::agent_call(me(), method, args, Some(30)).await;
        match answer {
            Ok(Ok(_)) => return Some(Ok(())),
            Ok(Err(e)) => return Some(Err(e.to_string())),
            Err(e) if e.outcome_unknown && !e.late => continue,
            Err(e) => {
                return match e.failure() {
                    Failure::Code => Some(Err(e.to_string())),
                    // Mutant (issue 12 item 10 reverted): every reject fails the test.
                    _ if cfg!(feature = "mutant-failure-classes") => Some(Err(e.to_string())),
                    _ => None,
                };
            }
        }
    }
    None
}

/// The controllers the agent must have: itself, the watchdog, the operators.
fn expected_controllers() -> Vec<Principal> {
    let cfg = config::get();
    // Mutant (issue 12 item 9 reverted): the operators are not expected.
    let operators = cfg
        .operators
        .into_iter()
        .filter(|_| !cfg!(feature = "mutant-controllers"));
    std::iter::once(me())
        .chain(cfg.watchdog)
        .chain(operators)
        .collect()
}

/// Checks the agent's controllers against [`expected_controllers`]; a missing one is added
/// back. `Ok(Some(change))` when one that the last test had seen was removed (a failure of this
/// version), `Err` when they could not be read or repaired, or someone unexpected controls the
/// agent (an alert).
async fn check_controllers() -> Result<Option<String>, String> {
    let status = management::status(me())
        .await
        .map_err(|e| format!("canister_status of the agent itself: {e}"))?;
    let mut controllers = status.settings.controllers.clone();
    let expected = expected_controllers();
    let seen = config::markers().controllers_seen.unwrap_or_default();
    let extra: Vec<Principal> = controllers
        .iter()
        .filter(|c| !expected.contains(c))
        .copied()
        .collect();
    let missing: Vec<Principal> = expected
        .iter()
        .filter(|c| !controllers.contains(c))
        .copied()
        .collect();
    let removed: Vec<Principal> = missing
        .iter()
        .filter(|c| seen.contains(c))
        .copied()
        .collect();
    // Mutant (issue 12 item 9 reverted): a removed controller is no failure.
    let change = (!removed.is_empty() && !cfg!(feature = "mutant-controllers")).then(|| {
        let names: Vec<String> = removed.iter().map(Principal::to_text).collect();
        format!(
            "{} were removed from the agent's controllers",
            names.join(", ")
        )
    });
    if !missing.is_empty() {
        #[cfg(feature = "chaos")]
        if crate::chaos::skips_control_repair() {
            return Ok(change);
        }
        controllers.extend(missing.iter().copied());
        if controllers.len() > 10 {
            return Err(format!(
                "{missing:?} should control the agent and cannot be added: the IC allows 10 \
                 controllers and it has {}",
                controllers.len() - missing.len()
            ));
        }
        management::set_controllers(me(), controllers.clone())
            .await
            .map_err(|e| format!("adding the controllers {missing:?}: {e}"))?;
        audit::append(
            now(),
            me(),
            "controllers.repaired",
            None,
            format!("{missing:?} did not control the agent and were added"),
        );
    }
    config::update_markers(|m| m.controllers_seen = Some(controllers));
    if change.is_none() && !extra.is_empty() {
        return Err(format!(
            "{extra:?} control the agent but are neither the agent, the watchdog nor an \
             operator: remove them (dfx canister update-settings agent --remove-controller) or \
             make them operators"
        ));
    }
    Ok(change.map(|c| format!("{c} (added back)")))
}
