//! The management canister (`aaaaa-aa`): canister lifecycle, install_code with atomic upgrades,
//! stopping, canister_status, settings, snapshots and the chunk store, with the IC's caller checks
//! and error codes. Requests arrive through the same queue as every other message, from ingress
//! or from canisters.

use candid::{CandidType, Nat, Principal};
use ic_management_canister_types as mgmt;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::api_context::{ApiKind, Entry};
use crate::canister::{Canister, ExecState, ReplyTo, RunStatus, SnapshotData, StopRequest};
use crate::errors;
use crate::execution::Instance;
use crate::module;
use crate::state::{Outcome, Request, SimState};
use crate::types::{ErrorCode, RejectResponse};

/// Largest chunk upload_chunk accepts (1 MiB).
pub(crate) const MAX_CHUNK_SIZE: usize = 1024 * 1024;
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

/// Snapshot ids: the owner's principal bytes followed by an 8-byte big-endian counter.
fn snapshot_id(owner: Principal, counter: u64) -> Vec<u8> {
    let mut id = owner.as_slice().to_vec();
    id.extend_from_slice(&counter.to_be_bytes());
    id
}

fn snapshot_owner(id: &[u8]) -> Option<Principal> {
    (id.len() > 8)
        .then(|| Principal::try_from_slice(&id[..id.len() - 8]).ok())
        .flatten()
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
                    let cycles = if matches!(req.reply_to, ReplyTo::Canister { .. }) {
                        let fee = self.config.fees.canister_creation;
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
                        req.cycles - fee
                    } else {
                        DEFAULT_PROVISIONAL_CYCLES
                    };
                    let id = self.create_with_settings(sender, args.settings, cycles)?;
                    Handled::Done(Ok(encode(&mgmt::CanisterIdRecord { canister_id: id })))
                }
                "provisional_create_canister_with_cycles" => {
                    let args: mgmt::ProvisionalCreateCanisterWithCyclesArgs = decode(method, arg)?;
                    let cycles = args
                        .amount
                        .as_ref()
                        .map_or(DEFAULT_PROVISIONAL_CYCLES, nat_to_u128);
                    let id = self.create_with_settings(sender, args.settings, cycles)?;
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
                    self.apply_settings(args.canister_id, &args.settings)?;
                    Handled::Done(Ok(encode(&())))
                }
                "install_code" => {
                    let args: mgmt::InstallCodeArgs = decode(method, arg)?;
                    self.install_code(
                        sender,
                        args.canister_id,
                        args.mode,
                        &args.wasm_module,
                        args.arg,
                    )?;
                    Handled::Done(Ok(encode(&())))
                }
                "install_chunked_code" => {
                    let args: mgmt::InstallChunkedCodeArgs = decode(method, arg)?;
                    self.install_chunked_code(sender, args)?;
                    Handled::Done(Ok(encode(&())))
                }
                "uninstall_code" => {
                    let args: mgmt::UninstallCodeArgs = decode(method, arg)?;
                    self.controlled(args.canister_id, sender)?;
                    self.uninstall(args.canister_id);
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
                    Handled::Done(Ok(encode(&StatusReply::from(status_of(canister)))))
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
                "raw_rand" => {
                    use rand::RngCore;
                    let mut bytes = vec![0u8; 32];
                    self.rng.fill_bytes(&mut bytes);
                    Handled::Done(Ok(encode(&bytes)))
                }
                "take_canister_snapshot" => {
                    let args: mgmt::TakeCanisterSnapshotArgs = decode(method, arg)?;
                    Handled::Done(Ok(encode(&self.take_snapshot(sender, args)?)))
                }
                "load_canister_snapshot" => {
                    let args: mgmt::LoadCanisterSnapshotArgs = decode(method, arg)?;
                    self.load_snapshot(sender, args.canister_id, &args.snapshot_id)?;
                    Handled::Done(Ok(encode(&())))
                }
                "list_canister_snapshots" => {
                    let args: mgmt::CanisterIdRecord = decode(method, arg)?;
                    self.controlled(args.canister_id, sender)?;
                    let list: Vec<mgmt::Snapshot> = self.canisters[&args.canister_id]
                        .snapshots
                        .iter()
                        .map(|(id, s)| mgmt::Snapshot {
                            id: id.clone(),
                            taken_at_timestamp: s.taken_at,
                            total_size: s.total_size(),
                        })
                        .collect();
                    Handled::Done(Ok(encode(&list)))
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

    fn create_with_settings(
        &mut self,
        sender: Principal,
        settings: Option<mgmt::CanisterSettings>,
        cycles: u128,
    ) -> Result<Principal, RejectResponse> {
        let controllers = settings
            .as_ref()
            .and_then(|s| s.controllers.clone())
            .unwrap_or_else(|| vec![sender]);
        check_controllers(&controllers)?;
        let id = self.new_canister(controllers, cycles);
        if let Some(settings) = settings {
            self.apply_settings(id, &settings)?;
        }
        Ok(id)
    }

    fn apply_settings(
        &mut self,
        id: Principal,
        settings: &mgmt::CanisterSettings,
    ) -> Result<(), RejectResponse> {
        if let Some(controllers) = &settings.controllers {
            check_controllers(controllers)?;
        }
        let canister = self.existing(id)?;
        if let Some(controllers) = &settings.controllers {
            canister.controllers = controllers.clone();
        }
        let s = &mut canister.settings;
        if let Some(v) = &settings.compute_allocation {
            s.compute_allocation = nat_to_u64(v);
        }
        if let Some(v) = &settings.memory_allocation {
            s.memory_allocation = nat_to_u64(v);
        }
        if let Some(v) = &settings.freezing_threshold {
            s.freezing_threshold = nat_to_u64(v);
        }
        if let Some(v) = &settings.reserved_cycles_limit {
            s.reserved_cycles_limit = nat_to_u128(v);
        }
        if let Some(v) = &settings.wasm_memory_limit {
            s.wasm_memory_limit = nat_to_u64(v);
        }
        if let Some(v) = &settings.wasm_memory_threshold {
            s.wasm_memory_threshold = nat_to_u64(v);
        }
        if let Some(v) = &settings.log_visibility {
            s.log_visibility = v.clone();
        }
        Ok(())
    }

    // --- install -------------------------------------------------------------------------------------

    /// install_code: install, reinstall or upgrade, atomically: any trap or overrun in
    /// pre_upgrade, start, init or post_upgrade leaves the old module and all state in place.
    pub(crate) fn install_code(
        &mut self,
        sender: Principal,
        id: Principal,
        mode: mgmt::CanisterInstallMode,
        wasm: &[u8],
        arg: Vec<u8>,
    ) -> Result<(), RejectResponse> {
        self.controlled(id, sender)?;
        let module = module::load(wasm).map_err(|e| errors::invalid_wasm(id, &e.0, e.1))?;
        let mut canister = self.canisters.remove(&id).expect("checked by controlled()");
        let result = self.install_into(&mut canister, sender, mode, module, arg);
        self.canisters.insert(id, canister);
        result
    }

    fn install_into(
        &mut self,
        canister: &mut Canister,
        sender: Principal,
        mode: mgmt::CanisterInstallMode,
        module: std::sync::Arc<module::CompiledModule>,
        arg: Vec<u8>,
    ) -> Result<(), RejectResponse> {
        use mgmt::CanisterInstallMode as Mode;
        let id = canister.id;
        let limit = self.config.instruction_limit_install;
        let upgrade_flags = match mode {
            Mode::Install if canister.exec.is_some() => return Err(errors::not_empty(id)),
            Mode::Upgrade(_) if canister.exec.is_none() => {
                return Err(RejectResponse::new(
                    ErrorCode::CanisterWasmModuleNotFound,
                    errors::no_wasm_module(id),
                ));
            }
            Mode::Upgrade(flags) => Some(flags.unwrap_or_default()),
            Mode::Install | Mode::Reinstall => None,
        };
        if upgrade_flags
            .is_some_and(|f| f.wasm_memory_persistence == Some(mgmt::WasmMemoryPersistence::Keep))
        {
            return Err(errors::invalid_upgrade_option());
        }
        let saved_timer = canister.global_timer;
        let saved_certified = canister.certified_data.clone();
        let mut used = 0u64;
        // Upgrade: run pre_upgrade on the old code; keep what is needed to undo it.
        let mut rollback = None;
        let mut stable = Vec::new();
        if let Some(flags) = upgrade_flags {
            let mut old = canister
                .exec
                .take()
                .expect("upgrade of an installed canister");
            let image = old.instance.image();
            let old_stable = old.stable.clone();
            let skip = flags.skip_pre_upgrade == Some(true);
            if !skip && old.instance.module.exports_function("canister_pre_upgrade") {
                let mut ctx = self.base_ctx(canister, ApiKind::PreUpgrade);
                ctx.caller = sender;
                let inv = self.execute(
                    canister,
                    &mut old,
                    ctx,
                    &Entry::Export("canister_pre_upgrade".into()),
                    limit,
                );
                used += inv.instructions;
                if let Err(trap) = inv.result {
                    canister.exec = Some(old);
                    return Err(errors::trap(id, &trap, limit));
                }
            }
            stable = old.stable.clone();
            rollback = Some((old, image, old_stable));
        }
        let undo = |canister: &mut Canister, rollback: Option<(ExecState, _, Vec<u8>)>| {
            canister.global_timer = saved_timer;
            canister.certified_data = saved_certified.clone();
            if let Some((mut old, image, old_stable)) = rollback {
                old.instance
                    .restore(&image)
                    .expect("restoring the heap of an installed module");
                old.stable = old_stable;
                canister.exec = Some(old);
            }
        };
        let instance = match Instance::new(module, self.config.fees.clone()) {
            Ok(instance) => instance,
            Err(reason) => {
                undo(canister, rollback);
                return Err(errors::invalid_wasm(id, &reason, None));
            }
        };
        let mut new = ExecState { instance, stable };
        // The global timer is reset by install and upgrade; init/post_upgrade may set it again.
        canister.global_timer = 0;
        if upgrade_flags.is_none() {
            canister.certified_data.clear();
        }
        let hook = if upgrade_flags.is_some() {
            "canister_post_upgrade"
        } else {
            "canister_init"
        };
        let mut hooks = Vec::new();
        if new.instance.module.has_start {
            hooks.push((ApiKind::Start, "__sim_start"));
        }
        if new.instance.module.exports_function(hook) {
            hooks.push((ApiKind::Init, hook));
        }
        for (kind, export) in hooks {
            let mut ctx = self.base_ctx(canister, kind);
            ctx.caller = sender;
            ctx.arg = arg.clone();
            let inv = self.execute(
                canister,
                &mut new,
                ctx,
                &Entry::Export(export.into()),
                limit - used.min(limit),
            );
            used += inv.instructions;
            if let Err(trap) = inv.result {
                undo(canister, rollback);
                return Err(errors::trap(id, &trap, limit));
            }
        }
        canister.exec = Some(new);
        canister.version += 1;
        Ok(())
    }

    fn install_chunked_code(
        &mut self,
        sender: Principal,
        args: mgmt::InstallChunkedCodeArgs,
    ) -> Result<(), RejectResponse> {
        let target = args.target_canister;
        let store = args.store_canister.unwrap_or(target);
        self.controlled(target, sender)?;
        let Some(store_canister) = self.canisters.get(&store) else {
            return Err(RejectResponse::new(
                ErrorCode::CanisterNotFound,
                format!(
                    "InstallChunkedCode Error: Store canister {store} was not found on subnet {} of target canister {target}",
                    self.subnet_id
                ),
            ));
        };
        if store != target && !store_canister.is_controller(&sender) && sender != store {
            return Err(errors::not_controller(
                store,
                &store_canister.controllers,
                sender,
            ));
        }
        let mut wasm = Vec::new();
        for chunk in &args.chunk_hashes_list {
            let Ok(hash) = <[u8; 32]>::try_from(chunk.hash.as_slice()) else {
                return Err(errors::chunk_hash_invalid());
            };
            let Some(bytes) = store_canister.chunk_store.get(&hash) else {
                return Err(errors::chunk_not_found(&hash));
            };
            wasm.extend_from_slice(bytes);
        }
        let actual: [u8; 32] = Sha256::digest(&wasm).into();
        if actual.as_slice() != args.wasm_module_hash.as_slice() {
            return Err(errors::chunked_hash_mismatch(
                &actual,
                &args.wasm_module_hash,
            ));
        }
        self.install_code(sender, target, args.mode, &wasm, args.arg)
    }

    /// uninstall_code: drops code and data; open call contexts are rejected.
    pub(crate) fn uninstall(&mut self, id: Principal) {
        let Some(canister) = self.canisters.get_mut(&id) else {
            return;
        };
        canister.exec = None;
        canister.certified_data.clear();
        canister.global_timer = 0;
        canister.version += 1;
        canister.callbacks.clear();
        let contexts = std::mem::take(&mut canister.call_contexts);
        for cc in contexts.into_values() {
            if !cc.responded && cc.reply_to != ReplyTo::System {
                let reject =
                    RejectResponse::new(ErrorCode::CanisterRejectedMessage, errors::uninstalled());
                self.respond(id, cc.reply_to, Err(reject), cc.cycles_available);
            }
        }
    }

    fn start(&mut self, id: Principal) {
        let canister = self.canisters.get_mut(&id).expect("checked");
        let previous = std::mem::replace(&mut canister.status, RunStatus::Running);
        if let RunStatus::Stopping(requests) = previous {
            for request in requests {
                let reject = errors::stop_cancelled(&request.reply_to, id);
                self.respond(
                    Principal::management_canister(),
                    request.reply_to,
                    Err(reject),
                    0,
                );
            }
        }
    }

    // --- snapshots ------------------------------------------------------------------------------------

    fn owned_snapshot(&self, id: Principal, snapshot: &[u8]) -> Result<(), RejectResponse> {
        if snapshot_owner(snapshot).is_some_and(|owner| owner != id) {
            return Err(errors::snapshot_not_owned(id, snapshot));
        }
        if !self.canisters[&id].snapshots.contains_key(snapshot) {
            return Err(errors::snapshot_not_found(id, snapshot));
        }
        Ok(())
    }

    fn take_snapshot(
        &mut self,
        sender: Principal,
        args: mgmt::TakeCanisterSnapshotArgs,
    ) -> Result<mgmt::Snapshot, RejectResponse> {
        let id = args.canister_id;
        self.controlled(id, sender)?;
        if self.canisters[&id].exec.is_none() {
            return Err(errors::snapshot_of_empty(id));
        }
        if let Some(replace) = &args.replace_snapshot {
            self.owned_snapshot(id, replace)?;
        } else if self.canisters[&id].snapshots.len() >= MAX_SNAPSHOTS {
            return Err(errors::snapshot_limit(id, MAX_SNAPSHOTS));
        }
        let time = self.time;
        let canister = self.canisters.get_mut(&id).expect("checked");
        if let Some(replace) = &args.replace_snapshot {
            canister.snapshots.remove(replace);
        }
        let exec = canister.exec.as_mut().expect("checked");
        let data = SnapshotData {
            taken_at: time,
            module: exec.instance.module.clone(),
            heap: exec.instance.image(),
            stable: exec.stable.clone(),
            certified_data: canister.certified_data.clone(),
            chunk_store: canister.chunk_store.clone(),
        };
        canister.next_snapshot += 1;
        let snapshot_id = snapshot_id(id, canister.next_snapshot);
        let snapshot = mgmt::Snapshot {
            id: snapshot_id.clone(),
            taken_at_timestamp: time,
            total_size: data.total_size(),
        };
        canister.snapshots.insert(snapshot_id, data);
        if args.uninstall_code == Some(true) {
            self.uninstall(id);
        }
        Ok(snapshot)
    }

    fn load_snapshot(
        &mut self,
        sender: Principal,
        id: Principal,
        snapshot: &[u8],
    ) -> Result<(), RejectResponse> {
        self.controlled(id, sender)?;
        self.owned_snapshot(id, snapshot)?;
        let fees = self.config.fees.clone();
        let canister = self.canisters.get_mut(&id).expect("checked");
        let data = canister.snapshots[snapshot].clone();
        let mut instance = Instance::new(data.module.clone(), fees)
            .map_err(|e| errors::invalid_wasm(id, &e, None))?;
        instance
            .restore(&data.heap)
            .map_err(|e| errors::invalid_wasm(id, &e, None))?;
        canister.exec = Some(ExecState {
            instance,
            stable: data.stable,
        });
        canister.certified_data = data.certified_data;
        canister.chunk_store = data.chunk_store;
        canister.version += 1;
        Ok(())
    }
}

fn check_controllers(controllers: &[Principal]) -> Result<(), RejectResponse> {
    if controllers.len() > MAX_CONTROLLERS {
        return Err(RejectResponse::new(
            ErrorCode::CanisterContractViolation,
            format!(
                "Could not validate the settings: Invalid settings: 'controllers' length exceeds maximum size allowed of {MAX_CONTROLLERS}."
            ),
        ));
    }
    Ok(())
}

/// The canister_status record, as ic-management-canister-types (and so ic-cdk) decodes it.
pub(crate) fn status_of(canister: &Canister) -> mgmt::CanisterStatusResult {
    let s = &canister.settings;
    let (heap, stable, binary, custom) = canister.exec.as_ref().map_or((0, 0, 0, 0), |e| {
        let custom: usize = e
            .instance
            .module
            .custom_sections
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        (
            e.instance.heap_size(),
            e.stable.len(),
            e.instance.module.uploaded_size,
            custom,
        )
    });
    let chunks: usize = canister.chunk_store.values().map(Vec::len).sum();
    let snapshots: u64 = canister
        .snapshots
        .values()
        .map(SnapshotData::total_size)
        .sum();
    mgmt::CanisterStatusResult {
        status: match canister.status {
            RunStatus::Running => mgmt::CanisterStatusType::Running,
            RunStatus::Stopping(_) => mgmt::CanisterStatusType::Stopping,
            RunStatus::Stopped => mgmt::CanisterStatusType::Stopped,
        },
        ready_for_migration: false,
        version: canister.version,
        settings: mgmt::DefiniteCanisterSettings {
            controllers: canister.controllers.clone(),
            compute_allocation: nat(s.compute_allocation),
            memory_allocation: nat(s.memory_allocation),
            freezing_threshold: nat(s.freezing_threshold),
            reserved_cycles_limit: nat(s.reserved_cycles_limit),
            log_visibility: s.log_visibility.clone(),
            log_memory_limit: nat(4096u64),
            snapshot_visibility: mgmt::SnapshotVisibility::Controllers,
            wasm_memory_limit: nat(s.wasm_memory_limit),
            wasm_memory_threshold: nat(s.wasm_memory_threshold),
            environment_variables: Vec::new(),
        },
        module_hash: canister.module_hash().map(|h| h.to_vec()),
        memory_size: nat(canister.memory_size()),
        memory_metrics: mgmt::MemoryMetrics {
            wasm_memory_size: nat(heap as u64),
            stable_memory_size: nat(stable as u64),
            global_memory_size: nat(0u64),
            wasm_binary_size: nat(binary as u64),
            custom_sections_size: nat(custom as u64),
            canister_history_size: nat(0u64),
            wasm_chunk_store_size: nat(chunks as u64),
            snapshots_size: nat(snapshots),
            log_memory_store_size: nat(0u64),
        },
        cycles: nat(canister.cycles),
        reserved_cycles: nat(0u64),
        idle_cycles_burned_per_day: nat(0u64),
        query_stats: mgmt::QueryStats {
            num_calls_total: nat(0u64),
            num_instructions_total: nat(0u64),
            request_payload_bytes_total: nat(0u64),
            response_payload_bytes_total: nat(0u64),
        },
    }
}

/// What `canister_status` answers: [`status_of`] plus the settings the current interface added
/// after `ic-management-canister-types` 0.8 (`minimum_incoming_canister_call_cycles`,
/// `status_visibility`; icp-cli 1.5 requires them). A superset decodes as the older record too.
#[derive(candid::CandidType)]
struct StatusReply {
    status: mgmt::CanisterStatusType,
    ready_for_migration: bool,
    version: u64,
    settings: SettingsReply,
    module_hash: Option<Vec<u8>>,
    memory_size: candid::Nat,
    memory_metrics: mgmt::MemoryMetrics,
    cycles: candid::Nat,
    reserved_cycles: candid::Nat,
    idle_cycles_burned_per_day: candid::Nat,
    query_stats: mgmt::QueryStats,
}

#[derive(candid::CandidType)]
struct SettingsReply {
    controllers: Vec<Principal>,
    compute_allocation: candid::Nat,
    memory_allocation: candid::Nat,
    freezing_threshold: candid::Nat,
    reserved_cycles_limit: candid::Nat,
    log_visibility: mgmt::LogVisibility,
    log_memory_limit: candid::Nat,
    snapshot_visibility: mgmt::SnapshotVisibility,
    /// Same variant as `snapshot_visibility`; controllers only, as on a new canister.
    status_visibility: mgmt::SnapshotVisibility,
    wasm_memory_limit: candid::Nat,
    wasm_memory_threshold: candid::Nat,
    environment_variables: Vec<mgmt::EnvironmentVariable>,
    /// No minimum: the simulator does not model the charge for incoming calls.
    minimum_incoming_canister_call_cycles: candid::Nat,
}

impl From<mgmt::CanisterStatusResult> for StatusReply {
    fn from(r: mgmt::CanisterStatusResult) -> Self {
        let s = r.settings;
        StatusReply {
            status: r.status,
            ready_for_migration: r.ready_for_migration,
            version: r.version,
            settings: SettingsReply {
                controllers: s.controllers,
                compute_allocation: s.compute_allocation,
                memory_allocation: s.memory_allocation,
                freezing_threshold: s.freezing_threshold,
                reserved_cycles_limit: s.reserved_cycles_limit,
                log_visibility: s.log_visibility,
                log_memory_limit: s.log_memory_limit,
                snapshot_visibility: s.snapshot_visibility,
                status_visibility: mgmt::SnapshotVisibility::Controllers,
                wasm_memory_limit: s.wasm_memory_limit,
                wasm_memory_threshold: s.wasm_memory_threshold,
                environment_variables: s.environment_variables,
                minimum_incoming_canister_call_cycles: candid::Nat::from(0u8),
            },
            module_hash: r.module_hash,
            memory_size: r.memory_size,
            memory_metrics: r.memory_metrics,
            cycles: r.cycles,
            reserved_cycles: r.reserved_cycles,
            idle_cycles_burned_per_day: r.idle_cycles_burned_per_day,
            query_stats: r.query_stats,
        }
    }
}
