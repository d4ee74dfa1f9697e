//! `agentctl bench` measures every figure it names and writes them as JSON.

mod common;

use common::agentctl;

#[test]
fn bench_prints_and_writes_every_figure() {
    let json = std::env::temp_dir().join(format!("agentctl-bench-{}.json", std::process::id()));
    let out = agentctl(["bench", "--json", json.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for positive in [
        "patch_instructions",
        "agent_wasm_bytes",
        "agent_wasm_gz_bytes",
        "rehearsal_staging_instructions",
        "rehearsal_state_bytes",
        "install_to_commit_secs",
        "detect_secs",
        "restore_secs",
        "watchdog_cycles_per_day",
        "agent_cycles_per_day",
        "sim_updates_per_sec",
    ] {
        assert!(
            f[positive].as_f64().is_some_and(|v| v > 0.0),
            "{positive} = {} in {f}",
            f[positive]
        );
    }
    assert!(f["agent_wasm_gz_bytes"].as_u64() < f["agent_wasm_bytes"].as_u64());
    assert!(stdout.contains("heartbeats per day"), "{stdout}");
    let _ = std::fs::remove_file(&json);
}
