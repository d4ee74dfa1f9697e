//! `agentctl bench` measures every figure it names and writes them as JSON; its cost figures
//! are those recorded in docs/bench-figures.json (within `cost_table::DRIFT`), which the
//! README's and docs/benchmarks.md's cost tables show.

mod common;

use common::agentctl;

#[test]
fn bench_prints_and_writes_every_figure() {
    let json = std::env::temp_dir().join(format!("agentctl-bench-{}.json", std::process::id()));
    let out = agentctl(["bench", "--check", "--json", json.to_str().unwrap()]);
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
    assert!(stdout.contains("the cost figures are within"), "{stdout}");
    // Issue 19: the idle trio at its steady cadence costs at most 25 B cycles a day, with a
    // steady detection bound of at most 10 minutes.
    let idle = f["idle_trio_cycles_per_day"].as_f64().unwrap();
    assert!(
        idle <= 25e9,
        "the idle trio costs {:.1} B cycles a day",
        idle / 1e9
    );
    assert!(
        f["idle_detection_bound_secs"].as_u64().unwrap() <= 600,
        "{f}"
    );
    let _ = std::fs::remove_file(&json);
}
