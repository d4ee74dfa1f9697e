//! Step 3 of the upgrade journal: is this module fit to be installed on the IC as the agent?
//!
//! [`validate`] runs, in this order, stopping at the first failure:
//!
//! 1. gzip (`1f 8b 08`) is decompressed; the uncompressed size must be within the limit;
//! 2. full wasmparser validation, function bodies included, with [`ic_features`]; the code
//!    section size and the function and global counts are checked as their sections are read;
//! 3. imports: only functions, only from module `ic0`, only those in [`crate::ic0`] and with
//!    exactly that signature;
//! 4. exports: every `canister_*` function export is an IC entry point of type `() -> ()`, no
//!    method name is exported twice (say as update and as query), and the number of methods and
//!    the total length of their names are within the limits;
//! 5. the policy's required exports are there;
//! 6. `icp:` custom sections: well-formed names, each NAME once, count and total size within
//!    the limits;
//! 7. the stamp, when the policy asks: `agent:parent_hash` equals
//!    [`ValidationPolicy::expected_parent`] and `agent:schema_range` covers
//!    [`ValidationPolicy::current_schema`];
//! 8. synthesized tools: the registry's specs check, and the tool functions and both hooks are
//!    exactly what the registry compiles to; a module without a registry carries no tool code.
//!
//! The IC's own install-time checks go further (instruction counts per function, among others);
//! this is the subset that a patch can break. Candid compatibility is not checked here.

use crate::error::signature;
use crate::ic0::{self, Ic0Function, Ic0Type, ic0_signature};
use crate::metadata::{self, PARENT_HASH, SCHEMA_RANGE};
use crate::profile::step;
use crate::scan::{self, Depth, ModuleInfo};
use crate::{Limits, ValidationError};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;

pub use crate::exports::{METHOD_PREFIXES, SYSTEM_EXPORTS, split_method};
pub use crate::scan::ic_features;

/// What [`validate`] requires beyond the IC's rules.
///
/// In JSON every field is optional; hashes are hex strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationPolicy {
    /// Export names that must be present, like `canister_query health`. `canister_method NAME`
    /// asks for a method callable as NAME of any kind (`canister_query`,
    /// `canister_composite_query` or `canister_update`): what another canister needs to call it.
    pub required_exports: Vec<String>,
    /// The module's `agent:parent_hash` must equal this (the running module's hash).
    #[serde(with = "crate::hex_serde::opt_hash")]
    pub expected_parent: Option<[u8; 32]>,
    /// The module's `agent:schema_range` must include this schema version.
    pub current_schema: Option<u32>,
    /// Module limits; [`Limits::IC`] unless lowered.
    pub limits: Limits,
}

/// What a valid module looks like, for the journal and `agentctl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationReport {
    /// SHA-256 of the input bytes (as the IC will report it after install).
    #[serde(with = "crate::hex_serde::hash")]
    pub module_hash: [u8; 32],
    /// Uncompressed module size in bytes.
    pub size: u64,
    /// Whether the input was gzip-compressed.
    pub gzipped: bool,
    /// Functions defined in the module (imports not counted).
    pub functions: u64,
    /// Method exports (`canister_update X`, `canister_query X`, `canister_composite_query X`),
    /// sorted.
    pub exported_methods: Vec<String>,
    /// `icp:` sections: full section name -> content.
    #[serde(serialize_with = "serialize_metadata")]
    pub metadata: BTreeMap<String, Vec<u8>>,
    /// Imported `ic0` functions, sorted.
    pub ic0_imports: Vec<String>,
    /// Synthesized tools (checked against their registry), in dispatch order.
    pub tools: Vec<String>,
    /// Function bodies validated (the others were byte-identical to the parent's, see
    /// [`validate_patched`]).
    pub bodies_validated: u64,
}

/// Validates `wasm` (raw or gzip) for installation on the IC under `policy`.
pub fn validate(
    wasm: &[u8],
    policy: &ValidationPolicy,
) -> Result<ValidationReport, ValidationError> {
    let (bytes, gzipped) = scan::decode(wasm, &policy.limits)?;
    let validated = std::cell::Cell::new(0u64);
    let info = scan::scan_skipping(&bytes, Depth::Full, &policy.limits, &|_, _| {
        validated.set(validated.get() + 1);
        false
    })?;
    finish(
        crate::sha256(wasm),
        &bytes,
        gzipped,
        info,
        policy,
        validated.get(),
    )
}

/// [`validate`] of a module that [`crate::apply_patch_to`] made from `parent`, the module the
/// IC runs now: the IC validated `parent` when it was installed, so a function body that is
/// byte-for-byte the parent's, at the same index, with the same type, in a module whose
/// imports, tables, memories, globals, elements, start, data count and tags are the parent's
/// and whose types and function exports extend the parent's, is as valid as it was there and
/// is not validated again. Everything else is, and the verdict is [`validate`]'s. The report's
/// `module_hash` is the one `candidate` carries (apply_patch hashed the bytes it emitted).
pub fn validate_patched(
    candidate: &crate::PatchedModule,
    parent: &crate::Parent<'_>,
    policy: &ValidationPolicy,
) -> Result<ValidationReport, ValidationError> {
    let (bytes, gzipped) = scan::decode(&candidate.wasm, &policy.limits)?;
    let trusted = crate::raw::TrustedBodies::new(parent.wasm(), &bytes);
    step("validate: parent's bodies");
    let validated = std::cell::Cell::new(0u64);
    let info = scan::scan_skipping(&bytes, Depth::Full, &policy.limits, &|index, body| {
        let skip = trusted.as_ref().is_some_and(|t| t.covers(index, body));
        validated.set(validated.get() + u64::from(!skip));
        skip
    })?;
    step("validate: wasmparser");
    finish(
        candidate.module_hash,
        &bytes,
        gzipped,
        info,
        policy,
        validated.get(),
    )
}

fn finish(
    module_hash: [u8; 32],
    bytes: &[u8],
    gzipped: bool,
    info: ModuleInfo,
    policy: &ValidationPolicy,
    bodies_validated: u64,
) -> Result<ValidationReport, ValidationError> {
    check_imports(&info)?;
    let exported_methods = check_exports(&info, &policy.limits)?;
    check_required(&info, &policy.required_exports)?;
    let metadata = check_icp_sections(&info, &policy.limits)?;
    check_stamp(&metadata, policy)?;
    step("validate: IC rules");
    let tools = crate::ops::tools::verify(bytes)?;
    step("validate: tools");

    let mut ic0_imports: Vec<String> = info.imports.iter().map(|i| i.name.clone()).collect();
    ic0_imports.sort();
    Ok(ValidationReport {
        module_hash,
        size: bytes.len() as u64,
        gzipped,
        functions: info.defined_functions,
        exported_methods,
        metadata,
        ic0_imports,
        tools,
        bodies_validated,
    })
}
/// Whether a wasmparser function type is exactly `func`'s signature.
fn matches_ic0(ty: &wasmparser::FuncType, func: &Ic0Function) -> bool {
    let same = |wasm: &[wasmparser::ValType], ic0: &[Ic0Type]| {
        wasm.len() == ic0.len()
            && wasm.iter().zip(ic0).all(|(w, i)| {
                matches!(
                    (w, i),
                    (wasmparser::ValType::I32, Ic0Type::I32)
                        | (wasmparser::ValType::I64, Ic0Type::I64)
                )
            })
    };
    same(ty.params(), func.params) && same(ty.results(), func.results)
}

fn check_imports(info: &ModuleInfo) -> Result<(), ValidationError> {
    for import in &info.imports {
        let type_index = match import.ty {
            Ok(index) => index,
            Err(kind) => {
                return Err(ValidationError::NonFunctionImport {
                    module: import.module.clone(),
                    name: import.name.clone(),
                    kind,
                });
            }
        };
        if import.module != "ic0" {
            return Err(ValidationError::ForeignImport {
                module: import.module.clone(),
                name: import.name.clone(),
            });
        }
        let Some(func) = ic0::lookup(&import.name) else {
            return Err(ValidationError::UnknownIc0Import {
                name: import.name.clone(),
            });
        };
        let found = info.types.get(type_index as usize).and_then(Option::as_ref);
        if !found.is_some_and(|ty| matches_ic0(ty, func)) {
            return Err(ValidationError::Ic0SignatureMismatch {
                name: import.name.clone(),
                expected: ic0_signature(func),
                found: found.map_or_else(|| "not a function type".to_string(), func_signature),
            });
        }
    }
    Ok(())
}

pub(crate) fn func_signature(ty: &wasmparser::FuncType) -> String {
    signature(ty.params(), ty.results())
}

/// Checks the `canister_*` exports and returns the method exports, sorted.
fn check_exports(info: &ModuleInfo, limits: &Limits) -> Result<Vec<String>, ValidationError> {
    let mut methods: BTreeMap<&str, &str> = BTreeMap::new(); // NAME -> export
    let mut name_bytes = 0u64;
    for export in &info.func_exports {
        let name = export.name.as_str();
        let method = split_method(name).map(|(_, method)| method);
        if method.is_none() && !SYSTEM_EXPORTS.contains(&name) {
            if name.starts_with("canister_") {
                return Err(ValidationError::ReservedExport {
                    export: name.to_string(),
                });
            }
            continue;
        }
        if let Some(ty) = info.func_type(export.func_index)
            && !(ty.params().is_empty() && ty.results().is_empty())
        {
            return Err(ValidationError::EntryPointSignature {
                export: name.to_string(),
                found: func_signature(ty),
            });
        }
        if let Some(method) = method {
            if let Some(first) = methods.insert(method, name) {
                return Err(ValidationError::MethodExportedTwice {
                    method: method.to_string(),
                    first: first.to_string(),
                    second: name.to_string(),
                });
            }
            name_bytes += method.len() as u64;
        }
    }
    let count = methods.len() as u64;
    if count > limits.max_exported_methods {
        return Err(ValidationError::TooManyExportedMethods {
            count,
            limit: limits.max_exported_methods,
        });
    }
    if name_bytes > limits.max_method_name_bytes {
        return Err(ValidationError::MethodNamesTooLong {
            size: name_bytes,
            limit: limits.max_method_name_bytes,
        });
    }
    let mut exported: Vec<String> = methods.into_values().map(str::to_string).collect();
    exported.sort();
    Ok(exported)
}

fn check_required(info: &ModuleInfo, required: &[String]) -> Result<(), ValidationError> {
    for name in required {
        let satisfied = match name.strip_prefix("canister_method ") {
            Some(method) => [
                "canister_query",
                "canister_composite_query",
                "canister_update",
            ]
            .iter()
            .any(|kind| {
                let full = format!("{kind} {method}");
                info.func_exports.iter().any(|e| e.name == full)
            }),
            None => info.func_exports.iter().any(|e| &e.name == name),
        };
        if !satisfied {
            let mut exported: Vec<String> =
                info.func_exports.iter().map(|e| e.name.clone()).collect();
            exported.sort();
            return Err(ValidationError::MissingExport {
                name: name.clone(),
                exported,
            });
        }
    }
    Ok(())
}

/// Checks the `icp:` sections and returns them by full name.
fn check_icp_sections(
    info: &ModuleInfo,
    limits: &Limits,
) -> Result<BTreeMap<String, Vec<u8>>, ValidationError> {
    let mut by_name: BTreeMap<&str, &str> = BTreeMap::new(); // NAME -> section
    let mut total = 0u64;
    for (section, content) in &info.icp_sections {
        let Some((_, name)) = metadata::parse_section_name(section) else {
            return Err(ValidationError::InvalidIcpSectionName {
                section: section.clone(),
            });
        };
        if let Some(first) = by_name.insert(name, section) {
            return Err(ValidationError::DuplicateIcpSection {
                name: name.to_string(),
                first: first.to_string(),
                second: section.clone(),
            });
        }
        total += (section.len() + content.len()) as u64;
    }
    let count = info.icp_sections.len() as u64;
    if count > limits.max_icp_sections {
        return Err(ValidationError::TooManyIcpSections {
            count,
            limit: limits.max_icp_sections,
        });
    }
    if total > limits.max_icp_section_bytes {
        return Err(ValidationError::IcpSectionsTooLarge {
            size: total,
            limit: limits.max_icp_section_bytes,
        });
    }
    Ok(info.icp_sections.iter().cloned().collect())
}

fn check_stamp(
    sections: &BTreeMap<String, Vec<u8>>,
    policy: &ValidationPolicy,
) -> Result<(), ValidationError> {
    if policy.expected_parent.is_none() && policy.current_schema.is_none() {
        return Ok(());
    }
    let stamp = metadata::read_stamp(sections)?;
    if let Some(expected) = policy.expected_parent {
        let found = stamp.parent_hash.ok_or(ValidationError::MissingMetadata {
            name: PARENT_HASH,
            purpose: "check that the module was patched from the running module",
        })?;
        if found != expected {
            return Err(ValidationError::ParentMismatch { expected, found });
        }
    }
    if let Some(current) = policy.current_schema {
        let (min, max) = stamp.schema_range.ok_or(ValidationError::MissingMetadata {
            name: SCHEMA_RANGE,
            purpose: "check that the module can run on the current stable-memory schema",
        })?;
        if !(min..=max).contains(&current) {
            return Err(ValidationError::SchemaOutOfRange { current, min, max });
        }
    }
    Ok(())
}

/// Metadata contents in JSON: a string when UTF-8, `{"hex": ...}` otherwise.
pub(crate) fn serialize_metadata<S: Serializer>(
    map: &BTreeMap<String, Vec<u8>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Content<'a>(#[serde(with = "crate::metadata::content_serde")] &'a Vec<u8>);
    s.collect_map(map.iter().map(|(name, content)| (name, Content(content))))
}
