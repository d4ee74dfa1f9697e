//! `agentctl demo`, the main job: the agent, watchdog and staging canisters on the embedded
//! simulator, with `llm-standin` as the model. The demo deploys the three and wires mutual
//! control, gives the agent a task that the model decides needs new code (its self_upgrade
//! goes to `Committed` and the same turn uses the new method), offers a bad release and shows
//! its detection and restore, kills the watchdog and shows the agent repairing it. It ends with
//! a timeline (the model's turn, the journal, the watchdog) and a verdict.
//!
//! Each step checks its outcome; the demo exits 0 only if every step held. Times are simulated:
//! a round takes 1 ns, so only timers and timeouts take simulated seconds.

use anyhow::Result;
use candid::{Decode, Encode};
use canister_api::agent::{AgentError, Config, LlmSettings, TaskStatus, TurnRecord, UpgradeState};
use canister_api::cadence::{Cadence, DetectionBounds};
use std::time::Duration;
use testbed::llm::{add_method_ops, always, call, on_task, on_tool_result, say};
use testbed::{Options, Testbed, chaos_release, stranger};

/// The task the demo gives the agent.
const TASK: &str = "learn to greet people";

const LIMIT: Duration = Duration::from_secs(3600);

struct Demo {
    tb: Testbed,
    start: u64,
    steps: Vec<bool>,
}

impl Demo {
    fn t(&self, at: u64) -> f64 {
        at.saturating_sub(self.start) as f64 / 1e9
    }

    fn now(&self) -> f64 {
        self.t(self.tb.now_nanos())
    }

    fn step(&mut self, title: &str, held: bool, detail: String) {
        let mark = if held { "ok  " } else { "FAIL" };
        println!("[t+{:>7.1}s] {mark} {title}", self.now());
        for line in detail.lines() {
            println!("              {line}");
        }
        self.steps.push(held);
    }

    fn progress(&self, what: &str) {
        println!("[t+{:>7.1}s]      ... {what}", self.now());
    }
}

fn short(hash: &[u8]) -> String {
    hex::encode(&hash[..hash.len().min(6)])
}

/// Runs the demo; `Ok(true)` if every step held.
pub fn run() -> Result<bool> {
    Ok(run_on(Options::default())?.0)
}

/// Runs the demo on a trio deployed with `opts`; answers whether every step held, and the
/// trio (for `agentctl demo --serve`).
pub fn run_on(opts: Options) -> Result<(bool, Testbed)> {
    println!("agentctl demo: a self-upgrading agent and its watchdog on the embedded simulator\n");
    println!("[   setup  ]      ... building and loading the canister Wasm (first run: minutes)");
    // The model is llm-standin, whatever the caller's options.
    let tb = Testbed::deploy(Options { llm: true, ..opts });
    let start = tb.now_nanos();
    let mut d = Demo {
        tb,
        start,
        steps: vec![],
    };

    // 1. Deploy and wire.
    let seen = d.tb.run_until(LIMIT, |tb| {
        tb.watchdog_status().lkg.is_some()
            && tb.health().watchdog.is_some_and(|w| w.last_seen.is_some())
    });
    let (agent, watchdog) = (d.tb.agent, d.tb.watchdog);
    let agent_ctl = d.tb.sim.get_controllers(agent);
    let wd_ctl = d.tb.sim.get_controllers(watchdog);
    let mutual =
        agent_ctl.contains(&agent) && agent_ctl.contains(&watchdog) && wd_ctl.contains(&agent);
    let parent = d.tb.agent_module().unwrap_or_default();
    d.step(
        "deploy agent, watchdog and staging; wire mutual control",
        seen.is_some() && mutual,
        format!(
            "agent {agent} runs {}; the watchdog controls it and it controls the watchdog: {mutual}\n\
             both heartbeat each other every 10 s while anything happens, every 480 s once all is \
             quiet; the watchdog copied the LKG: {}",
            short(&parent),
            seen.is_some()
        ),
    );

    // 2. State.
    d.tb.seed_state(20, 20);
    let before = d.tb.digest();
    d.step(
        "the agent holds 20 tasks and 20 facts",
        before.tasks == 20 && before.facts == 20,
        format!("state digest {}", short(&before.sha256)),
    );

    // 3. The model decides the agent needs new code, and the same turn uses it.
    let turn = think(&mut d, &before)?;
    // The turn's task is the one change: what the rollback below must keep is the state now.
    let before = d.tb.digest();
    let lkg = d.tb.agent_module().unwrap_or_default();

    // 4. A bad release (after the gate's cooldown between two proposals).
    d.progress("the gate allows one proposal per 10 minutes: waiting it out");
    d.tb.run_for(Duration::from_secs(600));
    // The release is built from the source, so it lacks the method the model added: the
    // operator says that it breaks the interface on purpose, or the candid check refuses it.
    let bad = d.tb.try_propose_release_as(
        &chaos_release("health_trap_live"),
        "a release whose health traps",
        true,
    );
    let mut held = false;
    let mut detail = format!("propose_release answered {bad:?}");
    if let Ok(rec) = bad {
        d.progress(
            "a release that boots but whose health traps: rehearsal passes, probation does not",
        );
        // On probation the watchdog heartbeats at its fast cadence.
        let bounds: DetectionBounds =
            d.tb.query(watchdog, stranger(), "detection_bound_secs", Encode!()?);
        let bound = bounds.fast_secs;
        d.tb.run_until(LIMIT, |tb| tb.record(rec.id).state.is_terminal());
        let rec = d.tb.record(rec.id);
        let booted = rec
            .history
            .iter()
            .find(|t| t.state == UpgradeState::Booted)
            .map(|t| t.at);
        if let (Some(inc), Some(booted)) = (d.tb.incidents().last().cloned(), booted) {
            let detected_after = inc.detected_at.saturating_sub(booted) as f64 / 1e9;
            let within = within_bound(
                detected_after,
                bound,
                "the watchdog's detection_bound_secs (fast cadence, on probation)",
            );
            held = matches!(rec.state, UpgradeState::RolledBack(_))
                && d.tb.agent_module().as_ref() == Some(&lkg)
                && inc.records_lost == Some(0)
                && d.tb.digest().same_state(&before)
                && within.0;
            detail = format!(
                "booted at t+{:.0}s; detected t+{:.0}s ({:.0} s later; {}); restored t+{:.0}s by {}\n\
                 cause: {}\ndata lost: {}\nthe agent runs {} again",
                d.t(booted),
                d.t(inc.detected_at),
                detected_after,
                within.1,
                d.t(inc.restored_at.unwrap_or_default()),
                inc.ladder_step.map_or("-".into(), |s| format!("{s:?}")),
                inc.cause.split(" (last:").next().unwrap_or_default(),
                inc.data_lost,
                short(&lkg)
            );
        }
    }
    d.step(
        "a bad release is detected and rolled back, nothing lost",
        held,
        detail,
    );
    let writes = d.tb.try_remember("default", "after", "the rollback");
    d.step(
        "writes resume after the verdict",
        writes.is_ok(),
        format!("remember answered {writes:?}"),
    );

    // 5. Kill the watchdog (its event log goes with it: keep it for the timeline).
    let earlier_events = d.tb.events();
    // The bound is the one of the cadence the agent heartbeats the watchdog at when it dies.
    let agent_cadence = d.tb.health().watchdog.and_then(|w| w.cadence);
    let _ = d.tb.sim.uninstall_canister(watchdog, Some(d.tb.operator));
    d.progress("the watchdog is uninstalled");
    let repaired = d.tb.run_until(LIMIT, |tb| {
        tb.audit()
            .entries
            .iter()
            .any(|e| e.action == "watchdog.repaired")
    });
    d.tb.run_until(LIMIT, |tb| tb.watchdog_status().lkg.is_some());
    let status = d.tb.watchdog_status();
    let config: Result<Config, AgentError> = d.tb.agent_query("get_config", Encode!()?);
    let supervision = config
        .map_err(|e| anyhow::anyhow!("get_config: {e}"))?
        .supervision
        .unwrap_or_default();
    let (agent_bound, source) = match agent_cadence {
        Some(Cadence::Steady) => (
            supervision.steady_detection_bound_secs(),
            "the agent's supervision settings, steady cadence",
        ),
        _ => (
            supervision.detection_bound_secs(),
            "the agent's supervision settings, fast cadence",
        ),
    };
    let within = within_bound(
        repaired.map_or(f64::INFINITY, |r| r.as_secs_f64()),
        agent_bound,
        source,
    );
    d.step(
        "the agent repairs its killed watchdog",
        repaired.is_some() && status.lkg.as_ref().map(|l| &l.hash) == Some(&lkg) && within.0,
        format!(
            "reinstalled {:.0} s after the kill ({}) with its settings, operators and LKG {}",
            repaired.map_or(f64::NAN, |r| r.as_secs_f64()),
            within.1,
            status
                .lkg
                .as_ref()
                .map_or("none".into(), |l| short(&l.hash))
        ),
    );

    timeline(&d, earlier_events, turn.as_ref());
    let ok = d.steps.iter().filter(|h| **h).count();
    println!("\nverdict: {ok}/{} steps held", d.steps.len());
    Ok((ok == d.steps.len(), d.tb))
}

/// Scripts the stand-in as a model that wants to learn to greet, gives the agent the task, and
/// follows it to the answer. Answers the turn.
fn think(d: &mut Demo, before: &canister_api::agent::StateDigest) -> Result<Option<TurnRecord>> {
    let ops = add_method_ops("hello", "hi");
    d.tb.load_script(
        "demo",
        vec![
            on_task(
                TASK,
                call(&[("self_upgrade", &[("ops", &ops), ("reason", TASK)])]),
            ),
            on_tool_result(
                "Committed",
                call(&[("call_own_method", &[("method", "hello")])]),
            ),
            on_tool_result(
                "\"reply\":\"hi\"",
                say("I can greet people now: my new method hello answers \"hi\"."),
            ),
            // The seeded tasks ("task N"), after the demo's own.
            always(on_task("task ", say("done"))),
        ],
    );
    d.tb.set_llm(LlmSettings {
        canister: d.tb.llm,
        interval_secs: 5,
        ..LlmSettings::default()
    })
    .map_err(|e| anyhow::anyhow!("set_llm: {e}"))?;
    // The demo's task goes first (High); the loop answers the seeded ones after it.
    let task =
        d.tb.agent_update::<Result<canister_api::agent::Task, canister_api::agent::AgentError>>(
            d.tb.operator,
            "submit_task",
            Encode!(&canister_api::agent::SubmitTask {
                description: TASK.into(),
                priority: Some(canister_api::agent::Priority::High),
            })?,
        )
        .map_err(|e| anyhow::anyhow!("submit_task: {e}"))?;
    d.tb.set_loop_enabled(true)
        .map_err(|e| anyhow::anyhow!("set_loop_enabled: {e}"))?;
    d.progress(&format!(
        "task {} \"{TASK}\" -> the model (llm-standin, scripted) -> its tools",
        task.id
    ));
    let done = d.tb.run_until_task_ends(task.id, LIMIT);
    let seeded: Vec<u64> = (1..task.id).collect();
    for id in &seeded {
        d.tb.run_until_task_ends(*id, LIMIT);
    }
    let answered = seeded
        .iter()
        .filter(|id| d.tb.task(**id).answer.as_deref() == Some("done"))
        .count();
    d.tb.set_loop_enabled(false)
        .map_err(|e| anyhow::anyhow!("set_loop_enabled: {e}"))?;
    let turn = done.turn_id.map(|id| d.tb.turn(id));
    let upgrade = turn
        .as_ref()
        .and_then(|t| t.tool_calls.iter().find_map(|c| c.upgrade_id))
        .map(|id| d.tb.record(id));
    let hello =
        d.tb.sim
            .query_call(d.tb.agent, stranger(), "hello", Encode!()?)
            .ok()
            .and_then(|b| Decode!(&b, String).ok());
    let facts_kept = d.tb.digest().facts == before.facts;
    let (held, detail) = match (&turn, &upgrade) {
        (Some(turn), Some(rec)) => {
            let states: Vec<String> = rec
                .history
                .iter()
                .map(|t| {
                    format!("{:?}@{:.0}s", t.state, d.t(t.at))
                        .replace("(\"", "(")
                        .replace("\")", ")")
                })
                .collect();
            (
                done.status == TaskStatus::Done
                    && rec.state == UpgradeState::Committed
                    && hello.as_deref() == Some("hi")
                    && facts_kept
                    && answered == seeded.len(),
                format!(
                    "turn {}: {} model calls; the model called {}\n\
                     upgrade {}: {}\n\
                     new module {}; `hello` answers {hello:?}; facts unchanged: {facts_kept}\n\
                     task {} {:?}: {}\n\
                     then the {answered} seeded tasks, one turn each",
                    turn.id,
                    turn.model_calls,
                    turn.tool_calls
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    rec.id,
                    states.join(" -> "),
                    short(&rec.candidate_hash),
                    done.id,
                    done.status,
                    done.answer.as_deref().unwrap_or("-")
                ),
            )
        }
        _ => (
            false,
            format!("the turn did not upgrade the agent: {done:?}"),
        ),
    };
    d.step(
        "the model decides to upgrade: self_upgrade adds a method, commits, and the same turn uses it",
        held,
        detail,
    );
    Ok(turn)
}

/// Whether `measured` seconds are within `bound`, and the words for it (`source`: where the
/// bound was read).
fn within_bound(measured: f64, bound: u64, source: &str) -> (bool, String) {
    let held = measured <= bound as f64;
    let verdict = if held { "within" } else { "OVER" };
    (
        held,
        format!("{verdict} the bound of {bound} s from {source}"),
    )
}

/// The model's turn, the upgrade journal and the watchdog's log, merged by time.
fn timeline(
    d: &Demo,
    earlier_events: Vec<canister_api::watchdog::WatchdogEvent>,
    turn: Option<&TurnRecord>,
) {
    const AGENT: &[&str] = &[
        "upgrade.",
        "agent.restored_by_watchdog",
        "watchdog.repair_started",
        "watchdog.repaired",
    ];
    const WATCHDOG: &[&str] = &[
        "arm.snapshot",
        "verify.installed",
        "verify.unhealthy",
        "verify.probation_passed",
        "commit",
        "ladder.start",
        "ladder.restored",
        "repair.by_agent",
    ];
    let mut lines: Vec<(u64, String)> = vec![];
    for e in d.tb.audit().entries {
        if AGENT.iter().any(|a| e.action.starts_with(a)) {
            lines.push((
                e.at,
                format!("agent     {:<28} {}", e.action, first_line(&e.detail)),
            ));
        }
    }
    for e in earlier_events.into_iter().chain(d.tb.events()) {
        if WATCHDOG.contains(&e.action.as_str()) {
            lines.push((
                e.at,
                format!("watchdog  {:<28} {}", e.action, first_line(&e.detail)),
            ));
        }
    }
    for e in turn
        .iter()
        .flat_map(|t| t.events.iter().map(move |e| (t.id, e)))
    {
        let (id, e) = e;
        lines.push((
            e.at,
            format!("model     turn {id:<23} {}", first_line(&e.what)),
        ));
    }
    lines.sort_by_key(|(at, _)| *at);
    println!("\ntimeline (simulated):");
    for (at, line) in lines {
        println!("  t+{:>7.1}s  {line}", d.t(at));
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() > 90 {
        format!("{}...", line.chars().take(90).collect::<String>())
    } else {
        line.to_string()
    }
}
