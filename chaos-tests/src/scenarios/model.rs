//! The fault kinds of the turn loop: the model (`llm-standin`, scripted) proposes a bad upgrade,
//! proposes one every turn, is unavailable, or has its turn interrupted by its own upgrade.
//!
//! Each runs its turns on a seeded trio with the loop off until the scenario turns it on for
//! its own tasks (High priority, so they go before the seeded ones, which the model then
//! answers with "done"), and off again once every task ended. The facts must come through
//! untouched and every seeded task answered; the turns are the legitimate change, so the
//! baseline digest is taken again after them.

use crate::report::Outcome;
use crate::scenarios::{Scenario, scenario};
use crate::{Run, SETTLE_LIMIT};
use candid::Encode;
use canister_api::agent::{
    AgentError, LlmSettings, Priority, SubmitTask, Task, TaskStatus, ToolCallStatus, TurnRecord,
};
use canister_api::llm::ScriptStep;
use ic_sim::{CanisterStatusType, Fault};
use testbed::llm::{add_method_ops, always, call, on_task, on_tool_result, say};
use testbed::{Testbed, operator};

const REJECTED: &[Outcome] = &[Outcome::Rejected];
const COMMITTED: &[Outcome] = &[Outcome::Committed];

/// A scenario that deploys the stand-in too.
fn with_model(
    name: &'static str,
    about: &'static str,
    allowed: &'static [Outcome],
    inject: impl Fn(&mut Run) + Send + Sync + 'static,
) -> Scenario {
    Scenario {
        llm: true,
        ..scenario(name, about, allowed, inject)
    }
}

/// Submits `tasks` (High priority) with `steps` loaded, runs the loop until they and the
/// seeded tasks ended (the model answers a seeded `task N` with "done"), turns it off, checks
/// the seeded state came through, and takes the baseline again. Answers the scenario's tasks as
/// they ended, with their turns.
fn model_turns(run: &mut Run, steps: Vec<ScriptStep>, tasks: &[&str]) -> Vec<(Task, TurnRecord)> {
    model_turns_with(run, steps, tasks, |_| {}, |_| {})
}

/// [`model_turns`] with a fault: `inject` runs just before the loop is turned on, `heal` once
/// the scenario's own tasks ended (before the seeded ones are worked on).
fn model_turns_with(
    run: &mut Run,
    mut steps: Vec<ScriptStep>,
    tasks: &[&str],
    inject: impl FnOnce(&Testbed),
    heal: impl FnOnce(&Testbed),
) -> Vec<(Task, TurnRecord)> {
    let tb = &run.tb;
    let facts = tb.facts();
    let seeded = tb.tasks();
    steps.push(always(on_task("task ", say("done"))));
    tb.load_script("chaos", steps);
    tb.set_llm(LlmSettings {
        canister: tb.llm,
        interval_secs: 5,
        timeout_secs: 10,
        ..LlmSettings::default()
    })
    .expect("set_llm");
    let submitted: Vec<Task> = tasks
        .iter()
        .map(|d| {
            let r: Result<Task, AgentError> = tb.agent_update(
                operator(),
                "submit_task",
                Encode!(&SubmitTask {
                    description: d.to_string(),
                    priority: Some(Priority::High),
                })
                .expect("encode"),
            );
            r.expect("submit_task")
        })
        .collect();
    inject(tb);
    tb.set_loop_enabled(true).expect("set_loop_enabled");
    let ended: Vec<Task> = submitted
        .iter()
        .map(|t| tb.run_until_task_ends(t.id, SETTLE_LIMIT))
        .collect();
    heal(tb);
    for s in &seeded {
        tb.run_until_task_ends(s.id, SETTLE_LIMIT);
    }
    tb.set_loop_enabled(false).expect("set_loop_enabled");
    let seeded_done = seeded.iter().all(|s| {
        let now = tb.task(s.id);
        now.description == s.description
            && now.status == TaskStatus::Done
            && now.answer.as_deref() == Some("done")
    });
    let facts_after = tb.facts();
    let unfinished = seeded
        .iter()
        .map(|s| tb.task(s.id))
        .find(|t| t.status != TaskStatus::Done);
    let untouched = facts_after == facts && seeded_done;
    run.expect(untouched, || {
        format!(
            "the turns changed the seeded facts ({} -> {}) or did not answer a seeded task: {unfinished:?}",
            facts.len(),
            facts_after.len(),
        )
    });
    run.before = run.tb.digest();
    ended
        .into_iter()
        .map(|t| {
            let turn = run.tb.turn(t.turn_id.unwrap_or_default());
            (t, turn)
        })
        .collect()
}

fn self_upgrade_result(turn: &TurnRecord) -> Option<&ToolCallStatus> {
    turn.tool_calls
        .iter()
        .find(|c| c.name == "self_upgrade")
        .map(|c| &c.status)
}

/// Patches a model might propose that must never run: each is refused by wasm-patch or the
/// validation (`ops` as the model writes them).
const BAD_PATCHES: &[(&str, &str)] = &[
    (
        "removes health",
        r#"[{"op":"remove_method","name":"health"}]"#,
    ),
    (
        "removes complete_upgrade (disables supervision)",
        r#"[{"op":"remove_method","name":"complete_upgrade"}]"#,
    ),
    (
        "adds a method named like an existing one",
        r#"[{"op":"add_query_method","name":"health","reply_hex":"4449444c0000"}]"#,
    ),
    (
        "overwrites the version stamp",
        r#"[{"op":"set_metadata","visibility":"public","name":"agent:version","content":"fake"}]"#,
    ),
    (
        "a reply that is not hex",
        r#"[{"op":"add_query_method","name":"hello","reply_hex":"zz"}]"#,
    ),
];

/// Every model fault kind.
pub fn all() -> Vec<Scenario> {
    vec![
        with_model(
            "llm_proposes_bad_upgrade",
            "the model's self_upgrade is a bad patch (one of five, by seed): refused, the model told",
            REJECTED,
            |run| {
                let (what, ops) = BAD_PATCHES[run.rng.below(BAD_PATCHES.len() as u64) as usize];
                run.notes.push(format!("the model's patch {what}"));
                let steps = vec![
                    on_task(
                        "improve yourself",
                        call(&[("self_upgrade", &[("ops", ops), ("reason", what)])]),
                    ),
                    on_tool_result("error", say("My patch was refused; I keep my code.")),
                ];
                let turns = model_turns(run, steps, &["improve yourself"]);
                let Some((task, turn)) = turns.first() else {
                    return;
                };
                match self_upgrade_result(turn) {
                    Some(ToolCallStatus::Failed(why)) => run.refused = Some(why.clone()),
                    other => run.expect(false, || {
                        format!("the bad patch was not refused: {other:?}")
                    }),
                }
                run.expect(task.status == TaskStatus::Done, || {
                    format!("the model was not told and did not answer: {task:?}")
                });
            },
        ),
        with_model(
            "llm_upgrade_storm",
            "the model calls self_upgrade in each of 4 turns: one commits, the gate refuses the rest",
            COMMITTED,
            |run| {
                let ops = add_method_ops("hello", "hi");
                let steps = vec![
                    always(on_task(
                        "grow",
                        call(&[("self_upgrade", &[("ops", &ops), ("reason", "grow")])]),
                    )),
                    always(on_tool_result("Committed", say("I grew."))),
                    always(on_tool_result("error", say("Not now."))),
                ];
                let turns = model_turns(run, steps, &["grow 1", "grow 2", "grow 3", "grow 4"]);
                let proposed: Vec<u64> = turns
                    .iter()
                    .filter_map(|(_, t)| t.tool_calls.iter().find_map(|c| c.upgrade_id))
                    .collect();
                let refused = turns
                    .iter()
                    .filter(|(_, t)| {
                        matches!(self_upgrade_result(t),
                            Some(ToolCallStatus::Failed(why)) if why.contains("rate limited"))
                    })
                    .count();
                run.notes.push(format!(
                    "{} turns, upgrades proposed {proposed:?}, {refused} refused by the gate",
                    turns.len()
                ));
                run.upgrade = proposed.first().copied();
                run.expect(proposed.len() == 1 && refused == turns.len() - 1, || {
                    format!("the rate limit did not hold: proposed {proposed:?}, {refused} refused")
                });
            },
        ),
        with_model(
            "llm_unavailable",
            "the LLM canister is stopped, rejects every call, or never answers (by seed): the turn fails cleanly",
            REJECTED,
            |run| {
                let standin = run.tb.standin();
                let how = run.rng.below(3);
                run.notes.push(
                    ["stopped", "calls fail (queue full)", "never answers"][how as usize].into(),
                );
                let ops = add_method_ops("hello", "hi");
                let steps = vec![on_task(
                    "learn to greet people",
                    call(&[("self_upgrade", &[("ops", &ops), ("reason", "greet")])]),
                )];
                let stopped = std::cell::Cell::new(false);
                let turns = model_turns_with(
                    run,
                    steps,
                    &["learn to greet people"],
                    |tb| match how {
                        0 => {
                            tb.sim
                                .stop_canister(standin, Some(operator()))
                                .expect("stop the stand-in");
                            stopped.set(
                                tb.sim.canister_run_status(standin)
                                    == Some(CanisterStatusType::Stopped),
                            );
                        }
                        1 => tb.sim.inject(Fault::FailCallsTo { canister: standin }),
                        _ => tb.sim.inject(Fault::HoldResponses { from: standin }),
                    },
                    |tb| {
                        tb.sim.clear_faults();
                        tb.sim.release_held_responses();
                        if how == 0 {
                            tb.sim
                                .start_canister(standin, Some(operator()))
                                .expect("start the stand-in");
                        }
                    },
                );
                let struck = match how {
                    0 => stopped.get(),
                    1 => run.tb.sim.faults_fired().calls_failed > 0,
                    _ => run.tb.sim.faults_fired().responses_held > 0,
                };
                let Some((task, turn)) = turns.first() else {
                    return;
                };
                let failed = task.status == TaskStatus::Failed
                    && turn.model_failures == 3
                    && task
                        .answer
                        .as_deref()
                        .is_some_and(|a| a.contains("could not be reached"));
                run.expect(struck && failed, || {
                    format!(
                        "the outage did not fail the turn cleanly: {task:?}, {} failures",
                        turn.model_failures
                    )
                });
                run.refused = task.answer.clone();
            },
        ),
        with_model(
            "upgrade_mid_turn",
            "the model's self_upgrade installs new code mid-turn; the turn resumes in it and uses the new method",
            COMMITTED,
            |run| {
                let ops = add_method_ops("hello", "hi");
                let steps = vec![
                    on_task(
                        "learn to greet people",
                        call(&[("self_upgrade", &[("ops", &ops), ("reason", "greet")])]),
                    ),
                    on_tool_result(
                        "Committed",
                        call(&[("call_own_method", &[("method", "hello")])]),
                    ),
                    on_tool_result("\"reply\":\"hi\"", say("I can greet now.")),
                ];
                let parent = run.parent.clone();
                let turns = model_turns(run, steps, &["learn to greet people"]);
                let Some((task, turn)) = turns.first() else {
                    return;
                };
                run.upgrade = turn.tool_calls.iter().find_map(|c| c.upgrade_id);
                let candidate = run
                    .upgrade
                    .map(|id| run.tb.record(id).candidate_hash)
                    .unwrap_or_default();
                let resumed = turn.events.iter().any(|e| {
                    candidate.len() >= 6
                        && e.what.contains("the turn resumes in module")
                        && e.what.contains(&hex::encode(&candidate[..6]))
                });
                run.expect(
                    task.status == TaskStatus::Done
                        && turn.started_module.as_ref() == Some(&parent)
                        && resumed,
                    || {
                        format!(
                            "the turn did not resume in the new module: {task:?}, events {:?}",
                            turn.events
                        )
                    },
                );
            },
        ),
    ]
}
