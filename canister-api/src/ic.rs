//! Typed calls between the canisters and to the management canister (feature `cdk`: only the
//! canisters enable it, so tests and the CLI do not link ic-cdk's System API imports).
//!
//! Every failure is a [`CallError`] naming the canister and method, so the caller can wrap it in
//! its own typed error without losing where it came from, with the reject code that
//! [`crate::failure::classify`] sorts into the classes an operator acts on.
//!
//! Every awaited call is counted while it is outstanding ([`calls_in_flight`]): a canister that
//! upgrades itself waits until none is, because a callback that runs after the upgrade runs in
//! the new module.

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Principal};
use ic_cdk::call::Call;
use ic_management_canister_types as mgmt;
use serde::de::DeserializeOwned;
use std::cell::Cell;

thread_local! {
    static IN_FLIGHT: Cell<u32> = const { Cell::new(0) };
}

/// Awaited calls of this module instance whose response (or reject) has not been handled yet.
pub fn calls_in_flight() -> u32 {
    IN_FLIGHT.with(|c| c.get())
}

/// Counts one outstanding call from its creation until it is dropped: when its response was
/// handled, or when ic-cdk drops the future in the cleanup of a trapped callback.
struct InFlight;

impl InFlight {
    fn start() -> Self {
        IN_FLIGHT.with(|c| c.set(c.get() + 1));
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.with(|c| c.set(c.get().saturating_sub(1)));
    }
}

/// Awaits `call` (a call built with ic-cdk's `Call` directly, e.g. one that attaches cycles or
/// reads the refund in its callback) counted in [`calls_in_flight`] until its response was
/// handled, as the typed calls of this module are. Every call a canister that upgrades itself
/// makes goes through here or through those, or its callback could run in the new module.
pub async fn counted<F: std::future::IntoFuture>(call: F) -> F::Output {
    let _outstanding = InFlight::start();
    call.await
}

/// A call that was rejected, failed, or answered something undecodable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("call to {canister} `{method}` failed: {message}")]
pub struct CallError {
    /// The canister called.
    pub canister: Principal,
    /// The method.
    pub method: String,
    /// The reject or decode error.
    pub message: String,
    /// The reject was SYS_UNKNOWN: a bounded-wait call whose response was dropped or whose
    /// deadline passed, so whether the call ran is unknown.
    pub outcome_unknown: bool,
    /// The IC's reject code; `None` when the call was answered but the answer did not decode.
    /// A call that could not be sent counts as SYS_TRANSIENT.
    pub reject_code: Option<u32>,
    /// A bounded-wait call that ran out of time (SYS_UNKNOWN at its deadline): the callee hung.
    pub late: bool,
}

impl CallError {
    /// Whose fault it is (see [`crate::failure`]).
    pub fn failure(&self) -> crate::failure::Failure {
        crate::failure::classify(self.reject_code, &self.message, self.late)
    }
}

fn err(canister: Principal, method: &str, message: impl ToString) -> CallError {
    CallError {
        canister,
        method: method.to_string(),
        message: message.to_string(),
        outcome_unknown: false,
        reject_code: None,
        late: false,
    }
}

fn call_err(canister: Principal, method: &str, e: ic_cdk::call::CallFailed) -> CallError {
    use ic_cdk::call::CallFailed;
    let reject_code = match &e {
        CallFailed::CallRejected(r) => r.raw_reject_code(),
        // Not sent (queue full, or the caller cannot pay): the IC's SYS_TRANSIENT.
        _ => crate::failure::SYS_TRANSIENT,
    };
    CallError {
        outcome_unknown: reject_code == crate::failure::SYS_UNKNOWN,
        reject_code: Some(reject_code),
        ..err(canister, method, e)
    }
}

/// Calls `method` on `canister` with one candid argument and decodes one result. `timeout`
/// makes it a bounded-wait call of that many seconds; `None` waits unboundedly.
pub async fn call<A: CandidType, R: CandidType + DeserializeOwned>(
    canister: Principal,
    method: &str,
    arg: &A,
    timeout: Option<u32>,
) -> Result<R, CallError> {
    call_args(canister, method, &(arg,), timeout).await
}

/// A bounded-wait [`call`] for a heartbeat: a SYS_UNKNOWN reject that came back before the
/// deadline (the response was dropped, not late) is retried at once, up to `attempts` calls in
/// all. A late answer or a definite reject counts at once, so a hung callee is still detected
/// within one timeout.
pub async fn heartbeat_call<R: CandidType + DeserializeOwned>(
    canister: Principal,
    method: &str,
    timeout_secs: u32,
    attempts: u32,
) -> Result<R, CallError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match call(canister, method, &(), Some(timeout_secs)).await {
            Err(e) if e.outcome_unknown && !e.late && tries < attempts => {}
            other => return other,
        }
    }
}

/// Attempts of a heartbeat ([`heartbeat_call`]).
pub const HEARTBEAT_ATTEMPTS: u32 = 3;

/// [`call`] with several arguments.
pub async fn call_args<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
    canister: Principal,
    method: &str,
    args: &A,
    timeout: Option<u32>,
) -> Result<R, CallError> {
    let call = match timeout {
        Some(secs) => Call::bounded_wait(canister, method).change_timeout(secs),
        None => Call::unbounded_wait(canister, method),
    };
    let sent = ic_cdk::api::time();
    let _outstanding = InFlight::start();
    let response = call.with_args(args).await.map_err(|e| {
        let mut e = call_err(canister, method, e);
        e.late = e.outcome_unknown
            && timeout
                .is_some_and(|secs| ic_cdk::api::time() >= sent + u64::from(secs) * 1_000_000_000);
        e
    })?;
    response.candid().map_err(|e| err(canister, method, e))
}

/// [`call_args`] of a method of the agent's control plane (the watchdog and staging name the
/// agent's methods only this way).
pub async fn agent_call<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
    agent: Principal,
    method: crate::agent::AgentMethod,
    args: &A,
    timeout: Option<u32>,
) -> Result<R, CallError> {
    call_args(agent, method.name(), args, timeout).await
}

/// A module stored by the agent (`export_module`), fetched in pieces and checked against
/// `hash`: what staging installs on its sandbox and what the watchdog keeps as the LKG.
pub async fn agent_module(agent: Principal, hash: &[u8]) -> Result<Vec<u8>, String> {
    use crate::agent::{AgentError, ModuleChunk};
    use sha2::Digest;
    let mut bytes = Vec::new();
    loop {
        let chunk: Result<ModuleChunk, AgentError> = agent_call(
            agent,
            crate::agent::AgentMethod::ExportModule,
            &(
                serde_bytes::ByteBuf::from(hash.to_vec()),
                bytes.len() as u64,
            ),
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
        let chunk = chunk.map_err(|e| format!("the agent refused export_module: {e}"))?;
        if chunk.bytes.is_empty() {
            break;
        }
        bytes.extend_from_slice(&chunk.bytes);
        if bytes.len() as u64 >= chunk.total {
            break;
        }
    }
    let actual = sha2::Sha256::digest(&bytes);
    if actual.as_slice() != hash {
        return Err(format!(
            "module {} from the agent hashes to {}",
            hex::encode(hash),
            hex::encode(actual)
        ));
    }
    Ok(bytes)
}

/// The management canister's methods the three canisters use (all unbounded-wait: a stop
/// request answers only once the canister stopped, or after the IC's 5-minute timeout).
pub mod management {
    use super::*;

    /// The install mode of every upgrade the project makes (the agent's own, staging's
    /// rehearsals, the restore ladder, the agent's repair of the watchdog): an upgrade that
    /// skips the running module's `pre_upgrade`. Both canisters keep all their state in stable
    /// structures, so `pre_upgrade` has nothing to save, and skipping it means a trapping
    /// `pre_upgrade` in the running module cannot block the upgrade that would replace it.
    pub fn upgrade_mode() -> mgmt::CanisterInstallMode {
        mgmt::CanisterInstallMode::Upgrade(Some(mgmt::UpgradeFlags {
            skip_pre_upgrade: Some(true),
            wasm_memory_persistence: None,
        }))
    }

    fn id(canister: Principal) -> mgmt::CanisterIdRecord {
        mgmt::CanisterIdRecord {
            canister_id: canister,
        }
    }

    async fn unit<A: CandidType>(method: &str, arg: &A) -> Result<(), CallError> {
        call::<A, ()>(Principal::management_canister(), method, arg, None).await
    }

    /// canister_status.
    pub async fn status(canister: Principal) -> Result<mgmt::CanisterStatusResult, CallError> {
        call(
            Principal::management_canister(),
            "canister_status",
            &id(canister),
            None,
        )
        .await
    }

    /// install_code, awaited.
    pub async fn install_code(args: &mgmt::InstallCodeArgs) -> Result<(), CallError> {
        unit("install_code", args).await
    }

    /// Largest module (with its argument) sent inline in one install_code request: a request
    /// to a canister on another subnet may carry at most 2 MiB (the stream builder rejects
    /// more), so larger modules go through the target's chunk store.
    pub const INLINE_INSTALL_LIMIT: usize = 1_900_000;
    /// Largest chunk upload_chunk accepts.
    pub const CHUNK_SIZE: usize = 1024 * 1024;

    /// install_code of `wasm` on `canister` in `mode`, wherever it lives: inline when small,
    /// otherwise uploaded in chunks of 1 MiB to the target's own chunk store and installed
    /// with install_chunked_code (the caller must control the target). The chunk store is
    /// cleared before (a stale chunk cannot mix in) and after (best effort).
    pub async fn install_anywhere(
        canister: Principal,
        mode: mgmt::CanisterInstallMode,
        wasm: &[u8],
        arg: Vec<u8>,
    ) -> Result<(), CallError> {
        if wasm.len() + arg.len() <= INLINE_INSTALL_LIMIT {
            return install_code(&mgmt::InstallCodeArgs {
                mode,
                canister_id: canister,
                wasm_module: wasm.to_vec(),
                arg,
                sender_canister_version: None,
            })
            .await;
        }
        unit("clear_chunk_store", &id(canister)).await?;
        let mut hashes = Vec::new();
        for chunk in wasm.chunks(CHUNK_SIZE) {
            let hash: mgmt::ChunkHash = call(
                Principal::management_canister(),
                "upload_chunk",
                &mgmt::UploadChunkArgs {
                    canister_id: canister,
                    chunk: chunk.to_vec(),
                },
                None,
            )
            .await?;
            hashes.push(hash);
        }
        let installed = unit(
            "install_chunked_code",
            &mgmt::InstallChunkedCodeArgs {
                mode,
                target_canister: canister,
                store_canister: None,
                chunk_hashes_list: hashes,
                wasm_module_hash: <sha2::Sha256 as sha2::Digest>::digest(wasm).to_vec(),
                arg,
                sender_canister_version: None,
            },
        )
        .await;
        let _ = unit("clear_chunk_store", &id(canister)).await;
        installed
    }

    /// install_code as a one-way call: no response, no callback. The only safe way for a
    /// canister to upgrade itself (a callback would resume in the new module).
    pub fn install_code_oneway(args: &mgmt::InstallCodeArgs) -> Result<(), CallError> {
        Call::unbounded_wait(Principal::management_canister(), "install_code")
            .with_arg(args)
            .oneway()
            .map_err(|e| err(Principal::management_canister(), "install_code", e))
    }

    /// update_settings of `canister`'s controllers only.
    pub async fn set_controllers(
        canister: Principal,
        controllers: Vec<Principal>,
    ) -> Result<(), CallError> {
        unit(
            "update_settings",
            &mgmt::UpdateSettingsArgs {
                canister_id: canister,
                settings: mgmt::CanisterSettings {
                    controllers: Some(controllers),
                    ..Default::default()
                },
                sender_canister_version: None,
            },
        )
        .await
    }

    /// update_settings of `canister`'s freezing threshold only, in seconds.
    pub async fn set_freezing_threshold(canister: Principal, secs: u64) -> Result<(), CallError> {
        unit(
            "update_settings",
            &mgmt::UpdateSettingsArgs {
                canister_id: canister,
                settings: mgmt::CanisterSettings {
                    freezing_threshold: Some(secs.into()),
                    ..Default::default()
                },
                sender_canister_version: None,
            },
        )
        .await
    }

    /// uninstall_code (rejects the canister's open call contexts).
    pub async fn uninstall_code(canister: Principal) -> Result<(), CallError> {
        unit(
            "uninstall_code",
            &mgmt::UninstallCodeArgs {
                canister_id: canister,
                sender_canister_version: None,
            },
        )
        .await
    }

    /// stop_canister.
    pub async fn stop(canister: Principal) -> Result<(), CallError> {
        unit("stop_canister", &id(canister)).await
    }

    /// start_canister.
    pub async fn start(canister: Principal) -> Result<(), CallError> {
        unit("start_canister", &id(canister)).await
    }

    /// take_canister_snapshot, replacing `replace` if given.
    pub async fn take_snapshot(
        canister: Principal,
        replace: Option<Vec<u8>>,
    ) -> Result<mgmt::Snapshot, CallError> {
        call(
            Principal::management_canister(),
            "take_canister_snapshot",
            &mgmt::TakeCanisterSnapshotArgs {
                canister_id: canister,
                replace_snapshot: replace,
                uninstall_code: None,
                sender_canister_version: None,
            },
            None,
        )
        .await
    }

    /// load_canister_snapshot.
    pub async fn load_snapshot(canister: Principal, snapshot: Vec<u8>) -> Result<(), CallError> {
        unit(
            "load_canister_snapshot",
            &mgmt::LoadCanisterSnapshotArgs {
                canister_id: canister,
                snapshot_id: snapshot,
                sender_canister_version: None,
            },
        )
        .await
    }

    /// list_canister_snapshots.
    pub async fn list_snapshots(canister: Principal) -> Result<Vec<mgmt::Snapshot>, CallError> {
        call(
            Principal::management_canister(),
            "list_canister_snapshots",
            &id(canister),
            None,
        )
        .await
    }

    /// deposit_cycles: `cycles` from the caller's balance to `canister`.
    pub async fn deposit_cycles(canister: Principal, cycles: u128) -> Result<(), CallError> {
        let method = "deposit_cycles";
        let _outstanding = InFlight::start();
        Call::unbounded_wait(Principal::management_canister(), method)
            .with_arg(id(canister))
            .with_cycles(cycles)
            .await
            .map(|_| ())
            .map_err(|e| call_err(Principal::management_canister(), method, e))
    }

    /// create_canister with `cycles` attached and the given controllers.
    pub async fn create_canister(
        controllers: Vec<Principal>,
        cycles: u128,
    ) -> Result<Principal, CallError> {
        let method = "create_canister";
        let _outstanding = InFlight::start();
        let response = Call::unbounded_wait(Principal::management_canister(), method)
            .with_arg(mgmt::CreateCanisterArgs {
                settings: Some(mgmt::CanisterSettings {
                    controllers: Some(controllers),
                    ..Default::default()
                }),
                sender_canister_version: None,
            })
            .with_cycles(cycles)
            .await
            .map_err(|e| call_err(Principal::management_canister(), method, e))?;
        let record: mgmt::CanisterIdRecord = response
            .candid()
            .map_err(|e| err(Principal::management_canister(), method, e))?;
        Ok(record.canister_id)
    }
}
