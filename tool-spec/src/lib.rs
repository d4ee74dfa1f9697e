//! The tool-spec language: what a model writes to give the agent a new tool.
//!
//! A spec is a small JSON document: a name, a description, parameters (a JSON Schema subset),
//! a `body` in an expression language that always terminates, and `examples` that are run
//! before the code is trusted. [`check`] type-checks a spec into a [`ToolSpec`] or returns a
//! [`SpecError`] naming the JSON path at fault; [`interp`] runs it; [`compile`] turns it into a
//! Wasm function body that reaches values and facts only through the host ABI ([`abi`]), which
//! every agent build exports and [`host`] implements. [`registry`] is the format of the list of
//! synthesized tools that a patched module carries. The crate has no IC dependencies: the agent,
//! wasm-patch and agentctl all link it, so a spec means the same everywhere.
//!
//! ```text
//! spec JSON --check--> ToolSpec --interp::run---------------------> result + fact writes
//!                          \------compile--> Wasm body --(agent: host ABI)--> the same
//! ```
//!
//! # A spec
//!
//! ```json
//! {
//!   "name": "tally_vote",
//!   "description": "Count one vote for an option; answer the option's new tally.",
//!   "parameters": {"type": "object",
//!                  "properties": {"option": {"type": "string", "maxLength": 32}},
//!                  "required": ["option"]},
//!   "body": {"let": "n",
//!            "value": {"add": [{"parse_int": {"fact_get": {"arg": "option"}, "default": "0"},
//!                               "default": 0}, 1]},
//!            "in": {"do": [{"fact_put": {"arg": "option"}, "value": {"to_string": {"var": "n"}}},
//!                          {"object": {"option": {"arg": "option"}, "votes": {"var": "n"}}}]}},
//!   "examples": [{"args": {"option": "yes"}, "facts_before": {"yes": "2"},
//!                 "result": {"option": "yes", "votes": 3}, "facts_after": {"yes": "3"}}]
//! }
//! ```
//!
//! - `name`: 1-40 of `a-z 0-9 _`, starting with a letter; not a built-in tool
//!   ([`RESERVED_TOOL_NAMES`]) nor a method of the module.
//! - `parameters`: `{"type": "object", "properties": {...}, "required": [...]}`; each property
//!   is `{"type": "string"}` (optional `maxLength`), `{"type": "integer"}` (optional `minimum`,
//!   `maximum`), `{"type": "boolean"}`, or `{"type": "array", "items": {"type": "string"},
//!   "maxItems": N}` (the bound is required, at most 100). Each may have a `description`; a
//!   property that is not required must have a `default`.
//! - `examples`: 1-16 tests, each `args`, then `result` (the expected JSON) or `error` (a fault
//!   code, see [`Fault::code`]), and optionally `facts_before` / `facts_after` (the tool's
//!   namespace as a `key -> value` object; `facts_after` is compared whole).
//! - `quota` (optional): `{"fact_bytes": N, "instructions": N}` (see [`Quota`]).
//!
//! # The body
//!
//! Types: `int` (64-bit, checked arithmetic), `bool`, `string`, `list` (of strings) and `json`.
//! A JSON integer, `true`/`false` and a JSON string are literals; `null` is JSON null. Every
//! other expression is an object with one operator key:
//!
//! | expression | type |
//! | --- | --- |
//! | `{"arg": "p"}`, `{"var": "x"}` | the parameter's, the variable's |
//! | `{"let": "x", "value": E, "in": E}` | `in`'s |
//! | `{"if": C, "then": A, "else": B}` | A's if B's is the same, else `json` |
//! | `{"do": [E, ...]}` (evaluated in order) | the last one's |
//! | `{"eq"\|"ne": [A, B]}` (int, string or bool), `{"lt"\|"le"\|"gt"\|"ge": [A, B]}` (int or string) | bool |
//! | `{"add"\|"sub"\|"mul"\|"div"\|"rem": [A, B]}` | int (overflow and division by zero fail) |
//! | `{"and"\|"or": [A, B, ...]}` (short-circuit), `{"not": A}` | bool |
//! | `{"concat": [S, S, ...]}`, `{"slice": [S, FROM, TO]}` (characters, clamped) | string |
//! | `{"length": S or L}` (characters or items) | int |
//! | `{"format": "{} has {} votes", "with": [A, B]}` (`{{`/`}}` for braces) | string |
//! | `{"to_string": A}` (int, bool, string), `{"parse_int": S, "default": I}` | string, int |
//! | `{"object": {"key": E, ...}}`, `{"array": [E, ...]}` | json |
//! | `{"fact_get": KEY, "default": S}` | string |
//! | `{"fact_put": KEY, "value": S}` (true if it replaced a value), `{"fact_delete": KEY}` | bool |
//! | `{"fact_keys": PREFIX, "limit": N}` (N a literal 1-100; sorted keys) | list |
//! | `{"for_each": L, "as": "x", "acc": "a", "init": E, "step": E}` (a fold) | `init`'s |
//! | `{"map": L, "as": "x", "to": E}` | json (an array) |
//!
//! Facts live in the tool's own namespace (`tool:NAME`); a tool cannot reach other namespaces,
//! tasks, configuration or anything else. Loops run over bounded lists only, so every body
//! terminates; on top of that each call has an instruction budget and the namespace a byte
//! quota. A call that fails changes no fact.
//!
//! # Layout
//!
//! - [`spec`]: [`check`] and [`ToolSpec`]; `check` (private) holds the expression checker and
//!   [`args`] the argument parser; [`ast`] the checked tree; [`error`]: [`SpecError`].
//! - [`value`]: run-time values and the operations both back ends share (so they agree);
//!   [`facts`]: the fact overlay with its quota; [`budget`]: instruction budgets.
//! - [`interp`]: the interpreter; [`examples`]: running and judging examples.
//! - [`abi`]: the host ABI table; [`host`]: its implementation; [`compile`]: the compiler.
//! - [`registry`]: the registry format and the code generated from it.
//! - [`limits`]: every bound in one place; [`samples`]: three sample specs.

pub mod abi;
pub mod args;
pub mod ast;
pub mod budget;
mod check;
pub mod compile;
pub mod error;
pub mod examples;
pub mod facts;
pub mod host;
pub mod interp;
pub mod limits;
pub mod registry;
pub mod samples;
pub mod spec;
pub mod value;
mod walk;

pub use error::{Failure, Fault, SpecError, SpecErrorKind};
pub use spec::{Quota, ToolSpec, check};
pub use value::Val;

/// The agent's built-in tool names: a synthesized tool may not take one. (The agent has a test
/// that its tools are all here.)
pub const RESERVED_TOOL_NAMES: &[&str] = &[
    "remember",
    "recall",
    "submit_task",
    "self_upgrade",
    "upgrade_status",
    "list_versions",
    "call_own_method",
];

/// The facts namespace of tool `name`.
pub fn namespace(name: &str) -> String {
    format!("tool:{name}")
}

/// Test-only fault injection (feature `fault-miscompile`, never in a real build).
#[cfg(feature = "fault-miscompile")]
pub mod fault {
    use std::sync::atomic::{AtomicBool, Ordering};

    static MISCOMPILE: AtomicBool = AtomicBool::new(false);

    /// From now on, [`crate::compile`] emits every integer literal off by one.
    pub fn set_miscompile(on: bool) {
        MISCOMPILE.store(on, Ordering::SeqCst);
    }

    pub(crate) fn miscompile() -> bool {
        MISCOMPILE.load(Ordering::SeqCst)
    }
}
