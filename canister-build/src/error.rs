//! [`BuildError`]: why a canister could not be built or written.

use crate::custom_section::SectionError;
use std::path::PathBuf;

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
    /// The name is not one of [`crate::CANISTERS`].
    #[error("unknown canister `{0}`; known canisters: {known}", known = known_names())]
    UnknownCanister(String),
    /// The name is not one of [`crate::mutants::MUTANTS`].
    #[error("unknown mutant `{name}`; known mutants: {known}")]
    UnknownMutant {
        /// The name asked for.
        name: String,
        /// The known mutants, comma-separated.
        known: String,
    },
    /// A mutant build was asked for a canister that is not one of the trio's.
    #[error("`{name}` is not a canister of a mutant trio; those are: {known}")]
    NotInTrio {
        /// The canister asked for.
        name: String,
        /// The trio's canisters, comma-separated.
        known: String,
    },
    /// A file the build needs (the built Wasm, a `.did`) is missing or unreadable.
    #[error("{path} could not be read: {reason}")]
    Unreadable {
        /// The path that was expected.
        path: PathBuf,
        /// The operating system's error.
        reason: String,
    },
    /// An output file could not be written.
    #[error("{path} could not be written: {reason}")]
    Unwritable {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        reason: String,
    },
    /// cargo produced bytes the metadata could not be added to.
    #[error("cannot add `{section}` to the Wasm of canister `{canister}`: {source}")]
    Metadata {
        /// The canister.
        canister: &'static str,
        /// The custom section.
        section: &'static str,
        /// What was wrong with the module.
        source: SectionError,
    },
    /// With its metadata, the module is not one the IC would install.
    #[error(
        "the Wasm of canister `{canister}` with the contents of {did} as metadata is not \
         installable on the IC: {source}"
    )]
    NotInstallable {
        /// The canister.
        canister: &'static str,
        /// The `.did` file whose contents were added, relative to the workspace root.
        did: &'static str,
        /// What `wasm_patch::validate` refused.
        source: wasm_patch::ValidationError,
    },
}

fn known_names() -> String {
    crate::CANISTERS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}
