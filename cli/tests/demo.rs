//! The main job must keep working, and the README must keep telling users how to run it and the
//! tests the way CI does.

mod common;

use common::{agentctl, workspace_file};

#[test]
fn demo_runs_and_every_step_holds() {
    let output = agentctl(["demo"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("verdict: 6/6 steps held"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    for shown in [
        "the model decides to upgrade: self_upgrade adds a method, commits, and the same turn uses it",
        "model     turn 1",
        "the model asked for self_upgrade",
        "the turn resumes in module",
        "the model asked for call_own_method",
        "a bad release is detected and rolled back, nothing lost",
        "the agent repairs its killed watchdog",
        "timeline (simulated):",
        "watchdog  ladder.start",
        "agent     upgrade.committed",
        // The bounds are read from the canisters, not printed from a constant.
        "within the bound of 35 s from the watchdog's detection_bound_secs",
        "within the bound of 35 s from the agent's supervision settings",
    ] {
        assert!(
            stdout.contains(shown),
            "the demo no longer shows `{shown}`:\n{stdout}"
        );
    }
    // The README's sample output shows every step, and the bounds, as the demo prints them
    // (module hashes and byte counts aside).
    let readme = mask_hashes(&workspace_file("README.md"));
    for line in stdout
        .lines()
        .filter(|l| l.starts_with("[t+") || l.contains("the bound of"))
    {
        let line = mask_hashes(line);
        assert!(
            readme.contains(&line),
            "the README's sample output lacks the demo's line `{line}`: paste the demo's output"
        );
    }
}

/// `text` with every run of 12 or more lowercase hex digits (a module hash or its prefix)
/// replaced by `<hash>`: hashes change with every change of the agent's code.
fn mask_hashes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 12 {
            out.push_str("<hash>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || ('a'..='f').contains(&c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[test]
fn ic_rules_runs_and_every_step_holds() {
    let output = agentctl(["ic-rules"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "ic-rules failed:\n{stdout}");
    assert!(stdout.contains("verdict: 6/6 steps held"), "{stdout}");
}

#[test]
fn readme_and_ci_agree_on_the_two_commands() {
    let readme = workspace_file("README.md");
    let ci = workspace_file(".ci/run");
    let test_command = "cargo test --workspace --all-targets";
    assert!(
        readme.contains("cargo run -p agentctl -- demo"),
        "README lost the demo command"
    );
    assert!(
        readme.contains(test_command),
        "README lost the test command"
    );
    let ci_commands: Vec<&str> = ci
        .lines()
        .filter(|l| l.trim_start().starts_with("cargo "))
        .collect();
    assert_eq!(
        ci_commands,
        vec![test_command],
        ".ci/run must run exactly the README's test command"
    );
}
