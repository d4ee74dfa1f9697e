//! The chaos suite: every scenario deploys the agent, watchdog and staging on ic-sim
//! ([`testbed`]), injects one fault, lets the system settle, and checks every invariant
//! ([`invariants`]). A run is a pure function of the scenario and the seed: the seed drives the
//! simulator's random faults and every choice a scenario makes ([`rng`]), so a failing seed
//! replays exactly.
//!
//! - [`scenarios`]: the registry of fault kinds ([`scenarios::all`]); [`model`]
//!   (`scenarios::model`): the kinds of the turn loop, whose model is `llm-standin`.
//! - [`report`]: what a run produced ([`Report`]), as the table and the JSON of `agentctl chaos`.
//! - [`run`]: one scenario under one seed. It never panics: a panic of the deployment, of the
//!   injection or of the invariants is caught and reported as that run's failure, and the
//!   invariants read the system with the testbed's `try_` helpers, so a broken system yields a
//!   report that names what broke.
//! - [`writes`]: the write probes of the `writes_resumed` invariant.

pub mod explore;
pub mod invariants;
pub mod report;
pub mod rng;
pub mod scenarios;
pub mod writes;

pub use report::{Check, Outcome, Report};
pub use scenarios::{Scenario, all, find, model};

use candid::{Decode, Encode};
use canister_api::agent::{AgentError, StateDigest, UpgradeState};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};
use testbed::{Options, Testbed};

/// How the system refused a scenario's bad upgrade up front.
#[derive(Clone, Debug)]
pub enum Refusal {
    /// The agent's typed error at `step` (`upload_wasm_chunk`, `commit_wasm`,
    /// `propose_release`, or `self_upgrade` for the tool).
    Agent {
        /// The call that refused.
        step: &'static str,
        /// The agent's error.
        error: AgentError,
    },
    /// A refusal seen in words only: what a turn's tool call or answer says (the model's side
    /// of the loop gets text).
    Said(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Agent { step, error } => write!(f, "{step}: {error}"),
            Refusal::Said(text) => f.write_str(text),
        }
    }
}

impl Refusal {
    /// The agent's error, if typed.
    pub fn error(&self) -> Option<&AgentError> {
        match self {
            Refusal::Agent { error, .. } => Some(error),
            Refusal::Said(_) => None,
        }
    }

    /// Whether it is a `Validation` error whose message contains `needle`.
    pub fn is_validation(&self, needle: &str) -> bool {
        matches!(self.error(), Some(AgentError::Validation(m)) if m.contains(needle))
    }

    /// Whether it refuses the module itself (it does not decode, validate or fit), not the
    /// caller, the gate or the moment: what a broken candidate may be refused with.
    pub fn refuses_the_module(&self) -> bool {
        matches!(
            self.error(),
            Some(
                AgentError::Validation(_)
                    | AgentError::InvalidArgument(_)
                    | AgentError::Patch(_)
                    | AgentError::UploadTooLarge { .. }
                    | AgentError::ChunkTooLarge { .. }
            )
        )
    }
}

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
    pub refused: Option<Refusal>,
    /// Whether the scenario checked the refusal's reason ([`Run::expect_refusal`]): a run that
    /// ends `rejected` without it fails `fault_took_effect`.
    pub refusal_checked: bool,
    /// How many times the scenario checked a trace of its fault ([`Run::expect`] and the
    /// helpers built on it): a run that checked none fails `fault_took_effect`.
    pub traces_checked: u32,
    /// What panicked, if the injection or the settling did (fails `ran_to_the_end`).
    pub panicked: Option<String>,
    /// What the scenario wants recorded (shown in the report).
    pub notes: Vec<String>,
    /// Why the run does not show the fault the scenario claims to inject (its injection did
    /// not take, or the system's reaction left no trace): fails `fault_took_effect`.
    pub not_shown: Option<String>,
}

impl Run {
    /// Proposes `bytes` as an operator release: the upgrade, or the refusal.
    pub fn propose(&mut self, bytes: &[u8], reason: &str) {
        match self.tb.try_release(bytes, reason, false) {
            Ok(rec) => self.upgrade = Some(rec.id),
            Err(e) => {
                self.refused = Some(Refusal::Agent {
                    step: e.step,
                    error: e.error,
                })
            }
        }
    }

    /// The run must have been refused, for the reason `fits` accepts (`what` says which).
    pub fn expect_refusal(&mut self, what: &str, fits: impl FnOnce(&Refusal) -> bool) {
        self.refusal_checked = true;
        let refused = self.refused.clone();
        let ok = refused.as_ref().is_some_and(fits);
        self.expect(ok, || match refused {
            Some(r) => format!("refused, but not {what}: {r}"),
            None => format!("expected a refusal ({what}); nothing was refused"),
        });
    }

    /// A trace the scenario found (a positive check, with `note` recorded in the report).
    pub fn saw(&mut self, note: impl Into<String>) {
        self.traces_checked += 1;
        self.notes.push(note.into());
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
        self.traces_checked += 1;
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

    /// A restored incident whose cause contains `needle` must be in the watchdog's log (of the
    /// scenario's upgrade, if `of_upgrade`; an incident after a commit names none).
    pub fn expect_incident(&mut self, needle: &str, of_upgrade: bool) {
        let incidents = self.tb.try_incidents().unwrap_or_default();
        let upgrade = self.upgrade;
        let found = incidents.iter().any(|i| {
            i.cause.contains(needle)
                && i.restored_at.is_some()
                && (!of_upgrade || (upgrade.is_some() && i.upgrade_id == upgrade))
        });
        self.expect(found, || {
            format!(
                "no restored incident says `{needle}`: {:?}",
                incidents
                    .iter()
                    .map(|i| (i.upgrade_id, &i.cause))
                    .collect::<Vec<_>>()
            )
        });
    }

    /// The scenario's upgrade must have reached `state` at or after `at` (simulated ns).
    pub fn expect_transition(&mut self, state: UpgradeState, at: u64) {
        let rec = self.upgrade.and_then(|id| self.tb.try_record(id));
        let when = rec
            .as_ref()
            .and_then(|r| r.history.iter().find(|t| t.state == state).map(|t| t.at));
        self.expect(when.is_some_and(|t| t >= at), || {
            format!("the upgrade did not reach {state:?} at or after {at}: {when:?}")
        });
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

/// Runs `scenario` under `seed` and checks every invariant. Never panics (see the module docs).
pub fn run(scenario: &Scenario, seed: u64) -> Report {
    let started = Instant::now();
    let report = match caught(|| setup(scenario, seed)) {
        Err(panic) => report::broken(scenario.name, seed, format!("the setup panicked: {panic}")),
        Ok(mut run) => {
            if let Err(panic) = caught(|| (scenario.inject)(&mut run)) {
                run.panicked = Some(format!("the injection panicked: {panic}"));
            }
            if let Err(panic) = caught(|| settle(&run)) {
                run.panicked
                    .get_or_insert(format!("settling panicked: {panic}"));
            }
            caught(|| invariants::check(scenario, seed, &run)).unwrap_or_else(|panic| {
                report::broken(
                    scenario.name,
                    seed,
                    format!("checking the invariants panicked: {panic}"),
                )
            })
        }
    };
    Report {
        wall_ms: started.elapsed().as_millis() as u64,
        ..report
    }
}

/// `f()`, or the message of its panic.
fn caught<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

/// Deploys the trio for `scenario`, seeds its state, and waits until both sides have seen each
/// other: the run before the fault.
fn setup(scenario: &Scenario, seed: u64) -> Run {
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
    Run {
        tb,
        rng,
        before,
        parent,
        fault_at: None,
        upgrade: None,
        refused: None,
        refusal_checked: false,
        traces_checked: 0,
        panicked: None,
        notes: vec![format!("seeded {tasks} tasks and {facts} facts")],
        not_shown: None,
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
