//! `dfx.json` at the workspace root deploys exactly the files this crate builds.
//!
//! Each canister entry must be a custom canister whose `candid` is the `.did` that
//! canister-build embeds, whose `wasm` is the `.wasm.gz` that canister-build writes, and whose
//! `build` runs this crate's `build-canisters` binary for that canister. The entries carry no
//! `metadata`: the Wasm already holds `candid:service`, and any metadata entry makes dfx
//! re-encode the module (through ic-wasm/walrus), so the installed module hash would no longer
//! be the hash of the file the deployer uploads to the agent as its running Wasm.

use canister_build::{canister_wasm_gz_path, workspace_root};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The canisters dfx deploys (`llm-standin` only where the real LLM canister is unavailable).
const DEPLOYED: [&str; 4] = ["agent", "llm-standin", "staging", "watchdog"];

/// The IC's ingress message limit is 2 MiB, envelope included; a module below this installs in
/// one message, without chunked upload.
const ONE_MESSAGE_INSTALL: u64 = 2_000_000;

fn dfx_json() -> Value {
    let path = workspace_root().join("dfx.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} must exist: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn entry<'a>(dfx: &'a Value, name: &str) -> &'a serde_json::Map<String, Value> {
    dfx["canisters"][name]
        .as_object()
        .unwrap_or_else(|| panic!("dfx.json has no canister `{name}`"))
}

fn text<'a>(entry: &'a serde_json::Map<String, Value>, field: &str, name: &str) -> &'a str {
    entry
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("canister `{name}` in dfx.json needs a string `{field}`"))
}

#[test]
fn lists_exactly_the_deployed_canisters() {
    let dfx = dfx_json();
    let names: BTreeSet<&str> = dfx["canisters"]
        .as_object()
        .expect("dfx.json has a `canisters` object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, BTreeSet::from(DEPLOYED));
}

#[test]
fn candid_is_the_did_that_the_wasm_carries() {
    let dfx = dfx_json();
    for name in DEPLOYED {
        let entry = entry(&dfx, name);
        assert_eq!(text(entry, "type", name), "custom", "{name}");
        let candid = text(entry, "candid", name);
        let canister = canister_build::find(name).unwrap();
        assert_eq!(
            Some(candid),
            canister.did,
            "{name}: dfx.json and CANISTERS disagree"
        );
        assert!(
            workspace_root().join(candid).is_file(),
            "{name}: {candid} does not exist"
        );
        assert!(
            entry.get("metadata").is_none(),
            "{name}: no `metadata` in dfx.json (see this file's docs)"
        );
    }
}

#[test]
fn wasm_is_the_gzip_file_canister_build_writes() {
    let dfx = dfx_json();
    for name in DEPLOYED {
        let wasm = workspace_root().join(text(entry(&dfx, name), "wasm", name));
        assert_eq!(wasm, canister_wasm_gz_path(name).unwrap(), "{name}");
        let size = std::fs::metadata(&wasm)
            .unwrap_or_else(|e| panic!("{}: {e}", wasm.display()))
            .len();
        assert!(
            size < ONE_MESSAGE_INSTALL,
            "{name}: {} is {size} bytes, too large to install in one message",
            wasm.display()
        );
    }
}

#[test]
fn build_runs_build_canisters_for_that_canister() {
    let dfx = dfx_json();
    let binary = Path::new(env!("CARGO_BIN_EXE_build-canisters"));
    let binary_name = binary.file_stem().unwrap().to_str().unwrap();
    for name in DEPLOYED {
        let build = text(entry(&dfx, name), "build", name);
        let words: Vec<&str> = build.split_whitespace().collect();
        let expected = [
            "cargo",
            "run",
            "-p",
            env!("CARGO_PKG_NAME"),
            "--bin",
            binary_name,
            "--",
            name,
        ];
        assert_eq!(words, expected, "{name}: build command");

        // What dfx runs, minus the cargo around it: it must leave the file behind that `wasm`
        // names. (Built already by the other tests or here; then this is cargo's no-op check.)
        let out = Command::new(binary)
            .args(&words[7..])
            .output()
            .expect("build-canisters runs");
        assert!(
            out.status.success(),
            "{name}: build-canisters failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = String::from_utf8(out.stdout).unwrap();
        let gz = canister_wasm_gz_path(name).unwrap();
        assert!(
            printed.lines().any(|line| Path::new(line) == gz),
            "{name}: build-canisters did not report {}; it printed:\n{printed}",
            gz.display()
        );
        assert!(gz.is_file(), "{name}: {} missing", gz.display());
    }
}

/// The `canisters` of icp.yaml as (name, pre-built path) pairs. icp.yaml is plain block YAML
/// written by hand (`- name: X` then its step's `path: Y`); no YAML crate is in the workspace,
/// and this reads only those two keys.
fn icp_yaml_canisters() -> Vec<(String, String)> {
    let path = workspace_root().join("icp.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} must exist: {e}", path.display()));
    let section = text
        .split_once("\ncanisters:\n")
        .expect("icp.yaml has a top-level `canisters:`")
        .1;
    let mut canisters: Vec<(String, String)> = Vec::new();
    for line in section
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with(' '))
    {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("- name: ") {
            canisters.push((name.to_string(), String::new()));
        } else if let Some(wasm) = line.strip_prefix("path: ") {
            let (name, path) = canisters.last_mut().expect("a `path:` under a canister");
            assert!(path.is_empty(), "icp.yaml: canister `{name}` has two paths");
            *path = wasm.to_string();
        }
    }
    canisters
}

#[test]
fn icp_yaml_installs_the_same_files_as_dfx_json() {
    let dfx = dfx_json();
    let icp = icp_yaml_canisters();
    let names: BTreeSet<&str> = icp.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(DEPLOYED),
        "icp.yaml and dfx.json list different canisters"
    );
    for (name, path) in &icp {
        assert_eq!(
            path,
            text(entry(&dfx, name), "wasm", name),
            "{name}: icp.yaml installs another file than dfx.json"
        );
    }
}
