//! The host side of the ABI ([`crate::abi`]): one [`Host`] per call holds the arena of values,
//! the call's fact overlay and its budget. The agent's exported ABI functions forward to it;
//! the tests' Wasm harness does the same, so compiled code is tested against this very code.
//!
//! Every method is total: a bad handle, a value of the wrong kind or an out-of-range number is
//! recorded as [`Fault::AbiMisuse`] and answered with a harmless value, never a panic (the code
//! calling it may be damaged). The first fault recorded is the one the call fails with.

use crate::budget::Budget;
use crate::error::{Failure, Fault};
use crate::facts::{FactStore, Overlay};
use crate::limits::{MAX_LIST, MAX_REGISTRY_BYTES};
use crate::value::{self, Json, Val};
use std::collections::BTreeMap;

/// Most values alive at once in one call. Compiled code frees each loop iteration's values
/// (`mark`/`release`), so a correct body stays far below this; reaching it is misuse.
pub const MAX_ARENA: usize = 1 << 20;

/// The state of one call of compiled code.
pub struct Host<S, B> {
    arena: Vec<Val>,
    args: usize,
    facts: Overlay<S>,
    budget: B,
    pending: Vec<u8>,
    fault: Option<Failure>,
}

/// What a finished call produced: its result and the fact writes to apply if it succeeded.
pub struct Finished {
    /// The result, or why it failed.
    pub result: Result<Val, Failure>,
    /// The writes (`None` deletes); apply them only on `Ok`.
    pub writes: BTreeMap<String, Option<String>>,
}

type Misuse = Fault;

fn misuse(what: impl Into<String>) -> Misuse {
    Fault::AbiMisuse(what.into())
}

impl<S: FactStore, B: Budget> Host<S, B> {
    /// A call with `args` (handles `0..args.len()`), over `facts`, within `budget`.
    pub fn new(mut args: Vec<Val>, facts: Overlay<S>, budget: B) -> Self {
        args.reserve(64);
        Self {
            args: args.len(),
            arena: args,
            facts,
            budget,
            pending: Vec::new(),
            fault: None,
        }
    }

    /// Whether a fault has been recorded.
    pub fn failed(&self) -> bool {
        self.fault.is_some()
    }

    fn record(&mut self, fault: Fault) {
        if self.fault.is_none() {
            self.fault = Some(Failure { fault, node: None });
        }
    }

    /// Records `r`'s fault and answers `fallback` for it.
    fn or<T>(&mut self, r: Result<T, Fault>, fallback: T) -> T {
        r.unwrap_or_else(|fault| {
            self.record(fault);
            fallback
        })
    }

    fn push(&mut self, v: Val) -> Result<i32, Fault> {
        if self.arena.len() >= MAX_ARENA {
            return Err(misuse(format!("more than {MAX_ARENA} live values")));
        }
        self.arena.push(v);
        Ok(self.arena.len() as i32 - 1)
    }

    fn val(&self, h: i32) -> Result<&Val, Fault> {
        usize::try_from(h)
            .ok()
            .and_then(|i| self.arena.get(i))
            .ok_or_else(|| misuse(format!("handle {h} is not a live value")))
    }

    fn str(&self, h: i32) -> Result<&str, Fault> {
        match self.val(h)? {
            Val::Str(s) => Ok(s),
            other => Err(misuse(format!(
                "handle {h} is {}, not a string",
                kind(other)
            ))),
        }
    }

    fn list(&self, h: i32) -> Result<&[String], Fault> {
        match self.val(h)? {
            Val::List(l) => Ok(l),
            other => Err(misuse(format!("handle {h} is {}, not a list", kind(other)))),
        }
    }

    fn json(&self, h: i32) -> Result<&Json, Fault> {
        match self.val(h)? {
            Val::Json(j) => Ok(j),
            other => Err(misuse(format!("handle {h} is {}, not JSON", kind(other)))),
        }
    }

    /// Takes JSON value `h` out of the arena, leaving `null` (the handle was the caller's to give).
    fn take_json(&mut self, h: i32) -> Result<Json, Fault> {
        match usize::try_from(h).ok().and_then(|i| self.arena.get_mut(i)) {
            Some(Val::Json(j)) => Ok(std::mem::replace(j, Json::null())),
            _ => Err(misuse(format!("handle {h} is not a JSON value"))),
        }
    }

    fn json_mut(&mut self, h: i32) -> Result<&mut Json, Fault> {
        match usize::try_from(h).ok().and_then(|i| self.arena.get_mut(i)) {
            Some(Val::Json(j)) => Ok(j),
            _ => Err(misuse(format!("handle {h} is not a JSON value"))),
        }
    }

    fn handle(&mut self, r: Result<Val, Fault>) -> i32 {
        let r = r.and_then(|v| self.push(v));
        self.or(r, -1)
    }

    /// `bytes_push(chunk, n)`.
    pub fn bytes_push(&mut self, chunk: i64, n: i32) {
        let r = push_bytes(&mut self.pending, chunk, n);
        self.or(r, ());
    }

    /// `const_str()`.
    pub fn const_str(&mut self) -> i32 {
        let bytes = std::mem::take(&mut self.pending);
        let s =
            String::from_utf8(bytes).map_err(|_| misuse("const_str of bytes that are not UTF-8"));
        self.handle(s.map(Val::Str))
    }

    /// `arg_int(i)`.
    pub fn arg_int(&mut self, i: i32) -> i64 {
        let r = match self.arg(i) {
            Ok(Val::Int(v)) => Ok(*v),
            Ok(_) => Err(misuse(format!("argument {i} is not an int"))),
            Err(e) => Err(e),
        };
        self.or(r, 0)
    }

    /// `arg_bool(i)`.
    pub fn arg_bool(&mut self, i: i32) -> i32 {
        let r = match self.arg(i) {
            Ok(Val::Bool(v)) => Ok(i32::from(*v)),
            Ok(_) => Err(misuse(format!("argument {i} is not a bool"))),
            Err(e) => Err(e),
        };
        self.or(r, 0)
    }

    fn arg(&self, i: i32) -> Result<&Val, Fault> {
        match usize::try_from(i) {
            Ok(i) if i < self.args => Ok(&self.arena[i]),
            _ => Err(misuse(format!(
                "argument {i} does not exist ({} given)",
                self.args
            ))),
        }
    }

    /// `str_concat(a, b)`.
    pub fn str_concat(&mut self, a: i32, b: i32) -> i32 {
        let r = (|| value::concat(self.str(a)?, self.str(b)?).map(Val::Str))();
        self.handle(r)
    }

    /// `str_len(s)`.
    pub fn str_len(&mut self, s: i32) -> i64 {
        let r = self.str(s).map(value::length);
        self.or(r, 0)
    }

    /// `str_slice(s, from, to)`.
    pub fn str_slice(&mut self, s: i32, from: i64, to: i64) -> i32 {
        let r = self.str(s).map(|s| Val::Str(value::slice(s, from, to)));
        self.handle(r)
    }

    /// `str_cmp(a, b)`.
    pub fn str_cmp(&mut self, a: i32, b: i32) -> i32 {
        let r = (|| Ok(self.str(a)?.cmp(self.str(b)?) as i32))();
        self.or(r, 0)
    }

    /// `str_parse_int(s, default)`.
    pub fn str_parse_int(&mut self, s: i32, default: i64) -> i64 {
        let r = self.str(s).map(|s| value::parse_int(s, default));
        self.or(r, default)
    }

    /// `int_to_str(i)`.
    pub fn int_to_str(&mut self, i: i64) -> i32 {
        self.handle(Ok(Val::Str(value::int_to_string(i))))
    }

    /// `bool_to_str(b)`.
    pub fn bool_to_str(&mut self, b: i32) -> i32 {
        self.handle(Ok(Val::Str(value::bool_to_string(b != 0))))
    }

    /// `list_len(l)`.
    pub fn list_len(&mut self, l: i32) -> i32 {
        let r = self.list(l).map(|l| l.len() as i32);
        self.or(r, 0)
    }

    /// `list_get(l, i)`.
    pub fn list_get(&mut self, l: i32, i: i32) -> i32 {
        let r = self.list(l).and_then(|items| {
            usize::try_from(i)
                .ok()
                .and_then(|i| items.get(i))
                .map(|s| Val::Str(s.clone()))
                .ok_or_else(|| misuse(format!("item {i} of a list of {}", items.len())))
        });
        self.handle(r)
    }

    /// `json_null()`.
    pub fn json_null(&mut self) -> i32 {
        self.handle(Ok(Val::Json(Json::null())))
    }

    /// `json_int(i)`.
    pub fn json_int(&mut self, i: i64) -> i32 {
        self.handle(Ok(Val::Json(Val::Int(i).to_json())))
    }

    /// `json_bool(b)`.
    pub fn json_bool(&mut self, b: i32) -> i32 {
        self.handle(Ok(Val::Json(Val::Bool(b != 0).to_json())))
    }

    /// `json_str(s)`.
    pub fn json_str(&mut self, s: i32) -> i32 {
        let r = self
            .str(s)
            .map(|s| Val::Json(Val::Str(s.to_string()).to_json()));
        self.handle(r)
    }

    /// `json_list(l)`.
    pub fn json_list(&mut self, l: i32) -> i32 {
        let r = self
            .list(l)
            .map(|l| Val::Json(Val::List(l.to_vec()).to_json()));
        self.handle(r)
    }

    /// `json_object()`.
    pub fn json_object(&mut self) -> i32 {
        self.handle(Ok(Val::Json(Json::object())))
    }

    /// `json_array()`.
    pub fn json_array(&mut self) -> i32 {
        self.handle(Ok(Val::Json(Json::array())))
    }

    /// `json_set(obj, key, value)`: takes `value`.
    pub fn json_set(&mut self, obj: i32, key: i32, v: i32) -> i32 {
        let r = (|| {
            if obj == v {
                return Err(misuse("json_set of an object into itself"));
            }
            let k = self.str(key)?.to_string();
            let v = self.take_json(v)?;
            value::object_set(self.json_mut(obj)?, k, v)?;
            Ok(obj)
        })();
        self.or(r, -1)
    }

    /// `json_push(arr, value)`: takes `value`.
    pub fn json_push(&mut self, arr: i32, v: i32) -> i32 {
        let r = (|| {
            if arr == v {
                return Err(misuse("json_push of an array into itself"));
            }
            let v = self.take_json(v)?;
            value::array_push(self.json_mut(arr)?, v)?;
            Ok(arr)
        })();
        self.or(r, -1)
    }

    /// `json_copy(value)`.
    pub fn json_copy(&mut self, v: i32) -> i32 {
        let r = self.json(v).map(|j| Val::Json(j.clone()));
        self.handle(r)
    }

    /// `fact_get(key, default)`.
    pub fn fact_get(&mut self, key: i32, default: i32) -> i32 {
        let r = (|| {
            let found = self.facts.get(self.str(key)?)?;
            Ok(Val::Str(match found {
                Some(v) => v,
                None => self.str(default)?.to_string(),
            }))
        })();
        self.handle(r)
    }

    /// `fact_put(key, value)`.
    pub fn fact_put(&mut self, key: i32, v: i32) -> i32 {
        let r = (|| {
            let (k, v) = (self.str(key)?.to_string(), self.str(v)?.to_string());
            self.facts.put(&k, v).map(i32::from)
        })();
        self.or(r, -1)
    }

    /// `fact_delete(key)`.
    pub fn fact_delete(&mut self, key: i32) -> i32 {
        let r = (|| {
            let k = self.str(key)?.to_string();
            self.facts.delete(&k).map(i32::from)
        })();
        self.or(r, -1)
    }

    /// `fact_keys(prefix, limit)`.
    pub fn fact_keys(&mut self, prefix: i32, limit: i32) -> i32 {
        let r = (|| {
            let limit = match u32::try_from(limit) {
                Ok(n) if (1..=MAX_LIST).contains(&n) => n as usize,
                _ => return Err(misuse(format!("fact_keys limit {limit}"))),
            };
            Ok(Val::List(self.facts.keys(self.str(prefix)?, limit)?))
        })();
        self.handle(r)
    }

    /// `tick()`.
    pub fn tick(&mut self) -> i32 {
        let r = self.budget.tick().map(|()| 0);
        self.or(r, -1)
    }

    /// `mark()`.
    pub fn mark(&mut self) -> i32 {
        self.arena.len() as i32
    }

    /// `release(mark, keep)`: frees every value made since `mark` but `keep`, which moves to
    /// `mark` (its new handle is the answer); `keep` below `mark` (or -1) stays as it is.
    pub fn release(&mut self, mark: i32, keep: i32) -> i32 {
        let len = self.arena.len();
        let Some(m) = usize::try_from(mark)
            .ok()
            .filter(|m| (self.args..=len).contains(m))
        else {
            self.record(misuse(format!("release of mark {mark} (values: {len})")));
            return keep;
        };
        match usize::try_from(keep) {
            Ok(k) if k >= m && k < len => {
                let v = self.arena.swap_remove(k);
                self.arena.truncate(m);
                self.arena.push(v);
                m as i32
            }
            _ => {
                self.arena.truncate(m);
                keep
            }
        }
    }

    /// `fault(code, node)`.
    pub fn fault(&mut self, code: i32, node: i32) {
        let Ok(node) = u32::try_from(node) else {
            return self.record(misuse(format!("fault at node {node}")));
        };
        let fault = match code {
            0 => {
                match &mut self.fault {
                    Some(f) if f.node.is_none() => f.node = Some(node),
                    Some(_) => {}
                    None => self.record(misuse("fault(0) without a pending fault")),
                }
                return;
            }
            crate::abi::FAULT_OVERFLOW => Fault::Overflow,
            crate::abi::FAULT_DIVISION_BY_ZERO => Fault::DivisionByZero,
            other => misuse(format!("unknown fault code {other}")),
        };
        if self.fault.is_none() {
            self.fault = Some(Failure {
                fault,
                node: Some(node),
            });
        }
    }

    /// Ends the call: `result` is what the compiled function returned.
    pub fn finish(mut self, result: i32) -> Finished {
        let result = match self.fault.take() {
            Some(f) => Err(f),
            None => match usize::try_from(result)
                .ok()
                .filter(|i| *i < self.arena.len())
            {
                Some(i) => Ok(self.arena.swap_remove(i)),
                None => Err(Failure {
                    fault: misuse(format!("the result, handle {result}, is not a live value")),
                    node: None,
                }),
            },
        };
        Finished {
            result,
            writes: self.facts.into_writes(),
        }
    }
}

/// Appends the first `n` little-endian bytes of `chunk` to `buf` (the registry hook's and
/// `bytes_push`'s framing).
pub fn push_bytes(buf: &mut Vec<u8>, chunk: i64, n: i32) -> Result<(), Fault> {
    let n = match usize::try_from(n) {
        Ok(n) if (1..=8).contains(&n) => n,
        _ => return Err(misuse(format!("bytes_push of {n} bytes"))),
    };
    if buf.len() + n > MAX_REGISTRY_BYTES {
        return Err(misuse(format!(
            "more than {MAX_REGISTRY_BYTES} pushed bytes"
        )));
    }
    buf.extend_from_slice(&chunk.to_le_bytes()[..n]);
    Ok(())
}

fn kind(v: &Val) -> &'static str {
    match v {
        Val::Int(_) => "an int",
        Val::Bool(_) => "a bool",
        Val::Str(_) => "a string",
        Val::List(_) => "a list",
        Val::Json(_) => "JSON",
    }
}
