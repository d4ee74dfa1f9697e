//! One pass over a module's sections, shared by validation, fingerprinting and patching.
//!
//! [`decode`] undoes gzip and enforces the size limit; [`scan`] parses (and at
//! [`Depth::Full`] validates, code bodies included) and keeps what the rules need as owned data.
//! The cheap limits (code section size, function and global counts) are checked as soon as
//! their section header is read, so an oversized module is refused before its code is
//! validated: that is most of the instructions an in-canister validation costs.

use crate::{Limits, ValidationError};
use std::borrow::Cow;
use std::io::Read;
use wasmparser::{
    BinaryReaderError, CompositeInnerType, Encoding, ExternalKind, FuncType,
    FuncValidatorAllocations, Parser, Payload, TypeRef, ValidPayload, Validator, WasmFeatures,
};

/// The gzip magic the IC recognises.
const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];

/// The Wasm magic, `\0asm`.
const WASM_MAGIC: [u8; 4] = [0x00, 0x61, 0x73, 0x6d];

/// How much of the module [`scan`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depth {
    /// Full validation with the IC's feature set, function bodies included.
    Full,
    /// Validation of every section with the IC's feature set, except function bodies: for
    /// callers that hand the module to walrus, which validates the bodies itself.
    Sections,
    /// Section structure only: what `fingerprint` needs, at a fraction of the cost.
    Structure,
}

/// An import, as the rules need it.
#[derive(Debug, Clone)]
pub(crate) struct ImportInfo {
    pub module: String,
    pub name: String,
    /// `Ok(type index)` for a function, `Err(kind)` otherwise.
    pub ty: Result<u32, &'static str>,
}

/// A function export.
#[derive(Debug, Clone)]
pub(crate) struct FuncExport {
    pub name: String,
    pub func_index: u32,
}

/// What one pass over a module found.
#[derive(Debug, Clone, Default)]
pub(crate) struct ModuleInfo {
    /// Function types by type index; `None` for a non-function type.
    pub types: Vec<Option<FuncType>>,
    pub imports: Vec<ImportInfo>,
    /// Type index of every function, imported ones first.
    pub func_types: Vec<u32>,
    pub defined_functions: u64,
    pub defined_globals: u64,
    pub func_exports: Vec<FuncExport>,
    /// `icp:` custom sections in module order: (name, content).
    pub icp_sections: Vec<(String, Vec<u8>)>,
}

impl ModuleInfo {
    /// The type of function `func_index`, if it is a function type.
    pub fn func_type(&self, func_index: u32) -> Option<&FuncType> {
        let ty = *self.func_types.get(usize::try_from(func_index).ok()?)?;
        self.types.get(usize::try_from(ty).ok()?)?.as_ref()
    }
}

/// Decompresses gzip input (magic `1f 8b 08`) and enforces `limits.max_module_bytes`.
/// Returns the Wasm bytes and whether the input was compressed.
pub(crate) fn decode<'a>(
    input: &'a [u8],
    limits: &Limits,
) -> Result<(Cow<'a, [u8]>, bool), ValidationError> {
    let limit = limits.max_module_bytes;
    if !input.starts_with(&GZIP_MAGIC) {
        let size = input.len() as u64;
        if size > limit {
            return Err(ValidationError::ModuleTooLarge { size, limit });
        }
        return Ok((Cow::Borrowed(input), false));
    }
    // Reading one byte past the limit tells "too large" apart without inflating a gzip bomb.
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(input)
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| ValidationError::Gzip {
            message: e.to_string(),
        })?;
    if out.len() as u64 > limit {
        return Err(ValidationError::DecompressedTooLarge {
            compressed_size: input.len() as u64,
            limit,
        });
    }
    Ok((Cow::Owned(out), true))
}

fn malformed(e: BinaryReaderError) -> ValidationError {
    ValidationError::Malformed {
        offset: e.offset() as u64,
        message: e.message().to_string(),
    }
}

/// Parses `wasm` (already decoded) and collects a [`ModuleInfo`].
pub(crate) fn scan(
    wasm: &[u8],
    depth: Depth,
    limits: &Limits,
) -> Result<ModuleInfo, ValidationError> {
    scan_skipping(wasm, depth, limits, &|_, _| false)
}

/// [`scan`], without validating the function bodies for which `trusted(index, body)` holds
/// (`index` counts defined functions from 0; `body` is the body's bytes after its size). The
/// section structure and every other body are validated as usual.
pub(crate) fn scan_skipping(
    wasm: &[u8],
    depth: Depth,
    limits: &Limits,
    trusted: &dyn Fn(u32, &[u8]) -> bool,
) -> Result<ModuleInfo, ValidationError> {
    // wasmparser's own message for this dumps two byte arrays over a dozen lines.
    if !wasm.starts_with(&WASM_MAGIC) {
        let found: Vec<String> = wasm.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return Err(ValidationError::Malformed {
            offset: 0,
            message: format!(
                "not a Wasm module: expected magic `00 61 73 6d`, found `{}`",
                found.join(" ")
            ),
        });
    }
    let mut info = ModuleInfo::default();
    let mut validator =
        (depth != Depth::Structure).then(|| Validator::new_with_features(ic_features()));
    let mut allocations = FuncValidatorAllocations::default();
    let mut defined = 0u32;

    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(malformed)?;
        if let Some(validator) = validator.as_mut() {
            match validator.payload(&payload).map_err(malformed)? {
                ValidPayload::Func(func, body) if depth == Depth::Full => {
                    let index = defined;
                    defined += 1;
                    if !trusted(index, body.as_bytes()) {
                        let mut func = func.into_validator(std::mem::take(&mut allocations));
                        func.validate(&body).map_err(malformed)?;
                        allocations = func.into_allocations();
                    }
                }
                // Nested modules exist only in components, which the feature set refuses.
                ValidPayload::Func(..)
                | ValidPayload::Parser(_)
                | ValidPayload::Ok
                | ValidPayload::End(_) => {}
            }
        }
        collect(&mut info, payload, limits)?;
    }
    Ok(info)
}

fn collect(
    info: &mut ModuleInfo,
    payload: Payload<'_>,
    limits: &Limits,
) -> Result<(), ValidationError> {
    match payload {
        Payload::Version {
            encoding: Encoding::Component,
            range,
            ..
        } => {
            return Err(ValidationError::Malformed {
                offset: range.start as u64,
                message: "this is a Wasm component; the IC runs core Wasm modules".to_string(),
            });
        }
        Payload::TypeSection(section) => {
            for group in section {
                for sub in group.map_err(malformed)?.into_types() {
                    info.types.push(match sub.composite_type.inner {
                        CompositeInnerType::Func(func) => Some(func),
                        _ => None,
                    });
                }
            }
        }
        Payload::ImportSection(section) => {
            for import in section.into_imports() {
                let import = import.map_err(malformed)?;
                let ty = match import.ty {
                    TypeRef::Func(ty) | TypeRef::FuncExact(ty) => {
                        info.func_types.push(ty);
                        Ok(ty)
                    }
                    TypeRef::Memory(_) => Err("memory"),
                    TypeRef::Table(_) => Err("table"),
                    TypeRef::Global(_) => Err("global"),
                    TypeRef::Tag(_) => Err("tag"),
                };
                info.imports.push(ImportInfo {
                    module: import.module.to_string(),
                    name: import.name.to_string(),
                    ty,
                });
            }
        }
        Payload::FunctionSection(section) => {
            let count = u64::from(section.count());
            if count > limits.max_functions {
                return Err(ValidationError::TooManyFunctions {
                    count,
                    limit: limits.max_functions,
                });
            }
            info.defined_functions = count;
            for ty in section {
                info.func_types.push(ty.map_err(malformed)?);
            }
        }
        Payload::GlobalSection(section) => {
            let count = u64::from(section.count());
            if count > limits.max_globals {
                return Err(ValidationError::TooManyGlobals {
                    count,
                    limit: limits.max_globals,
                });
            }
            info.defined_globals = count;
        }
        Payload::ExportSection(section) => {
            for export in section {
                let export = export.map_err(malformed)?;
                if export.kind == ExternalKind::Func {
                    info.func_exports.push(FuncExport {
                        name: export.name.to_string(),
                        func_index: export.index,
                    });
                }
            }
        }
        Payload::CodeSectionStart { range, .. } => {
            // The whole section payload, function count included.
            let size = (range.end.saturating_sub(range.start)) as u64;
            if size > limits.max_code_section_bytes {
                return Err(ValidationError::CodeSectionTooLarge {
                    size,
                    limit: limits.max_code_section_bytes,
                });
            }
        }
        Payload::CustomSection(section)
            if section.name().starts_with(crate::metadata::ICP_PREFIX) =>
        {
            info.icp_sections
                .push((section.name().to_string(), section.data().to_vec()));
        }
        _ => {}
    }
    Ok(())
}

/// The Wasm features the IC accepts in a wasm32 canister: the MVP with floats, mutable
/// globals, sign extension, multi-value, bulk memory, reference types (with `externref`),
/// non-trapping float-to-int and SIMD. Not threads, memory64 (wasm64 only, which this project
/// does not use), multi-memory, exceptions, GC, tail calls, relaxed SIMD, extended constants
/// or the component model.
pub fn ic_features() -> WasmFeatures {
    WasmFeatures::FLOATS
        | WasmFeatures::MUTABLE_GLOBAL
        | WasmFeatures::SIGN_EXTENSION
        | WasmFeatures::MULTI_VALUE
        | WasmFeatures::BULK_MEMORY
        | WasmFeatures::REFERENCE_TYPES
        // wasmparser gates `externref` behind GC_TYPES as well; the GC proposal stays off.
        | WasmFeatures::GC_TYPES
        | WasmFeatures::SATURATING_FLOAT_TO_INT
        | WasmFeatures::SIMD
}
