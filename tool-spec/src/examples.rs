//! Examples: a spec's stored tests, judged the same way whichever back end ran them.

use crate::budget::Steps;
use crate::error::Failure;
use crate::facts::{self, MapStore, Overlay};
use crate::interp;
use crate::spec::{Example, Expected, ToolSpec};
use crate::value::Val;
use std::collections::BTreeMap;

/// Loop iterations an example may take when no instruction counter is at hand.
pub const EXAMPLE_STEPS: u64 = 1_000_000;

/// What one run of an example produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The result (as JSON) or the failure.
    pub result: Result<serde_json::Value, Failure>,
    /// The namespace after the call (unchanged when it failed).
    pub facts_after: BTreeMap<String, String>,
}

impl Outcome {
    /// From a back end's result and its writes (applied only on success).
    pub fn new(
        example: &Example,
        result: Result<Val, Failure>,
        writes: BTreeMap<String, Option<String>>,
    ) -> Self {
        Self::from_json(example, result.map(Val::into_value), writes)
    }
}

impl Outcome {
    /// From a result already converted to JSON.
    pub fn from_json(
        example: &Example,
        result: Result<serde_json::Value, Failure>,
        writes: BTreeMap<String, Option<String>>,
    ) -> Self {
        let mut store = MapStore(example.facts_before.clone());
        if result.is_ok() {
            facts::apply(&mut store, writes);
        }
        Self {
            result,
            facts_after: store.0,
        }
    }
}

/// Runs `example` in the interpreter, with `budget` (see [`EXAMPLE_STEPS`]).
pub fn interpret(
    spec: &ToolSpec,
    example: &Example,
    budget: &mut dyn crate::budget::Budget,
) -> Outcome {
    let mut overlay = Overlay::new(
        MapStore(example.facts_before.clone()),
        spec.quota.fact_bytes,
    );
    let result = interp::run(spec, &example.args, &mut overlay, budget);
    Outcome::new(example, result, overlay.into_writes())
}

/// Whether `outcome` is what `example` expects; otherwise why not, in words.
pub fn judge(spec: &ToolSpec, example: &Example, outcome: &Outcome) -> Result<(), String> {
    match (&example.expected, &outcome.result) {
        (Expected::Result(want), Ok(got)) if want == got => {}
        (Expected::Result(want), Ok(got)) => {
            return Err(format!("expected result {want}, got {got}"));
        }
        (Expected::Result(want), Err(f)) => {
            return Err(format!(
                "expected result {want}, the call failed: {}",
                spec.describe(f)
            ));
        }
        (Expected::Error(code), Err(f)) if f.fault.code() == code => {}
        (Expected::Error(code), Err(f)) => {
            return Err(format!(
                "expected error `{code}`, the call failed otherwise: {}",
                spec.describe(f)
            ));
        }
        (Expected::Error(code), Ok(got)) => {
            return Err(format!("expected error `{code}`, got result {got}"));
        }
    }
    if let Some(want) = &example.facts_after
        && want != &outcome.facts_after
    {
        return Err(format!(
            "expected facts after {}, got {}",
            serde_json::to_string(want).unwrap_or_default(),
            serde_json::to_string(&outcome.facts_after).unwrap_or_default()
        ));
    }
    Ok(())
}

/// Why an example of a spec failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tool `{tool}`: example {index} failed: {why}")]
pub struct ExampleFailed {
    /// The tool.
    pub tool: String,
    /// The example's index.
    pub index: usize,
    /// What went wrong.
    pub why: String,
}

/// Runs every example of `spec` in the interpreter; the first that fails, if any. Each example
/// gets a fresh budget from `budget`.
pub fn check_all(
    spec: &ToolSpec,
    budget: &mut dyn FnMut() -> Box<dyn crate::budget::Budget>,
) -> Result<(), ExampleFailed> {
    for (index, example) in spec.examples.iter().enumerate() {
        let outcome = interpret(spec, example, budget().as_mut());
        judge(spec, example, &outcome).map_err(|why| ExampleFailed {
            tool: spec.name.clone(),
            index,
            why,
        })?;
    }
    Ok(())
}

/// [`check_all`] with a budget of [`EXAMPLE_STEPS`] iterations per example.
pub fn check_all_steps(spec: &ToolSpec) -> Result<(), ExampleFailed> {
    check_all(spec, &mut || Box::new(Steps::new(EXAMPLE_STEPS)))
}
