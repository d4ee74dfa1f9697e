//! The agent's candid types: everything `agent/agent.did` names.
//!
//! The agent re-exports them as `agent::api`. Hashes are `blob`s of 32 bytes in records and
//! lowercase hex strings in error messages. Times are nanoseconds since the epoch.

pub use crate::schema::SchemaRange;
use crate::staging::RehearsalReport;
use candid::{CandidType, Deserialize, Principal};
use serde::Serialize;

pub use crate::turns::*;

/// Who calls a method of the agent's control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The watchdog: heartbeats, arming, verdicts, its LKG copy, restores.
    Watchdog,
    /// Staging: the rehearsal on a sandbox copy (state copy, probes, replays, write probes).
    Staging,
    /// Operators, with dfx or icp (the README's runbook).
    Operators,
    /// The agent itself: its self-test and the pipeline's self-calls.
    Agent,
}

pub use crate::service::MethodKind;

/// The agent's methods that the watchdog, staging, operators and the agent itself call: its
/// control plane. A candidate module must export every one of them ([`required_exports`]), the
/// rehearsal calls every one of them on the sandboxed candidate, and the watchdog and staging
/// name the agent's methods only through this enum (`canister-api/tests/control_plane.rs`
/// fails when a call site, the runbook or `agent.did` disagrees with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgentMethod {
    /// `health`.
    Health,
    /// `state_digest`.
    StateDigest,
    /// `export_module`.
    ExportModule,
    /// `export_state`.
    ExportState,
    /// `import_state`.
    ImportState,
    /// `upgrade_armed`.
    UpgradeArmed,
    /// `complete_upgrade`.
    CompleteUpgrade,
    /// `note_repair`.
    NoteRepair,
    /// `canary_write`.
    CanaryWrite,
    /// `list_versions`.
    ListVersions,
    /// `list_tasks`.
    ListTasks,
    /// `list_facts`.
    ListFacts,
    /// `get_config`.
    GetConfig,
    /// `upgrade_history`.
    UpgradeHistory,
    /// `upgrade_status`.
    UpgradeStatus,
    /// `audit_log`.
    AuditLog,
    /// `submit_task`.
    SubmitTask,
    /// `set_task_status`.
    SetTaskStatus,
    /// `remember`.
    Remember,
    /// `forget`.
    Forget,
    /// `call_tool`.
    CallTool,
    /// `approve_upgrade`.
    ApproveUpgrade,
    /// `reject_upgrade`.
    RejectUpgrade,
    /// `set_autonomy`.
    SetAutonomy,
    /// `set_gate_limits`.
    SetGateLimits,
    /// `set_operators`.
    SetOperators,
    /// `set_supervision`.
    SetSupervision,
    /// `set_version_retention`.
    SetVersionRetention,
    /// `upload_wasm_chunk`.
    UploadWasmChunk,
    /// `commit_wasm`.
    CommitWasm,
    /// `discard_upload`.
    DiscardUpload,
    /// `propose_release`.
    ProposeRelease,
    /// `tool_examples`.
    ToolExamples,
    /// `set_loop_enabled`.
    SetLoopEnabled,
    /// `set_llm`.
    SetLlm,
    /// `set_survival`.
    SetSurvival,
    /// `set_prompt_layer`.
    SetPromptLayer,
    /// `loop_status`.
    LoopStatus,
    /// `turns`.
    Turns,
}

impl AgentMethod {
    /// Every method of the control plane.
    pub const ALL: [AgentMethod; 39] = [
        AgentMethod::Health,
        AgentMethod::StateDigest,
        AgentMethod::ExportModule,
        AgentMethod::ExportState,
        AgentMethod::ImportState,
        AgentMethod::UpgradeArmed,
        AgentMethod::CompleteUpgrade,
        AgentMethod::NoteRepair,
        AgentMethod::CanaryWrite,
        AgentMethod::ListVersions,
        AgentMethod::ListTasks,
        AgentMethod::ListFacts,
        AgentMethod::GetConfig,
        AgentMethod::UpgradeHistory,
        AgentMethod::UpgradeStatus,
        AgentMethod::AuditLog,
        AgentMethod::SubmitTask,
        AgentMethod::SetTaskStatus,
        AgentMethod::Remember,
        AgentMethod::Forget,
        AgentMethod::CallTool,
        AgentMethod::ApproveUpgrade,
        AgentMethod::RejectUpgrade,
        AgentMethod::SetAutonomy,
        AgentMethod::SetGateLimits,
        AgentMethod::SetOperators,
        AgentMethod::SetSupervision,
        AgentMethod::SetVersionRetention,
        AgentMethod::UploadWasmChunk,
        AgentMethod::CommitWasm,
        AgentMethod::DiscardUpload,
        AgentMethod::ProposeRelease,
        AgentMethod::ToolExamples,
        AgentMethod::SetLoopEnabled,
        AgentMethod::SetLlm,
        AgentMethod::SetSurvival,
        AgentMethod::SetPromptLayer,
        AgentMethod::LoopStatus,
        AgentMethod::Turns,
    ];

    /// The method's name in `agent.did`.
    pub fn name(self) -> &'static str {
        use AgentMethod::*;
        match self {
            Health => "health",
            StateDigest => "state_digest",
            ExportModule => "export_module",
            ExportState => "export_state",
            ImportState => "import_state",
            UpgradeArmed => "upgrade_armed",
            CompleteUpgrade => "complete_upgrade",
            NoteRepair => "note_repair",
            CanaryWrite => "canary_write",
            ListVersions => "list_versions",
            ListTasks => "list_tasks",
            ListFacts => "list_facts",
            GetConfig => "get_config",
            UpgradeHistory => "upgrade_history",
            UpgradeStatus => "upgrade_status",
            AuditLog => "audit_log",
            SubmitTask => "submit_task",
            SetTaskStatus => "set_task_status",
            Remember => "remember",
            Forget => "forget",
            CallTool => "call_tool",
            ApproveUpgrade => "approve_upgrade",
            RejectUpgrade => "reject_upgrade",
            SetAutonomy => "set_autonomy",
            SetGateLimits => "set_gate_limits",
            SetOperators => "set_operators",
            SetSupervision => "set_supervision",
            SetVersionRetention => "set_version_retention",
            UploadWasmChunk => "upload_wasm_chunk",
            CommitWasm => "commit_wasm",
            DiscardUpload => "discard_upload",
            ProposeRelease => "propose_release",
            ToolExamples => "tool_examples",
            SetLoopEnabled => "set_loop_enabled",
            SetLlm => "set_llm",
            SetSurvival => "set_survival",
            SetPromptLayer => "set_prompt_layer",
            LoopStatus => "loop_status",
            Turns => "turns",
        }
    }

    /// Query or update, as `agent.did` declares it (the chaos build's `health` is an update;
    /// callers from other canisters do not care, and [`required_exports`] accepts either).
    pub fn kind(self) -> MethodKind {
        use AgentMethod::*;
        match self {
            Health | StateDigest | ExportModule | ExportState | ListVersions | ListTasks
            | ListFacts | GetConfig | UpgradeHistory | UpgradeStatus | AuditLog | ToolExamples
            | LoopStatus | Turns => MethodKind::Query,
            _ => MethodKind::Update,
        }
    }

    /// Who calls it.
    pub fn callers(self) -> &'static [Caller] {
        use AgentMethod::*;
        use Caller::*;
        match self {
            Health => &[Watchdog, Staging, Operators],
            StateDigest => &[Watchdog, Staging],
            ExportModule => &[Watchdog, Staging],
            ExportState | ImportState => &[Staging],
            UpgradeArmed | CompleteUpgrade | NoteRepair => &[Watchdog],
            CanaryWrite => &[Watchdog, Agent],
            ListVersions => &[Watchdog, Staging, Operators],
            ListTasks | ListFacts => &[Staging],
            GetConfig | UpgradeHistory => &[Staging, Operators],
            UpgradeStatus | AuditLog => &[Operators],
            // Staging runs the synthesized tools' examples on the sandbox; operators check them.
            ToolExamples => &[Staging, Operators],
            // The turn loop's operator surface.
            SetLoopEnabled | SetLlm | SetSurvival | SetPromptLayer | LoopStatus | Turns => {
                &[Operators]
            }
            // Operators give the turn loop its tasks (the README's `submit_task`).
            SubmitTask => &[Staging, Operators],
            SetTaskStatus | Remember | Forget => &[Staging],
            // The agent's self-test runs its read-only tools; operators run any tool (the
            // runbook's `self_upgrade`).
            CallTool => &[Agent, Operators],
            ApproveUpgrade | RejectUpgrade | SetAutonomy | SetGateLimits | SetOperators
            | SetSupervision | SetVersionRetention | UploadWasmChunk | CommitWasm
            | DiscardUpload | ProposeRelease => &[Operators],
        }
    }
}

/// Exports every candidate module of the agent must keep: `canister_init`,
/// `canister_post_upgrade`, and every method of [`AgentMethod::ALL`], of any kind
/// (`canister_method NAME`: what another canister needs to call it).
pub fn required_exports() -> Vec<String> {
    ["canister_init", "canister_post_upgrade"]
        .into_iter()
        .map(str::to_string)
        .chain(
            AgentMethod::ALL
                .iter()
                .map(|m| format!("canister_method {}", m.name())),
        )
        .collect()
}

/// `health.status` values of an agent that serves: `ok`, or `degraded` (the last call returned
/// an error; informational). Anything else, [`HEALTH_UNHEALTHY`] included, is a failed
/// heartbeat and a failed rehearsal probe.
pub fn is_healthy_status(status: &str) -> bool {
    status == "ok" || status == "degraded"
}

/// How far the agent may upgrade itself without an operator.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Autonomy {
    /// `self_upgrade` is refused; only operator releases go through.
    Manual,
    /// `self_upgrade` proposals stop at `Validated` until an operator approves them.
    ApproveEach,
    /// `self_upgrade` proposals are approved by the gate itself.
    Auto,
}

/// The init argument.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct AgentInit {
    /// Principals that may steer the agent (dfx identities).
    pub operators: Vec<Principal>,
    /// The watchdog canister, if deployed.
    pub watchdog: Option<Principal>,
    /// The staging canister, if deployed.
    pub staging: Option<Principal>,
    /// The starting autonomy level.
    pub autonomy: Autonomy,
    /// Set by the staging canister only: this install is a sandbox that accepts a copy of an
    /// agent's state (`import_state`) and never acts on other canisters.
    pub sandbox: Option<bool>,
    /// The turn loop: the LLM canister, the model, and whether the loop runs (off if absent).
    pub turn_loop: Option<LoopInit>,
}

/// The argument of an upgrade of the agent (absent in a plain `dfx deploy` upgrade).
#[derive(CandidType, Deserialize, Clone, Debug, Default)]
pub struct AgentUpgradeArg {
    /// The journal entry this install carries out; post_upgrade moves it to `Booted`.
    pub upgrade_id: Option<u64>,
}

/// The logical state of the agent: its tasks and facts, independent of the stable-memory
/// schema, so that a digest before an upgrade equals the digest after it.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct StateDigest {
    /// The schema version of stable memory.
    pub schema_version: u32,
    /// Tasks stored.
    pub tasks: u64,
    /// Facts stored.
    pub facts: u64,
    /// SHA-256 over the counts and the sum of the records' hashes, an order-independent hash
    /// of every task and fact in a canonical encoding (`canister_api::digest`).
    pub sha256: Vec<u8>,
    /// Instructions this digest took (the same at any number of records: the agent keeps it
    /// up to date on every write).
    pub instructions: u64,
    /// Transitions recorded in the upgrade journal (all upgrades), for counting what a restore
    /// dropped.
    pub journal_transitions: Option<u64>,
    /// The next audit log sequence number (entries ever written), for the same.
    pub audit_next: Option<u64>,
}

impl StateDigest {
    /// Whether two digests describe the same logical state (instructions aside).
    pub fn same_state(&self, other: &StateDigest) -> bool {
        self.tasks == other.tasks && self.facts == other.facts && self.sha256 == other.sha256
    }

    /// Records in `self` that `after` no longer holds, counted by kind (0 if none is missing).
    pub fn records_missing_in(&self, after: &StateDigest) -> u64 {
        self.tasks.saturating_sub(after.tasks) + self.facts.saturating_sub(after.facts)
    }
}

/// A piece of a stored module: the agent's (`export_module`), or the watchdog's LKG copy
/// (`lkg_chunk`).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ModuleChunk {
    /// The module's total size.
    pub total: u64,
    /// The bytes from the offset asked for (at most 1 MiB).
    pub bytes: serde_bytes::ByteBuf,
}

/// A piece of the agent's stable memory (`export_state`, `import_state`).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StateChunk {
    /// The offset of these bytes.
    pub offset: u64,
    /// Stable memory size in bytes.
    pub total: u64,
    /// The bytes (at most 1 MiB).
    pub bytes: serde_bytes::ByteBuf,
}

/// How an armed upgrade ended, as the watchdog tells the agent (`complete_upgrade`).
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum UpgradeOutcome {
    /// Probation passed: the candidate is the LKG.
    Committed,
    /// The watchdog restored the LKG.
    RolledBack {
        /// Why.
        reason: String,
        /// The watchdog's incident record.
        incident_id: u64,
    },
    /// The candidate never ran (install failed or the arm was abandoned).
    Failed(String),
}

/// A task's lifecycle state.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    /// Submitted, not started.
    Pending,
    /// Being worked on.
    Running,
    /// Finished.
    Done,
    /// Given up.
    Failed,
}

/// A task's priority (stored from schema v2 on; a v1 build reports `Normal`).
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// Later.
    Low,
    /// The default.
    Normal,
    /// Sooner.
    High,
}

/// A task in the queue.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// Its id, assigned in submission order from 1.
    pub id: u64,
    /// What to do.
    pub description: String,
    /// Where it is.
    pub status: TaskStatus,
    /// How soon.
    pub priority: Priority,
    /// Submission time.
    pub created_at: u64,
    /// Last status change.
    pub updated_at: u64,
    /// The model's answer once a turn finished it, or why the turn failed.
    pub answer: Option<String>,
    /// The turn that worked on it last.
    pub turn_id: Option<u64>,
}

/// `submit_task`'s argument.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct SubmitTask {
    /// What to do (1..=4096 bytes).
    pub description: String,
    /// How soon; `Normal` if absent.
    pub priority: Option<Priority>,
}

/// A remembered fact.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    /// Its namespace (`default` unless given).
    pub namespace: String,
    /// Its key within the namespace.
    pub key: String,
    /// The value.
    pub value: String,
}

/// One example of a synthesized tool, run by `tool_examples` on the compiled code and on the
/// interpreter.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ToolExampleRun {
    /// The tool.
    pub tool: String,
    /// The example's index in its spec.
    pub example: u32,
    /// Whether the compiled code gave what the example expects.
    pub passed: bool,
    /// Whether the compiled code and the interpreter gave the same result and writes.
    pub agree: bool,
    /// What went wrong, if anything.
    pub detail: String,
    /// Instructions of the compiled call.
    pub compiled_instructions: u64,
    /// Instructions of the interpreted call.
    pub interpreted_instructions: u64,
}

/// What `tool_examples` answers: every example of every synthesized tool of the module.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ToolExamples {
    /// The synthesized tools, in registry order.
    pub tools: Vec<String>,
    /// Every example's run.
    pub runs: Vec<ToolExampleRun>,
}

impl ToolExamples {
    /// The first run that failed or disagreed, in words.
    pub fn first_failure(&self) -> Option<String> {
        self.runs.iter().find(|r| !r.passed || !r.agree).map(|r| {
            format!(
                "tool `{}` example {}: {}",
                r.tool,
                r.example,
                if r.detail.is_empty() {
                    "the compiled code and the interpreter disagree".into()
                } else {
                    r.detail.clone()
                }
            )
        })
    }
}

/// Where a page of facts starts: the first fact at or after `(namespace, key)` in key order.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct FactCursor {
    /// The namespace.
    pub namespace: String,
    /// The key within it.
    pub key: String,
}

/// A page of `list_facts` (see `canister_api::page`).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FactPage {
    /// Facts in `(namespace, key)` order.
    pub facts: Vec<Fact>,
    /// The `from` of the next page; absent when this page reaches the end.
    pub next_from: Option<FactCursor>,
}

/// A page of `list_tasks` (see `canister_api::page`).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TaskPage {
    /// Tasks in id order.
    pub tasks: Vec<Task>,
    /// The `from` of the next page; absent when this page reaches the end.
    pub next_from: Option<u64>,
}

/// Which Wasm an upload is for.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WasmKind {
    /// The module the agent is running (checked against canister_status' module hash).
    Running,
    /// The watchdog's module, kept for mutual repair.
    Watchdog,
    /// A new release an operator wants to propose.
    Release,
}

/// Where an upload stands.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UploadProgress {
    /// The upload's kind.
    pub kind: WasmKind,
    /// Chunks received.
    pub chunks: u32,
    /// Bytes received.
    pub bytes: u64,
}

/// A committed upload.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CommittedWasm {
    /// The upload's kind.
    pub kind: WasmKind,
    /// SHA-256 of the bytes.
    pub sha256: Vec<u8>,
    /// Length of the bytes.
    pub size: u64,
}

/// `propose_release`'s argument: the committed `Release` upload becomes an upgrade proposal.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct ProposeRelease {
    /// Why (shown in the journal and audit log).
    pub reason: String,
    /// The release changes the Candid interface in a way clients of the running one notice
    /// (its `candid:service` is not a subtype of the running module's), on purpose. Without it
    /// such a release is refused.
    pub breaks_interface: Option<bool>,
}

/// Where a journal entry came from.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeSource {
    /// The `self_upgrade` tool: a patch of the running Wasm.
    SelfPatch,
    /// An operator release uploaded in chunks.
    Release,
}

/// The states of the upgrade journal (DESIGN.md).
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum UpgradeState {
    /// The gate let it in.
    Proposed,
    /// The candidate Wasm exists.
    Patched,
    /// The candidate passed validation.
    Validated,
    /// Staging rehearsed it.
    Rehearsed,
    /// An operator (or the gate, under `Auto`) approved it.
    Approved,
    /// The watchdog armed it.
    Armed,
    /// install_code was issued.
    Installing,
    /// The new module ran post_upgrade.
    Booted,
    /// The watchdog verified it: it is the LKG.
    Committed,
    /// Refused (by an operator or the gate).
    Rejected(String),
    /// A step failed.
    Failed(String),
    /// Undone by the watchdog.
    RolledBack(String),
}

impl UpgradeState {
    /// Whether the upgrade is over (no longer in flight).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            UpgradeState::Committed
                | UpgradeState::Rejected(_)
                | UpgradeState::Failed(_)
                | UpgradeState::RolledBack(_)
        )
    }
}

/// One move of an upgrade.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The state entered.
    pub state: UpgradeState,
    /// When.
    pub at: u64,
    /// Who moved it.
    pub actor: Principal,
    /// Why.
    pub reason: String,
}

/// One entry of the upgrade journal.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct UpgradeRecord {
    /// Its id, from 1.
    pub id: u64,
    /// Self patch or release.
    pub source: UpgradeSource,
    /// The current state.
    pub state: UpgradeState,
    /// SHA-256 of the candidate.
    pub candidate_hash: Vec<u8>,
    /// SHA-256 of the module it replaces (the running module at proposal time).
    pub parent_hash: Option<Vec<u8>>,
    /// The candidate's `agent:version`.
    pub version: String,
    /// Why.
    pub reason: String,
    /// The patch operations (canonical JSON) of a self patch.
    pub patch_json: Option<String>,
    /// The schema range the candidate declares.
    pub schema_range: Option<SchemaRange>,
    /// Who proposed it.
    pub proposed_by: Principal,
    /// When.
    pub created_at: u64,
    /// Who approved it (the gate's own id under `Auto`).
    pub approved_by: Option<Principal>,
    /// Instructions spent on patch + validate + hash.
    pub instructions: u64,
    /// The rehearsal report, once rehearsed.
    pub rehearsal: Option<RehearsalReport>,
    /// Every move, oldest first.
    pub history: Vec<Transition>,
}

/// A page of `upgrade_history` (see `canister_api::page`).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UpgradePage {
    /// Journal entries in id order.
    pub records: Vec<UpgradeRecord>,
    /// The `from` of the next page; absent when this page reaches the end.
    pub next_from: Option<u64>,
}

/// A page of `list_versions` (see `canister_api::page`).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct VersionPage {
    /// Stored versions in hash order.
    pub versions: Vec<VersionInfo>,
    /// The `from` (a module hash) of the next page; absent when this page reaches the end.
    pub next_from: Option<Vec<u8>>,
}

/// One stored module version.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    /// SHA-256 of the module.
    pub hash: Vec<u8>,
    /// Its `agent:version` (or what the operator named it).
    pub version: String,
    /// The parent module's hash (candidates only).
    pub parent_hash: Option<Vec<u8>>,
    /// The journal entry that created it (candidates only).
    pub upgrade_id: Option<u64>,
    /// Why it exists.
    pub reason: String,
    /// When it was stored.
    pub created_at: u64,
    /// Module size in bytes.
    pub size: u64,
    /// Declared schema range, if stamped.
    pub schema_range: Option<SchemaRange>,
    /// Whether it is the running module (as last seen).
    pub is_running: bool,
    /// Whether it is the last-known-good module.
    pub is_lkg: bool,
    /// The outcome of its upgrade, once known (state of its journal entry).
    pub outcome: Option<String>,
}

/// One audit log entry.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Sequence number, from 0, never reused.
    pub seq: u64,
    /// When.
    pub at: u64,
    /// Who.
    pub actor: Principal,
    /// What, e.g. `upgrade.validated`, `config.autonomy`, `wasm.commit`.
    pub action: String,
    /// The upgrade concerned, if any.
    pub upgrade_id: Option<u64>,
    /// Details (the reason, a hash...).
    pub detail: String,
}

/// A page of the audit log.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct AuditPage {
    /// Entries with `from <= seq < to`, oldest first, at most 200 (fewer when they would take
    /// the page past `canister_api::page::PAGE_BYTES`).
    pub entries: Vec<AuditEntry>,
    /// The oldest sequence number still kept (older ones were evicted).
    pub oldest: u64,
    /// The next sequence number to be written.
    pub next: u64,
    /// The `from` of the next page when this one stopped before `to`; absent otherwise.
    pub next_from: Option<u64>,
}

/// Rate limit and cooldown of the gate.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct GateLimits {
    /// Proposals allowed per rolling 24 hours.
    pub max_per_day: u32,
    /// Minimum seconds between two proposals.
    pub cooldown_secs: u64,
}

/// The agent's configuration.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Current autonomy.
    pub autonomy: Autonomy,
    /// Operators.
    pub operators: Vec<Principal>,
    /// The watchdog.
    pub watchdog: Option<Principal>,
    /// The staging canister.
    pub staging: Option<Principal>,
    /// Gate limits.
    pub limits: GateLimits,
    /// When the circuit breaker last dropped autonomy to `Manual`.
    pub breaker_tripped_at: Option<u64>,
    /// How the agent supervises the watchdog (the defaults when absent).
    pub supervision: Option<Supervision>,
    /// Stored versions kept besides the protected ones (running, LKG, previous LKG, the
    /// candidate in flight and its parent, the committed release, the watchdog's module): the
    /// newest are kept, older ones evicted. [`DEFAULT_KEEP_VERSIONS`] when absent.
    pub keep_versions: Option<u32>,
}

/// Versions the agent keeps besides the protected ones unless an operator set `keep_versions`.
pub const DEFAULT_KEEP_VERSIONS: u32 = 3;
/// The most `keep_versions` may be.
pub const MAX_KEEP_VERSIONS: u32 = 20;

/// How the agent heartbeats the watchdog and watches cycles (operators change it with
/// `set_supervision`). The watchdog's own settings for the agent are `WatchdogConfig`.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Supervision {
    /// Seconds between two heartbeats of the watchdog at the fast cadence (an upgrade in
    /// flight, a repair, a missed heartbeat; see `canister_api::cadence`).
    pub heartbeat_interval_secs: u64,
    /// Seconds between two heartbeats at the steady cadence: `heartbeat_interval_secs..=86400`;
    /// equal to `heartbeat_interval_secs` turns it off. Absent: 480 s.
    pub steady_interval_secs: Option<u64>,
    /// Consecutive failed heartbeats after which the agent repairs the watchdog.
    pub failure_threshold: u32,
    /// Seconds a heartbeat waits for the watchdog's `status` (a bounded-wait call).
    pub heartbeat_timeout_secs: u32,
    /// A balance (own or the watchdog's) below this is reported in `health.alerts`.
    pub cycles_floor: u128,
    /// The agent sends no heartbeat while its own balance is below this: its last cycles are
    /// kept for its own work.
    pub cycles_reserve: u128,
}

impl Default for Supervision {
    fn default() -> Self {
        Self {
            heartbeat_interval_secs: 10,
            steady_interval_secs: None,
            failure_threshold: 3,
            heartbeat_timeout_secs: 5,
            cycles_floor: 1_000_000_000_000,
            cycles_reserve: 100_000_000_000,
        }
    }
}

impl Supervision {
    /// The heartbeat settings the cadences and their bounds are computed from.
    pub fn beat(&self) -> crate::cadence::Beat {
        crate::cadence::Beat {
            interval_secs: self.heartbeat_interval_secs,
            steady_secs: self.steady_interval_secs,
            failure_threshold: self.failure_threshold,
            timeout_secs: self.heartbeat_timeout_secs,
        }
    }

    /// The longest time from the watchdog's failure to the start of its repair at the fast
    /// cadence, in seconds: `interval x threshold + timeout`.
    pub fn detection_bound_secs(&self) -> u64 {
        self.beat().fast_bound_secs()
    }

    /// The same at the steady cadence (see `canister_api::cadence`).
    pub fn steady_detection_bound_secs(&self) -> u64 {
        self.beat().steady_bound_secs()
    }

    /// Why these settings are not acceptable, if they are not.
    pub fn check(&self) -> Result<(), String> {
        crate::problems_to_result(crate::heartbeat_problems(
            self.heartbeat_interval_secs,
            self.failure_threshold,
            self.heartbeat_timeout_secs,
            self.cycles_floor,
            self.cycles_reserve,
            &self.beat(),
        ))
    }
}

/// What the agent last saw of the watchdog (its heartbeats of the watchdog).
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct WatchdogView {
    /// When the watchdog last answered `status`.
    pub last_seen: Option<u64>,
    /// Failed heartbeats in a row.
    pub consecutive_failures: u32,
    /// The last failure, if the last heartbeat failed.
    pub last_failure: Option<String>,
    /// The watchdog's cycle balance as it reported it.
    pub cycles: Option<u128>,
    /// Repairs of the watchdog by the agent so far.
    pub repairs: u64,
    /// The cadence the agent heartbeats the watchdog at now (absent in records kept by
    /// builds before the steady cadence).
    pub cadence: Option<crate::cadence::Cadence>,
}

/// A repair of one canister by the other, journaled on both sides: the repairer records it
/// and sends it to the repaired canister (`note_repair`), which records it too.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct RepairNotice {
    /// When the repair was verified.
    pub at: u64,
    /// The canister that repaired.
    pub by: Principal,
    /// The canister repaired.
    pub repaired: Principal,
    /// What was done (`start`, `upgrade`, `reinstall`, `install`, or a ladder rung).
    pub action: String,
    /// Why, and what was verified.
    pub detail: String,
    /// The watchdog's incident, for a restore of the agent.
    pub incident_id: Option<u64>,
    /// The module the repaired canister runs now.
    pub module_hash: Option<Vec<u8>>,
    /// For a restore of the agent: the outcomes the watchdog decided, newest upgrades (at most
    /// `watchdog::store::MAX_DECIDED`, each reason at most 2 KiB), delivered or not. A
    /// snapshot holds the journal of its time: an upgrade that ended after it shows in flight
    /// again, and the agent ends it as it had ended (`end_after_restore`). Absent from
    /// notices of builds before it, and from the agent's notices to the watchdog.
    pub decided: Option<Vec<(u64, UpgradeOutcome)>>,
}

/// `Health::status` of an agent that cannot serve: its stable memory is not at the schema its
/// build reads, or its self-test found a read-only tool that fails. The watchdog counts such a
/// heartbeat as failed.
pub const HEALTH_UNHEALTHY: &str = "unhealthy";

/// `health`: public, cheap, what the watchdog polls.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// `ok`; `degraded` when the last call returned an error (informational); or
    /// [`HEALTH_UNHEALTHY`], which the watchdog counts as a failed heartbeat.
    pub status: String,
    /// The build's version (crate version + schema).
    pub version: String,
    /// The schema version of stable memory.
    pub schema_version: u32,
    /// The schema range this build supports.
    pub schema_range: SchemaRange,
    /// The running module's hash as last verified with canister_status.
    pub running_module_hash: Option<Vec<u8>>,
    /// Cycle balance.
    pub cycles: u128,
    /// Stable memory in bytes.
    pub stable_memory_bytes: u64,
    /// Wasm heap in bytes.
    pub heap_memory_bytes: u64,
    /// Tasks in `Pending`.
    pub pending_tasks: u64,
    /// The last error an endpoint returned.
    pub last_error: Option<String>,
    /// The upgrade in flight, if any.
    pub upgrade_in_flight: Option<u64>,
    /// Current autonomy.
    pub autonomy: Autonomy,
    /// The canister's time.
    pub time: u64,
    /// The compiled build (crate version + schema); `version` is the running module's label.
    pub build: String,
    /// Instructions the last post_upgrade used (absent after a fresh install).
    pub boot_instructions: Option<u64>,
    /// Bytes of module stored in the version store (the candidates, releases, the running
    /// module and the watchdog's module); bounded by `Config::keep_versions`.
    pub version_store_bytes: Option<u64>,
    /// Why state-changing calls are refused right now, if they are.
    pub writes_paused: Option<String>,
    /// Whether this is a sandbox copy of an agent (staging's), not the agent itself.
    pub sandbox_copy: bool,
    /// What operators should look at: low cycles (own or the watchdog's), an unreachable or
    /// unrepairable watchdog. Empty when all is well.
    pub alerts: Vec<String>,
    /// The agent's view of the watchdog.
    pub watchdog: Option<WatchdogView>,
    /// The turn loop: on or off, its survival tier, the turn under way.
    pub turn_loop: Option<LoopHealth>,
    /// The staging canister the agent rehearses its upgrades in. The watchdog keeps it from the
    /// last healthy heartbeat, so that a clean reinstall (the ladder's last rung) with no upgrade
    /// armed gives it back: without it every later upgrade would wait at Validated.
    pub staging: Option<Principal>,
}

/// Per-method metrics (heap only: reset by every upgrade).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MethodMetrics {
    /// The method.
    pub method: String,
    /// Calls since the module started.
    pub calls: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Instructions of all calls.
    pub instructions_total: u64,
    /// Instructions of the last call.
    pub instructions_last: u64,
}

/// Every error an endpoint returns.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// The caller may not call this method.
    #[error("{caller} is not allowed to call `{method}` (allowed: {allowed})")]
    Unauthorized {
        /// Who called.
        caller: Principal,
        /// What.
        method: String,
        /// Who may.
        allowed: String,
    },
    /// An argument is not acceptable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Nothing with that id or key.
    #[error("not found: {0}")]
    NotFound(String),
    /// `call_tool` with a name that is not a tool.
    #[error("unknown tool `{name}`; tools: {known}")]
    UnknownTool {
        /// The name given.
        name: String,
        /// The tools there are.
        known: String,
    },
    /// Another upgrade is in flight.
    #[error("upgrade {id} is in flight; one upgrade at a time")]
    UpgradeInFlight {
        /// The upgrade in flight.
        id: u64,
    },
    /// Too many proposals or too soon after the last.
    #[error("rate limited: {reason}; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the gate opens.
        retry_after_secs: u64,
        /// Rate limit or cooldown.
        reason: String,
    },
    /// The autonomy level forbids the action.
    #[error("autonomy is {autonomy:?}: {reason}")]
    AutonomyForbids {
        /// The level in force.
        autonomy: Autonomy,
        /// What it forbids.
        reason: String,
    },
    /// The upgrade is not in a state that allows the action.
    #[error("upgrade {id} is {state}: {reason}")]
    WrongState {
        /// The upgrade.
        id: u64,
        /// Its state.
        state: String,
        /// What was refused.
        reason: String,
    },
    /// A chunk over the maximum.
    #[error("chunk of {size} bytes exceeds the maximum of {max} bytes")]
    ChunkTooLarge {
        /// Its size.
        size: u64,
        /// The maximum.
        max: u64,
    },
    /// An upload over the maximum.
    #[error("upload would be {size} bytes, over the maximum of {max} bytes")]
    UploadTooLarge {
        /// The size it would have.
        size: u64,
        /// The maximum.
        max: u64,
    },
    /// `commit_wasm` without chunks.
    #[error("no {kind:?} upload in progress")]
    NoUpload {
        /// The kind.
        kind: WasmKind,
    },
    /// A hash that does not match.
    #[error("hash mismatch for {what}: expected {expected}, got {actual}")]
    HashMismatch {
        /// What was compared.
        what: String,
        /// The hash asked for (hex).
        expected: String,
        /// The hash found (hex).
        actual: String,
    },
    /// The patch could not be applied.
    #[error("patch failed: {0}")]
    Patch(String),
    /// The module is not fit to install.
    #[error("validation failed: {0}")]
    Validation(String),
    /// A management canister call failed.
    #[error("management canister call failed: {0}")]
    ManagementCall(String),
    /// State-changing calls are paused while an upgrade is rehearsed or on probation, so a
    /// rollback loses nothing. Retryable.
    #[error("writes are paused for upgrade {upgrade_id} ({reason}); retry in {retry_after_secs} s")]
    WritesPaused {
        /// The upgrade.
        upgrade_id: u64,
        /// What it is doing.
        reason: String,
        /// When to retry.
        retry_after_secs: u64,
    },
    /// Another canister refused or failed a call the agent needed.
    #[error("call to {canister} `{method}` failed: {message}")]
    CallFailed {
        /// The canister called.
        canister: Principal,
        /// The method.
        method: String,
        /// Its reject or error.
        message: String,
    },
    /// A synthesized tool failed while it ran; none of its fact writes were kept.
    #[error("tool `{tool}` failed at {path}: {message} ({code})")]
    ToolFailed {
        /// The tool.
        tool: String,
        /// The fault's code (`overflow`, `fact_quota`, `instruction_budget`, ...).
        code: String,
        /// Where in its spec (a JSON path like `body.do[1]`).
        path: String,
        /// The fault in words.
        message: String,
    },
}
