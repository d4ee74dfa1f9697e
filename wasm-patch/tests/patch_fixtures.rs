//! Runs every case in tests/fixtures/patch (see the README there): adding a case is adding
//! `NAME.wat` (or `NAME.hex`), `NAME.ops.json`, optionally `NAME.stamp.json`, and
//! `NAME.expected`.

mod common;

use common::*;
use std::fmt::Write as _;
use wasm_patch::{
    PatchOp, PatchedModule, Stamp, ValidationPolicy, apply_patch, fingerprint, patch_digest,
    sha256, validate,
};

/// The description written to `NAME.expected` for a successful patch.
fn describe(input: &[u8], ops: &[PatchOp], stamp: &Stamp, out: &PatchedModule) -> String {
    let structure = Structure::read(&out.wasm);
    let mut text = String::from("ok\n");

    // Step 3 must accept what step 2 produced, parent check included.
    let policy = ValidationPolicy {
        expected_parent: Some(sha256(input)),
        ..ValidationPolicy::default()
    };
    match validate(&out.wasm, &policy) {
        Ok(_) => text.push_str("validate: ok\n"),
        Err(e) => writeln!(text, "validate: error: {e}").unwrap(),
    }

    for (export, &func) in &structure.exports {
        if wasm_patch::validate::split_method(export).is_some() {
            writeln!(text, "{export} -> {}", structure.call_trace(func)).unwrap();
        }
    }

    let parent = hex::encode(sha256(input));
    let digest = hex::encode(patch_digest(ops));
    for (section, content) in &structure.customs {
        if !section.starts_with("icp:") {
            continue;
        }
        let shown = match std::str::from_utf8(content) {
            Ok(text) if text == parent => "<sha256 of the input>".to_string(),
            Ok(text) if text == digest => "<patch_digest of the ops>".to_string(),
            Ok(text) => format!("{text:?}"),
            Err(_) => format!("hex {}", hex::encode(content)),
        };
        writeln!(text, "{section} = {shown}").unwrap();
    }

    // The PatchedModule and the stamp agree with each other and with the input.
    assert_eq!(out.module_hash, sha256(&out.wasm));
    assert_eq!(out.parent_hash, sha256(input));
    assert_eq!(out.patch_digest, patch_digest(ops));
    let print = fingerprint(&out.wasm).expect("patched output fingerprints");
    assert_eq!(print.module_hash, out.module_hash);
    assert_eq!(print.parent_hash, Some(out.parent_hash));
    assert_eq!(print.patch_digest, Some(out.patch_digest));
    assert_eq!(print.version.as_deref(), Some(stamp.version.as_str()));
    assert_eq!(print.schema_range, stamp.schema_range);
    text
}

#[test]
fn patch_fixtures() {
    let dir = fixture_dir("patch");
    let names = fixtures(&dir);
    let mut failures = Vec::new();
    for name in &names {
        let input = load_input(&dir, name);
        let ops: Vec<PatchOp> = side_file(&dir, name, "ops.json")
            .unwrap_or_else(|| panic!("{name}: missing {name}.ops.json"));
        let stamp: Stamp =
            side_file(&dir, name, "stamp.json").unwrap_or_else(|| Stamp::new("0.0.0-fixture"));
        let result = apply_patch(&input, &ops, &stamp);
        // Deterministic: the same patch gives the same bytes, or the same error.
        assert_eq!(
            result,
            apply_patch(&input, &ops, &stamp),
            "{name}: not deterministic"
        );
        let actual = match result {
            Ok(out) => describe(&input, &ops, &stamp, &out),
            Err(e) => format!("error: {e}\n"),
        };
        failures.extend(check_expected(&dir, name, &actual));
    }
    report(failures, names.len());
}
