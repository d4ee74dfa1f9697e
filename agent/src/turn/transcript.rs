//! A turn as a `v1_chat` request within the LLM canister's limits.
//!
//! ```text
//! system  the layered prompt
//! user    the task (and a line on rounds left out)
//! then, per round, oldest first: assistant (text, tool calls) + one tool message per call
//! ```
//!
//! At most [`MAX_MESSAGES`] messages and [`MAX_PROMPT_BYTES`] bytes of prompt: the oldest rounds
//! are left out first (whole: a tool result never comes without the call it answers), then the
//! results of the rounds kept are cut shorter, then the task's text; a turn that still does not
//! fit fails with [`TooLarge`]. A round holds at most `MAX_CALLS_PER_ROUND` calls, so the newest
//! round always fits the message count.

use crate::api::{ToolCallRecord, ToolCallStatus, TurnRecord, TurnRole};
use canister_api::llm::{
    AssistantMessage, ChatMessage, ChatRequest, FunctionCall, MAX_MESSAGES, MAX_PROMPT_BYTES, Tool,
    ToolCall, ToolCallArgument, prompt_bytes,
};
use serde_json::Value;

/// Bytes of a tool result sent at first; [`SHORT_RESULT_BYTES`] when the prompt is too large.
pub const RESULT_BYTES: usize = 768;
/// Bytes of a tool result sent when the prompt must shrink.
pub const SHORT_RESULT_BYTES: usize = 200;
/// Bytes of the task's text sent at first.
pub const TASK_BYTES: usize = 1536;

/// The turn cannot be put in one request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the prompt needs {bytes} bytes even cut down; the LLM canister takes {MAX_PROMPT_BYTES}")]
pub struct TooLarge {
    /// Its size at the least.
    pub bytes: usize,
}

/// What goes into a request.
pub struct Inputs<'a> {
    /// The model.
    pub model: &'a str,
    /// The system prompt.
    pub system: &'a str,
    /// The task's description.
    pub task: &'a str,
    /// The turn so far.
    pub turn: &'a TurnRecord,
    /// The tools offered.
    pub tools: &'a [Tool],
}

/// The text the model gets for a finished call.
pub fn result_text(call: &ToolCallRecord, max: usize) -> String {
    let body = match &call.status {
        ToolCallStatus::Done(json) => json.clone(),
        ToolCallStatus::Failed(why) => format!("error: {why}"),
        ToolCallStatus::Pending | ToolCallStatus::Claimed => "not run".into(),
    };
    let text = match &call.upgrade_outcome {
        Some(outcome) => format!("{outcome}\n(the proposal was: {body})"),
        None => body,
    };
    crate::text::cut(&text, max)
}

/// A stored call's arguments back as the model's name/value pairs.
fn arguments(json: &str) -> Vec<ToolCallArgument> {
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(map)) => map
            .into_iter()
            .map(|(name, v)| ToolCallArgument {
                name,
                value: match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                },
            })
            .collect(),
        _ => vec![ToolCallArgument {
            name: "arguments".into(),
            value: json.to_string(),
        }],
    }
}

/// The messages of each round, oldest first.
fn rounds(turn: &TurnRecord, result_bytes: usize) -> Vec<Vec<ChatMessage>> {
    turn.messages
        .iter()
        .filter(|m| m.role == TurnRole::Assistant)
        .map(|m| {
            let calls: Vec<&ToolCallRecord> = m
                .tool_call_ids
                .iter()
                .filter_map(|id| {
                    turn.tool_calls
                        .iter()
                        .find(|c| c.round == m.round && c.id == *id)
                })
                .collect();
            let mut group = vec![ChatMessage::Assistant(AssistantMessage {
                content: (!m.content.is_empty()).then(|| m.content.clone()),
                tool_calls: calls
                    .iter()
                    .map(|c| ToolCall {
                        id: c.id.clone(),
                        function: FunctionCall {
                            name: c.name.clone(),
                            arguments: arguments(&c.arguments),
                        },
                    })
                    .collect(),
            })];
            group.extend(calls.iter().map(|c| ChatMessage::Tool {
                content: result_text(c, result_bytes),
                tool_call_id: c.id.clone(),
            }));
            group
        })
        .collect()
}

fn request(
    inputs: &Inputs,
    task_bytes: usize,
    rounds: &[Vec<ChatMessage>],
    left_out: usize,
) -> ChatRequest {
    let mut task = format!(
        "Task {}: {}",
        inputs.turn.task_id,
        crate::text::cut(inputs.task, task_bytes)
    );
    if left_out > 0 {
        task.push_str(&format!(
            "\n({left_out} earlier round(s) of this turn are left out for space.)"
        ));
    }
    let mut messages = vec![
        ChatMessage::System {
            content: inputs.system.to_string(),
        },
        ChatMessage::User { content: task },
    ];
    messages.extend(rounds.iter().flatten().cloned());
    ChatRequest {
        model: inputs.model.to_string(),
        messages,
        tools: (!inputs.tools.is_empty()).then(|| inputs.tools.to_vec()),
    }
}

/// The request for the turn's next model call.
pub fn build(inputs: &Inputs) -> Result<ChatRequest, TooLarge> {
    let mut last = None;
    for (result_bytes, task_bytes) in [
        (RESULT_BYTES, TASK_BYTES),
        (SHORT_RESULT_BYTES, TASK_BYTES),
        (SHORT_RESULT_BYTES, 400),
    ] {
        let all = rounds(inputs.turn, result_bytes);
        // The newest rounds that fit the message count (two go to system and task).
        let mut keep = all.len();
        let mut count = 0;
        while keep > 0 && count + all[keep - 1].len() <= MAX_MESSAGES - 2 {
            count += all[keep - 1].len();
            keep -= 1;
        }
        // Then leave out more of the oldest while the prompt is too large (keep the newest).
        loop {
            let req = request(inputs, task_bytes, &all[keep..], keep);
            let bytes = prompt_bytes(&req);
            if bytes <= MAX_PROMPT_BYTES {
                return Ok(req);
            }
            last = Some(bytes);
            if keep + 1 >= all.len() {
                break;
            }
            keep += 1;
        }
    }
    Err(TooLarge {
        bytes: last.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{TurnMessage, TurnState};
    use candid::Principal;

    fn turn(rounds: u32, calls_per_round: u32, result: &str) -> TurnRecord {
        let mut t = TurnRecord {
            id: 1,
            task_id: 7,
            state: TurnState::Model,
            model: "m".into(),
            llm_canister: Principal::anonymous(),
            started_at: 0,
            updated_at: 0,
            finished_at: None,
            rounds,
            messages: vec![TurnMessage {
                role: TurnRole::User,
                content: "task".into(),
                tool_call_ids: vec![],
                round: 0,
                at: 0,
            }],
            tool_calls: vec![],
            events: vec![],
            answer: None,
            model_calls: 0,
            model_failures: 0,
            invalid_calls: 0,
            instructions: 0,
            model_cycles: 0,
            prompt_bytes_max: 0,
            started_module: None,
        };
        for r in 1..=rounds {
            let ids: Vec<String> = (0..calls_per_round).map(|c| format!("{r}-{c}")).collect();
            for id in &ids {
                t.tool_calls.push(ToolCallRecord {
                    id: id.clone(),
                    round: r,
                    name: "recall".into(),
                    arguments: r#"{"key":"k"}"#.into(),
                    status: ToolCallStatus::Done(result.into()),
                    at: 0,
                    finished_at: Some(0),
                    upgrade_id: None,
                    upgrade_outcome: None,
                });
            }
            t.messages.push(TurnMessage {
                role: TurnRole::Assistant,
                content: String::new(),
                tool_call_ids: ids,
                round: r,
                at: 0,
            });
        }
        t
    }

    fn build_for(t: &TurnRecord, system: &str) -> Result<ChatRequest, TooLarge> {
        build(&Inputs {
            model: "m",
            system,
            task: "learn to greet people",
            turn: t,
            tools: &[],
        })
    }

    #[test]
    fn a_short_turn_is_sent_whole_in_order() {
        let t = turn(1, 2, r#"{"value":"v"}"#);
        let req = build_for(&t, "sys").unwrap();
        let roles: Vec<&str> = req
            .messages
            .iter()
            .map(|m| match m {
                ChatMessage::System { .. } => "system",
                ChatMessage::User { .. } => "user",
                ChatMessage::Assistant(_) => "assistant",
                ChatMessage::Tool { .. } => "tool",
            })
            .collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool", "tool"]);
        let ChatMessage::User { content } = &req.messages[1] else {
            unreachable!()
        };
        assert_eq!(content, "Task 7: learn to greet people");
        let ChatMessage::Assistant(a) = &req.messages[2] else {
            unreachable!()
        };
        assert_eq!(a.tool_calls[0].function.arguments[0].value, "k");
    }

    #[test]
    fn old_rounds_are_left_out_whole_to_stay_within_ten_messages() {
        let t = turn(8, 3, "ok");
        let req = build_for(&t, "sys").unwrap();
        assert!(req.messages.len() <= MAX_MESSAGES, "{}", req.messages.len());
        assert_eq!(req.messages.len(), 2 + 8, "two rounds of 1 + 3 messages");
        let ChatMessage::User { content } = &req.messages[1] else {
            unreachable!()
        };
        assert!(content.contains("6 earlier round(s)"), "{content}");
        // The first kept message after the task is an assistant message, never a tool result.
        assert!(matches!(req.messages[2], ChatMessage::Assistant(_)));
    }

    #[test]
    fn big_results_are_cut_and_old_rounds_dropped_to_stay_within_10_kib() {
        let t = turn(4, 2, &"r".repeat(5000));
        let req = build_for(&t, &"s".repeat(4000)).unwrap();
        assert!(
            prompt_bytes(&req) <= MAX_PROMPT_BYTES,
            "{}",
            prompt_bytes(&req)
        );
        assert!(req.messages.len() >= 5, "the newest round is kept");
    }

    #[test]
    fn a_turn_that_cannot_fit_is_an_error() {
        let t = turn(1, 1, "ok");
        let e = build_for(&t, &"s".repeat(MAX_PROMPT_BYTES)).unwrap_err();
        assert!(e.bytes > MAX_PROMPT_BYTES);
    }
}
