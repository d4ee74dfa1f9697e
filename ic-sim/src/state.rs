//! The simulated IC's state: subnets, canisters, ingress history and time, and the execution of
//! one message, callback, timer or heartbeat with the IC's call-context rules.
//!
//! The round loop and message routing live in `scheduler`, the messages and their queues in
//! `queues`. A round executes at one time; time
//! advances by one nanosecond per round, so it is constant within an execution and strictly
//! increasing across rounds.

use std::collections::BTreeMap;
use std::time::Duration;

use candid::Principal;
use rand::{Rng, SeedableRng, rngs::SmallRng};

use crate::api_context::{ApiKind, Entry, ExecCtx, PendingCall, Response};
use crate::canister::{CallContext, Callback, Canister, ExecState, ReplyTo, RunStatus};
use crate::config::SimConfig;
use crate::errors;
use crate::execution::{Invocation, TrapKind};
use crate::faults::Faults;
use crate::queues::{Destination, Queues, Source};
pub(crate) use crate::queues::{Message, Outcome, Request, ResponseMsg};
use crate::subnet::{SubnetKind, Subnets};
use crate::trace::Trace;
use crate::types::{ErrorCode, RawMessageId, RejectResponse};

/// The IC's stop timeout: a stop_canister call is rejected after 5 minutes.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(300);

/// Everything the simulated IC holds.
pub(crate) struct SimState {
    pub(crate) config: SimConfig,
    /// The time of the last round, or the time the test set for the next one.
    pub(crate) time: u64,
    /// Whether the test set the time since the last round (the next round runs at `time`).
    pub(crate) time_set: bool,
    pub(crate) last_round: Option<u64>,
    pub(crate) subnets: Subnets,
    pub(crate) canisters: BTreeMap<Principal, Canister>,
    pub(crate) queues: Queues,
    pub(crate) held: Vec<ResponseMsg>,
    pub(crate) ingress: BTreeMap<RawMessageId, Option<Outcome>>,
    pub(crate) next_message: u64,
    pub(crate) rng: SmallRng,
    pub(crate) faults: Faults,
    pub(crate) trace: Trace,
}

impl SimState {
    pub(crate) fn new(config: SimConfig) -> Self {
        let mut subnets = Subnets {
            from_top: config.pocket_ic_ranges,
            ..Subnets::default()
        };
        let kinds = if config.subnets.is_empty() {
            vec![SubnetKind::Application]
        } else {
            config.subnets.clone()
        };
        for kind in kinds {
            subnets.add(kind, None);
        }
        if let Some(id) = config.subnet_id {
            let default = subnets.default_subnet();
            subnets.all[default].id = id;
        }
        Self {
            time: config.initial_time_nanos,
            time_set: true,
            last_round: None,
            rng: SmallRng::seed_from_u64(config.seed),
            config,
            subnets,
            canisters: BTreeMap::new(),
            queues: Queues::default(),
            held: Vec::new(),
            ingress: BTreeMap::new(),
            next_message: 0,
            faults: Faults::default(),
            trace: Trace::default(),
        }
    }

    /// Adds a subnet and returns its index.
    pub(crate) fn add_subnet(&mut self, kind: SubnetKind, containing: Option<u64>) -> usize {
        self.subnets.add(kind, containing)
    }

    /// Creates an empty canister with the next id of `subnet`'s allocation range.
    pub(crate) fn new_canister(
        &mut self,
        subnet: usize,
        controllers: Vec<Principal>,
        cycles: u128,
    ) -> Result<Principal, RejectResponse> {
        let id = self.subnets.allocate(subnet).ok_or_else(|| {
            RejectResponse::new(
                ErrorCode::SubnetOversubscribed,
                "Could not create canister. Subnet has surpassed its canister ID allocation.",
            )
        })?;
        self.insert_canister(id, subnet, controllers, cycles);
        Ok(id)
    }

    /// Puts a new empty canister with id `id` on `subnet`.
    pub(crate) fn insert_canister(
        &mut self,
        id: Principal,
        subnet: usize,
        controllers: Vec<Principal>,
        cycles: u128,
    ) {
        let mut canister = Canister::new(id, controllers, cycles);
        canister.subnet = subnet;
        canister.storage_charged_at = self.time;
        self.canisters.insert(id, canister);
    }

    /// The fee schedule of the subnet hosting `canister` (fees scale with the subnet size).
    pub(crate) fn fees_of(&self, canister: &Canister) -> crate::fees::Fees {
        let nodes = self.subnets.all[canister.subnet].kind.nodes();
        self.config.fees.scaled(nodes)
    }

    /// What `canister` burns per day while idle: its memory and compute allocation.
    pub(crate) fn idle_burn_per_day(&self, canister: &Canister) -> u128 {
        self.fees_of(canister).idle_burn_per_day(
            canister.memory_size(),
            canister.settings.memory_allocation,
            canister.settings.compute_allocation,
        )
    }

    /// The balance below which `canister` is frozen (`freeze_threshold_cycles`).
    pub(crate) fn freezing_threshold_of(&self, canister: &Canister) -> u128 {
        self.fees_of(canister).freezing_threshold(
            self.idle_burn_per_day(canister),
            canister.settings.freezing_threshold,
        )
    }

    /// Whether `canister` can prepay the execution of a message with the update instruction
    /// limit and stay above its freezing threshold (`prepay_execution_cycles`); a frozen
    /// canister cannot.
    pub(crate) fn can_prepay_execution(&self, canister: &Canister) -> bool {
        let cost = self
            .fees_of(canister)
            .execution_cost(self.config.instruction_limit_update);
        canister.cycles >= self.freezing_threshold_of(canister) + cost
    }

    /// Charges every canister for the memory it held since its last charge, once at least the
    /// charge interval (10 s) has passed, as the replica does at the end of a round
    /// (`charge_canisters_for_resource_allocation_and_usage`). Storage is charged down to
    /// zero; a canister that cannot pay is uninstalled and its snapshots deleted.
    pub(crate) fn charge_storage(&mut self) {
        let now = self.time;
        let interval = self.config.fees.storage_charge_interval.as_nanos() as u64;
        let mut broke = Vec::new();
        let ids: Vec<Principal> = self.canisters.keys().copied().collect();
        for id in ids {
            let canister = &self.canisters[&id];
            let elapsed = now.saturating_sub(canister.storage_charged_at);
            if elapsed < interval.max(1) {
                continue;
            }
            let secs = elapsed / 1_000_000_000;
            let cost =
                self.idle_burn_per_day(canister) * u128::from(secs) / crate::fees::SECONDS_PER_DAY;
            let canister = self.canisters.get_mut(&id).expect("listed");
            canister.storage_charged_at += secs * 1_000_000_000;
            let paid = cost.min(canister.cycles);
            canister.cycles -= paid;
            canister.charged.storage += paid;
            if paid < cost && canister.exec.is_some() {
                broke.push(id);
            }
        }
        for id in broke {
            self.uninstall_out_of_cycles(id);
        }
    }

    /// The earliest time after now at which something becomes due without any new message: a
    /// global timer of a running canister, a best-effort call's deadline, or a stop request's
    /// timeout. `None` when nothing is scheduled.
    pub(crate) fn next_event_time(&self) -> Option<u64> {
        let timeout = STOP_TIMEOUT.as_nanos() as u64;
        // A frozen canister's timer cannot run (it cannot prepay): it is no event until the
        // canister is topped up.
        let timers = self.canisters.values().filter_map(|c| {
            (c.status == RunStatus::Running
                && c.exec.is_some()
                && c.global_timer != 0
                && self.can_prepay_execution(c))
            .then_some(c.global_timer)
        });
        let deadlines = self.canisters.values().flat_map(|c| {
            c.callbacks
                .values()
                .filter(|cb| cb.deadline != 0 && !cb.expired)
                .map(|cb| cb.deadline)
        });
        let stops = self.canisters.values().flat_map(|c| match &c.status {
            RunStatus::Stopping(requests) => requests.iter().map(|r| r.since + timeout).collect(),
            _ => vec![],
        });
        timers.chain(deadlines).chain(stops).min()
    }

    // --- responding ---------------------------------------------------------------------------------

    /// Sends the outcome of a call to whoever waits for it, applying response faults.
    pub(crate) fn respond(
        &mut self,
        responder: Principal,
        reply_to: ReplyTo,
        outcome: Outcome,
        refund: u128,
    ) {
        match reply_to {
            ReplyTo::Ingress(id) => {
                self.ingress.insert(id, Some(outcome));
            }
            ReplyTo::System => {}
            ReplyTo::Canister {
                caller,
                callback_id,
                deadline,
            } => {
                let msg = ResponseMsg {
                    responder,
                    originator: caller,
                    callback_id,
                    outcome,
                    refund,
                };
                let drop_p = self.faults.drop_probability(responder);
                if drop_p > 0.0 && self.rng.random::<f64>() < drop_p {
                    if deadline != 0 {
                        self.faults.fired.responses_dropped += 1;
                        let dropped = RejectResponse::new(
                            ErrorCode::ResponseDropped,
                            errors::response_dropped(),
                        );
                        self.send(
                            Source::Canister(responder),
                            Message::Response(ResponseMsg {
                                outcome: Err(dropped),
                                ..msg
                            }),
                        );
                    } else {
                        self.faults.fired.responses_held += 1;
                        self.held.push(msg);
                    }
                } else if self.faults.holds_responses_from(responder) {
                    self.faults.fired.responses_held += 1;
                    self.held.push(msg);
                } else {
                    self.send(Source::Canister(responder), Message::Response(msg));
                }
            }
        }
    }

    // --- executing ---------------------------------------------------------------------------------

    /// A context with the canister's system state filled in.
    pub(crate) fn base_ctx(&self, canister: &Canister, kind: ApiKind) -> ExecCtx {
        let subnet = &self.subnets.all[canister.subnet];
        let mut ctx = ExecCtx::new(kind, canister.id, subnet.id);
        ctx.subnet_index = canister.subnet;
        ctx.subnet_nodes = subnet.kind.nodes();
        ctx.env_vars = canister
            .settings
            .environment_variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        ctx.time = self.time;
        ctx.canister_status = canister.status.code();
        ctx.canister_version = canister.version;
        ctx.controllers = canister.controllers.clone();
        ctx.balance = canister.cycles;
        ctx.certified_data = canister.certified_data.clone();
        ctx.global_timer = canister.global_timer;
        ctx.max_reply_size = self.config.max_response_payload;
        ctx.max_request_size = self.config.max_request_payload;
        ctx.freezing_threshold = self.freezing_threshold_of(canister);
        ctx.callback_prepayment = self
            .fees_of(canister)
            .execution_cost(self.config.instruction_limit_update);
        ctx
    }

    /// Runs `entry` on `exec` for `canister`, commits what a successful replicated execution
    /// changed, charges execution cycles, and records statistics.
    pub(crate) fn execute(
        &mut self,
        canister: &mut Canister,
        exec: &mut ExecState,
        mut ctx: ExecCtx,
        entry: &Entry,
        limit: u64,
    ) -> Invocation {
        let kind = ctx.kind;
        let keep = !matches!(
            kind,
            ApiKind::ReplicatedQuery | ApiKind::NonReplicatedQuery | ApiKind::InspectMessage
        );
        ctx.stable = std::mem::take(&mut exec.stable);
        // install_code is charged once for the whole message (management/install.rs).
        let install_hook = matches!(kind, ApiKind::Init | ApiKind::PreUpgrade | ApiKind::Start);
        let fees = self.fees_of(canister);
        // The execution of the whole instruction limit is prepaid before the message runs
        // (`prepay_execution_cycles`): the canister sees its balance without it.
        let prepaid = if kind.replicated() && !install_hook {
            fees.execution_cost(limit).min(ctx.balance)
        } else {
            0
        };
        ctx.balance -= prepaid;
        let injected = matches!(
            kind,
            ApiKind::Update
                | ApiKind::ReplicatedQuery
                | ApiKind::ReplyCallback
                | ApiKind::RejectCallback
                | ApiKind::GlobalTimer
                | ApiKind::Heartbeat
        ) && self.faults.take_trap_next(canister.id);
        let mut inv = if injected {
            Invocation {
                ctx,
                result: Err(TrapKind::Injected),
                instructions: 0,
            }
        } else {
            exec.instance.invoke(ctx, entry, limit, keep)
        };
        exec.stable = std::mem::take(&mut inv.ctx.stable);
        self.trace
            .record(self.time, canister.id, kind, entry, &inv.result);
        if !matches!(kind, ApiKind::Init | ApiKind::PreUpgrade | ApiKind::Start) {
            self.queues.round_instructions += inv.instructions;
        }
        // The canister log keeps what a trapped execution printed, and the trap itself.
        let log_limit = canister.settings.log_memory_limit;
        for line in &inv.ctx.debug_prints {
            canister
                .log
                .append(self.time, line.clone().into_bytes(), log_limit);
        }
        if let Err(TrapKind::Explicit(message)) = &inv.result {
            canister.log.append(
                self.time,
                format!("[TRAP]: {message}").into_bytes(),
                log_limit,
            );
        }
        canister.debug_log.append(&mut inv.ctx.debug_prints);
        canister.stats.last_instructions = inv.instructions;
        canister.stats.total_instructions += inv.instructions;
        canister.stats.executions += 1;
        if inv.result.is_ok() && keep {
            canister.cycles = inv.ctx.balance + prepaid;
            canister.certified_data = inv.ctx.certified_data.clone();
            canister.global_timer = inv.ctx.global_timer;
        }
        if kind.replicated() && !install_hook {
            let fee = fees.execution_cost(inv.instructions);
            let paid = fee.min(canister.cycles);
            canister.cycles -= paid;
            canister.charged.execution += paid;
        }
        inv
    }

    /// Runs `entry` on the installed code of `canister_id`.
    fn run_installed(
        &mut self,
        canister_id: Principal,
        ctx: ExecCtx,
        entry: &Entry,
        limit: u64,
    ) -> Invocation {
        let mut canister = self
            .canisters
            .remove(&canister_id)
            .expect("caller checked the canister exists");
        let mut exec = canister
            .exec
            .take()
            .expect("caller checked the canister is installed");
        let inv = self.execute(&mut canister, &mut exec, ctx, entry, limit);
        canister.exec = Some(exec);
        self.canisters.insert(canister_id, canister);
        inv
    }

    /// After an execution in call context `cc_id`: registers its calls, sends its response.
    fn commit_effects(&mut self, canister_id: Principal, cc_id: u64, inv: &mut Invocation) {
        let time = self.time;
        let fees = self.fees_of(&self.canisters[&canister_id]);
        let prepaid = fees.response_transmission_prepayment()
            + fees.execution_cost(self.config.instruction_limit_update);
        let canister = self
            .canisters
            .get_mut(&canister_id)
            .expect("canister exists");
        let mut requests = Vec::new();
        for call in inv.ctx.calls.drain(..) {
            let PendingCall {
                callee,
                method,
                arg,
                cycles,
                reply,
                reject,
                cleanup,
                timeout_secs,
            } = call;
            let callback_id = canister.fresh_id();
            canister.charged.calls +=
                fees.request_transmission_cost(method.len() as u64, arg.len() as u64);
            let deadline = timeout_secs.map_or(0, |secs| time + u64::from(secs) * 1_000_000_000);
            canister.callbacks.insert(
                callback_id,
                Callback {
                    call_context: cc_id,
                    reply,
                    reject,
                    cleanup,
                    deadline,
                    expired: false,
                    prepaid,
                },
            );
            if let Some(cc) = canister.call_contexts.get_mut(&cc_id) {
                cc.outstanding_callbacks += 1;
            }
            requests.push(Request {
                sender: canister_id,
                receiver: callee,
                method,
                arg,
                cycles,
                reply_to: ReplyTo::Canister {
                    caller: canister_id,
                    callback_id,
                    deadline,
                },
                deadline,
                subnet_hint: None,
            });
        }
        let cc = canister
            .call_contexts
            .get_mut(&cc_id)
            .expect("call context exists");
        cc.cycles_available = inv.ctx.cycles_available;
        for request in requests {
            self.send(Source::Canister(canister_id), Message::Request(request));
        }
        let canister = self
            .canisters
            .get_mut(&canister_id)
            .expect("canister exists");
        let cc = canister
            .call_contexts
            .get_mut(&cc_id)
            .expect("call context exists");
        if let Some(response) = inv.ctx.response.take() {
            cc.responded = true;
            let refund = std::mem::take(&mut cc.cycles_available);
            let reply_to = cc.reply_to.clone();
            let outcome = match response {
                Response::Reply(bytes) => Ok(bytes),
                Response::Reject(_, message) => Err(RejectResponse::new(
                    ErrorCode::CanisterRejectedMessage,
                    message,
                )),
            };
            self.respond(canister_id, reply_to, outcome, refund);
        }
    }

    /// After an execution of call context `cc_id` trapped: the context fails with `reject` only
    /// if it was not answered and no other callback of it is outstanding. While other calls are
    /// outstanding the context stays open and the trap is not reported; the last execution
    /// decides (replica: `CallContextManager::on_canister_result`, rs/replicated_state
    /// call_context_manager.rs: `(Err(_), Responded::No, OutstandingCalls::Yes) =>
    /// NotYetResponded`, and `(Err(error), Responded::No, OutstandingCalls::No) => Fail`).
    fn fail_call_context(&mut self, canister_id: Principal, cc_id: u64, reject: RejectResponse) {
        let canister = self
            .canisters
            .get_mut(&canister_id)
            .expect("canister exists");
        let cc = canister
            .call_contexts
            .get_mut(&cc_id)
            .expect("call context exists");
        if cc.responded || cc.outstanding_callbacks > 0 {
            return;
        }
        cc.responded = true;
        let refund = std::mem::take(&mut cc.cycles_available);
        let reply_to = cc.reply_to.clone();
        let reject = errors::for_reply_to(&reply_to, reject);
        self.respond(canister_id, reply_to, Err(reject), refund);
    }

    /// Closes the call context if it has no outstanding callbacks, rejecting it when it was
    /// never answered.
    fn finish_call_context(&mut self, canister_id: Principal, cc_id: u64) {
        let Some(canister) = self.canisters.get_mut(&canister_id) else {
            return;
        };
        let Some(cc) = canister.call_contexts.get(&cc_id) else {
            return;
        };
        if cc.outstanding_callbacks > 0 {
            return;
        }
        let cc = canister
            .call_contexts
            .remove(&cc_id)
            .expect("just looked it up");
        if !cc.responded && cc.reply_to != ReplyTo::System {
            let reject = RejectResponse::new(
                ErrorCode::CanisterDidNotReply,
                errors::did_not_reply(canister_id),
            );
            let reject = errors::for_reply_to(&cc.reply_to, reject);
            self.respond(canister_id, cc.reply_to, Err(reject), cc.cycles_available);
        }
    }

    /// The canister, if it exists and is running; otherwise the routing rejection.
    pub(crate) fn running_canister(&self, id: Principal) -> Result<&Canister, RejectResponse> {
        let Some(canister) = self.canisters.get(&id) else {
            return Err(RejectResponse::new(
                ErrorCode::CanisterNotFound,
                errors::canister_not_found(id),
            ));
        };
        match canister.status {
            RunStatus::Running => Ok(canister),
            RunStatus::Stopping(_) => Err(RejectResponse::new(
                ErrorCode::CanisterStopping,
                errors::stopping(id),
            )),
            RunStatus::Stopped => Err(RejectResponse::new(
                ErrorCode::CanisterStopped,
                errors::stopped(id),
            )),
        }
    }

    // --- requests -----------------------------------------------------------------------------------

    /// Why a request cannot be executed by `canister_id`, or the kind it executes as.
    fn admit(&mut self, req: &Request) -> Result<ApiKind, RejectResponse> {
        let id = req.receiver;
        let from_canister = matches!(req.reply_to, ReplyTo::Canister { .. });
        if from_canister && self.faults.calls_fail_to(id) {
            return Err(RejectResponse::new(
                ErrorCode::CanisterQueueFull,
                errors::queue_full(id),
            ));
        }
        let canister = self.running_canister(id)?;
        let Some(module) = canister.module() else {
            let message = if from_canister {
                errors::no_wasm_module(id)
            } else {
                errors::ingress_no_wasm_module()
            };
            return Err(RejectResponse::new(
                ErrorCode::CanisterWasmModuleNotFound,
                message,
            ));
        };
        let kind = if module.exports_function(&format!("canister_update {}", req.method)) {
            ApiKind::Update
        } else if module.exports_function(&format!("canister_query {}", req.method)) {
            ApiKind::ReplicatedQuery
        } else {
            return Err(RejectResponse::new(
                ErrorCode::CanisterMethodNotFound,
                errors::method_not_found(id, "update", &req.method),
            ));
        };
        if !self.can_prepay_execution(canister) {
            return Err(RejectResponse::new(
                ErrorCode::CanisterOutOfCycles,
                errors::out_of_cycles(id),
            ));
        }
        Ok(kind)
    }

    pub(crate) fn deliver_request(&mut self, req: Request) {
        let kind = match self.admit(&req) {
            Ok(kind) => kind,
            Err(reject) => {
                // Execution-side refusals reach a calling canister with their error code
                // prefixed; routing refusals (not found, stopped, queue full) do not.
                let execution_side = matches!(
                    reject.error_code,
                    ErrorCode::CanisterMethodNotFound | ErrorCode::CanisterWasmModuleNotFound
                );
                let reject = if execution_side {
                    errors::for_reply_to(&req.reply_to, reject)
                } else {
                    reject
                };
                self.respond(req.receiver, req.reply_to, Err(reject), req.cycles);
                return;
            }
        };
        let id = req.receiver;
        let canister = self.canisters.get_mut(&id).expect("admitted");
        let cc_id = canister.fresh_id();
        canister.call_contexts.insert(
            cc_id,
            CallContext {
                reply_to: req.reply_to.clone(),
                caller: req.sender,
                deadline: req.deadline,
                responded: false,
                outstanding_callbacks: 0,
                cycles_available: req.cycles,
                instructions: 0,
            },
        );
        let mut ctx = self.base_ctx(&self.canisters[&id], kind);
        ctx.caller = req.sender;
        ctx.arg = req.arg;
        ctx.method_name = req.method.clone();
        ctx.deadline = req.deadline;
        ctx.cycles_available = req.cycles;
        let prefix = if kind == ApiKind::Update {
            "canister_update"
        } else {
            "canister_query"
        };
        let entry = Entry::Export(format!("{prefix} {}", req.method));
        let limit = self.config.instruction_limit_update;
        let mut inv = self.run_installed(id, ctx, &entry, limit);
        self.record_instructions(id, cc_id, inv.instructions);
        match inv.result.clone() {
            Ok(()) => self.commit_effects(id, cc_id, &mut inv),
            Err(trap) => {
                let reject = errors::trap(id, &trap, self.config.instruction_limit_update);
                self.fail_call_context(id, cc_id, reject);
            }
        }
        self.finish_call_context(id, cc_id);
    }

    fn record_instructions(&mut self, id: Principal, cc_id: u64, instructions: u64) {
        if let Some(cc) = self
            .canisters
            .get_mut(&id)
            .and_then(|c| c.call_contexts.get_mut(&cc_id))
        {
            cc.instructions += instructions;
        }
    }

    // --- responses ----------------------------------------------------------------------------------

    pub(crate) fn deliver_response(&mut self, resp: ResponseMsg) {
        let id = resp.originator;
        let Some(canister) = self.canisters.get_mut(&id) else {
            return;
        };
        if canister.exec.is_none() {
            return;
        }
        let Some(callback) = canister.callbacks.remove(&resp.callback_id) else {
            // Already answered by its deadline (or the canister was uninstalled): dropped.
            return;
        };
        canister.cycles += resp.refund;
        // Settle what call_perform prepaid: the response's actual transmission is charged, the
        // rest of the prepayment comes back; the callback's execution is charged as it runs.
        let response_bytes = match &resp.outcome {
            Ok(bytes) => bytes.len(),
            Err(reject) => reject.reject_message.len(),
        };
        let fees = self.fees_of(&self.canisters[&id]);
        let transmission = fees.response_transmission_cost(response_bytes as u64);
        let canister = self.canisters.get_mut(&id).expect("checked above");
        let transmission = transmission.min(callback.prepaid);
        canister.cycles += callback.prepaid - transmission;
        canister.charged.calls += transmission;
        let cc_id = callback.call_context;
        let Some(cc) = canister.call_contexts.get_mut(&cc_id) else {
            return;
        };
        cc.outstanding_callbacks -= 1;
        let cc = cc.clone();
        let (kind, (fun, env)) = match &resp.outcome {
            Ok(_) => (ApiKind::ReplyCallback, callback.reply),
            Err(_) => (ApiKind::RejectCallback, callback.reject),
        };
        let mut ctx = self.base_ctx(&self.canisters[&id], kind);
        ctx.caller = cc.caller;
        ctx.deadline = cc.deadline;
        ctx.already_responded = cc.responded;
        ctx.cycles_available = cc.cycles_available;
        ctx.cycles_refunded = resp.refund;
        ctx.call_context_instructions = cc.instructions;
        match resp.outcome {
            Ok(bytes) => ctx.arg = bytes,
            Err(reject) => ctx.reject = Some((reject.reject_code, reject.reject_message)),
        }
        let limit = self.config.instruction_limit_update;
        let mut inv = self.run_installed(id, ctx, &Entry::Table { fun, env }, limit);
        self.record_instructions(id, cc_id, inv.instructions);
        match inv.result.clone() {
            Ok(()) => self.commit_effects(id, cc_id, &mut inv),
            Err(trap) => {
                let limit_for_message = self.config.instruction_limit_update;
                let mut reject = errors::trap(id, &trap, limit_for_message);
                if let Some((fun, env)) = callback.cleanup {
                    let mut ctx = self.base_ctx(&self.canisters[&id], ApiKind::Cleanup);
                    ctx.caller = cc.caller;
                    let inv = self.run_installed(id, ctx, &Entry::Table { fun, env }, limit);
                    self.record_instructions(id, cc_id, inv.instructions);
                    if let Err(cleanup_trap) = &inv.result {
                        // HypervisorError::Cleanup: both traps, the callback's error code.
                        let cleanup = errors::trap(id, cleanup_trap, limit_for_message);
                        reject = errors::cleanup_also_failed(reject, &cleanup);
                    }
                }
                self.fail_call_context(id, cc_id, reject);
            }
        }
        self.finish_call_context(id, cc_id);
    }

    // --- system tasks, deadlines, stops -------------------------------------------------------------

    /// Runs the due global timers and the heartbeats of `subnet`'s running canisters; returns
    /// how many ran.
    pub(crate) fn run_system_tasks(&mut self, subnet: usize) -> u64 {
        let ids: Vec<Principal> = self
            .canisters
            .values()
            .filter(|c| c.subnet == subnet)
            .map(|c| c.id)
            .collect();
        let mut ran = 0;
        for id in ids {
            let canister = &self.canisters[&id];
            if canister.status != RunStatus::Running || canister.exec.is_none() {
                continue;
            }
            // A frozen canister cannot prepay its timer or heartbeat: it does not run, and a
            // due global timer stays armed until the canister is topped up.
            if !self.can_prepay_execution(canister) {
                continue;
            }
            let module = canister.module().expect("installed").clone();
            if canister.global_timer != 0 && canister.global_timer <= self.time {
                // The timer is deactivated when it fires; a trap in the handler does not re-arm it
                // (its own global_timer_set is rolled back). dfinity/ic
                // rs/execution_environment/src/execution/call_or_task.rs, CallOrTaskHelper::new:
                // "The global timer is one-off. canister.system_state.global_timer =
                // CanisterTimer::Inactive;" on the canister a trap's result keeps.
                self.canisters.get_mut(&id).expect("exists").global_timer = 0;
                if module.exports_function("canister_global_timer") {
                    self.run_system_task(id, ApiKind::GlobalTimer, "canister_global_timer");
                    ran += 1;
                }
            }
            if module.exports_function("canister_heartbeat")
                && self.canisters[&id].status == RunStatus::Running
                && self.canisters[&id].exec.is_some()
            {
                self.run_system_task(id, ApiKind::Heartbeat, "canister_heartbeat");
                ran += 1;
            }
        }
        ran
    }

    fn run_system_task(&mut self, id: Principal, kind: ApiKind, export: &str) {
        let canister = self.canisters.get_mut(&id).expect("exists");
        let cc_id = canister.fresh_id();
        canister.call_contexts.insert(
            cc_id,
            CallContext {
                reply_to: ReplyTo::System,
                caller: Principal::management_canister(),
                deadline: 0,
                responded: false,
                outstanding_callbacks: 0,
                cycles_available: 0,
                instructions: 0,
            },
        );
        let ctx = self.base_ctx(&self.canisters[&id], kind);
        let limit = self.config.instruction_limit_update;
        let mut inv = self.run_installed(id, ctx, &Entry::Export(export.to_string()), limit);
        self.record_instructions(id, cc_id, inv.instructions);
        if inv.result.is_ok() {
            self.commit_effects(id, cc_id, &mut inv);
        }
        self.finish_call_context(id, cc_id);
    }

    /// Answers best-effort calls whose deadline passed with SYS_UNKNOWN (IC0601); the answers
    /// run in the next round.
    pub(crate) fn expire_deadlines(&mut self) {
        let now = self.time;
        let mut expired = Vec::new();
        for canister in self.canisters.values_mut() {
            for (callback_id, callback) in canister.callbacks.iter_mut() {
                if callback.deadline != 0 && !callback.expired && callback.deadline <= now {
                    callback.expired = true;
                    expired.push(ResponseMsg {
                        responder: Principal::management_canister(),
                        originator: canister.id,
                        callback_id: *callback_id,
                        outcome: Err(RejectResponse::new(
                            ErrorCode::DeadlineExpired,
                            errors::deadline_expired(),
                        )),
                        refund: 0,
                    });
                }
            }
        }
        for response in expired {
            let destination = Destination::Canister(response.originator);
            self.queues
                .enqueue(Source::System, destination, Message::Response(response));
        }
    }

    /// Completes stops of canisters without open call contexts; times out old stop requests.
    pub(crate) fn check_stops(&mut self) {
        let now = self.time;
        let timeout = STOP_TIMEOUT.as_nanos() as u64;
        let mut answers = Vec::new();
        for canister in self.canisters.values_mut() {
            let RunStatus::Stopping(requests) = &mut canister.status else {
                continue;
            };
            if canister.call_contexts.is_empty() {
                for request in requests.drain(..) {
                    answers.push((
                        canister.id,
                        request.reply_to,
                        Ok(candid::encode_one(()).expect("unit encodes")),
                    ));
                }
                canister.status = RunStatus::Stopped;
            } else {
                let (late, waiting): (Vec<_>, Vec<_>) =
                    requests.drain(..).partition(|r| now >= r.since + timeout);
                *requests = waiting;
                for request in late {
                    let reject = RejectResponse::new(
                        ErrorCode::StopCanisterRequestTimeout,
                        errors::stop_timeout(),
                    );
                    answers.push((canister.id, request.reply_to, Err(reject)));
                }
            }
        }
        for (id, reply_to, outcome) in answers {
            self.respond(Principal::management_canister(), reply_to, outcome, 0);
            let _ = id;
        }
    }

    // --- ingress --------------------------------------------------------------------------------------

    pub(crate) fn fresh_message_id(&mut self, receiver: Principal) -> RawMessageId {
        self.next_message += 1;
        RawMessageId {
            effective_principal: receiver,
            message_id: self.next_message.to_be_bytes().to_vec(),
        }
    }

    /// Runs `canister_inspect_message` for an ingress message, if the canister exports it.
    pub(crate) fn inspect_message(
        &mut self,
        canister_id: Principal,
        sender: Principal,
        method: &str,
        arg: &[u8],
    ) -> Result<(), RejectResponse> {
        let Some(canister) = self.canisters.get(&canister_id) else {
            return Ok(());
        };
        let exports = canister
            .module()
            .is_some_and(|m| m.exports_function("canister_inspect_message"));
        if !exports {
            return Ok(());
        }
        let mut ctx = self.base_ctx(canister, ApiKind::InspectMessage);
        ctx.caller = sender;
        ctx.arg = arg.to_vec();
        ctx.method_name = method.to_string();
        let limit = self.config.instruction_limit_inspect;
        let inv = self.run_installed(
            canister_id,
            ctx,
            &Entry::Export("canister_inspect_message".into()),
            limit,
        );
        match inv.result {
            Err(trap) => Err(errors::trap(canister_id, &trap, limit)),
            Ok(()) if !inv.ctx.accepted_message => Err(RejectResponse::new(
                ErrorCode::CanisterRejectedMessage,
                errors::inspect_rejected(canister_id),
            )),
            Ok(()) => Ok(()),
        }
    }

    /// A non-replicated query: runs and discards every change.
    pub(crate) fn query(
        &mut self,
        canister_id: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Outcome {
        if canister_id == Principal::management_canister() {
            // The management canister answers one query: fetch_canister_logs.
            return match method {
                "fetch_canister_logs" => self.fetch_canister_logs(sender, &arg),
                other => Err(errors::unknown_management_method(other)),
            };
        }
        let canister = self.running_canister(canister_id)?;
        let Some(module) = canister.module() else {
            return Err(RejectResponse::new(
                ErrorCode::CanisterWasmModuleNotFound,
                errors::no_wasm_module(canister_id),
            ));
        };
        let export = format!("canister_query {method}");
        if !module.exports_function(&export) {
            return Err(RejectResponse::new(
                ErrorCode::CanisterMethodNotFound,
                errors::method_not_found(canister_id, "query", method),
            ));
        }
        let mut ctx = self.base_ctx(canister, ApiKind::NonReplicatedQuery);
        ctx.caller = sender;
        ctx.arg = arg;
        ctx.method_name = method.to_string();
        let limit = self.config.instruction_limit_query;
        let inv = self.run_installed(canister_id, ctx, &Entry::Export(export), limit);
        match (inv.result, inv.ctx.response) {
            (Err(trap), _) => Err(errors::trap(canister_id, &trap, limit)),
            (Ok(()), Some(Response::Reply(bytes))) => Ok(bytes),
            (Ok(()), Some(Response::Reject(_, message))) => Err(RejectResponse::new(
                ErrorCode::CanisterRejectedMessage,
                message,
            )),
            (Ok(()), None) => Err(RejectResponse::new(
                ErrorCode::CanisterDidNotReply,
                errors::did_not_reply(canister_id),
            )),
        }
    }
}
