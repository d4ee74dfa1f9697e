//! The differential test: random well-typed specs and random inputs, run by the interpreter
//! (the oracle) and by the compiled code on wasmtime over the same host; results, faults (with
//! their nodes) and fact writes must be equal.
//!
//! `TOOL_SPEC_CASES=N` runs N specs instead of the default 250; `TOOL_SPEC_SEED=S` starts at
//! another seed. A failure prints the spec, the arguments and the facts, so it replays.

mod common;
use common::Harness;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use tool_spec::ast::Type;
use tool_spec::budget::Steps;
use tool_spec::facts::{MapStore, Overlay};

const KEYS: &[&str] = &["k1", "k2", "a", "ab", "b", ""];
const STRINGS: &[&str] = &[
    "",
    "a",
    "k1",
    "é!",
    "{}",
    "12",
    "-7",
    "abc",
    "9223372036854775807",
    "x y",
];
const INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    3,
    7,
    100,
    -100,
    i64::MAX,
    i64::MIN,
    i64::MAX - 1,
    i64::MIN + 1,
];

struct Gen {
    rng: SmallRng,
    scope: Vec<(String, Type)>,
    nodes: usize,
    fresh: usize,
}

const TYPES: [Type; 5] = [Type::Int, Type::Bool, Type::Str, Type::List, Type::Json];

impl Gen {
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }

    fn any_type(&mut self) -> Type {
        self.pick(&TYPES)
    }

    fn name(&mut self) -> String {
        self.fresh += 1;
        format!("v{}", self.fresh)
    }

    fn var(&mut self, ty: Type) -> Option<Value> {
        let names: Vec<String> = self
            .scope
            .iter()
            .filter(|(_, t)| *t == ty)
            .map(|(n, _)| n.clone())
            .collect();
        (!names.is_empty()).then(|| json!({"var": names[self.rng.random_range(0..names.len())]}))
    }

    fn key(&mut self, depth: u32) -> Value {
        if self.rng.random_bool(0.8) {
            json!(self.pick(KEYS))
        } else {
            self.expr(Type::Str, depth)
        }
    }

    fn leaf(&mut self, ty: Type) -> Value {
        if self.rng.random_bool(0.3)
            && let Some(v) = self.var(ty)
        {
            return v;
        }
        match ty {
            Type::Int => match self.rng.random_range(0..3) {
                0 => json!({"arg": "n"}),
                1 => json!({"arg": "m"}),
                _ => json!(self.pick(INTS)),
            },
            Type::Bool => match self.rng.random_range(0..2) {
                0 => json!({"arg": "b"}),
                _ => json!(self.rng.random_bool(0.5)),
            },
            Type::Str => match self.rng.random_range(0..3) {
                0 => json!({"arg": "s"}),
                1 => json!({"arg": "t"}),
                _ => json!(self.pick(STRINGS)),
            },
            Type::List => json!({"arg": "l"}),
            Type::Json => Value::Null,
        }
    }

    fn expr(&mut self, ty: Type, depth: u32) -> Value {
        self.nodes += 1;
        if depth == 0 || self.nodes > 120 || self.rng.random_bool(0.2) {
            return self.leaf(ty);
        }
        let d = depth - 1;
        // Forms that work for any type.
        match self.rng.random_range(0..10) {
            0 => {
                let c = self.expr(Type::Bool, d);
                let (a, b) = if ty == Type::Json {
                    // One branch json, so the `if` is json whatever the other is.
                    let ta = self.any_type();
                    (self.expr(ta, d), self.expr(Type::Json, d))
                } else {
                    (self.expr(ty, d), self.expr(ty, d))
                };
                return json!({"if": c, "then": a, "else": b});
            }
            1 => {
                let vt = self.any_type();
                let value = self.expr(vt, d);
                let name = self.name();
                self.scope.push((name.clone(), vt));
                let body = self.expr(ty, d);
                self.scope.pop();
                return json!({"let": name, "value": value, "in": body});
            }
            2 => {
                let first_ty = self.any_type();
                let first = self.expr(first_ty, d);
                return json!({"do": [first, self.expr(ty, d)]});
            }
            3 if ty != Type::List => {
                let list = self.expr(Type::List, d);
                let init = self.expr(ty, d);
                let (item, acc) = (self.name(), self.name());
                self.scope.push((item.clone(), Type::Str));
                self.scope.push((acc.clone(), ty));
                let step_ty = if ty == Type::Json {
                    self.any_type()
                } else {
                    ty
                };
                let step = self.expr(step_ty, d);
                self.scope.truncate(self.scope.len() - 2);
                return json!({"for_each": list, "as": item, "acc": acc, "init": init, "step": step});
            }
            _ => {}
        }
        match ty {
            Type::Int => match self.rng.random_range(0..4) {
                0 => {
                    let op = self.pick(&["add", "sub", "mul", "div", "rem"]);
                    json!({op: [self.expr(Type::Int, d), self.expr(Type::Int, d)]})
                }
                1 => {
                    let t = self.pick(&[Type::Str, Type::List]);
                    json!({"length": self.expr(t, d)})
                }
                2 => {
                    json!({"parse_int": self.expr(Type::Str, d), "default": self.expr(Type::Int, d)})
                }
                _ => self.leaf(ty),
            },
            Type::Bool => match self.rng.random_range(0..6) {
                0 => {
                    let t = self.pick(&[Type::Int, Type::Str, Type::Bool]);
                    let op = self.pick(&["eq", "ne"]);
                    json!({op: [self.expr(t, d), self.expr(t, d)]})
                }
                1 => {
                    let t = self.pick(&[Type::Int, Type::Str]);
                    let op = self.pick(&["lt", "le", "gt", "ge"]);
                    json!({op: [self.expr(t, d), self.expr(t, d)]})
                }
                2 => {
                    let op = self.pick(&["and", "or"]);
                    let n = self.rng.random_range(2..4);
                    let args: Vec<Value> = (0..n).map(|_| self.expr(Type::Bool, d)).collect();
                    json!({op: args})
                }
                3 => json!({"not": self.expr(Type::Bool, d)}),
                4 => {
                    let k = self.key(d);
                    json!({"fact_put": k, "value": self.expr(Type::Str, d)})
                }
                _ => json!({"fact_delete": self.key(d)}),
            },
            Type::Str => match self.rng.random_range(0..6) {
                0 => {
                    let n = self.rng.random_range(2..4);
                    let args: Vec<Value> = (0..n).map(|_| self.expr(Type::Str, d)).collect();
                    json!({"concat": args})
                }
                1 => {
                    json!({"slice": [self.expr(Type::Str, d), self.expr(Type::Int, d), self.expr(Type::Int, d)]})
                }
                2 => {
                    let n = self.rng.random_range(0..3);
                    let mut template = String::new();
                    let mut with = Vec::new();
                    for _ in 0..n {
                        template.push_str(self.pick(&["", "x", "{{", "}} ", "é"]));
                        template.push_str("{}");
                        let t = self.pick(&[Type::Int, Type::Str, Type::Bool]);
                        with.push(self.expr(t, d));
                    }
                    template.push_str(self.pick(&["", "!", "{{}}"]));
                    json!({"format": template, "with": with})
                }
                3 => {
                    let t = self.pick(&[Type::Int, Type::Str, Type::Bool]);
                    json!({"to_string": self.expr(t, d)})
                }
                4 => {
                    let k = self.key(d);
                    json!({"fact_get": k, "default": self.expr(Type::Str, d)})
                }
                _ => self.leaf(ty),
            },
            Type::List => {
                if self.rng.random_bool(0.5) {
                    let prefix = if self.rng.random_bool(0.7) {
                        json!(self.pick(&["", "a", "k"]))
                    } else {
                        self.expr(Type::Str, d)
                    };
                    json!({"fact_keys": prefix, "limit": self.rng.random_range(1..6)})
                } else {
                    self.leaf(ty)
                }
            }
            Type::Json => match self.rng.random_range(0..3) {
                0 => {
                    let mut obj = Map::new();
                    for _ in 0..self.rng.random_range(1..4) {
                        let t = self.any_type();
                        let key = self.pick(&["x", "y", "z", "a b"]).to_string();
                        obj.insert(key, self.expr(t, d));
                    }
                    json!({"object": obj})
                }
                1 => {
                    let n = self.rng.random_range(0..4);
                    let items: Vec<Value> = (0..n)
                        .map(|_| {
                            let t = self.any_type();
                            self.expr(t, d)
                        })
                        .collect();
                    json!({"array": items})
                }
                _ => {
                    let list = self.expr(Type::List, d);
                    let item = self.name();
                    self.scope.push((item.clone(), Type::Str));
                    let t = self.any_type();
                    let to = self.expr(t, d);
                    self.scope.pop();
                    json!({"map": list, "as": item, "to": to})
                }
            },
        }
    }

    fn spec(&mut self, case: u64) -> Value {
        let ty = self.any_type();
        self.nodes = 0;
        let body = self.expr(ty, 6);
        let quota = self.pick(&[24u64, 1024]);
        json!({
            "name": format!("case_{case}"),
            "description": "a random spec",
            "parameters": {"type": "object", "properties": {
                "n": {"type": "integer", "default": 0},
                "m": {"type": "integer", "default": 0},
                "b": {"type": "boolean", "default": false},
                "s": {"type": "string", "maxLength": 20, "default": ""},
                "t": {"type": "string", "default": "k1"},
                "l": {"type": "array", "items": {"type": "string"}, "maxItems": 8, "default": []}}},
            "body": body,
            "examples": [{"args": {}, "result": null}],
            "quota": {"fact_bytes": quota}
        })
    }

    fn args(&mut self) -> Value {
        let n = self.rng.random_range(0..5);
        let l: Vec<&str> = (0..n).map(|_| self.pick(STRINGS)).collect();
        json!({
            "n": self.pick(INTS), "m": self.pick(INTS), "b": self.rng.random_bool(0.5),
            "s": self.pick(STRINGS), "t": self.pick(STRINGS), "l": l})
    }

    fn facts(&mut self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for k in KEYS.iter().filter(|k| !k.is_empty()) {
            if self.rng.random_bool(0.4) {
                out.insert(k.to_string(), self.pick(STRINGS).to_string());
            }
        }
        out
    }
}

#[test]
fn compiled_code_agrees_with_the_interpreter_on_random_specs() {
    let cases: u64 = std::env::var("TOOL_SPEC_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250);
    let seed: u64 = std::env::var("TOOL_SPEC_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let harness = Harness::new();
    let (mut ok, mut failed, mut budget) = (0, 0, 0);
    for case in seed..seed + cases {
        let mut g = Gen {
            rng: SmallRng::seed_from_u64(case),
            scope: vec![],
            nodes: 0,
            fresh: 0,
        };
        let json = g.spec(case);
        let spec = tool_spec::check(&json, &|_| None).unwrap_or_else(|e| {
            panic!("the generator made a spec that does not check: {e}\n{json}")
        });
        let module = harness.prepare(&spec);
        for _ in 0..4 {
            let args_json = g.args();
            let args = spec.parse_args(&args_json).unwrap();
            let facts = g.facts();
            let steps = g.pick(&[3u64, 1000]);
            let mut overlay = Overlay::new(MapStore(facts.clone()), spec.quota.fact_bytes);
            let interpreted =
                tool_spec::interp::run(&spec, &args, &mut overlay, &mut Steps::new(steps))
                    .map(tool_spec::Val::into_value);
            let (compiled, writes) = harness.run_prepared(&module, &spec, &args, &facts, steps);
            let compiled = compiled.map(tool_spec::Val::into_value);
            let context = || {
                format!(
                    "case {case}\nspec: {json}\nargs: {args_json}\nfacts: {facts:?}\nsteps: {steps}"
                )
            };
            assert_eq!(interpreted, compiled, "results differ\n{}", context());
            assert_eq!(
                overlay.into_writes(),
                writes,
                "fact writes differ\n{}",
                context()
            );
            match &interpreted {
                Ok(_) => ok += 1,
                Err(f) if f.fault.code() == "instruction_budget" => budget += 1,
                Err(_) => failed += 1,
            }
        }
    }
    eprintln!(
        "{cases} specs x 4 inputs: {ok} results, {failed} faults, {budget} budget stops: all equal"
    );
    // The generator must exercise both outcomes, or the comparison proves little.
    assert!(
        ok > cases as usize && failed > cases as usize / 10,
        "{ok} ok, {failed} failed"
    );
}

/// Every integer in `v` plus one (wrapping): what the test feature `fault-miscompile` makes the
/// compiler do to literals.
fn bump(v: &Value) -> Value {
    match v {
        Value::Number(n) => n.as_i64().map_or(v.clone(), |i| json!(i.wrapping_add(1))),
        Value::Array(items) => Value::Array(items.iter().map(bump).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), bump(v))).collect())
        }
        other => other.clone(),
    }
}

/// The comparison above is only worth something if it sees a wrong compilation: compiled code
/// whose literals are off by one must disagree with the interpreter on some inputs.
#[test]
fn the_comparison_catches_a_miscompilation() {
    let harness = Harness::new();
    let (mut runs, mut caught) = (0, 0);
    for case in 1..=60u64 {
        let mut g = Gen {
            rng: SmallRng::seed_from_u64(case),
            scope: vec![],
            nodes: 0,
            fresh: 0,
        };
        let json = g.spec(case);
        let spec = tool_spec::check(&json, &|_| None).unwrap();
        let mut wrong_json = json.clone();
        wrong_json["body"] = bump(&json["body"]);
        let Ok(wrong) = tool_spec::check(&wrong_json, &|_| None) else {
            continue;
        };
        let module = harness.prepare(&wrong);
        for _ in 0..4 {
            let args = spec.parse_args(&g.args()).unwrap();
            let facts = g.facts();
            let mut overlay = Overlay::new(MapStore(facts.clone()), spec.quota.fact_bytes);
            let interpreted =
                tool_spec::interp::run(&spec, &args, &mut overlay, &mut Steps::new(1000))
                    .map(tool_spec::Val::into_value);
            let (compiled, writes) = harness.run_prepared(&module, &wrong, &args, &facts, 1000);
            runs += 1;
            if interpreted != compiled.map(tool_spec::Val::into_value)
                || overlay.into_writes() != writes
            {
                caught += 1;
            }
        }
    }
    eprintln!("a miscompilation showed in {caught} of {runs} runs");
    // Deterministic (fixed seeds); many random bodies have no literal whose value matters.
    assert!(
        caught * 20 >= runs,
        "only {caught} of {runs} runs caught the miscompilation"
    );
}
