//! How a canister's Candid service exports its methods: the kind of each method (query or
//! update), shared by the access tables of the agent and the watchdog, and the list a
//! generated service text declares (what their tests compare those tables with).

/// Whether a method is a query or an update in a `.did` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    /// `query`.
    Query,
    /// An update.
    Update,
}

/// The methods a service text declares (one per line, as `candid::export_service` writes
/// them), with their kinds, sorted by name.
pub fn methods(did: &str) -> Vec<(String, MethodKind)> {
    let mut methods: Vec<(String, MethodKind)> = did
        .lines()
        .map(str::trim)
        .filter_map(|l| l.split_once(" : ("))
        .filter(|(name, _)| *name != "service")
        .map(|(name, sig)| {
            let kind = if sig.trim_end().ends_with("query;") {
                MethodKind::Query
            } else {
                MethodKind::Update
            };
            (name.to_string(), kind)
        })
        .collect();
    methods.sort_by(|a, b| a.0.cmp(&b.0));
    methods
}
