//! Service: who may call what, for `canister_inspect_message`. The endpoints check their
//! callers themselves (`caller_is_agent`, `caller_is_operator` in `lib.rs`), also for calls from
//! canisters, which `inspect_message` does not see; this table refuses an ingress update from
//! anyone else before it executes and costs the watchdog cycles.

use crate::store;
use candid::Principal;

/// Who may call a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callers {
    /// The agent canister (never an ingress sender).
    Agent,
    /// The operators.
    Operators,
    /// The agent and the operators.
    AgentAndOperators,
    /// Anyone (the public queries).
    Public,
}

/// How a method is exported (`canister_update` or `canister_query`).
pub use canister_api::service::MethodKind as Kind;

/// Every method the watchdog exports (a test keeps it equal to `watchdog.did`).
pub const METHODS: &[(&str, Kind, Callers)] = &[
    ("arm", Kind::Update, Callers::Agent),
    ("disarm", Kind::Update, Callers::Agent),
    ("note_repair", Kind::Update, Callers::Agent),
    ("rollback", Kind::Update, Callers::Operators),
    ("pause", Kind::Update, Callers::Operators),
    ("resume", Kind::Update, Callers::Operators),
    ("configure", Kind::Update, Callers::Operators),
    ("set_operators", Kind::Update, Callers::Operators),
    ("status", Kind::Query, Callers::Public),
    ("incidents", Kind::Query, Callers::Public),
    ("events", Kind::Query, Callers::Public),
    ("detection_bound_secs", Kind::Query, Callers::Public),
    ("lkg_chunk", Kind::Query, Callers::AgentAndOperators),
];

/// Whether `caller` may send `method` as an ingress update: an update method to its callers; a
/// query method, which needs no update call, to operators only. Unknown methods are refused.
pub fn ingress_allowed(method: &str, caller: Principal) -> bool {
    let Some((_, kind, callers)) = METHODS.iter().find(|(name, ..)| *name == method) else {
        return false;
    };
    let st = store::get();
    let is_operator = st.operators.contains(&caller);
    match (kind, callers) {
        (Kind::Query, _) | (Kind::Update, Callers::Operators) => is_operator,
        (Kind::Update, Callers::Agent) => caller == st.agent,
        (Kind::Update, Callers::AgentAndOperators) => is_operator || caller == st.agent,
        (Kind::Update, Callers::Public) => true,
    }
}
