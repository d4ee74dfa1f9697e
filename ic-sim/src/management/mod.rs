//! The management canister (`aaaaa-aa`): the dispatch of its methods, with the IC's caller
//! checks and error codes. Requests arrive through the same queues as every other message, from
//! ingress or from canisters.
//!
//! # Layout
//! - `settings`: canister creation (with `specified_id`) and settings, environment variables.
//! - `install`: install_code with atomic upgrades, chunked code, uninstall, start.
//! - `snapshots`: take, load, list, delete, and reading and uploading snapshots.
//! - `info`: canister_status, canister_info (history), canister_metadata, canister logs.

use candid::{CandidType, Nat, Principal};
use ic_management_canister_types as mgmt;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

mod info;
mod install;
mod settings;
mod snapshots;

pub(crate) use info::status_of;

use crate::api_context::{ApiKind, Entry};
use crate::canister::{Canister, ExecState, ReplyTo, RunStatus, SnapshotData, StopRequest};
use crate::errors;
use crate::execution::Instance;
use crate::module;
use crate::state::{Outcome, Request, SimState};
use crate::subnet::{self, SubnetKind};
use crate::types::{ErrorCode, RejectResponse};

/// Largest chunk upload_chunk accepts (1 MiB).
pub const MAX_CHUNK_SIZE: usize = 1024 * 1024;
/// Most chunks a canister's chunk store holds.
pub(crate) const MAX_CHUNKS: usize = 100;
/// Most snapshots per canister.
pub(crate) const MAX_SNAPSHOTS: usize = 10;
/// Most controllers per canister.
pub(crate) const MAX_CONTROLLERS: usize = 10;
/// Cycles of a canister created by a provisional call without an amount (as on the IC).
pub(crate) const DEFAULT_PROVISIONAL_CYCLES: u128 = 100_000_000_000_000;

/// A management call is answered now, or later (a stop waits for the canister to stop).
enum Handled {
    Done(Outcome),
    Deferred,
}

fn decode<T: CandidType + DeserializeOwned>(method: &str, arg: &[u8]) -> Result<T, RejectResponse> {
    candid::decode_one(arg).map_err(|e| errors::invalid_payload(method, &e.to_string()))
}

fn encode<T: CandidType>(value: &T) -> Vec<u8> {
    candid::encode_one(value).expect("management results always encode")
}

fn nat(n: impl Into<u128>) -> Nat {
    Nat::from(n.into())
}

fn nat_to_u64(n: &Nat) -> u64 {
    u64::try_from(n.0.clone()).unwrap_or(u64::MAX)
}

fn nat_to_u128(n: &Nat) -> u128 {
    u128::try_from(n.0.clone()).unwrap_or(u128::MAX)
}

impl SimState {
    /// Handles one request to the management canister and answers it (now or when it completes).
    pub(crate) fn management(&mut self, req: Request) {
        let (handled, refund) = self.dispatch(&req);
        if let Handled::Done(outcome) = handled {
            self.respond(
                Principal::management_canister(),
                req.reply_to,
                outcome,
                refund,
            );
        }
        self.check_stops();
    }

    fn dispatch(&mut self, req: &Request) -> (Handled, u128) {
        let sender = req.sender;
        let arg = &req.arg;
        let method = req.method.as_str();
        let mut refund = req.cycles;
        let outcome = (|| -> Result<Handled, RejectResponse> {
            Ok(match method {
                "create_canister" => {
                    let args: mgmt::CreateCanisterArgs = decode(method, arg)?;
                    let (cycles, creation_fee) = if matches!(req.reply_to, ReplyTo::Canister { .. })
                    {
                        let fee = match &req.reply_to {
                            ReplyTo::Canister { caller, .. } => self
                                .canisters
                                .get(caller)
                                .map_or(self.config.fees.canister_creation, |c| {
                                    self.fees_of(c).canister_creation
                                }),
                            _ => self.config.fees.canister_creation,
                        };
                        if req.cycles < fee {
                            return Err(RejectResponse::new(
                                ErrorCode::InsufficientCyclesForCreateCanister,
                                format!(
                                    "Creating a canister requires a fee of {fee} that is deducted from the canister's initial balance but only {} cycles were received with the create_canister request.",
                                    req.cycles
                                ),
                            ));
                        }
                        refund = 0;
                        (req.cycles - fee, fee)
                    } else {
                        (DEFAULT_PROVISIONAL_CYCLES, 0)
                    };
                    let subnet = self.origin_subnet(req);
                    let origin = origin_of(req, args.sender_canister_version);
                    let id = self.create_with_settings(
                        sender,
                        subnet,
                        None,
                        args.settings,
                        cycles,
                        origin,
                    )?;
                    if let Some(created) = self.canisters.get_mut(&id) {
                        created.charged.creation += creation_fee;
                    }
                    Handled::Done(Ok(encode(&mgmt::CanisterIdRecord { canister_id: id })))
                }
                "provisional_create_canister_with_cycles" => {
                    let args: mgmt::ProvisionalCreateCanisterWithCyclesArgs = decode(method, arg)?;
                    let cycles = args
                        .amount
                        .as_ref()
                        .map_or(DEFAULT_PROVISIONAL_CYCLES, nat_to_u128);
                    let subnet = self.origin_subnet(req);
                    let origin = origin_of(req, args.sender_canister_version);
                    let id = self.create_with_settings(
                        sender,
                        subnet,
                        args.specified_id,
                        args.settings,
                        cycles,
                        origin,
                    )?;
                    Handled::Done(Ok(encode(&mgmt::CanisterIdRecord { canister_id: id })))
                }
                "provisional_top_up_canister" => {
                    let args: mgmt::ProvisionalTopUpCanisterArgs = decode(method, arg)?;
                    let canister = self.existing(args.canister_id)?;
                    canister.cycles += nat_to_u128(&args.amount);
                    Handled::Done(Ok(encode(&())))
                }
                "deposit_cycles" => {
                    let args: mgmt::CanisterIdRecord = decode(method, arg)?;
                    let canister = self.existing(args.canister_id)?;
                    canister.cycles += req.cycles;
                    refund = 0;
                    Handled::Done(Ok(encode(&())))
                }
                "update_settings" => {
                    let args: mgmt::UpdateSettingsArgs = decode(method, arg)?;
                    self.controlled(args.canister_id, sender)?;
                    let origin = origin_of(req, args.sender_canister_version);
                    self.apply_settings(args.canister_id, &args.settings, Some(origin))?;
                    Handled::Done(Ok(encode(&())))
                }
                "install_code" => {
                    let args: mgmt::InstallCodeArgs = decode(method, arg)?;
                    let origin = origin_of(req, args.sender_canister_version);
                    self.install_code(
                        sender,
                        args.canister_id,
                        args.mode,
                        &args.wasm_module,
                        args.arg,
                        origin,
                    )?;
                    Handled::Done(Ok(encode(&())))
                }
                "install_chunked_code" => {
                    let args: mgmt::InstallChunkedCodeArgs = decode(method, arg)?;
                    let origin = origin_of(req, args.sender_canister_version);
                    self.install_chunked_code(sender, args, origin)?;
                    Handled::Done(Ok(encode(&())))
                }
                "uninstall_code" => {
                    let args: mgmt::UninstallCodeArgs = decode(method, arg)?;
                    self.controlled(args.canister_id, sender)?;
                    let origin = origin_of(req, args.sender_canister_version);
                    self.uninstall(args.canister_id, origin);
                    Handled::Done(Ok(encode(&())))
                }
                "start_canister" => {
                    let args: mgmt::CanisterIdRecord = decode(method, arg)?;
                    self.controlled(args.canister_id, sender)?;
                    self.start(args.canister_id);
                    Handled::Done(Ok(encode(&())))
                }
                "stop_canister" => {
                    let args: mgmt::CanisterIdRecord = decode(method, arg)?;
                    self.controlled(args.canister_id, sender)?;
                    let since = self.time;
                    let canister = self.existing(args.canister_id)?;
                    let request = StopRequest {
                        reply_to: req.reply_to.clone(),
                        since,
                    };
                    match &mut canister.status {
                        RunStatus::Stopped => Handled::Done(Ok(encode(&()))),
                        RunStatus::Stopping(requests) => {
                            requests.push(request);
                            Handled::Deferred
                        }
                        RunStatus::Running => {
                            canister.status = RunStatus::Stopping(vec![request]);
                            Handled::Deferred
                        }
                    }
                }
                "canister_status" => {
                    let args: mgmt::CanisterIdRecord = decode(method, arg)?;
                    let canister = self.existing(args.canister_id)?;
                    if !canister.is_controller(&sender) && sender != args.canister_id {
                        return Err(errors::not_controller(
                            args.canister_id,
                            &canister.controllers,
                            sender,
                        ));
                    }
                    let mut status = status_of(canister);
                    let canister = &self.canisters[&args.canister_id];
                    status.idle_cycles_burned_per_day =
                        candid::Nat::from(self.idle_burn_per_day(canister));
                    Handled::Done(Ok(encode(&info::StatusReply::from(status))))
                }
                "delete_canister" => {
                    let args: mgmt::CanisterIdRecord = decode(method, arg)?;
                    let id = args.canister_id;
                    if sender == id {
                        return Err(errors::delete_self(id));
                    }
                    self.controlled(id, sender)?;
                    if self.canisters[&id].status != RunStatus::Stopped {
                        return Err(errors::delete_not_stopped(id));
                    }
                    // Its remaining cycles are burned, and its snapshots go with it.
                    self.canisters.remove(&id);
                    Handled::Done(Ok(encode(&())))
                }
                "ecdsa_public_key" | "sign_with_ecdsa" => {
                    #[derive(candid::CandidType, candid::Deserialize)]
                    struct WithKey {
                        key_id: mgmt::EcdsaKeyId,
                    }
                    let args: WithKey = decode(method, arg)?;
                    let key = format!("ecdsa:{:?}:{}", args.key_id.curve, args.key_id.name);
                    return Err(errors::unknown_threshold_key(method, &key));
                }
                "schnorr_public_key" | "sign_with_schnorr" => {
                    #[derive(candid::CandidType, candid::Deserialize)]
                    struct WithKey {
                        key_id: mgmt::SchnorrKeyId,
                    }
                    let args: WithKey = decode(method, arg)?;
                    let algorithm = match args.key_id.algorithm {
                        mgmt::SchnorrAlgorithm::Bip340secp256k1 => "Bip340Secp256k1",
                        mgmt::SchnorrAlgorithm::Ed25519 => "Ed25519",
                    };
                    let key = format!("schnorr:{algorithm}:{}", args.key_id.name);
                    return Err(errors::unknown_threshold_key(method, &key));
                }
                "vetkd_public_key" | "vetkd_derive_key" => {
                    #[derive(candid::CandidType, candid::Deserialize)]
                    struct WithKey {
                        key_id: mgmt::VetKDKeyId,
                    }
                    let args: WithKey = decode(method, arg)?;
                    let key = format!("vetkd:Bls12_381_G2:{}", args.key_id.name);
                    return Err(errors::unknown_threshold_key(method, &key));
                }
                "raw_rand" => {
                    use rand::RngCore;
                    let mut bytes = vec![0u8; 32];
                    self.rng.fill_bytes(&mut bytes);
                    Handled::Done(Ok(encode(&bytes)))
                }
                "take_canister_snapshot" => {
                    let args: mgmt::TakeCanisterSnapshotArgs = decode(method, arg)?;
                    let origin = origin_of(req, args.sender_canister_version);
                    Handled::Done(Ok(encode(&self.take_snapshot(sender, args, origin)?)))
                }
                "load_canister_snapshot" => {
                    let args: mgmt::LoadCanisterSnapshotArgs = decode(method, arg)?;
                    let origin = origin_of(req, args.sender_canister_version);
                    self.load_snapshot(sender, args.canister_id, &args.snapshot_id, origin)?;
                    Handled::Done(Ok(encode(&())))
                }
                "list_canister_snapshots" => {
                    let args: mgmt::CanisterIdRecord = decode(method, arg)?;
                    self.controlled(args.canister_id, sender)?;
                    Handled::Done(Ok(encode(&self.list_snapshots(args.canister_id))))
                }
                "read_canister_snapshot_metadata" => {
                    let args: mgmt::ReadCanisterSnapshotMetadataArgs = decode(method, arg)?;
                    Handled::Done(Ok(encode(&self.read_snapshot_metadata(sender, &args)?)))
                }
                "read_canister_snapshot_data" => {
                    let args: mgmt::ReadCanisterSnapshotDataArgs = decode(method, arg)?;
                    Handled::Done(Ok(encode(&self.read_snapshot_data(sender, &args)?)))
                }
                "upload_canister_snapshot_metadata" => {
                    let args: mgmt::UploadCanisterSnapshotMetadataArgs = decode(method, arg)?;
                    Handled::Done(Ok(encode(&self.upload_snapshot_metadata(sender, args)?)))
                }
                "upload_canister_snapshot_data" => {
                    let args: mgmt::UploadCanisterSnapshotDataArgs = decode(method, arg)?;
                    self.upload_snapshot_data(sender, args)?;
                    Handled::Done(Ok(encode(&())))
                }
                "canister_info" => {
                    if !matches!(req.reply_to, ReplyTo::Canister { .. }) {
                        return Err(errors::only_canisters_can_call(method));
                    }
                    let args: mgmt::CanisterInfoArgs = decode(method, arg)?;
                    Handled::Done(Ok(encode(&self.canister_info(&args)?)))
                }
                "canister_metadata" => {
                    let args: mgmt::CanisterMetadataArgs = decode(method, arg)?;
                    Handled::Done(Ok(encode(&self.canister_metadata(sender, &args)?)))
                }
                "fetch_canister_logs" => {
                    // Replicated execution (an update call, or a canister's call) is refused:
                    // logs are served by query only.
                    return Err(errors::fetch_logs_replicated());
                }
                "delete_canister_snapshot" => {
                    let args: mgmt::DeleteCanisterSnapshotArgs = decode(method, arg)?;
                    self.controlled(args.canister_id, sender)?;
                    self.owned_snapshot(args.canister_id, &args.snapshot_id)?;
                    let canister = self.existing(args.canister_id)?;
                    canister.snapshots.remove(&args.snapshot_id);
                    Handled::Done(Ok(encode(&())))
                }
                "upload_chunk" => {
                    let args: mgmt::UploadChunkArgs = decode(method, arg)?;
                    self.controlled_or_self(args.canister_id, sender)?;
                    if args.chunk.len() > MAX_CHUNK_SIZE {
                        return Err(errors::chunk_too_large(args.chunk.len(), MAX_CHUNK_SIZE));
                    }
                    let hash: [u8; 32] = Sha256::digest(&args.chunk).into();
                    let canister = self.existing(args.canister_id)?;
                    if !canister.chunk_store.contains_key(&hash)
                        && canister.chunk_store.len() >= MAX_CHUNKS
                    {
                        return Err(errors::chunk_store_full(MAX_CHUNKS));
                    }
                    canister.chunk_store.insert(hash, args.chunk);
                    Handled::Done(Ok(encode(&mgmt::ChunkHash {
                        hash: hash.to_vec(),
                    })))
                }
                "stored_chunks" => {
                    let args: mgmt::CanisterIdRecord = decode(method, arg)?;
                    self.controlled_or_self(args.canister_id, sender)?;
                    let hashes: Vec<mgmt::ChunkHash> = self.canisters[&args.canister_id]
                        .chunk_store
                        .keys()
                        .map(|h| mgmt::ChunkHash { hash: h.to_vec() })
                        .collect();
                    Handled::Done(Ok(encode(&hashes)))
                }
                "clear_chunk_store" => {
                    let args: mgmt::CanisterIdRecord = decode(method, arg)?;
                    self.controlled_or_self(args.canister_id, sender)?;
                    self.existing(args.canister_id)?.chunk_store.clear();
                    Handled::Done(Ok(encode(&())))
                }
                other => return Err(errors::unknown_management_method(other)),
            })
        })();
        match outcome {
            Ok(handled) => (handled, refund),
            Err(reject) => (Handled::Done(Err(reject)), req.cycles),
        }
    }

    /// The canister exists and `sender` controls it (for methods that change nothing).
    pub(crate) fn controlled_ref(
        &self,
        id: Principal,
        sender: Principal,
    ) -> Result<(), RejectResponse> {
        let Some(canister) = self.canisters.get(&id) else {
            return Err(RejectResponse::new(
                ErrorCode::CanisterNotFound,
                errors::management_canister_not_found(id),
            ));
        };
        if canister.is_controller(&sender) {
            Ok(())
        } else {
            Err(errors::not_controller(id, &canister.controllers, sender))
        }
    }

    fn existing(&mut self, id: Principal) -> Result<&mut Canister, RejectResponse> {
        self.canisters.get_mut(&id).ok_or_else(|| {
            RejectResponse::new(
                ErrorCode::CanisterNotFound,
                errors::management_canister_not_found(id),
            )
        })
    }

    /// The canister exists and `sender` controls it.
    pub(crate) fn controlled(
        &mut self,
        id: Principal,
        sender: Principal,
    ) -> Result<(), RejectResponse> {
        let canister = self.existing(id)?;
        if canister.is_controller(&sender) {
            Ok(())
        } else {
            Err(errors::not_controller(id, &canister.controllers, sender))
        }
    }

    fn controlled_or_self(
        &mut self,
        id: Principal,
        sender: Principal,
    ) -> Result<(), RejectResponse> {
        if sender == id {
            return self.existing(id).map(|_| ());
        }
        self.controlled(id, sender)
    }

    /// The subnet a management request comes from: the calling canister's, or for ingress the
    /// one its effective principal names (the default subnet otherwise).
    fn origin_subnet(&self, req: &Request) -> usize {
        match &req.reply_to {
            ReplyTo::Canister { caller, .. } => self.canisters.get(caller).map(|c| c.subnet),
            _ => req.subnet_hint,
        }
        .unwrap_or_else(|| self.subnets.default_subnet())
    }
}

/// Who made a change, as the canister history records it: a user (ingress) or a canister with
/// the `sender_canister_version` it passed.
pub(crate) fn origin_of(req: &Request, sender_canister_version: Option<u64>) -> mgmt::ChangeOrigin {
    match req.reply_to {
        ReplyTo::Canister { .. } => mgmt::ChangeOrigin::FromCanister(mgmt::FromCanisterRecord {
            canister_id: req.sender,
            canister_version: sender_canister_version,
        }),
        _ => mgmt::ChangeOrigin::FromUser(mgmt::FromUserRecord {
            user_id: req.sender,
        }),
    }
}

/// Appends a change to the canister's history, at its current version.
pub(crate) fn record_change(
    canister: &mut Canister,
    time: u64,
    origin: mgmt::ChangeOrigin,
    details: mgmt::ChangeDetails,
) {
    canister.history.push(mgmt::Change {
        timestamp_nanos: time,
        canister_version: canister.version,
        origin,
        details: Some(details),
    });
}
