//! Every built canister with a `.did` carries it, byte for byte, as `icp:public candid:service`,
//! and keeps it through `wasm_patch::apply_patch`.
//!
//! Sections are read here with wasmparser directly, not with `canister_build::custom_section`,
//! so a bug in the writer cannot hide behind the same bug in the reader.

use canister_build::{
    CANDID_SERVICE_SECTION, CANISTERS, Canister, canister_wasm, canister_wasm_gz_path,
    workspace_root,
};
use std::io::Read;
use wasm_patch::{PatchOp, Stamp, ValidationPolicy, Visibility};

/// The contents of every custom section called `name`, in module order.
fn sections(wasm: &[u8], name: &str) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::CustomSection(reader) = payload.expect("a readable module")
            && reader.name() == name
        {
            found.push(reader.data().to_vec());
        }
    }
    found
}

fn did_bytes(canister: &Canister) -> Vec<u8> {
    let did = canister.did.expect("a canister with a did");
    std::fs::read(workspace_root().join(did)).unwrap_or_else(|e| panic!("{did}: {e}"))
}

fn with_did() -> impl Iterator<Item = &'static Canister> {
    CANISTERS.iter().filter(|c| c.did.is_some())
}

fn wasm(name: &str) -> Vec<u8> {
    canister_wasm(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_canister_with_a_did_carries_it_once() {
    let names: Vec<&str> = with_did().map(|c| c.name).collect();
    for name in ["agent", "staging", "watchdog"] {
        assert!(names.contains(&name), "{name} must have a did");
    }
    for canister in with_did() {
        let wasm = wasm(canister.name);
        assert_eq!(
            sections(&wasm, CANDID_SERVICE_SECTION),
            [did_bytes(canister)],
            "{}: the section must be the .did file, once",
            canister.name
        );
        let report = wasm_patch::validate(&wasm, &ValidationPolicy::default())
            .unwrap_or_else(|e| panic!("{}: {e}", canister.name));
        assert!(report.metadata.contains_key(CANDID_SERVICE_SECTION));
    }
}

#[test]
fn a_canister_without_a_did_gets_no_section() {
    let probe = canister_build::find("ic-sim-probe").unwrap();
    assert_eq!(probe.did, None);
    assert!(sections(&wasm(probe.name), CANDID_SERVICE_SECTION).is_empty());
}

#[test]
fn the_gzip_file_holds_the_same_module() {
    for name in ["agent", "staging", "watchdog"] {
        let path = canister_wasm_gz_path(name).unwrap();
        let gz = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut raw)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(raw == wasm(name), "{name}: {} is stale", path.display());
    }
}

#[test]
fn the_section_survives_apply_patch() {
    let agent = canister_build::find("agent").unwrap();
    let did = did_bytes(agent);
    let raw = wasm("agent");
    let gz = std::fs::read(canister_wasm_gz_path("agent").unwrap()).unwrap();
    let add_query = PatchOp::AddQueryMethod {
        name: "candid_metadata_test".to_string(),
        reply: b"DIDL\x00\x01\x71\x02ok".to_vec(),
    };
    for (input, what) in [(&raw, "raw"), (&gz, "gzip")] {
        for ops in [vec![], vec![add_query.clone()]] {
            let patched = wasm_patch::apply_patch(input, &ops, &Stamp::new("0.0.0-test"))
                .unwrap_or_else(|e| panic!("{what} {ops:?}: {e}"));
            // The section is kept once; add_query_method adds its method to the service text
            // (so that the candidate's interface is a subtype of the running one) and keeps
            // every method the service had.
            let kept = sections(&patched.wasm, CANDID_SERVICE_SECTION);
            assert_eq!(kept.len(), 1, "{what} {ops:?}");
            if ops.is_empty() {
                assert_eq!(kept[0], did, "{what}");
            } else {
                let text = String::from_utf8(kept[0].clone()).expect("utf-8");
                assert!(
                    text.contains("candid_metadata_test : () -> (text) query"),
                    "{what}: {text}"
                );
                let old = String::from_utf8(did.clone()).expect("utf-8");
                for method in ["health :", "call_tool :", "export_module :", "turns :"] {
                    assert!(
                        old.contains(method) && text.contains(method),
                        "{what}: {method}"
                    );
                }
            }
            wasm_patch::validate(&patched.wasm, &ValidationPolicy::default())
                .unwrap_or_else(|e| panic!("{what} {ops:?}: {e}"));
        }
    }
}

#[test]
fn a_patch_can_replace_the_service_text() {
    let service = b"service : { candid_metadata_test : () -> (text) query }".to_vec();
    let ops = [PatchOp::SetMetadata {
        visibility: Visibility::Public,
        name: "candid:service".to_string(),
        content: service.clone(),
    }];
    let patched = wasm_patch::apply_patch(&wasm("agent"), &ops, &Stamp::new("0.0.0-test")).unwrap();
    assert_eq!(sections(&patched.wasm, CANDID_SERVICE_SECTION), [service]);
}
