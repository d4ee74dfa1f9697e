//! The IC's limits on a canister module, as one value.
//!
//! [`Limits::IC`] holds the numbers the replica enforces at `install_code` (shared/IC-SEMANTICS.md,
//! "Limits"). [`validate`](fn@crate::validate) checks every one of them so that a candidate is refused before
//! it reaches the IC. A policy may lower a limit (tests and fixtures do, to exercise a rule with a
//! small module); raising one only postpones the refusal to `install_code`.
//!
//! | limit | value | counted as |
//! | --- | --- | --- |
//! | module size | 100 MiB | uncompressed bytes (gzip input is decompressed first) |
//! | code section | 10 MiB | bytes of the code section's contents |
//! | functions | 50,000 | functions defined in the module (imports not counted) |
//! | globals | 1,000 | globals defined in the module |
//! | exported methods | 1,000 | exports `canister_update X`, `canister_query X`, `canister_composite_query X` |
//! | method names | 20,000 bytes | sum of the `X` parts of those exports |
//! | `icp:` sections | 16 | custom sections whose name starts with `icp:` |
//! | `icp:` bytes | 1 MiB | sum of name + content of those sections |

use serde::{Deserialize, Serialize};

const MIB: u64 = 1024 * 1024;

/// Module limits. `Limits::default()` is [`Limits::IC`].
///
/// In JSON every field is optional and defaults to the IC's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Maximum uncompressed module size in bytes.
    pub max_module_bytes: u64,
    /// Maximum size of the code section's contents in bytes.
    pub max_code_section_bytes: u64,
    /// Maximum number of functions defined in the module.
    pub max_functions: u64,
    /// Maximum number of globals defined in the module.
    pub max_globals: u64,
    /// Maximum number of exported methods (update, query and composite query).
    pub max_exported_methods: u64,
    /// Maximum sum of the exported method names' lengths in bytes (without the
    /// `canister_query ` etc. prefix).
    pub max_method_name_bytes: u64,
    /// Maximum number of `icp:` custom sections.
    pub max_icp_sections: u64,
    /// Maximum total size of the `icp:` custom sections (name + content) in bytes.
    pub max_icp_section_bytes: u64,
}

impl Limits {
    /// The limits the IC enforces.
    pub const IC: Limits = Limits {
        max_module_bytes: 100 * MIB,
        max_code_section_bytes: 10 * MIB,
        max_functions: 50_000,
        max_globals: 1_000,
        max_exported_methods: 1_000,
        max_method_name_bytes: 20_000,
        max_icp_sections: 16,
        max_icp_section_bytes: MIB,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::IC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_default_to_the_ic() {
        let limits: Limits = serde_json::from_str(r#"{"max_globals": 3}"#).unwrap();
        assert_eq!(
            limits,
            Limits {
                max_globals: 3,
                ..Limits::IC
            }
        );
        assert!(serde_json::from_str::<Limits>(r#"{"max_globlas": 3}"#).is_err());
    }
}
