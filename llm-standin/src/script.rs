//! The scripts the stand-in replays, and how a request finds its step.
//!
//! A request is first held to the LLM canister's limits ([`llm::MAX_MESSAGES`],
//! [`llm::MAX_PROMPT_BYTES`]); then it is answered by the first step, in the order scripts were
//! loaded and steps listed, that has uses left and whose [`Expect`] holds.

use canister_api::llm::{
    self, AssistantMessage, ChatMessage, ChatRequest, Expect, Reply, Script, ScriptProgress,
    StandinError,
};

/// Scripts kept at most.
pub const MAX_SCRIPTS: usize = 50;
/// Steps per script at most.
pub const MAX_STEPS: usize = 100;
/// Tool calls one scripted answer may hold (enough to script a model that asks for too many).
pub const MAX_TOOL_CALLS: usize = 100;

struct Loaded {
    script: Script,
    /// Uses left per step; `None` without limit.
    left: Vec<Option<u32>>,
}

/// The scripts loaded, with the uses their steps have left.
#[derive(Default)]
pub struct Scripts {
    loaded: Vec<Loaded>,
}

/// How a request is answered.
#[derive(Debug, PartialEq)]
pub struct Answer {
    /// The message, or the reject text a step asks for.
    pub reply: Result<AssistantMessage, String>,
    /// Cycles to accept.
    pub charge: u128,
    /// `script NAME step N`.
    pub by: String,
}

fn role(m: &ChatMessage) -> &'static str {
    match m {
        ChatMessage::User { .. } => "user",
        ChatMessage::System { .. } => "system",
        ChatMessage::Assistant(_) => "assistant",
        ChatMessage::Tool { .. } => "tool",
    }
}

fn text(m: &ChatMessage) -> &str {
    match m {
        ChatMessage::User { content }
        | ChatMessage::System { content }
        | ChatMessage::Tool { content, .. } => content,
        ChatMessage::Assistant(a) => a.content.as_deref().unwrap_or(""),
    }
}

fn matches(expect: &Expect, request: &ChatRequest) -> bool {
    let last = request.messages.last();
    let system = request.messages.iter().find_map(|m| match m {
        ChatMessage::System { content } => Some(content.as_str()),
        _ => None,
    });
    let offered = request.tool_names();
    expect.model.as_ref().is_none_or(|m| *m == request.model)
        && expect
            .last_role
            .as_deref()
            .is_none_or(|r| last.is_some_and(|m| role(m) == r))
        && expect
            .last_contains
            .as_deref()
            .is_none_or(|t| last.is_some_and(|m| text(m).contains(t)))
        && expect
            .system_contains
            .as_deref()
            .is_none_or(|t| system.is_some_and(|s| s.contains(t)))
        && expect.tools_include.iter().all(|t| offered.contains(t))
}

fn describe(request: &ChatRequest) -> String {
    let last = request.messages.last().map_or("none".to_string(), |m| {
        let t = text(m);
        let cut: String = t.chars().take(120).collect();
        format!(
            "{} \"{cut}{}\"",
            role(m),
            if cut.len() < t.len() { "..." } else { "" }
        )
    });
    format!(
        "model `{}`, {} messages, last {last}, tools [{}]",
        request.model,
        request.messages.len(),
        request.tool_names().join(", ")
    )
}

impl Scripts {
    /// Adds `script` after those loaded; answers its number of steps.
    pub fn load(&mut self, script: Script) -> Result<u32, StandinError> {
        let invalid = |m: String| Err(StandinError::InvalidScript(m));
        if script.name.trim().is_empty() || script.name.len() > 64 {
            return invalid("a script's name must be 1..=64 bytes".into());
        }
        if script.steps.is_empty() || script.steps.len() > MAX_STEPS {
            return invalid(format!("a script has 1..={MAX_STEPS} steps"));
        }
        if self.loaded.len() >= MAX_SCRIPTS {
            return invalid(format!(
                "{MAX_SCRIPTS} scripts are loaded: clear_scripts first"
            ));
        }
        for (i, step) in script.steps.iter().enumerate() {
            if let Reply::Message(m) = &step.reply
                && m.tool_calls.len() > MAX_TOOL_CALLS
            {
                return invalid(format!(
                    "step {i}: at most {MAX_TOOL_CALLS} tool calls per answer"
                ));
            }
        }
        let left = script
            .steps
            .iter()
            .map(|s| match s.times {
                Some(0) => None,
                Some(n) => Some(n),
                None => Some(1),
            })
            .collect();
        let steps = script.steps.len() as u32;
        self.loaded.push(Loaded { script, left });
        Ok(steps)
    }

    /// The answer to `request` (of `prompt_bytes`), using up one use of its step; or why
    /// there is none.
    pub fn answer(&mut self, request: &ChatRequest, prompt_bytes: u64) -> Result<Answer, String> {
        if request.messages.len() > llm::MAX_MESSAGES {
            return Err(format!(
                "{} messages, over the LLM canister's limit of {}",
                request.messages.len(),
                llm::MAX_MESSAGES
            ));
        }
        if prompt_bytes as usize > llm::MAX_PROMPT_BYTES {
            return Err(format!(
                "a prompt of {prompt_bytes} bytes, over the LLM canister's limit of {}",
                llm::MAX_PROMPT_BYTES
            ));
        }
        for loaded in &mut self.loaded {
            for (i, step) in loaded.script.steps.iter().enumerate() {
                if loaded.left[i] == Some(0) || !matches(&step.expect, request) {
                    continue;
                }
                if let Some(n) = &mut loaded.left[i] {
                    *n -= 1;
                }
                return Ok(Answer {
                    reply: match &step.reply {
                        Reply::Message(m) => Ok(m.clone()),
                        Reply::Reject(r) => Err(r.clone()),
                    },
                    charge: step.charge.unwrap_or(0),
                    by: format!("script {} step {i}", loaded.script.name),
                });
            }
        }
        Err(format!(
            "no script step matches this request ({}); load one with load_script",
            describe(request)
        ))
    }

    /// Uses left per step of every script.
    pub fn progress(&self) -> Vec<ScriptProgress> {
        self.loaded
            .iter()
            .map(|l| ScriptProgress {
                name: l.script.name.clone(),
                left: l.left.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canister_api::llm::ScriptStep;

    fn said(text: &str) -> AssistantMessage {
        AssistantMessage {
            content: Some(text.into()),
            tool_calls: vec![],
        }
    }

    fn step(expect: Expect, text: &str, times: Option<u32>) -> ScriptStep {
        ScriptStep {
            expect,
            reply: Reply::Message(said(text)),
            times,
            charge: None,
        }
    }

    fn request(last: ChatMessage) -> ChatRequest {
        ChatRequest {
            model: "qwen3:32b".into(),
            messages: vec![
                ChatMessage::System {
                    content: "you are an agent".into(),
                },
                last,
            ],
            tools: None,
        }
    }

    fn user(text: &str) -> ChatMessage {
        ChatMessage::User {
            content: text.into(),
        }
    }

    #[test]
    fn the_first_matching_step_with_uses_left_answers() {
        let mut s = Scripts::default();
        let greet = Expect {
            last_contains: Some("greet".into()),
            ..Expect::default()
        };
        s.load(Script {
            name: "a".into(),
            steps: vec![
                step(greet.clone(), "once", None),
                step(greet, "always", Some(0)),
            ],
        })
        .unwrap();
        let r = request(user("learn to greet"));
        assert_eq!(s.answer(&r, 10).unwrap().reply, Ok(said("once")));
        for _ in 0..3 {
            let a = s.answer(&r, 10).unwrap();
            assert_eq!(a.reply, Ok(said("always")));
            assert_eq!(a.by, "script a step 1");
        }
        assert_eq!(s.progress()[0].left, vec![Some(0), None]);
    }

    #[test]
    fn a_request_no_step_matches_is_refused_with_what_it_was() {
        let mut s = Scripts::default();
        s.load(Script {
            name: "a".into(),
            steps: vec![step(
                Expect {
                    model: Some("llama3.1:8b".into()),
                    ..Expect::default()
                },
                "x",
                None,
            )],
        })
        .unwrap();
        let why = s.answer(&request(user("hello")), 10).unwrap_err();
        assert!(why.contains("no script step matches"), "{why}");
        assert!(why.contains("model `qwen3:32b`"), "{why}");
        assert!(why.contains("last user \"hello\""), "{why}");
    }

    #[test]
    fn the_llm_canister_limits_are_enforced() {
        let mut s = Scripts::default();
        s.load(Script {
            name: "any".into(),
            steps: vec![step(Expect::default(), "x", Some(0))],
        })
        .unwrap();
        let mut r = request(user("x"));
        assert!(s.answer(&r, 10 * 1024 + 1).unwrap_err().contains("10240"));
        r.messages = vec![user("x"); 11];
        assert!(s.answer(&r, 10).unwrap_err().contains("11 messages"));
        r.messages.truncate(10);
        assert!(s.answer(&r, 10).is_ok());
    }

    #[test]
    fn matchers_see_role_system_prompt_and_tools() {
        let expect = Expect {
            last_role: Some("tool".into()),
            system_contains: Some("agent".into()),
            tools_include: vec!["self_upgrade".into()],
            ..Expect::default()
        };
        let mut r = request(ChatMessage::Tool {
            content: "ok".into(),
            tool_call_id: "1".into(),
        });
        assert!(!matches(&expect, &r), "no tools offered");
        r.tools = Some(vec![llm::Tool::Function(llm::Function {
            name: "self_upgrade".into(),
            description: None,
            parameters: None,
        })]);
        assert!(matches(&expect, &r));
        r.messages.push(user("x"));
        assert!(!matches(&expect, &r), "the last message is the user's");
    }

    #[test]
    fn bad_scripts_are_refused() {
        let mut s = Scripts::default();
        let empty = Script {
            name: "e".into(),
            steps: vec![],
        };
        assert!(matches!(s.load(empty), Err(StandinError::InvalidScript(_))));
        let unnamed = Script {
            name: " ".into(),
            steps: vec![step(Expect::default(), "x", None)],
        };
        assert!(s.load(unnamed).is_err());
        assert!(s.progress().is_empty(), "nothing was loaded");
    }
}
