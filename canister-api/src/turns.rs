//! The agent's turn loop as its interface shows it: settings, status, and the turn log.
//! Re-exported by [`crate::agent`]; `agent/agent.did` names every type here.

use candid::{CandidType, Deserialize, Principal};
use serde::Serialize;

/// The turn loop's settings at install (`AgentInit.turn_loop`).
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct LoopInit {
    /// The LLM canister; absent: the `PUBLIC_CANISTER_ID:llm` environment variable, else the
    /// mainnet LLM canister.
    pub llm_canister: Option<Principal>,
    /// The model (`qwen3:32b` if absent).
    pub model: Option<String>,
    /// Whether the loop runs (off if absent: an operator turns it on with `set_loop_enabled`).
    pub enabled: Option<bool>,
}

/// How the agent talks to the model (`set_llm`).
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct LlmSettings {
    /// The LLM canister; absent: the `PUBLIC_CANISTER_ID:llm` environment variable, else the
    /// mainnet LLM canister.
    pub canister: Option<Principal>,
    /// The model, e.g. `qwen3:32b` (1..=64 bytes).
    pub model: String,
    /// Seconds a `v1_chat` call may take (a bounded-wait call): 1..=240, under the 300 s in
    /// which the IC times out a stop, so an upgrade never waits on the model.
    pub timeout_secs: u32,
    /// Rounds (model answers) a turn may take before it fails: 1..=20.
    pub max_rounds: u32,
    /// Seconds between two looks at the task queue when idle: 1..=3600.
    pub interval_secs: u64,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            canister: None,
            model: crate::llm::DEFAULT_MODEL.into(),
            timeout_secs: 120,
            max_rounds: 8,
            interval_secs: 30,
        }
    }
}

impl LlmSettings {
    /// Why these settings are not acceptable, if they are not.
    pub fn check(&self) -> Result<(), String> {
        let mut problems = vec![];
        if self.model.trim().is_empty() || self.model.len() > 64 {
            problems.push("model must be 1..=64 bytes");
        }
        if !(1..=240).contains(&self.timeout_secs) {
            problems.push("timeout_secs must be 1..=240");
        }
        if !(1..=20).contains(&self.max_rounds) {
            problems.push("max_rounds must be 1..=20");
        }
        if !(1..=3600).contains(&self.interval_secs) {
            problems.push("interval_secs must be 1..=3600");
        }
        crate::problems_to_result(problems)
    }
}

/// Cycle thresholds of the survival tiers (`set_survival`).
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SurvivalSettings {
    /// Below this balance the loop slows down (`Low`).
    pub slow_below: u128,
    /// Below this balance the loop stops calling the model (`Critical`). A call is also not
    /// made when the cycles it attaches would take the balance under this.
    pub stop_below: u128,
    /// In `Low`, the loop waits this many times longer between steps: 2..=100.
    pub slow_factor: u32,
}

impl Default for SurvivalSettings {
    fn default() -> Self {
        Self {
            slow_below: 5_000_000_000_000,
            stop_below: 1_000_000_000_000,
            slow_factor: 6,
        }
    }
}

impl SurvivalSettings {
    /// Why these thresholds are not acceptable, if they are not.
    pub fn check(&self) -> Result<(), String> {
        let mut problems = vec![];
        if self.stop_below > self.slow_below {
            problems.push("stop_below must not exceed slow_below");
        }
        if !(2..=100).contains(&self.slow_factor) {
            problems.push("slow_factor must be 2..=100");
        }
        crate::problems_to_result(problems)
    }
}

/// The survival tier of the agent's cycle balance.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SurvivalTier {
    /// Enough cycles: the loop runs at its interval.
    Normal,
    /// Under `slow_below`: the loop runs `slow_factor` times slower.
    Low,
    /// Under `stop_below`: the loop does not call the model.
    Critical,
}

/// Where a prompt layer comes from.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// Built into the agent's code; no call can change it.
    Immutable,
    /// Set by an operator (`set_prompt_layer`).
    Operator,
    /// Written per turn (cycles, pending tasks, tools, the last upgrade).
    Dynamic,
}

/// One layer of the system prompt, in the order the model reads them.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct PromptLayer {
    /// Its name.
    pub name: String,
    /// Where it comes from.
    pub kind: LayerKind,
    /// Its text (the dynamic layer as of now).
    pub content: String,
}

/// `loop_status`: the turn loop as it stands.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct LoopStatus {
    /// Whether the loop runs.
    pub enabled: bool,
    /// The LLM settings.
    pub llm: LlmSettings,
    /// The LLM canister the loop calls.
    pub llm_canister: Principal,
    /// Where that id comes from: `settings`, `env PUBLIC_CANISTER_ID:llm` or `mainnet`.
    pub llm_canister_source: String,
    /// The survival thresholds.
    pub survival: SurvivalSettings,
    /// The tier of the balance now.
    pub tier: SurvivalTier,
    /// The turn under way.
    pub active_turn: Option<u64>,
    /// After the model could not be reached, no model call before this time.
    pub backoff_until: Option<u64>,
    /// The layers of the system prompt.
    pub prompt_layers: Vec<PromptLayer>,
    /// Turns in the log.
    pub turns_kept: u64,
    /// The last turn that failed, and why.
    pub last_failure: Option<String>,
}

/// The loop as `health` reports it.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LoopHealth {
    /// Whether the loop runs.
    pub enabled: bool,
    /// The survival tier.
    pub tier: SurvivalTier,
    /// The turn under way.
    pub active_turn: Option<u64>,
    /// The last turn that failed, and why.
    pub last_failure: Option<String>,
}

/// Where a turn stands.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum TurnState {
    /// Next: ask the model.
    Model,
    /// Next: run the tool calls of the model's last answer.
    Tools,
    /// A self_upgrade of this turn is in flight; the turn resumes when it ends.
    AwaitingUpgrade {
        /// The upgrade.
        upgrade_id: u64,
        /// Since when.
        since: u64,
    },
    /// The model answered; the task is done.
    Done,
    /// The turn failed; the task failed with this reason.
    Failed(String),
}

impl TurnState {
    /// Whether the turn is over.
    pub fn is_finished(&self) -> bool {
        matches!(self, TurnState::Done | TurnState::Failed(_))
    }
}

/// Where a tool call stands. A call runs at most once: it is claimed in one message and run in
/// another; a claimed call whose run left no result (a trap, an upgrade) is not run again.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum ToolCallStatus {
    /// Not started.
    Pending,
    /// Claimed for its one run.
    Claimed,
    /// It ran; its JSON result.
    Done(String),
    /// It was refused, failed, or was interrupted; why.
    Failed(String),
}

/// One tool call of the model.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ToolCallRecord {
    /// The model's id of the call.
    pub id: String,
    /// The round of the model's answer that asked for it.
    pub round: u32,
    /// The tool.
    pub name: String,
    /// The arguments, as JSON.
    pub arguments: String,
    /// Where it stands.
    pub status: ToolCallStatus,
    /// When the model asked for it.
    pub at: u64,
    /// When it ended.
    pub finished_at: Option<u64>,
    /// The upgrade a successful `self_upgrade` proposed.
    pub upgrade_id: Option<u64>,
    /// How that upgrade ended, once it did (what the model is told).
    pub upgrade_outcome: Option<String>,
}

/// Who wrote a message of the transcript.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnRole {
    /// The task, as the agent put it to the model.
    User,
    /// The model.
    Assistant,
}

/// A message of a turn's transcript. Tool results are the tool calls' records.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct TurnMessage {
    /// Who wrote it.
    pub role: TurnRole,
    /// Its text (cut to a bound).
    pub content: String,
    /// The ids of the tool calls it asked for.
    pub tool_call_ids: Vec<String>,
    /// The round (model answer) it belongs to.
    pub round: u32,
    /// When.
    pub at: u64,
}

/// A line of a turn's own log.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct TurnEvent {
    /// When.
    pub at: u64,
    /// What happened.
    pub what: String,
}

/// One turn: a task worked on with the model.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct TurnRecord {
    /// Its id, from 1.
    pub id: u64,
    /// The task.
    pub task_id: u64,
    /// Where it stands.
    pub state: TurnState,
    /// The model asked.
    pub model: String,
    /// The LLM canister asked.
    pub llm_canister: Principal,
    /// When it started.
    pub started_at: u64,
    /// When it last changed.
    pub updated_at: u64,
    /// When it ended.
    pub finished_at: Option<u64>,
    /// Model answers so far.
    pub rounds: u32,
    /// The transcript.
    pub messages: Vec<TurnMessage>,
    /// Every tool call, in order.
    pub tool_calls: Vec<ToolCallRecord>,
    /// What happened, in order (bounded).
    pub events: Vec<TurnEvent>,
    /// The model's final answer.
    pub answer: Option<String>,
    /// `v1_chat` calls made.
    pub model_calls: u32,
    /// `v1_chat` calls that failed (rejects, timeouts, undecodable answers).
    pub model_failures: u32,
    /// Tool calls the model got wrong (unknown tool, bad arguments).
    pub invalid_calls: u32,
    /// Instructions the agent spent on this turn (its own executions; not the model's).
    pub instructions: u64,
    /// Cycles the LLM canister kept of those attached (the model's price).
    pub model_cycles: u128,
    /// The largest prompt sent, in bytes.
    pub prompt_bytes_max: u64,
    /// The module the agent ran when the turn started.
    pub started_module: Option<Vec<u8>>,
}

/// A page of the turn log (`turns`).
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct TurnPage {
    /// Turns with `id >= from`, oldest first.
    pub turns: Vec<TurnRecord>,
    /// The oldest turn id still kept (older ones were pruned).
    pub oldest: u64,
    /// The id the next turn gets.
    pub next: u64,
}
