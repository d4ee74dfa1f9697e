//! The IC's LLM canister interface (`v1_chat`) and the stand-in's script types.
//!
//! The `v1_chat` types are the candid the LLM canister speaks, as the `ic-llm` crate 2.0 (from
//! the dfinity/llm repository) defines them; a test of the agent checks that they are
//! candid-equal to that crate's types. They live here, not in `ic-llm`, because that crate does
//! not export `ToolCallArgument` or its request type, so an agent could not send a tool call back
//! to the model in the history (and its `send` traps on a failed call).
//!
//! The agent and `llm-standin` (a test double that replays scripts on ic-sim) both speak them;
//! the agent's code does not know which of the two it talks to.

use candid::{CandidType, Deserialize, Principal};
use serde::Serialize;

/// The LLM canister on mainnet.
pub const MAINNET_LLM_CANISTER: &str = "w36hm-eqaaa-aaaal-qr76a-cai";
/// The canister environment variable `icp deploy` sets to the local LLM canister's id.
pub const LLM_CANISTER_ENV: &str = "PUBLIC_CANISTER_ID:llm";
/// The model a fresh agent asks (free on the LLM canister).
pub const DEFAULT_MODEL: &str = "qwen3:32b";
/// Most messages the LLM canister takes in one request.
pub const MAX_MESSAGES: usize = 10;
/// Most bytes of prompt the LLM canister takes in one request (see [`prompt_bytes`]).
pub const MAX_PROMPT_BYTES: usize = 10 * 1024;
/// Most tokens the LLM canister produces in one answer.
pub const MAX_OUTPUT_TOKENS: u32 = 1_000;
/// Cycles attached to each `v1_chat` call: paid models need at least this much and refund the
/// rest; free models refund all of it.
pub const CYCLES_PER_CALL: u128 = 100_000_000_000;

/// A message of a chat.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum ChatMessage {
    /// What the user says.
    #[serde(rename = "user")]
    User {
        /// The text.
        content: String,
    },
    /// Instructions to the model.
    #[serde(rename = "system")]
    System {
        /// The text.
        content: String,
    },
    /// What the model said before.
    #[serde(rename = "assistant")]
    Assistant(AssistantMessage),
    /// The result of a tool call the model asked for.
    #[serde(rename = "tool")]
    Tool {
        /// The result.
        content: String,
        /// The call's id, as the model gave it.
        tool_call_id: String,
    },
}

/// The model's answer: text, tool calls, or both.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AssistantMessage {
    /// The text, if any.
    pub content: Option<String>,
    /// Tools the model wants called.
    pub tool_calls: Vec<ToolCall>,
}

/// One tool call the model asks for.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ToolCall {
    /// Its id (the result refers to it).
    pub id: String,
    /// The tool and its arguments.
    pub function: FunctionCall,
}

/// A tool and its arguments.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FunctionCall {
    /// The tool.
    pub name: String,
    /// Its arguments, each a name and a value in text.
    pub arguments: Vec<ToolCallArgument>,
}

/// One argument of a tool call.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ToolCallArgument {
    /// The parameter.
    pub name: String,
    /// Its value, in text.
    pub value: String,
}

/// A tool the model may call.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Tool {
    /// A function.
    #[serde(rename = "function")]
    Function(Function),
}

/// A function's description.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// Its parameters.
    pub parameters: Option<Parameters>,
}

/// A function's parameters (a JSON-schema object).
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Parameters {
    /// Always `object`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The parameters.
    pub properties: Option<Vec<Property>>,
    /// The names of the required ones.
    pub required: Option<Vec<String>>,
}

/// One parameter.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Property {
    /// `string`, `number` or `boolean`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Its name.
    pub name: String,
    /// What it means.
    pub description: Option<String>,
    /// The values allowed, if enumerated.
    #[serde(rename = "enum")]
    pub enum_: Option<Vec<String>>,
}

/// `v1_chat`'s argument.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ChatRequest {
    /// The model, e.g. `qwen3:32b`.
    pub model: String,
    /// The conversation, system prompt first.
    pub messages: Vec<ChatMessage>,
    /// The tools offered.
    pub tools: Option<Vec<Tool>>,
}

/// `v1_chat`'s answer.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ChatResponse {
    /// The model's message.
    pub message: AssistantMessage,
}

impl ChatRequest {
    /// The names of the tools offered.
    pub fn tool_names(&self) -> Vec<String> {
        self.tools
            .iter()
            .flatten()
            .map(|Tool::Function(f)| f.name.clone())
            .collect()
    }
}

/// The bytes of prompt a request carries, as the agent budgets them and the stand-in enforces
/// [`MAX_PROMPT_BYTES`]: every message's text (and a tool call's name and argument values), and
/// every offered tool's name, description and parameter texts.
pub fn prompt_bytes(request: &ChatRequest) -> usize {
    let messages: usize = request
        .messages
        .iter()
        .map(|m| match m {
            ChatMessage::User { content } | ChatMessage::System { content } => content.len(),
            ChatMessage::Tool {
                content,
                tool_call_id,
            } => content.len() + tool_call_id.len(),
            ChatMessage::Assistant(a) => {
                a.content.as_ref().map_or(0, String::len)
                    + a.tool_calls
                        .iter()
                        .map(|c| {
                            c.id.len()
                                + c.function.name.len()
                                + c.function
                                    .arguments
                                    .iter()
                                    .map(|a| a.name.len() + a.value.len())
                                    .sum::<usize>()
                        })
                        .sum::<usize>()
            }
        })
        .sum();
    let tools: usize = request
        .tools
        .iter()
        .flatten()
        .map(|Tool::Function(f)| {
            f.name.len()
                + f.description.as_ref().map_or(0, String::len)
                + f.parameters.as_ref().map_or(0, |p| {
                    p.properties.iter().flatten().map(property_bytes).sum()
                })
        })
        .sum();
    messages + tools
}

fn property_bytes(p: &Property) -> usize {
    p.name.len()
        + p.type_.len()
        + p.description.as_ref().map_or(0, String::len)
        + p.enum_.iter().flatten().map(String::len).sum::<usize>()
}

// ---- the stand-in ------------------------------------------------------------------------------

/// The stand-in's init argument.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct StandinInit {
    /// Principals that may load and clear scripts.
    pub operators: Vec<Principal>,
}

/// A script: steps the stand-in answers requests with.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Script {
    /// Its name (shown in the request log and in rejects).
    pub name: String,
    /// Its steps. A request is answered by the first step, in the order scripts were loaded
    /// and steps listed, that still has uses left and whose matcher matches.
    pub steps: Vec<ScriptStep>,
}

/// One expected request and its answer.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ScriptStep {
    /// What the request must look like.
    pub expect: Expect,
    /// The answer.
    pub reply: Reply,
    /// How many requests it answers: 1 if absent, without limit if 0.
    pub times: Option<u32>,
    /// Cycles it accepts of those attached, like a paid model (none if absent).
    pub charge: Option<u128>,
}

/// A matcher on a request; every field given must hold.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Expect {
    /// The model asked for.
    pub model: Option<String>,
    /// The last message's role: `user`, `assistant`, `tool` or `system`.
    pub last_role: Option<String>,
    /// A text the last message contains.
    pub last_contains: Option<String>,
    /// A text the system prompt (the first system message) contains.
    pub system_contains: Option<String>,
    /// Tools that must be offered.
    pub tools_include: Vec<String>,
}

/// What a step answers.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Reply {
    /// A `v1_chat` answer.
    Message(AssistantMessage),
    /// A reject with this message (as the real canister rejects a request it cannot serve).
    Reject(String),
}

/// One request the stand-in received (its log is bounded: [`STANDIN_LOG`]).
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StandinRequest {
    /// Sequence number, from 0.
    pub seq: u64,
    /// When.
    pub at: u64,
    /// Who called.
    pub caller: Principal,
    /// The request.
    pub request: ChatRequest,
    /// Its [`prompt_bytes`].
    pub prompt_bytes: u64,
    /// Cycles attached to it.
    pub cycles_attached: u128,
    /// `script NAME step N` that answered it, or why it was rejected.
    pub outcome: String,
}

/// Requests the stand-in keeps in its log.
pub const STANDIN_LOG: usize = 200;

/// How far a script has been used.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ScriptProgress {
    /// The script.
    pub name: String,
    /// Uses left per step (`None`: without limit).
    pub left: Vec<Option<u32>>,
}

/// Why the stand-in refused an operator call.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StandinError {
    /// Not an operator.
    #[error("{caller} is not an operator of the stand-in")]
    Unauthorized {
        /// Who called.
        caller: Principal,
    },
    /// The script is not acceptable.
    #[error("invalid script: {0}")]
    InvalidScript(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_bytes_count_texts_of_messages_and_tools() {
        let request = ChatRequest {
            model: "m".into(),
            messages: vec![
                ChatMessage::System {
                    content: "abc".into(),
                },
                ChatMessage::Assistant(AssistantMessage {
                    content: None,
                    tool_calls: vec![ToolCall {
                        id: "1".into(),
                        function: FunctionCall {
                            name: "t".into(),
                            arguments: vec![ToolCallArgument {
                                name: "k".into(),
                                value: "vv".into(),
                            }],
                        },
                    }],
                }),
                ChatMessage::Tool {
                    content: "ok".into(),
                    tool_call_id: "1".into(),
                },
            ],
            tools: Some(vec![Tool::Function(Function {
                name: "t".into(),
                description: Some("dd".into()),
                parameters: Some(Parameters {
                    type_: "object".into(),
                    properties: Some(vec![Property {
                        type_: "string".into(),
                        name: "k".into(),
                        description: None,
                        enum_: None,
                    }]),
                    required: None,
                }),
            })]),
        };
        // 3 + (1 + 1 + 1 + 2) + (2 + 1) + (1 + 2 + (1 + 6))
        assert_eq!(prompt_bytes(&request), 3 + 5 + 3 + 10);
        assert_eq!(request.tool_names(), vec!["t".to_string()]);
    }
}
