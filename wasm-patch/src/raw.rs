//! The section-level view of a module: the fast path of [`crate::apply_patch`].
//!
//! A module is its 8-byte header and a list of sections, each kept as the input's bytes until
//! an edit replaces it. Edits touch only what they change: custom sections, the export section,
//! and in the function and code sections a few entries (replaced bodies, a truncated tail,
//! appended functions). Every other function body is copied as bytes, in runs, so patching a
//! 4 MB agent costs a few copies of it instead of walrus's full IR.
//!
//! Function indices never move: functions are only appended or cut from the end, and no import
//! is added. The input has been validated before it gets here (see `ops`), so framing errors
//! are reported but not expected.

use crate::PatchError;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use wasmparser::{
    BinaryReader, CompositeInnerType, ExportSectionReader, ExternalKind, ImportSectionReader,
    Operator, TypeRef, TypeSectionReader,
};

const CUSTOM: u8 = 0;
const TYPE: u8 = 1;
const IMPORT: u8 = 2;
const FUNCTION: u8 = 3;
const EXPORT: u8 = 7;
const CODE: u8 = 10;

/// A function type: parameters and results.
pub(crate) type Sig = (Vec<wasmparser::ValType>, Vec<wasmparser::ValType>);

/// An export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Export {
    pub name: String,
    pub kind: ExternalKind,
    pub index: u32,
}

struct Section<'a> {
    id: u8,
    payload: Cow<'a, [u8]>,
}

/// A module as sections.
pub(crate) struct RawModule<'a> {
    header: &'a [u8],
    sections: Vec<Section<'a>>,
}

fn unreadable(message: impl Into<String>) -> PatchError {
    PatchError::Unreadable {
        message: message.into(),
    }
}

fn parse_err(e: wasmparser::BinaryReaderError) -> PatchError {
    unreadable(format!("at byte {}: {}", e.offset(), e.message()))
}

/// Reads an unsigned LEB128 `u32` at `*at`.
fn leb(bytes: &[u8], at: &mut usize) -> Result<u32, PatchError> {
    let mut out = 0u64;
    for shift in (0..35).step_by(7) {
        let b = *bytes
            .get(*at)
            .ok_or_else(|| unreadable("a LEB128 number runs past the end"))?;
        *at += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return u32::try_from(out).map_err(|_| unreadable("a LEB128 number over u32"));
        }
    }
    Err(unreadable("a LEB128 number longer than 5 bytes"))
}

/// Appends `n` as unsigned LEB128.
pub(crate) fn put_leb(out: &mut Vec<u8>, mut n: u32) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Entries of a vector section (count, then entries) and where each starts.
struct Entries {
    /// Byte range of each entry in the payload.
    ranges: Vec<Range<usize>>,
}

impl<'a> RawModule<'a> {
    /// Splits `wasm` into sections.
    pub fn parse(wasm: &'a [u8]) -> Result<Self, PatchError> {
        if wasm.len() < 8 {
            return Err(unreadable("shorter than a Wasm header"));
        }
        let mut sections = Vec::new();
        let mut at = 8;
        while at < wasm.len() {
            let id = wasm[at];
            at += 1;
            let size = leb(wasm, &mut at)? as usize;
            let end = at
                .checked_add(size)
                .filter(|e| *e <= wasm.len())
                .ok_or_else(|| unreadable(format!("section {id} runs past the end")))?;
            sections.push(Section {
                id,
                payload: Cow::Borrowed(&wasm[at..end]),
            });
            at = end;
        }
        Ok(Self {
            header: &wasm[..8],
            sections,
        })
    }

    /// The module's bytes.
    pub fn emit(&self) -> Vec<u8> {
        let size: usize = self.sections.iter().map(|s| s.payload.len() + 6).sum();
        let mut out = Vec::with_capacity(8 + size);
        out.extend_from_slice(self.header);
        for s in &self.sections {
            out.push(s.id);
            put_leb(&mut out, s.payload.len() as u32);
            out.extend_from_slice(&s.payload);
        }
        out
    }

    fn section(&self, id: u8) -> Option<&[u8]> {
        self.sections
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.payload.as_ref())
    }

    fn set_section(&mut self, id: u8, payload: Vec<u8>) -> Result<(), PatchError> {
        let s = self
            .sections
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| unreadable(format!("the module has no section {id}")))?;
        s.payload = Cow::Owned(payload);
        Ok(())
    }

    fn custom_name(payload: &[u8]) -> Option<(&str, usize)> {
        let mut at = 0;
        let len = leb(payload, &mut at).ok()? as usize;
        let name = std::str::from_utf8(payload.get(at..at + len)?).ok()?;
        Some((name, at + len))
    }

    /// The content of the first custom section called `name`.
    pub fn custom(&self, name: &str) -> Option<&[u8]> {
        self.sections
            .iter()
            .filter(|s| s.id == CUSTOM)
            .find_map(|s| {
                let (n, start) = Self::custom_name(&s.payload)?;
                (n == name).then(|| &s.payload[start..])
            })
    }

    /// Removes every custom section called `name`.
    pub fn remove_custom(&mut self, name: &str) {
        self.sections.retain(|s| {
            s.id != CUSTOM || Self::custom_name(&s.payload).is_none_or(|(n, _)| n != name)
        });
    }

    /// Replaces every custom section called `name` with one, at the end.
    pub fn set_custom(&mut self, name: &str, content: &[u8]) {
        self.remove_custom(name);
        let mut payload = Vec::with_capacity(name.len() + content.len() + 5);
        put_leb(&mut payload, name.len() as u32);
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(content);
        self.sections.push(Section {
            id: CUSTOM,
            payload: Cow::Owned(payload),
        });
    }

    /// Every export, in order.
    pub fn exports(&self) -> Result<Vec<Export>, PatchError> {
        let Some(payload) = self.section(EXPORT) else {
            return Ok(vec![]);
        };
        let reader = ExportSectionReader::new(BinaryReader::new(payload, 0)).map_err(parse_err)?;
        reader
            .into_iter()
            .map(|e| {
                let e = e.map_err(parse_err)?;
                Ok(Export {
                    name: e.name.to_string(),
                    kind: e.kind,
                    index: e.index,
                })
            })
            .collect()
    }

    /// Replaces the export section.
    pub fn set_exports(&mut self, exports: &[Export]) -> Result<(), PatchError> {
        let mut section = wasm_encoder::ExportSection::new();
        for e in exports {
            let kind = match e.kind {
                ExternalKind::Func | ExternalKind::FuncExact => wasm_encoder::ExportKind::Func,
                ExternalKind::Table => wasm_encoder::ExportKind::Table,
                ExternalKind::Memory => wasm_encoder::ExportKind::Memory,
                ExternalKind::Global => wasm_encoder::ExportKind::Global,
                ExternalKind::Tag => wasm_encoder::ExportKind::Tag,
            };
            section.export(&e.name, kind, e.index);
        }
        let mut payload = Vec::new();
        wasm_encoder::Encode::encode(&section, &mut payload);
        // `encode` writes the section's size first; the payload is what follows.
        let mut at = 0;
        leb(&payload, &mut at)?;
        self.set_section(EXPORT, payload[at..].to_vec())
    }

    /// Function types, by type index.
    pub fn types(&self) -> Result<Vec<Option<Sig>>, PatchError> {
        let Some(payload) = self.section(TYPE) else {
            return Ok(vec![]);
        };
        let reader = TypeSectionReader::new(BinaryReader::new(payload, 0)).map_err(parse_err)?;
        let mut out = Vec::new();
        for group in reader {
            for sub in group.map_err(parse_err)?.into_types() {
                out.push(match sub.composite_type.inner {
                    CompositeInnerType::Func(f) => {
                        Some((f.params().to_vec(), f.results().to_vec()))
                    }
                    _ => None,
                });
            }
        }
        Ok(out)
    }

    /// The type index of `sig`, appending it to the type section if no type has it.
    pub fn type_index(&mut self, sig: &Sig) -> Result<u32, PatchError> {
        let types = self.types()?;
        if let Some(i) = types.iter().position(|t| t.as_ref() == Some(sig)) {
            return Ok(i as u32);
        }
        let payload = self
            .section(TYPE)
            .ok_or_else(|| unreadable("the module has no type section"))?;
        let mut at = 0;
        let groups = leb(payload, &mut at)?;
        let mut out = Vec::with_capacity(payload.len() + 16);
        put_leb(&mut out, groups + 1);
        out.extend_from_slice(&payload[at..]);
        let mut ty = wasm_encoder::TypeSection::new();
        let val = |v: &wasmparser::ValType| match v {
            wasmparser::ValType::I32 => Ok(wasm_encoder::ValType::I32),
            wasmparser::ValType::I64 => Ok(wasm_encoder::ValType::I64),
            other => Err(unreadable(format!(
                "unsupported type {other:?} in a new signature"
            ))),
        };
        let params: Vec<_> = sig.0.iter().map(val).collect::<Result<_, _>>()?;
        let results: Vec<_> = sig.1.iter().map(val).collect::<Result<_, _>>()?;
        ty.ty().function(params, results);
        // The encoded section: size, count (1), then the entry.
        let mut encoded = Vec::new();
        wasm_encoder::Encode::encode(&ty, &mut encoded);
        let mut at = 0;
        leb(&encoded, &mut at)?;
        leb(&encoded, &mut at)?;
        out.extend_from_slice(&encoded[at..]);
        self.set_section(TYPE, out)?;
        Ok(types.len() as u32)
    }

    /// Number of imported functions (they come first in the function index space).
    pub fn imported_functions(&self) -> Result<u32, PatchError> {
        let Some(payload) = self.section(IMPORT) else {
            return Ok(0);
        };
        let reader = ImportSectionReader::new(BinaryReader::new(payload, 0)).map_err(parse_err)?;
        let mut n = 0;
        for import in reader.into_imports() {
            if matches!(
                import.map_err(parse_err)?.ty,
                TypeRef::Func(_) | TypeRef::FuncExact(_)
            ) {
                n += 1;
            }
        }
        Ok(n)
    }

    /// The function section's type indices (defined functions only).
    pub fn function_types(&self) -> Result<Vec<u32>, PatchError> {
        let Some(payload) = self.section(FUNCTION) else {
            return Ok(vec![]);
        };
        let mut at = 0;
        let count = leb(payload, &mut at)?;
        (0..count).map(|_| leb(payload, &mut at)).collect()
    }

    fn code_entries(&self) -> Result<Entries, PatchError> {
        let payload = self.section(CODE).unwrap_or(&[0]);
        let mut at = 0;
        let count = leb(payload, &mut at)?;
        let mut ranges = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let start = at;
            let size = leb(payload, &mut at)? as usize;
            at = at
                .checked_add(size)
                .filter(|e| *e <= payload.len())
                .ok_or_else(|| unreadable("a function body runs past its section"))?;
            ranges.push(start..at);
        }
        Ok(Entries { ranges })
    }

    /// Rewrites the function and code sections: defined functions from `keep` on are cut,
    /// bodies in `replace` (by defined-function index, below `keep`) are swapped, and
    /// `append` (type index, body) is added at the end. Untouched bodies are copied as bytes.
    pub fn edit_functions(
        &mut self,
        keep: u32,
        replace: &BTreeMap<u32, Vec<u8>>,
        append: &[(u32, Vec<u8>)],
    ) -> Result<(), PatchError> {
        let types = self.function_types()?;
        if keep as usize > types.len() || replace.keys().any(|i| *i >= keep) {
            return Err(unreadable("a function edit out of range"));
        }
        let mut funcs = Vec::with_capacity(types.len() * 2);
        put_leb(&mut funcs, keep + append.len() as u32);
        for ty in types[..keep as usize]
            .iter()
            .chain(append.iter().map(|(t, _)| t))
        {
            put_leb(&mut funcs, *ty);
        }

        let entries = self.code_entries()?;
        let payload = self.section(CODE).unwrap_or(&[0]);
        let mut code =
            Vec::with_capacity(payload.len() + append.iter().map(|a| a.1.len() + 5).sum::<usize>());
        put_leb(&mut code, keep + append.len() as u32);
        let mut run_start: Option<usize> = None;
        let kept = &entries.ranges[..keep as usize];
        for (i, range) in kept.iter().enumerate() {
            match replace.get(&(i as u32)) {
                None => {
                    run_start.get_or_insert(range.start);
                }
                Some(body) => {
                    if let Some(start) = run_start.take() {
                        code.extend_from_slice(&payload[start..range.start]);
                    }
                    put_leb(&mut code, body.len() as u32);
                    code.extend_from_slice(body);
                }
            }
        }
        if let (Some(start), Some(last)) = (run_start, kept.last()) {
            code.extend_from_slice(&payload[start..last.end]);
        }
        for (_, body) in append {
            put_leb(&mut code, body.len() as u32);
            code.extend_from_slice(body);
        }
        self.set_section(FUNCTION, funcs)?;
        self.set_section(CODE, code)
    }

    /// The signature of every function (imports first).
    pub fn signatures(&self) -> Result<Signatures, PatchError> {
        let mut funcs = Vec::new();
        if let Some(payload) = self.section(IMPORT) {
            let reader =
                ImportSectionReader::new(BinaryReader::new(payload, 0)).map_err(parse_err)?;
            for import in reader.into_imports() {
                if let TypeRef::Func(t) | TypeRef::FuncExact(t) = import.map_err(parse_err)?.ty {
                    funcs.push(t);
                }
            }
        }
        let imported = funcs.len() as u32;
        funcs.extend(self.function_types()?);
        Ok(Signatures {
            types: self.types()?,
            funcs,
            imported,
        })
    }

    /// Every function body (locals and code), by defined-function index.
    pub fn bodies(&self) -> Result<Vec<&[u8]>, PatchError> {
        code_bodies(self.section(CODE).unwrap_or(&[0]))
    }
}

/// Function signatures of a module.
pub(crate) struct Signatures {
    types: Vec<Option<Sig>>,
    /// Type index of every function, imports first.
    funcs: Vec<u32>,
    /// Imported functions.
    pub imported: u32,
}

impl Signatures {
    /// The signature of function `func`.
    pub fn of(&self, func: u32) -> Option<&Sig> {
        let ty = *self.funcs.get(func as usize)?;
        self.types.get(ty as usize)?.as_ref()
    }
}

/// The functions a body calls directly, in order.
pub(crate) fn call_targets(body: &[u8]) -> Result<Vec<u32>, PatchError> {
    let body = wasmparser::FunctionBody::new(BinaryReader::new(body, 0));
    let mut ops = body.get_operators_reader().map_err(parse_err)?;
    let mut out = Vec::new();
    while !ops.eof() {
        if let Operator::Call { function_index } = ops.read().map_err(parse_err)? {
            out.push(function_index);
        }
    }
    Ok(out)
}

/// The bodies of a code section's payload (each after its size), borrowed from it.
fn code_bodies(payload: &[u8]) -> Result<Vec<&[u8]>, PatchError> {
    let mut at = 0;
    let count = leb(payload, &mut at)?;
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let size = leb(payload, &mut at)? as usize;
        let end = at
            .checked_add(size)
            .filter(|e| *e <= payload.len())
            .ok_or_else(|| unreadable("a function body runs past its section"))?;
        out.push(&payload[at..end]);
        at = end;
    }
    Ok(out)
}

/// The function bodies of a parent module that a candidate patched from it keeps, and may keep
/// without validating them again (see [`crate::validate_patched`]).
pub(crate) struct TrustedBodies<'p> {
    bodies: Vec<&'p [u8]>,
    parent_types: Vec<u32>,
    candidate_types: Vec<u32>,
}

impl<'p> TrustedBodies<'p> {
    /// `None` when the candidate's context differs from the parent's in a way that could make
    /// a copied body invalid (then every body is validated).
    pub fn new(parent: &'p [u8], candidate: &[u8]) -> Option<Self> {
        let p = RawModule::parse(parent).ok()?;
        let c = RawModule::parse(candidate).ok()?;
        // Import, table, memory, global, start, element, data count, tag.
        for id in [2, 4, 5, 6, 8, 9, 12, 13] {
            if p.section(id) != c.section(id) {
                return None;
            }
        }
        let (pt, ct) = (p.types().ok()?, c.types().ok()?);
        if pt.len() > ct.len() || pt[..] != ct[..pt.len()] {
            return None;
        }
        // `ref.func` needs its function declared, for example by an export: keep them all.
        let exported = |m: &RawModule| -> Option<BTreeSet<u32>> {
            Some(
                m.exports()
                    .ok()?
                    .into_iter()
                    .filter(|e| matches!(e.kind, ExternalKind::Func | ExternalKind::FuncExact))
                    .map(|e| e.index)
                    .collect(),
            )
        };
        if !exported(&p)?.is_subset(&exported(&c)?) {
            return None;
        }
        let code = p
            .sections
            .iter()
            .find(|s| s.id == CODE)
            .and_then(|s| match &s.payload {
                Cow::Borrowed(b) => Some(*b),
                Cow::Owned(_) => None,
            })
            .unwrap_or(&[0]);
        Some(Self {
            bodies: code_bodies(code).ok()?,
            parent_types: p.function_types().ok()?,
            candidate_types: c.function_types().ok()?,
        })
    }

    /// Whether the candidate's defined function `index`, with body `body`, is the parent's.
    pub fn covers(&self, index: u32, body: &[u8]) -> bool {
        let i = index as usize;
        self.bodies.get(i) == Some(&body) && self.parent_types.get(i) == self.candidate_types.get(i)
    }
}
