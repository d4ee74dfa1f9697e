//! Canister modules: the IC's install-time checks, instrumentation for the simulator, and a
//! compiled-module cache keyed by module hash.
//!
//! Instrumentation exports what the simulator must save and restore between messages and that
//! Rust modules keep private: every mutable global (`__sim_global_N`), the memory
//! (`__sim_memory`) and the function table (`__sim_table`, for callbacks). A Wasm `start`
//! function is moved to the export `__sim_start` so that it runs once at install, as on the IC,
//! and not again when the simulator re-instantiates a module to roll a trap back.
//!
//! Compiling a 2 MB canister takes cranelift about two seconds, so compiled modules are cached
//! twice: in memory for the process (shared by every `Sim`), and on disk under
//! `target/ic-sim-cache` (or `$IC_SIM_CACHE_DIR`) for later processes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};
use wasmparser::{Parser, Payload, ValType, WasmFeatures};
use wasmtime::{Config, Engine, InstancePre, Module};

use crate::system_api::{self, HostState};

/// The IC's module limits (interface spec, "Resource limits").
pub(crate) mod limits {
    /// Largest uncompressed module.
    pub const MAX_MODULE_SIZE: usize = 100 * 1024 * 1024;
    /// Largest code section.
    pub const MAX_CODE_SECTION_SIZE: u32 = 10 * 1024 * 1024;
    /// Most functions in a module.
    pub const MAX_FUNCTIONS: usize = 50_000;
    /// Most globals in a module.
    pub const MAX_GLOBALS: usize = 1_000;
    /// Most exported update/query methods.
    pub const MAX_EXPORTED_METHODS: usize = 1_000;
    /// Most `icp:` custom sections.
    pub const MAX_CUSTOM_SECTIONS: usize = 16;
    /// Most bytes in all `icp:` custom sections (names and contents).
    pub const MAX_CUSTOM_SECTIONS_SIZE: usize = 1024 * 1024;
    /// Native stack the simulator grants a canister (the replica uses 5 MiB; test threads have
    /// 2 MiB, so the simulator stays below that).
    pub const MAX_WASM_STACK: usize = 1024 * 1024;
}

/// A module that passed the IC's checks, compiled and ready to instantiate.
pub(crate) struct CompiledModule {
    /// SHA-256 of the bytes as uploaded (gzip included), which canister_status reports.
    pub(crate) hash: [u8; 32],
    /// Length of the uploaded bytes.
    pub(crate) uploaded_size: usize,
    /// The bytes as uploaded (what a snapshot's `WasmModule` data reads back).
    pub(crate) bytes: Arc<Vec<u8>>,
    pub(crate) instance_pre: InstancePre<HostState>,
    /// Exported function names of the original module (`canister_update foo`, ...).
    pub(crate) exports: BTreeSet<String>,
    /// `icp:public NAME` / `icp:private NAME` sections, by full section name.
    pub(crate) custom_sections: BTreeMap<String, Vec<u8>>,
    /// Export names of the mutable globals saved between messages, in a fixed order.
    pub(crate) globals: Vec<String>,
    pub(crate) has_start: bool,
}

impl CompiledModule {
    /// Whether the module exports function `name`.
    pub(crate) fn exports_function(&self, name: &str) -> bool {
        self.exports.contains(name)
    }
}

/// The engine every canister runs on: fuel for instruction counting (with the replica's weights,
/// see `instruction_costs`), NaN canonicalisation for determinism, and the IC's Wasm feature set.
pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .operator_cost(crate::instruction_costs::replica_operator_cost())
            .cranelift_nan_canonicalization(true)
            .max_wasm_stack(limits::MAX_WASM_STACK)
            .wasm_bulk_memory(true)
            .wasm_multi_value(true)
            .wasm_reference_types(true)
            .wasm_simd(true)
            .wasm_relaxed_simd(false)
            .wasm_memory64(false)
            .wasm_tail_call(false)
            .wasm_gc(false)
            .wasm_function_references(false);
        Engine::new(&config).expect("the simulator's wasmtime configuration is valid")
    })
}

fn ic_features() -> WasmFeatures {
    WasmFeatures::MUTABLE_GLOBAL
        | WasmFeatures::SATURATING_FLOAT_TO_INT
        | WasmFeatures::SIGN_EXTENSION
        | WasmFeatures::MULTI_VALUE
        | WasmFeatures::BULK_MEMORY
        | WasmFeatures::REFERENCE_TYPES
        | WasmFeatures::SIMD
        | WasmFeatures::FLOATS
}

/// Why a module was refused at install: the replica's reason text, and its specific help
/// (suggestion, documentation section) where it has one (otherwise the toolchain help).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InvalidModule(
    pub(crate) String,
    pub(crate) Option<(&'static str, &'static str)>,
);

fn invalid(reason: String) -> InvalidModule {
    InvalidModule(reason, None)
}

fn limit_error(reason: String, suggestion: &'static str, section: &'static str) -> InvalidModule {
    InvalidModule(reason, Some((suggestion, section)))
}

const SHRINK_MODULE: &str = "Try shrinking the module using tools like `ic-wasm` or splitting the functionality into multiple canisters.";

/// Checks, instruments and compiles `bytes`, or returns the cached module of the same hash.
pub(crate) fn load(bytes: &[u8]) -> Result<Arc<CompiledModule>, InvalidModule> {
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], Arc<CompiledModule>>>> = OnceLock::new();
    let hash: [u8; 32] = Sha256::digest(bytes).into();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(module) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&hash) {
        return Ok(module.clone());
    }
    let module = Arc::new(compile(bytes, hash)?);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(hash, module.clone());
    Ok(module)
}

/// Statistics of the process-wide compilation work, for benchmarks.
pub fn compilations() -> u64 {
    COMPILATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

static COMPILATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn decompress(bytes: &[u8]) -> Result<Vec<u8>, InvalidModule> {
    if bytes.starts_with(b"\0asm") {
        return Ok(bytes.to_vec());
    }
    if !bytes.starts_with(&[0x1f, 0x8b, 0x08]) {
        return Err(invalid(
            "Failed to decode wasm module: unsupported canister module format".to_string(),
        ));
    }
    // Inflate at most 1 GiB: enough to report the size of an oversized module exactly, without
    // letting a gzip bomb exhaust the host.
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(1 << 30)
        .read_to_end(&mut out)
        .map_err(|e| invalid(format!("Failed to decode wasm module: {e}")))?;
    Ok(out)
}

struct Inspection {
    exports: BTreeSet<String>,
    custom_sections: BTreeMap<String, Vec<u8>>,
}

/// The replica's install-time checks (rs/embedders wasm validation), in the order it runs them.
fn inspect(wasm: &[u8]) -> Result<Inspection, InvalidModule> {
    if wasm.len() > limits::MAX_MODULE_SIZE {
        return Err(limit_error(
            format!(
                "Wasm module size of {} exceeds the maximum allowed size of {}.",
                wasm.len(),
                limits::MAX_MODULE_SIZE
            ),
            SHRINK_MODULE,
            "wasm-module-too-large",
        ));
    }
    let mut validator = wasmparser::Validator::new_with_features(ic_features());
    validator.validate_all(wasm).map_err(|e| {
        invalid(format!(
            "Wasmtime failed to validate wasm module wasmtime::Module::validate() failed with {e}"
        ))
    })?;

    let mut types: Vec<(Vec<ValType>, Vec<ValType>)> = Vec::new();
    let mut func_types: Vec<u32> = Vec::new();
    let mut exports = BTreeSet::new();
    let mut custom_sections = BTreeMap::new();
    let mut exported_funcs: Vec<(String, u32)> = Vec::new();
    let mut globals = 0usize;
    let mut custom_size = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| invalid(format!("Failed to parse wasm module: {e}")))?;
        match payload {
            Payload::TypeSection(reader) => {
                for rec in reader.into_iter_err_on_gc_types() {
                    let ty = rec.map_err(|e| invalid(e.to_string()))?;
                    types.push((ty.params().to_vec(), ty.results().to_vec()));
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| invalid(e.to_string()))?;
                    check_import(&import, &types)?;
                    if let wasmparser::TypeRef::Func(ty) = import.ty {
                        func_types.push(ty);
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    func_types.push(ty.map_err(|e| invalid(e.to_string()))?);
                }
            }
            Payload::GlobalSection(reader) => globals += reader.count() as usize,
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| invalid(e.to_string()))?;
                    if export.kind == wasmparser::ExternalKind::Func {
                        exported_funcs.push((export.name.to_string(), export.index));
                        exports.insert(export.name.to_string());
                    }
                }
            }
            Payload::CodeSectionStart { size, .. } if size > limits::MAX_CODE_SECTION_SIZE => {
                return Err(limit_error(
                    format!(
                        "Wasm module code section size of {size} exceeds the maximum allowed size of {}.",
                        limits::MAX_CODE_SECTION_SIZE
                    ),
                    "Try shrinking the module code section using tools like `ic-wasm` or splitting the functionality into multiple canisters.",
                    "wasm-module-code-section-too-large",
                ));
            }
            Payload::CustomSection(reader) if reader.name().starts_with("icp:") => {
                let name = reader.name().to_string();
                let section_error =
                    "Wasm module has an invalid custom section. Invalid custom section:";
                let short = ["icp:public ", "icp:private "]
                    .iter()
                    .find_map(|p| name.strip_prefix(p).filter(|rest| !rest.is_empty()));
                let Some(short) = short else {
                    return Err(invalid(format!(
                        "{section_error} Custom section '{name}' has no public/private scope defined."
                    )));
                };
                if custom_sections.contains_key(&name) {
                    return Err(invalid(format!(
                        "{section_error} Custom section '{name}' defined more than once."
                    )));
                }
                // The replica counts the payload and the name after the scope prefix.
                custom_size += short.len() + reader.data().len();
                custom_sections.insert(name, reader.data().to_vec());
            }
            _ => {}
        }
    }
    if func_types.len() > limits::MAX_FUNCTIONS {
        return Err(limit_error(
            format!(
                "Wasm module defined {} functions which exceeds the maximum number allowed {}.",
                func_types.len(),
                limits::MAX_FUNCTIONS
            ),
            "Try spliting this canister into multiple canisters.",
            "wasm-module-too-many-functions",
        ));
    }
    if globals > limits::MAX_GLOBALS {
        return Err(limit_error(
            format!(
                "Wasm module defined {globals} globals which exceeds the maximum number allowed {}.",
                limits::MAX_GLOBALS
            ),
            "Try collecting multiple globals into a single structured which can be stored on the heap.",
            "wasm-module-too-many-globals",
        ));
    }
    if custom_sections.len() > limits::MAX_CUSTOM_SECTIONS {
        return Err(invalid(format!(
            "Wasm module defined {} custom sections which exceeds the maximum number allowed {}.",
            custom_sections.len(),
            limits::MAX_CUSTOM_SECTIONS
        )));
    }
    if custom_size > limits::MAX_CUSTOM_SECTIONS_SIZE {
        return Err(invalid(format!(
            "Wasm module has an invalid custom section. Invalid custom sections: total size of the custom sections exceeds the maximum allowed: size {custom_size} bytes, allowed {} bytes",
            limits::MAX_CUSTOM_SECTIONS_SIZE
        )));
    }
    check_exports(&exported_funcs, &func_types, &types)?;
    Ok(Inspection {
        exports,
        custom_sections,
    })
}

fn valtype_name(t: &ValType) -> &'static str {
    match t {
        ValType::I32 => "I32",
        ValType::I64 => "I64",
        ValType::F32 => "F32",
        ValType::F64 => "F64",
        ValType::V128 => "V128",
        ValType::Ref(_) => "Ref",
    }
}

fn type_list(types: &[ValType]) -> String {
    let names: Vec<_> = types.iter().map(valtype_name).collect();
    format!("[{}]", names.join(", "))
}

fn check_import(
    import: &wasmparser::Import<'_>,
    types: &[(Vec<ValType>, Vec<ValType>)],
) -> Result<(), InvalidModule> {
    let prefix = "Wasm module has an invalid import section.";
    let ty = match import.ty {
        wasmparser::TypeRef::Func(ty) => ty,
        wasmparser::TypeRef::Global(_) => {
            return Err(invalid(format!(
                "{prefix} Importing globals is not allowed."
            )));
        }
        wasmparser::TypeRef::Memory(_) => {
            return Err(invalid(format!(
                "{prefix} Only memory imported from env.memory is allowed."
            )));
        }
        wasmparser::TypeRef::Table(_) => {
            return Err(invalid(format!(
                "{prefix} Only tables imported from env.table are allowed."
            )));
        }
        _ => {
            return Err(invalid(format!(
                "{prefix} Module imports '{}' from '{}' that is not exported by the runtime.",
                import.name, import.module
            )));
        }
    };
    let Some(expected) = wasm_patch::ic0::lookup(import.name) else {
        return Err(invalid(format!(
            "{prefix} Module imports function '{}' from '{}' that is not exported by the runtime.",
            import.name, import.module
        )));
    };
    if import.module != "ic0" {
        return Err(invalid(format!(
            "{prefix} Module imports function {:?} from {:?}, expected to be imported from one of {:?} instead.",
            import.name,
            import.module,
            ["ic0"]
        )));
    }
    let to_wasm = |t: &wasm_patch::ic0::Ic0Type| match t {
        wasm_patch::ic0::Ic0Type::I32 => ValType::I32,
        wasm_patch::ic0::Ic0Type::I64 => ValType::I64,
    };
    let want_params: Vec<ValType> = expected.params.iter().map(to_wasm).collect();
    let want_results: Vec<ValType> = expected.results.iter().map(to_wasm).collect();
    let (params, results) = &types[ty as usize];
    let sig = "Wasm module has an invalid function signature.";
    if *params != want_params {
        return Err(invalid(format!(
            "{sig} Expected input params {} for '{}', got {}.",
            type_list(&want_params),
            import.name,
            type_list(params)
        )));
    }
    if *results != want_results {
        return Err(invalid(format!(
            "{sig} Expected return type {} for '{}', got {}.",
            type_list(&want_results),
            import.name,
            type_list(results)
        )));
    }
    Ok(())
}

const SYSTEM_EXPORTS: &[&str] = &[
    "canister_init",
    "canister_pre_upgrade",
    "canister_post_upgrade",
    "canister_heartbeat",
    "canister_global_timer",
    "canister_inspect_message",
    "canister_on_low_wasm_memory",
];
const METHOD_PREFIXES: &[&str] = &[
    "canister_update ",
    "canister_query ",
    "canister_composite_query ",
];

fn check_exports(
    exported: &[(String, u32)],
    func_types: &[u32],
    types: &[(Vec<ValType>, Vec<ValType>)],
) -> Result<(), InvalidModule> {
    let prefix = "Wasm module has an invalid export section.";
    let mut methods: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, index) in exported {
        if !name.starts_with("canister_") {
            continue;
        }
        let method = METHOD_PREFIXES
            .iter()
            .find_map(|p| name.strip_prefix(p).map(|m| (*p, m)));
        if !SYSTEM_EXPORTS.contains(&name.as_str()) && method.is_none() {
            return Err(invalid(format!(
                "{prefix} Exporting reserved function '{name}' with \"canister_\" prefix"
            )));
        }
        let (params, results) = &types[func_types[*index as usize] as usize];
        if !params.is_empty() || !results.is_empty() {
            return Err(invalid(format!(
                "{prefix} Expected return type [] and parameters [] for exported function '{name}', got {} -> {}.",
                type_list(params),
                type_list(results)
            )));
        }
        if let Some((kind, method)) = method
            && let Some(other) = methods.insert(method, kind)
            && other != kind
        {
            return Err(invalid(format!(
                "{prefix} Duplicate function '{method}' exported multiple times with different call types: update, query, or composite_query."
            )));
        }
    }
    if methods.len() > limits::MAX_EXPORTED_METHODS {
        return Err(limit_error(
            format!(
                "{prefix} The number of exported functions called `canister_update <name>`, `canister_query <name>`, or `canister_composite_query <name>` exceeds {}.",
                limits::MAX_EXPORTED_METHODS
            ),
            "Try combining multiple endpoints into a single endpoint.",
            "wasm-module-too-many-exports",
        ));
    }
    Ok(())
}

struct Instrumented {
    wasm: Vec<u8>,
    globals: Vec<String>,
    has_start: bool,
}

fn instrument(wasm: &[u8]) -> Result<Instrumented, InvalidModule> {
    let mut config = walrus::ModuleConfig::new();
    config.generate_producers_section(false);
    let mut module = config
        .parse(wasm)
        .map_err(|e| invalid(format!("Failed to instrument wasm module: {e}")))?;
    let mutable: Vec<walrus::GlobalId> = module
        .globals
        .iter()
        .filter(|g| g.mutable && matches!(g.kind, walrus::GlobalKind::Local(_)))
        .map(|g| g.id())
        .collect();
    let mut globals = Vec::new();
    for (i, id) in mutable.into_iter().enumerate() {
        let name = format!("__sim_global_{i}");
        module.exports.add(&name, id);
        globals.push(name);
    }
    let memory = module.memories.iter().next().map(|m| m.id());
    if let Some(memory) = memory {
        module.exports.add("__sim_memory", memory);
    }
    let table = module.tables.iter().next().map(|t| t.id());
    if let Some(table) = table {
        module.exports.add("__sim_table", table);
    }
    let start = module.start.take();
    if let Some(start) = start {
        module.exports.add("__sim_start", start);
    }
    Ok(Instrumented {
        wasm: module.emit_wasm(),
        globals,
        has_start: start.is_some(),
    })
}

fn compile(bytes: &[u8], hash: [u8; 32]) -> Result<CompiledModule, InvalidModule> {
    let wasm = decompress(bytes)?;
    let Inspection {
        exports,
        custom_sections,
    } = inspect(&wasm)?;
    let instrumented = instrument(&wasm)?;
    let engine = engine();
    let module = load_cached(engine, &hash, &instrumented.wasm)?;
    let instance_pre = system_api::linker(engine)
        .instantiate_pre(&module)
        .map_err(|e| invalid(format!("Wasm module could not be linked: {e}")))?;
    Ok(CompiledModule {
        hash,
        uploaded_size: bytes.len(),
        bytes: Arc::new(bytes.to_vec()),
        instance_pre,
        exports,
        custom_sections,
        globals: instrumented.globals,
        has_start: instrumented.has_start,
    })
}

fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("IC_SIM_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    target.is_dir().then(|| target.join("ic-sim-cache"))
}

/// Compiles with cranelift, or loads the artefact an earlier process left on disk.
fn load_cached(engine: &Engine, hash: &[u8; 32], wasm: &[u8]) -> Result<Module, InvalidModule> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let path =
        cache_dir().map(|d| d.join(format!("{}-{:016x}.cwasm", hex::encode(hash), h.finish())));
    if let Some(path) = path.as_ref().filter(|p| p.is_file()) {
        // SAFETY: the file was written by `Module::serialize` of this same engine configuration
        // (the compatibility hash is in its name) into the simulator's own cache directory.
        if let Ok(module) = unsafe { Module::deserialize_file(engine, path) } {
            return Ok(module);
        }
    }
    COMPILATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let module = Module::new(engine, wasm)
        .map_err(|e| invalid(format!("Wasmtime failed to compile wasm module: {e}")))?;
    if let (Some(path), Ok(bytes)) = (path, module.serialize()) {
        // Best effort: a cache that cannot be written only costs time.
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The linker provides exactly the functions of the shared ic0 table, no more and no less,
    /// so the install-time import check and the runtime agree.
    #[test]
    fn linker_defines_exactly_the_ic0_table() {
        let mut defined = system_api::defined_names(engine());
        defined.sort();
        let mut table: Vec<String> = wasm_patch::ic0::IC0_FUNCTIONS
            .iter()
            .map(|f| format!("ic0.{}", f.name))
            .collect();
        table.sort();
        assert_eq!(defined, table);
    }
}
