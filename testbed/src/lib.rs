//! The three canisters deployed on ic-sim and wired as in DESIGN.md (Controllers), with typed
//! helpers to drive them: what the pipeline tests, the chaos suite and `agentctl demo` share.
//!
//! - [`Testbed::deploy`]: agent (gzipped, as a deployer installs it), watchdog and staging;
//!   controllers agent {operator, agent, watchdog}, watchdog {operator, agent}, staging
//!   {operator, agent}; the agent's own module and the watchdog's module uploaded to the agent.
//! - Calls: `agent_update`/`agent_query` (candid in, candid out, panics on a reject) and
//!   shorthands for the methods tests use most. Each reading helper the chaos suite's
//!   invariants use has a `try_` form that answers a [`CallError`] instead of panicking: a
//!   broken system is what those checks exist to report.
//! - Time: [`Testbed::run_until`] advances simulated time event by event and reports how long
//!   (in simulated time) a condition took.
//! - Candidates: [`chaos_candidate`] makes a bad module from the `agent-chaos` build.
//! - The model: with [`Options::llm`], `llm-standin` answers the agent's turn loop from scripts
//!   ([`llm`]: building and loading scripts, reading the turn log).
//! - Mutants: with `TESTBED_MUTANT=NAME` in the environment (or [`use_mutant`]), every trio
//!   canister this crate hands out ([`wasm`], [`installable`], [`chaos_candidate`]) is the build
//!   of mutant NAME (`canister_build::mutants`: one fix of the safety net reverted), so any test
//!   runs unchanged against it: `TESTBED_MUTANT=drain cargo test -p testbed --test safety_net`.

pub mod llm;

use candid::{CandidType, Decode, Deserialize, Encode, Principal};
use canister_api::agent::{
    AgentError, AgentInit, AuditPage, Autonomy, CommittedWasm, Fact, FactCursor, FactPage, Health,
    LoopInit, ProposeRelease, StateDigest, SubmitTask, Supervision, Task, TaskPage, UpgradePage,
    UpgradeRecord, UploadProgress, VersionInfo, VersionPage, WasmKind,
};
use canister_api::llm::StandinInit;
use canister_api::staging::StagingInit;
use canister_api::watchdog::{
    EventPage, Incident, IncidentPage, LadderStep, RollbackTarget, WatchdogConfig, WatchdogError,
    WatchdogEvent, WatchdogInit, WatchdogStatus,
};
use ic_sim::{RejectResponse, Sim, SimConfig, SubnetKind};
use sha2::Digest;
use std::time::Duration;

pub use ic_sim;

/// Cycles each canister starts with.
pub const CYCLES: u128 = 100_000_000_000_000;
/// Upload chunk size (the agent's maximum).
pub const CHUNK: usize = 1024 * 1024;

/// The operator (a dfx identity).
pub fn operator() -> Principal {
    Principal::self_authenticating(b"operator")
}

/// A principal that is nobody in particular.
pub fn stranger() -> Principal {
    Principal::self_authenticating(b"stranger")
}

/// The environment variable that selects a mutant for the whole process (see [`use_mutant`]).
pub const MUTANT_ENV: &str = "TESTBED_MUTANT";

static MUTANT: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();

/// Makes every trio canister of this process ([`canister_build::mutants::TRIO`]) the build of
/// mutant `name`. Once per process, before the first deployment: an error if another choice
/// (this call's, or `TESTBED_MUTANT`'s) was made already, or if `name` is no mutant.
pub fn use_mutant(name: &str) -> Result<(), String> {
    let mutant = canister_build::mutants::find_mutant(name).map_err(|e| e.to_string())?;
    if let Ok(env) = std::env::var(MUTANT_ENV)
        && !env.is_empty()
        && env != mutant.name
    {
        return Err(format!("{MUTANT_ENV} asks for mutant {env}, not {name}"));
    }
    let chosen = *MUTANT.get_or_init(|| Some(mutant.name));
    if chosen == Some(mutant.name) {
        Ok(())
    } else {
        Err(format!(
            "this process already runs {}; a mutant is chosen once per process",
            chosen.map_or("the plain builds".to_string(), |m| format!("mutant {m}"))
        ))
    }
}

/// The mutant this process runs, if any: [`use_mutant`]'s choice, else `TESTBED_MUTANT`'s.
/// Panics on an unknown name in `TESTBED_MUTANT` (a typo must not test the plain build).
pub fn mutant() -> Option<&'static str> {
    *MUTANT.get_or_init(|| {
        let name = std::env::var(MUTANT_ENV).ok().filter(|n| !n.is_empty())?;
        let mutant = canister_build::mutants::find_mutant(&name)
            .unwrap_or_else(|e| panic!("{MUTANT_ENV}: {e}"));
        Some(mutant.name)
    })
}

/// The mutant's build of `name` if this process runs a mutant and `name` is one of its trio.
fn mutant_for(name: &str) -> Option<&'static str> {
    mutant().filter(|_| canister_build::mutants::TRIO.contains(&name))
}

/// A canister Wasm of the workspace, raw (`agent`, `watchdog`, `staging`, `agent-chaos`...);
/// the mutant's build when this process runs one ([`mutant`]).
pub fn wasm(name: &str) -> Vec<u8> {
    match mutant_for(name) {
        Some(m) => canister_build::mutants::mutant_wasm(m, name),
        None => canister_build::canister_wasm(name),
    }
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Gzipped bytes (level 6).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// A build gzipped, as a deployer installs it (the raw agent is over the 2 MiB ingress limit):
/// the bytes of canister-build's `target/canisters/wasm/NAME.wasm.gz`, the file dfx and icp
/// install, so that its SHA-256 is the module hash the IC reports.
pub fn installable(name: &str) -> Vec<u8> {
    let path = match mutant_for(name) {
        Some(m) => canister_build::mutants::mutant_wasm_gz_path(m, name),
        None => canister_build::canister_wasm_gz_path(name),
    }
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// SHA-256.
pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(bytes).to_vec()
}

/// The chaos build with its mode marker rewritten to `mode` (see `agent/src/chaos.rs`): a bad
/// candidate with a module hash of its own. Raw (not gzipped).
pub fn chaos_candidate(mode: &str) -> Vec<u8> {
    const MARKER: &[u8] = b"CHAOS-MODE:none_________________";
    let mut bytes = wasm("agent-chaos");
    let at = bytes
        .windows(MARKER.len())
        .position(|w| w == MARKER)
        .expect("the chaos build carries its mode marker");
    let mut replacement = format!("CHAOS-MODE:{mode}").into_bytes();
    assert!(
        replacement.len() <= MARKER.len(),
        "mode `{mode}` is too long"
    );
    replacement.resize(MARKER.len(), b'_');
    bytes[at..at + MARKER.len()].copy_from_slice(&replacement);
    bytes
}

/// `bytes` stamped as a release, as a release process does: `agent:version` = `version` and
/// `agent:schema_range` = `min..=max` in `icp:public` metadata (the agent refuses a release
/// without a schema range). Raw (not gzipped).
pub fn release(bytes: &[u8], version: &str, schema: (u32, u32)) -> Vec<u8> {
    let stamp = wasm_patch::Stamp::new(version).with_schema_range(schema.0, schema.1);
    wasm_patch::apply_patch(bytes, &[], &stamp)
        .unwrap_or_else(|e| panic!("stamping {version}: {e}"))
        .wasm
}

/// [`chaos_candidate`] stamped as release `chaos-MODE` for schemas 1..=3.
pub fn chaos_release(mode: &str) -> Vec<u8> {
    release(&chaos_candidate(mode), &format!("chaos-{mode}"), (1, 3))
}

/// The argument of the simulator's probe canister's `call` (its `CallArgs`, mirrored: candid
/// matches records by field names).
#[derive(CandidType, Deserialize)]
struct ProbeCallArgs {
    target: Principal,
    method: String,
    #[serde(with = "serde_bytes")]
    arg: Vec<u8>,
    cycles: candid::Nat,
    bounded_wait_secs: Option<u32>,
}

/// What became of the probe's call (its `CallOutcome`, mirrored).
#[derive(CandidType, Deserialize)]
enum ProbeCallOutcome {
    Reply(#[serde(with = "serde_bytes")] Vec<u8>),
    Reject { code: u32, message: String },
    PerformFailed(String),
}

/// Installs the simulator's probe canister: a canister that is nobody in particular, to call
/// the canisters from another canister (`call_via`), as `canister_inspect_message` never sees.
pub fn install_probe(sim: &Sim) -> Principal {
    let probe = sim.create_canister();
    sim.add_cycles(probe, CYCLES);
    sim.install_canister(
        probe,
        wasm("ic-sim-probe"),
        Encode!().expect("encode"),
        None,
    );
    probe
}

/// `method` of `target` called by the `probe` canister (an inter-canister call): the reply, or
/// the reject in words.
pub fn call_via(
    sim: &Sim,
    probe: Principal,
    target: Principal,
    method: &str,
    arg: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let args = ProbeCallArgs {
        target,
        method: method.to_string(),
        arg,
        cycles: candid::Nat::from(0u8),
        bounded_wait_secs: None,
    };
    let bytes = sim
        .update_call(probe, stranger(), "call", Encode!(&args).expect("encode"))
        .map_err(|e| format!("the probe's call was rejected: {e}"))?;
    match Decode!(&bytes, ProbeCallOutcome).map_err(|e| e.to_string())? {
        ProbeCallOutcome::Reply(bytes) => Ok(bytes),
        ProbeCallOutcome::Reject { code, message } => Err(format!("reject {code}: {message}")),
        ProbeCallOutcome::PerformFailed(e) => Err(format!("call_perform failed: {e}")),
    }
}

/// How to deploy.
#[derive(Clone, Debug)]
pub struct Options {
    /// The agent build installed first.
    pub agent_build: &'static str,
    /// The agent's autonomy.
    pub autonomy: Autonomy,
    /// The watchdog's settings.
    pub watchdog: WatchdogConfig,
    /// The simulator's seed.
    pub seed: u64,
    /// A module to install first instead of `agent_build` (raw; gzipped for the install).
    pub agent_wasm: Option<Vec<u8>>,
    /// The watchdog module instead of the `watchdog` build (raw), e.g. a mutant's; it is also
    /// the module the agent stores to repair the watchdog with.
    pub watchdog_wasm: Option<Vec<u8>>,
    /// The staging module instead of the `staging` build (raw), e.g. a mutant's.
    pub staging_wasm: Option<Vec<u8>>,
    /// Instruction limit of an install or upgrade (the IC's is 300 B; a scenario may scale it
    /// down so that a runaway `post_upgrade` hits it in seconds of wall time).
    pub install_instruction_limit: Option<u64>,
    /// Deploys `llm-standin` too and makes it the agent's LLM canister. The loop starts off:
    /// load a script, then `set_loop_enabled(true)`.
    pub llm: bool,
    /// The watchdog on a subnet of its own (two application subnets): requests between it and
    /// the agent carry at most 2 MiB, as between subnets on mainnet.
    pub watchdog_on_other_subnet: bool,
    /// The operator: the trio's operators list and a controller of all three.
    pub operator: Principal,
    /// The simulator's settings (`seed`, `install_instruction_limit` and
    /// `watchdog_on_other_subnet` above still apply); the IC's defaults when absent. A server
    /// sets its subnet id and the wall-clock start here.
    pub sim_config: Option<SimConfig>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            agent_build: "agent",
            autonomy: Autonomy::Auto,
            watchdog: WatchdogConfig::default(),
            seed: 0,
            agent_wasm: None,
            watchdog_wasm: None,
            staging_wasm: None,
            install_instruction_limit: None,
            llm: false,
            watchdog_on_other_subnet: false,
            operator: operator(),
            sim_config: None,
        }
    }
}

/// The three canisters on a simulated IC (one subnet, or the watchdog on a second one).
pub struct Testbed {
    /// The simulator.
    pub sim: Sim,
    /// The agent.
    pub agent: Principal,
    /// The watchdog.
    pub watchdog: Principal,
    /// The staging canister.
    pub staging: Principal,
    /// The stand-in LLM canister, if deployed (`Options::llm`).
    pub llm: Option<Principal>,
    /// The operator the trio was deployed with ([`Options::operator`]).
    pub operator: Principal,
}

fn decode<R: CandidType + for<'de> Deserialize<'de>>(method: &str, bytes: &[u8]) -> R {
    try_decode(method, bytes).unwrap_or_else(|e| panic!("{e}"))
}

fn try_decode<R: CandidType + for<'de> Deserialize<'de>>(
    method: &str,
    bytes: &[u8],
) -> Result<R, CallError> {
    Decode!(bytes, R).map_err(|e| CallError::BadCandid {
        method: method.to_string(),
        error: e.to_string(),
    })
}

/// Why a call of a `try_` helper got no usable answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The IC rejected the call (the canister is stopped, uninstalled, trapped...).
    #[error("{method}: rejected: {reject}")]
    Rejected {
        /// The method called.
        method: String,
        /// The reject.
        reject: RejectResponse,
    },
    /// The reply does not decode as the type the interface promises.
    #[error("{method}: bad candid: {error}")]
    BadCandid {
        /// The method called.
        method: String,
        /// The decoder's error.
        error: String,
    },
    /// The canister answered with its own error (`Err` of the method's result).
    #[error("{method}: {error}")]
    Refused {
        /// The method called.
        method: String,
        /// The error, in words.
        error: String,
    },
}

/// Why an operator release was refused: the step that refused it and the agent's typed error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{step}: {error}")]
pub struct ReleaseRefused {
    /// `upload_wasm_chunk`, `commit_wasm` or `propose_release`.
    pub step: &'static str,
    /// What the agent answered.
    pub error: AgentError,
}

impl Testbed {
    /// Deploys and wires the three canisters.
    pub fn deploy(opts: Options) -> Testbed {
        let defaults = opts.sim_config.clone().unwrap_or_default();
        let subnets = if opts.watchdog_on_other_subnet {
            vec![SubnetKind::Application, SubnetKind::Application]
        } else {
            defaults.subnets.clone()
        };
        let sim = Sim::with_config(SimConfig {
            seed: opts.seed,
            subnets,
            instruction_limit_install: opts
                .install_instruction_limit
                .unwrap_or(defaults.instruction_limit_install),
            ..defaults
        });
        let running = match &opts.agent_wasm {
            Some(raw) => gzip(raw),
            None => installable(opts.agent_build),
        };
        let watchdog_wasm = opts
            .watchdog_wasm
            .clone()
            .unwrap_or_else(|| wasm("watchdog"));
        let staging_wasm = opts.staging_wasm.clone().unwrap_or_else(|| wasm("staging"));
        let agent = sim.create_canister();
        let watchdog = if opts.watchdog_on_other_subnet {
            sim.create_canister_on_subnet(None, None, sim.subnets()[1].id)
        } else {
            sim.create_canister()
        };
        let staging = sim.create_canister();
        for c in [agent, watchdog, staging] {
            sim.add_cycles(c, CYCLES);
        }
        let op = opts.operator;
        let llm = opts.llm.then(|| {
            let standin = sim.create_canister();
            sim.add_cycles(standin, CYCLES);
            sim.install_canister(
                standin,
                wasm("llm-standin"),
                Encode!(&StandinInit {
                    operators: vec![op],
                })
                .expect("encode"),
                None,
            );
            sim.set_controllers(standin, None, vec![op])
                .expect("the creator sets controllers");
            standin
        });
        sim.install_canister(
            watchdog,
            watchdog_wasm.clone(),
            Encode!(&WatchdogInit {
                agent,
                operators: vec![op],
                config: Some(opts.watchdog),
                lkg: None,
            })
            .expect("encode"),
            None,
        );
        sim.install_canister(
            staging,
            staging_wasm,
            Encode!(&StagingInit {
                agent,
                operators: vec![op],
            })
            .expect("encode"),
            None,
        );
        sim.install_canister(
            agent,
            running.clone(),
            Encode!(&AgentInit {
                operators: vec![op],
                watchdog: Some(watchdog),
                staging: Some(staging),
                autonomy: opts.autonomy,
                sandbox: None,
                turn_loop: llm.map(|standin| LoopInit {
                    llm_canister: Some(standin),
                    model: None,
                    enabled: Some(false),
                }),
            })
            .expect("encode"),
            None,
        );
        for (c, controllers) in [
            (agent, vec![op, agent, watchdog]),
            (watchdog, vec![op, agent]),
            (staging, vec![op, agent]),
        ] {
            sim.set_controllers(c, None, controllers)
                .expect("the creator sets controllers");
        }
        let tb = Testbed {
            sim,
            agent,
            watchdog,
            staging,
            llm,
            operator: op,
        };
        tb.upload(WasmKind::Running, &running);
        tb.commit(WasmKind::Running, &sha256(&running))
            .expect("commit of the running module");
        tb.upload(WasmKind::Watchdog, &watchdog_wasm);
        tb.commit(WasmKind::Watchdog, &sha256(&watchdog_wasm))
            .expect("commit of the watchdog module");
        tb
    }

    // ---- calls ----------------------------------------------------------------------------------

    /// An update call to the agent, decoded as `R`; panics on a reject.
    pub fn agent_update<R: CandidType + for<'de> Deserialize<'de>>(
        &self,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> R {
        self.try_agent_update(caller, method, arg)
            .unwrap_or_else(|e| panic!("agent {e}"))
    }

    /// [`Testbed::agent_update`], answering a reject or a reply that does not decode.
    pub fn try_agent_update<R: CandidType + for<'de> Deserialize<'de>>(
        &self,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<R, CallError> {
        let bytes = self
            .sim
            .update_call(self.agent, caller, method, arg)
            .map_err(|reject| CallError::Rejected {
                method: method.to_string(),
                reject,
            })?;
        try_decode(method, &bytes)
    }

    /// A raw update call to any canister.
    pub fn raw_update(
        &self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        self.sim.update_call(canister, caller, method, arg)
    }

    /// A query to `canister`, decoded as `R`; panics on a reject.
    pub fn query<R: CandidType + for<'de> Deserialize<'de>>(
        &self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> R {
        self.try_query(canister, caller, method, arg)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Testbed::query`], answering a reject or a reply that does not decode.
    pub fn try_query<R: CandidType + for<'de> Deserialize<'de>>(
        &self,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<R, CallError> {
        let bytes = self
            .sim
            .query_call(canister, caller, method, arg)
            .map_err(|reject| CallError::Rejected {
                method: method.to_string(),
                reject,
            })?;
        try_decode(method, &bytes)
    }

    /// A query to the agent as the operator of a method answering `Result<R, AgentError>`:
    /// a reject, bad candid or the agent's error are all the error.
    pub fn try_agent_read<R: CandidType + for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<R, CallError> {
        self.try_query::<Result<R, AgentError>>(self.agent, self.operator, method, arg)?
            .map_err(|e| CallError::Refused {
                method: method.to_string(),
                error: e.to_string(),
            })
    }

    /// A query to the agent as the operator.
    pub fn agent_query<R: CandidType + for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        arg: Vec<u8>,
    ) -> R {
        self.query(self.agent, self.operator, method, arg)
    }

    /// The agent's `health`, or the reject. A query; the chaos build's `health` is an update,
    /// which is then called as one.
    pub fn try_health(&self) -> Result<Health, RejectResponse> {
        self.health_reply().map(|b| decode("health", &b))
    }

    /// The agent's `health`, or why it did not answer (a reject, or a reply that does not
    /// decode).
    pub fn try_health_call(&self) -> Result<Health, CallError> {
        let bytes = self.health_reply().map_err(|reject| CallError::Rejected {
            method: "health".into(),
            reject,
        })?;
        try_decode("health", &bytes)
    }

    fn health_reply(&self) -> Result<Vec<u8>, RejectResponse> {
        let arg = Encode!().expect("encode");
        match self
            .sim
            .query_call(self.agent, stranger(), "health", arg.clone())
        {
            Err(e) if e.reject_message.contains("has no query method") => {
                self.sim.update_call(self.agent, stranger(), "health", arg)
            }
            other => other,
        }
    }

    /// The agent's `health`.
    pub fn health(&self) -> Health {
        self.try_health().unwrap_or_else(|e| panic!("health: {e}"))
    }

    /// The agent's logical state digest.
    pub fn digest(&self) -> StateDigest {
        self.try_digest().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Testbed::digest`], or why the agent did not answer.
    pub fn try_digest(&self) -> Result<StateDigest, CallError> {
        self.try_query(
            self.agent,
            stranger(),
            "state_digest",
            Encode!().expect("encode"),
        )
    }

    /// A tool call by the operator.
    pub fn tool(&self, name: &str, json: &str) -> Result<String, AgentError> {
        self.agent_update(
            self.operator,
            "call_tool",
            Encode!(&name, &json).expect("encode"),
        )
    }

    /// `submit_task` as the operator.
    pub fn try_submit(&self, description: &str) -> Result<Task, AgentError> {
        let arg = SubmitTask {
            description: description.into(),
            priority: None,
        };
        self.agent_update(self.operator, "submit_task", Encode!(&arg).expect("encode"))
    }

    /// `remember` as the operator.
    pub fn try_remember(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
    ) -> Result<Option<String>, AgentError> {
        let fact = Fact {
            namespace: namespace.into(),
            key: key.into(),
            value: value.into(),
        };
        self.agent_update(self.operator, "remember", Encode!(&fact).expect("encode"))
    }

    /// Writes `tasks` tasks and `facts` facts (panics if refused).
    pub fn seed_state(&self, tasks: usize, facts: usize) {
        for i in 0..tasks {
            self.try_submit(&format!("task {i}")).expect("submit_task");
        }
        for i in 0..facts {
            self.try_remember("default", &format!("key-{i}"), &format!("value {i}"))
                .expect("remember");
        }
    }

    /// Every task (every page of `list_tasks`).
    pub fn tasks(&self) -> Vec<Task> {
        let mut all = vec![];
        let mut from = Some(0u64);
        while let Some(at) = from {
            let page = self
                .agent_query::<Result<TaskPage, AgentError>>(
                    "list_tasks",
                    Encode!(&at, &u32::MAX).expect("encode"),
                )
                .expect("list_tasks");
            all.extend(page.tasks);
            from = page.next_from;
        }
        all
    }

    /// Every fact (every page of `list_facts`).
    pub fn facts(&self) -> Vec<Fact> {
        let mut all = vec![];
        let mut from: Option<FactCursor> = None;
        loop {
            let page = self
                .agent_query::<Result<FactPage, AgentError>>(
                    "list_facts",
                    Encode!(&None::<String>, &from).expect("encode"),
                )
                .expect("list_facts");
            all.extend(page.facts);
            match page.next_from {
                None => return all,
                next => from = next,
            }
        }
    }

    /// Uploads `bytes` as `kind` in 1 MiB chunks.
    pub fn upload(&self, kind: WasmKind, bytes: &[u8]) {
        self.try_upload(kind, bytes).expect("upload_wasm_chunk");
    }

    /// [`Testbed::upload`], answering the agent's first refusal. An empty module is sent as one
    /// empty chunk, so that its refusal is seen too.
    pub fn try_upload(&self, kind: WasmKind, bytes: &[u8]) -> Result<(), AgentError> {
        let empty: &[u8] = &[];
        let chunks: Vec<&[u8]> = if bytes.is_empty() {
            vec![empty]
        } else {
            bytes.chunks(CHUNK).collect()
        };
        for chunk in chunks {
            let _: UploadProgress = self.agent_update::<Result<UploadProgress, AgentError>>(
                self.operator,
                "upload_wasm_chunk",
                Encode!(&kind, &serde_bytes::ByteBuf::from(chunk.to_vec())).expect("encode"),
            )?;
        }
        Ok(())
    }

    /// `commit_wasm(kind, sha256)`.
    pub fn commit(&self, kind: WasmKind, sha: &[u8]) -> Result<CommittedWasm, AgentError> {
        self.agent_update(
            self.operator,
            "commit_wasm",
            Encode!(&kind, &serde_bytes::ByteBuf::from(sha.to_vec())).expect("encode"),
        )
    }

    /// Uploads, commits and proposes `bytes` as an operator release; any refusal on the way
    /// (an upload, the commit, the proposal) is the error, in words.
    pub fn try_propose_release(&self, bytes: &[u8], reason: &str) -> Result<UpgradeRecord, String> {
        self.try_propose_release_as(bytes, reason, false)
    }

    /// [`Testbed::try_propose_release`], saying whether the release breaks the Candid
    /// interface on purpose (`breaks_interface = opt true`: it drops methods the agent added to
    /// itself).
    pub fn try_propose_release_as(
        &self,
        bytes: &[u8],
        reason: &str,
        breaks_interface: bool,
    ) -> Result<UpgradeRecord, String> {
        self.try_release(bytes, reason, breaks_interface)
            .map_err(|e| e.to_string())
    }

    /// [`Testbed::try_propose_release_as`] with the refusal typed: the step that refused and
    /// the agent's error.
    pub fn try_release(
        &self,
        bytes: &[u8],
        reason: &str,
        breaks_interface: bool,
    ) -> Result<UpgradeRecord, ReleaseRefused> {
        let _ = self.agent_update::<Result<(), AgentError>>(
            self.operator,
            "discard_upload",
            Encode!(&WasmKind::Release).expect("encode"),
        );
        let refused = |step| move |error| ReleaseRefused { step, error };
        self.try_upload(WasmKind::Release, bytes)
            .map_err(refused("upload_wasm_chunk"))?;
        self.commit(WasmKind::Release, &sha256(bytes))
            .map_err(refused("commit_wasm"))?;
        self.propose_committed(reason, breaks_interface)
            .map_err(refused("propose_release"))
    }

    /// Uploads, commits and proposes `bytes` as an operator release.
    pub fn propose_release(&self, bytes: &[u8], reason: &str) -> Result<UpgradeRecord, AgentError> {
        self.upload(WasmKind::Release, bytes);
        self.commit(WasmKind::Release, &sha256(bytes))?;
        self.propose_committed(reason, false)
    }

    /// [`Testbed::propose_release`] of a release that breaks the Candid interface on purpose
    /// (`breaks_interface = opt true`).
    pub fn propose_breaking_release(
        &self,
        bytes: &[u8],
        reason: &str,
    ) -> Result<UpgradeRecord, AgentError> {
        self.upload(WasmKind::Release, bytes);
        self.commit(WasmKind::Release, &sha256(bytes))?;
        self.propose_committed(reason, true)
    }

    /// `propose_release` of the committed release upload, as the operator.
    fn propose_committed(&self, reason: &str, breaks: bool) -> Result<UpgradeRecord, AgentError> {
        self.agent_update(
            self.operator,
            "propose_release",
            Encode!(&ProposeRelease {
                reason: reason.into(),
                breaks_interface: breaks.then_some(true),
            })
            .expect("encode"),
        )
    }

    /// The agent's `self_upgrade` tool with one operation: a query `hello` answering "hi".
    /// Answers the tool's JSON output.
    pub fn self_upgrade_greeting(&self, reason: &str) -> Result<String, AgentError> {
        let reply = hex::encode(Encode!(&"hi").expect("encode"));
        let args = serde_json::json!({
            "ops": [{"op": "add_query_method", "name": "hello", "reply_hex": reply}],
            "reason": reason,
        });
        self.tool("self_upgrade", &args.to_string())
    }

    /// The agent's `self_upgrade` tool with `ops` (JSON patch operations). Answers the tool's
    /// JSON output.
    pub fn self_upgrade(&self, ops: serde_json::Value, reason: &str) -> Result<String, AgentError> {
        let args = serde_json::json!({"ops": ops, "reason": reason});
        self.tool("self_upgrade", &args.to_string())
    }

    /// `self_upgrade` adding the tool `spec` (see `tool_spec::samples`).
    pub fn self_upgrade_add_tool(
        &self,
        spec: serde_json::Value,
        reason: &str,
    ) -> Result<String, AgentError> {
        self.self_upgrade(
            serde_json::json!([{"op": "add_tool", "spec": spec}]),
            reason,
        )
    }

    /// The names `tools` lists, built-in and synthesized.
    pub fn tool_names(&self) -> Vec<String> {
        let text: String = self.query(self.agent, stranger(), "tools", Encode!().expect("encode"));
        let tools: serde_json::Value = serde_json::from_str(&text).expect("tools answers JSON");
        tools
            .as_array()
            .expect("tools answers an array")
            .iter()
            .map(|t| {
                t["function"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    /// `approve_upgrade(id)` as the operator.
    pub fn approve(&self, id: u64) -> Result<UpgradeRecord, AgentError> {
        self.agent_update(
            self.operator,
            "approve_upgrade",
            Encode!(&id).expect("encode"),
        )
    }

    /// Every record of the journal (every page of `upgrade_history`), oldest first.
    pub fn try_journal(&self) -> Result<Vec<UpgradeRecord>, CallError> {
        let mut all = vec![];
        let mut from = Some(0u64);
        while let Some(at) = from {
            let page: UpgradePage =
                self.try_agent_read("upgrade_history", Encode!(&at, &u32::MAX).expect("encode"))?;
            all.extend(page.records);
            from = page.next_from;
        }
        Ok(all)
    }

    /// Upgrade `id` of the journal.
    pub fn record(&self, id: u64) -> UpgradeRecord {
        self.agent_query::<Result<Option<UpgradeRecord>, AgentError>>(
            "upgrade_status",
            Encode!(&Some(id)).expect("encode"),
        )
        .expect("upgrade_status")
        .unwrap_or_else(|| panic!("no upgrade {id}"))
    }

    /// Upgrade `id` of the journal, or `None` while the agent cannot answer (stopping,
    /// stopped, trapping) or has no such upgrade.
    pub fn try_record(&self, id: u64) -> Option<UpgradeRecord> {
        let bytes = self
            .sim
            .query_call(
                self.agent,
                self.operator,
                "upgrade_status",
                Encode!(&Some(id)).expect("encode"),
            )
            .ok()?;
        Decode!(&bytes, Result<Option<UpgradeRecord>, AgentError>)
            .ok()?
            .ok()
            .flatten()
    }

    /// The journal's state name of upgrade `id` (`committed`, `rolled_back`...).
    pub fn state_of(&self, id: u64) -> String {
        format!("{:?}", self.record(id).state)
    }

    /// Every stored version (every page of `list_versions`), oldest first.
    pub fn versions(&self) -> Vec<VersionInfo> {
        let mut all: Vec<VersionInfo> = vec![];
        let mut from: Option<serde_bytes::ByteBuf> = None;
        loop {
            let page = self
                .agent_query::<Result<VersionPage, AgentError>>(
                    "list_versions",
                    Encode!(&from).expect("encode"),
                )
                .expect("list_versions");
            all.extend(page.versions);
            match page.next_from {
                None => break,
                Some(next) => from = Some(serde_bytes::ByteBuf::from(next)),
            }
        }
        all.sort_by_key(|v| v.created_at);
        all
    }

    /// The agent's whole audit log (every page of `audit_log`, in one page).
    pub fn audit(&self) -> AuditPage {
        self.try_audit().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Testbed::audit`], or why the agent did not answer.
    pub fn try_audit(&self) -> Result<AuditPage, CallError> {
        let mut all: AuditPage =
            self.try_agent_read("audit_log", Encode!(&0u64, &u64::MAX).expect("encode"))?;
        while let Some(from) = all.next_from.take() {
            let page: AuditPage =
                self.try_agent_read("audit_log", Encode!(&from, &u64::MAX).expect("encode"))?;
            all.entries.extend(page.entries);
            all.next_from = page.next_from;
        }
        Ok(all)
    }

    /// The watchdog's `status`.
    pub fn watchdog_status(&self) -> WatchdogStatus {
        self.try_watchdog_status().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Testbed::watchdog_status`], or why the watchdog did not answer.
    pub fn try_watchdog_status(&self) -> Result<WatchdogStatus, CallError> {
        self.try_query(
            self.watchdog,
            stranger(),
            "status",
            Encode!().expect("encode"),
        )
    }

    /// Uninstalls the agent (as an operator) and runs until the watchdog has reinstalled it
    /// clean (the ladder's last rung, `Reinstall`), within `limit` of simulated time; panics
    /// with the incidents otherwise.
    pub fn uninstall_agent_until_reinstalled_clean(&self, limit: Duration) {
        self.sim
            .uninstall_canister(self.agent, Some(operator()))
            .expect("uninstall the agent");
        self.run_until(limit, |tb| {
            tb.incidents()
                .iter()
                .any(|i| i.restored_at.is_some() && i.ladder_step == Some(LadderStep::Reinstall))
        })
        .unwrap_or_else(|| panic!("no clean reinstall; incidents {:?}", self.incidents()));
    }

    /// The watchdog's incidents (every page).
    pub fn incidents(&self) -> Vec<Incident> {
        self.try_incidents().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Testbed::incidents`], or why the watchdog did not answer.
    pub fn try_incidents(&self) -> Result<Vec<Incident>, CallError> {
        let mut all = vec![];
        let mut from = Some(0u64);
        while let Some(at) = from {
            let page: IncidentPage = self.try_query(
                self.watchdog,
                stranger(),
                "incidents",
                Encode!(&at, &u32::MAX).expect("encode"),
            )?;
            all.extend(page.incidents);
            from = page.next_from;
        }
        Ok(all)
    }

    /// The watchdog's events (every page).
    pub fn events(&self) -> Vec<WatchdogEvent> {
        self.try_events().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Testbed::events`], or why the watchdog did not answer.
    pub fn try_events(&self) -> Result<Vec<WatchdogEvent>, CallError> {
        let mut all = vec![];
        let mut from = Some(0u64);
        while let Some(at) = from {
            let page: EventPage = self.try_query(
                self.watchdog,
                stranger(),
                "events",
                Encode!(&at, &u64::MAX).expect("encode"),
            )?;
            all.extend(page.events);
            from = page.next_from;
        }
        Ok(all)
    }

    /// An update call to the watchdog, decoded as `R`; panics on a reject.
    pub fn watchdog_update<R: CandidType + for<'de> Deserialize<'de>>(
        &self,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> R {
        let bytes = self
            .sim
            .update_call(self.watchdog, caller, method, arg)
            .unwrap_or_else(|e| panic!("watchdog {method}: rejected: {e}"));
        decode(method, &bytes)
    }

    /// The watchdog's `rollback(target)` as the operator; answers the incident id.
    pub fn rollback(&self, target: RollbackTarget) -> Result<u64, WatchdogError> {
        self.watchdog_update(self.operator, "rollback", Encode!(&target).expect("encode"))
    }

    /// The watchdog's `configure` as the operator.
    pub fn configure(&self, config: WatchdogConfig) -> Result<WatchdogConfig, WatchdogError> {
        self.watchdog_update(
            self.operator,
            "configure",
            Encode!(&config).expect("encode"),
        )
    }

    /// The agent's `set_supervision` as the operator.
    pub fn set_supervision(&self, settings: Supervision) -> Result<Supervision, AgentError> {
        self.agent_update(
            self.operator,
            "set_supervision",
            Encode!(&settings).expect("encode"),
        )
    }

    /// The module the IC reports for the watchdog.
    pub fn watchdog_module(&self) -> Option<Vec<u8>> {
        self.sim.module_hash(self.watchdog).map(|h| h.to_vec())
    }

    /// The module the IC reports for the agent.
    pub fn agent_module(&self) -> Option<Vec<u8>> {
        self.sim.module_hash(self.agent).map(|h| h.to_vec())
    }

    // ---- time -----------------------------------------------------------------------------------

    /// Simulated time, in nanoseconds.
    pub fn now_nanos(&self) -> u64 {
        self.sim.get_time().as_nanos_since_unix_epoch()
    }

    /// Runs the subnet until `done` holds (checked every simulated second) or `limit` passed;
    /// answers the simulated time it took, or `None` at the limit.
    pub fn run_until(&self, limit: Duration, done: impl Fn(&Testbed) -> bool) -> Option<Duration> {
        let start = self.now_nanos();
        loop {
            if done(self) {
                return Some(Duration::from_nanos(self.now_nanos() - start));
            }
            if self.now_nanos() - start >= limit.as_nanos() as u64 {
                return None;
            }
            self.sim.run_for(Duration::from_secs(1));
        }
    }

    /// Runs the subnet one round at a time until `done` holds, for at most `rounds` rounds;
    /// answers whether it held. When idle, time skips to the next timer or deadline (at most
    /// 100 ms) without running a round, so `done` sees the state between every two rounds. For
    /// faults that must land between two particular messages.
    pub fn tick_until(&self, rounds: u64, done: impl Fn(&Testbed) -> bool) -> bool {
        for _ in 0..rounds {
            if done(self) {
                return true;
            }
            self.sim.skip_idle_time(Duration::from_millis(100));
            self.sim.tick();
        }
        done(self)
    }

    /// Runs the subnet for `d` of simulated time.
    pub fn run_for(&self, d: Duration) {
        self.sim.run_for(d);
    }
}
