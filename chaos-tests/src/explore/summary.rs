//! Many histories: [`explore`] runs seeds until a count or a deadline, shrinks each failure,
//! and sums up what ran (distinct traces, actions and faults by kind, coverage) as
//! `agentctl explore` prints it and writes it as JSON.

use super::coverage::{Coverage, Missed};
use super::{Config, History, run_seed, shrink};
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
        for (name, n) in ["struck_trap", "struck_call_failed", "struck_response_held", "struck_response_dropped"]
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
        if self.failures.is_empty() {
            out.push_str("every invariant held in every history\n");
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
