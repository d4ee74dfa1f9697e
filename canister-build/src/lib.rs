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
//! variants sharing a directory would overwrite, and relink, each other on every run. Each result
//! is copied to `target/canisters/wasm/NAME.wasm`. Later calls in
//! the same process are served from memory; later processes pay only cargo's no-op checks.
//!
//! The toolchain and the Wasm target come from `rust-toolchain.toml`, which rustup installs on first
//! use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
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
}

/// Every canister Wasm of the workspace.
pub const CANISTERS: &[Canister] = &[
    Canister {
        name: "ic-sim-probe",
        package: "ic-sim-probe",
        features: &[],
    },
    // The agent at the latest schema, and the builds its upgrade tests need: older schemas (for
    // fixtures and vN -> latest upgrades) and a v2 -> v3 migration that traps half-way.
    Canister {
        name: "agent",
        package: "agent",
        features: &[],
    },
    Canister {
        name: "agent-schema-v1",
        package: "agent",
        features: &["schema-v1"],
    },
    Canister {
        name: "agent-schema-v2",
        package: "agent",
        features: &["schema-v2"],
    },
    Canister {
        name: "agent-migration-trap",
        package: "agent",
        features: &["fault-migration-trap"],
    },
    // The chaos build: bad candidates are made from it by rewriting its mode marker.
    Canister {
        name: "agent-chaos",
        package: "agent",
        features: &["chaos"],
    },
    Canister {
        name: "staging",
        package: "staging",
        features: &[],
    },
    Canister {
        name: "watchdog",
        package: "watchdog",
        features: &[],
    },
];

/// Why a canister could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BuildError {
    /// The nested cargo could not be started.
    #[error("could not run `{cargo}`: {reason}")]
    CargoNotRunnable {
        /// The cargo binary that was tried.
        cargo: String,
        /// The operating system's error.
        reason: String,
    },
    /// cargo ran and failed; its stderr explains why.
    #[error("`cargo build` of the canisters failed (exit {status}):\n{stderr}")]
    CargoFailed {
        /// cargo's exit status.
        status: String,
        /// The tail of cargo's stderr.
        stderr: String,
    },
    /// The name is not one of [`CANISTERS`].
    #[error("unknown canister `{0}`; known canisters: {known}", known = known_names())]
    UnknownCanister(String),
    /// The build succeeded but the expected file is missing or unreadable.
    #[error("canister Wasm {path} could not be read: {reason}")]
    Unreadable {
        /// The path that was expected.
        path: PathBuf,
        /// The operating system's error.
        reason: String,
    },
}

fn known_names() -> String {
    CANISTERS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
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
    if !CANISTERS.iter().any(|c| c.name == name) {
        return Err(BuildError::UnknownCanister(name.to_string()));
    }
    build_all()?;
    Ok(output_path(name))
}

fn output_path(name: &str) -> PathBuf {
    canister_target_dir()
        .join("wasm")
        .join(format!("{name}.wasm"))
}

/// The Wasm bytes of a canister, building all canisters once per process.
pub fn canister_wasm(package: &str) -> Result<Vec<u8>, BuildError> {
    static CACHE: OnceLock<std::sync::Mutex<HashMap<String, Vec<u8>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(bytes) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(package) {
        return Ok(bytes.clone());
    }
    let path = canister_wasm_path(package)?;
    let bytes = std::fs::read(&path).map_err(|e| BuildError::Unreadable {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(package.to_string(), bytes.clone());
    Ok(bytes)
}

/// Runs the nested cargo build once per process; every caller sees the same outcome.
fn build_all() -> Result<(), BuildError> {
    static OUTCOME: OnceLock<Result<(), BuildError>> = OnceLock::new();
    OUTCOME.get_or_init(run_cargo_build).clone()
}

/// Makes sure the Wasm target is installed: rustup installs the toolchain of
/// rust-toolchain.toml with its targets, but not when the toolchain was already there without
/// them, or when auto-install is off (`RUSTUP_AUTO_INSTALL=0`).
fn ensure_wasm_target() {
    let installed = Command::new("rustup")
        .current_dir(workspace_root())
        .args(["target", "list", "--installed"])
        .output();
    let Ok(installed) = installed else {
        return; // no rustup: cargo will say what is missing
    };
    if !String::from_utf8_lossy(&installed.stdout).contains("wasm32-unknown-unknown") {
        let _ = Command::new("rustup")
            .current_dir(workspace_root())
            .args(["target", "add", "wasm32-unknown-unknown"])
            .status();
    }
}

fn run_cargo_build() -> Result<(), BuildError> {
    ensure_wasm_target();
    let plain: Vec<&Canister> = CANISTERS.iter().filter(|c| c.features.is_empty()).collect();
    if !plain.is_empty() {
        cargo_build(plain.iter().map(|c| c.package), &[], &canister_target_dir())?;
        for canister in &plain {
            copy_output(canister, &canister_target_dir())?;
        }
    }
    for canister in CANISTERS.iter().filter(|c| !c.features.is_empty()) {
        let dir = canister_target_dir().join("variants").join(canister.name);
        cargo_build(std::iter::once(canister.package), canister.features, &dir)?;
        copy_output(canister, &dir)?;
    }
    Ok(())
}

fn copy_output(canister: &Canister, target_dir: &Path) -> Result<(), BuildError> {
    let built = target_dir
        .join("wasm32-unknown-unknown")
        .join("canister")
        .join(format!("{}.wasm", canister.package.replace('-', "_")));
    let out = output_path(canister.name);
    let copied = std::fs::create_dir_all(out.parent().expect("has a parent"))
        .and_then(|()| std::fs::copy(&built, &out));
    copied.map(drop).map_err(|e| BuildError::Unreadable {
        path: built,
        reason: e.to_string(),
    })
}

fn cargo_build<'a>(
    packages: impl Iterator<Item = &'a str>,
    features: &[&str],
    target_dir: &Path,
) -> Result<(), BuildError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace_root())
        .args([
            "build",
            "--profile",
            "canister",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .arg("--target-dir")
        .arg(target_dir);
    for package in packages {
        cmd.args(["-p", package]);
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    // Flags meant for the host build (coverage, sanitizers) must not leak into the Wasm build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    let output = cmd.output().map_err(|e| BuildError::CargoNotRunnable {
        cargo: cargo.clone(),
        reason: e.to_string(),
    })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(60).collect();
    Err(BuildError::CargoFailed {
        status: output.status.to_string(),
        stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    })
}
