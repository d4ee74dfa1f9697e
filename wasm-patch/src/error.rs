//! The two error types: [`ValidationError`] (reading and checking a module) and [`PatchError`]
//! (applying operations).
//!
//! Each variant carries what a person needs to act on it: the byte offset of a parse error, the
//! import, export or section at fault, and for a limit both the limit and the actual number.
//! The `Display` text is meant to be shown as is, by `agentctl` or in a journal's `Rejected`
//! reason, and the validation fixtures pin it.

use std::fmt::Display;

/// Why a module was refused by [`validate`](fn@crate::validate) or could not be read by
/// [`fingerprint`](fn@crate::fingerprint).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The input starts with the gzip magic `1f 8b 08` but does not decompress.
    #[error("gzip-compressed module cannot be decompressed: {message}")]
    Gzip {
        /// The decompressor's message.
        message: String,
    },
    /// The (uncompressed) module is larger than the IC accepts.
    #[error("module is {size} bytes; the IC accepts at most {limit} bytes uncompressed")]
    ModuleTooLarge {
        /// Module size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A gzip module decompresses to more than the limit (decompression stops there).
    #[error(
        "gzip module ({compressed_size} bytes) decompresses to more than {limit} bytes, the IC's \
         limit for an uncompressed module"
    )]
    DecompressedTooLarge {
        /// Size of the gzip input in bytes.
        compressed_size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The bytes are not a valid Wasm module for the IC's feature set (see
    /// [`crate::ic_features`]). For gzip input the offset is into the decompressed bytes.
    #[error("invalid Wasm at byte offset {offset} ({offset:#x}): {message}")]
    Malformed {
        /// Byte offset of the error.
        offset: u64,
        /// wasmparser's description.
        message: String,
    },
    /// An import from a module other than `ic0`.
    #[error(
        "import `{module}.{name}`: a canister may import only from module `ic0`; define the \
         function inside the module instead"
    )]
    ForeignImport {
        /// The import's module name.
        module: String,
        /// The import's field name.
        name: String,
    },
    /// An `ic0` import that the System API does not have.
    #[error(
        "import `ic0.{name}` is not a System API function (the IC provides those listed in \
         wasm_patch::ic0::IC0_FUNCTIONS)"
    )]
    UnknownIc0Import {
        /// The import's field name.
        name: String,
    },
    /// An `ic0` import with the wrong signature.
    #[error("import `ic0.{name}` has signature {found}, but the System API defines {expected}")]
    Ic0SignatureMismatch {
        /// The import's field name.
        name: String,
        /// The System API's signature, like `(i32, i32) -> ()`.
        expected: String,
        /// The module's signature.
        found: String,
    },
    /// An imported memory, table, global or tag.
    #[error(
        "import `{module}.{name}` is a {kind}; a canister imports only `ic0` functions and \
         defines its own memory, tables and globals"
    )]
    NonFunctionImport {
        /// The import's module name.
        module: String,
        /// The import's field name.
        name: String,
        /// `memory`, `table`, `global` or `tag`.
        kind: &'static str,
    },
    /// An export the policy requires is not there.
    #[error(
        "required export `{name}` is missing; the module exports: {}",
        list(exported)
    )]
    MissingExport {
        /// The missing export's name.
        name: String,
        /// Every function export the module has, sorted.
        exported: Vec<String>,
    },
    /// The code section is larger than the IC accepts.
    #[error("code section is {size} bytes; the IC accepts at most {limit}")]
    CodeSectionTooLarge {
        /// Size of the code section's contents in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// More defined functions than the IC accepts.
    #[error("module defines {count} functions; the IC accepts at most {limit}")]
    TooManyFunctions {
        /// Functions defined in the module.
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// More defined globals than the IC accepts.
    #[error("module defines {count} globals; the IC accepts at most {limit}")]
    TooManyGlobals {
        /// Globals defined in the module.
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// More exported methods than the IC accepts.
    #[error(
        "module exports {count} methods (canister_update/canister_query/canister_composite_query); \
         the IC accepts at most {limit}"
    )]
    TooManyExportedMethods {
        /// Exported methods.
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// The exported method names are longer in total than the IC accepts.
    #[error("exported method names add up to {size} bytes; the IC accepts at most {limit}")]
    MethodNamesTooLong {
        /// Sum of the method names' lengths in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// More `icp:` sections than the IC accepts.
    #[error("module has {count} `icp:` custom sections; the IC accepts at most {limit}")]
    TooManyIcpSections {
        /// Number of `icp:` sections.
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// The `icp:` sections are larger in total than the IC accepts.
    #[error(
        "`icp:` custom sections take {size} bytes (names + contents); the IC accepts at most {limit}"
    )]
    IcpSectionsTooLarge {
        /// Sum of names and contents in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A custom section named `icp:...` that is neither `icp:public NAME` nor `icp:private NAME`.
    #[error(
        "custom section `{section}`: a name starting with `icp:` must be `icp:public NAME` or \
         `icp:private NAME`"
    )]
    InvalidIcpSectionName {
        /// The section's name.
        section: String,
    },
    /// The same metadata NAME twice.
    #[error(
        "metadata `{name}` appears twice (`{first}` and `{second}`); the IC allows each NAME once, \
         public or private"
    )]
    DuplicateIcpSection {
        /// The NAME.
        name: String,
        /// The first section's full name.
        first: String,
        /// The second section's full name.
        second: String,
    },
    /// A `canister_*` entry point whose type is not `() -> ()`.
    #[error("export `{export}` has signature {found}; the IC calls entry points as () -> ()")]
    EntryPointSignature {
        /// The export's name.
        export: String,
        /// The function's signature.
        found: String,
    },
    /// A function export that starts with `canister_` but is no IC entry point.
    #[error(
        "export `{export}` uses the reserved `canister_` prefix but is no IC entry point (canister_init, \
         canister_pre_upgrade, canister_post_upgrade, canister_inspect_message, canister_heartbeat, \
         canister_global_timer, canister_on_low_wasm_memory, or `canister_update NAME`, \
         `canister_query NAME`, `canister_composite_query NAME`)"
    )]
    ReservedExport {
        /// The export's name.
        export: String,
    },
    /// The same method name exported as two kinds of method.
    #[error("method `{method}` is exported twice (`{first}` and `{second}`); the IC allows one")]
    MethodExportedTwice {
        /// The method name.
        method: String,
        /// The first export's name.
        first: String,
        /// The second export's name.
        second: String,
    },
    /// A stamp section the policy needs is absent.
    #[error(
        "metadata `{name}` is missing (looked for `icp:public {name}` and `icp:private {name}`); it \
         is needed to {purpose}"
    )]
    MissingMetadata {
        /// The metadata NAME.
        name: &'static str,
        /// What the policy wanted it for.
        purpose: &'static str,
    },
    /// A stamp section whose content does not have the documented format.
    #[error("metadata section `{section}` is malformed: {reason}")]
    MalformedMetadata {
        /// The section's full name.
        section: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The module was not patched from the module the policy expects.
    #[error(
        "module was patched from {}, but the running module is {}; re-patch the running module",
        hex::encode(found),
        hex::encode(expected)
    )]
    ParentMismatch {
        /// The parent hash the policy expects (the running module's hash).
        expected: [u8; 32],
        /// The module's `agent:parent_hash`.
        found: [u8; 32],
    },
    /// The module cannot run on the current stable-memory schema.
    #[error(
        "module supports schema versions {min}..={max}, which does not include the current schema \
         version {current}"
    )]
    SchemaOutOfRange {
        /// The current schema version.
        current: u32,
        /// The module's lowest supported version.
        min: u32,
        /// The module's highest supported version.
        max: u32,
    },
    /// The module's synthesized tools (`icp:public agent:tools` and the code generated from
    /// it) are not what their registry says.
    #[error("synthesized tools: {reason}")]
    ToolCode {
        /// What does not match, naming the tool.
        reason: String,
    },
}

/// Why [`crate::apply_patch`] refused. The input is never modified; nothing is emitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The input is not a Wasm module the IC could run (parse and feature validation only; the
    /// IC's import, export and limit rules are [`validate`](fn@crate::validate)'s job).
    #[error("the module to patch is not valid: {0}")]
    InvalidInput(#[from] ValidationError),
    /// walrus refused a module that wasmparser accepted.
    #[error("walrus cannot read the module: {message}")]
    Unreadable {
        /// walrus's message.
        message: String,
    },
    /// The stamp is unusable.
    #[error("invalid stamp: {reason}")]
    InvalidStamp {
        /// What is wrong with it.
        reason: String,
    },
    /// An operation names a method the module does not export.
    #[error(
        "op {op_index} ({op}): no exported method `{name}`; the module exports: {}",
        list(exported)
    )]
    MethodNotFound {
        /// Index of the operation in the list.
        op_index: usize,
        /// The operation's JSON tag.
        op: &'static str,
        /// The method name asked for.
        name: String,
        /// Every method export the module has, sorted.
        exported: Vec<String>,
    },
    /// `add_query_method` with a name that is already a method.
    #[error(
        "op {op_index} (add_query_method): method `{name}` already exists as export `{export}`; \
         remove it first or pick another name"
    )]
    MethodExists {
        /// Index of the operation in the list.
        op_index: usize,
        /// The method name.
        name: String,
        /// The existing export.
        export: String,
    },
    /// An empty method name.
    #[error("op {op_index} ({op}): the method name must not be empty")]
    EmptyMethodName {
        /// Index of the operation in the list.
        op_index: usize,
        /// The operation's JSON tag.
        op: &'static str,
    },
    /// A fixed reply larger than an IC response may be.
    #[error(
        "op {op_index} (add_query_method): reply is {size} bytes; an IC response carries at most {limit}"
    )]
    ReplyTooLarge {
        /// Index of the operation in the list.
        op_index: usize,
        /// The reply's size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// `set_metadata` on a NAME that only the stamp writes.
    #[error(
        "op {op_index} (set_metadata): `{name}` is written by the stamp of every patch; set it through \
         the Stamp instead"
    )]
    ReservedMetadata {
        /// Index of the operation in the list.
        op_index: usize,
        /// The metadata NAME.
        name: String,
    },
    /// `set_metadata` with an empty NAME.
    #[error("op {op_index} (set_metadata): the metadata name must not be empty")]
    EmptyMetadataName {
        /// Index of the operation in the list.
        op_index: usize,
    },
    /// `guard_controller_only` on a method whose function takes or returns values.
    #[error(
        "op {op_index} (guard_controller_only): export `{export}` has signature {found}; only () -> () \
         methods can be guarded"
    )]
    MethodSignature {
        /// Index of the operation in the list.
        op_index: usize,
        /// The export's name.
        export: String,
        /// The function's signature.
        found: String,
    },
    /// The module's `candid:service` could not follow an operation.
    #[error("op {op_index} ({op}): {source}")]
    Interface {
        /// Index of the operation in the list.
        op_index: usize,
        /// The operation's JSON tag.
        op: &'static str,
        /// What went wrong.
        source: InterfaceError,
    },
    /// The module already imports an `ic0` function the patch needs, but with the wrong type.
    #[error(
        "import `ic0.{name}` is {found}, but the System API defines {expected}; fix the import \
         before patching"
    )]
    Ic0ImportMismatch {
        /// The import's field name.
        name: String,
        /// The System API's signature.
        expected: String,
        /// What the module imports.
        found: String,
    },
    /// The module lacks the tool host ABI (only agent builds carry it).
    #[error(
        "the module does not export `{export}`: only an agent build carries the tool host ABI \
         ({prefix}*), so synthesized tools live in agent modules alone",
        prefix = tool_spec::abi::PREFIX
    )]
    NoToolAbi {
        /// The first ABI export that is missing.
        export: String,
    },
    /// An ABI export with the wrong type.
    #[error("tool host ABI export `{export}` has signature {found}; ABI v1 defines {expected}")]
    ToolAbiSignature {
        /// The export.
        export: String,
        /// ABI v1's signature.
        expected: String,
        /// The module's.
        found: String,
    },
    /// An `add_tool` spec that does not check.
    #[error("op {op_index} (add_tool): the spec does not check: {error}")]
    ToolSpec {
        /// Index of the operation in the list.
        op_index: usize,
        /// What is wrong, with its JSON path.
        error: tool_spec::SpecError,
    },
    /// A registry edit that is refused, or a registry in the module that does not read.
    #[error("{}{error}", op_index.map_or_else(|| "the module's tool registry: ".to_string(), |i| format!("op {i}: ")))]
    ToolRegistry {
        /// Index of the operation in the list (`None`: the module's own registry).
        op_index: Option<usize>,
        /// Why.
        error: tool_spec::registry::RegistryError,
    },
}

/// Why a module's Candid interface (`candid:service`) cannot be edited or is not compatible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterfaceError {
    /// The service text does not parse or type-check.
    #[error("the candid:service metadata is not a valid Candid service: {0}")]
    Parse(String),
    /// The text declares types but no service.
    #[error("the candid:service metadata declares no service")]
    NoService,
    /// An added query's reply is not a Candid message, so its type cannot be declared.
    #[error(
        "the reply of `{method}` is not a Candid message ({reason}): the module declares a Candid \
         interface, so the method's reply type must be readable from its reply"
    )]
    Reply {
        /// The method.
        method: String,
        /// candid's message.
        reason: String,
    },
    /// The new interface would break clients of the old one.
    #[error(
        "the candidate's Candid interface is not a subtype of the running one, so clients of the \
         running interface would break:\n{0}"
    )]
    NotSubtype(String),
}

/// `a, b, c`, or `(nothing)` for an empty list.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(nothing)".to_string()
    } else {
        items.join(", ")
    }
}

/// Formats a function type the way the messages show it: `(i32, i64) -> i32`, `() -> ()`.
pub(crate) fn signature<P: Display, R: Display>(
    params: impl IntoIterator<Item = P>,
    results: impl IntoIterator<Item = R>,
) -> String {
    let join = |items: Vec<String>| items.join(", ");
    let params = join(params.into_iter().map(|p| p.to_string()).collect());
    let results: Vec<String> = results.into_iter().map(|r| r.to_string()).collect();
    match results.len() {
        1 => format!("({params}) -> {}", results[0]),
        _ => format!("({params}) -> ({})", join(results)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_read_like_wat() {
        assert_eq!(
            super::signature(["i32", "i32"], ["i32"]),
            "(i32, i32) -> i32"
        );
        assert_eq!(
            super::signature(Vec::<&str>::new(), Vec::<&str>::new()),
            "() -> ()"
        );
        assert_eq!(
            super::signature(["i64"], ["i32", "i32"]),
            "(i64) -> (i32, i32)"
        );
    }
}
