//! Service: who may call what.
//!
//! Every update method names the roles it admits; a refusal is
//! `AgentError::Unauthorized { caller, method, allowed }`. Queries that expose the agent's
//! data (tasks, facts, journal, audit log, versions, config) admit operators, the agent itself
//! the watchdog and staging; `health`, `state_digest`, `metrics` and `tools` are public (the watchdog and dashboards poll
//! them, and they reveal nothing a controller could not see with canister_status).

use crate::api::AgentError;
use crate::{config, sandbox};
use candid::Principal;

/// A kind of caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A principal in `Config::operators`.
    Operator,
    /// The agent canister itself (timers, self-calls).
    SelfCanister,
    /// The configured watchdog canister.
    Watchdog,
    /// The configured staging canister.
    Staging,
    /// The staging canister calling a sandbox copy (never the live agent): it replays writes
    /// there to probe the candidate's write paths.
    StagingInSandbox,
}

/// Operators only.
pub const OPERATORS: &[Role] = &[Role::Operator];
/// Operators and the agent itself.
pub const OPERATORS_SELF: &[Role] = &[Role::Operator, Role::SelfCanister];
/// Operators, the agent itself, the watchdog and staging (data queries; staging replays them
/// on its sandbox copy).
pub const READERS: &[Role] = &[
    Role::Operator,
    Role::SelfCanister,
    Role::Watchdog,
    Role::Staging,
];
/// The watchdog only (its verdicts on upgrades).
pub const WATCHDOG: &[Role] = &[Role::Watchdog];
/// The watchdog and the agent itself (the canary write).
pub const WATCHDOG_SELF: &[Role] = &[Role::Watchdog, Role::SelfCanister];
/// Domain writes (tasks, facts): operators, the agent itself, and staging in a sandbox copy.
pub const WRITERS: &[Role] = &[
    Role::Operator,
    Role::SelfCanister,
    Role::StagingInSandbox,
];

fn has(caller: Principal, role: Role) -> bool {
    match role {
        Role::Operator => config::get().operators.contains(&caller),
        Role::SelfCanister => caller == ic_cdk::api::canister_self(),
        Role::Watchdog => config::get().watchdog == Some(caller),
        Role::Staging => config::get().staging == Some(caller),
        Role::StagingInSandbox => config::get().staging == Some(caller) && sandbox::is_copy(),
    }
}

/// The caller, if it has one of `roles`; else the refusal naming caller and method.
pub fn require(method: &str, roles: &[Role]) -> Result<Principal, AgentError> {
    let caller = ic_cdk::api::msg_caller();
    if roles.iter().any(|r| has(caller, *r)) {
        return Ok(caller);
    }
    let allowed = roles
        .iter()
        .map(|r| match r {
            Role::Operator => "operators",
            Role::SelfCanister => "the agent itself",
            Role::Watchdog => "the watchdog",
            Role::Staging => "the staging canister",
            Role::StagingInSandbox => "the staging canister in a sandbox copy",
        })
        .collect::<Vec<_>>()
        .join(", ");
    Err(AgentError::Unauthorized {
        caller,
        method: method.to_string(),
        allowed,
    })
}

pub use canister_api::check_operators;
