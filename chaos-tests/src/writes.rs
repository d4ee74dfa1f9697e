//! The write probes of the `writes_resumed` invariant: one call of every kind of write the agent
//! refuses while an upgrade pauses writes (`agent/src/writes.rs`), and of the operator's loop
//! settings and version retention (never paused), made as the operator after the verdict. Each changes something real and, where it can, puts it back (a setting is
//! written with the value it has). Facts go to the `default` namespace, the only one a
//! schema-v2 build knows.
//!
//! A test (`tests/writes_cover_the_agent.rs`) checks that [`PROBES`] and [`NOT_PROBED`] cover
//! every update method of `agent/src/lib.rs` that checks the pause: a new kind of paused write
//! fails it until it has its probe here.

use candid::Encode;
use canister_api::agent::{
    AgentError, Config, DEFAULT_KEEP_VERSIONS, Fact, PromptLayer, SubmitTask, Task, TaskStatus,
    VersionInfo,
};
use canister_api::turns::LoopStatus;
use testbed::{CallError, Testbed};

/// A probe: the write made, or why it failed (in words).
type Probe = fn(&Testbed) -> Result<(), String>;

/// Every probe: the agent method it calls (for `call_tool`, the tool) and the probe.
pub const PROBES: &[(&str, Probe)] = &[
    ("submit_task", |tb| submit(tb).map(drop)),
    ("set_task_status", |tb| {
        let task = submit(tb)?;
        let done: Task = update(
            tb,
            "set_task_status",
            Encode!(&task.id, &TaskStatus::Done).expect("encode"),
        )?;
        expect(done.status == TaskStatus::Done, || {
            format!("set_task_status: task {} is {:?}", done.id, done.status)
        })
    }),
    ("remember", |tb| {
        let fact = Fact {
            namespace: "default".into(),
            key: "after-the-verdict".into(),
            value: "written".into(),
        };
        update::<Option<String>>(tb, "remember", Encode!(&fact).expect("encode")).map(drop)
    }),
    ("forget", |tb| {
        let forgotten: Option<String> = update(
            tb,
            "forget",
            Encode!(&Some("default"), &"after-the-verdict").expect("encode"),
        )?;
        expect(forgotten.is_some(), || {
            "forget: the fact `remember` wrote is not there".into()
        })
    }),
    ("call_tool remember", |tb| {
        let args = r#"{"key":"written-by-tool-after-the-verdict","value":"written"}"#;
        update::<String>(
            tb,
            "call_tool",
            Encode!(&"remember", &args).expect("encode"),
        )
        .map(drop)
    }),
    ("call_tool submit_task", |tb| {
        let args = r#"{"description":"chaos: a task by tool after the verdict"}"#;
        update::<String>(
            tb,
            "call_tool",
            Encode!(&"submit_task", &args).expect("encode"),
        )
        .map(drop)
    }),
    ("set_prompt_layer", |tb| {
        let set = |content: Option<&str>| -> Result<Vec<PromptLayer>, String> {
            update(
                tb,
                "set_prompt_layer",
                Encode!(&"chaos-probe", &content).expect("encode"),
            )
        };
        let with = set(Some("Answer briefly."))?;
        let without = set(None)?;
        expect(
            with.iter().any(|l| l.name == "chaos-probe")
                && !without.iter().any(|l| l.name == "chaos-probe"),
            || "set_prompt_layer: the layer was not set and removed".into(),
        )
    }),
    ("set_loop_enabled", |tb| {
        let now = loop_status(tb)?;
        update::<LoopStatus>(
            tb,
            "set_loop_enabled",
            Encode!(&now.enabled).expect("encode"),
        )
        .map(drop)
    }),
    ("set_llm", |tb| {
        let now = loop_status(tb)?;
        update::<LoopStatus>(tb, "set_llm", Encode!(&now.llm).expect("encode")).map(drop)
    }),
    ("set_survival", |tb| {
        let now = loop_status(tb)?;
        update::<LoopStatus>(tb, "set_survival", Encode!(&now.survival).expect("encode")).map(drop)
    }),
    ("set_version_retention", |tb| {
        let config: Config = read(tb, "get_config", Encode!().expect("encode"))?;
        let keep = config.keep_versions.unwrap_or(DEFAULT_KEEP_VERSIONS);
        update::<Vec<VersionInfo>>(tb, "set_version_retention", Encode!(&keep).expect("encode"))
            .map(drop)
    }),
];

/// Methods that check the pause but have no probe, and why.
pub const NOT_PROBED: &[(&str, &str)] = &[
    (
        "run_tool_call",
        "the turn loop's own call (the agent itself only); its tools are probed through call_tool",
    ),
    (
        "call_tool <synthesized tool>",
        "only the tool scenarios add one (they call it); the fact writes it makes are remember's",
    ),
];

/// Runs every probe; answers the failures, one line each (empty when every write worked).
pub fn failures(tb: &Testbed) -> Vec<String> {
    PROBES
        .iter()
        .filter_map(|(name, probe)| probe(tb).err().map(|e| format!("{name}: {e}")))
        .collect()
}

fn expect(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(why()) }
}

fn submit(tb: &Testbed) -> Result<Task, String> {
    let arg = SubmitTask {
        description: "chaos: a task after the verdict".into(),
        priority: None,
    };
    update(tb, "submit_task", Encode!(&arg).expect("encode"))
}

fn loop_status(tb: &Testbed) -> Result<LoopStatus, String> {
    read(tb, "loop_status", Encode!().expect("encode"))
}

fn read<R: candid::CandidType + for<'de> candid::Deserialize<'de>>(
    tb: &Testbed,
    method: &str,
    arg: Vec<u8>,
) -> Result<R, String> {
    tb.try_agent_read(method, arg).map_err(|e| e.to_string())
}

/// An update as the operator; a reject, bad candid and the agent's error are all failures.
fn update<R: candid::CandidType + for<'de> candid::Deserialize<'de>>(
    tb: &Testbed,
    method: &str,
    arg: Vec<u8>,
) -> Result<R, String> {
    tb.try_agent_update::<Result<R, AgentError>>(tb.operator, method, arg)
        .map_err(|e: CallError| e.to_string())?
        .map_err(|e| format!("{method}: {e}"))
}
