//! The tool interface: `tools` lists OpenAI function-calling schemas, and `call_tool`
//! round-trips every tool with JSON in and JSON out, or a clear error.

mod common;
use common::*;
use serde_json::Value;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn tools_lists_every_tool_in_the_openai_function_format() {
    let env = Env::latest(Autonomy::Manual);
    let tools: String = env.query(stranger(), "tools", Encode!().unwrap());
    let tools = json(&tools);
    let names: Vec<&str> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["type"], "function");
            assert_eq!(t["function"]["parameters"]["type"], "object");
            assert!(t["function"]["description"].is_string());
            t["function"]["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        names,
        [
            "remember",
            "recall",
            "submit_task",
            "self_upgrade",
            "upgrade_status",
            "list_versions",
            "call_own_method"
        ]
    );
}

#[test]
fn every_tool_round_trips() {
    let env = Env::latest(Autonomy::Auto);
    env.store_running("agent");

    let out = json(
        &env.tool("remember", r#"{"key":"colour","value":"blue"}"#)
            .unwrap(),
    );
    assert_eq!(out["namespace"], "default");
    assert_eq!(out["previous"], Value::Null);
    env.tool(
        "remember",
        r#"{"key":"colour","value":"green","namespace":"prefs"}"#,
    )
    .unwrap();
    let out = json(&env.tool("recall", r#"{"key":"colour"}"#).unwrap());
    assert_eq!(out["value"], "blue");
    let out = json(
        &env.tool("recall", r#"{"key":"colour","namespace":"prefs"}"#)
            .unwrap(),
    );
    assert_eq!(out["value"], "green");
    assert_eq!(
        env.recall(Some("prefs"), "colour").as_deref(),
        Some("green")
    );

    let out = json(
        &env.tool(
            "submit_task",
            r#"{"description":"write docs","priority":"high"}"#,
        )
        .unwrap(),
    );
    assert_eq!(out["id"], 1);
    assert_eq!(out["priority"], "high");
    assert_eq!(env.tasks()[0].priority, Priority::High);

    let ops = r#"{"ops":[{"op":"set_metadata","visibility":"public","name":"note","content":"hi"}],"reason":"tag the build"}"#;
    let out = json(&env.tool("self_upgrade", ops).unwrap());
    assert_eq!(out["state"], "validated");
    assert_eq!(out["approved"], true, "autonomy Auto approves");
    let id = out["id"].as_u64().unwrap();

    let status = json(
        &env.tool("upgrade_status", &format!(r#"{{"id":{id}}}"#))
            .unwrap(),
    );
    assert_eq!(status["candidate_hash"], out["candidate_hash"]);
    let latest = json(&env.tool("upgrade_status", "{}").unwrap());
    assert_eq!(latest["id"], id);

    let versions = json(&env.tool("list_versions", "{}").unwrap());
    let versions = versions.as_array().unwrap();
    assert_eq!(versions.len(), 2, "running + candidate");
    assert!(
        versions
            .iter()
            .any(|v| v["running"] == true && v["lkg"] == true)
    );
    let candidate = versions.iter().find(|v| v["upgrade_id"] == id).unwrap();
    assert_eq!(
        candidate["parent_hash"],
        json(&env.tool("list_versions", "{}").unwrap())[0]["hash"]
    );
    assert_eq!(candidate["schema_range"], "1..=3");
}

#[test]
fn a_bad_tool_call_gets_a_clear_error() {
    let env = Env::latest(Autonomy::Auto);
    match env.tool("fly", "{}") {
        Err(AgentError::UnknownTool { name, known }) => {
            assert_eq!(name, "fly");
            assert!(known.contains("remember"));
        }
        other => panic!("{other:?}"),
    }
    match env.tool("remember", r#"{"key":"k"}"#) {
        Err(AgentError::InvalidArgument(m)) => {
            assert!(m.contains("remember") && m.contains("value"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    match env.tool("recall", r#"{"key":"k","colour":1}"#) {
        Err(AgentError::InvalidArgument(m)) => assert!(m.contains("colour"), "{m}"),
        other => panic!("{other:?}"),
    }
    match env.tool("self_upgrade", r#"{"ops":[],"reason":"x"}"#) {
        Err(AgentError::NotFound(m)) => assert!(m.contains("upload_wasm_chunk(Running"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Only methods the agent added to itself: not its interface at large.
    match env.tool("call_own_method", r#"{"method":"export_state"}"#) {
        Err(AgentError::InvalidArgument(m)) => {
            assert!(m.contains("not a method the agent added to itself"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}
