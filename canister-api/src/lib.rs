//! The candid types of the three canisters' interfaces, in one crate because each canister calls
//! the other two: the agent calls staging (`rehearse`) and the watchdog (`arm`, `disarm`);
//! staging calls the agent and its sandbox copy; the watchdog calls the agent (`health`,
//! `export_module`, `upgrade_armed`, `complete_upgrade`, `note_repair`), and the agent heartbeats
//! and repairs the watchdog (`status`, `note_repair`).
//!
//! - [`agent`]: everything `agent/agent.did` names.
//! - [`staging`]: everything `staging/staging.did` names.
//! - [`watchdog`]: everything `watchdog/watchdog.did` names.
//! - [`turns`]: the agent's turn loop (re-exported by [`agent`]).
//! - [`llm`]: the IC's LLM canister (`v1_chat`), which the agent calls, and the scripts of
//!   `llm-standin`, its test double on ic-sim.
//! - [`cadence`]: the fast and steady heartbeat cadences and their detection bounds.
//! - [`failure`]: the classes of a failed call (code, stopped, stopping, out of cycles, network).
//! - `ic` (feature `cdk`): typed calls, and the management canister.
//! - `cdk` (feature `cdk`): the time, the canister's own principal, the single-flight guard.
//! - [`page`]: how every list endpoint pages by bytes with a cursor.
//! - [`schema`]: the schema range a build declares (shared by all three interfaces).
//! - [`digest`]: the agent's logical state digest (an order-independent hash of its records).
//! - [`service`]: the kinds of a service's methods, and the methods a service text declares.
//!
//! Hashes are `blob`s of 32 bytes in records and lowercase hex in messages; times are
//! nanoseconds since the UNIX epoch; instruction counts are the IC's.

pub mod agent;
pub mod cadence;
pub mod digest;
pub mod failure;
pub mod llm;
pub mod page;
pub mod schema;
pub mod service;
pub mod staging;
pub mod turns;
pub mod watchdog;

/// Largest piece of a module or of stable memory moved in one inter-canister reply: 1 MiB,
/// well under the IC's 2 MiB response limit.
pub const TRANSFER_CHUNK: u64 = 1024 * 1024;

#[cfg(feature = "cdk")]
pub mod cdk;
#[cfg(feature = "cdk")]
pub mod ic;
#[cfg(feature = "cdk")]
pub mod stable;

/// `bytes` as a 32-byte hash, if it is one (hashes travel as `blob`s).
pub fn hash32(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

/// Operators a canister keeps at most.
pub const MAX_OPERATORS: usize = 20;

/// Why an operator list is not acceptable, if it is not: it must not be empty (nobody could
/// steer the canister), hold the anonymous principal, or exceed [`MAX_OPERATORS`].
pub fn check_operators(operators: &[candid::Principal]) -> Result<(), String> {
    if operators.is_empty() {
        return Err("the operator list must not be empty (nobody could steer the canister)".into());
    }
    if operators.len() > MAX_OPERATORS {
        return Err(format!("at most {MAX_OPERATORS} operators"));
    }
    if operators.contains(&candid::Principal::anonymous()) {
        return Err("the anonymous principal cannot be an operator".into());
    }
    Ok(())
}

/// The problems of heartbeat settings (shared by both canisters' settings).
pub(crate) fn heartbeat_problems(
    interval_secs: u64,
    failure_threshold: u32,
    timeout_secs: u32,
    cycles_floor: u128,
    cycles_reserve: u128,
    beat: &cadence::Beat,
) -> Vec<&'static str> {
    let mut problems = vec![];
    if let Some(p) = beat.steady_problem() {
        problems.push(p);
    }
    if interval_secs == 0 || interval_secs > 86_400 {
        problems.push("heartbeat_interval_secs must be 1..=86400");
    }
    if failure_threshold == 0 || failure_threshold > 100 {
        problems.push("failure_threshold must be 1..=100");
    }
    if timeout_secs == 0 || timeout_secs > 300 {
        problems.push("heartbeat_timeout_secs must be 1..=300");
    }
    if cycles_reserve > cycles_floor {
        problems.push("cycles_reserve must not exceed cycles_floor");
    }
    problems
}

pub(crate) fn problems_to_result(problems: Vec<&'static str>) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// For each canister's unit test: fails unless the checked-in `.did` at `path` equals the service
/// the code exports (`exported`, from `ic_cdk::export_candid!`). With `BLESS=1` in the
/// environment it writes `exported` there first. Not built for the canisters themselves.
#[cfg(not(target_arch = "wasm32"))]
pub fn assert_did_current(package: &str, path: &str, exported: &str) {
    if std::env::var("BLESS").is_ok() {
        std::fs::write(path, exported).unwrap_or_else(|e| panic!("writing {path}: {e}"));
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == exported,
        "{path} is stale; regenerate with BLESS=1 cargo test -p {package} --lib candid_export\n{exported}"
    );
}
