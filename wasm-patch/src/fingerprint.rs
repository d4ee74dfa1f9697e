//! A module's identity at a glance: what `agentctl inspect` prints and the journal records.
//!
//! [`fingerprint`] reads the section structure only (no function-body validation and none of
//! the IC rules), so it also describes a module that [`validate`](fn@crate::validate) refuses, and it is
//! cheap enough to run in a canister on every status call. It still fails on bytes that are
//! not a Wasm module and on stamp sections that do not have the documented format (see
//! [`crate::metadata`]).

use crate::exports::split_method;
use crate::scan::{self, Depth};
use crate::{Limits, ValidationError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Hash, methods and stamp of a module.
/// JSON: hashes as hex strings, absent stamp fields as `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// SHA-256 of the input bytes (the IC's `module_hash` for these bytes).
    #[serde(with = "crate::hex_serde::hash")]
    pub module_hash: [u8; 32],
    /// Uncompressed module size in bytes.
    pub size: u64,
    /// Method exports, sorted.
    pub exported_methods: Vec<String>,
    /// `agent:version`.
    pub version: Option<String>,
    /// `agent:parent_hash`.
    #[serde(with = "crate::hex_serde::opt_hash")]
    pub parent_hash: Option<[u8; 32]>,
    /// `agent:patch_digest`.
    #[serde(with = "crate::hex_serde::opt_hash")]
    pub patch_digest: Option<[u8; 32]>,
    /// `agent:schema_range` as `(min, max)`.
    pub schema_range: Option<(u32, u32)>,
    /// Synthesized tools named by the registry (`icp:public agent:tools`), unverified.
    #[serde(default)]
    pub tools: Vec<String>,
}

/// The `icp:` sections of `wasm` (raw or gzip), by full section name, read from the section
/// structure only (a duplicated section: the first one).
pub(crate) fn icp_sections(
    wasm: &[u8],
) -> Result<std::collections::BTreeMap<String, Vec<u8>>, ValidationError> {
    let limits = Limits::IC;
    let (bytes, _) = scan::decode(wasm, &limits)?;
    let unlimited = Limits {
        max_code_section_bytes: u64::MAX,
        max_functions: u64::MAX,
        max_globals: u64::MAX,
        ..limits
    };
    let info = scan::scan(&bytes, Depth::Structure, &unlimited)?;
    let mut sections = std::collections::BTreeMap::new();
    for (name, content) in info.icp_sections {
        sections.entry(name).or_insert(content);
    }
    Ok(sections)
}

/// Fingerprints `wasm` (raw or gzip).
pub fn fingerprint(wasm: &[u8]) -> Result<Fingerprint, ValidationError> {
    let limits = Limits::IC;
    let (bytes, _) = scan::decode(wasm, &limits)?;
    // Counts and sizes are not this function's business: describe even an oversized module.
    let unlimited = Limits {
        max_code_section_bytes: u64::MAX,
        max_functions: u64::MAX,
        max_globals: u64::MAX,
        ..limits
    };
    let info = scan::scan(&bytes, Depth::Structure, &unlimited)?;
    let mut exported_methods: Vec<String> = info
        .func_exports
        .iter()
        .filter(|e| split_method(&e.name).is_some())
        .map(|e| e.name.clone())
        .collect();
    exported_methods.sort();
    // A duplicated section is validate's to refuse; here the first one describes the module.
    let mut sections = std::collections::BTreeMap::new();
    for (name, content) in info.icp_sections {
        sections.entry(name).or_insert(content);
    }
    let stamp = crate::metadata::read_stamp(&sections)?;
    let tools = match sections.get(tool_spec::registry::SECTION) {
        Some(bytes) => tool_spec::registry::Registry::parse(bytes)
            .map_err(|e| ValidationError::ToolCode {
                reason: e.to_string(),
            })?
            .names()
            .iter()
            .map(|n| n.to_string())
            .collect(),
        None => vec![],
    };
    Ok(Fingerprint {
        module_hash: crate::sha256(wasm),
        size: bytes.len() as u64,
        exported_methods,
        version: stamp.version,
        parent_hash: stamp.parent_hash,
        patch_digest: stamp.patch_digest,
        schema_range: stamp.schema_range,
        tools,
    })
}

impl fmt::Display for Fingerprint {
    /// The multi-line form `agentctl inspect` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hash = |h: &Option<[u8; 32]>| h.map_or_else(|| "-".to_string(), hex::encode);
        writeln!(f, "module_hash   {}", hex::encode(self.module_hash))?;
        writeln!(f, "size          {} bytes", self.size)?;
        writeln!(
            f,
            "version       {}",
            self.version.as_deref().unwrap_or("-")
        )?;
        writeln!(f, "parent_hash   {}", hash(&self.parent_hash))?;
        writeln!(f, "patch_digest  {}", hash(&self.patch_digest))?;
        match self.schema_range {
            Some(range) => writeln!(
                f,
                "schema_range  {}",
                crate::metadata::format_schema_range(range)
            )?,
            None => writeln!(f, "schema_range  -")?,
        }
        write!(f, "methods       {}", self.exported_methods.len())?;
        for method in &self.exported_methods {
            write!(f, "\n  {method}")?;
        }
        write!(f, "\ntools         {}", self.tools.len())?;
        for tool in &self.tools {
            write!(f, "\n  {tool}")?;
        }
        Ok(())
    }
}
