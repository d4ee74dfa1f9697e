//! The body's type checker: JSON in, a typed [`Expr`] out, or the first error with its path.

use crate::args::{Param, check_ident};
use crate::ast::{ArithOp, CmpOp, Expr, ExprKind, Piece, Type};
use crate::error::{SpecError, SpecErrorKind};
use crate::limits::{MAX_DEPTH, MAX_LIST, MAX_NODES, MAX_OPERANDS};
use crate::walk::{array, idx, join, object, string};
use serde_json::{Map, Value};

/// Each operator with the other keys its object takes (`with` of `format` is optional).
const FORMS: &[(&str, &[&str])] = &[
    ("arg", &[]),
    ("var", &[]),
    ("let", &["value", "in"]),
    ("if", &["then", "else"]),
    ("do", &[]),
    ("eq", &[]),
    ("ne", &[]),
    ("lt", &[]),
    ("le", &[]),
    ("gt", &[]),
    ("ge", &[]),
    ("add", &[]),
    ("sub", &[]),
    ("mul", &[]),
    ("div", &[]),
    ("rem", &[]),
    ("and", &[]),
    ("or", &[]),
    ("not", &[]),
    ("concat", &[]),
    ("length", &[]),
    ("slice", &[]),
    ("format", &["with"]),
    ("to_string", &[]),
    ("parse_int", &["default"]),
    ("object", &[]),
    ("array", &[]),
    ("fact_get", &["default"]),
    ("fact_put", &["value"]),
    ("fact_delete", &[]),
    ("fact_keys", &["limit"]),
    ("for_each", &["as", "acc", "init", "step"]),
    ("map", &["as", "to"]),
];

fn known_operators() -> String {
    FORMS
        .iter()
        .map(|(op, _)| *op)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the checker learned besides the tree.
pub(crate) struct Checked {
    pub body: Expr,
    pub slots: Vec<Type>,
    pub paths: Vec<String>,
    pub writes_facts: bool,
}

/// Checks `body` (at path `path`) against `params`.
pub(crate) fn check_body(params: &[Param], body: &Value, path: &str) -> Result<Checked, SpecError> {
    let mut c = Checker {
        params,
        scope: Vec::new(),
        slots: Vec::new(),
        paths: Vec::new(),
        writes_facts: false,
        depth: 0,
    };
    let body = c.expr(body, path)?;
    Ok(Checked {
        body,
        slots: c.slots,
        paths: c.paths,
        writes_facts: c.writes_facts,
    })
}

struct Checker<'a> {
    params: &'a [Param],
    /// Innermost last.
    scope: Vec<(String, u32)>,
    slots: Vec<Type>,
    paths: Vec<String>,
    writes_facts: bool,
    depth: u32,
}

fn err(path: &str, kind: SpecErrorKind) -> SpecError {
    SpecError::new(path, kind)
}

fn invalid(path: &str, message: String) -> SpecError {
    err(path, SpecErrorKind::Invalid(message))
}

fn names(types: &[Type]) -> String {
    types
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// `e`'s type must be one of `allowed`.
fn expect(e: &Expr, allowed: &[Type], path: &str) -> Result<(), SpecError> {
    if allowed.contains(&e.ty) {
        return Ok(());
    }
    Err(err(
        path,
        SpecErrorKind::TypeMismatch {
            expected: names(allowed),
            found: e.ty.name().to_string(),
        },
    ))
}

/// The operands of an operator that takes a list: between `min` and `max` of them.
fn operands<'v>(
    v: &'v Value,
    path: &str,
    min: usize,
    max: usize,
) -> Result<&'v [Value], SpecError> {
    let items = array(v, path)?;
    if items.len() < min || items.len() > max {
        let want = if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(invalid(
            path,
            format!("takes {want} operands, found {}", items.len()),
        ));
    }
    Ok(items)
}

impl Checker<'_> {
    fn node(&mut self, path: &str) -> Result<u32, SpecError> {
        let id = self.paths.len() as u32;
        if id >= MAX_NODES {
            return Err(err(
                path,
                SpecErrorKind::OverLimit {
                    what: "the number of expressions in the body".into(),
                    value: u64::from(id) + 1,
                    limit: u64::from(MAX_NODES),
                },
            ));
        }
        self.paths.push(path.to_string());
        Ok(id)
    }

    fn bind(&mut self, name: &str, ty: Type, path: &str) -> Result<u32, SpecError> {
        check_ident(name, path)?;
        let slot = self.slots.len() as u32;
        self.slots.push(ty);
        self.scope.push((name.to_string(), slot));
        Ok(slot)
    }

    fn unbind(&mut self, n: usize) {
        self.scope.truncate(self.scope.len() - n);
    }

    fn expr(&mut self, v: &Value, path: &str) -> Result<Expr, SpecError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(
                path,
                SpecErrorKind::OverLimit {
                    what: "the nesting depth".into(),
                    value: u64::from(self.depth),
                    limit: u64::from(MAX_DEPTH),
                },
            ));
        }
        let result = self.expr_inner(v, path);
        self.depth -= 1;
        result
    }

    fn expr_inner(&mut self, v: &Value, path: &str) -> Result<Expr, SpecError> {
        let id = self.node(path)?;
        let leaf = |ty, kind| Ok(Expr { id, ty, kind });
        match v {
            Value::Null => leaf(Type::Json, ExprKind::Null),
            Value::Bool(b) => leaf(Type::Bool, ExprKind::Bool(*b)),
            Value::String(s) => leaf(Type::Str, ExprKind::Str(s.clone())),
            Value::Number(n) => match n.as_i64() {
                Some(i) => leaf(Type::Int, ExprKind::Int(i)),
                None => Err(invalid(
                    path,
                    format!("{n} is not an integer that fits 64 bits (the language has no fractions)"),
                )),
            },
            Value::Array(_) => Err(invalid(
                path,
                "a bare array is not an expression: write {\"array\": [...]} for a JSON array or {\"do\": [...]} for a sequence".into(),
            )),
            Value::Object(map) => self.form(id, map, path),
        }
    }

    fn form(&mut self, id: u32, map: &Map<String, Value>, path: &str) -> Result<Expr, SpecError> {
        let ops: Vec<&(&str, &[&str])> = FORMS
            .iter()
            .filter(|(op, _)| map.contains_key(*op))
            .collect();
        let [(op, companions)] = ops.as_slice() else {
            let found: Vec<&str> = map.keys().map(String::as_str).collect();
            return Err(err(
                path,
                SpecErrorKind::UnknownOperator {
                    found: if found.is_empty() {
                        "no keys".into()
                    } else {
                        format!("keys {}", found.join(", "))
                    },
                    known: known_operators(),
                },
            ));
        };
        for key in map.keys() {
            if key != op && !companions.contains(&key.as_str()) {
                let mut allowed = vec![*op];
                allowed.extend(companions.iter());
                return Err(err(
                    &join(path, key),
                    SpecErrorKind::UnknownField {
                        field: key.clone(),
                        allowed: allowed.join(", "),
                    },
                ));
            }
        }
        for c in *companions {
            let optional = *op == "format" && *c == "with";
            if !map.contains_key(*c) && !optional {
                return Err(err(
                    path,
                    SpecErrorKind::MissingField {
                        field: (*c).to_string(),
                    },
                ));
            }
        }
        let main = &map[*op];
        let main_path = join(path, op);
        let sub = |key: &str| join(path, key);
        let (ty, kind) = match *op {
            "arg" => {
                let name = string(main, &main_path)?;
                let Some(i) = self.params.iter().position(|p| p.name == name) else {
                    let params: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                    return Err(err(
                        &main_path,
                        SpecErrorKind::UnknownArgument {
                            name: name.to_string(),
                            params: if params.is_empty() {
                                "none".into()
                            } else {
                                params.join(", ")
                            },
                        },
                    ));
                };
                (self.params[i].kind.ty(), ExprKind::Arg(i as u32))
            }
            "var" => {
                let name = string(main, &main_path)?;
                let Some((_, slot)) = self.scope.iter().rev().find(|(n, _)| n == name) else {
                    let mut in_scope: Vec<&str> =
                        self.scope.iter().map(|(n, _)| n.as_str()).collect();
                    in_scope.dedup();
                    return Err(err(
                        &main_path,
                        SpecErrorKind::UnknownVariable {
                            name: name.to_string(),
                            in_scope: if in_scope.is_empty() {
                                "none".into()
                            } else {
                                in_scope.join(", ")
                            },
                        },
                    ));
                };
                (self.slots[*slot as usize], ExprKind::Var(*slot))
            }
            "let" => {
                let name = string(main, &main_path)?;
                let value = self.expr(&map["value"], &sub("value"))?;
                let slot = self.bind(name, value.ty, &main_path)?;
                let body = self.expr(&map["in"], &sub("in"));
                self.unbind(1);
                let body = body?;
                (
                    body.ty,
                    ExprKind::Let {
                        slot,
                        value: Box::new(value),
                        body: Box::new(body),
                    },
                )
            }
            "if" => {
                let cond = self.expr(main, &main_path)?;
                expect(&cond, &[Type::Bool], &main_path)?;
                let then = self.expr(&map["then"], &sub("then"))?;
                let els = self.expr(&map["else"], &sub("else"))?;
                let ty = if then.ty == els.ty {
                    then.ty
                } else {
                    Type::Json
                };
                (
                    ty,
                    ExprKind::If {
                        cond: Box::new(cond),
                        then: Box::new(then),
                        els: Box::new(els),
                    },
                )
            }
            "do" => {
                let items = operands(main, &main_path, 1, MAX_OPERANDS)?;
                let exprs = self.list(items, &main_path)?;
                let ty = exprs.last().map_or(Type::Json, |e| e.ty);
                (ty, ExprKind::Do(exprs))
            }
            "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
                let items = operands(main, &main_path, 2, 2)?;
                let a = self.expr(&items[0], &idx(&main_path, 0))?;
                let b = self.expr(&items[1], &idx(&main_path, 1))?;
                let (op, allowed): (CmpOp, &[Type]) = match *op {
                    "eq" => (CmpOp::Eq, &[Type::Int, Type::Str, Type::Bool]),
                    "ne" => (CmpOp::Ne, &[Type::Int, Type::Str, Type::Bool]),
                    "lt" => (CmpOp::Lt, &[Type::Int, Type::Str]),
                    "le" => (CmpOp::Le, &[Type::Int, Type::Str]),
                    "gt" => (CmpOp::Gt, &[Type::Int, Type::Str]),
                    _ => (CmpOp::Ge, &[Type::Int, Type::Str]),
                };
                expect(&a, allowed, &idx(&main_path, 0))?;
                expect(&b, &[a.ty], &idx(&main_path, 1))?;
                (
                    Type::Bool,
                    ExprKind::Compare {
                        op,
                        a: Box::new(a),
                        b: Box::new(b),
                    },
                )
            }
            "add" | "sub" | "mul" | "div" | "rem" => {
                let items = operands(main, &main_path, 2, 2)?;
                let a = self.int_operand(&items[0], &idx(&main_path, 0))?;
                let b = self.int_operand(&items[1], &idx(&main_path, 1))?;
                let op = match *op {
                    "add" => ArithOp::Add,
                    "sub" => ArithOp::Sub,
                    "mul" => ArithOp::Mul,
                    "div" => ArithOp::Div,
                    _ => ArithOp::Rem,
                };
                (
                    Type::Int,
                    ExprKind::Arith {
                        op,
                        a: Box::new(a),
                        b: Box::new(b),
                    },
                )
            }
            "and" | "or" => {
                let items = operands(main, &main_path, 2, MAX_OPERANDS)?;
                let args = self.typed_list(items, &main_path, Type::Bool)?;
                (
                    Type::Bool,
                    ExprKind::Logic {
                        and: *op == "and",
                        args,
                    },
                )
            }
            "not" => {
                let a = self.expr(main, &main_path)?;
                expect(&a, &[Type::Bool], &main_path)?;
                (Type::Bool, ExprKind::Not(Box::new(a)))
            }
            "concat" => {
                let items = operands(main, &main_path, 2, MAX_OPERANDS)?;
                (
                    Type::Str,
                    ExprKind::Concat(self.typed_list(items, &main_path, Type::Str)?),
                )
            }
            "length" => {
                let a = self.expr(main, &main_path)?;
                expect(&a, &[Type::Str, Type::List], &main_path)?;
                (Type::Int, ExprKind::Length(Box::new(a)))
            }
            "slice" => {
                let items = operands(main, &main_path, 3, 3)?;
                let s = self.expr(&items[0], &idx(&main_path, 0))?;
                expect(&s, &[Type::Str], &idx(&main_path, 0))?;
                let from = self.int_operand(&items[1], &idx(&main_path, 1))?;
                let to = self.int_operand(&items[2], &idx(&main_path, 2))?;
                (
                    Type::Str,
                    ExprKind::Slice {
                        s: Box::new(s),
                        from: Box::new(from),
                        to: Box::new(to),
                    },
                )
            }
            "format" => {
                let template = string(main, &main_path)?;
                let pieces = parse_template(template, &main_path)?;
                let with = match map.get("with") {
                    Some(w) => {
                        let items = operands(w, &sub("with"), 0, MAX_OPERANDS)?;
                        let mut out = Vec::with_capacity(items.len());
                        for (i, item) in items.iter().enumerate() {
                            let p = idx(&sub("with"), i);
                            let e = self.expr(item, &p)?;
                            expect(&e, &[Type::Int, Type::Str, Type::Bool], &p)?;
                            out.push(e);
                        }
                        out
                    }
                    None => vec![],
                };
                let holes = pieces.iter().filter(|p| matches!(p, Piece::Arg(_))).count();
                if holes != with.len() {
                    return Err(invalid(
                        path,
                        format!(
                            "the template has {holes} `{{}}` placeholder(s) but `with` has {} value(s)",
                            with.len()
                        ),
                    ));
                }
                (Type::Str, ExprKind::Format { pieces, with })
            }
            "to_string" => {
                let a = self.expr(main, &main_path)?;
                expect(&a, &[Type::Int, Type::Bool, Type::Str], &main_path)?;
                (Type::Str, ExprKind::ToString(Box::new(a)))
            }
            "parse_int" => {
                let s = self.expr(main, &main_path)?;
                expect(&s, &[Type::Str], &main_path)?;
                let default = self.int_operand(&map["default"], &sub("default"))?;
                (
                    Type::Int,
                    ExprKind::ParseInt {
                        s: Box::new(s),
                        default: Box::new(default),
                    },
                )
            }
            "object" => {
                let entries = object(main, &main_path)?;
                if entries.len() > MAX_OPERANDS {
                    return Err(err(
                        &main_path,
                        SpecErrorKind::OverLimit {
                            what: "the number of keys".into(),
                            value: entries.len() as u64,
                            limit: MAX_OPERANDS as u64,
                        },
                    ));
                }
                let mut out = Vec::with_capacity(entries.len());
                for (k, e) in entries {
                    out.push((k.clone(), self.expr(e, &join(&main_path, k))?));
                }
                (Type::Json, ExprKind::Object(out))
            }
            "array" => {
                let items = operands(main, &main_path, 0, MAX_OPERANDS)?;
                (Type::Json, ExprKind::Array(self.list(items, &main_path)?))
            }
            "fact_get" => {
                let key = self.str_operand(main, &main_path)?;
                let default = self.str_operand(&map["default"], &sub("default"))?;
                (
                    Type::Str,
                    ExprKind::FactGet {
                        key: Box::new(key),
                        default: Box::new(default),
                    },
                )
            }
            "fact_put" => {
                self.writes_facts = true;
                let key = self.str_operand(main, &main_path)?;
                let value = self.str_operand(&map["value"], &sub("value"))?;
                (
                    Type::Bool,
                    ExprKind::FactPut {
                        key: Box::new(key),
                        value: Box::new(value),
                    },
                )
            }
            "fact_delete" => {
                self.writes_facts = true;
                let key = self.str_operand(main, &main_path)?;
                (Type::Bool, ExprKind::FactDelete(Box::new(key)))
            }
            "fact_keys" => {
                let prefix = self.str_operand(main, &main_path)?;
                let limit = match map["limit"].as_u64() {
                    Some(n) if (1..=u64::from(MAX_LIST)).contains(&n) => n as u32,
                    _ => {
                        return Err(err(
                            &sub("limit"),
                            SpecErrorKind::MissingBound {
                                what: format!(
                                    "`limit` is a literal integer from 1 to {MAX_LIST}, found {}",
                                    map["limit"]
                                ),
                            },
                        ));
                    }
                };
                (
                    Type::List,
                    ExprKind::FactKeys {
                        prefix: Box::new(prefix),
                        limit,
                    },
                )
            }
            "for_each" => {
                let list = self.list_operand(main, &main_path)?;
                let init = self.expr(&map["init"], &sub("init"))?;
                let as_name = string(&map["as"], &sub("as"))?;
                let acc_name = string(&map["acc"], &sub("acc"))?;
                if as_name == acc_name {
                    return Err(invalid(
                        &sub("acc"),
                        format!("`as` and `acc` are both `{as_name}`: name them apart"),
                    ));
                }
                let item = self.bind(as_name, Type::Str, &sub("as"))?;
                let acc = match self.bind(acc_name, init.ty, &sub("acc")) {
                    Ok(slot) => slot,
                    Err(e) => {
                        self.unbind(1);
                        return Err(e);
                    }
                };
                let step = self.expr(&map["step"], &sub("step"));
                self.unbind(2);
                let step = step?;
                if init.ty != Type::Json {
                    expect(&step, &[init.ty], &sub("step"))?;
                }
                (
                    init.ty,
                    ExprKind::ForEach {
                        list: Box::new(list),
                        item,
                        acc,
                        init: Box::new(init),
                        step: Box::new(step),
                    },
                )
            }
            "map" => {
                let list = self.list_operand(main, &main_path)?;
                let item = self.bind(string(&map["as"], &sub("as"))?, Type::Str, &sub("as"))?;
                let to = self.expr(&map["to"], &sub("to"));
                self.unbind(1);
                (
                    Type::Json,
                    ExprKind::Map {
                        list: Box::new(list),
                        item,
                        to: Box::new(to?),
                    },
                )
            }
            other => unreachable!("operator `{other}` is in FORMS but not checked"),
        };
        Ok(Expr { id, ty, kind })
    }

    fn list(&mut self, items: &[Value], path: &str) -> Result<Vec<Expr>, SpecError> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.expr(item, &idx(path, i)))
            .collect()
    }

    fn typed_list(
        &mut self,
        items: &[Value],
        path: &str,
        ty: Type,
    ) -> Result<Vec<Expr>, SpecError> {
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let p = idx(path, i);
            let e = self.expr(item, &p)?;
            expect(&e, &[ty], &p)?;
            out.push(e);
        }
        Ok(out)
    }

    fn typed(&mut self, v: &Value, path: &str, ty: Type) -> Result<Expr, SpecError> {
        let e = self.expr(v, path)?;
        expect(&e, &[ty], path)?;
        Ok(e)
    }

    fn int_operand(&mut self, v: &Value, path: &str) -> Result<Expr, SpecError> {
        self.typed(v, path, Type::Int)
    }

    fn str_operand(&mut self, v: &Value, path: &str) -> Result<Expr, SpecError> {
        self.typed(v, path, Type::Str)
    }

    fn list_operand(&mut self, v: &Value, path: &str) -> Result<Expr, SpecError> {
        let e = self.expr(v, path)?;
        if e.ty != Type::List {
            return Err(err(
                path,
                SpecErrorKind::TypeMismatch {
                    expected: "list (an array parameter, which has `maxItems`, or `fact_keys`, which has `limit`: loops run over bounded lists only)".into(),
                    found: e.ty.name().into(),
                },
            ));
        }
        Ok(e)
    }
}

/// `"{} has {{braces}}"` -> `[Arg(0), Lit(" has {braces}")]`.
fn parse_template(template: &str, path: &str) -> Result<Vec<Piece>, SpecError> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut holes = 0;
    let mut chars = template.chars().enumerate().peekable();
    while let Some((i, c)) = chars.next() {
        match (c, chars.peek().map(|(_, c)| *c)) {
            ('{', Some('{')) | ('}', Some('}')) => {
                lit.push(c);
                chars.next();
            }
            ('{', Some('}')) => {
                chars.next();
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Arg(holes));
                holes += 1;
            }
            ('{', _) | ('}', _) => {
                return Err(invalid(
                    path,
                    format!(
                        "a lone `{c}` at character {i} of the template: `{{}}` is a placeholder, `{{{{` and `}}}}` are braces"
                    ),
                ));
            }
            _ => lit.push(c),
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}
