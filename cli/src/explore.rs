//! `agentctl explore`: random histories of the whole trio on the embedded simulator
//! (`chaos_tests::explore`): progress, a summary (distinct traces, actions and faults by kind,
//! coverage), every failure with its seed and its shrunk timeline, every history its wall-time
//! bound stopped (`TIMEOUT`) with its slowest steps; `--seed S` replays one seed.

use anyhow::{Context, bail};
use chaos_tests::explore::{self, Config};
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// What to run.
pub struct ExploreArgs<'a> {
    /// Seeds 1..=N.
    pub seeds: Option<u64>,
    /// Or seeds from 1 on for this many minutes.
    pub minutes: Option<u64>,
    /// Or this one seed (a replay).
    pub seed: Option<u64>,
    /// Steps per history.
    pub steps: usize,
    /// The summary as JSON.
    pub json: Option<&'a Path>,
    /// A mutant trio instead of the workspace's builds.
    pub mutant: Option<&'a str>,
    /// Re-runs allowed to shrink each failure (0: no shrinking).
    pub shrink_runs: usize,
    /// Wall-clock seconds one history may take (0: unbounded).
    pub history_secs: u64,
}

/// Runs the subcommand; `Ok(false)` when an invariant broke or a history timed out.
pub fn run(args: &ExploreArgs) -> anyhow::Result<bool> {
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let trio = explore::trio(args.mutant).map_err(anyhow::Error::msg)?;
    let config = Config {
        steps: args.steps,
        trio,
        shrink_runs: args.shrink_runs,
        history_limit: (args.history_secs > 0).then(|| Duration::from_secs(args.history_secs)),
    };
    let (seeds, deadline): (Box<dyn Iterator<Item = u64>>, Option<Instant>) =
        match (args.seed, args.seeds, args.minutes) {
            (Some(s), None, None) => (Box::new(std::iter::once(s)), None),
            (None, Some(0), None) => bail!("--seeds must be at least 1"),
            (None, Some(n), None) => (Box::new(1..=n), None),
            (None, None, Some(m)) => (
                Box::new(1..),
                Some(Instant::now() + Duration::from_secs(m * 60)),
            ),
            (None, None, None) => (Box::new(1..=10), None),
            _ => bail!("give one of --seeds N, --minutes M or --seed S"),
        };
    println!(
        "agentctl explore: histories of {} steps on the embedded simulator{}",
        args.steps,
        args.mutant
            .map(|m| format!(", mutant `{m}`"))
            .unwrap_or_default()
    );
    let mut n = 0;
    let summary = explore::explore(seeds, deadline, &config, |h, failure| {
        n += 1;
        // scripts/mutants.sh parses these lines: `[n] seed S ... ok|FAIL|TIMEOUT ...`, then
        // for FAIL `       invariant: detail`, for TIMEOUT `       timed_out: detail`.
        let outcome = match (failure, &h.timed_out) {
            (Some(_), _) => "FAIL",
            (None, Some(_)) => "TIMEOUT",
            (None, None) => "ok",
        };
        println!(
            "[{n:>4}] seed {:<6} {:>3} steps  {outcome:<8} {:>6.1} s  trace {}",
            h.seed,
            h.steps.len(),
            h.wall_ms as f64 / 1000.0,
            &h.trace[..h.trace.len().min(12)]
        );
        if let Some(f) = failure {
            println!("       {}: {}", f.invariant, f.detail);
        } else if let Some(t) = &h.timed_out {
            let slowest: Vec<String> = h.slowest_steps(3).iter().map(|s| s.to_string()).collect();
            println!(
                "       timed_out: the {} s bound struck in step {}; slowest: {}",
                t.limit_secs,
                t.step,
                slowest.join("; ")
            );
        }
        if args.seed.is_some() {
            print!("{}", h.timeline());
        }
        let _ = std::io::stdout().flush();
    });
    println!("\n{}", summary.text());
    if let Some(path) = args.json {
        let text = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("summary written to {}", path.display());
    }
    Ok(summary.failures.is_empty() && summary.timed_out.is_empty())
}
