//! The registry of synthesized tools, and the code a module carries for it.
//!
//! A patched agent module carries its registry twice, as the same bytes:
//! - the custom section [`SECTION`] (`icp:public agent:tools`), where tools, operators and
//!   `agentctl inspect` read it without running anything;
//! - the body of the registry hook ([`crate::abi::REGISTRY`]), which pushes those bytes to the
//!   running agent (a canister cannot read its own custom sections).
//!
//! ```json
//! {"version": 1, "tools": [
//!   {"name": "tally_vote", "code_sha256": "<64 hex>", "schema": {"type": "function", ...},
//!    "spec": {"name": "tally_vote", ...}}]}
//! ```
//!
//! Tool `i` is compiled into one function, called by the dispatch hook for `dispatch(i)`.
//! `code_sha256` is the SHA-256 of that function's body compiled against
//! [`AbiIndices::canonical`]; `schema` is [`ToolSpec::schema`]. Everything the module holds for
//! its tools is a function of the registry and of where the module keeps the ABI
//! ([`generate`]), so validation recompiles it and compares bytes: code and description cannot
//! drift apart.

use crate::abi::{Abi, AbiIndices, NO_SUCH_TOOL};
use crate::compile::compile;
use crate::error::SpecError;
use crate::limits::{MAX_REGISTRY_BYTES, MAX_TOOLS};
use crate::spec::{ToolSpec, check};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wasm_encoder::{BlockType, Function, InstructionSink};

/// The metadata NAME of the registry (its section is `icp:public agent:tools`).
pub const METADATA_NAME: &str = "agent:tools";
/// The registry's custom section.
pub const SECTION: &str = "icp:public agent:tools";
/// The registry format's version.
pub const VERSION: u32 = 1;

/// The registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// [`VERSION`].
    pub version: u32,
    /// The tools, in dispatch order.
    pub tools: Vec<Entry>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            version: VERSION,
            tools: vec![],
        }
    }
}

/// One tool of the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The tool's name.
    pub name: String,
    /// SHA-256 of its compiled body under the canonical ABI numbering, hex.
    pub code_sha256: String,
    /// What `tools` lists for it.
    pub schema: Value,
    /// The spec as written.
    pub spec: Value,
}

/// Why a registry is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Not the registry's JSON.
    #[error("the tool registry is not valid JSON of version {VERSION}: {0}")]
    Format(String),
    /// A spec in it does not check.
    #[error("tool `{tool}` in the registry: {error}")]
    Spec {
        /// The entry's name.
        tool: String,
        /// Why.
        error: SpecError,
    },
    /// An entry disagrees with its own spec.
    #[error("tool `{tool}` in the registry: its {what} does not match its spec")]
    Drift {
        /// The entry's name.
        tool: String,
        /// `name`, `schema` or `code hash`.
        what: &'static str,
    },
    /// Two tools of one name.
    #[error("tool `{0}` is already registered (remove_tool it first to replace it)")]
    Duplicate(String),
    /// `remove_tool` of a name that is not there.
    #[error("no synthesized tool `{name}` (registered: {registered})")]
    NotFound {
        /// The name.
        name: String,
        /// The names there are.
        registered: String,
    },
    /// Too many tools.
    #[error("{count} synthesized tools; a module holds at most {limit}")]
    TooMany {
        /// How many.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The registry's JSON is too large.
    #[error("the tool registry would be {size} bytes; at most {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// SHA-256 of `spec`'s body compiled against the canonical ABI numbering.
pub fn code_sha256(spec: &ToolSpec) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(compile(spec, &AbiIndices::canonical())).into()
}

impl Registry {
    /// Parses the registry's bytes (format only; see [`Registry::specs`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, RegistryError> {
        let registry: Registry =
            serde_json::from_slice(bytes).map_err(|e| RegistryError::Format(e.to_string()))?;
        if registry.version != VERSION {
            return Err(RegistryError::Format(format!(
                "version {} (this build reads {VERSION})",
                registry.version
            )));
        }
        Ok(registry)
    }

    /// The registry's bytes (the section's content and what the hook pushes).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Maps in serde_json values are sorted by key: the bytes are canonical.
        serde_json::to_vec(self).expect("a registry always serialises")
    }

    /// The tools' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.tools.iter().map(|t| t.name.as_str()).collect()
    }

    /// Every spec, checked, after checking that each entry agrees with its spec (name, schema,
    /// code hash) and that names are unique.
    pub fn specs(&self) -> Result<Vec<ToolSpec>, RegistryError> {
        let mut out: Vec<ToolSpec> = Vec::with_capacity(self.tools.len());
        for entry in &self.tools {
            let spec = check(&entry.spec, &|_| None).map_err(|error| RegistryError::Spec {
                tool: entry.name.clone(),
                error,
            })?;
            let drift = |what| RegistryError::Drift {
                tool: entry.name.clone(),
                what,
            };
            if spec.name != entry.name {
                return Err(drift("name"));
            }
            if out.iter().any(|s| s.name == spec.name) {
                return Err(RegistryError::Duplicate(spec.name));
            }
            if spec.schema() != entry.schema {
                return Err(drift("schema"));
            }
            if hex::encode(code_sha256(&spec)) != entry.code_sha256 {
                return Err(drift("code hash"));
            }
            out.push(spec);
        }
        Ok(out)
    }

    /// Adds `spec` at the end.
    pub fn add(&mut self, spec: &ToolSpec) -> Result<(), RegistryError> {
        if self.tools.iter().any(|t| t.name == spec.name) {
            return Err(RegistryError::Duplicate(spec.name.clone()));
        }
        if self.tools.len() >= MAX_TOOLS {
            return Err(RegistryError::TooMany {
                count: self.tools.len() + 1,
                limit: MAX_TOOLS,
            });
        }
        self.tools.push(Entry {
            name: spec.name.clone(),
            code_sha256: hex::encode(code_sha256(spec)),
            schema: spec.schema(),
            spec: spec.source.clone(),
        });
        let size = self.to_bytes().len();
        if size > MAX_REGISTRY_BYTES {
            self.tools.pop();
            return Err(RegistryError::TooLarge {
                size,
                limit: MAX_REGISTRY_BYTES,
            });
        }
        Ok(())
    }

    /// Removes tool `name`.
    pub fn remove(&mut self, name: &str) -> Result<(), RegistryError> {
        let Some(i) = self.tools.iter().position(|t| t.name == name) else {
            let names = self.names();
            return Err(RegistryError::NotFound {
                name: name.to_string(),
                registered: if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                },
            });
        };
        self.tools.remove(i);
        Ok(())
    }
}

/// The body of the dispatch hook `(i32) -> i32` calling `tools[i]` for `dispatch(i)`.
pub fn dispatch_body(tools: &[u32]) -> Vec<u8> {
    let mut f = Function::new([]);
    let mut s = f.instructions();
    for (i, func) in tools.iter().enumerate() {
        s.local_get(0)
            .i32_const(i as i32)
            .i32_eq()
            .if_(BlockType::Empty)
            .call(*func)
            .return_()
            .end();
    }
    s.i32_const(NO_SUCH_TOOL).end();
    f.into_raw_body()
}

/// The body of the registry hook `() -> i32`: pushes `bytes` and answers 1 (0 pushes
/// nothing: no registry).
pub fn registry_body(bytes: &[u8], abi: &AbiIndices) -> Vec<u8> {
    let mut code = Vec::new();
    let mut s = InstructionSink::new(&mut code);
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        s.i64_const(i64::from_le_bytes(word))
            .i32_const(chunk.len() as i32)
            .call(abi.of(Abi::BytesPush));
    }
    s.i32_const(i32::from(!bytes.is_empty())).end();
    let mut f = Function::new([]);
    f.raw(code);
    f.into_raw_body()
}

/// Everything a module holds for `registry`, for a module keeping the ABI at `abi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// Tool `i`'s function body (type `() -> i32`).
    pub tools: Vec<Vec<u8>>,
    /// The registry hook's body (what [`registry_body`] makes of the registry's bytes; empty
    /// registry, empty push).
    pub registry_hook: Vec<u8>,
    /// The section's content (`None`: no tools, no section).
    pub section: Option<Vec<u8>>,
}

/// The code and section for `registry` (whose specs are `specs`, as [`Registry::specs`]
/// answers them).
pub fn generate(registry: &Registry, specs: &[ToolSpec], abi: &AbiIndices) -> Generated {
    let section = (!registry.tools.is_empty()).then(|| registry.to_bytes());
    Generated {
        tools: specs.iter().map(|s| compile(s, abi)).collect(),
        registry_hook: registry_body(section.as_deref().unwrap_or_default(), abi),
        section,
    }
}

/// The content of custom section `name` of a raw (not gzipped) module, without validating
/// anything else: what staging needs to know which tools a candidate must have.
pub fn custom_section<'a>(wasm: &'a [u8], name: &str) -> Option<&'a [u8]> {
    fn leb(bytes: &[u8], at: &mut usize) -> Option<usize> {
        let mut out = 0usize;
        for shift in (0..35).step_by(7) {
            let b = *bytes.get(*at)?;
            *at += 1;
            out |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(out);
            }
        }
        None
    }
    if !wasm.starts_with(b"\0asm") {
        return None;
    }
    let mut at = 8;
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let size = leb(wasm, &mut at)?;
        let end = at.checked_add(size).filter(|e| *e <= wasm.len())?;
        if id == 0 {
            let mut p = at;
            let len = leb(wasm, &mut p)?;
            let name_end = p.checked_add(len).filter(|e| *e <= end)?;
            if &wasm[p..name_end] == name.as_bytes() {
                return Some(&wasm[name_end..end]);
            }
        }
        at = end;
    }
    None
}
