//! What one run produced: the outcome, the data lost, the detection and restore times, the
//! module hashes, and every invariant with its verdict. Serialised as the JSON of
//! `agentctl chaos --json`.

use serde::Serialize;

/// How the injected upgrade ended.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It became the LKG and still runs.
    Committed,
    /// It was refused before anything ran: upload, validation, gate.
    Rejected,
    /// It ran, and the watchdog restored a verified version.
    RolledBack,
    /// It never took effect (rehearsal failed, install trapped, arming refused).
    Failed,
}

impl Outcome {
    /// The JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Committed => "committed",
            Outcome::Rejected => "rejected",
            Outcome::RolledBack => "rolled_back",
            Outcome::Failed => "failed",
        }
    }
}

/// One invariant's verdict.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// The invariant.
    pub name: &'static str,
    /// Whether it held.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

/// One scenario under one seed.
#[derive(Serialize, Clone, Debug)]
pub struct Report {
    /// The scenario.
    pub scenario: String,
    /// The seed (replays exactly).
    pub seed: u64,
    /// How the upgrade ended.
    pub outcome: Outcome,
    /// Tasks and facts lost (by the state digests before and after).
    pub data_lost: u64,
    /// Simulated seconds from the fault to its detection (the incident), when both are known.
    pub detect_secs: Option<f64>,
    /// Simulated seconds from detection to the verified restore.
    pub restore_secs: Option<f64>,
    /// The module the agent runs at the end (hex).
    pub final_module_hash: String,
    /// The module it should run: the candidate if committed, else the version before (hex).
    pub expected_module_hash: String,
    /// Every invariant.
    pub checks: Vec<Check>,
    /// Whether every invariant held.
    pub passed: bool,
    /// What the scenario and the system recorded, in words.
    pub notes: Vec<String>,
    /// Wall-clock milliseconds of the run.
    pub wall_ms: u64,
    /// The simulator's digest of every execution of the run, in order (`Sim::trace_digest`):
    /// equal for runs that executed the same messages in the same order.
    pub trace: String,
}

impl Report {
    /// The invariants that failed, one per line.
    pub fn failures(&self) -> String {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The report of a run that could not be checked (its setup or its invariant checks
/// panicked): one failed check, `ran_to_the_end`, that says what broke.
pub fn broken(scenario: &str, seed: u64, what: String) -> Report {
    Report {
        scenario: scenario.to_string(),
        seed,
        outcome: Outcome::Failed,
        data_lost: 0,
        detect_secs: None,
        restore_secs: None,
        final_module_hash: String::new(),
        expected_module_hash: String::new(),
        checks: vec![Check {
            name: "ran_to_the_end",
            ok: false,
            detail: what,
        }],
        passed: false,
        notes: vec![],
        wall_ms: 0,
        trace: String::new(),
    }
}

/// Simulated nanoseconds as seconds, to the millisecond (a round takes 1 ns).
pub fn secs(ns: u64) -> f64 {
    (ns as f64 / 1e6).round() / 1e3
}

fn whole_secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| format!("{s:.0}"))
}

/// The reports as a text table.
pub fn table(reports: &[Report]) -> String {
    let mut out = format!(
        "{:<38} {:>5} {:<12} {:>5} {:>7} {:>8} {:<6}\n",
        "scenario", "seed", "outcome", "lost", "detect", "restore", "checks"
    );
    for r in reports {
        out.push_str(&format!(
            "{:<38} {:>5} {:<12} {:>5} {:>7} {:>8} {:<6}\n",
            r.scenario,
            r.seed,
            r.outcome.name(),
            r.data_lost,
            whole_secs(r.detect_secs),
            whole_secs(r.restore_secs),
            if r.passed { "ok" } else { "FAIL" }
        ));
    }
    out
}

/// The distinct values of `v` over `runs` (seconds, rounded), as `30` or `30-35`; `-` when none.
fn spread(runs: &[&Report], v: impl Fn(&Report) -> Option<f64>) -> String {
    let values: Vec<u64> = runs
        .iter()
        .filter_map(|r| v(r))
        .map(|s| s.round() as u64)
        .collect();
    match (values.iter().min(), values.iter().max()) {
        (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
        (Some(lo), Some(hi)) => format!("{lo}-{hi}"),
        _ => "-".into(),
    }
}

/// One Markdown row per scenario (in the order the reports came): the outcomes over its seeds,
/// the records lost (the most any seed lost), the detection and restore times, and how many
/// runs kept every invariant. This is the README's chaos table.
pub fn summary(reports: &[Report]) -> String {
    let mut names: Vec<&str> = vec![];
    for r in reports {
        if !names.contains(&r.scenario.as_str()) {
            names.push(&r.scenario);
        }
    }
    let mut out = String::from(
        "| scenario | outcomes | records lost | detect (s) | restore (s) | invariants held |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for name in names {
        let runs: Vec<&Report> = reports.iter().filter(|r| r.scenario == name).collect();
        let mut outcomes: Vec<(Outcome, usize)> = vec![];
        for r in &runs {
            match outcomes.iter_mut().find(|(o, _)| *o == r.outcome) {
                Some((_, n)) => *n += 1,
                None => outcomes.push((r.outcome, 1)),
            }
        }
        let outcomes = outcomes
            .iter()
            .map(|(o, n)| format!("{n}x {}", o.name()))
            .collect::<Vec<_>>()
            .join(", ");
        let lost = runs.iter().map(|r| r.data_lost).max().unwrap_or(0);
        let held = runs.iter().filter(|r| r.passed).count();
        out.push_str(&format!(
            "| {name} | {outcomes} | {lost} | {} | {} | {held}/{} |\n",
            spread(&runs, |r| r.detect_secs),
            spread(&runs, |r| r.restore_secs),
            runs.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(scenario: &str, seed: u64, outcome: Outcome, detect: Option<f64>) -> Report {
        Report {
            scenario: scenario.into(),
            seed,
            outcome,
            data_lost: seed % 2,
            detect_secs: detect,
            restore_secs: detect.map(|_| 10.0),
            final_module_hash: String::new(),
            expected_module_hash: String::new(),
            checks: vec![],
            passed: seed != 3,
            notes: vec![],
            wall_ms: 0,
            trace: String::new(),
        }
    }

    #[test]
    fn summary_groups_seeds_by_scenario_in_order() {
        let reports = [
            report("b", 1, Outcome::RolledBack, Some(30.0)),
            report("a", 1, Outcome::Rejected, None),
            report("b", 2, Outcome::Committed, None),
            report("b", 3, Outcome::RolledBack, Some(35.2)),
        ];
        let text = summary(&reports);
        let rows: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(
            rows,
            [
                "| b | 2x rolled_back, 1x committed | 1 | 30-35 | 10 | 2/3 |",
                "| a | 1x rejected | 1 | - | - | 1/1 |",
            ]
        );
    }
}
