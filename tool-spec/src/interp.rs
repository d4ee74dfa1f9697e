//! The interpreter: the language's reference semantics, and the compiler's oracle.
//!
//! It evaluates in exactly the order the compiled code does (operands left to right, all
//! operands of `concat` and `format` before joining, object entries in key order, a budget
//! tick at the start of every loop iteration), so the two raise the same fault at the same
//! node.

use crate::ast::{ArithOp, CmpOp, Expr, ExprKind, Piece, Type};
use crate::budget::Budget;
use crate::error::{Failure, Fault};
use crate::facts::{FactStore, Overlay};
use crate::spec::ToolSpec;
use crate::value::{self, Json, Val};

/// Runs `spec` on `args` (in parameter order, see [`ToolSpec::parse_args`]). Fact writes land
/// in `facts`; apply them only on `Ok`.
pub fn run<S: FactStore>(
    spec: &ToolSpec,
    args: &[Val],
    facts: &mut Overlay<S>,
    budget: &mut dyn Budget,
) -> Result<Val, Failure> {
    let mut it = Interp {
        args,
        env: vec![None; spec.slots.len()],
        facts,
        budget,
    };
    it.eval(&spec.body)
}

struct Interp<'a, S> {
    args: &'a [Val],
    env: Vec<Option<Val>>,
    facts: &'a mut Overlay<S>,
    budget: &'a mut dyn Budget,
}

fn at(node: u32) -> impl Fn(Fault) -> Failure {
    move |fault| Failure {
        fault,
        node: Some(node),
    }
}

/// Values the checker typed: a mismatch here is a bug in the checker, not in the spec.
fn int(v: Val) -> i64 {
    match v {
        Val::Int(i) => i,
        other => unreachable!("checked as int: {other:?}"),
    }
}

fn boolean(v: Val) -> bool {
    match v {
        Val::Bool(b) => b,
        other => unreachable!("checked as bool: {other:?}"),
    }
}

fn string(v: Val) -> String {
    match v {
        Val::Str(s) => s,
        other => unreachable!("checked as string: {other:?}"),
    }
}

fn list(v: Val) -> Vec<String> {
    match v {
        Val::List(l) => l,
        other => unreachable!("checked as list: {other:?}"),
    }
}

/// `v` as the type `ty` of the expression it is the value of (only `json` converts).
fn as_type(v: Val, ty: Type) -> Val {
    match (ty, &v) {
        (Type::Json, Val::Json(_)) => v,
        (Type::Json, _) => Val::Json(v.to_json()),
        _ => v,
    }
}

/// int, bool or string as text.
pub(crate) fn text(v: Val) -> String {
    match v {
        Val::Int(i) => value::int_to_string(i),
        Val::Bool(b) => value::bool_to_string(b),
        Val::Str(s) => s,
        other => unreachable!("checked as int, bool or string: {other:?}"),
    }
}

impl<S: FactStore> Interp<'_, S> {
    fn eval(&mut self, e: &Expr) -> Result<Val, Failure> {
        let here = at(e.id);
        Ok(match &e.kind {
            ExprKind::Int(i) => Val::Int(*i),
            ExprKind::Bool(b) => Val::Bool(*b),
            ExprKind::Str(s) => Val::Str(s.clone()),
            ExprKind::Null => Val::Json(Json::null()),
            ExprKind::Arg(i) => self.args[*i as usize].clone(),
            ExprKind::Var(slot) => self.env[*slot as usize]
                .clone()
                .expect("the checker binds every variable before use"),
            ExprKind::Let { slot, value, body } => {
                let v = self.eval(value)?;
                self.env[*slot as usize] = Some(v);
                self.eval(body)?
            }
            ExprKind::If { cond, then, els } => {
                let branch = if boolean(self.eval(cond)?) { then } else { els };
                as_type(self.eval(branch)?, e.ty)
            }
            ExprKind::Do(items) => {
                let mut last = Val::Json(Json::null());
                for item in items {
                    last = self.eval(item)?;
                }
                last
            }
            ExprKind::Compare { op, a, b } => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                let ord = match (&a, &b) {
                    (Val::Int(x), Val::Int(y)) => x.cmp(y),
                    (Val::Str(x), Val::Str(y)) => x.cmp(y),
                    (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
                    other => unreachable!("checked comparable: {other:?}"),
                };
                Val::Bool(match op {
                    CmpOp::Eq => ord.is_eq(),
                    CmpOp::Ne => ord.is_ne(),
                    CmpOp::Lt => ord.is_lt(),
                    CmpOp::Le => ord.is_le(),
                    CmpOp::Gt => ord.is_gt(),
                    CmpOp::Ge => ord.is_ge(),
                })
            }
            ExprKind::Arith { op, a, b } => {
                let (a, b) = (int(self.eval(a)?), int(self.eval(b)?));
                let r = match op {
                    ArithOp::Add => value::add(a, b),
                    ArithOp::Sub => value::sub(a, b),
                    ArithOp::Mul => value::mul(a, b),
                    ArithOp::Div => value::div(a, b),
                    ArithOp::Rem => value::rem(a, b),
                };
                Val::Int(r.map_err(here)?)
            }
            ExprKind::Logic { and, args } => {
                for arg in args {
                    if boolean(self.eval(arg)?) != *and {
                        return Ok(Val::Bool(!*and));
                    }
                }
                Val::Bool(*and)
            }
            ExprKind::Not(a) => Val::Bool(!boolean(self.eval(a)?)),
            ExprKind::Concat(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    parts.push(string(self.eval(item)?));
                }
                let mut parts = parts.into_iter();
                let mut acc = parts.next().unwrap_or_default();
                for part in parts {
                    acc = value::concat(&acc, &part).map_err(&here)?;
                }
                Val::Str(acc)
            }
            ExprKind::Length(a) => match self.eval(a)? {
                Val::Str(s) => Val::Int(value::length(&s)),
                Val::List(l) => Val::Int(l.len() as i64),
                other => unreachable!("checked string or list: {other:?}"),
            },
            ExprKind::Slice { s, from, to } => {
                let s = string(self.eval(s)?);
                let (from, to) = (int(self.eval(from)?), int(self.eval(to)?));
                Val::Str(value::slice(&s, from, to))
            }
            ExprKind::Format { pieces, with } => {
                let mut texts = Vec::with_capacity(with.len());
                for w in with {
                    texts.push(text(self.eval(w)?));
                }
                let mut acc: Option<String> = None;
                for piece in pieces {
                    let part = match piece {
                        Piece::Lit(s) => s.as_str(),
                        Piece::Arg(i) => texts[*i].as_str(),
                    };
                    acc = Some(match acc {
                        None => part.to_string(),
                        Some(acc) => value::concat(&acc, part).map_err(&here)?,
                    });
                }
                Val::Str(acc.unwrap_or_default())
            }
            ExprKind::ToString(a) => Val::Str(text(self.eval(a)?)),
            ExprKind::ParseInt { s, default } => {
                let s = string(self.eval(s)?);
                let d = int(self.eval(default)?);
                Val::Int(value::parse_int(&s, d))
            }
            ExprKind::Object(entries) => {
                let mut obj = Json::object();
                for (k, e) in entries {
                    let v = self.eval(e)?.to_json();
                    value::object_set(&mut obj, k.clone(), v).map_err(&here)?;
                }
                Val::Json(obj)
            }
            ExprKind::Array(items) => {
                let mut arr = Json::array();
                for item in items {
                    let v = self.eval(item)?.to_json();
                    value::array_push(&mut arr, v).map_err(&here)?;
                }
                Val::Json(arr)
            }
            ExprKind::FactGet { key, default } => {
                let key = string(self.eval(key)?);
                let default = string(self.eval(default)?);
                Val::Str(self.facts.get(&key).map_err(here)?.unwrap_or(default))
            }
            ExprKind::FactPut { key, value } => {
                let key = string(self.eval(key)?);
                let v = string(self.eval(value)?);
                Val::Bool(self.facts.put(&key, v).map_err(here)?)
            }
            ExprKind::FactDelete(key) => {
                let key = string(self.eval(key)?);
                Val::Bool(self.facts.delete(&key).map_err(here)?)
            }
            ExprKind::FactKeys { prefix, limit } => {
                let prefix = string(self.eval(prefix)?);
                Val::List(self.facts.keys(&prefix, *limit as usize).map_err(here)?)
            }
            ExprKind::ForEach {
                list: l,
                item,
                acc,
                init,
                step,
            } => {
                let items = list(self.eval(l)?);
                let mut value = self.eval(init)?;
                for it in items {
                    self.budget.tick().map_err(&here)?;
                    self.env[*item as usize] = Some(Val::Str(it));
                    self.env[*acc as usize] = Some(value);
                    value = as_type(self.eval(step)?, init.ty);
                }
                value
            }
            ExprKind::Map { list: l, item, to } => {
                let items = list(self.eval(l)?);
                let mut arr = Json::array();
                for it in items {
                    self.budget.tick().map_err(&here)?;
                    self.env[*item as usize] = Some(Val::Str(it));
                    let v = self.eval(to)?.to_json();
                    value::array_push(&mut arr, v).map_err(&here)?;
                }
                Val::Json(arr)
            }
        })
    }
}
