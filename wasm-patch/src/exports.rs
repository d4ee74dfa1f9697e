//! How a canister module's exports name its entry points: the three kinds of method
//! (`canister_update NAME`, `canister_query NAME`, `canister_composite_query NAME`) and the
//! system exports the IC calls. Scanning, validation, patching and fingerprints all read it.

/// Export-name prefixes of the three kinds of method, with their trailing space.
pub const METHOD_PREFIXES: [&str; 3] = [
    "canister_update ",
    "canister_query ",
    "canister_composite_query ",
];

/// The `canister_*` exports the IC calls other than methods.
pub const SYSTEM_EXPORTS: [&str; 7] = [
    "canister_init",
    "canister_pre_upgrade",
    "canister_post_upgrade",
    "canister_inspect_message",
    "canister_heartbeat",
    "canister_global_timer",
    "canister_on_low_wasm_memory",
];

/// Splits `canister_query NAME` (and the update and composite query forms) into prefix and
/// NAME. `None` for any other export name.
pub fn split_method(export: &str) -> Option<(&'static str, &str)> {
    METHOD_PREFIXES
        .iter()
        .find_map(|prefix| export.strip_prefix(prefix).map(|name| (*prefix, name)))
}
