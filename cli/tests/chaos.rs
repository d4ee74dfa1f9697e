//! `agentctl chaos` runs a scenario, prints progress and the table, writes the JSON the issue
//! names, and fails on an unknown scenario; `--candidate` offers any Wasm file as a release.

mod common;

use common::{agentctl, workspace_file};

#[test]
fn chaos_writes_json_reports_with_the_named_fields() {
    let json = std::env::temp_dir().join(format!("agentctl-chaos-{}.json", std::process::id()));
    let out = agentctl(&[
        "chaos",
        "--scenario",
        "empty_wasm",
        "--seeds",
        "2",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("[  2/2] empty_wasm"), "{stdout}");
    assert!(
        stdout.contains("| empty_wasm | 2x rejected | 0 | - | - | 2/2 |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("verdict: 2/2 runs kept every invariant"),
        "{stdout}"
    );
    let reports: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), 2);
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(r["scenario"], "empty_wasm");
        assert_eq!(r["seed"], i as u64 + 1);
        assert_eq!(r["outcome"], "rejected");
        assert_eq!(r["data_lost"], 0);
        assert!(r["detect_secs"].is_null() && r["restore_secs"].is_null());
        assert_eq!(r["final_module_hash"], r["expected_module_hash"]);
        assert_eq!(r["final_module_hash"].as_str().unwrap().len(), 64);
    }
    let _ = std::fs::remove_file(&json);

    let out = agentctl(&["chaos", "--scenario", "no_such_thing"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("scenarios: truncated_wasm"));
}

#[test]
fn chaos_candidate_offers_any_file_as_a_release() {
    let path = std::env::temp_dir().join(format!("agentctl-candidate-{}.wasm", std::process::id()));
    std::fs::write(&path, b"\0asm\x01\0\0\0 not really a module").unwrap();
    let out = agentctl(&[
        "chaos",
        "--candidate",
        path.to_str().unwrap(),
        "--seeds",
        "1",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("candidate") && stdout.contains("rejected"),
        "{stdout}"
    );
    let _ = std::fs::remove_file(&path);
}

/// The README's chaos table names every scenario of the suite, in the suite's order, and nothing
/// else: a scenario added or renamed without its row fails here.
#[test]
fn readme_chaos_table_lists_every_scenario() {
    let readme = workspace_file("README.md");
    let section = readme
        .split("## The chaos suite")
        .nth(1)
        .expect("README has a chaos section")
        .split("\n## ")
        .next()
        .unwrap();
    // The full table is the last one in the section (the sample output shows a few rows).
    let table = section
        .rsplit("| scenario |")
        .next()
        .expect("the section has a table");
    let rows: Vec<&str> = table
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("| "))
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(" |").next())
        .filter(|name| *name != "---")
        .collect();
    let suite: Vec<&str> = chaos_tests::all().iter().map(|s| s.name).collect();
    assert_eq!(
        rows, suite,
        "README's chaos table and chaos_tests::all() differ"
    );
}
