//! Every bound of the language, in one place. Specs over a static bound are refused by the
//! checker; values over a run-time bound fail the call with a [`crate::Fault`].

/// Longest spec, as canonical JSON.
pub const MAX_SPEC_BYTES: usize = 16 * 1024;
/// Most expression nodes in a body.
pub const MAX_NODES: u32 = 1_000;
/// Deepest nesting of expressions (the compiler and the interpreter recurse this deep).
pub const MAX_DEPTH: u32 = 40;
/// Longest tool name.
pub const MAX_NAME: usize = 40;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 1_000;
/// Most parameters.
pub const MAX_PARAMS: usize = 16;
/// Longest parameter or variable name.
pub const MAX_IDENT: usize = 32;
/// Largest `maxItems` of an array parameter and `limit` of `fact_keys`.
pub const MAX_LIST: u32 = 100;
/// Most operands of `concat`, `and`, `or`, and most entries of `object`, `array`, `do`, `with`.
pub const MAX_OPERANDS: usize = 32;
/// Most examples of a spec (and fewest: 1).
pub const MAX_EXAMPLES: usize = 16;
/// Longest string value, in bytes.
pub const MAX_STRING: usize = 64 * 1024;
/// Most nodes of one JSON value.
pub const MAX_JSON_NODES: u32 = 10_000;
/// Longest fact key, in bytes (the agent's own limit).
pub const MAX_KEY: usize = 256;
/// Longest fact value, in bytes (the agent's own limit).
pub const MAX_FACT_VALUE: usize = 64 * 1024;
/// Default and largest fact quota of a tool, in bytes (keys plus values).
pub const DEFAULT_FACT_BYTES: u64 = 16 * 1024;
/// Largest fact quota.
pub const MAX_FACT_BYTES: u64 = 1024 * 1024;
/// Default instruction budget of one call.
pub const DEFAULT_INSTRUCTIONS: u64 = 50_000_000;
/// Largest instruction budget of one call (examples run in a query, whose limit is 5 B).
pub const MAX_INSTRUCTIONS: u64 = 1_000_000_000;
/// Most synthesized tools in one module.
pub const MAX_TOOLS: usize = 32;
/// Largest registry, as JSON (it is carried twice: a custom section and code).
pub const MAX_REGISTRY_BYTES: usize = 128 * 1024;
