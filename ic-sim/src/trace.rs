//! A fingerprint of everything a run executed, in order: which canister ran which entry point
//! at which time, and whether it trapped. Two runs with the same trace digest executed the same
//! messages in the same order; the seed's effect on message orders shows as distinct digests.

use candid::Principal;
use sha2::{Digest, Sha256};

use crate::api_context::{ApiKind, Entry};
use crate::execution::TrapKind;

/// The running digest of executions.
#[derive(Clone, Default)]
pub(crate) struct Trace {
    hasher: Sha256,
    pub(crate) executions: u64,
}

impl Trace {
    /// Adds one execution.
    pub(crate) fn record(
        &mut self,
        time: u64,
        canister: Principal,
        kind: ApiKind,
        entry: &Entry,
        result: &Result<(), TrapKind>,
    ) {
        self.executions += 1;
        self.hasher.update(time.to_be_bytes());
        self.hasher.update(canister.as_slice());
        self.hasher.update(kind.mode_name().as_bytes());
        match entry {
            Entry::Export(name) => self.hasher.update(name.as_bytes()),
            Entry::Table { fun, env } => {
                self.hasher.update(fun.to_be_bytes());
                self.hasher.update(env.to_be_bytes());
            }
        }
        self.hasher.update([u8::from(result.is_ok())]);
    }

    /// The digest so far (hex of the first 16 bytes).
    pub(crate) fn digest(&self) -> String {
        hex::encode(&self.hasher.clone().finalize()[..16])
    }
}
