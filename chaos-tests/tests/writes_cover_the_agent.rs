//! The `writes_resumed` invariant probes every kind of write the agent pauses: each update
//! method of `agent/src/lib.rs`, each built-in tool of `agent/src/tools.rs`, the turn loop's
//! `run_tool_call` and a synthesized tool that writes facts (`agent/src/synth.rs`) that checks the
//! write pause (`writes::check()`) has its probe in `chaos_tests::writes::PROBES`, or a reason in
//! `NOT_PROBED`. A new kind of write fails here until the invariant covers it. (The probes also
//! write the operator's loop settings, which the pause never refuses.)

use chaos_tests::writes::{NOT_PROBED, PROBES};
use std::collections::BTreeSet;

fn source(path: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `fn NAME(` of each `#[update]` whose body (up to the next attribute) checks the pause.
fn paused_methods(lib: &str) -> BTreeSet<String> {
    lib.split("#[update]")
        .skip(1)
        .filter_map(|item| {
            let body = item.split("\n#[").next().unwrap_or(item);
            let name = body.split("fn ").nth(1)?.split('(').next()?.trim();
            checks_pause(body).then(|| name.to_string())
        })
        .collect()
}

/// Whether `body` checks the pause in the real build: a check under a mutant's
/// `#[cfg(feature = "mutant-...")]` (a deliberately broken build) does not count.
fn checks_pause(body: &str) -> bool {
    let lines: Vec<&str> = body.lines().collect();
    lines.iter().enumerate().any(|(i, l)| {
        l.contains("writes::check()") && !(i > 0 && lines[i - 1].contains("feature = \"mutant-"))
    })
}

/// `"NAME" => {` arms of the tool dispatch whose block (up to the next arm) checks the pause.
fn paused_tools(tools: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let arms: Vec<&str> = tools.split("\n        \"").skip(1).collect();
    for arm in arms {
        let Some((name, rest)) = arm.split_once("\" => {") else {
            continue;
        };
        let block = rest.split("\n        }").next().unwrap_or(rest);
        if checks_pause(block) && !name.contains(' ') {
            found.insert(format!("call_tool {name}"));
        }
    }
    found
}

#[test]
fn every_paused_write_has_a_probe() {
    let mut paused = paused_methods(&source("agent/src/lib.rs"));
    paused.extend(paused_tools(&source("agent/src/tools.rs")));
    // The turn loop's runner of a claimed tool call, and a synthesized tool that writes facts.
    if source("agent/src/turn/run.rs").contains("writes::check()") {
        paused.insert("run_tool_call".into());
    }
    if source("agent/src/synth.rs").contains("writes::check()") {
        paused.insert("call_tool <synthesized tool>".into());
    }
    assert!(
        paused.contains("remember") && paused.contains("call_tool remember"),
        "the scan found too little: {paused:?}"
    );
    let covered: BTreeSet<String> = PROBES
        .iter()
        .map(|(name, _)| name.to_string())
        .chain(NOT_PROBED.iter().map(|(name, _)| name.to_string()))
        .collect();
    let missing: Vec<&String> = paused.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "paused writes without a writes_resumed probe: {missing:?}"
    );
}
