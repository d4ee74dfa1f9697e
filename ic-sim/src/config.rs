//! Simulator settings: the seed, the IC's instruction and size limits, and the fee schedule.
//!
//! Defaults are the IC's own numbers (an application subnet of 13 nodes). Tests may lower a limit
//! to reach it quickly (a lower limit is harsher than the IC, never kinder); raising one hides bugs.

pub use crate::fees::Fees;
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
    /// The fee schedule (the IC's, for 13 nodes; see [`crate::fees`]).
    pub fees: Fees,
    /// The shortest time between two rounds that [`crate::Sim::run_for`] runs for anything but
    /// queued messages: due timers, heartbeats, expiring deadlines. The IC makes a block, hence
    /// a round, no faster than its notary delay (dfinity/ic `rs/limits/src/lib.rs`:
    /// `INITIAL_NOTARY_DELAY_APP_SUBNET = 600 ms`), so a timer that re-arms itself for "now"
    /// (ic-cdk-timers' retry after a SYS_TRANSIENT reject) runs once per block, not once per
    /// nanosecond. Rounds that execute queued messages still follow each other 1 ns apart.
    pub min_round_interval: std::time::Duration,
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
            min_round_interval: std::time::Duration::from_millis(600),
            subnet_id: None,
        }
    }
}
