//! What the agentctl tests share: running the binary, and reading the workspace's files.

#![allow(dead_code)] // each test binary uses its own part

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs `agentctl` with `args` to its end.
pub fn agentctl<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentctl"))
        .args(args)
        .output()
        .expect("agentctl runs")
}

/// The workspace root (the parent of `cli/`).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A file of the workspace, by its path from the root.
pub fn workspace_file(name: &str) -> String {
    let path = root().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
