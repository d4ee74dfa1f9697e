//! Many histories: [`explore`] runs seeds until a count or a deadline, shrinks each failure,
//! and sums up what ran (distinct traces, actions and faults by kind, coverage, the histories
//! the wall-time bound stopped and the slowest steps) as `agentctl explore` prints it and
//! writes it as JSON.

use super::coverage::{Coverage, Missed};
use super::{Config, History, SlowStep, run_seed, shrink};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// A failing seed: the invariant, the shrunk history's timeline.
#[derive(Serialize, Clone, Debug)]
pub struct SeedFailure {
    /// The seed (`agentctl explore --seed S` replays it).
    pub seed: u64,
    /// The broken invariant.
    pub invariant: String,
    /// What was seen.
    pub detail: String,
    /// Steps of the generated history up to the failure.
    pub steps: usize,
    /// Steps of the shrunk history.
    pub shrunk_steps: usize,
    /// The shrunk history, readable.
    pub timeline: String,
}

/// A history the wall-time bound stopped: neither passed nor failed.
#[derive(Serialize, Clone, Debug)]
pub struct SeedTimeout {
    /// The seed (`agentctl explore --seed S --history-secs 0` runs it to the end).
    pub seed: u64,
    /// The step that was running when the bound struck (the history's length: the final check).
    pub step: usize,
    /// Steps of the generated history.
    pub steps: usize,
    /// The bound, in wall-clock seconds.
    pub limit_secs: f64,
    /// Where its time went: its slowest steps, slowest first.
    pub slowest: Vec<SlowStep>,
}

/// How many of the slowest steps the summary keeps.
pub const SLOWEST: usize = 5;

/// What a run of many histories found.
#[derive(Serialize, Clone, Debug, Default)]
pub struct Summary {
    /// The mutant explored, if any.
    pub mutant: Option<String>,
    /// Histories run (shrinking's re-runs not counted).
    pub histories: u64,
    /// Steps run.
    pub steps: u64,
    /// Distinct simulator traces.
    pub distinct_traces: usize,
    /// Actions by kind.
    pub actions: BTreeMap<String, u64>,
    /// Faults by kind: injected ones (actions) and the simulator's that struck.
    pub faults: BTreeMap<String, u64>,
    /// Every failing seed.
    pub failures: Vec<SeedFailure>,
    /// Every seed the wall-time bound stopped.
    pub timed_out: Vec<SeedTimeout>,
    /// The slowest steps of all histories, slowest first ([`SLOWEST`] of them).
    pub slowest_steps: Vec<SlowStep>,
    /// What the histories reached.
    pub coverage: Coverage,
    /// What they did not.
    pub missed: Missed,
    /// Modules compiled after the first history (0: fresh trios share compiled modules).
    pub compilations_after_first: u64,
    /// Wall-clock seconds.
    pub wall_secs: f64,
    /// Histories per wall-clock second.
    pub histories_per_sec: f64,
}

/// Runs `seeds` (until `deadline`, if given), calling `progress` after each history.
pub fn explore(
    seeds: impl IntoIterator<Item = u64>,
    deadline: Option<Instant>,
    config: &Config,
    mut progress: impl FnMut(&History, Option<&SeedFailure>),
) -> Summary {
    let started = Instant::now();
    let mut s = Summary {
        mutant: config.trio.mutant.clone(),
        ..Summary::default()
    };
    let mut traces = BTreeSet::new();
    for seed in seeds {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let h = run_seed(seed, config);
        if s.histories > 0 {
            s.compilations_after_first += h.compilations;
        }
        s.histories += 1;
        s.steps += h.steps.len() as u64;
        traces.insert(h.trace.clone());
        for a in &h.actions[..h.steps.len()] {
            *s.actions.entry(a.kind()).or_default() += 1;
            if a.is_fault() {
                *s.faults.entry(a.kind()).or_default() += 1;
            }
        }
        for (name, n) in [
            "struck_trap",
            "struck_call_failed",
            "struck_response_held",
            "struck_response_dropped",
        ]
        .iter()
        .zip(h.faults_fired)
        {
            *s.faults.entry(name.to_string()).or_default() += n;
        }
        s.coverage.merge(&h.coverage);
        let failure = h.failure.as_ref().map(|f| {
            let small = if config.shrink_runs > 0 {
                shrink(&h, &config.trio, config.shrink_runs)
            } else {
                h.clone()
            };
            SeedFailure {
                seed,
                invariant: f.violation.invariant.clone(),
                detail: f.violation.detail.clone(),
                steps: h.steps.len(),
                shrunk_steps: small.steps.len(),
                timeline: small.timeline(),
            }
        });
        s.slowest_steps.extend(h.slowest_steps(SLOWEST));
        s.slowest_steps
            .sort_by(|a, b| b.wall_ms.cmp(&a.wall_ms).then(a.seed.cmp(&b.seed)));
        s.slowest_steps.truncate(SLOWEST);
        if let Some(t) = &h.timed_out {
            s.timed_out.push(SeedTimeout {
                seed,
                step: t.step,
                steps: h.actions.len(),
                limit_secs: t.limit_secs,
                slowest: h.slowest_steps(3),
            });
        }
        progress(&h, failure.as_ref());
        s.failures.extend(failure);
    }
    s.distinct_traces = traces.len();
    s.missed = s.coverage.missed();
    s.wall_secs = started.elapsed().as_secs_f64();
    s.histories_per_sec = s.histories as f64 / s.wall_secs.max(1e-9);
    s
}

impl Summary {
    /// The summary as text.
    pub fn text(&self) -> String {
        let mut out = format!(
            "{} histories, {} steps, {} distinct traces, {:.3} histories/s ({:.0} s wall), {} module compilations after the first history\n",
            self.histories,
            self.steps,
            self.distinct_traces,
            self.histories_per_sec,
            self.wall_secs,
            self.compilations_after_first
        );
        let list = |m: &BTreeMap<String, u64>| {
            m.iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!("actions: {}\n", list(&self.actions)));
        out.push_str(&format!("faults: {}\n", list(&self.faults)));
        out.push_str(&format!(
            "coverage: {} transitions, {} rungs, {} error kinds reached\n",
            self.coverage.transitions.len(),
            self.coverage.rungs.len(),
            self.coverage.errors.len()
        ));
        out.push_str(&format!(
            "  transitions: {}\n  rungs: {}\n  errors: {}\n",
            join(&self.coverage.transitions),
            join(&self.coverage.rungs),
            join(&self.coverage.errors)
        ));
        out.push_str(&format!(
            "missed: transitions [{}]; rungs [{}]; errors [{}]\n",
            self.missed.transitions.join(", "),
            self.missed.rungs.join(", "),
            self.missed.errors.join(", ")
        ));
        out.push_str("slowest steps:\n");
        for step in &self.slowest_steps {
            out.push_str(&format!("  {step}\n"));
        }
        for t in &self.timed_out {
            out.push_str(&format!(
                "TIMED OUT seed {}: the {} s wall-time bound struck in step {} of {} (not a safety failure; `--seed {} --history-secs 0` runs it through); slowest: {}\n",
                t.seed,
                t.limit_secs,
                t.step,
                t.steps,
                t.seed,
                if t.slowest.is_empty() {
                    "no step ran".to_string()
                } else {
                    t.slowest
                        .iter()
                        .map(|s| format!("#{} {} ({:.1} s)", s.step, s.action, s.wall_ms as f64 / 1000.0))
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            ));
        }
        if self.failures.is_empty() {
            let done = self.histories as usize - self.timed_out.len();
            out.push_str(&format!(
                "every invariant held in every history that ran to its end ({done} of {})\n",
                self.histories
            ));
        }
        for f in &self.failures {
            out.push_str(&format!(
                "\nFAILURE seed {}: {} ({} steps, shrunk to {}): {}\n{}",
                f.seed, f.invariant, f.steps, f.shrunk_steps, f.detail, f.timeline
            ));
        }
        out
    }
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(", ")
}
