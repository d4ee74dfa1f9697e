//! Synthesized tools end to end on the three canisters (issue 17): a tool spec given to
//! `self_upgrade` becomes compiled code that staging rehearses (its examples on the sandbox),
//! the watchdog commits, `tools` lists and `call_tool` runs; its facts outlive later upgrades;
//! `remove_tool` takes it away. A miscompiled tool fails the rehearsal and is never installed.

use canister_api::agent::{AgentError, Fact, UpgradeRecord, UpgradeState};
use serde_json::{Value, json};
use std::time::Duration;
use testbed::{Options, Testbed, chaos_candidate};
use wasm_patch::tool_spec;

const LIMIT: Duration = Duration::from_secs(30 * 60);
/// The gate allows one proposal per 10 minutes.
const COOLDOWN: Duration = Duration::from_secs(601);

fn id_of(out: &str) -> u64 {
    let v: Value = serde_json::from_str(out).expect("the tool answers JSON");
    v["id"].as_u64().expect("a numeric id in the tool's answer")
}

fn finish(tb: &Testbed, out: Result<String, AgentError>) -> UpgradeRecord {
    let id = id_of(&out.expect("self_upgrade is accepted"));
    tb.run_until(LIMIT, |tb| tb.record(id).state.is_terminal())
        .unwrap_or_else(|| panic!("upgrade {id} did not finish: {:?}", tb.record(id)));
    tb.record(id)
}

fn tally(tb: &Testbed, option: &str) -> Result<Value, AgentError> {
    tb.tool("tally_vote", &json!({"option": option}).to_string())
        .map(|out| serde_json::from_str(&out).expect("the tool answers JSON"))
}

fn tool_facts(tb: &Testbed, tool: &str) -> Vec<(String, String)> {
    let ns = tool_spec::namespace(tool);
    tb.facts()
        .into_iter()
        .filter(|f: &Fact| f.namespace == ns)
        .map(|f| (f.key, f.value))
        .collect()
}

fn sample(name: &str) -> Value {
    tool_spec::samples::json(name).expect("a sample spec")
}

#[test]
fn tally_vote_is_rehearsed_committed_called_kept_across_upgrades_and_removed() {
    let tb = Testbed::deploy(Options::default());
    tb.seed_state(5, 5);
    let builtins = tb.tool_names();
    assert!(!builtins.contains(&"tally_vote".to_string()));

    let rec = finish(
        &tb,
        tb.self_upgrade_add_tool(sample("tally_vote"), "count votes"),
    );
    assert_eq!(rec.state, UpgradeState::Committed, "{:?}", rec.history);
    let report = rec.rehearsal.expect("a rehearsal report");
    let probe = report
        .probes
        .iter()
        .find(|p| p.name == "tool_examples")
        .expect("the tool_examples probe ran");
    assert!(probe.ok, "{probe:?}");
    assert!(
        probe.detail.starts_with("1 tools, 2 examples passed"),
        "{}",
        probe.detail
    );
    assert_eq!(tb.agent_module(), Some(rec.candidate_hash.clone()));

    // `tools` lists it after the built-ins; `call_tool` runs it; its facts are its own.
    let mut listed = builtins.clone();
    listed.push("tally_vote".into());
    assert_eq!(tb.tool_names(), listed);
    assert_eq!(tally(&tb, "yes"), Ok(json!({"option": "yes", "votes": 1})));
    assert_eq!(tally(&tb, "yes"), Ok(json!({"option": "yes", "votes": 2})));
    assert_eq!(tally(&tb, "no"), Ok(json!({"option": "no", "votes": 1})));
    assert_eq!(
        tool_facts(&tb, "tally_vote"),
        [("no".into(), "1".into()), ("yes".into(), "2".into())]
    );
    match tb.tool("tally_vote", r#"{"option": 3}"#) {
        Err(AgentError::InvalidArgument(m)) => assert_eq!(
            m,
            "tool `tally_vote`: args.option: expected a string, found an integer"
        ),
        other => panic!("{other:?}"),
    }

    // A later upgrade (another tool) keeps the facts, and the first tool.
    tb.run_for(COOLDOWN);
    let rec = finish(
        &tb,
        tb.self_upgrade_add_tool(sample("word_stats"), "summarise words"),
    );
    assert_eq!(rec.state, UpgradeState::Committed, "{:?}", rec.history);
    assert_eq!(tally(&tb, "yes"), Ok(json!({"option": "yes", "votes": 3})));
    let stats: Value = serde_json::from_str(
        &tb.tool("word_stats", r#"{"words": ["ab", "cde"]}"#)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stats["total"], 5);

    // remove_tool: gone from `tools` and `call_tool`; its facts stay in the agent's memory.
    tb.run_for(COOLDOWN);
    let out = tb.self_upgrade(
        json!([{"op": "remove_tool", "name": "tally_vote"}]),
        "no more votes",
    );
    let rec = finish(&tb, out);
    assert_eq!(rec.state, UpgradeState::Committed, "{:?}", rec.history);
    let mut listed = builtins;
    listed.push("word_stats".into());
    assert_eq!(tb.tool_names(), listed);
    match tally(&tb, "yes") {
        Err(AgentError::UnknownTool { name, known }) => {
            assert_eq!(name, "tally_vote");
            assert!(known.ends_with("word_stats"), "{known}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        tool_facts(&tb, "tally_vote"),
        [("no".into(), "1".into()), ("yes".into(), "3".into())]
    );
}

#[test]
fn a_miscompiled_tool_fails_the_rehearsal_and_is_never_installed() {
    // The chaos build whose compiler emits integer literals off by one (test feature).
    let tb = Testbed::deploy(Options {
        agent_build: "agent-chaos",
        agent_wasm: Some(chaos_candidate("miscompile_tools")),
        ..Options::default()
    });
    let running = tb.agent_module();
    let rec = finish(
        &tb,
        tb.self_upgrade_add_tool(sample("tally_vote"), "count votes"),
    );
    // The interpreter ran the examples at proposal (they passed), validation found the code
    // consistent with its (miscompiling) compiler; the sandbox showed the code is wrong.
    match &rec.state {
        UpgradeState::Failed(reason) => assert!(
            reason.starts_with("rehearsal failed: tool_examples: tool `tally_vote` example 0: expected result {\"option\":\"yes\",\"votes\":1}, got {\"option\":\"yes\",\"votes\":2}"),
            "{reason}"
        ),
        other => panic!("the rehearsal should fail: {other:?}"),
    }
    assert!(!rec.history.iter().any(|t| t.state == UpgradeState::Armed));
    assert_eq!(
        tb.agent_module(),
        running,
        "the candidate was never installed"
    );
    assert!(!tb.tool_names().contains(&"tally_vote".to_string()));
}
