//! A Wasm harness for compiled tools: a module importing the host ABI from `abi`, holding the
//! compiled body as `run`, instantiated with wasmtime over the crate's own [`Host`].
#![allow(dead_code)] // each test file uses a different subset

use std::collections::BTreeMap;
use tool_spec::abi::{AbiIndices, FUNCTIONS, Ty};
use tool_spec::budget::Steps;
use tool_spec::examples::Outcome;
use tool_spec::facts::{MapStore, Overlay};
use tool_spec::host::Host;
use tool_spec::spec::Example;
use tool_spec::{ToolSpec, Val};
use wasm_encoder::{
    CodeSection, EntityType, ExportKind, ExportSection, FunctionSection, ImportSection, Module,
    TypeSection, ValType,
};
use wasmtime::{Caller, Engine, Linker, Store};

/// A sample spec ([`tool_spec::samples`]).
pub fn spec_file(name: &str) -> serde_json::Value {
    tool_spec::samples::json(name).unwrap_or_else(|| panic!("no sample `{name}`"))
}

pub fn checked(name: &str) -> ToolSpec {
    tool_spec::check(&spec_file(name), &|_| None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn vt(t: Ty) -> ValType {
    match t {
        Ty::I32 => ValType::I32,
        Ty::I64 => ValType::I64,
    }
}

/// A module: the ABI imported at indices `0..n` (the canonical numbering), the body as
/// function `n`, exported as `run`.
pub fn module(body: &[u8]) -> Vec<u8> {
    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    for (i, f) in FUNCTIONS.iter().enumerate() {
        types.ty().function(
            f.params.iter().map(|t| vt(*t)),
            f.results.iter().map(|t| vt(*t)),
        );
        imports.import("abi", f.name, EntityType::Function(i as u32));
    }
    let run_type = FUNCTIONS.len() as u32;
    types.ty().function([], [ValType::I32]);
    let mut funcs = FunctionSection::new();
    funcs.function(run_type);
    let mut exports = ExportSection::new();
    exports.export("run", ExportKind::Func, FUNCTIONS.len() as u32);
    let mut code = CodeSection::new();
    code.raw(body);
    let mut m = Module::new();
    m.section(&types)
        .section(&imports)
        .section(&funcs)
        .section(&exports)
        .section(&code);
    m.finish()
}

pub type TestHost = Host<MapStore, Steps>;

macro_rules! link {
    ($linker:ident, $($name:literal => $method:ident ($($arg:ident : $ty:ty),*) $(-> $ret:ty)?;)*) => {
        $(
            $linker
                .func_wrap("abi", $name, |mut c: Caller<'_, Option<TestHost>>, $($arg: $ty),*| $(-> $ret)? {
                    c.data_mut().as_mut().expect("a call in progress").$method($($arg),*)
                })
                .unwrap();
        )*
    };
}

/// A wasmtime engine and linker with the host ABI, shared by the calls of a test.
pub struct Harness {
    engine: Engine,
    linker: Linker<Option<TestHost>>,
}

impl Harness {
    pub fn new() -> Self {
        let engine = Engine::default();
        let mut linker = Linker::new(&engine);
        link!(linker,
            "bytes_push" => bytes_push(chunk: i64, n: i32);
            "const_str" => const_str() -> i32;
            "arg_int" => arg_int(i: i32) -> i64;
            "arg_bool" => arg_bool(i: i32) -> i32;
            "str_concat" => str_concat(a: i32, b: i32) -> i32;
            "str_len" => str_len(a: i32) -> i64;
            "str_slice" => str_slice(a: i32, from: i64, to: i64) -> i32;
            "str_cmp" => str_cmp(a: i32, b: i32) -> i32;
            "str_parse_int" => str_parse_int(a: i32, d: i64) -> i64;
            "int_to_str" => int_to_str(i: i64) -> i32;
            "bool_to_str" => bool_to_str(b: i32) -> i32;
            "list_len" => list_len(l: i32) -> i32;
            "list_get" => list_get(l: i32, i: i32) -> i32;
            "json_null" => json_null() -> i32;
            "json_int" => json_int(i: i64) -> i32;
            "json_bool" => json_bool(b: i32) -> i32;
            "json_str" => json_str(s: i32) -> i32;
            "json_list" => json_list(l: i32) -> i32;
            "json_object" => json_object() -> i32;
            "json_set" => json_set(o: i32, k: i32, v: i32) -> i32;
            "json_array" => json_array() -> i32;
            "json_push" => json_push(a: i32, v: i32) -> i32;
            "json_copy" => json_copy(v: i32) -> i32;
            "fact_get" => fact_get(k: i32, d: i32) -> i32;
            "fact_put" => fact_put(k: i32, v: i32) -> i32;
            "fact_delete" => fact_delete(k: i32) -> i32;
            "fact_keys" => fact_keys(p: i32, l: i32) -> i32;
            "tick" => tick() -> i32;
            "mark" => mark() -> i32;
            "release" => release(m: i32, k: i32) -> i32;
            "fault" => fault(c: i32, n: i32);
        );
        Self { engine, linker }
    }

    /// Compiles `spec` (canonical numbering) into a harness module, checking it is valid Wasm.
    pub fn prepare(&self, spec: &ToolSpec) -> wasmtime::Module {
        let body = tool_spec::compile::compile(spec, &AbiIndices::canonical());
        let wasm = module(&body);
        wasmparser::Validator::new()
            .validate_all(&wasm)
            .unwrap_or_else(|e| panic!("compiled code of `{}` is invalid: {e}", spec.name));
        wasmtime::Module::new(&self.engine, &wasm).unwrap()
    }

    /// Runs compiled `spec` on `args` over `facts`, with `steps` loop iterations: the outcome
    /// and the writes.
    pub fn run(
        &self,
        spec: &ToolSpec,
        args: &[Val],
        facts: &BTreeMap<String, String>,
        steps: u64,
    ) -> (
        Result<Val, tool_spec::Failure>,
        BTreeMap<String, Option<String>>,
    ) {
        let module = self.prepare(spec);
        self.run_prepared(&module, spec, args, facts, steps)
    }

    /// [`Harness::run`] of a module from [`Harness::prepare`].
    pub fn run_prepared(
        &self,
        module: &wasmtime::Module,
        spec: &ToolSpec,
        args: &[Val],
        facts: &BTreeMap<String, String>,
        steps: u64,
    ) -> (
        Result<Val, tool_spec::Failure>,
        BTreeMap<String, Option<String>>,
    ) {
        let host = Host::new(
            args.to_vec(),
            Overlay::new(MapStore(facts.clone()), spec.quota.fact_bytes),
            Steps::new(steps),
        );
        let mut store = Store::new(&self.engine, Some(host));
        let instance = self.linker.instantiate(&mut store, module).unwrap();
        let run = instance
            .get_typed_func::<(), i32>(&mut store, "run")
            .unwrap();
        let handle = run
            .call(&mut store, ())
            .unwrap_or_else(|e| panic!("compiled `{}` trapped: {e:?}", spec.name));
        let finished = store.data_mut().take().unwrap().finish(handle);
        (finished.result, finished.writes)
    }

    /// An example's outcome from the compiled code.
    pub fn example(&self, spec: &ToolSpec, example: &Example) -> Outcome {
        let (result, writes) = self.run(
            spec,
            &example.args,
            &example.facts_before,
            tool_spec::examples::EXAMPLE_STEPS,
        );
        Outcome::new(example, result, writes)
    }
}
