//! [`check`]: a spec's JSON to a [`ToolSpec`], or the first [`SpecError`] with its path.

use crate::args::{Param, parse_args, parse_params};
use crate::ast::{Expr, Type};
use crate::check::check_body;
use crate::error::{Failure, SpecError, SpecErrorKind};
use crate::facts::check_key;
use crate::limits::*;
use crate::value::Val;
use crate::walk::{allow_fields, array, field, idx, join, object, string};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A tool's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Bytes (keys plus values) its namespace may hold. Default 16 KiB, at most 1 MiB.
    pub fact_bytes: u64,
    /// Instructions one call may use. Default 50 M, at most 1 B.
    pub instructions: u64,
}

impl Default for Quota {
    fn default() -> Self {
        Self {
            fact_bytes: DEFAULT_FACT_BYTES,
            instructions: DEFAULT_INSTRUCTIONS,
        }
    }
}

/// What an example expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// This JSON result.
    Result(Value),
    /// A failure with this fault code ([`crate::Fault::code`]).
    Error(String),
}

/// One example: a test stored with the tool.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The arguments, checked and in parameter order.
    pub args: Vec<Val>,
    /// What the call answers.
    pub expected: Expected,
    /// The namespace before the call.
    pub facts_before: BTreeMap<String, String>,
    /// The whole namespace after the call, if the example says.
    pub facts_after: Option<BTreeMap<String, String>>,
}

/// A checked spec.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Its name (also its facts namespace's, [`crate::namespace`]).
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// Its parameters, sorted by name (argument index = position).
    pub params: Vec<Param>,
    /// The checked body.
    pub body: Expr,
    /// The variables' types, by slot.
    pub slots: Vec<Type>,
    /// Its tests.
    pub examples: Vec<Example>,
    /// Its limits.
    pub quota: Quota,
    /// Whether the body can write facts (calls then respect the agent's write pause).
    pub writes_facts: bool,
    /// The spec as given (what the registry stores).
    pub source: Value,
    paths: Vec<String>,
}

impl ToolSpec {
    /// The JSON path of node `id` of the body.
    pub fn path(&self, id: u32) -> &str {
        self.paths.get(id as usize).map_or("body", String::as_str)
    }

    /// Number of expression nodes in the body.
    pub fn nodes(&self) -> usize {
        self.paths.len()
    }

    /// The tool as a model sees it: `{"type": "function", "function": {name, description,
    /// parameters}}`.
    pub fn schema(&self) -> Value {
        json!({"type": "function", "function": {
            "name": self.name,
            "description": self.description,
            "parameters": crate::args::schema(&self.params)}})
    }

    /// A call's JSON arguments, checked (errors name `args.NAME`).
    pub fn parse_args(&self, args: &Value) -> Result<Vec<Val>, SpecError> {
        parse_args(&self.params, args, "args")
    }

    /// `failure` in words, with its path: `body.do[1]: integer overflow`.
    pub fn describe(&self, failure: &Failure) -> String {
        match failure.node {
            Some(node) => format!("{}: {}", self.path(node), failure.fault),
            None => failure.fault.to_string(),
        }
    }
}

/// Why a name cannot be a tool's: `None` if it can. Checks the naming rule and
/// [`crate::RESERVED_TOOL_NAMES`]; `taken` adds names known to the caller (methods of the
/// module, tools already registered), answering what holds the name.
pub fn check_name(
    name: &str,
    path: &str,
    taken: &dyn Fn(&str) -> Option<String>,
) -> Result<(), SpecError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(SpecError::new(
            path,
            SpecErrorKind::InvalidName {
                name: name.to_string(),
                rule: "1-40 of a-z, 0-9 and _, starting with a letter",
            },
        ));
    }
    let with = if crate::RESERVED_TOOL_NAMES.contains(&name) {
        Some("a built-in tool of the agent".to_string())
    } else {
        taken(name)
    };
    if let Some(with) = with {
        return Err(SpecError::new(
            path,
            SpecErrorKind::NameCollision {
                name: name.to_string(),
                with,
            },
        ));
    }
    Ok(())
}

/// Type-checks `spec`. `taken` answers for names the caller knows to be in use (see
/// [`check_name`]); examples are checked for form here and run by [`crate::examples`].
pub fn check(spec: &Value, taken: &dyn Fn(&str) -> Option<String>) -> Result<ToolSpec, SpecError> {
    let map = object(spec, "spec")?;
    allow_fields(
        map,
        "",
        &[
            "name",
            "description",
            "parameters",
            "body",
            "examples",
            "quota",
        ],
    )?;
    let size = serde_json::to_string(spec).map_or(usize::MAX, |s| s.len());
    if size > MAX_SPEC_BYTES {
        return Err(SpecError::new(
            "spec",
            SpecErrorKind::OverLimit {
                what: "the spec's size in bytes".into(),
                value: size as u64,
                limit: MAX_SPEC_BYTES as u64,
            },
        ));
    }
    let name = string(field(map, "spec", "name")?, "name")?;
    check_name(name, "name", taken)?;
    let description = string(field(map, "spec", "description")?, "description")?;
    if description.trim().is_empty() || description.len() > MAX_DESCRIPTION {
        return Err(SpecError::new(
            "description",
            SpecErrorKind::Invalid(format!(
                "a description is 1 to {MAX_DESCRIPTION} bytes: it is what the model reads"
            )),
        ));
    }
    let params = parse_params(field(map, "spec", "parameters")?, "parameters")?;
    let quota = match map.get("quota") {
        Some(q) => parse_quota(q)?,
        None => Quota::default(),
    };
    let checked = check_body(&params, field(map, "spec", "body")?, "body")?;
    let examples = parse_examples(&params, field(map, "spec", "examples")?)?;
    Ok(ToolSpec {
        name: name.to_string(),
        description: description.to_string(),
        params,
        body: checked.body,
        slots: checked.slots,
        examples,
        quota,
        writes_facts: checked.writes_facts,
        source: spec.clone(),
        paths: checked.paths,
    })
}

fn bounded(v: &Value, path: &str, min: u64, max: u64) -> Result<u64, SpecError> {
    match v.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(SpecError::new(
            path,
            SpecErrorKind::Invalid(format!(
                "expected an integer from {min} to {max}, found {v}"
            )),
        )),
    }
}

fn parse_quota(v: &Value) -> Result<Quota, SpecError> {
    let map = object(v, "quota")?;
    allow_fields(map, "quota", &["fact_bytes", "instructions"])?;
    let mut q = Quota::default();
    if let Some(n) = map.get("fact_bytes") {
        q.fact_bytes = bounded(n, "quota.fact_bytes", 0, MAX_FACT_BYTES)?;
    }
    if let Some(n) = map.get("instructions") {
        q.instructions = bounded(n, "quota.instructions", 100_000, MAX_INSTRUCTIONS)?;
    }
    Ok(q)
}

fn parse_facts(v: &Value, path: &str) -> Result<BTreeMap<String, String>, SpecError> {
    let map = object(v, path)?;
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let p = join(path, k);
        if let Err(fault) = check_key(k) {
            return Err(SpecError::new(
                &p,
                SpecErrorKind::Invalid(fault.to_string()),
            ));
        }
        let value = string(v, &p)?;
        if value.len() > MAX_FACT_VALUE {
            return Err(SpecError::new(
                &p,
                SpecErrorKind::OverLimit {
                    what: "a fact value's length in bytes".into(),
                    value: value.len() as u64,
                    limit: MAX_FACT_VALUE as u64,
                },
            ));
        }
        out.insert(k.clone(), value.to_string());
    }
    Ok(out)
}

fn parse_examples(params: &[Param], v: &Value) -> Result<Vec<Example>, SpecError> {
    let items = array(v, "examples")?;
    if items.is_empty() || items.len() > MAX_EXAMPLES {
        return Err(SpecError::new(
            "examples",
            SpecErrorKind::Invalid(format!(
                "a tool has 1 to {MAX_EXAMPLES} examples (found {}): they are its tests, run before the code is trusted",
                items.len()
            )),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = idx("examples", i);
        let map = object(item, &path)?;
        allow_fields(
            map,
            &path,
            &["args", "result", "error", "facts_before", "facts_after"],
        )?;
        let args = parse_args(
            params,
            map.get("args").unwrap_or(&Value::Null),
            &join(&path, "args"),
        )?;
        let expected = match (map.get("result"), map.get("error")) {
            (Some(r), None) => Expected::Result(r.clone()),
            (None, Some(e)) => {
                let code = string(e, &join(&path, "error"))?;
                if !crate::Fault::CODES.contains(&code) {
                    return Err(SpecError::new(
                        &join(&path, "error"),
                        SpecErrorKind::Invalid(format!(
                            "`{code}` is not a fault code ({})",
                            crate::Fault::CODES.join(", ")
                        )),
                    ));
                }
                Expected::Error(code.to_string())
            }
            _ => {
                return Err(SpecError::new(
                    &path,
                    SpecErrorKind::Invalid(
                        "an example has exactly one of `result` (the expected JSON) and `error` (a fault code)".into(),
                    ),
                ));
            }
        };
        let facts_before = match map.get("facts_before") {
            Some(f) => parse_facts(f, &join(&path, "facts_before"))?,
            None => BTreeMap::new(),
        };
        let facts_after = match map.get("facts_after") {
            Some(f) => Some(parse_facts(f, &join(&path, "facts_after"))?),
            None => None,
        };
        out.push(Example {
            args,
            expected,
            facts_before,
            facts_after,
        });
    }
    Ok(out)
}
