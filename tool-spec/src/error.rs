//! Errors: [`SpecError`] for a spec (or arguments) that does not check, with the JSON path at
//! fault, and [`Fault`] / [`Failure`] for a call that fails while it runs.
//!
//! Paths are dotted from the spec's root, with indices in brackets: `body.do[1].value`, or
//! `args.option` for a call's arguments. A model gets the text back and fixes that spot.

/// A spec, or a call's arguments, that do not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct SpecError {
    /// Where in the JSON, like `body.do[1].value`.
    pub path: String,
    /// What is wrong.
    pub kind: SpecErrorKind,
}

impl SpecError {
    pub(crate) fn new(path: &str, kind: SpecErrorKind) -> Self {
        Self {
            path: path.to_string(),
            kind,
        }
    }
}

/// What is wrong at a [`SpecError`]'s path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecErrorKind {
    /// A JSON value of the wrong kind.
    #[error("expected {expected}, found {found}")]
    WrongJson {
        /// What fits here.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// A required field is absent.
    #[error("missing field `{field}`")]
    MissingField {
        /// The field.
        field: String,
    },
    /// A field that does not belong here.
    #[error("unknown field `{field}` (allowed here: {allowed})")]
    UnknownField {
        /// The field.
        field: String,
        /// The fields allowed here.
        allowed: String,
    },
    /// An object that is not an expression.
    #[error("not an expression: an object needs exactly one operator key ({known}); found {found}")]
    UnknownOperator {
        /// The keys found.
        found: String,
        /// The operators there are.
        known: String,
    },
    /// `{"var": ...}` of a name not bound here.
    #[error("unknown variable `{name}` (in scope: {in_scope})")]
    UnknownVariable {
        /// The name.
        name: String,
        /// The variables in scope here.
        in_scope: String,
    },
    /// `{"arg": ...}` of a name that is not a parameter.
    #[error("unknown argument `{name}` (parameters: {params})")]
    UnknownArgument {
        /// The name.
        name: String,
        /// The parameters.
        params: String,
    },
    /// An expression of the wrong type.
    #[error("type mismatch: expected {expected}, found {found}")]
    TypeMismatch {
        /// The type(s) that fit.
        expected: String,
        /// The expression's type.
        found: String,
    },
    /// A list without a bound (an array parameter without `maxItems`, `fact_keys` without
    /// `limit`).
    #[error("missing bound: {what}")]
    MissingBound {
        /// What needs a bound.
        what: String,
    },
    /// A number or size over its limit.
    #[error("{what} is {value}, over the limit of {limit}")]
    OverLimit {
        /// What.
        what: String,
        /// Its value.
        value: u64,
        /// The limit.
        limit: u64,
    },
    /// A number or count under its minimum.
    #[error("{what} is {value}, under the minimum of {min}")]
    UnderMinimum {
        /// What.
        what: String,
        /// Its value.
        value: i64,
        /// The minimum.
        min: i64,
    },
    /// A tool name taken by a built-in tool, a method or another synthesized tool.
    #[error("the name `{name}` collides with {with}")]
    NameCollision {
        /// The name.
        name: String,
        /// What has it already.
        with: String,
    },
    /// A name that breaks the naming rule.
    #[error("invalid name `{name}`: {rule}")]
    InvalidName {
        /// The name.
        name: String,
        /// The rule.
        rule: &'static str,
    },
    /// Anything else, said in words.
    #[error("{0}")]
    Invalid(String),
}

/// Why a running call fails. Both back ends raise the same faults at the same points.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// Integer arithmetic overflowed.
    #[error("integer overflow")]
    Overflow,
    /// Division or remainder by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// A string would be longer than [`crate::limits::MAX_STRING`].
    #[error(
        "a string of {len} bytes is over the limit of {} bytes",
        crate::limits::MAX_STRING
    )]
    StringTooLong {
        /// The length it would have.
        len: u64,
    },
    /// A JSON value would have more than [`crate::limits::MAX_JSON_NODES`] nodes.
    #[error(
        "a JSON value of {nodes} nodes is over the limit of {} nodes",
        crate::limits::MAX_JSON_NODES
    )]
    ValueTooLarge {
        /// The nodes it would have.
        nodes: u64,
    },
    /// A fact key that is empty or too long (or a prefix that is too long).
    #[error("a fact key must be 1..={max} bytes (a prefix at most {max}); this one is {len}", max = crate::limits::MAX_KEY)]
    InvalidKey {
        /// Its length.
        len: u64,
    },
    /// A fact value that is too long.
    #[error(
        "a fact value of {len} bytes is over the limit of {} bytes",
        crate::limits::MAX_FACT_VALUE
    )]
    FactValueTooLong {
        /// Its length.
        len: u64,
    },
    /// The tool's facts would exceed its quota.
    #[error("the tool's facts would hold {would_hold} bytes, over its quota of {quota} bytes")]
    FactQuota {
        /// Bytes (keys plus values) the namespace would hold.
        would_hold: u64,
        /// The quota.
        quota: u64,
    },
    /// The call used up its instruction budget.
    #[error("the call used up its instruction budget of {budget}")]
    InstructionBudget {
        /// The budget (instructions, or steps where no instruction counter exists).
        budget: u64,
    },
    /// Compiled code used the host ABI wrongly (a damaged or foreign module).
    #[error("host ABI misuse: {0}")]
    AbiMisuse(String),
}

impl Fault {
    /// The fault's code, as an example's `error` names it.
    pub fn code(&self) -> &'static str {
        match self {
            Fault::Overflow => "overflow",
            Fault::DivisionByZero => "division_by_zero",
            Fault::StringTooLong { .. } => "string_too_long",
            Fault::ValueTooLarge { .. } => "value_too_large",
            Fault::InvalidKey { .. } => "invalid_key",
            Fault::FactValueTooLong { .. } => "fact_value_too_long",
            Fault::FactQuota { .. } => "fact_quota",
            Fault::InstructionBudget { .. } => "instruction_budget",
            Fault::AbiMisuse(_) => "abi_misuse",
        }
    }

    /// Every code, for error messages.
    pub const CODES: &'static [&'static str] = &[
        "overflow",
        "division_by_zero",
        "string_too_long",
        "value_too_large",
        "invalid_key",
        "fact_value_too_long",
        "fact_quota",
        "instruction_budget",
        "abi_misuse",
    ];
}

/// A failed call: the fault and the expression it happened at (a node id, see
/// [`crate::ToolSpec::path`]). `None` only when damaged compiled code failed without saying
/// where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong.
    pub fault: Fault,
    /// Where, as a node id of the checked body.
    pub node: Option<u32>,
}
