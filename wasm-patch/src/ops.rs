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
//!   {"op": "guard_controller_only", "name": "set_config"}
//! ]
//! ```
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
//!    the module with the IC's feature set (malformed input is refused before walrus sees it);
//! 2. applies the operations in order, each on the result of the previous one; the first
//!    failure aborts the whole patch and nothing is emitted;
//! 3. writes the stamp sections (see [`crate::metadata`]) and emits uncompressed Wasm.
//!
//! The emitted module keeps every other custom section except DWARF `.debug_*` sections (walrus
//! does not carry them over); walrus regenerates the `name` section and adds itself to
//! `producers`. It is not checked against the IC's rules: that is [`validate`](fn@crate::validate), step 3.
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

use crate::metadata::{self, Stamp, Visibility};
use crate::scan::{self, Depth};
use crate::validate::split_method;
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
}

impl PatchOp {
    /// The operation's JSON tag, as error messages name it.
    pub fn kind(&self) -> &'static str {
        match self {
            PatchOp::SetMetadata { .. } => "set_metadata",
            PatchOp::AddQueryMethod { .. } => "add_query_method",
            PatchOp::RemoveMethod { .. } => "remove_method",
            PatchOp::GuardControllerOnly { .. } => "guard_controller_only",
        }
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

/// Applies `ops` to `wasm` (raw or gzip) and stamps the result with `stamp`.
pub fn apply_patch(
    wasm: &[u8],
    ops: &[PatchOp],
    stamp: &Stamp,
) -> Result<PatchedModule, PatchError> {
    check_stamp(stamp)?;
    let parent_hash = crate::sha256(wasm);
    let patch_digest = patch_digest(ops);

    let (bytes, _) = scan::decode(wasm, &Limits::IC)?;
    // Patching needs a valid module, not one within the IC's limits: a patch may be what
    // brings it back within them.
    let unlimited = Limits {
        max_code_section_bytes: u64::MAX,
        max_functions: u64::MAX,
        max_globals: u64::MAX,
        ..Limits::IC
    };
    // walrus validates every function body while parsing, so a full scan first would double
    // the cost (it dominates the in-canister instruction count). Validate everything but the
    // bodies here, and pay for the full scan only when walrus refuses: it says what and where.
    scan::scan(&bytes, Depth::Sections, &unlimited)?;

    let mut config = walrus::ModuleConfig::new();
    config.legacy_exceptions(false);
    let mut module = match config.parse(&bytes) {
        Ok(module) => module,
        Err(e) => {
            scan::scan(&bytes, Depth::Full, &unlimited)?;
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
        }
    }

    write_stamp(&mut module, stamp, &parent_hash, &patch_digest);
    let wasm = module.emit_wasm();
    Ok(PatchedModule {
        module_hash: crate::sha256(&wasm),
        wasm,
        parent_hash,
        patch_digest,
    })
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

fn write_stamp(module: &mut Module, stamp: &Stamp, parent: &[u8; 32], digest: &[u8; 32]) {
    let public = Visibility::Public;
    put_section(
        module,
        public,
        metadata::VERSION,
        stamp.version.clone().into_bytes(),
    );
    put_section(
        module,
        public,
        metadata::PARENT_HASH,
        hex::encode(parent).into_bytes(),
    );
    put_section(
        module,
        public,
        metadata::PATCH_DIGEST,
        hex::encode(digest).into_bytes(),
    );
    match stamp.schema_range {
        Some(range) => put_section(
            module,
            public,
            metadata::SCHEMA_RANGE,
            metadata::format_schema_range(range).into_bytes(),
        ),
        None => remove_sections(module, metadata::SCHEMA_RANGE),
    }
}

fn set_metadata(
    module: &mut Module,
    op_index: usize,
    visibility: Visibility,
    name: &str,
    content: &[u8],
) -> Result<(), PatchError> {
    if name.is_empty() {
        return Err(PatchError::EmptyMetadataName { op_index });
    }
    if metadata::is_stamp_name(name) {
        return Err(PatchError::ReservedMetadata {
            op_index,
            name: name.to_string(),
        });
    }
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
