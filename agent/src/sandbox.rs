//! Service: the agent's state as a copy. Staging rehearses an upgrade on a sandbox canister
//! holding a byte-for-byte copy of the agent's stable memory:
//!
//! 1. the real agent answers [`export`] to the staging canister, only while its writes are
//!    paused for that rehearsal (so the copy is consistent);
//! 2. a sandbox, installed by staging with `AgentInit { sandbox: Some(true) }`, accepts
//!    [`import`] from that staging canister, and from nobody else, only in the module instance
//!    that was installed that way;
//! 3. once the copy is loaded, the state names the real agent's canister id (`Markers::
//!    canister_id`), so the copy knows it is a copy ([`is_copy`]) and never calls the watchdog,
//!    staging or the management canister, and never drives an upgrade.
//!
//! After [`import`] the sandbox's heap caches (the MemoryManager, the stable cells) are stale:
//! staging upgrades the sandbox before reading anything from it.

use crate::api::{AgentError, StateChunk};
use crate::config;
use candid::Principal;
use std::cell::Cell;

const PAGE: u64 = 65536;
const MAX_CHUNK: u64 = canister_api::TRANSFER_CHUNK;

thread_local! {
    /// The staging canister that installed this module instance as a sandbox.
    static IMPORTER: Cell<Option<Principal>> = const { Cell::new(None) };
}

/// Called from `init` with `AgentInit::sandbox`.
pub fn init(sandbox: bool, staging: Option<Principal>) {
    if sandbox {
        IMPORTER.with(|i| i.set(staging));
    }
}

/// Remembers which canister this state belongs to (in init and in every post_upgrade; only the
/// first time counts).
pub fn record_identity() {
    let me = ic_cdk::api::canister_self();
    config::update_markers(|m| {
        m.canister_id.get_or_insert(me);
    });
}

/// Whether this canister runs a copy of another agent's state, or was installed as a sandbox.
pub fn is_copy() -> bool {
    IMPORTER.with(|i| i.get()).is_some()
        || config::markers()
            .canister_id
            .is_some_and(|id| id != ic_cdk::api::canister_self())
}

/// A piece of stable memory for the staging canister's copy; `copying` says whether writes are
/// paused for a rehearsal now (the endpoint asks `writes`).
pub fn export(
    caller: Principal,
    offset: u64,
    max_len: u64,
    copying: bool,
) -> Result<StateChunk, AgentError> {
    if config::get().staging != Some(caller) {
        return Err(AgentError::Unauthorized {
            caller,
            method: "export_state".into(),
            allowed: "the staging canister".into(),
        });
    }
    if !copying {
        return Err(AgentError::InvalidArgument(
            "no rehearsal is copying the state: export_state answers only while writes are \
             paused for a rehearsal"
                .into(),
        ));
    }
    let total = ic_cdk::stable::stable_size() * PAGE;
    if offset > total {
        return Err(AgentError::InvalidArgument(format!(
            "offset {offset} is past the end of stable memory ({total} bytes)"
        )));
    }
    let len = max_len.min(MAX_CHUNK).min(total - offset);
    let mut bytes = vec![0u8; len as usize];
    ic_cdk::stable::stable_read(offset, &mut bytes);
    Ok(StateChunk {
        offset,
        total,
        bytes: serde_bytes::ByteBuf::from(bytes),
    })
}

/// Writes a piece of a copied state into this sandbox. The last piece (`offset + len ==
/// total`) also zeroes whatever the sandbox's own stable memory held beyond `total`.
pub fn import(caller: Principal, chunk: &StateChunk) -> Result<(), AgentError> {
    let importer = IMPORTER.with(|i| i.get());
    if importer != Some(caller) {
        return Err(AgentError::Unauthorized {
            caller,
            method: "import_state".into(),
            allowed: "the staging canister that installed this sandbox".into(),
        });
    }
    let len = chunk.bytes.len() as u64;
    if len > MAX_CHUNK {
        return Err(AgentError::ChunkTooLarge {
            size: len,
            max: MAX_CHUNK,
        });
    }
    let end = chunk.offset.checked_add(len).filter(|e| *e <= chunk.total);
    let Some(end) = end else {
        return Err(AgentError::InvalidArgument(format!(
            "chunk {}..+{len} does not fit in a state of {} bytes",
            chunk.offset, chunk.total
        )));
    };
    let pages = ic_cdk::stable::stable_size();
    let needed = chunk.total.div_ceil(PAGE);
    if needed > pages && ic_cdk::stable::stable_grow(needed - pages).is_err() {
        return Err(AgentError::InvalidArgument(format!(
            "cannot grow stable memory to {} bytes",
            chunk.total
        )));
    }
    ic_cdk::stable::stable_write(chunk.offset, &chunk.bytes);
    if end == chunk.total {
        let size = ic_cdk::stable::stable_size() * PAGE;
        let zeros = vec![0u8; MAX_CHUNK as usize];
        let mut at = end;
        while at < size {
            let n = (size - at).min(MAX_CHUNK);
            ic_cdk::stable::stable_write(at, &zeros[..n as usize]);
            at += n;
        }
    }
    Ok(())
}
