//! Runs every case in tests/fixtures/validate (see the README there): adding a case is adding
//! `NAME.wat` (or `NAME.hex`), optionally `NAME.policy.json`, and `NAME.expected`.

mod common;

use common::*;
use wasm_patch::{ValidationPolicy, fingerprint, validate};

/// The one-line verdict written to `NAME.expected`.
fn verdict(input: &[u8], policy: &ValidationPolicy) -> String {
    match validate(input, policy) {
        Ok(report) => {
            // Whatever validates must also fingerprint, and both must agree.
            let print = fingerprint(input).expect("a valid module fingerprints");
            assert_eq!(print.module_hash, report.module_hash);
            assert_eq!(print.exported_methods, report.exported_methods);
            assert_eq!(report.module_hash, wasm_patch::sha256(input));
            let metadata: Vec<&str> = report.metadata.keys().map(String::as_str).collect();
            format!(
                "ok: functions={} methods=[{}] ic0=[{}] metadata=[{}]{}\n",
                report.functions,
                report.exported_methods.join(", "),
                report.ic0_imports.join(", "),
                metadata.join(", "),
                if report.gzipped { " gzip" } else { "" },
            )
        }
        Err(e) => format!("error: {e}\n"),
    }
}

#[test]
fn validate_fixtures() {
    let dir = fixture_dir("validate");
    let names = fixtures(&dir);
    let mut failures = Vec::new();
    for name in &names {
        let input = load_input(&dir, name);
        let policy: ValidationPolicy = side_file(&dir, name, "policy.json").unwrap_or_default();
        let actual = verdict(&input, &policy);
        failures.extend(check_expected(&dir, name, &actual));
    }
    report(failures, names.len());
}
