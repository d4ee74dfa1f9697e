//! Synthesized tools in the agent: compiled code running on the agent's host ABI (the agent
//! patched natively with `add_tool`, then installed), its quotas, what a proposal refuses
//! before any Wasm is built, and the figures of issue 17 (run with `--nocapture`: lines
//! `FIGURE`).

mod common;
use common::*;
use serde_json::{Value, json};
use wasm_patch::tool_spec;
use wasm_patch::{PatchOp, Stamp};

fn sample(name: &str) -> Value {
    tool_spec::samples::json(name).unwrap()
}

/// The agent build with `specs` added natively (the section-level fast path), gzipped as
/// installed.
fn agent_with(specs: &[Value]) -> Vec<u8> {
    let ops: Vec<PatchOp> = specs
        .iter()
        .map(|s| PatchOp::AddTool { spec: s.clone() })
        .collect();
    let stamp = Stamp::new("tools-test").with_schema_range(1, 3);
    let patched = wasm_patch::apply_patch(&wasm("agent"), &ops, &stamp).unwrap();
    assert!(!patched.rebuilt, "add_tool stays on the fast path");
    gzip(&patched.wasm)
}

fn call(env: &Env, tool: &str, args: Value) -> Result<Value, AgentError> {
    env.tool(tool, &args.to_string())
        .map(|out| serde_json::from_str(&out).expect("JSON"))
}

fn names(env: &Env) -> Vec<String> {
    let tools: String = env.query(stranger(), "tools", Encode!().unwrap());
    let tools: Value = serde_json::from_str(&tools).unwrap();
    tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn compiled_tools_run_on_the_agents_host_abi() {
    let env = Env::with_module(
        agent_with(&[
            sample("tally_vote"),
            sample("word_stats"),
            sample("inventory"),
        ]),
        Autonomy::Manual,
    );
    let listed = names(&env);
    assert_eq!(
        &listed[7..],
        ["tally_vote", "word_stats", "inventory"],
        "{listed:?}"
    );

    assert_eq!(
        call(&env, "tally_vote", json!({"option": "yes"})),
        Ok(json!({"option": "yes", "votes": 1}))
    );
    assert_eq!(
        call(&env, "tally_vote", json!({"option": "yes"})),
        Ok(json!({"option": "yes", "votes": 2}))
    );
    assert_eq!(
        env.recall(Some("tool:tally_vote"), "yes").as_deref(),
        Some("2")
    );
    let stats = call(
        &env,
        "word_stats",
        json!({"words": ["a", "bcd", "ef"], "label": "w"}),
    )
    .unwrap();
    assert_eq!(stats["report"], "w: 3 items, 6 characters, longest bcd");
    assert_eq!(
        call(&env, "inventory", json!({"item": "nail", "delta": 4})).unwrap()["total_stock"],
        4
    );
    let refused = call(&env, "inventory", json!({"item": "nail", "delta": -9})).unwrap();
    assert_eq!(refused["error"], "not enough nail: 4 in stock, 9 asked");
    assert_eq!(
        env.recall(Some("tool:inventory"), "stock:nail").as_deref(),
        Some("4")
    );

    // The examples pass on the compiled code, and the interpreter agrees.
    let report: Result<ToolExamples, AgentError> =
        env.query(operator(), "tool_examples", Encode!().unwrap());
    let report = report.unwrap();
    assert_eq!(report.tools, ["tally_vote", "word_stats", "inventory"]);
    assert_eq!(report.runs.len(), 2 + 3 + 4);
    assert!(
        report.first_failure().is_none(),
        "{:?}",
        report.first_failure()
    );
    // Strangers may not run them.
    let denied: Result<ToolExamples, AgentError> =
        env.query(stranger(), "tool_examples", Encode!().unwrap());
    assert!(matches!(denied, Err(AgentError::Unauthorized { .. })));
}

/// A tool whose facts and loops are bounded by a small quota: it stores `text` under `k`,
/// then counts to `n` times the number of words cubed.
fn bounded() -> Value {
    json!({
        "name": "hoard",
        "description": "Store a text, then count n for every triple of words.",
        "parameters": {"type": "object", "properties": {
            "n": {"type": "integer", "minimum": 0, "maximum": 100},
            "text": {"type": "string", "maxLength": 64},
            "words": {"type": "array", "items": {"type": "string"}, "maxItems": 100, "default": []}},
            "required": ["n", "text"]},
        "body": {"do": [
            {"fact_put": "k", "value": {"arg": "text"}},
            {"for_each": {"arg": "words"}, "as": "a", "acc": "x", "init": 0,
             "step": {"for_each": {"arg": "words"}, "as": "b", "acc": "y", "init": {"var": "x"},
                      "step": {"for_each": {"arg": "words"}, "as": "c", "acc": "z", "init": {"var": "y"},
                               "step": {"add": [{"var": "z"}, {"arg": "n"}]}}}}]},
        "examples": [
            {"args": {"n": 1, "text": "abc", "words": ["x", "y"]}, "result": 8, "facts_after": {"k": "abc"}},
            {"args": {"n": 1, "text": "012345678901234567890123456789"}, "error": "fact_quota"}],
        "quota": {"fact_bytes": 24, "instructions": 5000000}
    })
}

#[test]
fn quotas_stop_a_call_and_a_failed_call_changes_nothing() {
    let env = Env::with_module(agent_with(&[bounded()]), Autonomy::Manual);
    let hoard = |n: i64, text: &str, words: usize| {
        call(
            &env,
            "hoard",
            json!({"n": n, "text": text, "words": vec!["w"; words]}),
        )
    };
    assert_eq!(hoard(2, "xy", 2), Ok(json!(16)));
    assert_eq!(
        hoard(1, "abc", 10),
        Ok(json!(1000)),
        "10^3 iterations fit the budget"
    );
    assert_eq!(env.recall(Some("tool:hoard"), "k").as_deref(), Some("abc"));
    let facts = env.facts();

    // 1 + 30 bytes of fact: over the 24-byte quota, at the write.
    match hoard(1, &"x".repeat(30), 0) {
        Err(AgentError::ToolFailed {
            tool,
            code,
            path,
            message,
        }) => {
            assert_eq!(
                (tool.as_str(), code.as_str(), path.as_str()),
                ("hoard", "fact_quota", "body.do[0]")
            );
            assert_eq!(
                message,
                "the tool's facts would hold 31 bytes, over its quota of 24 bytes"
            );
        }
        other => panic!("{other:?}"),
    }
    // 100^3 iterations are far over 5 M instructions; the text written first is dropped too.
    match hoard(1, "dropped", 100) {
        Err(AgentError::ToolFailed {
            code,
            path,
            message,
            ..
        }) => {
            assert_eq!(code, "instruction_budget");
            assert!(path.starts_with("body.do[1]"), "{path}");
            assert_eq!(
                message,
                "the call used up its instruction budget of 5000000"
            );
        }
        other => panic!("{other:?}"),
    }
    let instructions = env.sim.last_instructions(env.agent);
    assert!(
        instructions < 20_000_000,
        "the budget stopped it early: {instructions}"
    );
    assert_eq!(env.recall(Some("tool:hoard"), "k").as_deref(), Some("abc"));
    assert_eq!(env.facts(), facts);
    // A failed call is an error of the call, not of the agent (`degraded` notes the last error).
    assert_ne!(env.health().status, HEALTH_UNHEALTHY);
}

#[test]
fn a_proposal_is_refused_before_any_wasm_is_built_when_a_spec_or_example_fails() {
    let env = Env::latest(Autonomy::Auto);
    env.store_running("agent");
    let propose = |spec: Value| {
        env.tool(
            "self_upgrade",
            &json!({"ops": [{"op": "add_tool", "spec": spec}], "reason": "a tool"}).to_string(),
        )
    };
    let mut wrong = sample("tally_vote");
    wrong["examples"][1]["result"]["votes"] = json!(4);
    match propose(wrong) {
        Err(AgentError::Patch(m)) => assert_eq!(
            m,
            r#"op 0 (add_tool): tool `tally_vote`: example 1 failed: expected result {"option":"yes","votes":4}, got {"option":"yes","votes":3}"#
        ),
        other => panic!("{other:?}"),
    }
    let mut shadow = sample("tally_vote");
    shadow["name"] = json!("remember");
    match propose(shadow) {
        Err(AgentError::Patch(m)) => assert_eq!(
            m,
            "op 0 (add_tool): the spec does not check: name: the name `remember` collides with a built-in tool of the agent"
        ),
        other => panic!("{other:?}"),
    }
    let mut method = sample("tally_vote");
    method["name"] = json!("health");
    match propose(method) {
        Err(AgentError::Patch(m)) => assert!(
            m.ends_with("name: the name `health` collides with method `health` of the module"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        env.upgrade_record(None),
        None,
        "nothing reached the journal"
    );
    // A good one is accepted.
    let out = propose(sample("tally_vote")).expect("a good spec is proposed");
    assert!(out.contains("\"state\":\"validated\""), "{out}");
}

#[test]
fn figures_self_patch_and_compiled_vs_interpreted() {
    // The self-patch: add_tool (section path) vs add_query_method (walrus), each in a fresh
    // agent, with the heap high-water mark after it.
    for (what, op) in [
        (
            "add_tool inventory (61 nodes)",
            json!({"op": "add_tool", "spec": sample("inventory")}),
        ),
        (
            "add_query_method (walrus)",
            json!({"op": "add_query_method", "name": "hello", "reply_hex": "4449444c0000"}),
        ),
    ] {
        let env = Env::latest(Autonomy::ApproveEach);
        env.store_running("agent");
        let heap_before = env.health().heap_memory_bytes;
        env.tool(
            "self_upgrade",
            &json!({"ops": [op], "reason": what}).to_string(),
        )
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        let rec = env.upgrade_record(None).unwrap();
        let heap_after = env.health().heap_memory_bytes;
        let log = env.sim.debug_log(env.agent).join(" | ");
        println!(
            "FIGURE self_upgrade {what}: patch+validate+hash {} instructions; heap {} -> {} bytes; {log}",
            rec.instructions, heap_before, heap_after
        );
        if what.starts_with("add_tool") {
            assert!(log.contains("(sections;"), "{log}");
            // The project's goal for a self-patch is 2 B (issue 17 aims at 1 B; the figure goes
            // to docs/benchmarks.md). Instruction counts are deterministic, not timings.
            assert!(rec.instructions < 2_000_000_000, "{}", rec.instructions);
        }
    }

    // Compiled vs interpreted, per tool, on its examples.
    let env = Env::with_module(
        agent_with(&[
            sample("tally_vote"),
            sample("word_stats"),
            sample("weighted_score"),
            sample("inventory"),
            sample("amortize"),
        ]),
        Autonomy::Manual,
    );
    let report: Result<ToolExamples, AgentError> =
        env.query(operator(), "tool_examples", Encode!().unwrap());
    let report = report.unwrap();
    for tool in &report.tools {
        let runs: Vec<_> = report.runs.iter().filter(|r| &r.tool == tool).collect();
        let compiled: u64 = runs.iter().map(|r| r.compiled_instructions).sum();
        let interpreted: u64 = runs.iter().map(|r| r.interpreted_instructions).sum();
        println!(
            "FIGURE tool {tool}: {} examples, compiled {compiled} instructions, interpreted {interpreted}: {:.1}x",
            runs.len(),
            interpreted as f64 / compiled as f64
        );
        for r in &runs {
            println!(
                "  example {}: compiled {} instructions, interpreted {}",
                r.example, r.compiled_instructions, r.interpreted_instructions
            );
        }
        assert!(runs.iter().all(|r| r.passed && r.agree), "{runs:?}");
    }
}
