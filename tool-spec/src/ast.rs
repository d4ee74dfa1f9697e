//! The checked body: every node typed, every name resolved.
//!
//! Node ids number the nodes in pre-order from 0; [`crate::ToolSpec::path`] maps an id back to
//! its JSON path, so a fault raised by compiled code names the same spot as the interpreter's.
//! Variables are resolved to slots: each binding (`let`, `as`, `acc`) has a slot of its own,
//! an index into the interpreter's environment and a local of the compiled function.

/// A type of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Type {
    /// 64-bit signed integer.
    Int,
    /// Boolean.
    Bool,
    /// UTF-8 string.
    Str,
    /// List of strings.
    List,
    /// Any JSON value.
    Json,
}

impl Type {
    /// The name errors use.
    pub fn name(self) -> &'static str {
        match self {
            Type::Int => "int",
            Type::Bool => "bool",
            Type::Str => "string",
            Type::List => "list",
            Type::Json => "json",
        }
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `lt`
    Lt,
    /// `le`
    Le,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
}

/// Integer arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    /// `add`
    Add,
    /// `sub`
    Sub,
    /// `mul`
    Mul,
    /// `div` (truncating)
    Div,
    /// `rem` (sign of the dividend)
    Rem,
}

/// A piece of a `format` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text (never empty).
    Lit(String),
    /// The n-th value of `with`.
    Arg(usize),
}

/// A typed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// Pre-order id.
    pub id: u32,
    /// Its type.
    pub ty: Type,
    /// What it is.
    pub kind: ExprKind,
}

/// The forms of [`Expr`]. `Box`ed operands are evaluated left to right.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // the forms are documented in the crate docs
pub enum ExprKind {
    Int(i64),
    Bool(bool),
    Str(String),
    Null,
    /// Parameter by index.
    Arg(u32),
    /// Variable by slot.
    Var(u32),
    Let {
        slot: u32,
        value: Box<Expr>,
        body: Box<Expr>,
    },
    /// When `ty` is `Json` and a branch is not, the branch is converted.
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        els: Box<Expr>,
    },
    Do(Vec<Expr>),
    Compare {
        op: CmpOp,
        a: Box<Expr>,
        b: Box<Expr>,
    },
    Arith {
        op: ArithOp,
        a: Box<Expr>,
        b: Box<Expr>,
    },
    /// `and` (true) or `or` (false), short-circuit.
    Logic {
        and: bool,
        args: Vec<Expr>,
    },
    Not(Box<Expr>),
    Concat(Vec<Expr>),
    Length(Box<Expr>),
    Slice {
        s: Box<Expr>,
        from: Box<Expr>,
        to: Box<Expr>,
    },
    /// `with` values are evaluated first, then the pieces are joined left to right.
    Format {
        pieces: Vec<Piece>,
        with: Vec<Expr>,
    },
    ToString(Box<Expr>),
    ParseInt {
        s: Box<Expr>,
        default: Box<Expr>,
    },
    /// Entries in key order.
    Object(Vec<(String, Expr)>),
    Array(Vec<Expr>),
    FactGet {
        key: Box<Expr>,
        default: Box<Expr>,
    },
    FactPut {
        key: Box<Expr>,
        value: Box<Expr>,
    },
    FactDelete(Box<Expr>),
    FactKeys {
        prefix: Box<Expr>,
        limit: u32,
    },
    /// A fold: `acc` starts as `init` and becomes `step` for every item.
    ForEach {
        list: Box<Expr>,
        item: u32,
        acc: u32,
        init: Box<Expr>,
        step: Box<Expr>,
    },
    Map {
        list: Box<Expr>,
        item: u32,
        to: Box<Expr>,
    },
}
