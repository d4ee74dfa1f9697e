//! The stand-in LLM canister in the testbed: building scripts, loading them, and driving and
//! reading the agent's turn loop.
//!
//! A script is written as the model's side of a conversation: [`on_task`] (the turn's first
//! request), [`on_tool_result`] (a request whose last message is a tool result containing a
//! text), each answered with [`say`] (a final answer) or [`call`] (tool calls).

use crate::{Testbed, stranger};
use candid::{Encode, Principal};
use canister_api::agent::{
    AgentError, LlmSettings, LoopStatus, PromptLayer, SurvivalSettings, Task, TurnPage, TurnRecord,
};
use canister_api::llm::{
    AssistantMessage, Expect, FunctionCall, Reply, Script, ScriptStep, StandinError,
    StandinRequest, ToolCall, ToolCallArgument,
};
use std::time::Duration;

/// A final answer of the model.
pub fn say(text: &str) -> Reply {
    Reply::Message(AssistantMessage {
        content: Some(text.into()),
        tool_calls: vec![],
    })
}

/// One tool call: `(tool, [(argument, value)])`.
pub type Call<'a> = (&'a str, &'a [(&'a str, &'a str)]);

/// The model calls `calls`, with ids `call-1`, `call-2`...
pub fn call(calls: &[Call]) -> Reply {
    Reply::Message(AssistantMessage {
        content: None,
        tool_calls: calls
            .iter()
            .enumerate()
            .map(|(i, (name, args))| ToolCall {
                id: format!("call-{}", i + 1),
                function: FunctionCall {
                    name: name.to_string(),
                    arguments: args
                        .iter()
                        .map(|(n, v)| ToolCallArgument {
                            name: n.to_string(),
                            value: v.to_string(),
                        })
                        .collect(),
                },
            })
            .collect(),
    })
}

/// A step answering the turn's first request on a task whose text contains `task`.
pub fn on_task(task: &str, reply: Reply) -> ScriptStep {
    ScriptStep {
        expect: Expect {
            last_role: Some("user".into()),
            last_contains: Some(task.into()),
            ..Expect::default()
        },
        reply,
        times: None,
        charge: None,
    }
}

/// A step answering a request whose last message is a tool result containing `text`.
pub fn on_tool_result(text: &str, reply: Reply) -> ScriptStep {
    ScriptStep {
        expect: Expect {
            last_role: Some("tool".into()),
            last_contains: Some(text.into()),
            ..Expect::default()
        },
        reply,
        times: None,
        charge: None,
    }
}

/// `step` answering without a limit of uses.
pub fn always(mut step: ScriptStep) -> ScriptStep {
    step.times = Some(0);
    step
}

/// The `self_upgrade` arguments that add a query method `name` answering the candid text
/// `reply`.
pub fn add_method_ops(name: &str, reply: &str) -> String {
    let reply_hex = hex::encode(Encode!(&reply).expect("encode"));
    serde_json::json!([{"op": "add_query_method", "name": name, "reply_hex": reply_hex}])
        .to_string()
}

impl Testbed {
    /// The stand-in LLM canister (deployed with `Options::llm`).
    pub fn standin(&self) -> Principal {
        self.llm
            .expect("deploy the testbed with Options { llm: true, .. }")
    }

    /// Loads a script into the stand-in, as the operator.
    pub fn load_script(&self, name: &str, steps: Vec<ScriptStep>) {
        let script = Script {
            name: name.into(),
            steps,
        };
        let bytes = self
            .sim
            .update_call(
                self.standin(),
                self.operator,
                "load_script",
                Encode!(&script).expect("encode"),
            )
            .unwrap_or_else(|e| panic!("load_script: rejected: {e}"));
        let answer: Result<u32, StandinError> =
            candid::decode_one(&bytes).expect("load_script answers a Result");
        answer.unwrap_or_else(|e| panic!("load_script: {e}"));
    }

    /// Requests the stand-in received with `seq >= from` (at most 20).
    pub fn standin_requests(&self, from: u64) -> Vec<StandinRequest> {
        self.query(
            self.standin(),
            stranger(),
            "requests",
            Encode!(&from, &20u32).expect("encode"),
        )
    }

    /// Every request the stand-in received (up to its log's bound).
    pub fn all_standin_requests(&self) -> Vec<StandinRequest> {
        let mut all: Vec<StandinRequest> = vec![];
        loop {
            let from = all.last().map_or(0, |r| r.seq + 1);
            let page = self.standin_requests(from);
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }

    /// `set_loop_enabled` as the operator.
    pub fn set_loop_enabled(&self, enabled: bool) -> Result<LoopStatus, AgentError> {
        self.agent_update(
            self.operator,
            "set_loop_enabled",
            Encode!(&enabled).expect("encode"),
        )
    }

    /// `set_llm` as the operator.
    pub fn set_llm(&self, settings: LlmSettings) -> Result<LoopStatus, AgentError> {
        self.agent_update(
            self.operator,
            "set_llm",
            Encode!(&settings).expect("encode"),
        )
    }

    /// `set_survival` as the operator.
    pub fn set_survival(&self, settings: SurvivalSettings) -> Result<LoopStatus, AgentError> {
        self.agent_update(
            self.operator,
            "set_survival",
            Encode!(&settings).expect("encode"),
        )
    }

    /// `set_prompt_layer` as the operator.
    pub fn set_prompt_layer(
        &self,
        name: &str,
        content: Option<&str>,
    ) -> Result<Vec<PromptLayer>, AgentError> {
        self.agent_update(
            self.operator,
            "set_prompt_layer",
            Encode!(&name, &content).expect("encode"),
        )
    }

    /// `loop_status`.
    pub fn loop_status(&self) -> LoopStatus {
        self.agent_query::<Result<LoopStatus, AgentError>>(
            "loop_status",
            Encode!().expect("encode"),
        )
        .expect("loop_status")
    }

    /// A page of the turn log from turn `from`.
    pub fn turns(&self, from: u64) -> TurnPage {
        self.agent_query::<Result<TurnPage, AgentError>>(
            "turns",
            Encode!(&from, &10u32).expect("encode"),
        )
        .expect("turns")
    }

    /// Turn `id`.
    pub fn turn(&self, id: u64) -> TurnRecord {
        self.turns(id)
            .turns
            .into_iter()
            .find(|t| t.id == id)
            .unwrap_or_else(|| panic!("no turn {id}"))
    }

    /// Task `id`.
    pub fn task(&self, id: u64) -> Task {
        self.agent_query::<Result<Task, AgentError>>("get_task", Encode!(&id).expect("encode"))
            .expect("get_task")
    }

    /// Runs until task `id` is done or failed (at most `limit` of simulated time); answers it.
    pub fn run_until_task_ends(&self, id: u64, limit: Duration) -> Task {
        use canister_api::agent::TaskStatus;
        self.run_until(limit, |tb| {
            // The agent answers no query while it is stopped for a snapshot.
            tb.sim
                .query_call(
                    tb.agent,
                    tb.operator,
                    "get_task",
                    Encode!(&id).expect("encode"),
                )
                .ok()
                .and_then(|b| candid::decode_one::<Result<Task, AgentError>>(&b).ok())
                .and_then(Result::ok)
                .is_some_and(|t| matches!(t.status, TaskStatus::Done | TaskStatus::Failed))
        });
        self.task(id)
    }
}
