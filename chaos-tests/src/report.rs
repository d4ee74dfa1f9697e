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

fn secs(v: Option<f64>) -> String {
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
            secs(r.detect_secs),
            secs(r.restore_secs),
            if r.passed { "ok" } else { "FAIL" }
        ));
    }
    out
}
