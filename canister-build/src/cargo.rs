//! The nested `cargo build` of canister crates for `wasm32-unknown-unknown`.

use crate::{BuildError, workspace_root};
use std::path::Path;
use std::process::Command;

/// Makes sure the Wasm target is installed: rustup installs the toolchain of
/// rust-toolchain.toml with its targets, but not when the toolchain was already there without
/// them, or when auto-install is off (`RUSTUP_AUTO_INSTALL=0`).
pub(crate) fn ensure_wasm_target() {
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

/// `cargo build --profile canister --target wasm32-unknown-unknown` of `packages` with
/// `features`, into `target_dir`.
pub(crate) fn build<'a>(
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

/// Where cargo puts the Wasm of `package` built into `target_dir`.
pub(crate) fn built_wasm(target_dir: &Path, package: &str) -> std::path::PathBuf {
    target_dir
        .join("wasm32-unknown-unknown")
        .join("canister")
        .join(format!("{}.wasm", package.replace('-', "_")))
}
