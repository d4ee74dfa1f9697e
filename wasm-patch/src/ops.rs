//! Step 2 of the upgrade journal: [`PatchOp`]s applied to a module by [`apply_patch`].
//!
//! # JSON
//!
//! One operation is an object tagged by `op`; a patch is a JSON array of them:
//!
//! ```json
//! [
//!   {"op": "set_metadata", "visibility": "public", "name": "candid:service", "content": "service : {}"},
//!   {"op": "set_metadata", "visibility": "private", "name": "blob", "content": {"hex": "00ff"}},
//!   {"op": "add_query_method", "name": "hello", "reply_hex": "4449444c000171026869"},
//!   {"op": "remove_method", "name": "debug_dump"},
//!   {"op": "guard_controller_only", "name": "set_config"},
//!   {"op": "add_tool", "spec": {"name": "tally_vote", "description": "...", "parameters": {...},
//!                               "body": {...}, "examples": [...]}},
//!   {"op": "remove_tool", "name": "tally_vote"}
//! ]
//! ```
//!
//! A tool spec is described in [`tool_spec`]; `tool_spec::samples` has three.
//!
//! Metadata `content` is a JSON string (stored as its UTF-8 bytes) or `{"hex": "..."}` for
//! arbitrary bytes. Unknown fields are refused.
//!
//! # Canonical JSON and the patch digest
//!
//! [`canonical_ops_json`] is serde_json's compact output for the list: fields in declaration
//! order, no whitespace, hex in lowercase, metadata content as a string whenever it is UTF-8.
//! Two lists that mean the same bytes therefore have the same canonical JSON, and
//! [`patch_digest`] (its SHA-256) is stable across machines and crate builds. An empty list is
//! `[]`.
//!
//! # What apply_patch does
//!
//! 1. checks the [`Stamp`], hashes the input (the parent hash), decompresses gzip and validates
//!    every section but the function bodies with the IC's feature set (malformed input is
//!    refused before anything is built on it);
//! 2. applies the operations in order, each on the result of the previous one; the first
//!    failure aborts the whole patch and nothing is emitted. `add_query_method` and
//!    `guard_controller_only` need walrus ([`PatchOp::needs_walrus`]): when one is in the list,
//!    walrus applies every operation but the tool ones. Otherwise the patch works on sections
//!    (`raw`, the fast path): metadata is a custom section, `remove_method` rewrites the export
//!    section, and every function body an operation does not touch is copied as bytes;
//! 3. applies `add_tool` / `remove_tool` to the registry, after the other operations, and
//!    regenerates the tools' code from it (the private `tools` module),
//!    on sections;
//! 4. writes the stamp sections (see [`crate::metadata`]) and emits uncompressed Wasm.
//!
//! On the fast path the output keeps every section as it was. After walrus, DWARF `.debug_*`
//! sections are gone (walrus does not carry them over), the `name` section is regenerated and
//! walrus is named in `producers`. The output is not checked against the IC's rules: that is
//! [`validate`](fn@crate::validate) (or [`validate_patched`](fn@crate::validate_patched)), step 3.
//!
//! # Candid metadata
//!
//! When the module has a `candid:service` section (canister-build writes the checked-in `.did`
//! there), `add_query_method` and `remove_method` update it: the method is declared or dropped
//! ([`crate::interface`]; the reply of an added query must then be a Candid message, whose types
//! become the method's return types). The text is re-printed by candid's printer, so its
//! comments go. A `set_metadata` op for `candid:service` later in the list replaces the text.
//!
//! # Injected code
//!
//! Methods added or guarded by a patch need a few bytes of linear memory (a caller principal, a
//! reply, a trap message). Writing them anywhere in the existing heap could clobber Rust's
//! allocator, so the first call of such a method takes one fresh page with `memory.grow` and
//! remembers its address in a new mutable global, initially -1 (see `runtime`). Bytes get there
//! by `memory.init` from passive data segments. If `memory.grow` fails the call traps with a
//! message saying so. Because the IC discards all changes of a trapped message, and the heap
//! on upgrade, the page is taken at most once per module instance.

mod guard;
mod query;
mod runtime;
pub(crate) mod tools;

use crate::exports::split_method;
use crate::metadata::{self, Stamp, Visibility};
use crate::profile::step;
use crate::raw::RawModule;
use crate::scan::{self, Depth};
use crate::{Limits, PatchError};
use serde::{Deserialize, Serialize};
use walrus::{ExportItem, Module, RawCustomSection};

/// One patch operation. See the module docs for the JSON form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum PatchOp {
    /// Sets custom section `icp:public NAME` or `icp:private NAME`, replacing any section with
    /// the same NAME under either visibility (the IC allows a NAME once). The stamp NAMEs
    /// ([`metadata::STAMP_NAMES`]) are refused: the [`Stamp`] writes those.
    SetMetadata {
        /// Who may read the section.
        visibility: Visibility,
        /// The NAME, for example `candid:service`. Not empty.
        name: String,
        /// The section's content. JSON: a string (UTF-8) or `{"hex": "..."}`.
        #[serde(with = "metadata::content_serde")]
        content: Vec<u8>,
    },
    /// Adds the export `canister_query NAME` replying the fixed bytes `reply` (usually a Candid
    /// message) through `ic0.msg_reply_data_append` and `ic0.msg_reply`. Refused if NAME is
    /// already a method of any kind. At most 2 MiB, the IC's response limit.
    AddQueryMethod {
        /// The method NAME. Not empty.
        name: String,
        /// The reply. JSON: `reply_hex`, a hex string.
        #[serde(rename = "reply_hex", with = "crate::hex_serde::bytes")]
        reply: Vec<u8>,
    },
    /// Removes the export `canister_update NAME`, `canister_query NAME` or
    /// `canister_composite_query NAME` (all of them, should there be several). The function
    /// stays in the module: other code may call it.
    RemoveMethod {
        /// The method NAME.
        name: String,
    },
    /// Makes method NAME trap with "caller is not a controller of this canister" unless
    /// `ic0.is_controller(caller)` holds. The check is a call to an injected function placed
    /// first in the method's body; if the body's function is also called internally, referenced
    /// from a table, exported under another name or imported, a new function (check, then call
    /// the original) is exported in its place instead, so other paths stay unguarded.
    GuardControllerOnly {
        /// The method NAME.
        name: String,
    },
    /// Adds a synthesized tool: `spec` is a tool spec ([`tool_spec`]), type-checked and
    /// compiled into the module with the registry updated (see [`crate::tool_registry`]). Refused if
    /// the spec does not check, if its name is a built-in tool, a method of the module or a
    /// tool already there, or if the module carries no tool host ABI.
    AddTool {
        /// The tool spec, as JSON.
        spec: serde_json::Value,
    },
    /// Removes synthesized tool NAME (its code and its registry entry). Its facts stay in the
    /// agent's stable memory.
    RemoveTool {
        /// The tool's name.
        name: String,
    },
}

impl PatchOp {
    /// The operation's JSON tag, as error messages name it.
    pub fn kind(&self) -> &'static str {
        match self {
            PatchOp::SetMetadata { .. } => "set_metadata",
            PatchOp::AddQueryMethod { .. } => "add_query_method",
            PatchOp::RemoveMethod { .. } => "remove_method",
            PatchOp::GuardControllerOnly { .. } => "guard_controller_only",
            PatchOp::AddTool { .. } => "add_tool",
            PatchOp::RemoveTool { .. } => "remove_tool",
        }
    }

    /// Whether the operation needs walrus (it adds imports, globals, data or code that is
    /// not a synthesized tool); the others are applied on sections.
    pub fn needs_walrus(&self) -> bool {
        matches!(
            self,
            PatchOp::AddQueryMethod { .. } | PatchOp::GuardControllerOnly { .. }
        )
    }
}

/// The result of [`apply_patch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchedModule {
    /// The patched module, uncompressed.
    pub wasm: Vec<u8>,
    /// SHA-256 of `wasm`.
    pub module_hash: [u8; 32],
    /// SHA-256 of the input bytes, as stamped in `agent:parent_hash`.
    pub parent_hash: [u8; 32],
    /// [`patch_digest`] of the operations, as stamped in `agent:patch_digest`.
    pub patch_digest: [u8; 32],
    /// Whether walrus rebuilt the module (an operation needed it); otherwise every function
    /// body the operations did not touch was copied as bytes.
    pub rebuilt: bool,
}

/// The canonical JSON of a list of operations (see the module docs).
pub fn canonical_ops_json(ops: &[PatchOp]) -> String {
    // PatchOp has no maps and no floats: serde_json cannot fail on it.
    serde_json::to_string(ops).expect("PatchOp always serialises to JSON")
}

/// SHA-256 of [`canonical_ops_json`].
pub fn patch_digest(ops: &[PatchOp]) -> [u8; 32] {
    crate::sha256(canonical_ops_json(ops).as_bytes())
}

/// A module to patch: its bytes as stored, their SHA-256 and the Wasm they decode to.
/// Hashing and gunzip are most of what a section-level patch costs, so a caller that patches
/// and then validates ([`crate::validate_patched`]) does them once, here.
#[derive(Debug, Clone)]
pub struct Parent<'a> {
    hash: [u8; 32],
    wasm: std::borrow::Cow<'a, [u8]>,
}

impl<'a> Parent<'a> {
    /// Hashes and decodes `stored` (raw or gzip).
    pub fn new(stored: &'a [u8]) -> Result<Self, PatchError> {
        let hash = crate::sha256(stored);
        step("patch: hash input");
        Self::with_hash(stored, hash)
    }

    /// Decodes `stored`, whose SHA-256 the caller knows to be `hash` (the agent keeps modules
    /// under their verified hashes). The hash becomes the stamp's parent hash.
    pub fn with_hash(stored: &'a [u8], hash: [u8; 32]) -> Result<Self, PatchError> {
        let (wasm, _) = scan::decode(stored, &Limits::IC)?;
        step("patch: gunzip");
        Ok(Self { hash, wasm })
    }

    /// SHA-256 of the bytes as stored.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The decoded module.
    pub fn wasm(&self) -> &[u8] {
        &self.wasm
    }
}

/// Applies `ops` to `wasm` (raw or gzip) and stamps the result with `stamp`.
pub fn apply_patch(
    wasm: &[u8],
    ops: &[PatchOp],
    stamp: &Stamp,
) -> Result<PatchedModule, PatchError> {
    check_stamp(stamp)?;
    apply_patch_to(&Parent::new(wasm)?, ops, stamp)
}

/// [`apply_patch`] of a [`Parent`] already hashed and decoded.
pub fn apply_patch_to(
    parent: &Parent<'_>,
    ops: &[PatchOp],
    stamp: &Stamp,
) -> Result<PatchedModule, PatchError> {
    check_stamp(stamp)?;
    let parent_hash = parent.hash;
    let patch_digest = patch_digest(ops);
    let bytes = parent.wasm();
    // Patching needs a valid module, not one within the IC's limits: a patch may be what
    // brings it back within them.
    let unlimited = Limits {
        max_code_section_bytes: u64::MAX,
        max_functions: u64::MAX,
        max_globals: u64::MAX,
        ..Limits::IC
    };
    // walrus validates every function body while parsing, and the section path copies the
    // bodies of a module that the IC already runs, so a full scan first would double the cost
    // (it dominates the in-canister instruction count). Validate everything but the bodies
    // here; step 3 validates the result.
    scan::scan(bytes, Depth::Sections, &unlimited)?;
    step("patch: scan sections");

    let rebuilt = ops.iter().any(PatchOp::needs_walrus);
    let emitted;
    let mut module = if rebuilt {
        emitted = walrus_phase(bytes, ops, &unlimited)?;
        RawModule::parse(&emitted)?
    } else {
        let mut module = RawModule::parse(bytes)?;
        for (op_index, op) in ops.iter().enumerate() {
            match op {
                PatchOp::SetMetadata {
                    visibility,
                    name,
                    content,
                } => {
                    check_metadata_name(op_index, name)?;
                    put_raw(&mut module, *visibility, name, content);
                }
                PatchOp::RemoveMethod { name } => {
                    remove_method_raw(&mut module, op_index, name)?;
                    edit_interface_raw(&mut module, op_index, op.kind(), |text| {
                        crate::interface::remove_method(text, name)
                    })?;
                }
                _ => {}
            }
        }
        module
    };
    step(if rebuilt {
        "patch: walrus"
    } else {
        "patch: sections"
    });
    tools::apply(&mut module, ops, rebuilt)?;
    step("patch: tools");
    write_stamp(&mut module, stamp, &parent_hash, &patch_digest);
    let wasm = module.emit();
    step("patch: emit");
    let module_hash = crate::sha256(&wasm);
    step("patch: hash output");
    Ok(PatchedModule {
        module_hash,
        wasm,
        parent_hash,
        patch_digest,
        rebuilt,
    })
}

/// The operations that need walrus, and the others but tool operations, applied in order by
/// walrus on `bytes`: the emitted module, unstamped.
fn walrus_phase(bytes: &[u8], ops: &[PatchOp], unlimited: &Limits) -> Result<Vec<u8>, PatchError> {
    let mut config = walrus::ModuleConfig::new();
    config.legacy_exceptions(false);
    let mut module = match config.parse(bytes) {
        Ok(module) => module,
        Err(e) => {
            scan::scan(bytes, Depth::Full, unlimited)?;
            return Err(PatchError::Unreadable {
                message: format!("{e:#}"),
            });
        }
    };
    let mut runtime = runtime::Runtime::default();
    for (op_index, op) in ops.iter().enumerate() {
        match op {
            PatchOp::SetMetadata {
                visibility,
                name,
                content,
            } => set_metadata(&mut module, op_index, *visibility, name, content)?,
            PatchOp::AddQueryMethod { name, reply } => {
                query::add_query_method(&mut module, &mut runtime, op_index, name, reply)?;
                edit_interface(&mut module, op_index, op.kind(), |text| {
                    crate::interface::add_query(text, name, reply)
                })?;
            }
            PatchOp::RemoveMethod { name } => {
                remove_method(&mut module, op_index, name)?;
                edit_interface(&mut module, op_index, op.kind(), |text| {
                    crate::interface::remove_method(text, name)
                })?;
            }
            PatchOp::GuardControllerOnly { name } => {
                guard::guard_controller_only(&mut module, &mut runtime, op_index, name)?
            }
            PatchOp::AddTool { .. } | PatchOp::RemoveTool { .. } => {}
        }
    }
    Ok(module.emit_wasm())
}

fn check_stamp(stamp: &Stamp) -> Result<(), PatchError> {
    if stamp.version.is_empty() {
        return Err(PatchError::InvalidStamp {
            reason: "the version must not be empty".to_string(),
        });
    }
    if let Some((min, max)) = stamp.schema_range
        && min > max
    {
        return Err(PatchError::InvalidStamp {
            reason: format!("schema range {min}..={max} is empty: MIN must not exceed MAX"),
        });
    }
    Ok(())
}

/// Replaces metadata NAME (either visibility) with one section.
fn put_section(module: &mut Module, visibility: Visibility, name: &str, content: Vec<u8>) {
    remove_sections(module, name);
    module.customs.add(RawCustomSection {
        name: metadata::section_name(visibility, name),
        data: content,
    });
}

fn remove_sections(module: &mut Module, name: &str) {
    for vis in [Visibility::Public, Visibility::Private] {
        let section = metadata::section_name(vis, name);
        while module.customs.remove_raw(&section).is_some() {}
    }
}

/// [`put_section`] on sections.
fn put_raw(module: &mut RawModule, visibility: Visibility, name: &str, content: &[u8]) {
    module.remove_custom(&metadata::section_name(visibility.other(), name));
    module.set_custom(&metadata::section_name(visibility, name), content);
}

fn write_stamp(module: &mut RawModule, stamp: &Stamp, parent: &[u8; 32], digest: &[u8; 32]) {
    let public = Visibility::Public;
    put_raw(module, public, metadata::VERSION, stamp.version.as_bytes());
    put_raw(
        module,
        public,
        metadata::PARENT_HASH,
        hex::encode(parent).as_bytes(),
    );
    put_raw(
        module,
        public,
        metadata::PATCH_DIGEST,
        hex::encode(digest).as_bytes(),
    );
    match stamp.schema_range {
        Some(range) => put_raw(
            module,
            public,
            metadata::SCHEMA_RANGE,
            metadata::format_schema_range(range).as_bytes(),
        ),
        None => {
            for vis in [Visibility::Public, Visibility::Private] {
                module.remove_custom(&metadata::section_name(vis, metadata::SCHEMA_RANGE));
            }
        }
    }
}

/// A NAME `set_metadata` may write: not empty, not the stamp's, not the tool registry's.
fn check_metadata_name(op_index: usize, name: &str) -> Result<(), PatchError> {
    if name.is_empty() {
        return Err(PatchError::EmptyMetadataName { op_index });
    }
    if metadata::is_stamp_name(name) || name == tool_spec::registry::METADATA_NAME {
        return Err(PatchError::ReservedMetadata {
            op_index,
            name: name.to_string(),
        });
    }
    Ok(())
}

fn remove_method_raw(
    module: &mut RawModule,
    op_index: usize,
    name: &str,
) -> Result<(), PatchError> {
    let exports = module.exports()?;
    let is_method = |e: &crate::raw::Export| {
        matches!(
            e.kind,
            wasmparser::ExternalKind::Func | wasmparser::ExternalKind::FuncExact
        ) && split_method(&e.name).is_some_and(|(_, method)| method == name)
    };
    if !exports.iter().any(is_method) {
        let mut exported: Vec<String> = exports
            .iter()
            .filter(|e| split_method(&e.name).is_some())
            .map(|e| e.name.clone())
            .collect();
        exported.sort();
        return Err(PatchError::MethodNotFound {
            op_index,
            op: "remove_method",
            name: name.to_string(),
            exported,
        });
    }
    let kept: Vec<_> = exports.into_iter().filter(|e| !is_method(e)).collect();
    module.set_exports(&kept)
}

fn set_metadata(
    module: &mut Module,
    op_index: usize,
    visibility: Visibility,
    name: &str,
    content: &[u8],
) -> Result<(), PatchError> {
    check_metadata_name(op_index, name)?;
    put_section(module, visibility, name, content.to_vec());
    Ok(())
}

/// Rewrites the module's `candid:service` section (under its visibility) with `edit`, if it
/// has one.
fn edit_interface(
    module: &mut Module,
    op_index: usize,
    op: &'static str,
    edit: impl FnOnce(&str) -> Result<String, crate::InterfaceError>,
) -> Result<(), PatchError> {
    let name = crate::interface::CANDID_SERVICE;
    let Some((visibility, text)) = [Visibility::Public, Visibility::Private]
        .into_iter()
        .find_map(|vis| {
            let section = metadata::section_name(vis, name);
            module
                .customs
                .iter()
                .find_map(|(_, c)| (c.name() == section).then(|| c.data(&Default::default())))
                .map(|data| (vis, String::from_utf8_lossy(&data).into_owned()))
        })
    else {
        return Ok(());
    };
    let text = edit(&text).map_err(|source| PatchError::Interface {
        op_index,
        op,
        source,
    })?;
    put_section(module, visibility, name, text.into_bytes());
    Ok(())
}

/// [`edit_interface`] on the section-level path.
fn edit_interface_raw(
    module: &mut RawModule,
    op_index: usize,
    op: &'static str,
    edit: impl FnOnce(&str) -> Result<String, crate::InterfaceError>,
) -> Result<(), PatchError> {
    let name = crate::interface::CANDID_SERVICE;
    let Some((visibility, text)) = [Visibility::Public, Visibility::Private]
        .into_iter()
        .find_map(|vis| {
            module
                .custom(&metadata::section_name(vis, name))
                .map(|data| (vis, String::from_utf8_lossy(data).into_owned()))
        })
    else {
        return Ok(());
    };
    let text = edit(&text).map_err(|source| PatchError::Interface {
        op_index,
        op,
        source,
    })?;
    put_raw(module, visibility, name, text.as_bytes());
    Ok(())
}

fn remove_method(module: &mut Module, op_index: usize, name: &str) -> Result<(), PatchError> {
    let found = method_exports(module, name);
    if found.is_empty() {
        return Err(method_not_found(module, op_index, "remove_method", name));
    }
    for (id, _) in found {
        module.exports.delete(id);
    }
    Ok(())
}

/// The function exports of method NAME: `(export, function)`.
fn method_exports(module: &Module, name: &str) -> Vec<(walrus::ExportId, walrus::FunctionId)> {
    module
        .exports
        .iter()
        .filter(|e| split_method(&e.name).is_some_and(|(_, method)| method == name))
        .filter_map(|e| match e.item {
            ExportItem::Function(func) => Some((e.id(), func)),
            _ => None,
        })
        .collect()
}

fn method_not_found(module: &Module, op_index: usize, op: &'static str, name: &str) -> PatchError {
    let mut exported: Vec<String> = module
        .exports
        .iter()
        .filter(|e| split_method(&e.name).is_some())
        .map(|e| e.name.clone())
        .collect();
    exported.sort();
    PatchError::MethodNotFound {
        op_index,
        op,
        name: name.to_string(),
        exported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_forms() {
        let ops: Vec<PatchOp> = serde_json::from_str(
            r#"[
                {"op": "set_metadata", "visibility": "public", "name": "a", "content": "hi"},
                {"op": "set_metadata", "visibility": "private", "name": "b", "content": {"hex": "00FF"}},
                {"op": "add_query_method", "name": "q", "reply_hex": "4449444C"},
                {"op": "remove_method", "name": "r"},
                {"op": "guard_controller_only", "name": "g"}
            ]"#,
        )
        .unwrap();
        assert_eq!(
            canonical_ops_json(&ops),
            r#"[{"op":"set_metadata","visibility":"public","name":"a","content":"hi"},{"op":"set_metadata","visibility":"private","name":"b","content":{"hex":"00ff"}},{"op":"add_query_method","name":"q","reply_hex":"4449444c"},{"op":"remove_method","name":"r"},{"op":"guard_controller_only","name":"g"}]"#
        );
        let round: Vec<PatchOp> = serde_json::from_str(&canonical_ops_json(&ops)).unwrap();
        assert_eq!(round, ops);
    }

    #[test]
    fn same_bytes_same_digest() {
        let text: Vec<PatchOp> = serde_json::from_str(
            r#"[{"op": "set_metadata", "visibility": "public", "name": "a", "content": "hi"}]"#,
        )
        .unwrap();
        let hex: Vec<PatchOp> = serde_json::from_str(
            r#"[{"op": "set_metadata", "visibility": "public", "name": "a", "content": {"hex": "6869"}}]"#,
        )
        .unwrap();
        assert_eq!(patch_digest(&text), patch_digest(&hex));
        assert_eq!(
            hex::encode(patch_digest(&[])),
            // sha256("[]")
            "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
        );
    }

    #[test]
    fn bad_json_is_refused() {
        for bad in [
            r#"{"op": "remove_method"}"#,
            r#"{"op": "remove_method", "name": "x", "extra": 1}"#,
            r#"{"op": "add_query_method", "name": "x", "reply_hex": "zz"}"#,
            r#"{"op": "set_metadata", "visibility": "secret", "name": "x", "content": ""}"#,
            r#"{"op": "set_metadata", "visibility": "public", "name": "x", "content": 5}"#,
            r#"{"op": "explode"}"#,
        ] {
            assert!(serde_json::from_str::<PatchOp>(bad).is_err(), "{bad}");
        }
    }
}
