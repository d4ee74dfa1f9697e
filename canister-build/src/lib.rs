//! Builds the workspace's canister crates to `wasm32-unknown-unknown` and hands out their bytes.
//!
//! Every test, benchmark and the CLI get canister Wasm through [`canister_wasm`], so a fresh clone
//! needs nothing but `cargo test`: the first call in a process builds every entry of
//! [`CANISTERS`] with `cargo build --profile canister --target wasm32-unknown-unknown` into
//! `target/canisters` (a separate target directory, so the nested build never waits on the lock
//! of the outer `cargo test`): one cargo invocation for all plain builds, then one per feature
//! variant (a variant is the same crate built with extra cargo features, e.g. an older schema or
//! an injected fault). Each variant builds in a target directory of its own
//! (`target/canisters/variants/NAME`): a cdylib's output file does not depend on its features, so
//! variants sharing a directory would overwrite, and relink, each other on every run. Later calls
//! in the same process are served from memory; later processes pay only cargo's no-op checks.
//!
//! Each result is written to `target/canisters/wasm/NAME.wasm` and, gzip-compressed, to
//! `NAME.wasm.gz`. A canister with a [`Canister::did`] file carries that file's bytes in the
//! custom section [`CANDID_SERVICE_SECTION`], checked against the IC's install rules (see
//! the private `output` module). The `build-canisters` binary runs the same build for dfx
//! (`dfx.json` at the workspace root names its files).
//!
//! The toolchain and the Wasm target come from `rust-toolchain.toml`, which rustup installs on first
//! use.
//!
//! # Layout
//!
//! - `lib.rs`: [`CANISTERS`] and the public API.
//! - `cargo` (private): the nested `cargo build`.
//! - `output` (private): metadata, validation, gzip and the output files.
//! - [`custom_section`]: sets a custom section by splicing bytes, and reads custom sections.
//! - [`error`](mod@error): [`BuildError`].
//! - [`mutants`]: builds of the trio with one fix of the safety net reverted, on demand only
//!   ([`mutant_trio`]).

mod cargo;
pub mod custom_section;
pub mod error;
pub mod mutants;
mod output;

pub use error::BuildError;
pub use mutants::{MUTANTS, Mutant, MutantTrio, mutant_trio};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One canister Wasm the workspace builds.
#[derive(Debug, Clone, Copy)]
pub struct Canister {
    /// The name callers ask for (and the output file's stem).
    pub name: &'static str,
    /// The cargo package.
    pub package: &'static str,
    /// Extra cargo features of this variant (empty for the plain build).
    pub features: &'static [&'static str],
    /// The candid service file, relative to the workspace root, whose bytes the Wasm carries
    /// as [`CANDID_SERVICE_SECTION`]; `None` for a test canister without one.
    pub did: Option<&'static str>,
}

/// The custom section that holds a canister's candid service: public metadata `candid:service`,
/// as dfx and the IC dashboard read it.
pub const CANDID_SERVICE_SECTION: &str = "icp:public candid:service";

const AGENT_DID: Option<&str> = Some("agent/agent.did");

/// Every canister Wasm of the workspace.
pub const CANISTERS: &[Canister] = &[
    Canister {
        name: "ic-sim-probe",
        package: "ic-sim-probe",
        features: &[],
        did: None,
    },
    // The test canister of ic-sim's port of the pocket-ic crate's test suite.
    Canister {
        name: "ic-sim-pocket-test",
        package: "ic-sim-pocket-test",
        features: &[],
        did: None,
    },
    // The agent at the latest schema, and the builds its upgrade tests need: older schemas (for
    // fixtures and vN -> latest upgrades) and a v2 -> v3 migration that traps half-way.
    Canister {
        name: "agent",
        package: "agent",
        features: &[],
        did: AGENT_DID,
    },
    Canister {
        name: "agent-schema-v1",
        package: "agent",
        features: &["schema-v1"],
        did: AGENT_DID,
    },
    Canister {
        name: "agent-schema-v2",
        package: "agent",
        features: &["schema-v2"],
        did: AGENT_DID,
    },
    Canister {
        name: "agent-migration-trap",
        package: "agent",
        features: &["fault-migration-trap"],
        did: AGENT_DID,
    },
    // The chaos build: bad candidates are made from it by rewriting its mode marker.
    Canister {
        name: "agent-chaos",
        package: "agent",
        features: &["chaos"],
        did: AGENT_DID,
    },
    Canister {
        name: "staging",
        package: "staging",
        features: &[],
        did: Some("staging/staging.did"),
    },
    Canister {
        name: "watchdog",
        package: "watchdog",
        features: &[],
        did: Some("watchdog/watchdog.did"),
    },
    // A test double of the IC's LLM canister (ic-sim only; see llm-standin/README.md).
    Canister {
        name: "llm-standin",
        package: "llm-standin",
        features: &[],
        did: Some("llm-standin/llm-standin.did"),
    },
];

/// The canister called `name`.
pub fn find(name: &str) -> Result<&'static Canister, BuildError> {
    CANISTERS
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| BuildError::UnknownCanister(name.to_string()))
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("canister-build lives one level below the workspace root")
        .to_path_buf()
}

/// Where the canister build puts its artefacts.
pub fn canister_target_dir() -> PathBuf {
    workspace_root().join("target").join("canisters")
}

/// Path of the built Wasm file of a canister (all are built on first use).
pub fn canister_wasm_path(name: &str) -> Result<PathBuf, BuildError> {
    find(name)?;
    build_all()?;
    Ok(wasm_path(name))
}

/// Path of the gzip-compressed Wasm file of a canister (all are built on first use).
pub fn canister_wasm_gz_path(name: &str) -> Result<PathBuf, BuildError> {
    find(name)?;
    build_all()?;
    Ok(gz_path(name))
}

/// Where [`build`] writes the Wasm of canister `name` (nothing is built here).
pub fn wasm_path(name: &str) -> PathBuf {
    canister_target_dir()
        .join("wasm")
        .join(format!("{name}.wasm"))
}

/// Where [`build`] writes the gzip-compressed Wasm of canister `name` (nothing is built here).
pub fn gz_path(name: &str) -> PathBuf {
    canister_target_dir()
        .join("wasm")
        .join(format!("{name}.wasm.gz"))
}

/// The Wasm bytes of a canister, building all canisters once per process.
pub fn canister_wasm(name: &str) -> Result<Vec<u8>, BuildError> {
    static CACHE: OnceLock<std::sync::Mutex<HashMap<String, Vec<u8>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(bytes) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
        return Ok(bytes.clone());
    }
    let path = canister_wasm_path(name)?;
    let bytes = std::fs::read(&path).map_err(|e| BuildError::Unreadable {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.to_string(), bytes.clone());
    Ok(bytes)
}

/// Runs the nested cargo build once per process; every caller sees the same outcome.
fn build_all() -> Result<(), BuildError> {
    static OUTCOME: OnceLock<Result<(), BuildError>> = OnceLock::new();
    OUTCOME
        .get_or_init(|| build(&CANISTERS.iter().collect::<Vec<_>>()))
        .clone()
}

/// Builds `canisters` now and writes their output files, without the per-process memo of
/// [`canister_wasm`] (this is what `build-canisters` runs).
///
/// Plain builds are never built alone: if any canister in the list is one, every plain entry of
/// [`CANISTERS`] is built in the same single cargo invocation that the tests use. Features of
/// shared dependencies are unified across the packages of one invocation, so building, say, the
/// agent alone could give different bytes than the tests' build, and each would then relink what
/// the other had just built.
pub fn build(canisters: &[&Canister]) -> Result<(), BuildError> {
    cargo::ensure_wasm_target();
    if canisters.iter().any(|c| c.features.is_empty()) {
        let plain: Vec<&Canister> = CANISTERS.iter().filter(|c| c.features.is_empty()).collect();
        let dir = canister_target_dir();
        cargo::build(plain.iter().map(|c| c.package), &[], &dir)?;
        for canister in plain {
            output::install(canister, &cargo::built_wasm(&dir, canister.package))?;
        }
    }
    for canister in canisters.iter().filter(|c| !c.features.is_empty()) {
        let dir = canister_target_dir().join("variants").join(canister.name);
        cargo::build(std::iter::once(canister.package), canister.features, &dir)?;
        output::install(canister, &cargo::built_wasm(&dir, canister.package))?;
    }
    Ok(())
}
