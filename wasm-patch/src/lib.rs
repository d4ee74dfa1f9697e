//! Patch, validate and fingerprint canister Wasm for the Internet Computer.
//!
//! This crate is step 2 ("Patch") and the Wasm half of step 3 ("Validate") of the upgrade journal
//! in DESIGN.md. The agent canister links it (wasm32-unknown-unknown) to patch its own stored
//! module; `agentctl` and the simulator link it natively. It never touches a file system, spawns
//! no thread and never panics on bad input: malformed bytes, unknown exports and the like come
//! back as [`PatchError`] or [`ValidationError`], and the caller's bytes are left as they were.
//!
//! ```text
//! running Wasm --apply_patch(ops, stamp)--> candidate --validate(policy)--> report
//!                                                     \--fingerprint------> agentctl inspect
//! ```
//!
//! # Layout
//!
//! - [`ops`]: the [`PatchOp`] operations, [`apply_patch`] and the code it injects (the scratch
//!   page, the controller guard, the fixed-reply query).
//! - [`profile`]: step checkpoints for in-canister cost breakdowns.
//! - `raw` (private): the section-level module of the fast path, and the parent's bodies that
//!   [`validate_patched`] need not validate again.
//! - `ops::tools` (crate-private): synthesized tools in a module (`add_tool`, `remove_tool`,
//!   their check in validation, [`tool_registry`]); the language itself is the [`tool_spec`]
//!   crate.
//! - [`metadata`]: `icp:` section naming, the [`Stamp`] written by every patch and the format of
//!   each stamp section.
//! - [`interface`]: the module's Candid interface (`candid:service`): kept in step with the
//!   methods a patch adds or removes, and the subtype check of a candidate against the running
//!   interface.
//! - [`validate`](mod@validate): [`validate()`] and [`validate_patched`] against a
//!   [`ValidationPolicy`].
//! - [`limits`]: the IC's module limits as one [`Limits`] value.
//! - [`fingerprint`](mod@fingerprint): [`fingerprint()`], the cheap summary `agentctl inspect` prints.
//! - [`ic0`]: the table of every `ic0` System API function with its exact signature.
//! - [`error`]: [`PatchError`] and [`ValidationError`].
//! - `scan` (private): one pass over a module's sections (gzip, size, parse) that validation and
//!   fingerprinting share, with the IC's feature set ([`ic_features`]); `exports` (private): how
//!   export names name methods; `hex_serde` (private): hashes and bytes as hex strings in JSON.
//!
//! # Hashes
//!
//! A module hash is the SHA-256 of the bytes as they are handed over, gzip-compressed or not:
//! the same value the IC reports as `module_hash` after `install_code` with those bytes.
//! [`apply_patch`] always emits uncompressed Wasm.

pub mod error;
mod exports;
pub mod fingerprint;
mod hex_serde;
pub mod ic0;
pub mod interface;
pub mod limits;
pub mod metadata;
pub mod ops;
pub mod profile;
mod raw;
mod scan;
pub mod validate;

pub use error::{InterfaceError, PatchError, ValidationError};
pub use fingerprint::{Fingerprint, fingerprint};
pub use limits::Limits;
pub use metadata::{Stamp, Visibility};
pub use ops::tools::tool_registry;
pub use ops::{
    Parent, PatchOp, PatchedModule, apply_patch, apply_patch_to, canonical_ops_json, patch_digest,
};
pub use tool_spec;
pub use validate::{ValidationPolicy, ValidationReport, ic_features, validate, validate_patched};

/// SHA-256 of `bytes`: the hash used for modules, parents and patch digests alike.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}
