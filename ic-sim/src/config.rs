//! Simulator settings: the seed, the IC's instruction and size limits, and the fee schedule.
//!
//! Defaults are the IC's own numbers (an application subnet of 13 nodes). Tests may lower a limit
//! to reach it quickly (a lower limit is harsher than the IC, never kinder); raising one hides bugs.

use crate::subnet::SubnetKind;
use candid::Principal;

/// How the simulator picks among the message orders the IC allows.
///
/// The IC guarantees FIFO order only per pair of canisters: a canister's input queues (one per
/// sender, plus ingress) are served in an order the scheduler chooses, and a message between
/// canisters of one subnet is inducted within the round only while the round's limits allow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MessageOrder {
    /// Serve each canister's input queues round-robin in sender order and induct every
    /// same-subnet message within the round (the replica's deterministic choice when nothing is
    /// under pressure; what PocketIC shows).
    RoundRobin,
    /// The seed chooses which sender's queue a canister serves next, and each same-subnet
    /// message is delayed to the next round with probability `delay` (as when the IC's round
    /// limits are reached). FIFO per pair of canisters always holds.
    Seeded {
        /// Probability (0.0..=1.0) that a same-subnet message waits for the next round.
        delay: f64,
    },
}

/// The settings of one simulated IC (one or more subnets).
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seeds every random choice (message orders, fault injection, dropped responses); same seed
    /// and inputs give the same outcome.
    pub seed: u64,
    /// The subnets, in creation order; canisters go to the first application subnet unless
    /// placed elsewhere (PocketIC's default).
    pub subnets: Vec<SubnetKind>,
    /// How message orders are chosen.
    pub message_order: MessageOrder,
    /// Unnamed subnets take canister ranges from the top of the id space downwards, as
    /// PocketIC's do (its first application subnet starts at `lxzze-o7777-77777-aaaaa-cai`);
    /// by default they take the lowest free block (the first canister is
    /// `rwlgt-iiaaa-aaaaa-aaaaa-cai`).
    pub pocket_ic_ranges: bool,
    /// Start time in nanoseconds since the UNIX epoch.
    pub initial_time_nanos: u64,
    /// Instructions per update call, callback, timer or heartbeat (IC: 40 B).
    pub instruction_limit_update: u64,
    /// Instructions per query (IC: 5 B).
    pub instruction_limit_query: u64,
    /// Instructions per install_code, shared by pre_upgrade, start and post_upgrade (IC: 300 B).
    pub instruction_limit_install: u64,
    /// Instructions per canister_inspect_message (IC: 200 M).
    pub instruction_limit_inspect: u64,
    /// Largest ingress message payload (IC: 2 MiB).
    pub max_ingress_payload: usize,
    /// Largest inter-canister request payload on one subnet (IC: 10 MiB).
    pub max_request_payload: usize,
    /// Largest inter-canister request payload to another subnet (IC: 2 MiB).
    pub max_xnet_request_payload: usize,
    /// Instructions a subnet executes in canister messages per round before further messages
    /// wait for the next round (IC: 4 B on application subnets).
    pub max_instructions_per_round: u64,
    /// Inner iterations of a round (execute, then induct same-subnet messages) at most; a
    /// bound of the simulator's own against message ping-pong of tiny canisters.
    pub max_inner_iterations: u32,
    /// Largest response payload (IC: 2 MiB).
    pub max_response_payload: usize,
    /// Rounds an ingress message may stay pending in `await_call` while the subnet still has work,
    /// before the simulator reports it as timed out.
    pub max_rounds_per_ingress: u64,
    /// Cycles a new canister created by `create_canister` starts with (PocketIC gives 0 too;
    /// tests add cycles with `add_cycles`).
    pub default_canister_cycles: u128,
    /// The fee schedule.
    pub fees: Fees,
    /// The default subnet's id (where canisters go unless placed elsewhere), as `ic0.subnet_self`
    /// and certificates name it; `None` derives it, as every other subnet's, from its position.
    /// A server that signs certificates with its own root key sets the id derived from that key
    /// (the IC derives a root subnet's id from its public key too).
    pub subnet_id: Option<Principal>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            subnets: vec![SubnetKind::Application],
            message_order: MessageOrder::Seeded { delay: 0.05 },
            pocket_ic_ranges: false,
            // 2026-01-01T00:00:00Z: a fixed, realistic epoch so that runs are reproducible.
            initial_time_nanos: 1_767_225_600_000_000_000,
            instruction_limit_update: 40_000_000_000,
            instruction_limit_query: 5_000_000_000,
            instruction_limit_install: 300_000_000_000,
            instruction_limit_inspect: 200_000_000,
            max_ingress_payload: 2 * 1024 * 1024,
            max_request_payload: 10 * 1024 * 1024,
            max_xnet_request_payload: 2 * 1024 * 1024,
            max_instructions_per_round: 4_000_000_000,
            max_inner_iterations: 1_000,
            max_response_payload: 2 * 1024 * 1024,
            max_rounds_per_ingress: 10_000,
            default_canister_cycles: 0,
            fees: Fees::default(),
            subnet_id: None,
        }
    }
}

/// Cycle fees of an application subnet with 13 nodes (IC defaults, rounded to the published
/// figures). They make balances move plausibly; they are not a billing-accurate model.
#[derive(Clone, Debug)]
pub struct Fees {
    /// Charged per executed update message, callback, timer and heartbeat.
    pub update_message_execution: u128,
    /// Charged per 10 instructions executed in replicated mode.
    pub ten_update_instructions: u128,
    /// Charged to the caller per inter-canister call.
    pub xnet_call: u128,
    /// Charged to the caller per byte of request (method name + payload).
    pub xnet_byte_transmission: u128,
    /// Charged per ingress message received.
    pub ingress_message_reception: u128,
    /// Charged per ingress byte received.
    pub ingress_byte_reception: u128,
    /// Charged for creating a canister from another canister.
    pub canister_creation: u128,
}

impl Default for Fees {
    fn default() -> Self {
        Self {
            update_message_execution: 5_000_000,
            ten_update_instructions: 10,
            xnet_call: 260_000,
            xnet_byte_transmission: 1_000,
            ingress_message_reception: 1_200_000,
            ingress_byte_reception: 2_000,
            canister_creation: 500_000_000_000,
        }
    }
}

impl Fees {
    /// The fees of a subnet with `nodes` replicas: the IC scales every fee linearly with the
    /// subnet size (the schedule above is for 13 nodes).
    pub fn scaled(&self, nodes: u32) -> Fees {
        let scale = |fee: u128| fee * u128::from(nodes) / 13;
        Fees {
            update_message_execution: scale(self.update_message_execution),
            ten_update_instructions: scale(self.ten_update_instructions),
            xnet_call: scale(self.xnet_call),
            xnet_byte_transmission: scale(self.xnet_byte_transmission),
            ingress_message_reception: scale(self.ingress_message_reception),
            ingress_byte_reception: scale(self.ingress_byte_reception),
            canister_creation: scale(self.canister_creation),
        }
    }

    /// What `ic0.cost_call` reports: the fixed call fee plus transmission of name and payload.
    pub fn call_cost(&self, method_name_size: u64, payload_size: u64) -> u128 {
        self.xnet_call
            + self.xnet_byte_transmission * (method_name_size as u128 + payload_size as u128)
    }

    /// Cycles for executing `instructions` in one replicated message.
    pub fn execution_cost(&self, instructions: u64) -> u128 {
        self.update_message_execution + self.ten_update_instructions * instructions as u128 / 10
    }
}
