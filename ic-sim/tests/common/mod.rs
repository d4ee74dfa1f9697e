//! Shared helpers of the fidelity suite: the probe canister, WAT fixtures, candid helpers and
//! assertions on rejects.
//!
//! Every rejection is checked on three things at once — reject code, error code and a stable part
//! of the replica's message (strings from `docs/ic-messages.md`) — so that a simulator that gets
//! the code right but the text wrong (or the reverse) still fails.
#![allow(dead_code)] // each test file uses a different subset

use std::time::Duration;

#[allow(unused_imports)] // each test file uses a different subset
pub use candid::{CandidType, Decode, Deserialize, Encode, Nat, Principal};
#[allow(unused_imports)]
pub use ic_sim::{
    CanisterInstallMode, CanisterSettings, CanisterStatusResult, CanisterStatusType, ErrorCode,
    Fault, RawMessageId, RejectCode, RejectResponse, Sim, SimConfig, Snapshot, Time,
};
use sha2::Digest;

/// Cycles every test canister gets: enough for any test, far from any limit.
pub const CYCLES: u128 = 100_000_000_000_000;

/// The management canister (aaaaa-aa).
pub fn management() -> Principal {
    Principal::management_canister()
}

/// A user principal distinct from the anonymous controller that `create_canister` sets.
pub fn stranger() -> Principal {
    Principal::self_authenticating(b"stranger")
}

/// Another user principal.
pub fn user(seed: &str) -> Principal {
    Principal::self_authenticating(seed.as_bytes())
}

// ---- Wasm ---------------------------------------------------------------------------------------

/// The probe canister's Wasm (`ic-sim/test-canisters/probe`), built once per process.
pub fn probe_wasm() -> Vec<u8> {
    canister_build::canister_wasm("ic-sim-probe").expect("the probe canister builds")
}

/// The probe Wasm gzipped: different bytes (so a different module hash), same module.
pub fn probe_wasm_gz() -> Vec<u8> {
    gzip(&probe_wasm())
}

/// Gzips bytes (the IC accepts modules starting with 1f 8b 08).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// A WAT fixture from `tests/wat/`, compiled to Wasm.
pub fn wat_fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/wat/{name}.wat", env!("CARGO_MANIFEST_DIR"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// WAT source text compiled to Wasm.
pub fn wat_text(source: &str) -> Vec<u8> {
    wat::parse_str(source).unwrap_or_else(|e| panic!("bad WAT: {e}"))
}

/// SHA-256 of bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(bytes).into()
}

/// Appends a custom section to a Wasm module.
pub fn with_custom_section(mut wasm: Vec<u8>, name: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = leb128(name.len() as u64);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    wasm.push(0);
    wasm.extend(leb128(body.len() as u64));
    wasm.extend(body);
    wasm
}

/// Unsigned LEB128.
pub fn leb128(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

// ---- the probe's candid types (mirrors of test-canisters/probe/src/api.rs) -----------------------

/// `ProbeInit` of probe.did.
#[derive(CandidType, Deserialize, Clone, Debug, Default)]
pub struct ProbeInit {
    pub trap_with: Option<String>,
    pub burn_instructions: u64,
}

/// `CallArgs` of probe.did.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct CallArgs {
    pub target: Principal,
    pub method: String,
    pub arg: Vec<u8>,
    pub cycles: Nat,
    pub bounded_wait_secs: Option<u32>,
}

impl CallArgs {
    /// An unbounded-wait call of `target.method` with a candid argument.
    pub fn new(target: Principal, method: &str, arg: Vec<u8>) -> Self {
        Self {
            target,
            method: method.to_string(),
            arg,
            cycles: Nat::from(0u8),
            bounded_wait_secs: None,
        }
    }

    /// An unbounded-wait call of `target.method` with no arguments.
    pub fn no_arg(target: Principal, method: &str) -> Self {
        Self::new(target, method, Encode!().unwrap())
    }

    /// The same call as a bounded-wait (best-effort) call with the given timeout.
    pub fn bounded(mut self, secs: u32) -> Self {
        self.bounded_wait_secs = Some(secs);
        self
    }

    /// The same call with cycles attached.
    pub fn with_cycles(mut self, cycles: u128) -> Self {
        self.cycles = Nat::from(cycles);
        self
    }
}

/// `CallOutcome` of probe.did.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    Reply(Vec<u8>),
    Reject { code: u32, message: String },
    PerformFailed(String),
}

impl CallOutcome {
    /// The reply decoded as one candid value; panics on anything else.
    pub fn reply<T: CandidType + for<'de> Deserialize<'de>>(&self) -> T {
        match self {
            CallOutcome::Reply(bytes) => Decode!(bytes, T).expect("candid reply"),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    /// The reject code and message; panics on anything else.
    pub fn reject(&self) -> (u32, &str) {
        match self {
            CallOutcome::Reject { code, message } => (*code, message),
            other => panic!("expected a reject, got {other:?}"),
        }
    }
}

// ---- setting up ---------------------------------------------------------------------------------

/// `opt ProbeInit` = null: the probe's plain init / post_upgrade argument.
pub fn no_init() -> Vec<u8> {
    Encode!(&None::<ProbeInit>).unwrap()
}

/// `opt ProbeInit` with a value.
pub fn init_arg(init: ProbeInit) -> Vec<u8> {
    Encode!(&Some(init)).unwrap()
}

/// A probe canister with [`CYCLES`], controlled by the anonymous principal.
pub fn new_probe(sim: &Sim) -> Principal {
    let id = sim.create_canister();
    sim.add_cycles(id, CYCLES);
    sim.install_canister(id, probe_wasm(), no_init(), None);
    id
}

/// A probe canister that is also its own controller (for self-upgrades and self-calls to the
/// management canister).
pub fn new_self_controlled_probe(sim: &Sim) -> Principal {
    let id = new_probe(sim);
    sim.set_controllers(id, None, vec![Principal::anonymous(), id])
        .expect("the anonymous controller may set controllers");
    id
}

/// An empty canister (no module) with [`CYCLES`].
pub fn new_empty(sim: &Sim) -> Principal {
    let id = sim.create_canister();
    sim.add_cycles(id, CYCLES);
    id
}

/// A canister running a WAT fixture, with [`CYCLES`].
pub fn new_wat(sim: &Sim, fixture: &str) -> Principal {
    let id = new_empty(sim);
    sim.install_canister(id, wat_fixture(fixture), vec![], None);
    id
}

// ---- calling ------------------------------------------------------------------------------------

/// An update call from the anonymous principal with candid bytes; the reply decoded.
pub fn update<R: CandidType + for<'de> Deserialize<'de>>(
    sim: &Sim,
    id: Principal,
    method: &str,
    arg: Vec<u8>,
) -> Result<R, RejectResponse> {
    sim.update_call(id, Principal::anonymous(), method, arg)
        .map(|bytes| Decode!(&bytes, R).unwrap_or_else(|e| panic!("{method}: bad candid: {e}")))
}

/// A query call from the anonymous principal with candid bytes; the reply decoded.
pub fn query<R: CandidType + for<'de> Deserialize<'de>>(
    sim: &Sim,
    id: Principal,
    method: &str,
    arg: Vec<u8>,
) -> Result<R, RejectResponse> {
    sim.query_call(id, Principal::anonymous(), method, arg)
        .map(|bytes| Decode!(&bytes, R).unwrap_or_else(|e| panic!("{method}: bad candid: {e}")))
}

/// `probe.inc()`.
pub fn inc(sim: &Sim, id: Principal) -> u64 {
    update(sim, id, "inc", Encode!().unwrap()).expect("inc")
}

/// `probe.read()` (query).
pub fn read(sim: &Sim, id: Principal) -> u64 {
    query(sim, id, "read", Encode!().unwrap()).expect("read")
}

/// `probe.stable_inc()`.
pub fn stable_inc(sim: &Sim, id: Principal) -> u64 {
    update(sim, id, "stable_inc", Encode!().unwrap()).expect("stable_inc")
}

/// `probe.stable_read()` (query).
pub fn stable_read(sim: &Sim, id: Principal) -> u64 {
    query(sim, id, "stable_read", Encode!().unwrap()).expect("stable_read")
}

/// `probe.canister_version()` (query).
pub fn version(sim: &Sim, id: Principal) -> u64 {
    query(sim, id, "canister_version", Encode!().unwrap()).expect("canister_version")
}

/// `probe.timers_fired()` (query).
pub fn timers_fired(sim: &Sim, id: Principal) -> u64 {
    query(sim, id, "timers_fired", Encode!().unwrap()).expect("timers_fired")
}

/// `probe.call(args)` as a blocking update call.
pub fn probe_call(sim: &Sim, caller: Principal, args: CallArgs) -> CallOutcome {
    update(sim, caller, "call", Encode!(&args).unwrap()).expect("probe.call replies")
}

/// Submits `probe.call(args)` without waiting for it.
pub fn submit_probe_call(sim: &Sim, caller: Principal, args: CallArgs) -> RawMessageId {
    sim.submit_call(
        caller,
        Principal::anonymous(),
        "call",
        Encode!(&args).unwrap(),
    )
    .expect("submit probe.call")
}

/// Decodes a successful ingress result of `probe.call`.
pub fn decode_outcome(result: Result<Vec<u8>, RejectResponse>) -> CallOutcome {
    let bytes = result.expect("probe.call replies");
    Decode!(&bytes, CallOutcome).expect("CallOutcome")
}

/// A raw little-endian u64 reply (the WAT fixtures speak raw bytes).
pub fn raw_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("8-byte reply"))
}

/// `global_timer.wat`'s `set`: arms ic0.global_timer_set, returns the previous deadline.
pub fn wat_timer_set(sim: &Sim, id: Principal, deadline: u64) -> u64 {
    raw_u64(
        &sim.update_call(
            id,
            Principal::anonymous(),
            "set",
            deadline.to_le_bytes().to_vec(),
        )
        .expect("set"),
    )
}

/// `global_timer.wat`'s `fired`.
pub fn wat_timer_fired(sim: &Sim, id: Principal) -> u64 {
    raw_u64(
        &sim.query_call(id, Principal::anonymous(), "fired", vec![])
            .expect("fired"),
    )
}

// ---- time ---------------------------------------------------------------------------------------

/// The simulated time in nanoseconds.
pub fn now(sim: &Sim) -> u64 {
    sim.get_time().as_nanos_since_unix_epoch()
}

/// Advances time, then executes a few rounds.
pub fn advance(sim: &Sim, by: Duration) {
    sim.advance_time(by);
    ticks(sim, 3);
}

/// Executes `n` rounds.
pub fn ticks(sim: &Sim, n: usize) {
    for _ in 0..n {
        sim.tick();
    }
}

// ---- assertions ---------------------------------------------------------------------------------

/// Asserts all three parts of a rejection; `needles` are stable fragments of the replica's text.
#[track_caller]
pub fn assert_reject(
    err: &RejectResponse,
    reject_code: RejectCode,
    error_code: ErrorCode,
    needles: &[&str],
) {
    assert_eq!(err.reject_code, reject_code, "reject code of {err:?}");
    assert_eq!(err.error_code, error_code, "error code of {err:?}");
    for needle in needles {
        assert!(
            err.reject_message.contains(needle),
            "reject message {:?} lacks {:?}",
            err.reject_message,
            needle
        );
    }
}

/// Unwraps an expected rejection and asserts it like [`assert_reject`].
#[track_caller]
pub fn expect_reject<T: std::fmt::Debug>(
    result: Result<T, RejectResponse>,
    reject_code: RejectCode,
    error_code: ErrorCode,
    needles: &[&str],
) -> RejectResponse {
    let err = match result {
        Ok(value) => panic!("expected {error_code:?}, got Ok({value:?})"),
        Err(err) => err,
    };
    assert_reject(&err, reject_code, error_code, needles);
    err
}

/// Asserts a reject seen by a canister (only a reject code and a message exist there).
#[track_caller]
pub fn assert_call_reject(outcome: &CallOutcome, code: RejectCode, needles: &[&str]) {
    let (got, message) = outcome.reject();
    assert_eq!(got, code as u32, "reject code of {outcome:?}");
    for needle in needles {
        assert!(
            message.contains(needle),
            "reject message {message:?} lacks {needle:?}"
        );
    }
}

/// The `ic0.trap` message as the replica words it.
pub fn called_trap(message: &str) -> String {
    format!("Canister called `ic0.trap` with message: '{message}'")
}

/// The replica's prefix for errors raised while executing a canister.
pub fn error_from(id: Principal) -> String {
    format!("Error from Canister {id}: ")
}

/// The non-controller message (IC0512).
pub fn not_controller(id: Principal) -> String {
    format!("Only the controllers of the canister {id} can control it.")
}
