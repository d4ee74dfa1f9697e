//! The chaos suite: every scenario deploys the agent, watchdog and staging on ic-sim
//! ([`testbed`]), injects one fault, lets the system settle, and checks every invariant
//! ([`invariants`]). A run is a pure function of the scenario and the seed: the seed drives the
//! simulator's random faults and every choice a scenario makes ([`rng`]), so a failing seed
//! replays exactly.
//!
//! - [`scenarios`]: the registry of fault kinds ([`scenarios::all`]); [`model`]
//!   (`scenarios::model`): the kinds of the turn loop, whose model is `llm-standin`.
//! - [`report`]: what a run produced ([`Report`]), as the table and the JSON of `agentctl chaos`.
//! - [`run`]: one scenario under one seed.

pub mod explore;
pub mod invariants;
pub mod report;
pub mod rng;
pub mod scenarios;

pub use report::{Check, Outcome, Report};
pub use scenarios::{Scenario, all, find, model};

use candid::{Decode, Encode};
use canister_api::agent::{StateDigest, UpgradeState};
use std::time::{Duration, Instant};
use testbed::{Options, Testbed};

/// Longest simulated time a run may take to settle.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(2 * 3600);

/// The state of one run, handed to the scenario's injection.
pub struct Run {
    /// The deployment.
    pub tb: Testbed,
    /// Choices of this run, from its seed.
    pub rng: rng::Rng,
    /// The agent's logical state before the fault.
    pub before: StateDigest,
    /// The module the agent ran before the fault (the LKG).
    pub parent: Vec<u8>,
    /// When the fault took effect (simulated nanoseconds), if the scenario knows.
    pub fault_at: Option<u64>,
    /// The upgrade the scenario started, if any.
    pub upgrade: Option<u64>,
    /// The refusal, if the system refused the bad upgrade up front.
    pub refused: Option<String>,
    /// What the scenario wants recorded (shown in the report).
    pub notes: Vec<String>,
    /// Why the run does not show the fault the scenario claims to inject (its injection did
    /// not take, or the system's reaction left no trace): fails `fault_took_effect`.
    pub not_shown: Option<String>,
}

impl Run {
    /// Proposes `bytes` as an operator release: the upgrade, or the refusal.
    pub fn propose(&mut self, bytes: &[u8], reason: &str) {
        match self.tb.try_propose_release(bytes, reason) {
            Ok(rec) => self.upgrade = Some(rec.id),
            Err(e) => self.refused = Some(e),
        }
    }

    /// Runs the subnet until the upgrade started by the scenario ends.
    pub fn until_terminal(&self) {
        if let Some(id) = self.upgrade {
            self.tb.run_until(SETTLE_LIMIT, |tb| {
                tb.try_record(id).is_some_and(|r| r.state.is_terminal())
            });
        }
    }

    /// After the upgrade ended: its journal must give a reason containing `needle`, or the run
    /// does not show what the scenario claims (`not_shown`).
    pub fn expect_reason(&mut self, needle: &str) {
        self.until_terminal();
        let Some(id) = self.upgrade else { return };
        let state = format!("{:?}", self.tb.record(id).state);
        self.expect(state.contains(needle), || {
            format!("expected the journal to say `{needle}`, it says {state}")
        });
    }

    /// Unless `shown`, the run does not show what the scenario claims (`not_shown`, which
    /// keeps the first reason given).
    pub fn expect(&mut self, shown: bool, why: impl FnOnce() -> String) {
        if !shown && self.not_shown.is_none() {
            self.not_shown = Some(why());
        }
    }

    /// The simulator's fault `what` (read by `count`) must have struck at least once.
    pub fn expect_fired(&mut self, what: &str, count: impl Fn(ic_sim::FaultsFired) -> u64) {
        let fired = count(self.tb.sim.faults_fired());
        self.expect(fired > 0, || {
            format!("the injected fault never struck: no {what}")
        });
    }

    /// The watchdog's event log must hold an `action` event; `why` says what its absence means.
    pub fn expect_watchdog_event(&mut self, action: &str, why: &str) {
        let seen = self.tb.events().iter().any(|e| e.action == action);
        self.expect(seen, || why.to_string());
    }

    /// The agent's audit log must hold an `action` entry; `why` says what its absence means.
    pub fn expect_audit(&mut self, action: &str, why: &str) {
        let seen = self.tb.audit().entries.iter().any(|e| e.action == action);
        self.expect(seen, || why.to_string());
    }

    /// Runs the subnet until the first incident is restored (a fault that strikes after the
    /// upgrade ended).
    pub fn until_restored(&self) {
        self.tb.run_until(SETTLE_LIMIT, |tb| {
            tb.incidents()
                .first()
                .is_some_and(|i| i.restored_at.is_some())
        });
    }

    /// Runs the subnet until the upgrade reaches `state` (or ends).
    pub fn until_state(&self, state: UpgradeState) {
        if let Some(id) = self.upgrade {
            self.tb.run_until(SETTLE_LIMIT, |tb| {
                tb.try_record(id)
                    .is_some_and(|r| r.state == state || r.state.is_terminal())
            });
        }
    }
}

/// Runs `scenario` under `seed` and checks every invariant.
pub fn run(scenario: &Scenario, seed: u64) -> Report {
    let started = Instant::now();
    let tb = Testbed::deploy(Options {
        seed,
        agent_build: scenario.build,
        agent_wasm: scenario.running.map(|f| f()),
        install_instruction_limit: scenario.install_limit,
        llm: scenario.llm,
        ..Options::default()
    });
    let mut rng = rng::Rng::new(seed ^ rng::hash_name(scenario.name));
    let tasks = 5 + rng.below(20) as usize;
    let facts = 5 + rng.below(20) as usize;
    tb.seed_state(tasks, facts);
    // Both sides have seen each other, and the watchdog holds its LKG.
    tb.run_until(SETTLE_LIMIT, |tb| {
        tb.watchdog_status().lkg.is_some()
            && tb.health().watchdog.is_some_and(|w| w.last_seen.is_some())
    });
    let before = tb.digest();
    let parent = tb.agent_module().expect("the agent runs a module");
    let mut run = Run {
        tb,
        rng,
        before,
        parent,
        fault_at: None,
        upgrade: None,
        refused: None,
        notes: vec![format!("seeded {tasks} tasks and {facts} facts")],
        not_shown: None,
    };
    (scenario.inject)(&mut run);
    settle(&run);
    let report = invariants::check(scenario, seed, &run);
    Report {
        wall_ms: started.elapsed().as_millis() as u64,
        ..report
    }
}

/// Lets the system come to rest: the upgrade ended, nothing armed, no restore running, every
/// verdict delivered; then a minute of steady heartbeats.
fn settle(run: &Run) {
    run.until_terminal();
    run.tb.run_until(SETTLE_LIMIT, |tb| {
        let Ok(bytes) = tb.sim.query_call(
            tb.watchdog,
            testbed::stranger(),
            "status",
            Encode!().expect("encode"),
        ) else {
            return false;
        };
        let Ok(status) = Decode!(&bytes, canister_api::watchdog::WatchdogStatus) else {
            return false;
        };
        status.armed.is_none() && status.restore.is_none()
    });
    run.tb.run_for(Duration::from_secs(60));
}
