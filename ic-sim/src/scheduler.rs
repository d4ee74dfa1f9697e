//! The round loop: input queues, message routing and induction, and the order in which a round
//! serves them.
//!
//! One `tick` executes one round on every subnet, following the replica's scheduler
//! (rs/execution_environment/src/scheduler.rs, `inner_round`): at the start of the round the
//! messages routed in earlier rounds are inducted (cross-subnet messages, requests to and
//! responses from the management canister); then, in inner iterations, the subnet drains the
//! management canister's queue, runs due heartbeats and global timers (first iteration only),
//! executes every canister's input queues, and inducts the messages its canisters sent to
//! canisters of the same subnet (`induct_messages_on_same_subnet`), until an iteration executes
//! nothing or the round's instruction limit is reached. Messages to the management canister
//! take the slow path through message routing ("Messages sent to the subnet are not handled",
//! ibid.), so they run in the next round.
//!
//! Each destination has one FIFO queue per source; the IC guarantees no order across sources.
//! [`MessageOrder`] decides which source a canister serves next and whether a same-subnet
//! message waits for the next round; FIFO per pair always holds (a pair delayed once stays on
//! the slow path for the rest of the round).

use std::collections::VecDeque;

use candid::Principal;
use rand::Rng;

use crate::canister::RunStatus;
use crate::config::MessageOrder;
use crate::queues::{Destination, Message, Source};
use crate::state::SimState;

impl SimState {
    /// Sends a message produced now: to the same subnet within the round when both ends are on
    /// the subnet that is executing, otherwise through message routing (next round).
    pub(crate) fn send(&mut self, source: Source, message: Message) {
        let message = match self.refuse_oversized_xnet(source, message) {
            Ok(message) => message,
            Err(reject) => {
                return self.send(
                    Source::Canister(reject.responder),
                    Message::Response(*reject),
                );
            }
        };
        let destination = self.destination_of(source, &message);
        let same_subnet = match (source, destination) {
            (Source::Canister(from), Destination::Canister(to)) => {
                let from = self.canisters.get(&from).map(|c| c.subnet);
                let to = self.canisters.get(&to).map(|c| c.subnet);
                from.is_some() && from == to && from == self.queues.executing
            }
            _ => false,
        };
        if same_subnet && !self.queues.slow_pairs.contains(&(source, destination)) {
            self.queues.outbox.push((source, destination, message));
        } else {
            self.queues.route_next_round(source, destination, message);
        }
    }

    /// A request of more than 2 MiB (method name and payload) to another subnet never leaves:
    /// the stream builder answers it with a reject (rs/messaging/src/routing/stream_builder.rs:
    /// `RejectCode::CanisterError`, "Canister {sender} violated contract: attempted to send a
    /// message of size {size} exceeding the limit {MAX_INTER_CANISTER_PAYLOAD_IN_BYTES}").
    /// A request to the management canister goes to the subnet of the canister it names.
    fn refuse_oversized_xnet(
        &self,
        source: Source,
        message: Message,
    ) -> Result<Message, Box<crate::queues::ResponseMsg>> {
        let (Source::Canister(sender), Message::Request(req)) = (source, &message) else {
            return Ok(message);
        };
        let size = req.method.len() + req.arg.len();
        let limit = self.config.max_xnet_request_payload;
        let crate::canister::ReplyTo::Canister {
            caller,
            callback_id,
            ..
        } = req.reply_to
        else {
            return Ok(message);
        };
        if size <= limit {
            return Ok(message);
        }
        let Some(from) = self.canisters.get(&sender).map(|c| c.subnet) else {
            return Ok(message);
        };
        let target = if req.receiver == Principal::management_canister() {
            management_target(&req.arg)
        } else {
            Some(req.receiver)
        };
        let to = target.and_then(|t| self.subnets.route(t));
        if to.is_none_or(|to| to == from) {
            return Ok(message);
        }
        Err(Box::new(crate::queues::ResponseMsg {
            responder: req.receiver,
            originator: caller,
            callback_id,
            outcome: Err(crate::types::RejectResponse {
                reject_code: crate::types::RejectCode::CanisterError,
                reject_message: format!(
                    "Canister {sender} violated contract: attempted to send a message of size {size} exceeding the limit {limit}"
                ),
                error_code: crate::types::ErrorCode::CanisterContractViolation,
                certified: true,
            }),
            refund: req.cycles,
        }))
    }

    /// The destination of a message: a canister, or the management canister of the subnet that
    /// hosts the sender (for a canister) or the target (for ingress).
    pub(crate) fn destination_of(&self, source: Source, message: &Message) -> Destination {
        match message {
            Message::Response(resp) => Destination::Canister(resp.originator),
            Message::Request(req) if req.receiver == Principal::management_canister() => {
                let subnet = match source {
                    Source::Canister(c) => self.canisters.get(&c).map(|c| c.subnet),
                    _ => None,
                };
                Destination::Management(
                    subnet
                        .or(req.subnet_hint)
                        .unwrap_or_else(|| self.subnets.default_subnet()),
                )
            }
            Message::Request(req) => Destination::Canister(req.receiver),
        }
    }

    /// One round on every subnet, at the time the test set (`set_time`, `advance_time`) or
    /// one nanosecond after the previous round, so rounds are strictly monotonic and
    /// `get_time` reports the last round's time, as in PocketIC.
    pub(crate) fn tick(&mut self) {
        let next = if self.time_set {
            self.time
        } else {
            self.time + 1
        };
        self.time = match self.last_round {
            Some(last) => next.max(last + 1),
            None => next,
        };
        self.time_set = false;
        self.last_round = Some(self.time);
        self.induct_in_transit();
        self.reject_orphans();
        for subnet in 0..self.subnets.all.len() {
            self.execute_round(subnet);
        }
        self.expire_deadlines();
        self.check_stops();
        self.charge_storage();
    }

    /// Inducts what message routing carried since the last round.
    fn induct_in_transit(&mut self) {
        self.queues.slow_pairs.clear();
        while let Some((source, destination, message)) = self.queues.in_transit.pop_front() {
            self.queues.enqueue(source, destination, message);
        }
    }

    /// Messages queued for canisters that no longer exist: requests are rejected (the canister
    /// is not found), responses dropped.
    fn reject_orphans(&mut self) {
        let orphans: Vec<Destination> = self
            .queues
            .inputs
            .keys()
            .filter(|d| matches!(d, Destination::Canister(c) if !self.canisters.contains_key(c)))
            .copied()
            .collect();
        for destination in orphans {
            let sources = self.queues.inputs.remove(&destination).unwrap_or_default();
            for message in sources.into_values().flatten() {
                if let Message::Request(req) = message {
                    self.deliver_request(req);
                }
            }
        }
    }

    /// One round of `subnet`: inner iterations until nothing runs or the limits are reached.
    fn execute_round(&mut self, subnet: usize) {
        self.queues.executing = Some(subnet);
        self.queues.round_instructions = 0;
        for iteration in 0..self.config.max_inner_iterations {
            let mut executed = self.drain(Destination::Management(subnet));
            if iteration == 0 {
                executed += self.run_system_tasks(subnet);
            }
            let ids: Vec<Principal> = self
                .canisters
                .values()
                .filter(|c| c.subnet == subnet)
                .map(|c| c.id)
                .collect();
            for id in ids {
                executed += self.drain(Destination::Canister(id));
            }
            self.induct_outbox();
            if executed == 0
                || self.queues.round_instructions >= self.config.max_instructions_per_round
            {
                break;
            }
        }
        // What was sent on the subnet but not inducted (limits reached) waits for the next round.
        let outbox = std::mem::take(&mut self.queues.outbox);
        self.queues.in_transit.extend(outbox);
        self.queues.executing = None;
    }

    /// Executes every message now queued for `destination`, serving its sources in the order
    /// [`MessageOrder`] chooses; returns how many ran.
    fn drain(&mut self, destination: Destination) -> u64 {
        let Some(sources) = self.queues.inputs.remove(&destination) else {
            return 0;
        };
        let mut sources: Vec<(Source, VecDeque<Message>)> =
            sources.into_iter().filter(|(_, q)| !q.is_empty()).collect();
        let mut executed = 0;
        let mut turn = 0;
        while !sources.is_empty() {
            let pick = match self.config.message_order {
                MessageOrder::RoundRobin => turn % sources.len(),
                MessageOrder::Seeded { .. } => self.rng.random_range(0..sources.len()),
            };
            turn += 1;
            let message = sources[pick].1.pop_front().expect("queues kept non-empty");
            if sources[pick].1.is_empty() {
                sources.remove(pick);
            }
            executed += 1;
            match (destination, message) {
                (Destination::Management(_), Message::Request(req)) => self.management(req),
                (_, Message::Request(req)) => self.deliver_request(req),
                (_, Message::Response(resp)) => self.deliver_response(resp),
            }
        }
        executed
    }

    /// Moves this iteration's same-subnet messages into their destinations' queues; under
    /// [`MessageOrder::Seeded`] some wait for the next round, as on an IC whose round limits
    /// were reached.
    fn induct_outbox(&mut self) {
        let delay = match self.config.message_order {
            MessageOrder::RoundRobin => 0.0,
            MessageOrder::Seeded { delay } => delay,
        };
        for (source, destination, message) in std::mem::take(&mut self.queues.outbox) {
            let pair = (source, destination);
            let slow = self.queues.slow_pairs.contains(&pair)
                || (delay > 0.0 && self.rng.random::<f64>() < delay);
            if slow {
                self.queues.slow_pairs.insert(pair);
                self.queues.route_next_round(source, destination, message);
            } else {
                self.queues.enqueue(source, destination, message);
            }
        }
    }

    /// The time the next round will execute at.
    pub(crate) fn next_round_time(&self) -> u64 {
        let next = if self.time_set {
            self.time
        } else {
            self.time + 1
        };
        self.last_round.map_or(next, |last| next.max(last + 1))
    }

    /// Sets the time the next round executes at (never before the last round).
    pub(crate) fn set_next_round_time(&mut self, time: u64) {
        self.time = self.time.max(time);
        self.time_set = true;
    }

    /// The time a round that is not driven by queued messages (a due timer or heartbeat, an
    /// expiring deadline) may execute at, from `at` on: no sooner than
    /// [`crate::SimConfig::min_round_interval`] after the last round (the IC's block rate).
    pub(crate) fn paced_round_time(&self, at: u64) -> u64 {
        let gap = self.config.min_round_interval.as_nanos() as u64;
        self.last_round.map_or(at, |last| at.max(last + gap))
    }

    /// The time the next round of [`crate::Sim::run_for`] executes at, given that the subnet
    /// has work: at once for queued messages, else paced ([`Self::paced_round_time`]).
    pub(crate) fn next_busy_round_time(&self) -> u64 {
        let next = self.next_round_time();
        if self.queues.is_empty() {
            self.paced_round_time(next)
        } else {
            next
        }
    }

    /// Whether another round could change anything right now.
    pub(crate) fn has_work(&self) -> bool {
        let next = self.next_round_time();
        !self.queues.is_empty()
            || self.canisters.values().any(|c| {
                c.status == RunStatus::Running
                    && c.exec.is_some()
                    && ((c.global_timer != 0 && c.global_timer <= next)
                        || c.module()
                            .is_some_and(|m| m.exports_function("canister_heartbeat")))
                    // A frozen canister cannot prepay its timer or heartbeat: nothing to do.
                    && self.can_prepay_execution(c)
            })
            || self.canisters.values().any(|c| {
                c.callbacks
                    .values()
                    .any(|cb| cb.deadline != 0 && !cb.expired && cb.deadline <= next)
            })
    }
}

/// The canister a management request names (`canister_id`, or `target_canister` of
/// install_chunked_code), which decides the subnet that executes it (the replica's
/// `resolve_destination`).
fn management_target(arg: &[u8]) -> Option<Principal> {
    #[derive(candid::CandidType, candid::Deserialize)]
    struct Named {
        canister_id: Option<Principal>,
        target_canister: Option<Principal>,
    }
    let named = candid::decode_one::<Named>(arg).ok()?;
    named.canister_id.or(named.target_canister)
}
