//! install_code (install, reinstall, atomic upgrade), install_chunked_code, uninstall_code and
//! start_canister.

use candid::Principal;
use ic_management_canister_types as mgmt;

use super::*;

impl SimState {
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
        origin: mgmt::ChangeOrigin,
    ) -> Result<(), RejectResponse> {
        self.controlled(id, sender)?;
        let module = module::load(wasm).map_err(|e| errors::invalid_wasm(id, &e.0, e.1))?;
        let module_hash = module.hash.to_vec();
        let mut canister = self.canisters.remove(&id).expect("checked by controlled()");
        let before = canister.stats.total_instructions;
        let result = self.install_into(&mut canister, sender, mode, module, arg);
        // The install message is one execution: its base fee and the instructions of its
        // hooks, scaled by the subnet size, whether or not it succeeded.
        let used = canister.stats.total_instructions - before;
        let fee = self.fees_of(&canister).execution_cost(used);
        let paid = fee.min(canister.cycles);
        canister.cycles -= paid;
        canister.charged.execution += paid;
        if result.is_ok() {
            let mode = match mode {
                mgmt::CanisterInstallMode::Install => mgmt::CodeDeploymentMode::Install,
                mgmt::CanisterInstallMode::Reinstall => mgmt::CodeDeploymentMode::Reinstall,
                mgmt::CanisterInstallMode::Upgrade(_) => mgmt::CodeDeploymentMode::Upgrade,
            };
            let details = mgmt::ChangeDetails::CodeDeployment(mgmt::CodeDeploymentRecord {
                mode,
                module_hash,
            });
            record_change(&mut canister, self.time, origin, details);
        }
        self.canisters.insert(id, canister);
        result
    }

    pub(super) fn install_into(
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
        let instance = match Instance::new(module, self.fees_of(canister)) {
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

    pub(super) fn install_chunked_code(
        &mut self,
        sender: Principal,
        args: mgmt::InstallChunkedCodeArgs,
        origin: mgmt::ChangeOrigin,
    ) -> Result<(), RejectResponse> {
        let target = args.target_canister;
        let store = args.store_canister.unwrap_or(target);
        self.controlled(target, sender)?;
        let target_subnet = self.canisters[&target].subnet;
        // The store must be on the target's subnet (the replica looks it up there).
        let Some(store_canister) = self
            .canisters
            .get(&store)
            .filter(|c| c.subnet == target_subnet)
        else {
            return Err(RejectResponse::new(
                ErrorCode::CanisterNotFound,
                format!(
                    "InstallChunkedCode Error: Store canister {store} was not found on subnet {} of target canister {target}",
                    self.subnets.all[self.canisters[&target].subnet].id
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
        self.install_code(sender, target, args.mode, &wasm, args.arg, origin)
    }

    /// uninstall_code: drops code and data; open call contexts are rejected.
    pub(crate) fn uninstall(&mut self, id: Principal, origin: mgmt::ChangeOrigin) {
        self.uninstall_with(id, Some(origin));
    }

    /// What the replica does to a canister that cannot pay for its storage: its code, data
    /// and snapshots go, open call contexts are rejected, and no change is recorded in its
    /// history (the scheduler's `uninstall_canister` with `AddCanisterChangeToHistory::No`).
    pub(crate) fn uninstall_out_of_cycles(&mut self, id: Principal) {
        if let Some(canister) = self.canisters.get_mut(&id) {
            canister.snapshots.clear();
        }
        self.uninstall_with(id, None);
    }

    fn uninstall_with(&mut self, id: Principal, origin: Option<mgmt::ChangeOrigin>) {
        let time = self.time;
        let Some(canister) = self.canisters.get_mut(&id) else {
            return;
        };
        canister.exec = None;
        canister.certified_data.clear();
        canister.global_timer = 0;
        canister.version += 1;
        if let Some(origin) = origin {
            record_change(canister, time, origin, mgmt::ChangeDetails::CodeUninstall);
        }
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

    pub(super) fn start(&mut self, id: Principal) {
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
}
