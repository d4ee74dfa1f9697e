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
        ("llm-standin", "llm-standin/llm-standin.did"),
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
