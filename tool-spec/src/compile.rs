//! The compiler: a checked body to the body of a Wasm function `() -> i32`.
//!
//! Control flow (`if`, `and`/`or`, loops, `let`) and integer arithmetic and comparison are
//! Wasm instructions, with the overflow and division checks inline; strings, lists, JSON and
//! facts are host ABI calls on handles ([`crate::abi`]). The function answers the handle of
//! its JSON result, or -1 after a fault.
//!
//! ```text
//! int add:   <a> <b> local.set $b local.set $a
//!            $r = $a + $b
//!            if ((($a ^ $r) & ($b ^ $r)) < 0) { fault(1, node); return -1 }
//!            $r
//! fallible:  call $host_fn; local.tee $chk; i32.const 0; i32.lt_s
//!            if { fault(0, node); return -1 } local.get $chk
//! for_each:  $l = <list>; $acc = <init>; $n = list_len($l); $i = 0
//!            loop { br_if exit ($i >= $n); tick or fail; $m = mark()
//!                   $item = list_get($l, $i); $acc = release($m, <step>); $i += 1 }
//! ```
//!
//! Operand evaluation order is the interpreter's, so faults happen at the same nodes.

use crate::abi::{Abi, AbiIndices, FAULT_DIVISION_BY_ZERO, FAULT_OVERFLOW};
use crate::ast::{ArithOp, CmpOp, Expr, ExprKind, Piece, Type};
use crate::spec::ToolSpec;
use std::collections::{BTreeMap, BTreeSet};
use wasm_encoder::{BlockType, Function, InstructionSink, ValType};

/// The Wasm type that holds a value of `ty`.
pub fn wasm_type(ty: Type) -> ValType {
    match ty {
        Type::Int => ValType::I64,
        _ => ValType::I32,
    }
}

/// Whether values of `ty` are host handles (not ints or bools held in Wasm).
fn is_handle(ty: Type) -> bool {
    matches!(ty, Type::Str | Type::List | Type::Json)
}

/// The body (locals and code, without the size prefix) of `spec`'s function, calling the ABI
/// at `abi`.
pub fn compile(spec: &ToolSpec, abi: &AbiIndices) -> Vec<u8> {
    let mut g = Gen {
        abi,
        locals: spec.slots.iter().map(|t| wasm_type(*t)).collect(),
        code: Vec::new(),
        temps: None,
        constants: BTreeMap::new(),
        args: BTreeMap::new(),
    };
    g.temps = Some(Temps {
        chk: g.local(ValType::I32),
        a: g.local(ValType::I64),
        b: g.local(ValType::I64),
        r: g.local(ValType::I64),
    });
    // Every string constant is made once, on entry, below any loop's mark: uses read it.
    let mut texts = BTreeSet::new();
    constants(&spec.body, &mut texts);
    for text in texts {
        g.make_str(&text);
        let local = g.local(ValType::I32);
        g.sink().local_set(local);
        g.constants.insert(text, local);
    }
    // Integer and boolean arguments are read once, into locals.
    let mut args = BTreeSet::new();
    scalar_args(&spec.body, &mut args);
    for (index, ty) in args {
        g.sink().i32_const(index as i32);
        g.call(if ty == Type::Int {
            Abi::ArgInt
        } else {
            Abi::ArgBool
        });
        let local = g.local(wasm_type(ty));
        g.sink().local_set(local);
        g.args.insert(index, local);
    }
    g.expr(&spec.body);
    g.emit_json(spec.body.ty);
    g.sink().end();
    let mut f = Function::new_with_locals_types(g.locals);
    f.raw(g.code);
    f.into_raw_body()
}

/// Locals every node may use between two of its own instructions (never across an operand's
/// evaluation, which may use them too).
#[derive(Clone, Copy)]
struct Temps {
    chk: u32,
    a: u32,
    b: u32,
    r: u32,
}

struct Gen<'a> {
    abi: &'a AbiIndices,
    /// Slots first (local `i` is slot `i`), then temporaries.
    locals: Vec<ValType>,
    code: Vec<u8>,
    temps: Option<Temps>,
    /// The local holding each string constant.
    constants: BTreeMap<String, u32>,
    /// The local holding each integer or boolean argument.
    args: BTreeMap<u32, u32>,
}

/// The integer and boolean arguments `e` reads.
fn scalar_args(e: &Expr, out: &mut BTreeSet<(u32, Type)>) {
    if let ExprKind::Arg(i) = e.kind
        && matches!(e.ty, Type::Int | Type::Bool)
    {
        out.insert((i, e.ty));
    }
    children(e, &mut |c| scalar_args(c, out));
}

/// Every string constant of `e`: literals, object keys, format pieces.
fn constants(e: &Expr, out: &mut BTreeSet<String>) {
    match &e.kind {
        ExprKind::Str(s) => {
            out.insert(s.clone());
        }
        ExprKind::Format { pieces, .. } => {
            if pieces.is_empty() {
                out.insert(String::new());
            }
            for p in pieces {
                if let Piece::Lit(s) = p {
                    out.insert(s.clone());
                }
            }
        }
        ExprKind::Object(entries) => {
            for (k, _) in entries {
                out.insert(k.clone());
            }
        }
        _ => {}
    }
    children(e, &mut |c| constants(c, out));
}

/// Calls `f` on each direct operand of `e`.
fn children(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    match &e.kind {
        ExprKind::Int(_)
        | ExprKind::Bool(_)
        | ExprKind::Str(_)
        | ExprKind::Null
        | ExprKind::Arg(_)
        | ExprKind::Var(_) => {}
        ExprKind::Let { value, body, .. } => {
            f(value);
            f(body);
        }
        ExprKind::If { cond, then, els } => {
            f(cond);
            f(then);
            f(els);
        }
        ExprKind::Do(items)
        | ExprKind::Logic { args: items, .. }
        | ExprKind::Concat(items)
        | ExprKind::Array(items)
        | ExprKind::Format { with: items, .. } => items.iter().for_each(f),
        ExprKind::Compare { a, b, .. } | ExprKind::Arith { a, b, .. } => {
            f(a);
            f(b);
        }
        ExprKind::Not(a)
        | ExprKind::Length(a)
        | ExprKind::ToString(a)
        | ExprKind::FactDelete(a)
        | ExprKind::FactKeys { prefix: a, .. } => f(a),
        ExprKind::Slice { s, from, to } => {
            f(s);
            f(from);
            f(to);
        }
        ExprKind::ParseInt { s: a, default: b }
        | ExprKind::FactGet { key: a, default: b }
        | ExprKind::FactPut { key: a, value: b } => {
            f(a);
            f(b);
        }
        ExprKind::Object(entries) => entries.iter().for_each(|(_, v)| f(v)),
        ExprKind::ForEach {
            list, init, step, ..
        } => {
            f(list);
            f(init);
            f(step);
        }
        ExprKind::Map { list, to, .. } => {
            f(list);
            f(to);
        }
    }
}

/// Whether variable `slot` is read in `e`.
fn uses_slot(e: &Expr, slot: u32) -> bool {
    if e.kind == ExprKind::Var(slot) {
        return true;
    }
    let mut found = false;
    children(e, &mut |c| found |= uses_slot(c, slot));
    found
}

/// Whether evaluating `e` may put a value in the host's arena (constants are made on entry).
fn allocates(e: &Expr) -> bool {
    let here = match &e.kind {
        ExprKind::Null
        | ExprKind::Object(_)
        | ExprKind::Array(_)
        | ExprKind::Map { .. }
        | ExprKind::ForEach { .. }
        | ExprKind::Concat(_)
        | ExprKind::Slice { .. }
        | ExprKind::Format { .. }
        | ExprKind::FactGet { .. }
        | ExprKind::FactKeys { .. } => true,
        ExprKind::ToString(a) => a.ty != Type::Str,
        ExprKind::If { then, els, .. } => {
            e.ty == Type::Json && (then.ty != Type::Json || els.ty != Type::Json)
        }
        _ => false,
    };
    let mut found = here;
    children(e, &mut |c| found |= allocates(c));
    found
}

/// Whether the JSON handle `e` evaluates to is the expression's own (a value it made), which
/// `json_set` / `json_push` may take; otherwise (a variable's, say) it is copied first.
fn fresh(e: &Expr) -> bool {
    let branch = |b: &Expr| b.ty != Type::Json || fresh(b);
    match &e.kind {
        ExprKind::Null | ExprKind::Object(_) | ExprKind::Array(_) | ExprKind::Map { .. } => true,
        ExprKind::If { then, els, .. } => branch(then) && branch(els),
        ExprKind::Let { body, .. } => fresh(body),
        ExprKind::Do(items) => items.last().is_some_and(fresh),
        ExprKind::ForEach { init, step, .. } => branch(init) && branch(step),
        _ => false,
    }
}

impl Gen<'_> {
    fn sink(&mut self) -> InstructionSink<'_> {
        InstructionSink::new(&mut self.code)
    }

    fn t(&self) -> Temps {
        self.temps.expect("temporaries are made first")
    }

    fn local(&mut self, ty: ValType) -> u32 {
        self.locals.push(ty);
        self.locals.len() as u32 - 1
    }

    fn call(&mut self, f: Abi) {
        let index = self.abi.of(f);
        self.sink().call(index);
    }

    /// `fault(code, node); return -1`.
    fn fail(&mut self, code: i32, node: u32) {
        let fault = self.abi.of(Abi::Fault);
        self.sink()
            .i32_const(code)
            .i32_const(node as i32)
            .call(fault)
            .i32_const(-1)
            .return_();
    }

    /// After a call answering an `i32` that is negative on failure: leaves it, or fails.
    fn check(&mut self, node: u32) {
        let chk = self.t().chk;
        self.sink()
            .local_tee(chk)
            .i32_const(0)
            .i32_lt_s()
            .if_(BlockType::Empty);
        self.fail(0, node);
        self.sink().end().local_get(chk);
    }

    /// A string constant (made on entry).
    fn str_const(&mut self, s: &str) {
        let local = self.constants[s];
        self.sink().local_get(local);
    }

    /// Makes a string: its bytes pushed 8 at a time, then `const_str`.
    fn make_str(&mut self, s: &str) {
        let push = self.abi.of(Abi::BytesPush);
        for chunk in s.as_bytes().chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.sink()
                .i64_const(i64::from_le_bytes(word))
                .i32_const(chunk.len() as i32)
                .call(push);
        }
        self.call(Abi::ConstStr);
    }

    /// Converts the value on the stack, of type `ty`, to a JSON handle.
    fn emit_json(&mut self, ty: Type) {
        match ty {
            Type::Int => self.call(Abi::JsonInt),
            Type::Bool => self.call(Abi::JsonBool),
            Type::Str => self.call(Abi::JsonStr),
            Type::List => self.call(Abi::JsonList),
            Type::Json => {}
        }
    }

    /// Evaluates `e` and converts it to `ty` (only to `json` is there anything to do).
    fn expr_as(&mut self, e: &Expr, ty: Type) {
        self.expr(e);
        if ty == Type::Json {
            self.emit_json(e.ty);
        }
    }

    /// Evaluates `e` as a JSON handle that `json_set` / `json_push` may take.
    fn expr_owned(&mut self, e: &Expr) {
        self.expr_as(e, Type::Json);
        if e.ty == Type::Json && !fresh(e) {
            self.call(Abi::JsonCopy);
        }
    }

    /// Converts an int, bool or string on the stack to a string handle.
    fn emit_text(&mut self, ty: Type) {
        match ty {
            Type::Int => self.call(Abi::IntToStr),
            Type::Bool => self.call(Abi::BoolToStr),
            _ => {}
        }
    }

    fn expr(&mut self, e: &Expr) {
        let node = e.id;
        match &e.kind {
            ExprKind::Int(i) => {
                #[cfg(feature = "fault-miscompile")]
                let i = &i.wrapping_add(i64::from(crate::fault::miscompile()));
                self.sink().i64_const(*i);
            }
            ExprKind::Bool(b) => {
                self.sink().i32_const(i32::from(*b));
            }
            ExprKind::Str(s) => self.str_const(s),
            ExprKind::Null => self.call(Abi::JsonNull),
            ExprKind::Arg(i) => match e.ty {
                Type::Int | Type::Bool => {
                    let local = self.args[i];
                    self.sink().local_get(local);
                }
                _ => {
                    // Arguments are handles 0..n.
                    self.sink().i32_const(*i as i32);
                }
            },
            ExprKind::Var(slot) => {
                self.sink().local_get(*slot);
            }
            ExprKind::Let { slot, value, body } => {
                self.expr(value);
                self.sink().local_set(*slot);
                self.expr(body);
            }
            ExprKind::If { cond, then, els } => {
                self.expr(cond);
                self.sink().if_(BlockType::Result(wasm_type(e.ty)));
                self.expr_as(then, e.ty);
                self.sink().else_();
                self.expr_as(els, e.ty);
                self.sink().end();
            }
            ExprKind::Do(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.expr(item);
                    if i + 1 < items.len() {
                        self.sink().drop();
                    }
                }
            }
            ExprKind::Compare { op, a, b } => self.compare(*op, a, b),
            ExprKind::Arith { op, a, b } => self.arith(*op, a, b, node),
            ExprKind::Logic { and, args } => self.logic(*and, args),
            ExprKind::Not(a) => {
                self.expr(a);
                self.sink().i32_eqz();
            }
            ExprKind::Concat(items) => {
                let parts: Vec<u32> = items
                    .iter()
                    .map(|item| {
                        self.expr(item);
                        let l = self.local(ValType::I32);
                        self.sink().local_set(l);
                        l
                    })
                    .collect();
                self.join(&parts, node);
            }
            ExprKind::Length(a) => {
                self.expr(a);
                if a.ty == Type::List {
                    self.call(Abi::ListLen);
                    self.sink().i64_extend_i32_s();
                } else {
                    self.call(Abi::StrLen);
                }
            }
            ExprKind::Slice { s, from, to } => {
                self.expr(s);
                self.expr(from);
                self.expr(to);
                self.call(Abi::StrSlice);
            }
            ExprKind::Format { pieces, with } => {
                let texts: Vec<u32> = with
                    .iter()
                    .map(|w| {
                        self.expr(w);
                        self.emit_text(w.ty);
                        let l = self.local(ValType::I32);
                        self.sink().local_set(l);
                        l
                    })
                    .collect();
                let mut parts = Vec::with_capacity(pieces.len());
                for piece in pieces {
                    match piece {
                        Piece::Arg(i) => parts.push(texts[*i]),
                        Piece::Lit(s) => {
                            self.str_const(s);
                            let l = self.local(ValType::I32);
                            self.sink().local_set(l);
                            parts.push(l);
                        }
                    }
                }
                if parts.is_empty() {
                    self.str_const("");
                } else {
                    self.join(&parts, node);
                }
            }
            ExprKind::ToString(a) => {
                self.expr(a);
                self.emit_text(a.ty);
            }
            ExprKind::ParseInt { s, default } => {
                self.expr(s);
                self.expr(default);
                self.call(Abi::StrParseInt);
            }
            ExprKind::Object(entries) => {
                self.call(Abi::JsonObject);
                let obj = self.local(ValType::I32);
                self.sink().local_set(obj);
                for (k, v) in entries {
                    self.sink().local_get(obj);
                    self.str_const(k);
                    self.expr_owned(v);
                    self.call(Abi::JsonSet);
                    self.check(node);
                    self.sink().drop();
                }
                self.sink().local_get(obj);
            }
            ExprKind::Array(items) => {
                self.call(Abi::JsonArray);
                let arr = self.local(ValType::I32);
                self.sink().local_set(arr);
                for item in items {
                    self.sink().local_get(arr);
                    self.expr_owned(item);
                    self.call(Abi::JsonPush);
                    self.check(node);
                    self.sink().drop();
                }
                self.sink().local_get(arr);
            }
            ExprKind::FactGet { key, default } => {
                self.expr(key);
                self.expr(default);
                self.call(Abi::FactGet);
                self.check(node);
            }
            ExprKind::FactPut { key, value } => {
                self.expr(key);
                self.expr(value);
                self.call(Abi::FactPut);
                self.check(node);
            }
            ExprKind::FactDelete(key) => {
                self.expr(key);
                self.call(Abi::FactDelete);
                self.check(node);
            }
            ExprKind::FactKeys { prefix, limit } => {
                self.expr(prefix);
                self.sink().i32_const(*limit as i32);
                self.call(Abi::FactKeys);
                self.check(node);
            }
            ExprKind::ForEach {
                list,
                item,
                acc,
                init,
                step,
            } => {
                let acc_ty = init.ty;
                self.expr(list);
                let l = self.local(ValType::I32);
                self.sink().local_set(l);
                self.expr(init);
                self.sink().local_set(*acc);
                // An iteration that makes no value (integer work on the accumulator, say)
                // needs neither the item nor a mark to free it by.
                let item = uses_slot(step, *item).then_some(*item);
                let converts = acc_ty == Type::Json && step.ty != Type::Json;
                let frees = item.is_some() || converts || allocates(step);
                self.each(l, item, node, frees, |g, mark| match mark {
                    Some(mark) => {
                        g.sink().local_get(mark);
                        g.expr_as(step, acc_ty);
                        if is_handle(acc_ty) {
                            g.call(Abi::Release);
                            g.sink().local_set(*acc);
                        } else {
                            g.sink().local_set(*acc).i32_const(-1);
                            g.call(Abi::Release);
                            g.sink().drop();
                        }
                    }
                    None => {
                        g.expr_as(step, acc_ty);
                        g.sink().local_set(*acc);
                    }
                });
                self.sink().local_get(*acc);
            }
            ExprKind::Map { list, item, to } => {
                self.expr(list);
                let l = self.local(ValType::I32);
                self.sink().local_set(l);
                self.call(Abi::JsonArray);
                let arr = self.local(ValType::I32);
                self.sink().local_set(arr);
                let item = uses_slot(to, *item).then_some(*item);
                self.each(l, item, node, true, |g, mark| {
                    let mark = mark.expect("map iterations free what they make");
                    g.sink().local_get(arr);
                    g.expr_owned(to);
                    g.call(Abi::JsonPush);
                    g.check(node);
                    g.sink().drop().local_get(mark).i32_const(-1);
                    g.call(Abi::Release);
                    g.sink().drop();
                });
                self.sink().local_get(arr);
            }
        }
    }

    /// Joins the string handles in `parts` left to right with `str_concat`.
    fn join(&mut self, parts: &[u32], node: u32) {
        self.sink().local_get(parts[0]);
        for part in &parts[1..] {
            self.sink().local_get(*part);
            self.call(Abi::StrConcat);
            self.check(node);
        }
    }

    /// A loop over the list in local `list`: per item, a budget tick, a mark if `frees`, the
    /// item in slot `item` if the body uses it, then `body` (which releases the mark).
    fn each(
        &mut self,
        list: u32,
        item: Option<u32>,
        node: u32,
        frees: bool,
        body: impl FnOnce(&mut Self, Option<u32>),
    ) {
        let n = self.local(ValType::I32);
        let i = self.local(ValType::I32);
        let mark = frees.then(|| self.local(ValType::I32));
        self.sink().local_get(list);
        self.call(Abi::ListLen);
        self.sink()
            .local_set(n)
            .i32_const(0)
            .local_set(i)
            .block(BlockType::Empty)
            .loop_(BlockType::Empty)
            .local_get(i)
            .local_get(n)
            .i32_ge_s()
            .br_if(1);
        self.call(Abi::Tick);
        self.check(node);
        self.sink().drop();
        if let Some(mark) = mark {
            self.call(Abi::Mark);
            self.sink().local_set(mark);
        }
        if let Some(item) = item {
            self.sink().local_get(list).local_get(i);
            self.call(Abi::ListGet);
            self.sink().local_set(item);
        }
        body(self, mark);
        self.sink()
            .local_get(i)
            .i32_const(1)
            .i32_add()
            .local_set(i)
            .br(0)
            .end()
            .end();
    }

    fn compare(&mut self, op: CmpOp, a: &Expr, b: &Expr) {
        self.expr(a);
        self.expr(b);
        match a.ty {
            Type::Int => {
                let mut s = self.sink();
                match op {
                    CmpOp::Eq => s.i64_eq(),
                    CmpOp::Ne => s.i64_ne(),
                    CmpOp::Lt => s.i64_lt_s(),
                    CmpOp::Le => s.i64_le_s(),
                    CmpOp::Gt => s.i64_gt_s(),
                    CmpOp::Ge => s.i64_ge_s(),
                };
            }
            Type::Bool => {
                let mut s = self.sink();
                match op {
                    CmpOp::Ne => s.i32_ne(),
                    _ => s.i32_eq(),
                };
            }
            _ => {
                self.call(Abi::StrCmp);
                let mut s = self.sink();
                s.i32_const(0);
                match op {
                    CmpOp::Eq => s.i32_eq(),
                    CmpOp::Ne => s.i32_ne(),
                    CmpOp::Lt => s.i32_lt_s(),
                    CmpOp::Le => s.i32_le_s(),
                    CmpOp::Gt => s.i32_gt_s(),
                    CmpOp::Ge => s.i32_ge_s(),
                };
            }
        }
    }

    fn logic(&mut self, and: bool, args: &[Expr]) {
        self.expr(&args[0]);
        if args.len() == 1 {
            return;
        }
        self.sink().if_(BlockType::Result(ValType::I32));
        if and {
            self.logic(and, &args[1..]);
            self.sink().else_().i32_const(0);
        } else {
            self.sink().i32_const(1).else_();
            self.logic(and, &args[1..]);
        }
        self.sink().end();
    }

    fn arith(&mut self, op: ArithOp, a: &Expr, b: &Expr, node: u32) {
        self.expr(a);
        self.expr(b);
        let Temps { a, b, r, .. } = self.t();
        self.sink().local_set(b).local_set(a);
        match op {
            ArithOp::Add | ArithOp::Sub => {
                let mut s = self.sink();
                s.local_get(a).local_get(b);
                if op == ArithOp::Add {
                    // Overflow iff both operands differ in sign from the result.
                    s.i64_add()
                        .local_set(r)
                        .local_get(a)
                        .local_get(r)
                        .i64_xor()
                        .local_get(b)
                        .local_get(r)
                        .i64_xor();
                } else {
                    // Overflow iff the operands differ in sign and the result's differs from a's.
                    s.i64_sub()
                        .local_set(r)
                        .local_get(a)
                        .local_get(b)
                        .i64_xor()
                        .local_get(a)
                        .local_get(r)
                        .i64_xor();
                }
                s.i64_and().i64_const(0).i64_lt_s().if_(BlockType::Empty);
                self.fail(FAULT_OVERFLOW, node);
                self.sink().end().local_get(r);
            }
            ArithOp::Mul => {
                // -1 * MIN overflows (and MIN / -1 would trap below); otherwise a non-zero a
                // overflowed iff (a * b) / a != b.
                self.min_and_minus_one(a, b, node);
                self.min_and_minus_one(b, a, node);
                self.sink()
                    .local_get(a)
                    .local_get(b)
                    .i64_mul()
                    .local_set(r)
                    .local_get(a)
                    .i64_const(0)
                    .i64_ne()
                    .if_(BlockType::Empty)
                    .local_get(r)
                    .local_get(a)
                    .i64_div_s()
                    .local_get(b)
                    .i64_ne()
                    .if_(BlockType::Empty);
                self.fail(FAULT_OVERFLOW, node);
                self.sink().end().end().local_get(r);
            }
            ArithOp::Div | ArithOp::Rem => {
                self.sink().local_get(b).i64_eqz().if_(BlockType::Empty);
                self.fail(FAULT_DIVISION_BY_ZERO, node);
                self.sink().end();
                self.min_and_minus_one(a, b, node);
                let mut s = self.sink();
                s.local_get(a).local_get(b);
                if op == ArithOp::Div {
                    s.i64_div_s();
                } else {
                    s.i64_rem_s();
                }
            }
        }
    }

    /// `if (x == i64::MIN && y == -1) { fault(overflow, node); return -1 }`.
    fn min_and_minus_one(&mut self, x: u32, y: u32, node: u32) {
        self.sink()
            .local_get(x)
            .i64_const(i64::MIN)
            .i64_eq()
            .local_get(y)
            .i64_const(-1)
            .i64_eq()
            .i32_and()
            .if_(BlockType::Empty);
        self.fail(FAULT_OVERFLOW, node);
        self.sink().end();
    }
}
