//! Service: synthesized tools, the ones a self-upgrade added from a tool spec (see the
//! `tool-spec` crate for the language and wasm-patch for how a spec becomes code).
//!
//! - [`schemas`] and [`call`] extend the built-in tools (`tools`, `call_tool`): a call checks
//!   its arguments against the spec, respects the write pause if the tool can write, runs the
//!   compiled code within the tool's instruction budget and fact quota, and applies the tool's
//!   fact writes (in namespace `tool:NAME`) only when it succeeds.
//! - [`examples`] runs every example of every tool on the compiled code and on the
//!   interpreter (`tool_examples`, the rehearsal's probe).
//! - [`check_proposal`] type-checks the specs of a `self_upgrade` and runs their examples in
//!   the interpreter before any Wasm is built.
//!
//! # Layout
//!
//! - [`abi`]: the exported host ABI and the two hooks; [`registry`]: this module's tools;
//!   [`runtime`]: facts, budget, and running a tool either way.

pub mod abi;
pub mod registry;
pub mod runtime;

use crate::api::{AgentError, ToolExampleRun, ToolExamples};
use crate::{facts, schema, writes};
use runtime::{AgentBudget, AgentFacts, instructions};
use serde_json::Value;
use tool_spec::examples::{Outcome, judge};
use tool_spec::facts::MapStore;
use tool_spec::{Failure, ToolSpec};
use wasm_patch::PatchOp;

/// The synthesized tools' schemas, in the `tools` format (none if the registry does not load).
pub fn schemas() -> Vec<Value> {
    match &*registry::tools() {
        Ok(specs) => specs.iter().map(ToolSpec::schema).collect(),
        Err(_) => vec![],
    }
}

/// The synthesized tools' names.
pub fn names() -> Vec<String> {
    match &*registry::tools() {
        Ok(specs) => specs.iter().map(|s| s.name.clone()).collect(),
        Err(_) => vec![],
    }
}

fn failed(spec: &ToolSpec, f: &Failure) -> AgentError {
    AgentError::ToolFailed {
        tool: spec.name.clone(),
        code: f.fault.code().to_string(),
        path: f.node.map_or("body", |n| spec.path(n)).to_string(),
        message: f.fault.to_string(),
    }
}

/// Runs synthesized tool `name` with JSON `args`; `None` if there is no such tool.
pub fn call(name: &str, args: &str) -> Option<Result<String, AgentError>> {
    let tools = registry::tools();
    let specs = tools.as_ref().as_ref().ok()?;
    let index = specs.iter().position(|s| s.name == name)?;
    Some(run_live(index, &specs[index], args))
}

fn run_live(index: usize, spec: &ToolSpec, args: &str) -> Result<String, AgentError> {
    if schema::SCHEMA < 3 {
        return Err(AgentError::InvalidArgument(format!(
            "tool `{}`: synthesized tools keep their facts in a namespace, which needs schema 3",
            spec.name
        )));
    }
    let args: Value = if args.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(args).map_err(|e| {
            AgentError::InvalidArgument(format!(
                "tool `{}`: the arguments are not JSON: {e}",
                spec.name
            ))
        })?
    };
    let args = spec
        .parse_args(&args)
        .map_err(|e| AgentError::InvalidArgument(format!("tool `{}`: {e}", spec.name)))?;
    if spec.writes_facts {
        writes::check()?;
    }
    let namespace = tool_spec::namespace(&spec.name);
    let (result, writes) =
        runtime::compiled(index, spec, &args, AgentFacts::Live(namespace.clone()));
    let value = result.map_err(|f| failed(spec, &f))?;
    for (key, v) in writes {
        // The overlay checked keys and values against the same limits as the facts store.
        let applied = match v {
            Some(v) => facts::remember(&namespace, &key, v),
            None => facts::forget(&namespace, &key),
        };
        if let Err(e) = applied {
            // Trapping undoes the writes already applied: a tool call is all or nothing.
            ic_cdk::trap(format!("tool `{}`: a fact write failed: {e}", spec.name));
        }
    }
    Ok(value.to_string())
}

/// Every example of every synthesized tool, run compiled and interpreted.
pub fn examples() -> Result<ToolExamples, AgentError> {
    let tools = registry::tools();
    let specs = tools.as_ref().as_ref().map_err(|e| {
        AgentError::Validation(format!("the module's tool registry does not load: {e}"))
    })?;
    let mut runs = vec![];
    for (index, spec) in specs.iter().enumerate() {
        for (i, example) in spec.examples.iter().enumerate() {
            let facts = || AgentFacts::Map(MapStore(example.facts_before.clone()));
            let start = instructions();
            let (result, writes) = runtime::compiled(index, spec, &example.args, facts());
            let compiled_instructions = instructions() - start;
            let compiled = Outcome::from_json(example, result, writes);
            let start = instructions();
            let (result, writes) = runtime::interpreted(spec, &example.args, facts());
            let interpreted_instructions = instructions() - start;
            let interpreted = Outcome::from_json(example, result, writes);
            let verdict = judge(spec, example, &compiled);
            let budget = |o: &Outcome| {
                o.result
                    .as_ref()
                    .is_err_and(|f| f.fault.code() == "instruction_budget")
            };
            let agree = compiled == interpreted || (budget(&compiled) && budget(&interpreted));
            runs.push(ToolExampleRun {
                tool: spec.name.clone(),
                example: i as u32,
                passed: verdict.is_ok(),
                agree,
                detail: match (verdict, agree) {
                    (Err(why), _) => why,
                    (Ok(()), false) => format!(
                        "compiled {:?}, interpreted {:?}",
                        compiled.result, interpreted.result
                    ),
                    (Ok(()), true) => String::new(),
                },
                compiled_instructions,
                interpreted_instructions,
            });
        }
    }
    Ok(ToolExamples {
        tools: specs.iter().map(|s| s.name.clone()).collect(),
        runs,
    })
}

/// Checks every `add_tool` spec of a proposal and runs its examples in the interpreter: the
/// first problem, in words a model can act on.
pub fn check_proposal(ops: &[PatchOp]) -> Result<(), String> {
    for (op_index, op) in ops.iter().enumerate() {
        let PatchOp::AddTool { spec } = op else {
            continue;
        };
        let spec = tool_spec::check(spec, &|_| None)
            .map_err(|e| format!("op {op_index} (add_tool): the spec does not check: {e}"))?;
        let budget = spec.quota.instructions;
        tool_spec::examples::check_all(&spec, &mut || Box::new(AgentBudget::new(budget)))
            .map_err(|e| format!("op {op_index} (add_tool): {e}"))?;
    }
    Ok(())
}
