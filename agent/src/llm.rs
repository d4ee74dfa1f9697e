//! Service: the LLM canister client.
//!
//! - Which canister: the settings (init argument or `set_llm`), else the canister environment
//!   variable `PUBLIC_CANISTER_ID:llm` (as `icp deploy` sets it), else the mainnet LLM canister
//!   ([`resolve`]).
//! - One `v1_chat` call ([`chat`]): bounded wait, [`CYCLES_PER_CALL`] attached (free models refund
//!   them), and every failure a typed [`LlmError`]; nothing here traps (the `ic-llm` crate's
//!   `send` does, which is why the agent does not use it).
//!
//! The candid is `canister_api::llm` (candid-equal to the `ic-llm` crate 2.0's types: see the
//! test below). The agent cannot tell the real canister from `llm-standin`.

use crate::api::LlmSettings;
use candid::Principal;
use canister_api::llm::{
    AssistantMessage, CYCLES_PER_CALL, ChatRequest, ChatResponse, LLM_CANISTER_ENV,
    MAINNET_LLM_CANISTER,
};
use ic_cdk::call::{Call, CallFailed, RejectCode};

/// The LLM canister to call and where its id came from.
pub fn resolve(settings: &LlmSettings) -> (Principal, String) {
    if let Some(id) = settings.canister {
        return (id, "settings".into());
    }
    let mainnet = Principal::from_text(MAINNET_LLM_CANISTER).expect("the mainnet id parses");
    if ic_cdk::api::env_var_name_exists(LLM_CANISTER_ENV) {
        let text = ic_cdk::api::env_var_value(LLM_CANISTER_ENV);
        return match Principal::from_text(text.trim()) {
            Ok(id) => (id, format!("env {LLM_CANISTER_ENV}")),
            Err(e) => (
                mainnet,
                format!("mainnet ({LLM_CANISTER_ENV} is not a principal: {e})"),
            ),
        };
    }
    (mainnet, "mainnet".into())
}

/// Why a model call failed. Each is an error of the turn, never a trap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The call was not made: its cycles would take the balance under the survival floor.
    #[error(
        "the agent has {balance} cycles; attaching {attach} to a model call would take it under the survival floor of {floor}"
    )]
    CannotSpare {
        /// The balance.
        balance: u128,
        /// Cycles the call attaches.
        attach: u128,
        /// `stop_below`.
        floor: u128,
    },
    /// No answer within the timeout, or the answer was lost (SYS_UNKNOWN).
    #[error("the model did not answer within {secs} s (LLM canister {canister}: {message})")]
    Timeout {
        /// The LLM canister.
        canister: Principal,
        /// The timeout.
        secs: u32,
        /// The reject.
        message: String,
    },
    /// The LLM canister (or the system on its behalf) rejected the call.
    #[error("the LLM canister {canister} rejected the call ({code}): {message}")]
    Rejected {
        /// The LLM canister.
        canister: Principal,
        /// The reject code.
        code: String,
        /// The reject message.
        message: String,
    },
    /// The call could not be sent.
    #[error("the call to the LLM canister {canister} could not be made: {message}")]
    NotSent {
        /// The LLM canister.
        canister: Principal,
        /// Why.
        message: String,
    },
    /// The answer is not a `v1_chat` response.
    #[error(
        "the LLM canister {canister} answered something that is not a chat response: {message}"
    )]
    Undecodable {
        /// The LLM canister.
        canister: Principal,
        /// The decoding error.
        message: String,
    },
}

/// What one model call came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The model's message, or why there is none.
    pub message: Result<AssistantMessage, LlmError>,
    /// Cycles the LLM canister kept of those attached (0 when the call was not sent).
    pub charged: u128,
}

/// One `v1_chat` call to `canister`, bounded by `timeout_secs`, attaching [`CYCLES_PER_CALL`].
pub async fn chat(canister: Principal, request: &ChatRequest, timeout_secs: u32) -> Answer {
    // Counted as in flight: a self-install waits for the model's answer (`pipeline`'s drain).
    let result = canister_api::ic::counted(
        Call::bounded_wait(canister, "v1_chat")
            .change_timeout(timeout_secs)
            .with_cycles(CYCLES_PER_CALL)
            .with_arg(request),
    )
    .await;
    let answered = match result {
        Ok(response) => Ok(response),
        Err(CallFailed::CallRejected(r)) => Err(r),
        Err(e) => {
            return Answer {
                message: Err(LlmError::NotSent {
                    canister,
                    message: e.to_string(),
                }),
                charged: 0,
            };
        }
    };
    // In the reply or reject callback now: what came back of the attached cycles is known.
    let charged = CYCLES_PER_CALL.saturating_sub(ic_cdk::api::msg_cycles_refunded());
    let message = match answered {
        Ok(response) => response
            .candid::<ChatResponse>()
            .map(|r| r.message)
            .map_err(|e| LlmError::Undecodable {
                canister,
                message: e.to_string(),
            }),
        Err(r) => Err(match r.reject_code() {
            Ok(RejectCode::SysUnknown) => LlmError::Timeout {
                canister,
                secs: timeout_secs,
                message: r.reject_message().to_string(),
            },
            code => LlmError::Rejected {
                canister,
                code: format!("{code:?}"),
                message: r.reject_message().to_string(),
            },
        }),
    };
    Answer { message, charged }
}

#[cfg(test)]
mod tests {
    use candid::CandidType;
    use candid::types::internal::TypeContainer;
    use candid::types::subtype::{Gamma, equal};
    use canister_api::llm;

    fn same<A: CandidType, B: CandidType>() {
        let mut env = TypeContainer::new();
        let a = env.add::<A>();
        let b = env.add::<B>();
        equal(&mut Gamma::new(), &env.env, &a, &b).unwrap_or_else(|e| {
            panic!(
                "{} and {} differ: {e}",
                std::any::type_name::<A>(),
                std::any::type_name::<B>()
            )
        });
    }

    /// The agent's `v1_chat` candid is the `ic-llm` crate's (2.0): what the real LLM canister
    /// speaks. (That crate's request type is private; its parts are checked.)
    #[test]
    fn the_chat_types_are_those_of_the_ic_llm_crate() {
        same::<llm::ChatMessage, ic_llm::ChatMessage>();
        same::<llm::ChatResponse, ic_llm::Response>();
        same::<llm::ToolCall, ic_llm::ToolCall>();
        same::<llm::Tool, ic_llm::Tool>();
        same::<Vec<llm::ChatMessage>, Vec<ic_llm::ChatMessage>>();
        same::<Option<Vec<llm::Tool>>, Option<Vec<ic_llm::Tool>>>();
    }

    /// A response with tool calls, encoded as the stand-in does, decodes as `ic-llm`'s.
    #[test]
    fn a_tool_call_response_round_trips_through_ic_llm() {
        let ours = llm::ChatResponse {
            message: llm::AssistantMessage {
                content: None,
                tool_calls: vec![llm::ToolCall {
                    id: "1".into(),
                    function: llm::FunctionCall {
                        name: "self_upgrade".into(),
                        arguments: vec![llm::ToolCallArgument {
                            name: "reason".into(),
                            value: "greet".into(),
                        }],
                    },
                }],
            },
        };
        let bytes = candid::encode_one(&ours).unwrap();
        let theirs: ic_llm::Response = candid::decode_one(&bytes).unwrap();
        assert_eq!(theirs.message.tool_calls[0].function.name, "self_upgrade");
        assert_eq!(
            theirs.message.tool_calls[0]
                .function
                .get("reason")
                .as_deref(),
            Some("greet")
        );
    }
}
