//! The staging canister: rehearses an upgrade of the agent on a sandbox canister it controls,
//! on a copy of the agent's real state, and reports every probe (see [`rehearsal`]).
//!
//! Controllers: staging is controlled by the agent and the operators; the sandbox by staging and
//! itself (like the live agent, so a candidate that changes its controllers shows it).
//! `rehearse` admits the agent only, one rehearsal at a time (a rehearsal whose message traps
//! frees the slot and leaves no copy behind: [`sandbox`]); reports are readable by the agent
//! and the operators. The interface is `staging.did` beside this crate (a test keeps it equal to
//! the code).

pub mod probes;
pub mod rehearsal;
pub mod sandbox;
pub mod store;
pub mod tool_probe;

use candid::Principal;
use canister_api::cdk::Busy;
use canister_api::staging::{RehearsalReport, RehearsalRequest, StagingError, StagingInit};
use ic_cdk::{init, post_upgrade, query, update};
use std::cell::Cell;

/// A rehearsal older than this is considered dead (its message trapped mid-way).
const BUSY_EXPIRY_NS: u64 = 15 * 60 * 1_000_000_000;

thread_local! {
    /// The rehearsal running: (upgrade id, since).
    static BUSY: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

#[init]
fn init(arg: StagingInit) {
    store::update(|s| {
        s.agent = Some(arg.agent);
        s.operators = arg.operators;
    });
}

/// A rehearsal cut short by an upgrade of staging may have left a copy in the sandbox.
#[post_upgrade]
fn post_upgrade() {
    ic_cdk_timers::set_timer(std::time::Duration::ZERO, sandbox::clean_if_dirty());
}

fn unauthorized(method: &str, allowed: &str) -> StagingError {
    StagingError::Unauthorized {
        caller: ic_cdk::api::msg_caller(),
        method: method.into(),
        allowed: allowed.into(),
    }
}

/// An ingress update from a caller who may not call the method is refused here, before it
/// executes: `rehearse` is the agent's (a canister, never an ingress sender), and the queries
/// need no update call (operators may still send them as one).
#[ic_cdk::inspect_message]
fn inspect_message() {
    let method = ic_cdk::api::msg_method_name();
    let caller = ic_cdk::api::msg_caller();
    let s = store::get();
    let allowed = match method.as_str() {
        "rehearse" => s.agent == Some(caller),
        "last_report" | "sandbox" => s.operators.contains(&caller),
        _ => false,
    };
    if allowed {
        ic_cdk::api::accept_message();
    }
}

/// The agent only: rehearses its upgrade; answers the report (also when the candidate fails a
/// probe: `passed` says which).
#[update]
async fn rehearse(req: RehearsalRequest) -> Result<RehearsalReport, StagingError> {
    let agent = store::get().agent.expect("set at init");
    if ic_cdk::api::msg_caller() != agent {
        return Err(unauthorized("rehearse", "the agent"));
    }
    let now = ic_cdk::api::time();
    if let Some((upgrade_id, since)) = BUSY.with(|b| b.get())
        && now < since + BUSY_EXPIRY_NS
    {
        return Err(StagingError::Busy { upgrade_id, since });
    }
    let _busy = Busy::hold(&BUSY, Some((req.upgrade_id, now)));
    let result = rehearsal::run(agent, req).await;
    if let Ok(report) = &result {
        store::update(|s| {
            s.last_report = Some(report.clone());
            s.rehearsals += 1;
        });
    }
    result
}

/// The last report (the agent and operators).
#[query]
fn last_report() -> Result<Option<RehearsalReport>, StagingError> {
    let s = store::get();
    let caller = ic_cdk::api::msg_caller();
    if s.agent != Some(caller) && !s.operators.contains(&caller) {
        return Err(unauthorized("last_report", "the agent, operators"));
    }
    Ok(s.last_report)
}

/// Public: the sandbox canister, once created.
#[query]
fn sandbox() -> Option<Principal> {
    store::get().sandbox
}

/// The generated candid service (`__export_service`, and `get_candid_pointer` for dfx).
#[allow(missing_docs)]
mod candid_export {
    use super::*;
    ic_cdk::export_candid!();

    /// `inspect_message` decides on every method of the service, and on nothing else.
    #[test]
    fn inspect_message_covers_the_exported_service() {
        let did = __export_service();
        let mut exported: Vec<&str> = did
            .lines()
            .map(str::trim)
            .filter_map(|l| l.split_once(" : ("))
            .map(|(name, _)| name)
            .filter(|name| *name != "service")
            .collect();
        exported.sort();
        assert_eq!(exported, ["last_report", "rehearse", "sandbox"]);
    }

    /// The checked-in `staging.did` is the interface the code exports.
    #[test]
    fn checked_in_did_matches_the_exported_service() {
        canister_api::assert_did_current(
            "staging",
            concat!(env!("CARGO_MANIFEST_DIR"), "/staging.did"),
            &__export_service(),
        );
    }
}
