//! Synthesized tools in a module: `add_tool` / `remove_tool`, and their check in validation.
//!
//! A module's tools are a pure function of its registry (the `icp:public agent:tools` section,
//! see [`tool_spec::registry`]) and of where it keeps the host ABI:
//!
//! ```text
//! registry --compile--> tool bodies     appended as functions `() -> i32` at the end
//!          \----------> registry hook   body of export agent_tool_abi.v1.registry (pushes the JSON)
//!   tool function indices --> dispatch  body of export agent_tool_abi.v1.dispatch
//! ```
//!
//! Every patch of a module with tools regenerates all of it: the old tool functions (those the
//! dispatch hook calls) are cut when they are the module's last functions, or else emptied to
//! `unreachable` (after a walrus pass that appended other functions), and the new ones are
//! appended. [`verify`] regenerates the same from the registry and compares bytes, so the code
//! a module runs is the code its registry describes. Everything here works on sections
//! ([`crate::raw`]): no walrus.

use crate::exports::split_method;
use crate::ops::PatchOp;
use crate::raw::{self, RawModule, Sig};
use crate::{PatchError, ValidationError};
use std::collections::{BTreeMap, BTreeSet};
use tool_spec::abi::{self, AbiIndices, Ty};
use tool_spec::registry::{self, Registry, SECTION};
use wasmparser::{ExternalKind, ValType};

/// Where a module keeps the host ABI and the two hooks.
pub(crate) struct ToolAbi {
    /// Function index of each ABI function.
    pub indices: AbiIndices,
    /// Function index of the dispatch hook.
    pub dispatch: u32,
    /// Function index of the registry hook.
    pub registry: u32,
}

fn sig(params: &[Ty], results: &[Ty]) -> Sig {
    let v = |t: &Ty| match t {
        Ty::I32 => ValType::I32,
        Ty::I64 => ValType::I64,
    };
    (
        params.iter().map(v).collect(),
        results.iter().map(v).collect(),
    )
}

fn show(s: &Sig) -> String {
    crate::error::signature(&s.0, &s.1)
}

/// The ABI of `m`, with every function's type checked; `None` if the module has none at all.
pub(crate) fn find_abi(m: &RawModule) -> Result<Option<ToolAbi>, PatchError> {
    let exports: BTreeMap<String, u32> = m
        .exports()?
        .into_iter()
        .filter(|e| matches!(e.kind, ExternalKind::Func | ExternalKind::FuncExact))
        .map(|e| (e.name, e.index))
        .collect();
    if !exports.keys().any(|n| n.starts_with(abi::PREFIX)) {
        return Ok(None);
    }
    let sigs = m.signatures()?;
    let lookup = |name: String, want: Sig| -> Result<u32, PatchError> {
        let index = *exports.get(&name).ok_or_else(|| PatchError::NoToolAbi {
            export: name.clone(),
        })?;
        match sigs.of(index) {
            Some(found) if *found == want => Ok(index),
            found => Err(PatchError::ToolAbiSignature {
                export: name,
                expected: show(&want),
                found: found.map_or_else(|| "not a function type".into(), show),
            }),
        }
    };
    let mut indices = Vec::with_capacity(abi::FUNCTIONS.len());
    for f in abi::FUNCTIONS {
        indices.push(lookup(f.export(), sig(f.params, f.results))?);
    }
    let dispatch = lookup(abi::DISPATCH.into(), sig(&[Ty::I32], &[Ty::I32]))?;
    let registry = lookup(abi::REGISTRY.into(), sig(&[], &[Ty::I32]))?;
    if dispatch < sigs.imported || registry < sigs.imported {
        return Err(PatchError::NoToolAbi {
            export: format!(
                "{} and {} as functions defined in the module",
                abi::DISPATCH,
                abi::REGISTRY
            ),
        });
    }
    Ok(Some(ToolAbi {
        indices: AbiIndices(indices),
        dispatch,
        registry,
    }))
}

fn registry_of(m: &RawModule) -> Result<Option<Registry>, PatchError> {
    m.custom(SECTION)
        .map(Registry::parse)
        .transpose()
        .map_err(|error| PatchError::ToolRegistry {
            op_index: None,
            error,
        })
}

/// The tool functions the dispatch hook (its body: `dispatch`) of a module with `count` tools
/// calls, in order.
fn tool_functions(dispatch: &[u8], count: usize) -> Result<Vec<u32>, String> {
    let targets = raw::call_targets(dispatch).map_err(|e| e.to_string())?;
    if targets.len() != count {
        return Err(format!(
            "the dispatch hook calls {} functions; the registry lists {count} tools",
            targets.len()
        ));
    }
    Ok(targets)
}

/// Applies the tool operations of `ops` (the others are not this module's), and regenerates
/// the tools of a module whose bodies walrus re-encoded (`rebuilt`).
pub(crate) fn apply(m: &mut RawModule, ops: &[PatchOp], rebuilt: bool) -> Result<(), PatchError> {
    let tool_ops = ops
        .iter()
        .any(|op| matches!(op, PatchOp::AddTool { .. } | PatchOp::RemoveTool { .. }));
    let existing = registry_of(m)?;
    let regenerate = rebuilt && existing.is_some();
    if !tool_ops && !regenerate {
        return Ok(());
    }
    let Some(abi) = find_abi(m)? else {
        return Err(PatchError::NoToolAbi {
            export: abi::DISPATCH.into(),
        });
    };
    let had = existing.as_ref().map_or(0, |r| r.tools.len());
    let mut registry = existing.unwrap_or_default();
    let methods: BTreeSet<String> = m
        .exports()?
        .into_iter()
        .filter_map(|e| split_method(&e.name).map(|(_, name)| name.to_string()))
        .collect();
    for (op_index, op) in ops.iter().enumerate() {
        match op {
            PatchOp::AddTool { spec } => {
                let taken = |name: &str| {
                    if methods.contains(name) {
                        Some(format!("method `{name}` of the module"))
                    } else if registry.tools.iter().any(|t| t.name == name) {
                        Some("a synthesized tool already in the module (remove_tool it first to replace it)".into())
                    } else {
                        None
                    }
                };
                let spec = tool_spec::check(spec, &taken)
                    .map_err(|error| PatchError::ToolSpec { op_index, error })?;
                registry
                    .add(&spec)
                    .map_err(|error| PatchError::ToolRegistry {
                        op_index: Some(op_index),
                        error,
                    })?;
            }
            PatchOp::RemoveTool { name } => {
                registry
                    .remove(name)
                    .map_err(|error| PatchError::ToolRegistry {
                        op_index: Some(op_index),
                        error,
                    })?;
            }
            _ => {}
        }
    }
    let specs = registry.specs().map_err(|error| PatchError::ToolRegistry {
        op_index: None,
        error,
    })?;
    let generated = registry::generate(&registry, &specs, &abi.indices);

    let imported = m.imported_functions()?;
    let old: BTreeSet<u32> = if had > 0 {
        let bodies = m.bodies()?;
        let dispatch = bodies
            .get((abi.dispatch - imported) as usize)
            .ok_or_else(|| raw_error("the dispatch hook has no body"))?;
        tool_functions(dispatch, had)
            .map_err(|reason| PatchError::ToolRegistry {
                op_index: None,
                error: registry::RegistryError::Format(reason),
            })?
            .into_iter()
            .map(|f| f - imported)
            .collect()
    } else {
        BTreeSet::new()
    };
    let mut keep = m.function_types()?.len() as u32;
    while keep > 0 && old.contains(&(keep - 1)) {
        keep -= 1;
    }
    let (dispatch, hook) = (abi.dispatch - imported, abi.registry - imported);
    if dispatch >= keep || hook >= keep {
        return Err(PatchError::ToolRegistry {
            op_index: None,
            error: registry::RegistryError::Format("a hook is among the tool functions".into()),
        });
    }
    const UNREACHABLE: [u8; 3] = [0x00, 0x00, 0x0b];
    let mut replace: BTreeMap<u32, Vec<u8>> = old
        .iter()
        .filter(|l| **l < keep)
        .map(|l| (*l, UNREACHABLE.to_vec()))
        .collect();
    let first = imported + keep;
    let funcs: Vec<u32> = (0..generated.tools.len() as u32)
        .map(|i| first + i)
        .collect();
    replace.insert(dispatch, registry::dispatch_body(&funcs));
    replace.insert(hook, generated.registry_hook);
    let ty = m.type_index(&(vec![], vec![ValType::I32]))?;
    let append: Vec<(u32, Vec<u8>)> = generated.tools.into_iter().map(|b| (ty, b)).collect();
    m.edit_functions(keep, &replace, &append)?;
    match generated.section {
        Some(bytes) => m.set_custom(SECTION, &bytes),
        None => m.remove_custom(SECTION),
    }
    Ok(())
}

fn raw_error(message: &str) -> PatchError {
    PatchError::Unreadable {
        message: message.to_string(),
    }
}

fn code(reason: impl Into<String>) -> ValidationError {
    ValidationError::ToolCode {
        reason: reason.into(),
    }
}

/// The synthesized tools of `wasm` (raw), checked against their registry; the tools' names.
/// A module without the host ABI has none; one without a registry may not carry tool code.
pub(crate) fn verify(wasm: &[u8]) -> Result<Vec<String>, ValidationError> {
    let m = RawModule::parse(wasm).map_err(|e| code(e.to_string()))?;
    let abi = find_abi(&m).map_err(|e| code(e.to_string()))?;
    let registry = registry_of(&m).map_err(|e| code(e.to_string()))?;
    let (abi, registry) = match (abi, registry) {
        (None, None) => return Ok(vec![]),
        (None, Some(_)) => {
            return Err(code(format!(
                "the module has a registry but no tool host ABI ({}*)",
                abi::PREFIX
            )));
        }
        (Some(abi), None) => {
            // No registry: the hooks must not reach any tool code or push a registry.
            let imported = m.imported_functions().map_err(|e| code(e.to_string()))?;
            let bodies = m.bodies().map_err(|e| code(e.to_string()))?;
            let push = abi.indices.of(abi::Abi::BytesPush);
            for (hook, name) in [(abi.dispatch, abi::DISPATCH), (abi.registry, abi::REGISTRY)] {
                let body = bodies
                    .get((hook - imported) as usize)
                    .ok_or_else(|| code(format!("`{name}` has no body")))?;
                let calls = raw::call_targets(body).map_err(|e| code(e.to_string()))?;
                if (hook == abi.dispatch && !calls.is_empty()) || calls.contains(&push) {
                    return Err(code(format!(
                        "`{name}` carries tool code but the module has no registry ({SECTION})"
                    )));
                }
            }
            return Ok(vec![]);
        }
        (Some(abi), Some(registry)) => (abi, registry),
    };
    let specs = registry.specs().map_err(|e| code(e.to_string()))?;
    let generated = registry::generate(&registry, &specs, &abi.indices);
    let imported = m.imported_functions().map_err(|e| code(e.to_string()))?;
    let bodies = m.bodies().map_err(|e| code(e.to_string()))?;
    let sigs = m.signatures().map_err(|e| code(e.to_string()))?;
    let body = |f: u32| -> Result<&[u8], ValidationError> {
        f.checked_sub(imported)
            .and_then(|l| bodies.get(l as usize).copied())
            .ok_or_else(|| code(format!("function {f} is an import or does not exist")))
    };
    let funcs = tool_functions(body(abi.dispatch)?, specs.len()).map_err(code)?;
    if body(abi.dispatch)? != registry::dispatch_body(&funcs).as_slice() {
        return Err(code("the dispatch hook is not the code the registry makes"));
    }
    if body(abi.registry)? != generated.registry_hook.as_slice() {
        return Err(code("the registry hook does not push the registry's bytes"));
    }
    let want: Sig = (vec![], vec![ValType::I32]);
    for ((spec, f), compiled) in specs.iter().zip(&funcs).zip(&generated.tools) {
        if sigs.of(*f) != Some(&want) || body(*f)? != compiled.as_slice() {
            return Err(code(format!(
                "tool `{}`: the code at function {f} is not what its spec compiles to (code_sha256 {})",
                spec.name,
                hex::encode(registry::code_sha256(spec))
            )));
        }
    }
    Ok(specs.into_iter().map(|s| s.name).collect())
}

/// The registry of `wasm` (raw or gzip), read without checking it against the code (that is
/// [`validate`](fn@crate::validate)'s job); `None` for a module without synthesized tools.
pub fn tool_registry(wasm: &[u8]) -> Result<Option<Registry>, ValidationError> {
    let (bytes, _) = crate::scan::decode(wasm, &crate::Limits::IC)?;
    tool_spec::registry::custom_section(&bytes, SECTION)
        .map(Registry::parse)
        .transpose()
        .map_err(|e| code(e.to_string()))
}
