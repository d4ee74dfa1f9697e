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
/// The agent itself only (the turn loop's own calls).
pub const SELF: &[Role] = &[Role::SelfCanister];
/// The watchdog and the agent itself (the canary write).
pub const WATCHDOG_SELF: &[Role] = &[Role::Watchdog, Role::SelfCanister];
/// Domain writes (tasks, facts): operators, the agent itself, and staging in a sandbox copy.
pub const WRITERS: &[Role] = &[Role::Operator, Role::SelfCanister, Role::StagingInSandbox];
/// The staging canister only (`import_state` into a sandbox, `export_state` for a rehearsal).
pub const STAGING: &[Role] = &[Role::Staging];
/// Anyone (the public queries).
pub const PUBLIC: &[Role] = &[];

/// How a method is exported (`canister_update` or `canister_query`).
pub use canister_api::service::MethodKind as Kind;

/// Every method the agent exports, its kind and who may call it: what `inspect_message` goes
/// by (a test keeps it equal to `agent.did`). The endpoints check the same roles themselves,
/// for calls from canisters, which `inspect_message` does not see.
pub const METHODS: &[(&str, Kind, &[Role])] = &[
    ("health", HEALTH_KIND, PUBLIC),
    ("state_digest", Kind::Query, PUBLIC),
    ("metrics", Kind::Query, PUBLIC),
    ("tools", Kind::Query, PUBLIC),
    ("submit_task", Kind::Update, WRITERS),
    ("set_task_status", Kind::Update, WRITERS),
    ("get_task", Kind::Query, READERS),
    ("list_tasks", Kind::Query, READERS),
    ("remember", Kind::Update, WRITERS),
    ("recall", Kind::Query, READERS),
    ("forget", Kind::Update, WRITERS),
    ("list_facts", Kind::Query, READERS),
    ("call_tool", Kind::Update, OPERATORS_SELF),
    ("set_loop_enabled", Kind::Update, OPERATORS),
    ("set_llm", Kind::Update, OPERATORS),
    ("set_survival", Kind::Update, OPERATORS),
    ("set_prompt_layer", Kind::Update, OPERATORS),
    ("loop_status", Kind::Query, READERS),
    ("turns", Kind::Query, READERS),
    ("run_tool_call", Kind::Update, SELF),
    ("upload_wasm_chunk", Kind::Update, OPERATORS),
    ("discard_upload", Kind::Update, OPERATORS),
    ("commit_wasm", Kind::Update, OPERATORS),
    ("propose_release", Kind::Update, OPERATORS),
    ("approve_upgrade", Kind::Update, OPERATORS),
    ("reject_upgrade", Kind::Update, OPERATORS),
    ("set_autonomy", Kind::Update, OPERATORS),
    ("set_gate_limits", Kind::Update, OPERATORS),
    ("set_operators", Kind::Update, OPERATORS),
    ("set_supervision", Kind::Update, OPERATORS),
    ("set_version_retention", Kind::Update, OPERATORS),
    ("note_repair", Kind::Update, WATCHDOG),
    ("upgrade_armed", Kind::Update, WATCHDOG),
    ("complete_upgrade", Kind::Update, WATCHDOG),
    ("export_module", Kind::Query, READERS),
    ("export_state", Kind::Query, STAGING),
    ("import_state", Kind::Update, STAGING),
    ("canary_write", Kind::Update, WATCHDOG_SELF),
    ("get_config", Kind::Query, READERS),
    ("upgrade_status", Kind::Query, READERS),
    ("upgrade_history", Kind::Query, READERS),
    ("list_versions", Kind::Query, READERS),
    ("audit_log", Kind::Query, READERS),
    ("tool_examples", Kind::Query, READERS),
];

/// `health` is a query, except in the chaos build, where it is an update (it may await).
const HEALTH_KIND: Kind = if cfg!(feature = "chaos") {
    Kind::Update
} else {
    Kind::Query
};

/// Whether `caller` may send `method` as an ingress update (`canister_inspect_message`):
/// an update method to a caller with one of its roles (anyone for a public one); a query
/// method, which needs no update call, to operators only (`dfx canister call --update`), so
/// that a stranger cannot make the agent pay for replicated executions. Unknown methods are
/// refused.
pub fn ingress_allowed(method: &str, caller: Principal) -> bool {
    let Some((_, kind, roles)) = METHODS.iter().find(|(name, ..)| *name == method) else {
        return false;
    };
    let is_operator = || has(caller, Role::Operator);
    match kind {
        Kind::Update => roles.is_empty() || roles.iter().any(|r| has(caller, *r)),
        Kind::Query => is_operator() && (roles.is_empty() || roles.contains(&Role::Operator)),
    }
}

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
