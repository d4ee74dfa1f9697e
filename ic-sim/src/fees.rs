//! The IC's fee schedule, how each fee is applied, and the cycles each canister was charged by
//! kind.
//!
//! The table is the replica's `CyclesAccountManagerConfig::application_subnet()`
//! (dfinity/ic rs/config/src/subnet_config.rs), quoted field by field below; the fees are for the
//! reference subnet of 13 nodes and the replica scales every one of them linearly with the
//! subnet's size (rs/cycles_account_manager, `scale_cost`: `cycles * subnet_size /
//! reference_subnet_size`). The formulas follow the same crate:
//!
//! - execution (`execution_cost`): `update_message_execution_fee + ten_update_instructions_fee *
//!   (instructions / 10)`. Before an update, callback, timer or heartbeat runs, the cost of the
//!   whole instruction limit is prepaid above the freezing threshold (`prepay_execution_cycles`);
//!   what was not used is refunded afterwards.
//! - inter-canister calls (`xnet_call_total_fee`): the call fee, the request's bytes (method name
//!   and payload), the transmission of the largest response (`MAX_INTER_CANISTER_PAYLOAD_IN_BYTES`,
//!   2 MiB) and the execution of the longest callback are withdrawn at `call_perform`; the unused
//!   part of the response transmission (`refund_for_response_transmission`) and of the callback's
//!   execution are refunded when the response arrives. `ic0.cost_call` reports this total.
//! - ingress (`ingress_induction_cost`): reception fee plus bytes, paid by the receiver.
//! - storage (`memory_cost`): `bytes * gib_storage_per_second_fee * seconds / GiB`, charged every
//!   `duration_between_allocation_charges` (10 s) for the time since the last charge, down to zero
//!   (`charge_canister_for_resource_allocation_and_usage`).
//! - freezing threshold (`freeze_threshold_cycles`): the idle burn rate per day (storage and
//!   compute allocation) times `freezing_threshold` seconds / 86 400.
//!
//! Note on the instruction fee: the replica's table charges 10 cycles per 10 instructions (1 cycle
//! per instruction) and 5 M per message; the 0.4 cycles and 590 K of older documentation are the
//! schedule before 2023.

use std::time::Duration;

/// Seconds in a day: idle burn rates and freezing thresholds are per day in the replica.
pub const SECONDS_PER_DAY: u128 = 86_400;
const GIB: u128 = 1024 * 1024 * 1024;
/// The replica's `MAX_INTER_CANISTER_PAYLOAD_IN_BYTES`: the largest response a call can get,
/// whose transmission is prepaid at `call_perform`.
pub const MAX_RESPONSE_BYTES: u128 = 2 * 1024 * 1024;
/// The subnet size the fees are set for (`DEFAULT_REFERENCE_SUBNET_SIZE`).
pub const REFERENCE_SUBNET_SIZE: u32 = 13;

/// Cycle fees of an application subnet, for its reference size of 13 nodes
/// (`CyclesAccountManagerConfig::application_subnet()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fees {
    /// `canister_creation_fee: Cycles::new(500_000_000_000)`.
    pub canister_creation: u128,
    /// `compute_percent_allocated_per_second_fee: Cycles::new(10_000_000)`.
    pub compute_percent_allocated_per_second: u128,
    /// `update_message_execution_fee: Cycles::new(5_000_000)`: per update, callback, timer,
    /// heartbeat and install message.
    pub update_message_execution: u128,
    /// `ten_update_instructions_execution_fee: 10`: per 10 instructions executed in replicated
    /// mode (Wasm32).
    pub ten_update_instructions: u128,
    /// `xnet_call_fee: Cycles::new(260_000)`: per inter-canister call (request and response).
    pub xnet_call: u128,
    /// `xnet_byte_transmission_fee: Cycles::new(1_000)`: per byte of request and of response.
    pub xnet_byte_transmission: u128,
    /// `ingress_message_reception_fee: Cycles::new(1_200_000)`.
    pub ingress_message_reception: u128,
    /// `ingress_byte_reception_fee: Cycles::new(2_000)`.
    pub ingress_byte_reception: u128,
    /// `gib_storage_per_second_fee: Cycles::new(127_000)` ("4 SDR per GiB per year").
    pub gib_storage_per_second: u128,
    /// `duration_between_allocation_charges: Duration::from_secs(10)`.
    pub storage_charge_interval: Duration,
    /// `ECDSA_SIGNATURE_FEE` (10 B), also `SCHNORR_SIGNATURE_FEE` and `VETKD_FEE`.
    pub signature: u128,
    /// `http_request_linear_baseline_fee: Cycles::new(3_000_000)`.
    pub http_request_linear_baseline: u128,
    /// `http_request_quadratic_baseline_fee: Cycles::new(60_000)`.
    pub http_request_quadratic_baseline: u128,
    /// `http_request_per_byte_fee: Cycles::new(400)`.
    pub http_request_per_byte: u128,
    /// `http_response_per_byte_fee: Cycles::new(800)`.
    pub http_response_per_byte: u128,
}

impl Default for Fees {
    fn default() -> Self {
        Self {
            canister_creation: 500_000_000_000,
            compute_percent_allocated_per_second: 10_000_000,
            update_message_execution: 5_000_000,
            ten_update_instructions: 10,
            xnet_call: 260_000,
            xnet_byte_transmission: 1_000,
            ingress_message_reception: 1_200_000,
            ingress_byte_reception: 2_000,
            gib_storage_per_second: 127_000,
            storage_charge_interval: Duration::from_secs(10),
            signature: 10_000_000_000,
            http_request_linear_baseline: 3_000_000,
            http_request_quadratic_baseline: 60_000,
            http_request_per_byte: 400,
            http_response_per_byte: 800,
        }
    }
}

impl Fees {
    /// Every fee of the schedule set to zero (the replica's `zero_cost`), for tests that must not
    /// see balances move.
    pub fn zero() -> Fees {
        Fees {
            canister_creation: 0,
            compute_percent_allocated_per_second: 0,
            update_message_execution: 0,
            ten_update_instructions: 0,
            xnet_call: 0,
            xnet_byte_transmission: 0,
            ingress_message_reception: 0,
            ingress_byte_reception: 0,
            gib_storage_per_second: 0,
            storage_charge_interval: Duration::from_secs(10),
            signature: 0,
            http_request_linear_baseline: 0,
            http_request_quadratic_baseline: 0,
            http_request_per_byte: 0,
            http_response_per_byte: 0,
        }
    }

    /// The fees of a subnet with `nodes` replicas: the replica scales each fee by
    /// `nodes / 13` (`scale_cost`). HTTPS outcalls have their own per-node formula and are
    /// scaled in [`Fees::http_request_cost`] instead.
    pub fn scaled(&self, nodes: u32) -> Fees {
        let scale = |fee: u128| fee * u128::from(nodes) / u128::from(REFERENCE_SUBNET_SIZE);
        Fees {
            canister_creation: scale(self.canister_creation),
            compute_percent_allocated_per_second: scale(self.compute_percent_allocated_per_second),
            update_message_execution: scale(self.update_message_execution),
            ten_update_instructions: scale(self.ten_update_instructions),
            xnet_call: scale(self.xnet_call),
            xnet_byte_transmission: scale(self.xnet_byte_transmission),
            ingress_message_reception: scale(self.ingress_message_reception),
            ingress_byte_reception: scale(self.ingress_byte_reception),
            gib_storage_per_second: scale(self.gib_storage_per_second),
            storage_charge_interval: self.storage_charge_interval,
            signature: scale(self.signature),
            ..self.clone()
        }
    }

    /// Cycles for executing `instructions` in one replicated message (`execution_cost`).
    pub fn execution_cost(&self, instructions: u64) -> u128 {
        self.update_message_execution + self.ten_update_instructions * (instructions / 10) as u128
    }

    /// Cycles for the request of a call: the call fee and its method name and payload bytes.
    pub fn request_transmission_cost(&self, method_name_size: u64, payload_size: u64) -> u128 {
        self.xnet_call
            + self.xnet_byte_transmission * (method_name_size as u128 + payload_size as u128)
    }

    /// Cycles for transmitting a response of `bytes`.
    pub fn response_transmission_cost(&self, bytes: u64) -> u128 {
        self.xnet_byte_transmission * bytes as u128
    }

    /// Cycles prepaid for the largest response's transmission.
    pub fn response_transmission_prepayment(&self) -> u128 {
        self.xnet_byte_transmission * MAX_RESPONSE_BYTES
    }

    /// What a call withdraws at `call_perform`, and what `ic0.cost_call` reports
    /// (`xnet_call_total_fee`): request, largest response, longest callback.
    pub fn call_cost(
        &self,
        method_name_size: u64,
        payload_size: u64,
        instruction_limit: u64,
    ) -> u128 {
        self.request_transmission_cost(method_name_size, payload_size)
            + self.response_transmission_prepayment()
            + self.execution_cost(instruction_limit)
    }

    /// Cycles for receiving an ingress message of `bytes` (method name and payload).
    pub fn ingress_cost(&self, bytes: u64) -> u128 {
        self.ingress_message_reception + self.ingress_byte_reception * bytes as u128
    }

    /// Cycles for holding `bytes` of memory for `seconds` (`memory_cost`).
    pub fn storage_cost(&self, bytes: u64, seconds: u64) -> u128 {
        bytes as u128 * self.gib_storage_per_second * seconds as u128 / GIB
    }

    /// What an idle canister burns per day: its memory (or memory allocation, if larger) and
    /// its compute allocation (`idle_cycles_burned_rate`).
    pub fn idle_burn_per_day(
        &self,
        memory_bytes: u64,
        memory_allocation: u64,
        compute_allocation_percent: u64,
    ) -> u128 {
        let memory = memory_bytes.max(memory_allocation);
        self.storage_cost(memory, SECONDS_PER_DAY as u64)
            + self.compute_percent_allocated_per_second
                * SECONDS_PER_DAY
                * u128::from(compute_allocation_percent)
    }

    /// The freezing threshold in cycles: a day's idle burn times `freezing_threshold_secs` / 1 day
    /// (`freeze_threshold_cycles`, before the reserved balance, which ic-sim does not model).
    pub fn freezing_threshold(
        &self,
        idle_burn_per_day: u128,
        freezing_threshold_secs: u64,
    ) -> u128 {
        idle_burn_per_day * u128::from(freezing_threshold_secs) / SECONDS_PER_DAY
    }

    /// `ic0.cost_http_request` on a subnet of `nodes`: the baseline grows with the square of the
    /// subnet size, the bytes with its size (HTTPS outcalls pricing, 2025).
    pub fn http_request_cost(
        &self,
        nodes: u32,
        request_bytes: u64,
        max_response_bytes: u64,
    ) -> u128 {
        let n = u128::from(nodes);
        (self.http_request_linear_baseline + self.http_request_quadratic_baseline * n) * n
            + self.http_request_per_byte * n * request_bytes as u128
            + self.http_response_per_byte * n * max_response_bytes as u128
    }
}

/// What a canister was charged, by kind, since it was created (refunds deducted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CyclesCharged {
    /// Update, callback, timer, heartbeat and install executions (base fee and instructions).
    pub execution: u128,
    /// Inter-canister calls it made: call fee, request and response bytes.
    pub calls: u128,
    /// Ingress messages it received.
    pub ingress: u128,
    /// Memory held over time: heap, stable memory, module, chunk store, snapshots.
    pub storage: u128,
    /// Canisters it created.
    pub creation: u128,
}

impl CyclesCharged {
    /// Everything charged.
    pub fn total(&self) -> u128 {
        self.execution + self.calls + self.ingress + self.storage + self.creation
    }

    /// What was charged since `earlier` (a snapshot of the same canister's charges).
    pub fn since(&self, earlier: &CyclesCharged) -> CyclesCharged {
        CyclesCharged {
            execution: self.execution.saturating_sub(earlier.execution),
            calls: self.calls.saturating_sub(earlier.calls),
            ingress: self.ingress.saturating_sub(earlier.ingress),
            storage: self.storage.saturating_sub(earlier.storage),
            creation: self.creation.saturating_sub(earlier.creation),
        }
    }
}
