//! The explorer: random histories of the whole trio on ic-sim, checked after every step
//! (FoundationDB's simulation, TigerBeetle's VOPR, for this system).
//!
//! A seed picks a history ([`action::generate`]: operator actions, the agent's tools and
//! self-upgrades, releases good and bad, faults, time) and the simulator's message order
//! (`MessageOrder::Seeded`, its delay drawn from the seed). [`run`] deploys a fresh trio as
//! the README does, plays the history and checks the safety invariants after every step and
//! liveness at checkpoints and at the end ([`check`]). Everything follows from the seed, so a
//! failing seed replays exactly; [`shrink`] removes steps while the same invariant still
//! breaks, and [`History::timeline`] prints what is left for a regression test.
//!
//! Each history has a wall-time bound ([`Config::history_limit`], from its first step): a history
//! that reaches it stops and is reported as timed out ([`History::timed_out`]), neither passed
//! nor failed, and the run goes on with the next seed. Every step's wall time is kept
//! ([`Step::wall_ms`]) so a slow history shows where its time went.
//!
//! - [`action`]: the steps and the generator; [`world`]: applying a step to the trio;
//!   [`check`]: the invariants and their bounds; [`safety_net`]: the invariants that guard the
//!   safety net's own rules (issue 12); [`reach`]: the extra stream's actions (timings the base
//!   draw cannot hit) and their invariants; [`cover`]: the coverage stream's scenarios (what
//!   the other two missed); [`coverage`]: what the histories reached;
//!   [`summary`]: many seeds, as `agentctl explore` reports them.
//! - [`Trio`]: the three modules a history runs, the one place a mutant build comes in.

pub mod action;
pub mod check;
pub mod cover;
pub mod coverage;
pub mod reach;
pub mod safety_net;
pub mod summary;
pub mod world;

pub use action::{Action, generate};
pub use check::Violation;
pub use coverage::Coverage;
pub use summary::{SeedTimeout, Summary, explore};

use crate::rng::Rng;
use ic_sim::{FaultsFired, MessageOrder, SimConfig};
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use testbed::{Options, Testbed};
use world::World;

/// The raw modules of a trio (`None`: the workspace's build of that canister).
#[derive(Clone, Debug, Default)]
pub struct Trio {
    /// The mutant's name, if any.
    pub mutant: Option<String>,
    /// The agent.
    pub agent: Option<Vec<u8>>,
    /// The watchdog.
    pub watchdog: Option<Vec<u8>>,
    /// Staging.
    pub staging: Option<Vec<u8>>,
}

/// The trio to explore: the workspace's builds, or mutant `name`'s. Every history takes its
/// modules from here, so a mutant build is one call.
pub fn trio(mutant: Option<&str>) -> Result<Trio, String> {
    match mutant {
        None => Ok(Trio::default()),
        // The whole process runs the mutant (testbed::use_mutant): the trio, and the chaos
        // build bad candidates are made from, which carries the mutation too. Built here, so
        // a build failure is reported before the first history.
        Some(name) => {
            testbed::use_mutant(name)?;
            canister_build::mutant_trio(name).map_err(|e| e.to_string())?;
            Ok(Trio {
                mutant: Some(name.to_string()),
                ..Trio::default()
            })
        }
    }
}

/// How a history is run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Steps per generated history.
    pub steps: usize,
    /// The modules.
    pub trio: Trio,
    /// Shrink failing histories, with at most this many re-runs (0: do not shrink).
    pub shrink_runs: usize,
    /// The wall time one history may take from its first step, the final check included
    /// (`None`: unbounded). Deploying the trio is not counted (it has its own simulated bound).
    pub history_limit: Option<Duration>,
}

/// [`Config::history_limit`]'s default: a history of 30 steps takes seconds to a minute.
pub const DEFAULT_HISTORY_LIMIT: Duration = Duration::from_secs(300);

impl Default for Config {
    fn default() -> Self {
        Self {
            steps: 30,
            trio: Trio::default(),
            shrink_runs: 40,
            history_limit: Some(DEFAULT_HISTORY_LIMIT),
        }
    }
}

/// One step as it ran.
#[derive(Serialize, Clone, Debug)]
pub struct Step {
    /// Its index in the history.
    pub index: usize,
    /// Simulated seconds since the history began, when the step began.
    pub at_secs: u64,
    /// The action, in words.
    pub action: String,
    /// What came of it.
    pub result: String,
    /// Wall-clock milliseconds the step took, its safety or liveness check included.
    pub wall_ms: u64,
}

/// A history stopped by its wall-time bound: not a pass, not a failure.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct TimedOut {
    /// The step that was running when the bound struck (the history's length: the final
    /// liveness check).
    pub step: usize,
    /// The bound, in wall-clock seconds.
    pub limit_secs: f64,
}

/// A broken invariant and where.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The step after which it broke (the history's length: at the final liveness check).
    pub step: usize,
    /// The invariant and what was seen.
    pub violation: Violation,
}

/// One history as it ran.
#[derive(Serialize, Clone, Debug)]
pub struct History {
    /// The seed.
    pub seed: u64,
    /// The simulator's same-subnet delay probability (the message order).
    pub delay: f64,
    /// The actions played (all of them, also those after a failure, which did not run).
    #[serde(skip)]
    pub actions: Vec<Action>,
    /// The steps that ran.
    pub steps: Vec<Step>,
    /// The first broken invariant, if any.
    pub failure: Option<Failure>,
    /// Set when the wall-time bound stopped the history (then `failure` is `None`).
    pub timed_out: Option<TimedOut>,
    /// The wall-time bound it ran under.
    #[serde(skip)]
    pub limit: Option<Duration>,
    /// Wall-clock milliseconds of deploying the trio.
    pub deploy_ms: u64,
    /// Wall-clock milliseconds of the final liveness check (0 if it did not run).
    pub final_check_ms: u64,
    /// What it reached.
    pub coverage: Coverage,
    /// Losses incidents explained.
    pub excused: Vec<String>,
    /// What the operator did in the final check beyond healing (see
    /// [`World::operator_steps`]).
    pub final_operator_steps: Vec<String>,
    /// The simulator's trace digest (equal for equal executions).
    pub trace: String,
    /// The simulator's faults that struck (trapped, calls failed, responses held, dropped).
    pub faults_fired: [u64; 4],
    /// Modules compiled while it ran (0 once the cache is warm: fresh trios share them).
    pub compilations: u64,
    /// Wall-clock milliseconds.
    pub wall_ms: u64,
}

impl History {
    /// The history as a readable timeline: one line per step, then the failure.
    pub fn timeline(&self) -> String {
        let mut out = format!("seed {} (message delay {}):\n", self.seed, self.delay);
        for s in &self.steps {
            out.push_str(&format!(
                "  #{:<3} t+{:>6}s  {}",
                s.index, s.at_secs, s.action
            ));
            if !s.result.is_empty() {
                out.push_str(&format!("  -> {}", s.result));
            }
            out.push('\n');
        }
        for done in &self.final_operator_steps {
            out.push_str(&format!("  final check: {done}\n"));
        }
        match (&self.failure, &self.timed_out) {
            (Some(f), _) => out.push_str(&format!(
                "  BROKEN after step {}: {}: {}\n",
                f.step, f.violation.invariant, f.violation.detail
            )),
            (None, Some(t)) => out.push_str(&format!(
                "  TIMED OUT in step {}: the history's wall-time bound ({} s) struck; nothing is known of the rest\n",
                t.step, t.limit_secs
            )),
            (None, None) => out.push_str("  every invariant held\n"),
        }
        out
    }

    /// The `n` slowest steps (the final liveness check counts as a step), slowest first.
    pub fn slowest_steps(&self, n: usize) -> Vec<SlowStep> {
        let mut all: Vec<SlowStep> = self
            .steps
            .iter()
            .map(|s| SlowStep {
                seed: self.seed,
                step: s.index,
                action: s.action.clone(),
                wall_ms: s.wall_ms,
            })
            .collect();
        if self.final_check_ms > 0 {
            all.push(SlowStep {
                seed: self.seed,
                step: self.actions.len(),
                action: "final liveness check".into(),
                wall_ms: self.final_check_ms,
            });
        }
        all.sort_by(|a, b| b.wall_ms.cmp(&a.wall_ms).then(a.step.cmp(&b.step)));
        all.truncate(n);
        all
    }

    /// The broken invariant's name, if any.
    pub fn broken(&self) -> Option<&str> {
        self.failure
            .as_ref()
            .map(|f| f.violation.invariant.as_str())
    }
}

/// A step and its wall time, for the summary's slowest steps.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct SlowStep {
    /// The history's seed.
    pub seed: u64,
    /// The step's index.
    pub step: usize,
    /// The action, in words.
    pub action: String,
    /// Wall-clock milliseconds.
    pub wall_ms: u64,
}

impl std::fmt::Display for SlowStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} #{} {} ({:.1} s)",
            self.seed,
            self.step,
            self.action,
            self.wall_ms as f64 / 1000.0
        )
    }
}

fn fired(f: FaultsFired) -> [u64; 4] {
    [
        f.trapped,
        f.calls_failed,
        f.responses_held,
        f.responses_dropped,
    ]
}

/// The message order `seed` picks: how often a same-subnet message waits for the next round.
pub fn delay_of(seed: u64) -> f64 {
    [0.0, 0.1, 0.3][Rng::new(seed ^ crate::rng::hash_name("order")).below(3) as usize]
}

/// Deploys a fresh trio for `seed` and plays `actions`: safety after every step, liveness at
/// each checkpoint and at the end. Stops at the first broken invariant. No wall-time bound
/// (a replay); [`run_within`] sets one.
pub fn run(seed: u64, actions: &[Action], trio: &Trio) -> History {
    run_within(seed, actions, trio, None)
}

/// [`run`], stopping when `limit` of wall time has passed since the first step: the history is
/// then [`History::timed_out`] at the step that was running, and a check the bound cut short
/// counts for nothing.
pub fn run_within(seed: u64, actions: &[Action], trio: &Trio, limit: Option<Duration>) -> History {
    let started = Instant::now();
    let compiled = ic_sim::compilations();
    let delay = delay_of(seed);
    let tb = Testbed::deploy(Options {
        seed,
        agent_wasm: trio.agent.clone(),
        watchdog_wasm: trio.watchdog.clone(),
        staging_wasm: trio.staging.clone(),
        sim_config: Some(SimConfig {
            seed,
            message_order: MessageOrder::Seeded { delay },
            ..SimConfig::default()
        }),
        ..Options::default()
    });
    let installed = match &trio.agent {
        Some(raw) => testbed::gzip(raw),
        None => testbed::installable("agent"),
    };
    let modules = HashMap::from([(testbed::sha256(&installed), installed)]);
    // Both sides have seen each other, and the watchdog holds its LKG.
    tb.run_until(Duration::from_secs(600), |tb| {
        tb.watchdog_status().lkg.is_some()
            && tb.health().watchdog.is_some_and(|w| w.last_seen.is_some())
    });
    let deploy_ms = started.elapsed().as_millis() as u64;
    let mut world = World::new(tb, modules);
    world.deadline = limit.map(|l| Instant::now() + l);
    let limit_secs = limit.map_or(0.0, |l| l.as_secs_f64());
    let timed_out = |step| TimedOut { step, limit_secs };
    let t0 = world.now();
    let mut steps = vec![];
    let mut failure = None;
    let mut stopped = None;
    let trace = std::env::var_os("EXPLORE_TRACE").is_some();
    for (index, action) in actions.iter().enumerate() {
        if world.past_deadline() {
            stopped = Some(timed_out(index));
            break;
        }
        let at_secs = (world.now() - t0) / 1_000_000_000;
        let wall = Instant::now();
        let result = world.apply(action);
        let checked = match action {
            Action::Checkpoint => check::liveness(&mut world),
            _ => check::safety(&mut world, &result),
        }
        .and_then(|()| safety_net::check(&mut world, action, &result))
        .and_then(|()| reach::check(action, &result));
        let wall_ms = wall.elapsed().as_millis() as u64;
        let result = match world.operator_steps.drain(..).collect::<Vec<_>>() {
            done if done.is_empty() => result,
            done if result.is_empty() => done.join("; "),
            done => format!("{result}; {}", done.join("; ")),
        };
        if trace {
            eprintln!("#{index} t+{at_secs}s {action} -> {result} ({wall_ms} ms)");
        }
        steps.push(Step {
            index,
            at_secs,
            action: action.to_string(),
            result,
            wall_ms,
        });
        // A check the bound cut short saw too little simulated time: its verdict is void.
        if world.out_of_time {
            stopped = Some(timed_out(index));
            break;
        }
        if let Err(violation) = checked {
            failure = Some(Failure {
                step: index,
                violation,
            });
            break;
        }
    }
    let mut final_check_ms = 0;
    if failure.is_none() && stopped.is_none() {
        let wall = Instant::now();
        let checked = check::final_liveness(&mut world).and_then(|()| safety_net::at_end(&world));
        final_check_ms = wall.elapsed().as_millis() as u64;
        if trace {
            eprintln!("final liveness check ({final_check_ms} ms)");
        }
        match checked {
            _ if world.out_of_time => stopped = Some(timed_out(actions.len())),
            Err(violation) => {
                failure = Some(Failure {
                    step: actions.len(),
                    violation,
                })
            }
            Ok(()) => {}
        }
    }
    if trace && failure.is_some() {
        dump_logs(&world, t0);
    }
    History {
        seed,
        delay,
        actions: actions.to_vec(),
        steps,
        failure,
        timed_out: stopped,
        limit,
        deploy_ms,
        final_check_ms,
        coverage: world.coverage.clone(),
        excused: world.excused.clone(),
        final_operator_steps: world.operator_steps.clone(),
        trace: world.tb.sim.trace_digest(),
        faults_fired: fired(world.tb.sim.faults_fired()),
        compilations: ic_sim::compilations() - compiled,
        wall_ms: started.elapsed().as_millis() as u64,
    }
}

/// With `EXPLORE_TRACE` set, a failing history's watchdog events and agent audit entries go to
/// stderr (what a developer reads next to the timeline).
/// Times are seconds from the first step (`t0`), as in the timeline; negative: during deployment.
fn dump_logs(world: &World, t0: u64) {
    let secs = |at: u64| (at as f64 - t0 as f64) / 1e9;
    for e in world.tb.try_events().unwrap_or_default() {
        let id = e.upgrade_id.map_or(String::new(), |i| format!(" [{i}]"));
        eprintln!(
            "watchdog {:>10.1}  {}{id}  {}",
            secs(e.at),
            e.action,
            e.detail
        );
    }
    for e in world.tb.try_audit().map(|p| p.entries).unwrap_or_default() {
        let id = e.upgrade_id.map_or(String::new(), |i| format!(" [{i}]"));
        eprintln!(
            "agent    {:>10.1}  {}{id}  {}",
            secs(e.at),
            e.action,
            e.detail
        );
    }
}

/// The history `seed` generates, run.
pub fn run_seed(seed: u64, config: &Config) -> History {
    run_within(
        seed,
        &generate(seed, config.steps),
        &config.trio,
        config.history_limit,
    )
}

/// A smaller history with the same seed that breaks the same invariant: first cut after the
/// failing step, then remove chunks of steps (halves, quarters, ... single steps) while the
/// failure stays, with at most `max_runs` re-runs. Answers the smallest failing history found
/// (`failing` itself if none is smaller). Each re-run has `failing`'s wall-time bound; one that
/// times out counts as not failing.
pub fn shrink(failing: &History, trio: &Trio, max_runs: usize) -> History {
    let Some(invariant) = failing.broken().map(str::to_string) else {
        return failing.clone();
    };
    let mut best = failing.clone();
    let mut runs = 0;
    let keep = failing.failure.as_ref().map_or(failing.actions.len(), |f| {
        (f.step + 1).min(failing.actions.len())
    });
    let mut actions: Vec<Action> = failing.actions[..keep].to_vec();
    let mut chunks = 2usize;
    while runs < max_runs && !actions.is_empty() {
        let size = actions.len().div_ceil(chunks);
        let mut progressed = false;
        let mut start = 0;
        while start < actions.len() && runs < max_runs {
            let mut candidate = actions.clone();
            candidate.drain(start..(start + size).min(actions.len()));
            runs += 1;
            let h = run_within(failing.seed, &candidate, trio, failing.limit);
            if h.broken() == Some(invariant.as_str()) {
                let cut = h
                    .failure
                    .as_ref()
                    .map_or(candidate.len(), |f| (f.step + 1).min(candidate.len()));
                candidate.truncate(cut);
                actions = candidate;
                best = h;
                progressed = true;
                chunks = (chunks - 1).max(2);
                break;
            }
            start += size;
        }
        if !progressed {
            if size <= 1 {
                break;
            }
            chunks = (chunks * 2).min(actions.len());
        }
    }
    best.actions = actions;
    best
}
