//! The README's dfx commands name methods the canisters export: every
//! `dfx canister call CANISTER METHOD` in README.md is a method of CANISTER's .did file, and
//! each canister's init argument in the deploy guide names the fields of its init record.

use std::collections::BTreeSet;

mod common;

use common::root;

/// The method names of the `service` block of a .did file.
fn service_methods(did: &str) -> BTreeSet<String> {
    let service = &did[did.find("service :").expect("a service")..];
    service
        .lines()
        .map(str::trim)
        .filter_map(|l| l.split_once(" : ("))
        .map(|(name, _)| name.to_string())
        .collect()
}

#[test]
fn every_dfx_call_in_the_readme_names_an_exported_method() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut seen = 0;
    for (canister, did) in [
        ("agent", "agent/agent.did"),
        ("watchdog", "watchdog/watchdog.did"),
        ("staging", "staging/staging.did"),
    ] {
        let methods = service_methods(&std::fs::read_to_string(root().join(did)).unwrap());
        let needle = format!("dfx canister call {canister} ");
        for (i, _) in readme.match_indices(&needle) {
            let method: String = readme[i + needle.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                methods.contains(&method),
                "README calls {canister}.{method}, which {did} does not export"
            );
            seen += 1;
        }
    }
    assert!(seen >= 20, "the runbook has {seen} dfx calls");
}

/// The field names of the init record of a .did file's service.
fn init_fields(did: &str) -> BTreeSet<String> {
    let service = &did[did
        .find("service : (")
        .expect("a service with an init argument")..];
    let init = &service["service : (".len()..service.find(')').unwrap()];
    let start = did
        .find(&format!("type {init} = record {{"))
        .unwrap_or_else(|| panic!("no record {init}"));
    did[start..]
        .lines()
        .skip(1)
        .map(str::trim)
        .take_while(|l| *l != "};")
        .filter(|l| !l.starts_with("//"))
        .filter_map(|l| l.split_once(" : "))
        .map(|(name, _)| name.to_string())
        .collect()
}

#[test]
fn the_deploy_guide_init_arguments_match_the_init_records() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for (canister, did) in [
        ("agent", "agent/agent.did"),
        ("watchdog", "watchdog/watchdog.did"),
        ("staging", "staging/staging.did"),
    ] {
        let fields = init_fields(&std::fs::read_to_string(root().join(did)).unwrap());
        assert!(fields.len() >= 2, "{did}: {fields:?}");
        let line = readme
            .lines()
            .find(|l| l.starts_with(&format!("dfx canister install {canister} ")))
            .unwrap_or_else(|| panic!("no install line for {canister}"));
        let parts: Vec<&str> = line.split(" = ").collect();
        let given: BTreeSet<String> = parts[..parts.len() - 1]
            .iter()
            .filter_map(|before| before.rsplit(['{', ';', ' ']).next())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        assert_eq!(
            given, fields,
            "the {canister} install line vs {did}: {line}"
        );
    }
}

/// The method's argument types in a .did file.
fn arg_types(did: &str, method: &str) -> (candid::TypeEnv, Vec<candid::types::Type>) {
    let (env, actor) = candid_parser::utils::CandidSource::Text(did)
        .load()
        .unwrap_or_else(|e| panic!("{e}"));
    let actor = actor.expect("a service");
    let args = env
        .get_method(&actor, method)
        .unwrap_or_else(|e| panic!("{method}: {e}"))
        .args
        .clone();
    (env, args)
}

/// A snapshot is loaded into a stopped agent (stop, load, start), and a hand-made upgrade gives
/// dfx the module or an argument (the agent's service takes `AgentInit`).
#[test]
fn the_readme_loads_snapshots_into_a_stopped_agent_and_upgrades_with_an_argument() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    let mut loads = 0;
    for (i, line) in lines.iter().enumerate() {
        if let Some(at) = line.find("dfx canister snapshot load agent") {
            loads += 1;
            if line.starts_with('|') {
                // A runbook row: stop before the load and start after it, in the same cell.
                let stop = line.find("dfx canister stop agent");
                let start = line.rfind("dfx canister start agent");
                assert!(
                    stop.is_some_and(|s| s < at) && start.is_some_and(|s| s > at),
                    "a snapshot load without stop before and start after: {line}"
                );
                continue;
            }
            assert!(
                line.trim_start()
                    .starts_with("dfx canister snapshot load agent"),
                "a snapshot load outside a command sequence: {line}"
            );
            assert!(
                lines[..i]
                    .iter()
                    .rev()
                    .take(3)
                    .any(|l| l.trim() == "dfx canister stop agent"),
                "no `dfx canister stop agent` before: {line}"
            );
            assert!(
                lines[i + 1..]
                    .iter()
                    .take(3)
                    .any(|l| l.trim() == "dfx canister start agent"),
                "no `dfx canister start agent` after: {line}"
            );
        }
        if line.contains("dfx canister install agent --mode upgrade") {
            assert!(
                line.contains("--wasm ") || line.contains("--argument"),
                "an upgrade without module or argument: {line}"
            );
        }
    }
    assert!(loads >= 1, "the runbook shows how to load a snapshot");
}

/// The README's recipe turns the hex id `dfx canister snapshot list` prints into the candid
/// blob `rollback` takes: run it with `sh` and decode the result against `watchdog.did`.
#[test]
fn the_readme_turns_a_hex_snapshot_id_into_the_blob_rollback_takes() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let recipe = readme
        .lines()
        .find(|l| l.starts_with("SNAPSHOT_BLOB=$(echo \"$SNAPSHOT\""))
        .expect("the README's hex-to-blob recipe");
    let command = recipe.split_once('#').map_or(recipe, |(c, _)| c).trim();
    let id = "000000000000000001010000000000000001";
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "SNAPSHOT={id}; {command}; printf '%s' \"$SNAPSHOT_BLOB\""
        ))
        .output()
        .expect("sh runs");
    let blob = String::from_utf8(out.stdout).unwrap();
    let arg = format!("(variant {{ Snapshot = blob \"{blob}\" }})");
    let did = std::fs::read_to_string(root().join("watchdog/watchdog.did")).unwrap();
    let (env, types) = arg_types(&did, "rollback");
    let args = candid_parser::parse_idl_args(&arg)
        .and_then(|a| Ok(a.annotate_types(true, &env, &types)?))
        .unwrap_or_else(|e| panic!("{arg}: {e}"));
    let bytes = args.to_bytes_with_types(&env, &types).unwrap();
    let target: canister_api::watchdog::RollbackTarget = candid::decode_one(&bytes).unwrap();
    assert_eq!(
        target,
        canister_api::watchdog::RollbackTarget::Snapshot(hex::decode(id).unwrap())
    );
}
