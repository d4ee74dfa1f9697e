//! [`AgentBackend`]: the portable tests' [`IcBackend`] over HTTP, with ic-agent as the client
//! and a [`ServerHandle`] as the IC. Every call is signed by the sender's key and every answer
//! verified against the server's root key, so a test that passes here passes through the whole
//! HTTP interface, and the server adds no behaviour of its own.
//!
//! A sender must be anonymous or one of the identities given to [`AgentBackend::new`]: nobody
//! can sign for a principal without its key. What the HTTP interface cannot do panics with a
//! message saying so: `tick` and `advance_time` (the server's clock follows the wall clock and
//! it runs rounds by itself).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use candid::{CandidType, Principal};
use ic_agent::identity::AnonymousIdentity;
use ic_agent::{Agent, AgentError, Identity};
use ic_management_canister_types as mgmt;
use ic_sim::backend::IcBackend;
use ic_sim::{ErrorCode, RejectCode, RejectResponse, Time};
use serde::de::DeserializeOwned;

use crate::ServerHandle;

/// The IC backend of a running server, reached with ic-agent.
pub struct AgentBackend {
    server: ServerHandle,
    runtime: tokio::runtime::Runtime,
    agents: BTreeMap<Principal, Agent>,
}

impl AgentBackend {
    /// A backend on `server` that can sign as the anonymous principal and as `identities`.
    pub fn new(server: ServerHandle, identities: Vec<Arc<dyn Identity>>) -> AgentBackend {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let mut agents = BTreeMap::new();
        let anonymous: Arc<dyn Identity> = Arc::new(AnonymousIdentity);
        for identity in std::iter::once(anonymous).chain(identities) {
            let sender = identity.sender().expect("an identity has a principal");
            let agent = Agent::builder()
                .with_url(server.url())
                .with_arc_identity(identity)
                .with_ingress_expiry(Duration::from_secs(180))
                .build()
                .expect("an agent");
            agent.set_root_key(server.root_key().to_vec());
            agents.insert(sender, agent);
        }
        AgentBackend {
            server,
            runtime,
            agents,
        }
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        self.server.url()
    }

    fn agent(&self, sender: Principal) -> &Agent {
        self.agents.get(&sender).unwrap_or_else(|| {
            panic!("AgentBackend: no key for {sender}; give its identity to AgentBackend::new")
        })
    }

    fn update(
        &self,
        canister: Principal,
        effective: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        let call = self
            .agent(sender)
            .update(&canister, method)
            .with_effective_canister_id(effective)
            .with_arg(arg)
            .call_and_wait();
        self.runtime.block_on(call).map_err(reject)
    }

    /// A management canister call routed by `effective`, decoded as `R`.
    fn management<A: CandidType, R: DeserializeOwned + CandidType>(
        &self,
        sender: Option<Principal>,
        effective: Principal,
        method: &str,
        arg: &A,
    ) -> Result<R, RejectResponse> {
        let bytes = self.update(
            Principal::management_canister(),
            effective,
            sender.unwrap_or(Principal::anonymous()),
            method,
            candid::encode_one(arg).expect("encodes"),
        )?;
        Ok(candid::decode_one(&bytes).expect("the management canister answers its type"))
    }

    fn canister_op(
        &self,
        sender: Option<Principal>,
        method: &str,
        canister_id: Principal,
    ) -> Result<(), RejectResponse> {
        self.management(
            sender,
            canister_id,
            method,
            &mgmt::CanisterIdRecord { canister_id },
        )
    }
}

/// An ic-agent error as the rejection the simulator would have answered.
fn reject(e: AgentError) -> RejectResponse {
    let (transport, certified) = match e {
        AgentError::CertifiedReject { reject, .. } => (reject, true),
        AgentError::UncertifiedReject { reject, .. } => (reject, false),
        other => panic!("AgentBackend: the call failed outside the IC's semantics: {other}"),
    };
    let error_code = transport
        .error_code
        .as_deref()
        .and_then(|c| c.strip_prefix("IC"))
        .and_then(|n| n.parse::<u64>().ok())
        .and_then(ErrorCode::from_u64)
        .unwrap_or_else(|| {
            panic!("AgentBackend: a reject without a known error code: {transport:?}")
        });
    RejectResponse {
        reject_code: RejectCode::from_u32(transport.reject_code as u32)
            .expect("a known reject code"),
        reject_message: transport.reject_message,
        error_code,
        certified,
    }
}

impl IcBackend for AgentBackend {
    fn backend_name(&self) -> &'static str {
        "ic-sim-http (ic-agent)"
    }

    fn create_canister(&self) -> Principal {
        self.create_canister_with_settings(None, None)
    }

    fn create_canister_with_settings(
        &self,
        sender: Option<Principal>,
        settings: Option<mgmt::CanisterSettings>,
    ) -> Principal {
        let args = mgmt::ProvisionalCreateCanisterWithCyclesArgs {
            amount: Some(100_000_000_000_000u128.into()),
            settings,
            specified_id: None,
            sender_canister_version: None,
        };
        // Any canister id of the subnet routes the call; the first one will do.
        let effective = Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        let record: mgmt::CanisterIdRecord = self
            .management(
                sender,
                effective,
                "provisional_create_canister_with_cycles",
                &args,
            )
            .unwrap_or_else(|e| panic!("create_canister failed: {e}"));
        record.canister_id
    }

    fn add_cycles(&self, canister_id: Principal, amount: u128) -> u128 {
        let args = mgmt::ProvisionalTopUpCanisterArgs {
            canister_id,
            amount: amount.into(),
        };
        let () = self
            .management(None, canister_id, "provisional_top_up_canister", &args)
            .unwrap_or_else(|e| panic!("add_cycles failed: {e}"));
        self.cycle_balance(canister_id)
    }

    fn cycle_balance(&self, canister_id: Principal) -> u128 {
        self.canister_status(canister_id, None)
            .map(|s| u128::try_from(s.cycles.0).expect("a balance fits in u128"))
            .unwrap_or(0)
    }

    fn install_canister(
        &self,
        canister_id: Principal,
        wasm_module: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) {
        let args = install(
            mgmt::CanisterInstallMode::Install,
            canister_id,
            wasm_module,
            arg,
        );
        let () = self
            .management(sender, canister_id, "install_code", &args)
            .unwrap_or_else(|e| panic!("install_canister failed: {e}"));
    }

    fn upgrade_canister(
        &self,
        canister_id: Principal,
        wasm_module: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        let args = install(
            mgmt::CanisterInstallMode::Upgrade(None),
            canister_id,
            wasm_module,
            arg,
        );
        self.management(sender, canister_id, "install_code", &args)
    }

    fn reinstall_canister(
        &self,
        canister_id: Principal,
        wasm_module: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        let args = install(
            mgmt::CanisterInstallMode::Reinstall,
            canister_id,
            wasm_module,
            arg,
        );
        self.management(sender, canister_id, "install_code", &args)
    }

    fn uninstall_canister(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        let args = mgmt::UninstallCodeArgs {
            canister_id,
            sender_canister_version: None,
        };
        self.management(sender, canister_id, "uninstall_code", &args)
    }

    fn update_call(
        &self,
        canister_id: Principal,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        self.update(canister_id, canister_id, sender, method, payload)
    }

    fn query_call(
        &self,
        canister_id: Principal,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        let query = self
            .agent(sender)
            .query(&canister_id, method)
            .with_arg(payload)
            .call();
        self.runtime.block_on(query).map_err(reject)
    }

    fn tick(&self) {
        panic!(
            "AgentBackend::tick: the IC's HTTP interface cannot run a round; the server runs them by itself"
        )
    }

    fn advance_time(&self, _duration: Duration) {
        panic!(
            "AgentBackend::advance_time: the IC's HTTP interface cannot move time; the server follows the wall clock"
        )
    }

    fn get_time(&self) -> Time {
        let agent = self.agent(Principal::anonymous());
        let effective = Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        let certificate = self
            .runtime
            .block_on(agent.read_state_raw(vec![vec!["time".into()]], effective))
            .unwrap_or_else(|e| panic!("get_time: read_state failed: {e}"));
        let ic_certification::LookupResult::Found(mut leb) =
            certificate.tree.lookup_path([b"time".as_slice()])
        else {
            panic!("get_time: the certificate has no time");
        };
        Time::from_nanos_since_unix_epoch(leb128::read::unsigned(&mut leb).expect("LEB128 time"))
    }

    fn canister_status(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<mgmt::CanisterStatusResult, RejectResponse> {
        self.management(
            sender,
            canister_id,
            "canister_status",
            &mgmt::CanisterIdRecord { canister_id },
        )
    }

    fn get_controllers(&self, canister_id: Principal) -> Vec<Principal> {
        let agent = self.agent(Principal::anonymous());
        self.runtime
            .block_on(agent.read_state_canister_controllers(canister_id))
            .unwrap_or_default()
    }

    fn set_controllers(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
        new_controllers: Vec<Principal>,
    ) -> Result<(), RejectResponse> {
        let args = mgmt::UpdateSettingsArgs {
            canister_id,
            settings: mgmt::CanisterSettings {
                controllers: Some(new_controllers),
                ..Default::default()
            },
            sender_canister_version: None,
        };
        self.management(sender, canister_id, "update_settings", &args)
    }

    fn start_canister(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.canister_op(sender, "start_canister", canister_id)
    }

    fn stop_canister(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.canister_op(sender, "stop_canister", canister_id)
    }

    fn delete_canister(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.canister_op(sender, "delete_canister", canister_id)
    }

    fn take_canister_snapshot(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
        replace_snapshot: Option<Vec<u8>>,
    ) -> Result<mgmt::Snapshot, RejectResponse> {
        let args = mgmt::TakeCanisterSnapshotArgs {
            canister_id,
            replace_snapshot,
            uninstall_code: None,
            sender_canister_version: None,
        };
        self.management(sender, canister_id, "take_canister_snapshot", &args)
    }

    fn load_canister_snapshot(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
        snapshot_id: Vec<u8>,
    ) -> Result<(), RejectResponse> {
        let args = mgmt::LoadCanisterSnapshotArgs {
            canister_id,
            snapshot_id,
            sender_canister_version: None,
        };
        self.management(sender, canister_id, "load_canister_snapshot", &args)
    }

    fn list_canister_snapshots(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<Vec<mgmt::Snapshot>, RejectResponse> {
        self.management(
            sender,
            canister_id,
            "list_canister_snapshots",
            &mgmt::CanisterIdRecord { canister_id },
        )
    }

    fn delete_canister_snapshot(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
        snapshot_id: Vec<u8>,
    ) -> Result<(), RejectResponse> {
        let args = mgmt::DeleteCanisterSnapshotArgs {
            canister_id,
            snapshot_id,
        };
        self.management(sender, canister_id, "delete_canister_snapshot", &args)
    }

    fn upload_chunk(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
        chunk: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        let hash: mgmt::ChunkHash = self.management(
            sender,
            canister_id,
            "upload_chunk",
            &mgmt::UploadChunkArgs { canister_id, chunk },
        )?;
        Ok(hash.hash)
    }

    fn stored_chunks(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<Vec<Vec<u8>>, RejectResponse> {
        let hashes: Vec<mgmt::ChunkHash> = self.management(
            sender,
            canister_id,
            "stored_chunks",
            &mgmt::CanisterIdRecord { canister_id },
        )?;
        Ok(hashes.into_iter().map(|h| h.hash).collect())
    }

    fn clear_chunk_store(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.canister_op(sender, "clear_chunk_store", canister_id)
    }

    fn install_chunked_canister(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
        mode: mgmt::CanisterInstallMode,
        store_canister_id: Principal,
        chunk_hashes_list: Vec<Vec<u8>>,
        wasm_module_hash: Vec<u8>,
        arg: Vec<u8>,
    ) -> Result<(), RejectResponse> {
        let args = mgmt::InstallChunkedCodeArgs {
            mode,
            target_canister: canister_id,
            store_canister: Some(store_canister_id),
            chunk_hashes_list: chunk_hashes_list
                .into_iter()
                .map(|hash| mgmt::ChunkHash { hash })
                .collect(),
            wasm_module_hash,
            arg,
            sender_canister_version: None,
        };
        self.management(sender, canister_id, "install_chunked_code", &args)
    }
}

fn install(
    mode: mgmt::CanisterInstallMode,
    canister_id: Principal,
    wasm_module: Vec<u8>,
    arg: Vec<u8>,
) -> mgmt::InstallCodeArgs {
    mgmt::InstallCodeArgs {
        mode,
        canister_id,
        wasm_module,
        arg,
        sender_canister_version: None,
    }
}
