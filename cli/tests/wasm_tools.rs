//! `agentctl patch` applies wasm-patch operations and stamps the module; `agentctl inspect`
//! validates a module as the agent validates a candidate and exits non-zero when it is invalid.

mod common;

use common::agentctl;

#[test]
fn patch_then_inspect_and_refusals() {
    let dir = std::env::temp_dir().join(format!("agentctl-wasm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let agent = dir.join("agent.wasm");
    std::fs::write(&agent, canister_build::canister_wasm("agent").unwrap()).unwrap();
    let ops = dir.join("ops.json");
    std::fs::write(
        &ops,
        r#"[{"op":"add_query_method","name":"hello","reply_hex":"4449444c000171026869"}]"#,
    )
    .unwrap();
    let out = dir.join("patched.wasm");
    let run = agentctl(&[
        "patch",
        "--wasm",
        agent.to_str().unwrap(),
        "--ops",
        ops.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--version",
        "v-test",
        "--schema",
        "1..=3",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let run = agentctl(&["inspect", out.to_str().unwrap(), "--schema", "3", "--json"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["version"], "v-test");
    assert_eq!(report["schema_range"], serde_json::json!([1, 3]));
    assert!(
        report["exported_methods"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "canister_query hello")
    );

    // A schema the stamp does not cover: invalid, exit non-zero.
    let run = agentctl(&["inspect", out.to_str().unwrap(), "--schema", "4"]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stdout).contains("invalid"));

    // The staging canister lacks the agent's required exports.
    let staging = dir.join("staging.wasm");
    std::fs::write(&staging, canister_build::canister_wasm("staging").unwrap()).unwrap();
    let run = agentctl(&["inspect", staging.to_str().unwrap()]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stdout).contains("required export"));

    // Bad operations are refused with a message, and nothing is written.
    std::fs::write(&ops, r#"[{"op":"no_such_op"}]"#).unwrap();
    let none = dir.join("none.wasm");
    let run = agentctl(&[
        "patch",
        "--wasm",
        agent.to_str().unwrap(),
        "--ops",
        ops.to_str().unwrap(),
        "--out",
        none.to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("not a JSON list of patch operations"));
    assert!(!none.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn patch_adds_a_tool_and_inspect_lists_it() {
    let dir = std::env::temp_dir().join(format!("agentctl-tools-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let agent = dir.join("agent.wasm");
    std::fs::write(&agent, canister_build::canister_wasm("agent").unwrap()).unwrap();
    let spec: serde_json::Value =
        serde_json::from_str(wasm_patch::tool_spec::samples::TALLY_VOTE).unwrap();
    let ops = dir.join("ops.json");
    let out = dir.join("with-tool.wasm");
    let patch = |ops_json: serde_json::Value| {
        std::fs::write(&ops, ops_json.to_string()).unwrap();
        agentctl(&[
            "patch",
            "--wasm",
            agent.to_str().unwrap(),
            "--ops",
            ops.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--version",
            "v-tool",
            "--schema",
            "1..=3",
        ])
    };
    let run = patch(serde_json::json!([{"op": "add_tool", "spec": spec}]));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("op 0: tool `tally_vote` checks; its 2 examples pass in the interpreter"),
        "{stdout}"
    );

    let run = agentctl(&["inspect", out.to_str().unwrap(), "--schema", "3", "--json"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["tools"][0]["name"], "tally_vote");
    assert_eq!(
        report["tools"][0]["parameters"],
        serde_json::json!(["option"])
    );
    assert_eq!(report["tools"][0]["examples"], 2);
    let run = agentctl(&["inspect", out.to_str().unwrap(), "--schema", "3"]);
    assert!(
        String::from_utf8_lossy(&run.stdout)
            .contains("  tools         1\n    tally_vote(option): Count one vote")
    );

    // A spec whose example fails is refused before anything is written.
    let mut wrong = spec.clone();
    wrong["examples"][0]["result"]["votes"] = serde_json::json!(7);
    std::fs::remove_file(&out).unwrap();
    let run = patch(serde_json::json!([{"op": "add_tool", "spec": wrong}]));
    assert!(!run.status.success());
    assert!(
        String::from_utf8_lossy(&run.stderr)
            .contains("op 0 (add_tool): tool `tally_vote`: example 0 failed"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
