//! The operator runbook, run for real and kept in step:
//!
//! - `the_runbook_runs_with_icp_against_the_server`: `scripts/icp-runbook.sh` installs icp from
//!   npm (and node/npm with apt when missing), starts `agentctl serve --deploy`, and runs every
//!   step of `scripts/runbook.txt`, checking each answer; a stranger is refused on every update
//!   and a wrong root key is refused by icp. Where icp cannot be had, it fails and says why.
//! - The README's runbook table and `scripts/runbook.txt` name the same commands, and every row
//!   gives the same commands for icp and dfx.
//! - The README's dfx forms type-check against the .did files and use only dfx's documented
//!   flags (dfx itself cannot be installed here, so this is as far as they can be checked).

use std::collections::BTreeSet;
use std::process::Command;

mod common;

use common::{root, workspace_file};

/// What a command does, whichever tool runs it: `call CANISTER METHOD`, `stop CANISTER`,
/// `snapshot list CANISTER`, ... (`dfx canister snapshot load` is icp's `restore`); `None` for
/// commands that are not operator actions.
fn shape(command: &str) -> Option<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    match words.as_slice() {
        ["icp" | "dfx", "canister", "call", canister, method, ..] => {
            Some(format!("call {canister} {method}"))
        }
        [
            "icp" | "dfx",
            "canister",
            op @ ("stop" | "start"),
            canister,
            ..,
        ] => Some(format!("{op} {canister}")),
        ["icp" | "dfx", "canister", "snapshot", op, canister, ..] => {
            let op = if *op == "load" { "restore" } else { op };
            Some(format!("snapshot {op} {canister}"))
        }
        ["agentctl", "upload-args", ..] | ["upload", ..] => Some("upload".into()),
        _ => None,
    }
}

/// The runbook table of README.md: per row, the commands of the icp and of the dfx column.
fn readme_rows() -> Vec<(String, Vec<String>, Vec<String>)> {
    let readme = workspace_file("README.md");
    let start = readme
        .find("## Operator runbook")
        .expect("README has an operator runbook");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let spans = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| task") && !l.starts_with("| ---"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
            assert_eq!(cells.len(), 3, "a runbook row has task | icp | dfx: {line}");
            (
                cells[0].trim().to_string(),
                spans(cells[1]),
                spans(cells[2]),
            )
        })
        .collect()
}

/// The commands of scripts/runbook.txt, as icp command lines.
fn script_commands() -> Vec<String> {
    workspace_file("scripts/runbook.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let command = l
                .splitn(3, '|')
                .nth(2)
                .expect("KIND | PATTERN | COMMAND")
                .trim();
            if command.starts_with("upload ") {
                command.to_string()
            } else {
                format!("icp {command}")
            }
        })
        .collect()
}

#[test]
fn the_readme_runbook_and_the_script_name_the_same_commands() {
    let rows = readme_rows();
    assert!(
        rows.len() >= 15,
        "the README runbook has {} rows",
        rows.len()
    );
    let readme: BTreeSet<String> = rows
        .iter()
        .flat_map(|(_, icp, _)| icp.iter().filter_map(|c| shape(c)))
        .collect();
    let script: BTreeSet<String> = script_commands().iter().filter_map(|c| shape(c)).collect();
    let missing_in_script: Vec<_> = readme.difference(&script).collect();
    let missing_in_readme: Vec<_> = script.difference(&readme).collect();
    assert!(
        missing_in_script.is_empty() && missing_in_readme.is_empty(),
        "README.md's runbook and scripts/runbook.txt drifted apart:\n  \
         in the README but never run by the script: {missing_in_script:?}\n  \
         run by the script but not in the README: {missing_in_readme:?}\n\
         Add a step to scripts/runbook.txt, or a row (icp and dfx forms) to the README's table."
    );
    for (task, icp, dfx) in &rows {
        let icp: BTreeSet<_> = icp
            .iter()
            .filter_map(|c| shape(c))
            .filter(|s| s != "upload")
            .collect();
        let dfx: BTreeSet<_> = dfx.iter().filter_map(|c| shape(c)).collect();
        assert!(!icp.is_empty(), "README row `{task}` has no icp form");
        assert_eq!(
            icp, dfx,
            "README row `{task}`: the icp and dfx forms do different things"
        );
    }
}

/// The flags dfx documents for the subcommands the README uses (dfx's CLI reference:
/// `dfx canister call|install|update-settings|create|snapshot|stop|start --help`), global ones
/// included.
fn dfx_documented_flags(subcommand: &str) -> &'static [&'static str] {
    const GLOBAL: &[&str] = &[
        "--network",
        "--ic",
        "--playground",
        "--identity",
        "--verbose",
        "--quiet",
    ];
    let own: &[&str] = match subcommand {
        "call" => &[
            "--argument-file",
            "--argument",
            "--query",
            "--update",
            "--candid",
            "--output",
            "--type",
            "--with-cycles",
            "--random",
            "--async",
            "--always-assist",
            "--wallet",
            "--impersonate",
        ],
        "install" => &[
            "--argument",
            "--argument-file",
            "--argument-type",
            "--mode",
            "--wasm",
            "--yes",
            "--upgrade-unchanged",
            "--skip-pre-upgrade",
            "--wasm-memory-persistence",
            "--always-assist",
            "--async-call",
            "--all",
            "--no-asset-upgrade",
        ],
        "update-settings" => &[
            "--add-controller",
            "--remove-controller",
            "--set-controller",
            "--compute-allocation",
            "--memory-allocation",
            "--freezing-threshold",
            "--reserved-cycles-limit",
            "--wasm-memory-limit",
            "--log-visibility",
            "--all",
            "--confirm-very-long-freezing-threshold",
        ],
        "create" => &[
            "--all",
            "--with-cycles",
            "--controller",
            "--specified-id",
            "--subnet",
        ],
        "snapshot" | "stop" | "start" | "id" => &[],
        _ => panic!("the README uses `dfx canister {subcommand}`: add its documented flags here"),
    };
    Box::leak([GLOBAL, own].concat().into_boxed_slice())
}

/// The candid interface of a canister's .did file.
fn interface(canister: &str) -> (candid::TypeEnv, candid::types::Type) {
    let did = workspace_file(&format!("{canister}/{canister}.did"));
    let (env, actor) = candid_parser::utils::CandidSource::Text(&did)
        .load()
        .unwrap_or_else(|e| panic!("{canister}.did: {e}"));
    (env, actor.expect("a service"))
}

/// The README's placeholders, replaced by values of their types.
fn example_values(args: &str) -> String {
    args.replace("$UPGRADE", "7")
        .replace("$VERSION", &format!("blob \"{}\"", "\\ab".repeat(32)))
        .replace("$SNAPSHOT_BLOB", "\\00\\01")
        .replace("$ME", "2vxsx-fae")
}

#[test]
fn the_readme_dfx_forms_type_check_and_use_documented_flags() {
    let readme = workspace_file("README.md");
    let mut calls = 0;
    for span in readme
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with("dfx canister "))
    {
        let words: Vec<&str> = span.split_whitespace().collect();
        let subcommand = words[2];
        for flag in words.iter().filter(|w| w.starts_with("--")) {
            assert!(
                dfx_documented_flags(subcommand).contains(flag),
                "README: `{span}` uses {flag}, which `dfx canister {subcommand}` does not document"
            );
        }
        if subcommand != "call" || span.contains("--argument-file") {
            continue;
        }
        let (canister, method) = (words[3], words[4]);
        let (env, actor) = interface(canister);
        let func = env
            .get_method(&actor, method)
            .unwrap_or_else(|e| panic!("README: `{span}`: {canister}.did has no {method}: {e}"));
        let args = match span.find(" '(") {
            Some(i) => example_values(span[i + 2..].trim_end_matches('\'')),
            None => "()".into(),
        };
        let parsed = candid_parser::parse_idl_args(&args)
            .unwrap_or_else(|e| panic!("README: `{span}`: the argument is not candid: {e}"));
        // Trailing `opt` arguments may be left out, as candid decodes them (`list_versions`
        // takes an optional cursor).
        parsed
            .annotate_types(true, &env, &func.args)
            .and_then(|args| args.to_bytes_with_types(&env, &func.args))
            .unwrap_or_else(|e| {
                panic!("README: `{span}`: the argument does not fit {canister}.{method}: {e}")
            });
        calls += 1;
    }
    assert!(calls >= 20, "only {calls} dfx calls were checked");
}

#[test]
fn the_runbook_runs_with_icp_against_the_server() {
    let work = std::env::temp_dir().join(format!("icp-runbook-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let started = std::time::Instant::now();
    let out = Command::new("bash")
        .arg(root().join("scripts/icp-runbook.sh"))
        .env("AGENTCTL", env!("CARGO_BIN_EXE_agentctl"))
        .env("RUNBOOK_WORK", &work)
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the icp runbook failed after {:.0?}:\n{stdout}\n{stderr}",
        started.elapsed()
    );
    let steps = script_commands().len();
    assert!(
        stdout.contains("a wrong root key is refused") && stdout.contains(" steps held in "),
        "{stdout}"
    );
    eprintln!(
        "icp runbook: {steps} steps in {:.0?}; {}",
        started.elapsed(),
        stdout
            .lines()
            .filter(|l| l.contains("installed") || l.contains("held in"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let _ = std::fs::remove_dir_all(&work);
}
