//! Service: the turn loop. A timer takes the next pending task (priority, then age) and works
//! on it with the model in a **turn**, a state machine in stable memory:
//!
//! ```text
//! task pending --start--> Model --answer with tool calls--> Tools --all ran--> Model ...
//!                           |                                  |
//!                           | answer without tool calls        | a self_upgrade was proposed
//!                           v                                  v
//!                         Done (task Done, answer)          AwaitingUpgrade --the upgrade ended-->
//!                                                           Model (the model is told the outcome)
//! any step: Failed(reason) (task Failed, reason): rounds used up, the model unreachable three
//! times, garbage from the model, a task that tries to override an immutable prompt layer, the
//! task cancelled by an operator.
//! ```
//!
//! - Each step is its own message ([`driver`]); a step never writes while writes are paused
//!   for an upgrade (the state must stand still for staging's copy and the watchdog's
//!   snapshot): a model answer that arrives then is held on the heap and written after.
//! - A tool call runs at most once ([`run`]): the driver claims it, then runs it through a call
//!   to the agent itself; a claimed call whose run left no result (a trap, an upgrade) is not
//!   run again, and the model is told.
//! - A turn whose self_upgrade installs new code resumes in the new module after the verdict
//!   (timers are re-armed in post_upgrade) and tells the model the outcome.
//! - The request is built within the LLM canister's limits ([`transcript`]); the tools are
//!   offered in its format ([`model_tools`]); the system prompt is layered (`crate::prompt`);
//!   cycles decide the pace (`crate::survival`).
//! - [`settings`]: the loop's stored settings (the repository `crate::loop_state`, outside this
//!   module so that the pipeline reads the restore argument without depending on the loop);
//!   [`log`]: the turn log.

pub mod driver;
pub mod log;
pub mod model_tools;
pub mod run;
pub use crate::loop_state as settings;
pub mod transcript;

use crate::api::{
    AgentError, LlmSettings, LoopHealth, LoopStatus, PromptLayer, SurvivalSettings, SurvivalTier,
    UpgradeRecord, UpgradeState,
};
use crate::{audit, digest, journal, prompt, survival, tools, upgrade};
use candid::Principal;
use canister_api::cdk::now;

pub use driver::{poke, start};

/// Tool calls one model answer may ask for (more is garbage: the turn fails).
pub const MAX_CALLS_PER_ROUND: usize = 4;
/// Tool calls one turn may make in all.
pub const MAX_CALLS_PER_TURN: usize = 24;
/// Invalid tool calls (unknown tool, bad arguments) after which the turn fails.
pub const MAX_INVALID_CALLS: u32 = 3;
/// Failed model calls after which the turn fails.
pub const MAX_MODEL_FAILURES: u32 = 3;
/// Longest a turn waits for its upgrade to end (an operator's approval under ApproveEach).
pub const UPGRADE_WAIT_SECS: u64 = 24 * 3600;

/// How an upgrade ended, as the model is told.
pub fn describe_outcome(rec: &UpgradeRecord) -> String {
    let id = rec.id;
    match &rec.state {
        UpgradeState::Committed => {
            let learned = upgrade::own_methods();
            format!(
                "upgrade {id} Committed: it was rehearsed, installed and passed probation; you \
                 now run version {} (module {}). Your own query methods, callable with \
                 call_own_method: {}.",
                rec.version,
                hex::encode(&rec.candidate_hash[..rec.candidate_hash.len().min(6)]),
                if learned.is_empty() {
                    "none".into()
                } else {
                    learned.join(", ")
                }
            )
        }
        UpgradeState::RolledBack(why) => {
            format!("upgrade {id} RolledBack: {why}. The watchdog restored your previous version.")
        }
        UpgradeState::Failed(why) => {
            format!("upgrade {id} Failed: {why}. Your code did not change.")
        }
        UpgradeState::Rejected(why) => {
            format!("upgrade {id} Rejected: {why}. Your code did not change.")
        }
        other => format!("upgrade {id} is {}", journal::state_name(other)),
    }
}

/// How the last upgrade went, for the dynamic prompt layer.
pub fn last_upgrade() -> Option<String> {
    journal::latest().map(|r| {
        crate::text::cut(
            &format!(
                "{} ({})",
                journal::state_name(&r.state),
                r.reason.lines().next().unwrap_or_default()
            ),
            160,
        )
    })
}

/// Every prompt layer, the dynamic one as of now.
pub fn prompt_layers() -> Vec<PromptLayer> {
    let s = settings::get();
    let tools: Vec<String> = tools::NAMES.iter().map(|n| n.to_string()).collect();
    let dynamic = prompt::dynamic_layer(&prompt::Now {
        cycles: ic_cdk::api::canister_cycle_balance(),
        tier: survival::current(&s.survival),
        pending_tasks: digest::pending(),
        tools: &tools,
        own_methods: &upgrade::own_methods(),
        last_upgrade: last_upgrade(),
    });
    prompt::layers(&s.layers, dynamic)
}

/// `loop_status`.
pub fn status() -> LoopStatus {
    let s = settings::get();
    let (llm_canister, source) = crate::llm::resolve(&s.llm);
    LoopStatus {
        enabled: s.enabled,
        llm_canister,
        llm_canister_source: source,
        tier: survival::current(&s.survival),
        active_turn: s.active,
        backoff_until: s.backoff_until.filter(|t| *t > now()),
        prompt_layers: prompt_layers(),
        turns_kept: log::count(),
        last_failure: s.last_failure.clone(),
        llm: s.llm,
        survival: s.survival,
    }
}

/// The loop as `health` reports it.
pub fn health() -> LoopHealth {
    let s = settings::get();
    LoopHealth {
        enabled: s.enabled,
        tier: survival::current(&s.survival),
        active_turn: s.active,
        last_failure: s.last_failure,
    }
}

/// What `health.alerts` says of the loop's tier.
pub fn alert() -> Option<String> {
    let s = settings::get();
    let balance = ic_cdk::api::canister_cycle_balance();
    match survival::tier(balance, &s.survival) {
        SurvivalTier::Normal => None,
        SurvivalTier::Low => Some(format!(
            "turn loop: {balance} cycles, under slow_below {}: the loop runs {} times slower",
            s.survival.slow_below, s.survival.slow_factor
        )),
        SurvivalTier::Critical => Some(format!(
            "turn loop: {balance} cycles, under stop_below {}: the loop does not call the model",
            s.survival.stop_below
        )),
    }
}

/// `set_loop_enabled`.
pub fn set_enabled(caller: Principal, enabled: bool) -> LoopStatus {
    settings::update(|s| s.enabled = enabled);
    audit::append(now(), caller, "loop.enabled", None, format!("{enabled}"));
    if enabled {
        start();
    }
    status()
}

/// `set_llm`.
pub fn set_llm(caller: Principal, llm: LlmSettings) -> Result<LoopStatus, AgentError> {
    llm.check().map_err(AgentError::InvalidArgument)?;
    settings::update(|s| {
        s.llm = llm.clone();
        s.backoff_until = None;
    });
    audit::append(now(), caller, "loop.llm", None, format!("{llm:?}"));
    start();
    Ok(status())
}

/// `set_survival`.
pub fn set_survival(
    caller: Principal,
    survival: SurvivalSettings,
) -> Result<LoopStatus, AgentError> {
    survival.check().map_err(AgentError::InvalidArgument)?;
    settings::update(|s| s.survival = survival);
    audit::append(
        now(),
        caller,
        "loop.survival",
        None,
        format!("{survival:?}"),
    );
    start();
    Ok(status())
}

/// `set_prompt_layer`: sets (or, with `None`, removes) an operator layer. A refusal is
/// audited (`prompt.refused`).
pub fn set_prompt_layer(
    caller: Principal,
    name: String,
    content: Option<String>,
) -> Result<Vec<PromptLayer>, AgentError> {
    let existing = settings::get().layers;
    match content {
        None => {
            if !existing.iter().any(|(n, _)| *n == name) {
                return Err(AgentError::NotFound(format!("prompt layer `{name}`")));
            }
            settings::update(|s| s.layers.retain(|(n, _)| *n != name));
            audit::append(now(), caller, "prompt.removed", None, name);
        }
        Some(content) => {
            if let Err(e) = prompt::check_layer(&existing, &name, &content) {
                audit::append(
                    now(),
                    caller,
                    "prompt.refused",
                    None,
                    format!("layer `{name}`: {e}"),
                );
                return Err(AgentError::InvalidArgument(e.to_string()));
            }
            settings::update(|s| match s.layers.iter_mut().find(|(n, _)| *n == name) {
                Some(layer) => layer.1 = content.clone(),
                None => s.layers.push((name.clone(), content.clone())),
            });
            audit::append(
                now(),
                caller,
                "prompt.set",
                None,
                format!("layer `{name}`: {} bytes", content.len()),
            );
        }
    }
    Ok(prompt_layers())
}
