//! `agentctl chaos`: runs the chaos scenarios (or one, or a Wasm file offered as a release)
//! under seeds 1..=N on the embedded simulator, prints progress and a summary table by scenario, writes the JSON
//! reports, and fails if any invariant broke. A seed replays exactly.

use anyhow::{Context, bail};
use chaos_tests::{Report, Scenario, report};
use std::io::Write as _;
use std::path::Path;

/// Runs the subcommand; `Ok(false)` when an invariant broke.
pub fn run(
    scenario: Option<&str>,
    seeds: u64,
    json: Option<&Path>,
    candidate: Option<&Path>,
) -> anyhow::Result<bool> {
    if seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let scenarios: Vec<Scenario> = match (candidate, scenario) {
        (Some(path), _) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            vec![chaos_tests::scenarios::candidate(bytes)]
        }
        (None, Some(name)) => vec![chaos_tests::find(name).with_context(|| {
            format!(
                "no scenario `{name}`; scenarios: {}",
                chaos_tests::all()
                    .iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?],
        (None, None) => chaos_tests::all(),
    };
    let total = scenarios.len() as u64 * seeds;
    println!(
        "agentctl chaos: {} scenario(s) x {seeds} seed(s) on the embedded simulator",
        scenarios.len()
    );
    let mut reports: Vec<Report> = vec![];
    for s in &scenarios {
        for seed in 1..=seeds {
            print!(
                "[{:>3}/{total}] {:<38} seed {seed:<3} ",
                reports.len() + 1,
                s.name
            );
            let _ = std::io::stdout().flush();
            let r = chaos_tests::run(s, seed);
            println!(
                "{:<12} {} ({:.1} s)",
                r.outcome.name(),
                if r.passed { "ok" } else { "FAIL" },
                r.wall_ms as f64 / 1000.0
            );
            if !r.passed {
                println!("      {}", r.failures().replace('\n', "\n      "));
            }
            reports.push(r);
        }
    }
    println!("\nby scenario (simulated seconds; every run's details are in the JSON):\n");
    print!("{}", report::summary(&reports));
    let failed = reports.iter().filter(|r| !r.passed).count();
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&reports)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("reports written to {}", path.display());
    }
    println!(
        "\nverdict: {}/{} runs kept every invariant",
        reports.len() - failed,
        reports.len()
    );
    Ok(failed == 0)
}
