//! Service: the tool interface of an LLM-driven loop.
//!
//! [`schemas`] lists the tools in the OpenAI function-calling format (`{"type": "function",
//! "function": {"name", "description", "parameters": <JSON Schema>}}`); [`call`] runs one with
//! JSON arguments and answers JSON. Arguments are parsed strictly (unknown fields refused), so a
//! model's mistake comes back as `InvalidArgument` naming the tool and the field. After the
//! built-ins come the synthesized tools ([`crate::synth`]), which a `self_upgrade` with
//! `add_tool` adds. [`call_async`] runs the tools that await: `self_upgrade` (which first asks
//! the IC which module the agent runs) and `call_own_method`, which calls one of the query
//! methods the agent added to itself (so the model can use what it learned).

use crate::api::{AgentError, Priority, UpgradeRecord, VersionInfo};
use crate::{facts, journal, upgrade, versions};
use candid::Principal;
use serde::Deserialize;
use serde_json::{Value, json};

/// The tool names, in the order [`schemas`] lists them.
pub const NAMES: [&str; 7] = [
    "remember",
    "recall",
    "submit_task",
    "self_upgrade",
    "upgrade_status",
    "list_versions",
    "call_own_method",
];

/// Seconds `call_own_method` waits for the agent's own method.
pub const OWN_METHOD_TIMEOUT_SECS: u32 = 30;

fn function(name: &str, description: &str, parameters: Value) -> Value {
    json!({"type": "function", "function": {
        "name": name, "description": description, "parameters": parameters}})
}

/// The JSON schemas of every tool, as a JSON array.
pub fn schemas() -> String {
    let namespace = json!({"type": "string", "description": "namespace, `default` if omitted"});
    let tools = json!([
        function(
            "remember",
            "Store a fact under a key (replaces any previous value).",
            json!({
            "type": "object",
            "properties": {"key": {"type": "string"}, "value": {"type": "string"}, "namespace": namespace},
            "required": ["key", "value"], "additionalProperties": false})
        ),
        function(
            "recall",
            "Read the fact stored under a key (null if none).",
            json!({
            "type": "object",
            "properties": {"key": {"type": "string"}, "namespace": namespace},
            "required": ["key"], "additionalProperties": false})
        ),
        function(
            "submit_task",
            "Add a task to the agent's queue.",
            json!({
            "type": "object",
            "properties": {"description": {"type": "string"},
                "priority": {"type": "string", "enum": ["low", "normal", "high"]}},
            "required": ["description"], "additionalProperties": false})
        ),
        function(
            "self_upgrade",
            "Propose a change of the agent's own code: patch operations applied to the running Wasm, then validated. The upgrade then waits for rehearsal and approval. `add_tool` gives the agent a new tool from a spec: after the upgrade commits, `call_tool` runs it.",
            json!({
            "type": "object",
            "properties": {
                "ops": {"type": "array", "description": "wasm-patch operations, applied in order", "items": {
                    "type": "object",
                    "properties": {
                        "op": {"type": "string", "enum": ["set_metadata", "add_query_method", "remove_method", "guard_controller_only", "add_tool", "remove_tool"]},
                        "name": {"type": "string", "description": "the method (add_query_method, remove_method, guard_controller_only), metadata name (set_metadata) or tool (remove_tool)"},
                        "visibility": {"type": "string", "enum": ["public", "private"]},
                        "content": {"type": "string"},
                        "reply_hex": {"type": "string"},
                        "spec": {"type": "object", "description": spec_format()}},
                    "required": ["op"]}},
                "reason": {"type": "string"}},
            "required": ["ops", "reason"], "additionalProperties": false})
        ),
        function(
            "upgrade_status",
            "The state of an upgrade (the latest if no id).",
            json!({
            "type": "object", "properties": {"id": {"type": "integer", "minimum": 1}},
            "additionalProperties": false})
        ),
        function(
            "list_versions",
            "Every stored version of the agent's code with its lineage.",
            json!({
            "type": "object", "properties": {}, "additionalProperties": false})
        ),
        function(
            "call_own_method",
            "Call a query method you added to yourself with self_upgrade (add_query_method) and read its reply.",
            json!({
            "type": "object", "properties": {"method": {"type": "string"}},
            "required": ["method"], "additionalProperties": false})
        ),
    ]);
    let mut tools = tools;
    if let Value::Array(list) = &mut tools {
        list.extend(crate::synth::schemas());
    }
    tools.to_string()
}

/// What the model reads about `add_tool`'s `spec`: the format in brief and one example.
fn spec_format() -> String {
    let example: Value =
        serde_json::from_str(tool_spec::samples::TALLY_VOTE).expect("the sample is JSON");
    format!(
        "for add_tool: a tool spec {{name, description, parameters, body, examples, quota?}}. \
         `parameters` is a JSON Schema object whose properties are string (maxLength), integer \
         (minimum, maximum), boolean or array of strings (maxItems required, at most 100); a \
         property that is not required needs a `default`. `body` is an expression: an integer, \
         boolean or string literal, null, or an object with one operator: arg, var, \
         let {{let, value, in}}, if {{if, then, else}}, do [..], eq ne lt le gt ge [a, b], \
         add sub mul div rem [a, b] (checked), and or [..], not, concat [..], length, \
         slice [s, from, to], format {{format: \"{{}} and {{}}\", with: [..]}}, to_string, \
         parse_int {{parse_int, default}}, object {{..}}, array [..], fact_get {{fact_get, default}}, \
         fact_put {{fact_put, value}}, fact_delete, fact_keys {{fact_keys, limit}}, \
         for_each {{for_each, as, acc, init, step}} (a fold over a list), map {{map, as, to}}. \
         Facts are the tool's own (namespace tool:NAME). `examples` (1-16) are tests: \
         {{args, result or error, facts_before?, facts_after?}}; they run before any code is \
         built, and a failing one refuses the proposal with what it got. `quota`: \
         {{fact_bytes, instructions}} per call. Errors name the JSON path at fault. Example: {example}"
    )
}

/// Why a tool call failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// Not a tool.
    #[error("unknown tool `{0}`")]
    Unknown(String),
    /// Arguments do not parse.
    #[error("tool `{tool}`: bad arguments: {message}")]
    Arguments {
        /// The tool.
        tool: &'static str,
        /// serde_json's message.
        message: String,
    },
    /// The tool ran and failed.
    #[error(transparent)]
    Failed(#[from] AgentError),
}

impl From<ToolError> for AgentError {
    fn from(e: ToolError) -> Self {
        match e {
            ToolError::Unknown(name) => AgentError::UnknownTool {
                name,
                known: NAMES
                    .iter()
                    .map(|n| n.to_string())
                    .chain(crate::synth::names())
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            ToolError::Arguments { .. } => AgentError::InvalidArgument(e.to_string()),
            ToolError::Failed(e) => e,
        }
    }
}

fn parse<T: for<'de> Deserialize<'de>>(tool: &'static str, args: &str) -> Result<T, ToolError> {
    let args = if args.trim().is_empty() { "{}" } else { args };
    serde_json::from_str(args).map_err(|e| ToolError::Arguments {
        tool,
        message: e.to_string(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RememberArgs {
    key: String,
    value: String,
    namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecallArgs {
    key: String,
    namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum PriorityArg {
    Low,
    Normal,
    High,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitArgs {
    description: String,
    priority: Option<PriorityArg>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpgradeArgs {
    ops: Vec<wasm_patch::PatchOp>,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusArgs {
    id: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnMethodArgs {
    method: String,
}

/// An upgrade record as tool output.
pub fn record_json(r: &UpgradeRecord) -> Value {
    json!({
        "id": r.id,
        "source": format!("{:?}", r.source),
        "state": journal::state_name(&r.state),
        "state_detail": format!("{:?}", r.state),
        "candidate_hash": hex::encode(&r.candidate_hash),
        "parent_hash": r.parent_hash.as_ref().map(hex::encode),
        "version": r.version,
        "reason": r.reason,
        "approved": r.approved_by.is_some(),
        "instructions": r.instructions,
        "created_at": r.created_at,
    })
}

fn version_json(v: &VersionInfo) -> Value {
    json!({
        "hash": hex::encode(&v.hash),
        "version": v.version,
        "parent_hash": v.parent_hash.as_ref().map(hex::encode),
        "upgrade_id": v.upgrade_id,
        "reason": v.reason,
        "size": v.size,
        "schema_range": v.schema_range.map(|r| format!("{}..={}", r.min, r.max)),
        "running": v.is_running,
        "lkg": v.is_lkg,
    })
}

fn namespace(ns: Option<String>) -> String {
    ns.unwrap_or_else(|| migrations::DEFAULT_NAMESPACE.to_string())
}

fn fact_error(e: facts::FactError) -> ToolError {
    ToolError::Failed(AgentError::InvalidArgument(e.to_string()))
}

/// Runs tool `name` with JSON `args` on behalf of `caller`. `ic_running` is the module hash the
/// IC reports for the agent (asked for `self_upgrade` only: a patch is built on that module).
pub fn call(
    caller: Principal,
    name: &str,
    args: &str,
    ic_running: Option<Vec<u8>>,
) -> Result<String, ToolError> {
    #[cfg(feature = "chaos")]
    crate::chaos::on_tool(name);
    let out = match name {
        "remember" => {
            let a: RememberArgs = parse("remember", args)?;
            crate::writes::check().map_err(ToolError::Failed)?;
            let ns = namespace(a.namespace);
            let previous = facts::remember(&ns, &a.key, a.value).map_err(fact_error)?;
            json!({"namespace": ns, "key": a.key, "previous": previous})
        }
        "recall" => {
            let a: RecallArgs = parse("recall", args)?;
            let ns = namespace(a.namespace);
            let value = facts::recall(&ns, &a.key).map_err(fact_error)?;
            json!({"namespace": ns, "key": a.key, "value": value})
        }
        "submit_task" => {
            let a: SubmitArgs = parse("submit_task", args)?;
            crate::writes::check().map_err(ToolError::Failed)?;
            let priority = match a.priority {
                Some(PriorityArg::Low) => Priority::Low,
                Some(PriorityArg::High) => Priority::High,
                _ => Priority::Normal,
            };
            let t = crate::submit_task_checked(a.description, priority)?;
            json!({"id": t.id, "status": "pending", "priority": format!("{:?}", t.priority).to_lowercase()})
        }
        "self_upgrade" => {
            let a: UpgradeArgs = parse("self_upgrade", args)?;
            let rec = upgrade::propose_self_patch(caller, a.ops, a.reason, ic_running)
                .map_err(|e| ToolError::Failed(e.into()))?;
            record_json(&rec)
        }
        "upgrade_status" => {
            let a: StatusArgs = parse("upgrade_status", args)?;
            let rec = match a.id {
                Some(id) => Some(journal::get(id).ok_or_else(|| {
                    ToolError::Failed(AgentError::NotFound(format!("upgrade {id}")))
                })?),
                None => journal::latest(),
            };
            rec.as_ref().map_or(Value::Null, record_json)
        }
        "list_versions" => {
            let _: NoArgs = parse("list_versions", args)?;
            Value::Array(versions::list().iter().map(version_json).collect())
        }
        "call_own_method" => {
            return Err(ToolError::Failed(AgentError::InvalidArgument(
                "call_own_method awaits a call: run it with call_async".into(),
            )));
        }
        other => {
            return match crate::synth::call(other, args) {
                Some(result) => result.map_err(ToolError::Failed),
                None => Err(ToolError::Unknown(other.to_string())),
            };
        }
    };
    Ok(out.to_string())
}

/// Runs tool `name` like [`call`]; `self_upgrade` first asks the IC which module the agent
/// runs (a patch is built only on that module), `call_own_method` awaits a call to the agent
/// itself.
pub async fn call_async(caller: Principal, name: &str, args: &str) -> Result<String, ToolError> {
    if name == "self_upgrade" {
        crate::refuse_calls_while_quiet().map_err(ToolError::Failed)?;
        let running = crate::own_module_hash().await.map_err(ToolError::Failed)?;
        if let Some(why) = crate::handback::missing_for_patch(running.as_deref()) {
            return Err(ToolError::Failed(AgentError::NotFound(why)));
        }
        return call(caller, name, args, running);
    }
    if name != "call_own_method" {
        return call(caller, name, args, None);
    }
    let a: OwnMethodArgs = parse("call_own_method", args)?;
    let learned = upgrade::own_methods();
    if !learned.contains(&a.method) {
        return Err(ToolError::Failed(AgentError::InvalidArgument(format!(
            "`{}` is not a method the agent added to itself; those are: {}",
            a.method,
            if learned.is_empty() {
                "none yet (add one with self_upgrade)".to_string()
            } else {
                learned.join(", ")
            }
        ))));
    }
    let me = ic_cdk::api::canister_self();
    // Counted as in flight: a self-install waits for this call's answer (`pipeline`'s drain).
    let reply = canister_api::ic::counted(
        ic_cdk::call::Call::bounded_wait(me, &a.method).change_timeout(OWN_METHOD_TIMEOUT_SECS),
    )
    .await
        .map_err(|e| {
            ToolError::Failed(AgentError::CallFailed {
                canister: me,
                method: a.method.clone(),
                message: e.to_string(),
            })
        })?
        .into_bytes();
    Ok(match candid::decode_one::<String>(&reply) {
        Ok(text) => json!({"method": a.method, "reply": text}),
        Err(_) => json!({"method": a.method, "reply_candid_hex": hex::encode(&reply)}),
    }
    .to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn synthesized_tools_cannot_take_a_built_in_name() {
        for name in super::NAMES {
            assert!(
                tool_spec::RESERVED_TOOL_NAMES.contains(&name),
                "`{name}` is a built-in tool: add it to tool_spec::RESERVED_TOOL_NAMES"
            );
        }
    }

    #[test]
    fn the_self_upgrade_schema_shows_a_spec_that_checks() {
        let text = super::spec_format();
        let example = &text[text.find("Example: ").unwrap() + 9..];
        let spec: serde_json::Value = serde_json::from_str(example).unwrap();
        let spec = tool_spec::check(&spec, &|_| None).unwrap();
        tool_spec::examples::check_all_steps(&spec).unwrap();
    }
}
