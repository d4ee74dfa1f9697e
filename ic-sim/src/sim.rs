//! [`Sim`]: the simulator's public API, following the `pocket-ic` crate's `PocketIc` (same method
//! names, argument and result types), plus what only a simulator can offer: fault injection and
//! introspection.

use std::cell::RefCell;
use std::time::Duration;

use candid::{CandidType, Principal};
use ic_management_canister_types as mgmt;

use crate::canister::ExecutionStats;
use crate::canister::ReplyTo;
use crate::config::SimConfig;
use crate::errors;
use crate::faults::Fault;
use crate::fees::CyclesCharged;
use crate::management::DEFAULT_PROVISIONAL_CYCLES;
use crate::queues::{Destination, Source};
use crate::state::{Message, Request, SimState};
use crate::subnet::{SubnetInfo, SubnetKind};
use crate::types::{ErrorCode, RawMessageId, RejectResponse, Time};
use sha2::Digest;

/// An in-process Internet Computer subnet running real canister Wasm.
///
/// All methods take `&self`, as `PocketIc`'s do. Time moves only when the test says so:
/// [`Sim::advance_time`] and [`Sim::set_time`] set the next round's time; otherwise each round
/// ([`Sim::tick`]) runs one nanosecond after the previous one. [`Sim::get_time`] is the last
/// round's time (or the time set since), as in PocketIC.
pub struct Sim {
    pub(crate) state: RefCell<SimState>,
}

impl Default for Sim {
    fn default() -> Self {
        Self::new()
    }
}

impl Sim {
    /// A subnet with seed 0 and the IC's limits.
    pub fn new() -> Self {
        Self::with_config(SimConfig::default())
    }

    /// A subnet with the given settings.
    pub fn with_config(config: SimConfig) -> Self {
        Self {
            state: RefCell::new(SimState::new(config)),
        }
    }

    /// The seed this subnet was created with.
    pub fn seed(&self) -> u64 {
        self.state.borrow().config.seed
    }

    // --- time and rounds -------------------------------------------------------------------------

    /// Executes one round.
    pub fn tick(&self) {
        self.state.borrow_mut().tick();
    }

    /// Whether another round could change anything right now (queued messages, a due timer or
    /// heartbeat, an expired deadline). Not in PocketIC's API.
    pub fn has_work(&self) -> bool {
        self.state.borrow().has_work()
    }

    /// When nothing is due, moves time forward to the next scheduled event (a global timer, a
    /// call deadline, a stop timeout) or by `at_most`, whichever comes first, without executing
    /// a round; answers whether time moved. For stepping one round at a time through idle
    /// stretches, so a test sees the state between any two rounds. Not in PocketIC's API.
    pub fn skip_idle_time(&self, at_most: Duration) -> bool {
        let mut state = self.state.borrow_mut();
        if state.has_work() {
            return false;
        }
        let next = state.next_round_time();
        let limit = state.time + at_most.as_nanos() as u64;
        let to = state.next_event_time().map_or(limit, |t| t.min(limit));
        let moved = to > next;
        if moved {
            state.set_next_round_time(to);
        }
        moved
    }

    /// Runs rounds until nothing is due, then jumps time to the next scheduled event (a global
    /// timer, a call deadline, a stop timeout), repeatedly, until `duration` has passed. Returns
    /// the rounds executed. Time never jumps past a due event. Rounds that execute queued
    /// messages follow each other 1 ns apart; any other round (timers, heartbeats, deadlines)
    /// comes no sooner than [`SimConfig::min_round_interval`] after the previous one, as blocks
    /// do on the IC, so a canister that re-arms its timer for "now" costs one round per block
    /// instead of one per nanosecond. Not in PocketIC's API.
    pub fn run_for(&self, duration: Duration) -> u64 {
        let end = self.state.borrow().time + duration.as_nanos() as u64;
        let mut rounds = 0;
        loop {
            while self.state.borrow().has_work() {
                let mut state = self.state.borrow_mut();
                let at = state.next_busy_round_time();
                if at > end {
                    state.set_next_round_time(end);
                    return rounds;
                }
                state.set_next_round_time(at);
                drop(state);
                self.tick();
                rounds += 1;
                if self.state.borrow().time >= end {
                    return rounds;
                }
            }
            let mut state = self.state.borrow_mut();
            match state.next_event_time().map(|t| state.paced_round_time(t)) {
                Some(t) if t <= end => {
                    state.set_next_round_time(t);
                    drop(state);
                    self.tick();
                    rounds += 1;
                }
                _ => {
                    state.set_next_round_time(end);
                    return rounds;
                }
            }
        }
    }

    /// The current time: the last round's, or the time set for the next round.
    pub fn get_time(&self) -> Time {
        Time::from_nanos_since_unix_epoch(self.state.borrow().time)
    }

    /// Sets the time. Time on the IC never goes backwards, so an earlier time is refused.
    ///
    /// # Panics
    /// If `time` is before the current time.
    pub fn set_time(&self, time: Time) {
        let mut state = self.state.borrow_mut();
        let nanos = time.as_nanos_since_unix_epoch();
        assert!(
            nanos >= state.time,
            "set_time: SettingTimeIntoPast: time cannot go backwards on the IC"
        );
        state.set_next_round_time(nanos);
    }

    /// Moves time forward (no round is executed: call [`Sim::tick`] for due timers to fire).
    pub fn advance_time(&self, duration: Duration) {
        let mut state = self.state.borrow_mut();
        let to = state.time
            + u64::try_from(duration.as_nanos()).expect("duration fits in u64 nanoseconds");
        state.set_next_round_time(to);
    }

    // --- canisters --------------------------------------------------------------------------------

    /// Creates a canister controlled by the anonymous principal, with 100 T cycles.
    pub fn create_canister(&self) -> Principal {
        self.create_canister_with_settings(None, None)
    }

    /// Creates a canister with `settings`; controllers default to `[sender]` (anonymous if none).
    pub fn create_canister_with_settings(
        &self,
        sender: Option<Principal>,
        settings: Option<mgmt::CanisterSettings>,
    ) -> Principal {
        let args = mgmt::ProvisionalCreateCanisterWithCyclesArgs {
            amount: Some(DEFAULT_PROVISIONAL_CYCLES.into()),
            settings,
            specified_id: None,
            sender_canister_version: None,
        };
        let reply = self
            .management_call(sender, "provisional_create_canister_with_cycles", &args)
            .unwrap_or_else(|e| panic!("create_canister failed: {e}"));
        candid::decode_one::<mgmt::CanisterIdRecord>(&reply)
            .expect("create_canister replies a canister id")
            .canister_id
    }

    /// Creates a canister on the subnet `subnet_id` (as `create_canister_with_settings` does on
    /// the default subnet).
    ///
    /// # Panics
    /// If there is no such subnet or the creation is rejected.
    pub fn create_canister_on_subnet(
        &self,
        sender: Option<Principal>,
        settings: Option<mgmt::CanisterSettings>,
        subnet_id: Principal,
    ) -> Principal {
        let subnet = self
            .state
            .borrow()
            .subnets
            .by_id(subnet_id)
            .unwrap_or_else(|| panic!("create_canister_on_subnet: no subnet {subnet_id}"));
        let args = mgmt::ProvisionalCreateCanisterWithCyclesArgs {
            amount: Some(DEFAULT_PROVISIONAL_CYCLES.into()),
            settings,
            specified_id: None,
            sender_canister_version: None,
        };
        let reply = self
            .management_call_on(
                Some(subnet),
                sender,
                "provisional_create_canister_with_cycles",
                &args,
            )
            .unwrap_or_else(|e| panic!("create_canister_on_subnet failed: {e}"));
        decode::<mgmt::CanisterIdRecord>(&reply).canister_id
    }

    /// Creates a canister with the given id (`specified_id` of provisional creation); an id
    /// outside every subnet gets a new application subnet, as PocketIC does. Errors as the
    /// replica words them (id taken, id in an allocation range).
    pub fn create_canister_with_id(
        &self,
        sender: Option<Principal>,
        settings: Option<mgmt::CanisterSettings>,
        canister_id: Principal,
    ) -> Result<Principal, String> {
        let args = mgmt::ProvisionalCreateCanisterWithCyclesArgs {
            amount: Some(DEFAULT_PROVISIONAL_CYCLES.into()),
            settings,
            specified_id: Some(canister_id),
            sender_canister_version: None,
        };
        self.management_call(sender, "provisional_create_canister_with_cycles", &args)
            .map(|reply| decode::<mgmt::CanisterIdRecord>(&reply).canister_id)
            .map_err(|e| format!("{e:?}"))
    }

    // --- subnets ---------------------------------------------------------------------------------

    /// The subnets, in creation order.
    pub fn subnets(&self) -> Vec<SubnetInfo> {
        self.state
            .borrow()
            .subnets
            .all
            .iter()
            .map(|s| s.info())
            .collect()
    }

    /// Adds a subnet of `kind`; returns its id.
    pub fn add_subnet(&self, kind: SubnetKind) -> Principal {
        let mut state = self.state.borrow_mut();
        let index = state.add_subnet(kind, None);
        state.subnets.all[index].id
    }

    /// The subnet hosting an existing canister.
    pub fn get_subnet(&self, canister_id: Principal) -> Option<Principal> {
        let state = self.state.borrow();
        let canister = state.canisters.get(&canister_id)?;
        Some(state.subnets.all[canister.subnet].id)
    }

    /// A digest of every execution so far (canister, entry point, time, trapped or not), in
    /// order: equal digests mean the same messages ran in the same order. Not in PocketIC's API.
    pub fn trace_digest(&self) -> String {
        self.state.borrow().trace.digest()
    }

    /// How many executions ran so far. Not in PocketIC's API.
    pub fn executions(&self) -> u64 {
        self.state.borrow().trace.executions
    }

    /// Whether the canister exists.
    pub fn canister_exists(&self, canister_id: Principal) -> bool {
        self.state.borrow().canisters.contains_key(&canister_id)
    }

    /// Adds cycles; returns the new balance.
    ///
    /// # Panics
    /// If the canister does not exist.
    pub fn add_cycles(&self, canister_id: Principal, amount: u128) -> u128 {
        let mut state = self.state.borrow_mut();
        let canister = state
            .canisters
            .get_mut(&canister_id)
            .unwrap_or_else(|| panic!("add_cycles: canister {canister_id} does not exist"));
        canister.cycles += amount;
        canister.cycles
    }

    /// Burns up to `amount` of the canister's cycles as its own code would with
    /// `ic0.cycles_burn128`: never below its freezing threshold, so the canister is left at the
    /// threshold at most (then frozen: it cannot prepay an execution). A drain from the outside
    /// that the IC would not allow (below the threshold) is left to time: storage is charged
    /// down to zero and a canister that cannot pay is uninstalled. Answers the cycles burned
    /// (0 for a canister that does not exist).
    ///
    /// The rule is the one ic-sim's `ic0.cycles_burn128` follows (`system_api.rs`), from the
    /// interface spec: "burns no more than the amount of cycles available above the freezing
    /// threshold".
    pub fn burn_cycles(&self, canister_id: Principal, amount: u128) -> u128 {
        let mut state = self.state.borrow_mut();
        let Some(threshold) = state
            .canisters
            .get(&canister_id)
            .map(|c| state.freezing_threshold_of(c))
        else {
            return 0;
        };
        let canister = state.canisters.get_mut(&canister_id).expect("looked up");
        let burned = amount.min(canister.cycles.saturating_sub(threshold));
        canister.cycles -= burned;
        burned
    }

    /// The cycle balance (0 for a canister that does not exist).
    pub fn cycle_balance(&self, canister_id: Principal) -> u128 {
        self.state
            .borrow()
            .canisters
            .get(&canister_id)
            .map_or(0, |c| c.cycles)
    }

    /// The controllers (empty for a canister that does not exist).
    pub fn get_controllers(&self, canister_id: Principal) -> Vec<Principal> {
        self.state
            .borrow()
            .canisters
            .get(&canister_id)
            .map_or_else(Vec::new, |c| c.controllers.clone())
    }

    // --- code ---------------------------------------------------------------------------------------

    /// Installs code, panicking on failure (as `PocketIc::install_canister` does). A module of
    /// 2 MB or more goes through the chunk store (upload_chunk, install_chunked_code).
    ///
    /// # Panics
    /// If the install is rejected.
    pub fn install_canister(
        &self,
        canister_id: Principal,
        wasm_module: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) {
        if let Err(e) = self.install_code(
            mgmt::CanisterInstallMode::Install,
            canister_id,
            wasm_module,
            arg,
            sender,
        ) {
            panic!("install_canister failed: {e}");
        }
    }

    /// Upgrades the code (pre_upgrade, then post_upgrade of the new module), atomically.
    pub fn upgrade_canister(
        &self,
        canister_id: Principal,
        wasm_module: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.install_code(
            mgmt::CanisterInstallMode::Upgrade(None),
            canister_id,
            wasm_module,
            arg,
            sender,
        )
    }

    /// Reinstalls the code (all state is replaced).
    pub fn reinstall_canister(
        &self,
        canister_id: Principal,
        wasm_module: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.install_code(
            mgmt::CanisterInstallMode::Reinstall,
            canister_id,
            wasm_module,
            arg,
            sender,
        )
    }

    /// install_code in any mode, returning the rejection instead of panicking.
    pub fn install_code(
        &self,
        mode: mgmt::CanisterInstallMode,
        canister_id: Principal,
        wasm_module: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        // A module too large for one ingress message goes in chunks through the canister's own
        // chunk store, as the pocket-ic client does (its INSTALL_CHUNKED_CODE_THRESHOLD).
        const CHUNKED_THRESHOLD: usize = 2_000_000;
        if wasm_module.len() + arg.len() >= CHUNKED_THRESHOLD {
            self.clear_chunk_store(canister_id, sender)?;
            let mut hashes = Vec::new();
            for chunk in wasm_module.chunks(crate::management::MAX_CHUNK_SIZE) {
                hashes.push(self.upload_chunk(canister_id, sender, chunk.to_vec())?);
            }
            let hash = sha2::Sha256::digest(&wasm_module).to_vec();
            return self.install_chunked_canister(
                canister_id,
                sender,
                mode,
                canister_id,
                hashes,
                hash,
                arg,
            );
        }
        let args = mgmt::InstallCodeArgs {
            mode,
            canister_id,
            wasm_module,
            arg,
            sender_canister_version: None,
        };
        self.management_call(sender, "install_code", &args)
            .map(drop)
    }

    /// Removes code and state; open call contexts are rejected.
    pub fn uninstall_canister(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        let args = mgmt::UninstallCodeArgs {
            canister_id,
            sender_canister_version: None,
        };
        self.management_call(sender, "uninstall_code", &args)
            .map(drop)
    }

    /// Uploads a chunk (at most 1 MiB) to the canister's chunk store; returns its SHA-256.
    pub fn upload_chunk(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
        chunk: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        let reply = self.management_call(
            sender,
            "upload_chunk",
            &mgmt::UploadChunkArgs { canister_id, chunk },
        )?;
        Ok(decode::<mgmt::ChunkHash>(&reply).hash)
    }

    /// The hashes of the chunks in the store.
    pub fn stored_chunks(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<Vec<Vec<u8>>, RejectResponse> {
        let reply = self.management_call(
            sender,
            "stored_chunks",
            &mgmt::CanisterIdRecord { canister_id },
        )?;
        Ok(decode::<Vec<mgmt::ChunkHash>>(&reply)
            .into_iter()
            .map(|c| c.hash)
            .collect())
    }

    /// Empties the chunk store.
    pub fn clear_chunk_store(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.management_call(
            sender,
            "clear_chunk_store",
            &mgmt::CanisterIdRecord { canister_id },
        )
        .map(drop)
    }

    /// Installs code assembled from chunks of `store_canister_id`'s chunk store.
    #[allow(clippy::too_many_arguments)]
    pub fn install_chunked_canister(
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
        self.management_call(sender, "install_chunked_code", &args)
            .map(drop)
    }

    // --- lifecycle and settings ------------------------------------------------------------------------

    /// Starts a canister (cancels a pending stop).
    pub fn start_canister(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.management_call(
            sender,
            "start_canister",
            &mgmt::CanisterIdRecord { canister_id },
        )
        .map(drop)
    }

    /// Stops a canister, executing rounds until it is stopped. A canister with open call
    /// contexts stays stopping: this then returns an IngressMessageTimeout rejection while the
    /// stop is still pending (use [`Sim::stop_canister_nonblocking`] to watch the 5-minute timeout).
    pub fn stop_canister(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.management_call(
            sender,
            "stop_canister",
            &mgmt::CanisterIdRecord { canister_id },
        )
        .map(drop)
    }

    /// Submits a stop_canister request without waiting for it.
    pub fn stop_canister_nonblocking(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> RawMessageId {
        let arg = candid::encode_one(mgmt::CanisterIdRecord { canister_id }).expect("encodes");
        self.submit_call(
            Principal::management_canister(),
            sender.unwrap_or(Principal::anonymous()),
            "stop_canister",
            arg,
        )
        .expect("management calls are always accepted for execution")
    }

    /// Deletes a stopped canister (with its snapshots).
    pub fn delete_canister(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.management_call(
            sender,
            "delete_canister",
            &mgmt::CanisterIdRecord { canister_id },
        )
        .map(drop)
    }

    /// The canister_status record.
    pub fn canister_status(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<mgmt::CanisterStatusResult, RejectResponse> {
        let reply = self.management_call(
            sender,
            "canister_status",
            &mgmt::CanisterIdRecord { canister_id },
        )?;
        Ok(decode(&reply))
    }

    /// Replaces the settings given in `settings`.
    pub fn update_canister_settings(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
        settings: mgmt::CanisterSettings,
    ) -> Result<(), RejectResponse> {
        let args = mgmt::UpdateSettingsArgs {
            canister_id,
            settings,
            sender_canister_version: None,
        };
        self.management_call(sender, "update_settings", &args)
            .map(drop)
    }

    /// Replaces the controllers.
    pub fn set_controllers(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
        new_controllers: Vec<Principal>,
    ) -> Result<(), RejectResponse> {
        let settings = mgmt::CanisterSettings {
            controllers: Some(new_controllers),
            ..Default::default()
        };
        self.update_canister_settings(canister_id, sender, settings)
    }

    // --- snapshots ---------------------------------------------------------------------------------

    /// Takes a snapshot (at most 10 per canister; `replace_snapshot` replaces one).
    pub fn take_canister_snapshot(
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
        let reply = self.management_call(sender, "take_canister_snapshot", &args)?;
        Ok(decode(&reply))
    }

    /// Loads a snapshot (code, heap, stable memory, certified data, chunk store).
    pub fn load_canister_snapshot(
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
        self.management_call(sender, "load_canister_snapshot", &args)
            .map(drop)
    }

    /// Lists the canister's snapshots.
    pub fn list_canister_snapshots(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<Vec<mgmt::Snapshot>, RejectResponse> {
        let reply = self.management_call(
            sender,
            "list_canister_snapshots",
            &mgmt::CanisterIdRecord { canister_id },
        )?;
        Ok(decode(&reply))
    }

    /// Deletes a snapshot.
    pub fn delete_canister_snapshot(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
        snapshot_id: Vec<u8>,
    ) -> Result<(), RejectResponse> {
        let args = mgmt::DeleteCanisterSnapshotArgs {
            canister_id,
            snapshot_id,
        };
        self.management_call(sender, "delete_canister_snapshot", &args)
            .map(drop)
    }

    // --- calls ----------------------------------------------------------------------------------------

    /// Submits an ingress update call without executing it.
    pub fn submit_call(
        &self,
        canister_id: Principal,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<RawMessageId, RejectResponse> {
        self.submit_call_on(canister_id, None, sender, method, payload)
    }

    /// Submits an ingress message; a management call executes on `subnet_hint`'s subnet (the
    /// subnet of its effective principal).
    pub(crate) fn submit_call_on(
        &self,
        canister_id: Principal,
        subnet_hint: Option<usize>,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<RawMessageId, RejectResponse> {
        let mut state = self.state.borrow_mut();
        let max = state.config.max_ingress_payload;
        if payload.len() > max {
            let id = hex::encode(&state.fresh_message_id(canister_id).message_id);
            return Err(errors::ingress_too_large(&id, payload.len(), max));
        }
        if canister_id != Principal::management_canister() {
            // The ingress filter's refusals are not certified (no round executed them).
            state
                .admit_ingress(canister_id, sender, method, &payload)
                .map_err(uncertified)?;
        }
        let id = state.fresh_message_id(canister_id);
        state.ingress.insert(id.clone(), None);
        let request = Message::Request(Request {
            sender,
            receiver: canister_id,
            method: method.to_string(),
            arg: payload,
            cycles: 0,
            reply_to: ReplyTo::Ingress(id.clone()),
            deadline: 0,
            subnet_hint,
        });
        let destination = state.destination_of(Source::Ingress, &request);
        state.queues.enqueue(Source::Ingress, destination, request);
        Ok(id)
    }

    /// Executes rounds until the message completes. If the subnet runs out of work first (the
    /// message waits on time, a held response, or a stopping canister), returns an
    /// IngressMessageTimeout rejection and leaves the message pending.
    pub fn await_call(&self, message_id: RawMessageId) -> Result<Vec<u8>, RejectResponse> {
        let max_rounds = self.state.borrow().config.max_rounds_per_ingress;
        let mut rounds = 0;
        loop {
            if let Some(outcome) = self.ingress_status(message_id.clone()) {
                return outcome;
            }
            let has_work = self.state.borrow().has_work();
            if !has_work || rounds >= max_rounds {
                return Err(errors::ingress_pending(rounds));
            }
            self.tick();
            rounds += 1;
        }
    }

    /// The outcome of a submitted message; `None` while it is pending.
    pub fn ingress_status(
        &self,
        message_id: RawMessageId,
    ) -> Option<Result<Vec<u8>, RejectResponse>> {
        self.state
            .borrow()
            .ingress
            .get(&message_id)
            .cloned()
            .flatten()
    }

    /// An ingress update call, executed to completion.
    pub fn update_call(
        &self,
        canister_id: Principal,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        let id = self.submit_call(canister_id, sender, method, payload)?;
        self.await_call(id)
    }

    /// A query call (non-replicated; every change is discarded).
    pub fn query_call(
        &self,
        canister_id: Principal,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        // A query's answer is not certified.
        self.state
            .borrow_mut()
            .query(canister_id, sender, method, payload)
            .map_err(uncertified)
    }

    /// An update call whose routing names an effective principal (a canister id or a subnet
    /// id): a management call then executes on that subnet (provisional creation creates the
    /// canister there), as PocketIC's `update_call_with_effective_principal` does.
    pub fn update_call_with_effective_principal(
        &self,
        canister_id: Principal,
        effective_principal: Option<Principal>,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        let id = self.submit_call_with_effective_principal(
            canister_id,
            effective_principal,
            sender,
            method,
            payload,
        )?;
        self.await_call(id)
    }

    /// Submits an update call routed by an effective principal (see
    /// [`Sim::update_call_with_effective_principal`]).
    pub fn submit_call_with_effective_principal(
        &self,
        canister_id: Principal,
        effective_principal: Option<Principal>,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<RawMessageId, RejectResponse> {
        let hint = effective_principal.and_then(|p| {
            let state = self.state.borrow();
            state.subnets.by_id(p).or_else(|| state.subnets.route(p))
        });
        self.submit_call_on(canister_id, hint, sender, method, payload)
    }

    /// The canister's log records that `sender` may see (a query of the management canister,
    /// as PocketIC's `fetch_canister_logs`).
    pub fn fetch_canister_logs(
        &self,
        canister_id: Principal,
        sender: Principal,
    ) -> Result<Vec<mgmt::CanisterLogRecord>, RejectResponse> {
        let args = mgmt::FetchCanisterLogsArgs {
            canister_id,
            filter: None,
        };
        let arg = candid::encode_one(&args).expect("encodes");
        let reply = self.query_call(
            Principal::management_canister(),
            sender,
            "fetch_canister_logs",
            arg,
        )?;
        Ok(decode::<mgmt::FetchCanisterLogsResult>(&reply).canister_log_records)
    }

    fn management_call<T: CandidType>(
        &self,
        sender: Option<Principal>,
        method: &str,
        args: &T,
    ) -> Result<Vec<u8>, RejectResponse> {
        self.management_call_on(None, sender, method, args)
    }

    fn management_call_on<T: CandidType>(
        &self,
        subnet: Option<usize>,
        sender: Option<Principal>,
        method: &str,
        args: &T,
    ) -> Result<Vec<u8>, RejectResponse> {
        let arg = candid::encode_one(args).expect("management arguments encode");
        let id = self.submit_call_on(
            Principal::management_canister(),
            subnet,
            sender.unwrap_or(Principal::anonymous()),
            method,
            arg,
        )?;
        self.await_call(id)
    }

    // --- introspection (simulator only) --------------------------------------------------------------

    /// The stable memory of a canister (empty if it has none).
    pub fn get_stable_memory(&self, canister_id: Principal) -> Vec<u8> {
        self.state
            .borrow()
            .canisters
            .get(&canister_id)
            .and_then(|c| c.exec.as_ref())
            .map_or_else(Vec::new, |e| e.stable.clone())
    }

    /// Replaces the stable memory of an installed canister (rounded up to whole 64 KiB pages),
    /// as PocketIC's `set_stable_memory` does: for loading stable-memory images in tests.
    ///
    /// # Panics
    /// If the canister does not exist or has no code installed.
    pub fn set_stable_memory(&self, canister_id: Principal, data: Vec<u8>) {
        let mut state = self.state.borrow_mut();
        let exec = state
            .canisters
            .get_mut(&canister_id)
            .and_then(|c| c.exec.as_mut())
            .unwrap_or_else(|| {
                panic!("set_stable_memory: canister {canister_id} has no code installed")
            });
        let mut data = data;
        data.resize(data.len().div_ceil(65536) * 65536, 0);
        exec.stable = data;
    }

    /// SHA-256 of the installed module, as canister_status reports it.
    pub fn module_hash(&self, canister_id: Principal) -> Option<[u8; 32]> {
        self.state
            .borrow()
            .canisters
            .get(&canister_id)
            .and_then(|c| c.module_hash())
    }

    /// What the canister printed with `ic0.debug_print`, oldest first.
    pub fn debug_log(&self, canister_id: Principal) -> Vec<String> {
        self.state
            .borrow()
            .canisters
            .get(&canister_id)
            .map_or_else(Vec::new, |c| c.debug_log.clone())
    }

    /// Instructions of the canister's most recent execution.
    pub fn last_instructions(&self, canister_id: Principal) -> u64 {
        self.execution_stats(canister_id).last_instructions
    }

    /// Execution statistics of a canister.
    pub fn execution_stats(&self, canister_id: Principal) -> ExecutionStats {
        self.state
            .borrow()
            .canisters
            .get(&canister_id)
            .map_or_else(ExecutionStats::default, |c| c.stats)
    }

    /// What a canister was charged so far, by kind (execution, calls, ingress, storage,
    /// creation), at the IC's fees; zero for a canister that does not exist.
    pub fn cycles_charged(&self, canister_id: Principal) -> CyclesCharged {
        self.state
            .borrow()
            .canisters
            .get(&canister_id)
            .map_or_else(CyclesCharged::default, |c| c.charged)
    }

    /// The balance below which a canister is frozen (its idle burn over its freezing
    /// threshold), as the IC computes it; 0 for a canister that does not exist.
    pub fn freezing_threshold_cycles(&self, canister_id: Principal) -> u128 {
        let state = self.state.borrow();
        state
            .canisters
            .get(&canister_id)
            .map_or(0, |c| state.freezing_threshold_of(c))
    }

    /// The memory a canister is charged storage for: heap, stable memory, module, chunk store,
    /// snapshots, history and log (`canister_status`'s `memory_size`).
    pub fn memory_size(&self, canister_id: Principal) -> u64 {
        self.state
            .borrow()
            .canisters
            .get(&canister_id)
            .map_or(0, |c| c.memory_size())
    }

    /// The certified data the canister last set (empty if none).
    pub fn certified_data(&self, canister_id: Principal) -> Vec<u8> {
        self.state
            .borrow()
            .canisters
            .get(&canister_id)
            .map_or_else(Vec::new, |c| c.certified_data.clone())
    }

    /// Whether the canister is running, stopping or stopped (`None` if it does not exist).
    pub fn canister_run_status(&self, canister_id: Principal) -> Option<mgmt::CanisterStatusType> {
        self.state
            .borrow()
            .canisters
            .get(&canister_id)
            .map(|c| match c.status {
                crate::canister::RunStatus::Running => mgmt::CanisterStatusType::Running,
                crate::canister::RunStatus::Stopping(_) => mgmt::CanisterStatusType::Stopping,
                crate::canister::RunStatus::Stopped => mgmt::CanisterStatusType::Stopped,
            })
    }

    /// The default subnet's id ([`SimConfig::subnet_id`], or the one derived from its position).
    pub fn subnet_id(&self) -> Principal {
        let state = self.state.borrow();
        state.subnets.all[state.subnets.default_subnet()].id
    }

    /// The canister id ranges the default subnet hosts, inclusive, as the state tree's
    /// `subnet/<id>/canister_ranges` lists them. Not in PocketIC's API.
    pub fn canister_ranges(&self) -> Vec<(Principal, Principal)> {
        let state = self.state.borrow();
        state.subnets.all[state.subnets.default_subnet()]
            .ranges
            .iter()
            .map(|&(a, z)| (crate::subnet::canister_id(a), crate::subnet::canister_id(z)))
            .collect()
    }

    /// The canister's `icp:public NAME` or `icp:private NAME` metadata section, as the state
    /// tree's `canister/<id>/metadata/NAME` serves it: `None` when the canister does not exist,
    /// has no code, or its module has no such section. Not in PocketIC's API.
    pub fn metadata_section(&self, canister_id: Principal, name: &str) -> Option<MetadataSection> {
        let state = self.state.borrow();
        let module = state.canisters.get(&canister_id)?.module()?;
        let public = module.custom_sections.get(&format!("icp:public {name}"));
        let private = module.custom_sections.get(&format!("icp:private {name}"));
        match (public, private) {
            (Some(bytes), _) => Some(MetadataSection {
                public: true,
                bytes: bytes.clone(),
            }),
            (None, Some(bytes)) => Some(MetadataSection {
                public: false,
                bytes: bytes.clone(),
            }),
            (None, None) => None,
        }
    }

    /// Drops a completed message from the ingress history (the IC purges it once its expiry
    /// passed), so that a long-running server does not grow without bound. A pending message
    /// stays. Answers whether an entry was dropped. Not in PocketIC's API.
    pub fn forget_ingress(&self, message_id: &RawMessageId) -> bool {
        let mut state = self.state.borrow_mut();
        match state.ingress.get(message_id) {
            Some(Some(_)) => state.ingress.remove(message_id).is_some(),
            _ => false,
        }
    }

    // --- faults ----------------------------------------------------------------------------------------

    /// Injects a fault (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        self.state.borrow_mut().faults.active.push(fault);
    }

    /// Removes every fault; held responses stay held until released.
    pub fn clear_faults(&self) {
        self.state.borrow_mut().faults.active.clear();
    }

    /// Delivers every held response in the next round.
    pub fn release_held_responses(&self) {
        let mut state = self.state.borrow_mut();
        let held = std::mem::take(&mut state.held);
        for response in held {
            let (source, destination) = (
                Source::Canister(response.responder),
                Destination::Canister(response.originator),
            );
            state
                .queues
                .route_next_round(source, destination, Message::Response(response));
        }
    }

    /// How often each kind of fault struck so far (clearing faults keeps the counts).
    pub fn faults_fired(&self) -> crate::faults::FaultsFired {
        self.state.borrow().faults.fired
    }

    /// Number of responses currently held by faults.
    pub fn held_responses(&self) -> usize {
        self.state.borrow().held.len()
    }

    /// Held responses whose callback still waits for them at the canister that made the call
    /// (its module installed): what [`Sim::release_held_responses`] would deliver to a
    /// callback. The others (their caller was uninstalled meanwhile) are dropped on release.
    /// Not in PocketIC's API.
    pub fn awaited_held_responses(&self) -> usize {
        self.awaited_held(|_| true, |_| true)
    }

    /// The calls `canister` made that are still in flight because a fault holds their
    /// responses: their callback waits (the caller's module is installed) and, for a
    /// bounded-wait call, its deadline has not passed (after it the caller got SYS_UNKNOWN and
    /// the late response is dropped). A response held across an upgrade of the caller is
    /// delivered to the new module's code (its callback survives the upgrade). Not in
    /// PocketIC's API.
    pub fn awaited_held_responses_of(&self, canister: Principal) -> usize {
        self.awaited_held(|originator| originator == canister, |cb| !cb.expired)
    }

    fn awaited_held(
        &self,
        of: impl Fn(Principal) -> bool,
        waiting: impl Fn(&crate::canister::Callback) -> bool,
    ) -> usize {
        let state = self.state.borrow();
        state
            .held
            .iter()
            .filter(|r| of(r.originator))
            .filter(|r| {
                state.canisters.get(&r.originator).is_some_and(|c| {
                    c.exec.is_some() && c.callbacks.get(&r.callback_id).is_some_and(&waiting)
                })
            })
            .count()
    }
}

fn uncertified(reject: RejectResponse) -> RejectResponse {
    RejectResponse {
        certified: false,
        ..reject
    }
}

/// A canister's metadata section ([`Sim::metadata_section`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataSection {
    /// `icp:public` (anyone may read it) or `icp:private` (controllers only).
    pub public: bool,
    /// The section's contents.
    pub bytes: Vec<u8>,
}

fn decode<T: CandidType + serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
    candid::decode_one(bytes).expect("the management canister replies well-formed candid")
}

impl SimState {
    /// The ingress filter: what the IC checks before accepting an ingress message.
    pub(crate) fn admit_ingress(
        &mut self,
        canister_id: Principal,
        sender: Principal,
        method: &str,
        payload: &[u8],
    ) -> Result<(), RejectResponse> {
        let canister = self.running_canister(canister_id)?;
        if canister.exec.is_none() {
            return Err(RejectResponse::new(
                ErrorCode::CanisterWasmModuleNotFound,
                errors::ingress_no_wasm_module(),
            ));
        }
        // The receiver pays for the induction above its freezing threshold
        // (`charge_ingress_induction_cost`); a frozen canister refuses ingress.
        let fee = self
            .fees_of(canister)
            .ingress_cost((method.len() + payload.len()) as u64);
        if canister.cycles < self.freezing_threshold_of(canister) + fee {
            return Err(RejectResponse::new(
                ErrorCode::CanisterOutOfCycles,
                errors::out_of_cycles(canister_id),
            ));
        }
        self.inspect_message(canister_id, sender, method, payload)?;
        let canister = self.canisters.get_mut(&canister_id).expect("checked");
        canister.cycles -= fee;
        canister.charged.ingress += fee;
        Ok(())
    }
}
