//! A `PocketIc`-shaped front of the simulator (pocket-ic 16): a test written for PocketIC runs
//! on ic-sim with its import lines changed from `pocket_ic::...` to `ic_sim::pocket_ic::...`.
//!
//! ```no_run
//! use ic_sim::pocket_ic::{PocketIc, PocketIcBuilder, update_candid};
//! let pic = PocketIcBuilder::new().with_nns_subnet().with_application_subnet().build();
//! let app = pic.topology().get_app_subnets()[0];
//! let id = pic.create_canister_on_subnet(None, None, app);
//! ```
//!
//! [`PocketIc`] dereferences to [`Sim`], so every simulator method is there too; it adds the
//! methods whose PocketIC signature differs from the simulator's (`topology`,
//! `set_stable_memory` with a [`BlobCompression`], the `*_with_effective_principal` calls).
//! Rounds serve input queues in the replica's deterministic round-robin order
//! ([`MessageOrder::RoundRobin`]), as PocketIC does. What PocketIC offers and this does not
//! (a server, live mode and HTTP gateway, state directories, NNS and other system canisters,
//! threshold keys, HTTP outcalls) is listed in ic-sim/README.md.

use std::io::Read;
use std::ops::Deref;

use candid::Principal;
use candid::utils::{ArgumentDecoder, ArgumentEncoder};
use sha2::{Digest, Sha256};

use crate::config::{MessageOrder, SimConfig};
use crate::sim::Sim;
use crate::subnet::SubnetKind as Kind;

pub use crate::types::{ErrorCode, RejectCode, RejectResponse, Time};
pub use ::pocket_ic::SubnetMetrics;
pub use ic_management_canister_types::{
    CanisterId, CanisterInstallMode, CanisterLogRecord, CanisterSettings, CanisterStatusResult,
    EnvironmentVariable, Snapshot,
};

/// The REST types of pocket-ic that tests name (`pocket_ic::common::rest::...`).
pub mod common {
    /// Topology, subnet kinds and the raw types of PocketIC's REST interface.
    pub mod rest {
        pub use crate::types::RawMessageId;
        pub use ::pocket_ic::common::rest::{
            BlobCompression, CanisterCyclesCostSchedule, CanisterIdRange, RawCanisterId,
            RawEffectivePrincipal, SubnetConfig, SubnetInstructionConfig, SubnetKind, Topology,
        };
    }
}

use common::rest::{
    BlobCompression, CanisterCyclesCostSchedule, CanisterIdRange, RawCanisterId,
    RawEffectivePrincipal, SubnetConfig, SubnetInstructionConfig, SubnetKind, Topology,
};

/// The earliest initial time PocketIC accepts (6 May 2021, the IC's genesis).
const EARLIEST_INITIAL_TIME: u64 = 1_620_328_630_000_000_000;

/// A simulated IC with PocketIC's interface.
pub struct PocketIc {
    sim: Sim,
}

impl Deref for PocketIc {
    type Target = Sim;
    fn deref(&self) -> &Sim {
        &self.sim
    }
}

impl Default for PocketIc {
    fn default() -> Self {
        Self::new()
    }
}

impl PocketIc {
    /// One application subnet, as `PocketIc::new()`.
    pub fn new() -> Self {
        PocketIcBuilder::new().with_application_subnet().build()
    }

    /// The subnets with their kinds and canister ranges.
    pub fn topology(&self) -> Topology {
        let subnets = self.sim.subnets();
        let subnet_configs = subnets
            .iter()
            .map(|s| {
                let config = SubnetConfig {
                    subnet_kind: pocket_kind(s.kind),
                    subnet_admins: None,
                    cost_schedule: CanisterCyclesCostSchedule::Normal,
                    subnet_seed: Sha256::digest(s.id.as_slice()).into(),
                    instruction_config: SubnetInstructionConfig::Production,
                    canister_ranges: s
                        .ranges
                        .iter()
                        .map(|(start, end)| CanisterIdRange {
                            start: RawCanisterId::from(*start),
                            end: RawCanisterId::from(*end),
                        })
                        .collect(),
                };
                (s.id, config)
            })
            .collect();
        let default = self.sim.state.borrow().subnets.default_subnet();
        Topology {
            subnet_configs,
            default_effective_canister_id: RawCanisterId::from(subnets[default].ranges[0].0),
        }
    }

    /// Replaces the stable memory, gzipped or not.
    ///
    /// # Panics
    /// If the canister has no code or the blob does not inflate.
    pub fn set_stable_memory(
        &self,
        canister_id: CanisterId,
        data: Vec<u8>,
        compression: BlobCompression,
    ) {
        let data = match compression {
            BlobCompression::NoCompression => data,
            BlobCompression::Gzip => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(data.as_slice())
                    .read_to_end(&mut out)
                    .expect("set_stable_memory: the blob is not valid gzip");
                out
            }
        };
        self.sim.set_stable_memory(canister_id, data);
    }

    /// Submits an ingress update call.
    ///
    /// # Panics
    /// If the payload is over the ingress limit (2 MiB): PocketIC's HTTP endpoint answers 413
    /// and its client panics; `Sim::submit_call` returns the rejection instead.
    pub fn submit_call(
        &self,
        canister_id: CanisterId,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<crate::types::RawMessageId, RejectResponse> {
        let limit = self.sim.state.borrow().config.max_ingress_payload;
        assert!(
            payload.len() <= limit,
            "the HTTP endpoint refuses the ingress message (413 Payload Too Large): {} bytes, at most {limit}",
            payload.len()
        );
        self.sim.submit_call(canister_id, sender, method, payload)
    }

    /// An ingress update call, executed to completion (panics like [`PocketIc::submit_call`]).
    pub fn update_call(
        &self,
        canister_id: CanisterId,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        let id = self.submit_call(canister_id, sender, method, payload)?;
        self.sim.await_call(id)
    }

    /// The controllers.
    ///
    /// # Panics
    /// If the canister does not exist (as PocketIC: `CanisterNotFound(CanisterId(..))`).
    pub fn get_controllers(&self, canister_id: CanisterId) -> Vec<Principal> {
        assert!(
            self.sim.canister_exists(canister_id),
            "CanisterNotFound(CanisterId({canister_id}))"
        );
        self.sim.get_controllers(canister_id)
    }

    /// Creates a canister with a given id; the errors PocketIC reports on the effective
    /// canister id (not a canister id, an NNS or II id without that subnet) are panics there
    /// and here, the management canister's refusals are `Err`.
    ///
    /// # Panics
    /// If `canister_id` is not a 10-byte canister id, or names the NNS or II range of mainnet
    /// while the instance has no such subnet.
    pub fn create_canister_with_id(
        &self,
        sender: Option<Principal>,
        settings: Option<CanisterSettings>,
        canister_id: CanisterId,
    ) -> Result<CanisterId, String> {
        let bytes = canister_id.as_slice();
        assert!(
            bytes.len() == 10,
            "The binary representation {} of effective canister ID {canister_id} should consist of 10 bytes.",
            hex::encode(bytes)
        );
        let result = self
            .sim
            .create_canister_with_id(sender, settings, canister_id);
        if let Err(e) = &result {
            assert!(!e.contains("belongs to the NNS or II subnet"), "{e}");
        }
        result
    }

    /// The root key: present when the instance has an NNS subnet, as in PocketIC.
    pub fn root_key(&self) -> Option<Vec<u8>> {
        let has_nns = self.sim.subnets().iter().any(|s| s.kind == Kind::Nns);
        has_nns.then(|| crate::system_api::ROOT_KEY.to_vec())
    }

    /// Never: the simulator makes progress only when the test ticks.
    pub fn auto_progress_enabled(&self) -> bool {
        false
    }

    /// Sets the time and executes a round at it, so queries see it certified.
    pub fn set_certified_time(&self, time: Time) {
        self.sim.set_time(time);
        self.sim.tick();
    }

    /// An update call routed by `effective_principal`.
    pub fn update_call_with_effective_principal(
        &self,
        canister_id: CanisterId,
        effective_principal: RawEffectivePrincipal,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        self.sim.update_call_with_effective_principal(
            canister_id,
            principal_of(&effective_principal),
            sender,
            method,
            payload,
        )
    }

    /// Submits an update call routed by `effective_principal`.
    pub fn submit_call_with_effective_principal(
        &self,
        canister_id: CanisterId,
        effective_principal: RawEffectivePrincipal,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<crate::types::RawMessageId, RejectResponse> {
        self.sim.submit_call_with_effective_principal(
            canister_id,
            principal_of(&effective_principal),
            sender,
            method,
            payload,
        )
    }

    /// A query call; the effective principal routes nothing here (queries run where the
    /// canister lives).
    pub fn query_call_with_effective_principal(
        &self,
        canister_id: CanisterId,
        _effective_principal: RawEffectivePrincipal,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        self.sim.query_call(canister_id, sender, method, payload)
    }

    /// Canisters, state bytes and update executions of a subnet (`None` for an unknown id).
    /// Cycles consumed are not tracked (always 0).
    pub fn get_subnet_metrics(&self, subnet_id: Principal) -> Option<SubnetMetrics> {
        let state = self.sim.state.borrow();
        let index = state.subnets.by_id(subnet_id)?;
        let canisters: Vec<_> = state
            .canisters
            .values()
            .filter(|c| c.subnet == index)
            .collect();
        Some(SubnetMetrics {
            num_canisters: canisters.len() as u64,
            canister_state_bytes: canisters.iter().map(|c| c.memory_size()).sum(),
            consumed_cycles_total: 0,
            update_transactions_total: canisters.iter().map(|c| c.stats.executions).sum(),
        })
    }
}

fn principal_of(effective: &RawEffectivePrincipal) -> Option<Principal> {
    match effective {
        RawEffectivePrincipal::None => None,
        RawEffectivePrincipal::SubnetId(bytes) | RawEffectivePrincipal::CanisterId(bytes) => {
            Principal::try_from_slice(bytes).ok()
        }
    }
}

fn pocket_kind(kind: Kind) -> SubnetKind {
    match kind {
        Kind::Application => SubnetKind::Application,
        Kind::VerifiedApplication => SubnetKind::VerifiedApplication,
        Kind::System => SubnetKind::System,
        Kind::Nns => SubnetKind::NNS,
        Kind::Ii => SubnetKind::II,
        Kind::Sns => SubnetKind::SNS,
        Kind::Fiduciary => SubnetKind::Fiduciary,
        Kind::Bitcoin => SubnetKind::Bitcoin,
    }
}

/// Builds a [`PocketIc`] with the subnets asked for, as `pocket_ic::PocketIcBuilder`.
#[derive(Default)]
pub struct PocketIcBuilder {
    subnets: Vec<Kind>,
    initial_time: Option<Time>,
}

impl PocketIcBuilder {
    /// No subnets yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn named(mut self, kind: Kind) -> Self {
        // Named subnets have one instance at most.
        if !self.subnets.contains(&kind) {
            self.subnets.push(kind);
        }
        self
    }

    /// Adds the NNS subnet (empty: ic-sim installs no NNS canisters).
    pub fn with_nns_subnet(self) -> Self {
        self.named(Kind::Nns)
    }

    /// Adds the SNS subnet.
    pub fn with_sns_subnet(self) -> Self {
        self.named(Kind::Sns)
    }

    /// Adds the II subnet.
    pub fn with_ii_subnet(self) -> Self {
        self.named(Kind::Ii)
    }

    /// Adds the fiduciary subnet.
    pub fn with_fiduciary_subnet(self) -> Self {
        self.named(Kind::Fiduciary)
    }

    /// Adds the Bitcoin subnet.
    pub fn with_bitcoin_subnet(self) -> Self {
        self.named(Kind::Bitcoin)
    }

    /// Adds a system subnet.
    pub fn with_system_subnet(mut self) -> Self {
        self.subnets.push(Kind::System);
        self
    }

    /// Adds an application subnet.
    pub fn with_application_subnet(mut self) -> Self {
        self.subnets.push(Kind::Application);
        self
    }

    /// Adds a verified application subnet.
    pub fn with_verified_application_subnet(mut self) -> Self {
        self.subnets.push(Kind::VerifiedApplication);
        self
    }

    /// The time the instance starts at (bumped by one nanosecond at creation, as PocketIC).
    pub fn with_initial_time(mut self, initial_time: Time) -> Self {
        self.initial_time = Some(initial_time);
        self
    }

    /// [`PocketIcBuilder::with_initial_time`] in nanoseconds since the UNIX epoch.
    pub fn with_initial_timestamp(self, initial_timestamp_nanos: u64) -> Self {
        self.with_initial_time(Time::from_nanos_since_unix_epoch(initial_timestamp_nanos))
    }

    /// The instance.
    ///
    /// # Panics
    /// Without subnets, or with an initial time before the IC's genesis (PocketIC's messages).
    pub fn build(self) -> PocketIc {
        assert!(
            !self.subnets.is_empty(),
            "SubnetConfigSet must contain at least one subnet"
        );
        let mut config = SimConfig {
            subnets: self.subnets,
            message_order: MessageOrder::RoundRobin,
            pocket_ic_ranges: true,
            ..SimConfig::default()
        };
        // PocketIC starts at the IC's genesis unless told otherwise.
        let nanos = self
            .initial_time
            .map_or(EARLIEST_INITIAL_TIME, |t| t.as_nanos_since_unix_epoch());
        assert!(
            nanos >= EARLIEST_INITIAL_TIME,
            "The initial timestamp (unix timestamp in nanoseconds) must be no earlier than {EARLIEST_INITIAL_TIME} (provided {nanos})."
        );
        config.initial_time_nanos = nanos;
        // PocketIC bumps the time by one nanosecond when it creates an instance.
        config.initial_time_nanos += 1;
        PocketIc {
            sim: Sim::with_config(config),
        }
    }
}

/// Calls a candid method as `sender`, routed by `effective_principal`.
pub fn call_candid_as<Input, Output>(
    env: &PocketIc,
    canister_id: CanisterId,
    effective_principal: RawEffectivePrincipal,
    sender: Principal,
    method: &str,
    input: Input,
) -> Result<Output, RejectResponse>
where
    Input: ArgumentEncoder,
    Output: for<'a> ArgumentDecoder<'a>,
{
    with_candid(input, |payload| {
        env.update_call_with_effective_principal(
            canister_id,
            effective_principal,
            sender,
            method,
            payload,
        )
    })
}

/// Calls a candid method anonymously, routed by `effective_principal`.
pub fn call_candid<Input, Output>(
    env: &PocketIc,
    canister_id: CanisterId,
    effective_principal: RawEffectivePrincipal,
    method: &str,
    input: Input,
) -> Result<Output, RejectResponse>
where
    Input: ArgumentEncoder,
    Output: for<'a> ArgumentDecoder<'a>,
{
    call_candid_as(
        env,
        canister_id,
        effective_principal,
        Principal::anonymous(),
        method,
        input,
    )
}

/// A candid query, anonymous.
pub fn query_candid<Input, Output>(
    env: &Sim,
    canister_id: CanisterId,
    method: &str,
    input: Input,
) -> Result<Output, RejectResponse>
where
    Input: ArgumentEncoder,
    Output: for<'a> ArgumentDecoder<'a>,
{
    query_candid_as(env, canister_id, Principal::anonymous(), method, input)
}

/// A candid query as `sender`.
pub fn query_candid_as<Input, Output>(
    env: &Sim,
    canister_id: CanisterId,
    sender: Principal,
    method: &str,
    input: Input,
) -> Result<Output, RejectResponse>
where
    Input: ArgumentEncoder,
    Output: for<'a> ArgumentDecoder<'a>,
{
    with_candid(input, |bytes| {
        env.query_call(canister_id, sender, method, bytes)
    })
}

/// A candid update, anonymous.
pub fn update_candid<Input, Output>(
    env: &Sim,
    canister_id: CanisterId,
    method: &str,
    input: Input,
) -> Result<Output, RejectResponse>
where
    Input: ArgumentEncoder,
    Output: for<'a> ArgumentDecoder<'a>,
{
    update_candid_as(env, canister_id, Principal::anonymous(), method, input)
}

/// A candid update as `sender`.
pub fn update_candid_as<Input, Output>(
    env: &Sim,
    canister_id: CanisterId,
    sender: Principal,
    method: &str,
    input: Input,
) -> Result<Output, RejectResponse>
where
    Input: ArgumentEncoder,
    Output: for<'a> ArgumentDecoder<'a>,
{
    with_candid(input, |bytes| {
        env.update_call(canister_id, sender, method, bytes)
    })
}

/// Encodes `input`, runs `f` on the bytes, decodes its reply.
///
/// # Panics
/// If the reply is not the candid `Output` (as PocketIC's `with_candid`).
pub fn with_candid<Input, Output>(
    input: Input,
    f: impl FnOnce(Vec<u8>) -> Result<Vec<u8>, RejectResponse>,
) -> Result<Output, RejectResponse>
where
    Input: ArgumentEncoder,
    Output: for<'a> ArgumentDecoder<'a>,
{
    let bytes = candid::encode_args(input).expect("failed to encode args");
    f(bytes).map(|reply| {
        candid::decode_args(&reply).unwrap_or_else(|e| {
            panic!(
                "Failed to decode response as candid type {}:\nerror: {e}",
                std::any::type_name::<Output>()
            )
        })
    })
}
