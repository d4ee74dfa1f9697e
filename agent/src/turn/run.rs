//! The one run of a claimed tool call: `run_tool_call`, which the driver calls on the agent
//! itself. The tool runs and its result is recorded in this message, atomically: a trap
//! leaves the call claimed with no effect, and the driver, seeing the reject, fails the call
//! instead of running it again.

use super::log;
use crate::api::{AgentError, ToolCallStatus};
use crate::{audit, tools, writes};
use canister_api::cdk::now;

/// Runs call `index` of turn `turn_id`, which the driver claimed. Refused while writes are
/// paused (the driver runs it later) and for a call that is not claimed.
pub async fn run_tool_call(turn_id: u64, index: u32) -> Result<(), AgentError> {
    writes::check()?;
    let turn = log::get(turn_id).ok_or_else(|| AgentError::NotFound(format!("turn {turn_id}")))?;
    let i = index as usize;
    let call = turn
        .tool_calls
        .get(i)
        .cloned()
        .ok_or_else(|| AgentError::NotFound(format!("tool call {index} of turn {turn_id}")))?;
    if call.status != ToolCallStatus::Claimed {
        return Err(AgentError::InvalidArgument(format!(
            "tool call {index} of turn {turn_id} is {:?}, not claimed: a call runs at most once",
            call.status
        )));
    }
    let me = ic_cdk::api::canister_self();
    let result = tools::call_async(me, &call.name, &call.arguments).await;
    // `call_own_method` awaits and changes nothing; `self_upgrade` awaits canister_status
    // before it changes anything, and its proposal is refused by the gate while another
    // upgrade (the only cause of a write pause) is in flight. So if the world moved meanwhile,
    // nothing happened and the driver runs the call again later.
    writes::check()?;
    let mut turn =
        log::get(turn_id).ok_or_else(|| AgentError::NotFound(format!("turn {turn_id}")))?;
    let Some(call) = turn
        .tool_calls
        .get_mut(i)
        .filter(|c| c.status == ToolCallStatus::Claimed)
    else {
        return Err(AgentError::InvalidArgument(format!(
            "tool call {index} of turn {turn_id} changed while it ran"
        )));
    };
    let at = now();
    let summary = match result {
        Ok(json) => {
            if call.name == "self_upgrade" {
                call.upgrade_id = serde_json::from_str::<serde_json::Value>(&json)
                    .ok()
                    .and_then(|v| v["id"].as_u64());
            }
            let summary = match call.upgrade_id {
                Some(id) => format!("self_upgrade proposed upgrade {id}"),
                None => format!("{}: ok", call.name),
            };
            call.status = ToolCallStatus::Done(crate::text::cut(&json, log::MAX_RESULT_BYTES));
            summary
        }
        Err(e) => {
            let why = e.to_string();
            if call.name == "self_upgrade" {
                audit::append(
                    at,
                    me,
                    "turn.upgrade_refused",
                    None,
                    crate::text::cut(&format!("turn {turn_id}: {why}"), 300),
                );
            }
            call.status = ToolCallStatus::Failed(crate::text::cut(&why, log::MAX_RESULT_BYTES));
            format!("{} refused: {why}", call.name)
        }
    };
    call.finished_at = Some(at);
    call.arguments = crate::text::cut(&call.arguments, log::MAX_KEPT_ARGUMENT_BYTES);
    log::event(&mut turn, at, summary);
    turn.instructions += ic_cdk::api::performance_counter(0);
    log::put(turn);
    Ok(())
}
