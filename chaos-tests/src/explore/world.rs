//! The trio under exploration and what the explorer knows about it: the acknowledged writes (the
//! model the safety checks compare with), the journal's terminal states seen so far, the
//! modules it has bytes for, and the coverage. [`World::apply`] runs one [`Action`] and says
//! in words what came of it. The history's wall-time bound is kept here too: every stretch of
//! simulated time runs through [`World::run_for`], which stops at the bound
//! ([`World::out_of_time`]).

use super::action::{
    Action, FaultKind, Intrusion, PatchKind, ReleaseKind, RollbackKind, Who, autonomy,
};
use super::coverage::Coverage;
use candid::{CandidType, Decode, Deserialize, Encode, Principal};
use canister_api::agent::{
    AgentError, Config, Fact, FactCursor, FactPage, Supervision, UpgradeOutcome, UpgradePage,
    UpgradeRecord, VersionPage, WasmKind,
};
use canister_api::watchdog::{RollbackTarget, WatchdogConfig, WatchdogError, WatchdogStatus};
use ic_sim::Fault;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use testbed::{Testbed, operator, stranger};

/// The simulated time [`World::run_for`] runs between two looks at the wall clock.
const SLICE: Duration = Duration::from_secs(10);

/// The namespace of the explorer's facts.
pub const NAMESPACE: &str = "explore";

/// A second operator that `set_operators` may add.
pub fn second_operator() -> Principal {
    Principal::self_authenticating(b"operator-2")
}

/// A fact the agent acknowledged, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acked {
    /// The value, or `None` for an acknowledged `forget`.
    pub value: Option<String>,
    /// Simulated nanoseconds of the acknowledgement.
    pub at: u64,
}

/// The trio and the explorer's knowledge of it.
pub struct World {
    /// The deployment.
    pub tb: Testbed,
    /// Acknowledged writes by key (namespace [`NAMESPACE`]).
    pub acked: BTreeMap<String, Acked>,
    /// Upgrades seen in a terminal state, with that state (it must never change while the
    /// journal that holds it lasts: a clean reinstall or a snapshot load erases it, see
    /// [`World::journal_erased_at`]).
    pub terminal: BTreeMap<u64, String>,
    /// Whether the watchdog was uninstalled in this history: its incident log and the outcomes
    /// it had decided are gone (the agent reinstalls it with its settings and LKG only).
    pub watchdog_erased: bool,
    /// RolledBack upgrades whose incident was seen naming them (the watchdog's incident log
    /// does not outlive an uninstall of the watchdog; the agent's journal keeps the reason).
    pub rollback_named: BTreeSet<u64>,
    /// When the newest restore that replaced the agent's stable memory (a clean reinstall, a
    /// snapshot load) finished: [`World::terminal`] no longer holds the ids its journal lost
    /// (the agent numbers those upgrades again after it).
    pub journal_erased_at: Option<u64>,
    /// Module bytes by SHA-256, for out-of-band installs and rollbacks.
    pub modules: HashMap<Vec<u8>, Vec<u8>>,
    /// What the history reached.
    pub coverage: Coverage,
    /// Losses an incident explained (shown in the report).
    pub excused: Vec<String>,
    /// When the operator last installed the agent out of band (simulated nanoseconds).
    pub out_of_band_at: Option<u64>,
    /// The modules the operator installed out of band (SHA-256): the agent may run one of these
    /// past the detection bound while the watchdog's alerts name it, until the operator stores it
    /// (README, "Handback").
    pub installed_out_of_band: BTreeSet<Vec<u8>>,
    /// What a liveness check's operator did beyond healing (stored a module installed out of
    /// band), shown on the checkpoint's step or as the final check's.
    pub operator_steps: Vec<String>,
    /// The hashes of the bad candidates released.
    pub bad_modules: Vec<Vec<u8>>,
    /// Whether the agent's code may legitimately fail outside an upgrade: it was uninstalled
    /// or installed out of band.
    pub agent_tampered: bool,
    /// The stretches of simulated time (nanoseconds, from and until; `None`: still held) in
    /// which the agent's responses were held. A held agent cannot be told from a hung one: the
    /// watchdog's heartbeats run out of time (SYS_UNKNOWN at the deadline), which the README's
    /// failure table counts as the code's failure, so an incident they start is not a false
    /// rollback.
    pub agent_held: Vec<(u64, Option<u64>)>,
    /// What the invariants of [`super::safety_net`] remember between steps.
    pub net: super::safety_net::Seen,
    /// The wall-clock instant at which the history's bound strikes (`None`: unbounded).
    pub deadline: Option<Instant>,
    /// Whether the bound struck: a stretch of simulated time was cut short, so what the
    /// history saw since then proves nothing (neither a pass nor a failure).
    pub out_of_time: bool,
}

/// A candid call's answer: the reply decoded, or the reject / decoding failure in words.
pub fn call<R: CandidType + for<'de> Deserialize<'de>>(
    tb: &Testbed,
    canister: Principal,
    caller: Principal,
    method: &str,
    arg: Vec<u8>,
    query: bool,
) -> Result<R, String> {
    let answer = if query {
        tb.sim.query_call(canister, caller, method, arg)
    } else {
        tb.sim.update_call(canister, caller, method, arg)
    };
    let bytes = answer.map_err(|e| format!("reject {:?}: {}", e.error_code, e.reject_message))?;
    Decode!(&bytes, R).map_err(|e| format!("bad candid from {method}: {e}"))
}

fn enc<T: CandidType>(v: &T) -> Vec<u8> {
    Encode!(v).expect("encode")
}

/// The name of an error's variant (`WritesPaused`), for coverage.
fn variant<E: std::fmt::Debug>(e: &E) -> String {
    let text = format!("{e:?}");
    text.split([' ', '(', '{'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A release module's bytes, built once per process (stamping a 4 MB module costs a second).
pub(super) fn release_bytes(kind: ReleaseKind) -> Vec<u8> {
    static CACHE: OnceLock<Mutex<HashMap<String, Vec<u8>>>> = OnceLock::new();
    let mode = match kind {
        ReleaseKind::Good | ReleaseKind::Truncated => "none",
        ReleaseKind::Bad(m) => m,
        ReleaseKind::Empty => return vec![],
    };
    let cache = CACHE.get_or_init(Default::default);
    let full = {
        let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(mode.to_string())
            .or_insert_with(|| testbed::chaos_release(mode))
            .clone()
    };
    match kind {
        ReleaseKind::Truncated => full[..full.len() / 2].to_vec(),
        _ => full,
    }
}

impl World {
    /// A world around a freshly deployed trio.
    pub fn new(tb: Testbed, modules: HashMap<Vec<u8>, Vec<u8>>) -> Self {
        Self {
            tb,
            acked: BTreeMap::new(),
            terminal: BTreeMap::new(),
            journal_erased_at: None,
            rollback_named: BTreeSet::new(),
            watchdog_erased: false,
            modules,
            coverage: Coverage::default(),
            excused: vec![],
            out_of_band_at: None,
            installed_out_of_band: BTreeSet::new(),
            operator_steps: vec![],
            bad_modules: vec![],
            agent_tampered: false,
            agent_held: vec![],
            net: Default::default(),
            deadline: None,
            out_of_time: false,
        }
    }

    /// Whether the wall-time bound has struck (and notes it if so).
    pub fn past_deadline(&mut self) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.out_of_time = true;
        }
        self.out_of_time
    }

    /// Runs the subnet for `d` of simulated time in slices of at most [`SLICE`], stopping early
    /// when the wall-time bound strikes; answers whether all of `d` ran.
    pub fn run_for(&mut self, d: Duration) -> bool {
        let end = self.now() + d.as_nanos() as u64;
        loop {
            let now = self.now();
            if now >= end {
                return true;
            }
            if self.past_deadline() {
                return false;
            }
            self.tb.run_for(Duration::from_nanos(end - now).min(SLICE));
        }
    }

    /// The canister `who` names.
    pub fn id(&self, who: Who) -> Principal {
        match who {
            Who::Agent => self.tb.agent,
            Who::Watchdog => self.tb.watchdog,
            Who::Staging => self.tb.staging,
        }
    }

    /// Simulated nanoseconds now.
    pub fn now(&self) -> u64 {
        self.tb.now_nanos()
    }

    /// Clears every fault and releases the held responses (the end of a hold of the agent's).
    pub fn clear_faults(&mut self) {
        self.tb.sim.clear_faults();
        self.tb.sim.release_held_responses();
        let now = self.now();
        if let Some((_, until @ None)) = self.agent_held.last_mut() {
            *until = Some(now);
        }
    }

    /// Whether the agent's responses are held now.
    fn agent_is_held(&self) -> bool {
        matches!(self.agent_held.last(), Some((_, None)))
    }

    /// Whether the agent's responses were held at simulated instant `at` (nanoseconds).
    pub fn agent_held_at(&self, at: u64) -> bool {
        self.agent_held
            .iter()
            .any(|&(from, until)| from <= at && until.is_none_or(|u| at <= u))
    }

    /// Whether `who` has a module and is running.
    pub fn is_running(&self, who: Who) -> bool {
        let id = self.id(who);
        self.tb.sim.module_hash(id).is_some()
            && self.tb.sim.canister_run_status(id) == Some(ic_sim::CanisterStatusType::Running)
    }

    /// The watchdog's status, if it answers.
    pub fn watchdog_status(&self) -> Option<WatchdogStatus> {
        call(
            &self.tb,
            self.tb.watchdog,
            stranger(),
            "status",
            enc(&()),
            true,
        )
        .ok()
    }

    /// Every journal entry, if the agent answers.
    pub fn records(&self) -> Option<Vec<UpgradeRecord>> {
        let mut all = vec![];
        let mut from = 0u64;
        loop {
            let page: Result<UpgradePage, AgentError> = call(
                &self.tb,
                self.tb.agent,
                operator(),
                "upgrade_history",
                Encode!(&from, &1000u32).expect("encode"),
                true,
            )
            .ok()?;
            let page = page.ok()?;
            all.extend(page.records);
            match page.next_from {
                Some(next) => from = next,
                None => return Some(all),
            }
        }
    }

    /// The explorer's facts, if the agent answers.
    pub fn facts(&self) -> Option<BTreeMap<String, String>> {
        let mut all = BTreeMap::new();
        let mut cursor: Option<FactCursor> = None;
        loop {
            let page: Result<FactPage, AgentError> = call(
                &self.tb,
                self.tb.agent,
                operator(),
                "list_facts",
                Encode!(&Some(NAMESPACE.to_string()), &cursor).expect("encode"),
                true,
            )
            .ok()?;
            let page = page.ok()?;
            all.extend(page.facts.into_iter().map(|f| (f.key, f.value)));
            match page.next_from {
                None => return Some(all),
                next => cursor = next,
            }
        }
    }

    /// The agent's config, if it answers.
    pub fn config(&self) -> Option<Config> {
        call::<Result<Config, AgentError>>(
            &self.tb,
            self.tb.agent,
            operator(),
            "get_config",
            enc(&()),
            true,
        )
        .ok()?
        .ok()
    }

    /// The method a patch operation names by role: `hello_1` stands for the newest `hello_N`
    /// method a self-patch added to the running interface (`hello_1` itself if there is none);
    /// any other name is itself.
    pub fn resolve_method(&self, name: &str) -> String {
        if name != "hello_1" {
            return name.to_string();
        }
        super::safety_net::running_service(self)
            .and_then(|service| {
                service
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix("hello_"))
                    .filter_map(|rest| rest.split([' ', ':']).next()?.parse::<u32>().ok())
                    .max()
            })
            .map_or_else(|| name.to_string(), |n| format!("hello_{n}"))
    }

    /// The newest upgrade still in flight, else the newest one, else 1.
    fn newest_upgrade(&self) -> u64 {
        let records = self.records().unwrap_or_default();
        records
            .iter()
            .rev()
            .find(|r| !r.state.is_terminal())
            .or(records.last())
            .map_or(1, |r| r.id)
    }

    /// An update call of the agent; its error kind goes to the coverage.
    pub(super) fn agent<R: CandidType + for<'de> Deserialize<'de> + std::fmt::Debug>(
        &mut self,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<R, String> {
        let out: Result<Result<R, AgentError>, String> =
            call(&self.tb, self.tb.agent, caller, method, arg, false);
        self.note_answer("agent", out)
    }

    pub(super) fn watchdog<R: CandidType + for<'de> Deserialize<'de> + std::fmt::Debug>(
        &mut self,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<R, String> {
        let out: Result<Result<R, WatchdogError>, String> =
            call(&self.tb, self.tb.watchdog, caller, method, arg, false);
        self.note_answer("watchdog", out)
    }

    /// Records an answer's error kind in the coverage and flattens it to words.
    fn note_answer<R, E: std::fmt::Debug + std::fmt::Display>(
        &mut self,
        side: &str,
        out: Result<Result<R, E>, String>,
    ) -> Result<R, String> {
        match out {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.coverage
                    .errors
                    .insert(format!("{side}.{}", variant(&e)));
                Err(e.to_string())
            }
            Err(reject) => {
                let code = reject
                    .trim_start_matches("reject ")
                    .split(':')
                    .next()
                    .unwrap_or_default();
                self.coverage.errors.insert(format!("reject {code}"));
                Err(reject)
            }
        }
    }

    /// Runs `action`; answers what came of it, in words.
    pub fn apply(&mut self, action: &Action) -> String {
        let tb = &self.tb;
        match action {
            Action::Wait(s) => {
                if self.run_for(Duration::from_secs(*s)) {
                    String::new()
                } else {
                    "cut short: the history's wall-time bound struck".into()
                }
            }
            Action::Ticks(n) => {
                for _ in 0..*n {
                    tb.sim.skip_idle_time(Duration::from_millis(100));
                    tb.sim.tick();
                }
                String::new()
            }
            Action::TimeJump(s) => {
                tb.sim.advance_time(Duration::from_secs(*s));
                tb.sim.tick();
                String::new()
            }
            Action::Remember(k, v) => {
                let fact = Fact {
                    namespace: NAMESPACE.into(),
                    key: format!("k{k}"),
                    value: format!("v{v}"),
                };
                let out: Result<Option<String>, String> =
                    self.agent(operator(), "remember", enc(&fact));
                if out.is_ok() {
                    let at = self.now();
                    self.acked.insert(
                        fact.key,
                        Acked {
                            value: Some(fact.value),
                            at,
                        },
                    );
                }
                short(&out)
            }
            Action::Forget(k) => {
                let key = format!("k{k}");
                let out: Result<Option<String>, String> = self.agent(
                    operator(),
                    "forget",
                    Encode!(&Some(NAMESPACE.to_string()), &key).expect("encode"),
                );
                if out.is_ok() {
                    let at = self.now();
                    self.acked.insert(key, Acked { value: None, at });
                }
                short(&out)
            }
            Action::SubmitTask(n) => {
                let arg = canister_api::agent::SubmitTask {
                    description: format!("explore {n}"),
                    priority: None,
                };
                let out: Result<canister_api::agent::Task, String> =
                    self.agent(operator(), "submit_task", enc(&arg));
                short(&out.map(|t| t.id))
            }
            Action::RecallTool(k) => {
                let args = serde_json::json!({"namespace": NAMESPACE, "key": format!("k{k}")});
                let out: Result<String, String> = self.agent(
                    operator(),
                    "call_tool",
                    Encode!(&"recall", &args.to_string()).expect("encode"),
                );
                short(&out)
            }
            Action::SelfUpgrade(ops) => {
                let ops: Vec<serde_json::Value> = ops
                    .iter()
                    .map(|op| match op {
                        PatchKind::Remove(name) => serde_json::json!({
                            "op": "remove_method", "name": self.resolve_method(name)
                        }),
                        op => patch_json(op),
                    })
                    .collect();
                let args = serde_json::json!({"ops": ops, "reason": "explore"});
                let running = self.tb.agent_module();
                let out: Result<String, String> = self.agent(
                    operator(),
                    "call_tool",
                    Encode!(&"self_upgrade", &args.to_string()).expect("encode"),
                );
                // The patch must be built on the module the IC runs (issue 12 item 4).
                let id = out
                    .as_ref()
                    .ok()
                    .and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok())
                    .and_then(|v| v["id"].as_u64());
                let parent = id.and_then(|id| {
                    self.records()?
                        .into_iter()
                        .find(|r| r.id == id)?
                        .parent_hash
                });
                match (id, parent, running) {
                    (Some(id), Some(parent), Some(running)) if parent != running => format!(
                        "STALE PARENT: self-patch upgrade {id} was built on {}, the IC runs {}",
                        hex::encode(&parent[..6]),
                        hex::encode(&running[..6])
                    ),
                    _ => short(&out),
                }
            }
            Action::Release(kind) => {
                let bytes = release_bytes(*kind);
                if !bytes.is_empty() {
                    self.modules.insert(testbed::sha256(&bytes), bytes.clone());
                }
                if matches!(kind, ReleaseKind::Bad(_)) {
                    self.bad_modules.push(testbed::sha256(&bytes));
                }
                // The operator says the release may drop methods the agent added to itself.
                let out = self.propose(&bytes, true);
                short(&out.map(|r| r.id))
            }
            Action::Approve => {
                let id = self.newest_upgrade();
                let out: Result<UpgradeRecord, String> =
                    self.agent(operator(), "approve_upgrade", enc(&id));
                format!("upgrade {id}: {}", short(&out.map(|r| r.state)))
            }
            Action::Reject => {
                let id = self.newest_upgrade();
                let out: Result<UpgradeRecord, String> = self.agent(
                    operator(),
                    "reject_upgrade",
                    Encode!(&id, &"explore says no").expect("encode"),
                );
                format!("upgrade {id}: {}", short(&out.map(|r| r.state)))
            }
            Action::SetAutonomy(a) => {
                let out: Result<(), String> =
                    self.agent(operator(), "set_autonomy", enc(&autonomy(*a)));
                short(&out)
            }
            Action::Rollback(kind) => {
                let target = self.rollback_target(*kind);
                let out: Result<u64, String> = self.watchdog(operator(), "rollback", enc(&target));
                short(&out.map(|id| format!("incident {id}")))
            }
            Action::Pause => {
                let out: Result<(), String> = self.watchdog(operator(), "pause", enc(&()));
                short(&out)
            }
            Action::Resume => {
                let out: Result<(), String> = self.watchdog(operator(), "resume", enc(&()));
                short(&out)
            }
            Action::Configure(v) => {
                let d = WatchdogConfig::default();
                let config = match v {
                    0 => d,
                    1 => WatchdogConfig {
                        heartbeat_interval_secs: 5,
                        ..d
                    },
                    2 => WatchdogConfig {
                        probation_heartbeats: d.probation_heartbeats * 2,
                        ..d
                    },
                    _ => WatchdogConfig {
                        heartbeat_interval_secs: 0,
                        ..d
                    },
                };
                let out: Result<WatchdogConfig, String> =
                    self.watchdog(operator(), "configure", enc(&config));
                short(&out.map(|_| ()))
            }
            Action::SetSupervision(v) => {
                let d = Supervision::default();
                let settings = match v {
                    0 => d,
                    1 => Supervision {
                        heartbeat_interval_secs: 5,
                        ..d
                    },
                    _ => Supervision {
                        failure_threshold: 0,
                        ..d
                    },
                };
                let out: Result<Supervision, String> =
                    self.agent(operator(), "set_supervision", enc(&settings));
                short(&out.map(|_| ()))
            }
            Action::SetOperators(v) => {
                let list = match v {
                    0 => vec![operator()],
                    1 => vec![operator(), second_operator()],
                    _ => vec![],
                };
                let a: Result<candid::Reserved, String> =
                    self.agent(operator(), "set_operators", enc(&list));
                let w: Result<candid::Reserved, String> =
                    self.watchdog(operator(), "set_operators", enc(&list));
                format!(
                    "agent {}; watchdog {}",
                    short(&a.map(|_| ())),
                    short(&w.map(|_| ()))
                )
            }
            Action::Stop(who) => {
                let id = self.id(*who);
                // The operator's `dfx canister stop`: it does not wait for the stop to end.
                let _ = tb.sim.stop_canister_nonblocking(id, Some(operator()));
                tb.sim.tick();
                format!("{:?}", tb.sim.canister_run_status(id))
            }
            Action::Start(who) => {
                let id = self.id(*who);
                let out = tb.sim.start_canister(id, Some(operator()));
                short(&out.map_err(|e| e.reject_message))
            }
            Action::OutOfBandInstall(other) => {
                let bytes = if *other {
                    Some(release_bytes(ReleaseKind::Good))
                } else {
                    self.watchdog_status()
                        .and_then(|s| s.lkg)
                        .and_then(|l| self.modules.get(&l.hash).cloned())
                };
                let Some(bytes) = bytes else {
                    return "skipped: the LKG's bytes are not known".into();
                };
                self.modules.insert(testbed::sha256(&bytes), bytes.clone());
                self.installed_out_of_band.insert(testbed::sha256(&bytes));
                self.out_of_band_at = Some(self.now());
                self.agent_tampered = true;
                let tb = &self.tb;
                let out = tb
                    .sim
                    .upgrade_canister(tb.agent, bytes, enc(&()), Some(operator()));
                short(&out.map_err(|e| e.reject_message))
            }
            Action::Fault(kind) => {
                let fault = match *kind {
                    FaultKind::Trap(w) => Fault::TrapNextMessage {
                        canister: self.id(w),
                    },
                    FaultKind::FailCallsTo(w) => Fault::FailCallsTo {
                        canister: self.id(w),
                    },
                    FaultKind::HoldResponses(w) => Fault::HoldResponses { from: self.id(w) },
                    FaultKind::DropResponses(w, pct) => Fault::DropResponses {
                        from: self.id(w),
                        probability: f64::from(pct) / 100.0,
                    },
                };
                if *kind == FaultKind::HoldResponses(Who::Agent) && !self.agent_is_held() {
                    self.agent_held.push((self.now(), None));
                }
                self.tb.sim.inject(fault);
                String::new()
            }
            Action::ClearFaults => {
                self.clear_faults();
                String::new()
            }
            Action::Kill(who) => {
                let partner = match who {
                    Who::Agent => Who::Watchdog,
                    _ => Who::Agent,
                };
                if !self.is_running(partner) {
                    return format!("skipped: {partner:?} is not running to repair it");
                }
                self.agent_tampered |= *who == Who::Agent;
                self.watchdog_erased |= *who == Who::Watchdog;
                let out = tb.sim.uninstall_canister(self.id(*who), Some(operator()));
                short(&out.map_err(|e| e.reject_message))
            }
            Action::Intrude(what) => self.intrude(*what),
            Action::Checkpoint => String::new(),
            extra => super::reach::apply(self, extra),
        }
    }

    /// Uploads (1 MiB chunks), commits and proposes `bytes` as the operator, as
    /// `Testbed::try_propose_release` does, but answering a reject (a stopped or uninstalled
    /// agent) as an error instead of panicking.
    pub fn propose(&mut self, bytes: &[u8], breaks: bool) -> Result<UpgradeRecord, String> {
        self.upload_and_commit(WasmKind::Release, bytes)?;
        self.agent(
            operator(),
            "propose_release",
            enc(&canister_api::agent::ProposeRelease {
                reason: "explore".into(),
                breaks_interface: breaks.then_some(true),
            }),
        )
        .map_err(|e| format!("propose_release: {e}"))
    }

    /// The operator's `discard_upload(kind)`, `upload_wasm_chunk(kind, ..)` in 1 MiB chunks and
    /// `commit_wasm(kind, sha256)`; the first refusal or reject is the error, in words.
    pub fn upload_and_commit(&mut self, kind: WasmKind, bytes: &[u8]) -> Result<(), String> {
        let op = operator();
        let _ = self.agent::<()>(op, "discard_upload", enc(&kind));
        let empty: &[u8] = &[];
        let chunks: Vec<&[u8]> = if bytes.is_empty() {
            vec![empty]
        } else {
            bytes.chunks(testbed::CHUNK).collect()
        };
        for chunk in chunks {
            self.agent::<candid::Reserved>(
                op,
                "upload_wasm_chunk",
                Encode!(&kind, &serde_bytes::ByteBuf::from(chunk.to_vec())).expect("encode"),
            )
            .map_err(|e| format!("upload_wasm_chunk: {e}"))?;
        }
        self.agent::<candid::Reserved>(
            op,
            "commit_wasm",
            Encode!(&kind, &serde_bytes::ByteBuf::from(testbed::sha256(bytes))).expect("encode"),
        )
        .map_err(|e| format!("commit_wasm: {e}"))?;
        Ok(())
    }

    fn rollback_target(&self, kind: RollbackKind) -> RollbackTarget {
        match kind {
            RollbackKind::Lkg => RollbackTarget::Lkg,
            RollbackKind::Version(n) => {
                let page: Option<VersionPage> = call::<Result<VersionPage, AgentError>>(
                    &self.tb,
                    self.tb.agent,
                    operator(),
                    "list_versions",
                    enc(&None::<serde_bytes::ByteBuf>),
                    true,
                )
                .ok()
                .and_then(Result::ok);
                // Agent versions only: the store also keeps the watchdog's module. Oldest first:
                // the store lists by hash, and a module's hash differs between builds (its panic
                // messages carry the build's paths), so hash order would make `Version(n)` pick
                // another module on another machine.
                let mut versions: Vec<_> = page
                    .map(|p| p.versions)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|v| v.schema_range.is_some())
                    .collect();
                versions.sort_by_key(|v| (v.created_at, v.upgrade_id, v.hash.clone()));
                let versions: Vec<Vec<u8>> = versions.into_iter().map(|v| v.hash).collect();
                match versions.len() {
                    0 => RollbackTarget::Version(vec![0xee; 32]),
                    len => RollbackTarget::Version(versions[usize::from(n) % len].clone()),
                }
            }
            RollbackKind::Snapshot(n) => {
                let snaps = self
                    .tb
                    .sim
                    .list_canister_snapshots(self.tb.agent, Some(operator()))
                    .unwrap_or_default();
                match snaps.len() {
                    0 => RollbackTarget::Snapshot(vec![0xee; 16]),
                    len => RollbackTarget::Snapshot(snaps[usize::from(n) % len].id.clone()),
                }
            }
        }
    }

    /// What a stranger's call could change that nothing else changes on its own: the agent's
    /// autonomy and operators, the watchdog's operators, pause flag and settings. (Approvals,
    /// verdicts and restores also move by themselves; for those the refusal is the check.)
    fn guarded_state(&self) -> String {
        let agent = self.config().map(|c| (c.autonomy, c.operators));
        let wd = self
            .watchdog_status()
            .map(|s| (s.operators, s.paused, s.config));
        format!("{agent:?} {wd:?}")
    }

    /// An unauthorised call; the answer must be a refusal and nothing may change. A violation is
    /// reported as `UNAUTHORISED CHANGE: ...` (the safety check looks for it).
    fn intrude(&mut self, what: Intrusion) -> String {
        let before = self.guarded_state();
        let id = self.newest_upgrade();
        let s = stranger();
        let answer: Result<(), String> = match what {
            Intrusion::SetAutonomy => self
                .agent::<()>(s, "set_autonomy", enc(&autonomy(2)))
                .map(|_| ()),
            Intrusion::AgentSetOperators => self
                .agent::<candid::Reserved>(s, "set_operators", enc(&vec![s]))
                .map(|_| ()),
            Intrusion::Approve => self
                .agent::<UpgradeRecord>(s, "approve_upgrade", enc(&id))
                .map(|_| ()),
            Intrusion::ForgeVerdict => self
                .agent::<UpgradeRecord>(
                    s,
                    "complete_upgrade",
                    Encode!(&id, &UpgradeOutcome::Committed).expect("encode"),
                )
                .map(|_| ()),
            Intrusion::Upload => self
                .agent::<candid::Reserved>(
                    s,
                    "upload_wasm_chunk",
                    Encode!(
                        &WasmKind::Release,
                        &serde_bytes::ByteBuf::from(vec![0u8; 8])
                    )
                    .expect("encode"),
                )
                .map(|_| ()),
            Intrusion::Rollback => self
                .watchdog::<u64>(s, "rollback", enc(&RollbackTarget::Lkg))
                .map(|_| ()),
            Intrusion::Pause => self.watchdog::<()>(s, "pause", enc(&())).map(|_| ()),
            Intrusion::WatchdogSetOperators => self
                .watchdog::<candid::Reserved>(s, "set_operators", enc(&vec![s]))
                .map(|_| ()),
        };
        let after = self.guarded_state();
        let unauthorised = |e: &String| {
            e.contains("not allowed")
                || e.contains("Unauthorized")
                || e.contains("not authorized")
                || e.contains("reject")
        };
        match answer {
            Ok(()) => format!("UNAUTHORISED CHANGE: the stranger's {what:?} was accepted"),
            Err(e) if !unauthorised(&e) => {
                format!(
                    "UNAUTHORISED CHANGE: the stranger's {what:?} was not refused as unauthorised: {e}"
                )
            }
            Err(_) if before != after => format!(
                "UNAUTHORISED CHANGE: the stranger's {what:?} was refused, but the state moved: {before} -> {after}"
            ),
            Err(e) => format!("refused: {}", first_line(&e)),
        }
    }
}

fn patch_json(op: &PatchKind) -> serde_json::Value {
    match op {
        PatchKind::AddMethod(n) => serde_json::json!({
            "op": "add_query_method",
            "name": format!("hello_{n}"),
            "reply_hex": hex::encode(Encode!(&"hi").expect("encode")),
        }),
        PatchKind::Remove(name) => serde_json::json!({"op": "remove_method", "name": name}),
        PatchKind::Guard(name) => {
            serde_json::json!({"op": "guard_controller_only", "name": name})
        }
        PatchKind::AddTool => serde_json::json!({
            "op": "add_tool",
            "spec": wasm_patch::tool_spec::samples::json("tally_vote").expect("a sample"),
        }),
        PatchKind::RemoveTool => serde_json::json!({"op": "remove_tool", "name": "tally_vote"}),
    }
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    if line.len() > 160 {
        format!("{}...", &line[..line.floor_char_boundary(160)])
    } else {
        line.to_string()
    }
}

/// An answer in one short line.
fn short<T: std::fmt::Debug>(out: &Result<T, String>) -> String {
    match out {
        Ok(v) => first_line(&format!("ok {v:?}")),
        Err(e) => first_line(&format!("error: {e}")),
    }
}
