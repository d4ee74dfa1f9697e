//! Issues 16 and 17 together: the model gives the agent a tool it did not have (a
//! `self_upgrade` with `add_tool`), and the same turn, resumed in the new module after the
//! commit, calls that tool by name; the tool's facts land in its own namespace.

use canister_api::agent::{Autonomy, LlmSettings, TaskStatus, ToolCallStatus, UpgradeState};
use std::time::Duration;
use testbed::llm::{call, on_task, on_tool_result, say};
use testbed::{Options, Testbed};
use wasm_patch::tool_spec;

const LIMIT: Duration = Duration::from_secs(30 * 60);

#[test]
fn the_model_adds_a_tool_and_the_same_turn_calls_it() {
    let tb = Testbed::deploy(Options {
        autonomy: Autonomy::Auto,
        llm: true,
        ..Options::default()
    });
    tb.set_llm(LlmSettings {
        canister: tb.llm,
        interval_secs: 5,
        ..LlmSettings::default()
    })
    .expect("set_llm");
    tb.set_loop_enabled(true).expect("set_loop_enabled");
    let spec = tool_spec::samples::json("tally_vote").expect("the sample spec");
    let ops = serde_json::json!([{"op": "add_tool", "spec": spec}]).to_string();
    tb.load_script(
        "votes",
        vec![
            on_task(
                "count the votes",
                call(&[(
                    "self_upgrade",
                    &[("ops", &ops), ("reason", "count the votes")],
                )]),
            ),
            on_tool_result("Committed", call(&[("tally_vote", &[("option", "yes")])])),
            on_tool_result("\"votes\":1", say("I can count votes now: yes has 1.")),
        ],
    );
    assert!(!tb.tool_names().contains(&"tally_vote".to_string()));
    let task = tb.try_submit("count the votes").expect("submit_task");

    let done = tb.run_until_task_ends(task.id, LIMIT);
    assert_eq!(done.status, TaskStatus::Done, "{done:?}");
    assert_eq!(
        done.answer.as_deref(),
        Some("I can count votes now: yes has 1.")
    );

    let turn = tb.turn(tb.task(task.id).turn_id.expect("a turn took the task"));
    let proposed = turn
        .tool_calls
        .iter()
        .find(|c| c.name == "self_upgrade")
        .expect("the model called self_upgrade");
    let id = proposed.upgrade_id.expect("an upgrade was proposed");
    let rec = tb.record(id);
    assert_eq!(rec.state, UpgradeState::Committed, "{:?}", rec.history);
    let probe = rec
        .rehearsal
        .expect("a rehearsal report")
        .probes
        .into_iter()
        .find(|p| p.name == "tool_examples")
        .expect("the rehearsal ran the tool's examples");
    assert!(probe.ok, "{probe:?}");

    let used = turn
        .tool_calls
        .iter()
        .find(|c| c.name == "tally_vote")
        .expect("the model called the new tool");
    assert_eq!(
        used.status,
        ToolCallStatus::Done(r#"{"option":"yes","votes":1}"#.into())
    );
    assert!(tb.tool_names().contains(&"tally_vote".to_string()));
    let ns = tool_spec::namespace("tally_vote");
    let facts: Vec<(String, String)> = tb
        .facts()
        .into_iter()
        .filter(|f| f.namespace == ns)
        .map(|f| (f.key, f.value))
        .collect();
    assert_eq!(facts, [("yes".to_string(), "1".to_string())]);
}
