//! Service: the version store's uploads and the upgrade journal's first steps.
//!
//! ```text
//! self_upgrade(ops) ----> gate --> Proposed --> Patched --> Validated --> pipeline
//! propose_release() ----> gate --> Proposed --> Patched --> Validated      (rehearsal, approval,
//!                                  (the uploaded module is the candidate)   arm, install: see
//!                                                                           `pipeline`)
//! ```
//!
//! Patch and validation run inside the proposing message, before anything is written: a
//! failure returns a typed error and leaves no trace in the journal, the version store or the
//! audit log (the IC message is the unit of atomicity). On success the record is stored with
//! its three transitions, each one audited.

use crate::api::{
    AgentError, Autonomy, CommittedWasm, SchemaRange, UpgradeRecord, UpgradeSource, UpgradeState,
    VersionInfo, WasmKind,
};
use crate::gate::{self, GateInput};
use crate::schema::{self, RANGE};
use crate::{audit, config, journal, uploads, versions};
use candid::Principal;
use canister_api::cdk::now;
use wasm_patch::{PatchOp, Stamp, ValidationPolicy};

/// How a candidate module is validated: the IC's rules, the control plane's exports
/// (`canister_api::agent::required_exports`, shared with `agentctl inspect`), and a schema
/// range that covers the schema the state is at now.
fn candidate_policy() -> ValidationPolicy {
    // Mutant (issue 12 item 2 reverted): the short list of exports before the fix.
    #[cfg(feature = "mutant-required-exports")]
    let required_exports = [
        "canister_init",
        "canister_post_upgrade",
        "canister_method health",
        "canister_update call_tool",
        "canister_update approve_upgrade",
        "canister_update reject_upgrade",
        "canister_update set_autonomy",
        "canister_update upload_wasm_chunk",
        "canister_update commit_wasm",
    ]
    .map(String::from)
    .to_vec();
    #[cfg(not(feature = "mutant-required-exports"))]
    let required_exports = canister_api::agent::required_exports();
    ValidationPolicy {
        required_exports,
        current_schema: Some(schema::stored_version()),
        ..ValidationPolicy::default()
    }
}

/// Why an upgrade step failed.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The gate refused.
    #[error(transparent)]
    Gate(#[from] gate::GateError),
    /// Something is missing.
    #[error("{0}")]
    Missing(String),
    /// wasm-patch refused the patch.
    #[error(transparent)]
    Patch(#[from] wasm_patch::PatchError),
    /// The module is not fit.
    #[error(transparent)]
    Validation(#[from] wasm_patch::ValidationError),
    /// The candidate's Candid interface would break clients of the running one.
    #[error("{0}")]
    Interface(#[from] wasm_patch::InterfaceError),
    /// Hashes differ.
    #[error("hash mismatch for {what}")]
    Hash {
        /// What was compared.
        what: String,
        /// Expected.
        expected: Vec<u8>,
        /// Found.
        actual: Vec<u8>,
    },
    /// The record's state does not allow it.
    #[error("wrong state")]
    State {
        /// The upgrade.
        id: u64,
        /// Its state.
        state: UpgradeState,
        /// What was refused.
        reason: String,
    },
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// An `add_tool` spec that does not check, or whose examples fail in the interpreter.
    #[error("{0}")]
    Tool(String),
    /// The module the IC runs is not the one the agent stores as running (installed out of
    /// band): a patch would be built on the wrong parent and undo that install.
    #[error(
        "the agent runs {ic}, but its stored running module is {stored}: the module was \
         installed outside the upgrade pipeline. Upload the module it runs (upload_wasm_chunk(\
         Running, ...), then commit_wasm(Running, sha256)) and propose again; no patch is built \
         on the old module"
    )]
    StaleParent {
        /// What the IC reports (hex, or `no module`).
        ic: String,
        /// What the agent stores as running (hex).
        stored: String,
    },
}

impl From<UpgradeError> for AgentError {
    fn from(e: UpgradeError) -> Self {
        match e {
            UpgradeError::Gate(g) => g.into(),
            UpgradeError::Missing(m) => AgentError::NotFound(m),
            UpgradeError::Patch(p) => AgentError::Patch(p.to_string()),
            UpgradeError::Validation(v) => AgentError::Validation(v.to_string()),
            UpgradeError::Interface(i) => AgentError::Validation(i.to_string()),
            UpgradeError::Hash {
                what,
                expected,
                actual,
            } => AgentError::HashMismatch {
                what,
                expected: hex::encode(expected),
                actual: hex::encode(actual),
            },
            UpgradeError::State { id, state, reason } => AgentError::WrongState {
                id,
                state: journal::state_name(&state).to_string(),
                reason,
            },
            UpgradeError::Invalid(m) => AgentError::InvalidArgument(m),
            UpgradeError::Tool(m) => AgentError::Patch(m),
            e @ UpgradeError::StaleParent { .. } => AgentError::Validation(e.to_string()),
        }
    }
}

/// The running module's hash, as last verified.
pub fn running_hash() -> Result<[u8; 32], UpgradeError> {
    config::markers().running.ok_or_else(|| {
        UpgradeError::Missing(
            "the running Wasm is not stored yet: the deployer uploads it with \
             upload_wasm_chunk(Running, ...) and commit_wasm(Running, sha256)"
                .into(),
        )
    })
}

fn metadata_text(report: &wasm_patch::ValidationReport, name: &str) -> Option<String> {
    [
        wasm_patch::Visibility::Public,
        wasm_patch::Visibility::Private,
    ]
    .into_iter()
    .find_map(|v| {
        report
            .metadata
            .get(&wasm_patch::metadata::section_name(v, name))
    })
    .and_then(|b| String::from_utf8(b.clone()).ok())
}

fn schema_range_of(report: &wasm_patch::ValidationReport) -> Option<SchemaRange> {
    metadata_text(report, wasm_patch::metadata::SCHEMA_RANGE)
        .and_then(|t| wasm_patch::metadata::parse_schema_range(&t).ok())
        .map(|(min, max)| SchemaRange { min, max })
}

/// Stores the completed upload of `kind` whose bytes hash to `expected`. For `Running`,
/// `module_hash` is what canister_status reported for the agent. Nothing is written on error
/// (the chunks stay for another try or `discard_upload`).
pub fn commit(
    caller: Principal,
    kind: WasmKind,
    expected: &[u8],
    module_hash: Option<Vec<u8>>,
) -> Result<CommittedWasm, UpgradeError> {
    let bytes = uploads::bytes(kind);
    if bytes.is_empty() {
        return Err(UpgradeError::Missing(format!(
            "no {kind:?} upload in progress"
        )));
    }
    let actual = wasm_patch::sha256(&bytes);
    if expected != actual {
        return Err(UpgradeError::Hash {
            what: format!("{kind:?} upload"),
            expected: expected.to_vec(),
            actual: actual.to_vec(),
        });
    }
    let (version, range) = match kind {
        WasmKind::Running => {
            if module_hash.as_deref() != Some(&actual[..]) {
                return Err(UpgradeError::Hash {
                    what: "running module (canister_status module_hash)".into(),
                    expected: module_hash.unwrap_or_default(),
                    actual: actual.to_vec(),
                });
            }
            (schema::build_version(), Some(RANGE))
        }
        WasmKind::Watchdog => {
            wasm_patch::validate(&bytes, &ValidationPolicy::default())?;
            ("watchdog".to_string(), None)
        }
        WasmKind::Release => {
            let report = wasm_patch::validate(&bytes, &candidate_policy())?;
            let version = metadata_text(&report, wasm_patch::metadata::VERSION)
                .unwrap_or_else(|| "release".into());
            (version, schema_range_of(&report))
        }
    };
    let at = now();
    versions::put_blob(actual, &bytes);
    if versions::get(&actual).is_none() {
        versions::put(
            actual,
            VersionInfo {
                hash: actual.to_vec(),
                version,
                parent_hash: None,
                upgrade_id: None,
                reason: format!("{kind:?} upload"),
                created_at: at,
                size: bytes.len() as u64,
                schema_range: range,
                is_running: false,
                is_lkg: false,
                outcome: None,
            },
        );
    }
    config::update_markers(|m| match kind {
        WasmKind::Running => {
            m.running = Some(actual);
            m.lkg.get_or_insert(actual);
            // The operator's upload ends a handback of the running module (`handback`).
            m.handback = None;
        }
        WasmKind::Watchdog => m.watchdog = Some(actual),
        WasmKind::Release => m.release = Some(actual),
    });
    versions::enforce_retention();
    uploads::clear(kind);
    if kind == WasmKind::Running {
        uploads::handback_clear();
    }
    audit::append(
        at,
        caller,
        "wasm.commit",
        None,
        format!("{kind:?} {} ({} bytes)", hex::encode(actual), bytes.len()),
    );
    Ok(CommittedWasm {
        kind,
        sha256: actual.to_vec(),
        size: bytes.len() as u64,
    })
}

/// The gate, with the breaker applied first (a trip is persisted and audited).
fn pass_gate(caller: Principal, source: UpgradeSource) -> Result<bool, UpgradeError> {
    let at = now();
    let mut cfg = config::get();
    let rollbacks = journal::rollbacks_since(at.saturating_sub(gate::DAY_NS));
    if gate::breaker_trips(cfg.autonomy, rollbacks) {
        cfg.autonomy = Autonomy::Manual;
        cfg.breaker_tripped_at = Some(at);
        config::set(cfg.clone());
        audit::append(
            at,
            ic_cdk::api::canister_self(),
            "config.breaker",
            None,
            format!("{rollbacks} rollbacks in 24 h: autonomy dropped to Manual"),
        );
    }
    let input = GateInput {
        autonomy: cfg.autonomy,
        source,
        now: at,
        limits: cfg.limits,
        recent: journal::created_since(at.saturating_sub(gate::DAY_NS)),
        in_flight: journal::in_flight(),
    };
    let _ = caller;
    Ok(gate::check(&input)?)
}

struct Candidate {
    hash: [u8; 32],
    wasm: Option<Vec<u8>>,
    version: String,
    parent: Option<[u8; 32]>,
    patch_json: Option<String>,
    range: Option<SchemaRange>,
    instructions: u64,
}

fn record(
    caller: Principal,
    source: UpgradeSource,
    reason: String,
    auto_approved: bool,
    c: Candidate,
) -> UpgradeRecord {
    let at = now();
    let id = journal::next_id();
    let mut rec = UpgradeRecord {
        id,
        source,
        state: UpgradeState::Proposed,
        candidate_hash: c.hash.to_vec(),
        parent_hash: c.parent.map(|p| p.to_vec()),
        version: c.version.clone(),
        reason: reason.clone(),
        patch_json: c.patch_json.clone(),
        schema_range: c.range,
        proposed_by: caller,
        created_at: at,
        approved_by: None,
        instructions: c.instructions,
        rehearsal: None,
        history: vec![],
    };
    journal::transition(&mut rec, UpgradeState::Proposed, at, caller, reason.clone());
    let patched = match &c.patch_json {
        Some(ops) => format!("patched: {ops}"),
        None => "release: the uploaded module is the candidate".to_string(),
    };
    journal::transition(&mut rec, UpgradeState::Patched, at, caller, patched);
    journal::transition(
        &mut rec,
        UpgradeState::Validated,
        at,
        caller,
        format!("candidate {} valid", hex::encode(c.hash)),
    );
    if auto_approved {
        rec.approved_by = Some(caller);
        audit::append(
            at,
            caller,
            "upgrade.approval",
            Some(id),
            approval_note(source),
        );
    }
    journal::put(&rec);
    crate::pipeline::schedule();
    if let Some(wasm) = &c.wasm {
        versions::put_blob(c.hash, wasm);
    }
    let size = versions::get(&c.hash).map_or(0, |v| v.size);
    versions::put(
        c.hash,
        VersionInfo {
            hash: c.hash.to_vec(),
            version: c.version,
            parent_hash: c.parent.map(|p| p.to_vec()),
            upgrade_id: Some(id),
            reason,
            created_at: at,
            size: c.wasm.map_or(size, |w| w.len() as u64),
            schema_range: c.range,
            is_running: false,
            is_lkg: false,
            outcome: None,
        },
    );
    versions::enforce_retention();
    rec
}

fn approval_note(source: UpgradeSource) -> String {
    match source {
        UpgradeSource::Release => "approved by the proposing operator".into(),
        UpgradeSource::SelfPatch => "approved by the gate (autonomy Auto)".into(),
    }
}

thread_local! {
    /// Checkpoints of the last self-patch (`wasm_patch::profile`): step and instruction count.
    static STEPS: std::cell::RefCell<Vec<(&'static str, u64)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The `self_upgrade` tool: patch the running Wasm, validate, record up to `Validated`.
/// `ic_running` is the module hash canister_status reports: the stored running module must be
/// that module, or the patch is refused ([`UpgradeError::StaleParent`]).
pub fn propose_self_patch(
    caller: Principal,
    ops: Vec<PatchOp>,
    reason: String,
    ic_running: Option<Vec<u8>>,
) -> Result<UpgradeRecord, UpgradeError> {
    if reason.trim().is_empty() {
        return Err(UpgradeError::Invalid("a reason is required".into()));
    }
    // Specs and their examples first: the quickest feedback, before the gate counts a proposal.
    crate::synth::check_proposal(&ops).map_err(UpgradeError::Tool)?;
    let auto = pass_gate(caller, UpgradeSource::SelfPatch)?;
    let running = running_hash()?;
    // Mutant (issue 12 item 4 reverted): the stored running module is the parent, whatever
    // the IC runs.
    if ic_running.as_deref() != Some(running.as_slice()) && !cfg!(feature = "mutant-stale-parent") {
        return Err(UpgradeError::StaleParent {
            ic: ic_running.map_or("no module".into(), hex::encode),
            stored: hex::encode(running),
        });
    }
    let parent_wasm = versions::blob(&running)
        .ok_or_else(|| UpgradeError::Missing("the running Wasm's bytes are missing".into()))?;
    let parent_version = versions::get(&running).map_or_else(schema::build_version, |v| v.version);
    let id = journal::next_id();
    let stamp =
        Stamp::new(format!("{parent_version}+patch.{id}")).with_schema_range(RANGE.min, RANGE.max);

    #[cfg(feature = "chaos")]
    crate::chaos::set_compiler_fault();
    let start = ic_cdk::api::performance_counter(0);
    STEPS.with(|s| s.borrow_mut().clear());
    wasm_patch::profile::set_hook(Some(|name| {
        STEPS.with(|s| {
            s.borrow_mut()
                .push((name, ic_cdk::api::performance_counter(0)))
        });
    }));
    // The blob store keeps modules under their verified hashes: no need to hash it again.
    let patched = wasm_patch::Parent::with_hash(&parent_wasm, running)
        .and_then(|parent| Ok((wasm_patch::apply_patch_to(&parent, &ops, &stamp)?, parent)));
    let (patched, parent) = match patched {
        Ok(p) => p,
        Err(e) => {
            wasm_patch::profile::set_hook(None);
            return Err(e.into());
        }
    };
    let after_patch = ic_cdk::api::performance_counter(0);
    let policy = ValidationPolicy {
        expected_parent: Some(running),
        ..candidate_policy()
    };
    // The parent is the running module (stored under its hash): bodies copied from it are not
    // validated again.
    let report = wasm_patch::validate_patched(&patched, &parent, &policy);
    // The parent's interface from its decoded bytes (no second gunzip).
    let parent_service = wasm_patch::interface::service_text(parent.wasm());
    drop(parent);
    wasm_patch::profile::set_hook(None);
    let report = report?;
    let after_validate = ic_cdk::api::performance_counter(0);
    // A self-patch never breaks the interface: only an operator release may, on purpose.
    let candidate_service = metadata_text(&report, wasm_patch::interface::CANDID_SERVICE);
    check_services(parent_service?, candidate_service, false)?;
    let instructions = ic_cdk::api::performance_counter(0) - start;
    let mut last = start;
    let steps: Vec<String> = STEPS.with(|s| {
        s.borrow()
            .iter()
            .map(|(name, at)| {
                let used = at - std::mem::replace(&mut last, *at);
                format!("{name} {}M", used / 1_000_000)
            })
            .collect()
    });
    ic_cdk::println!("self_upgrade {id} steps: {}", steps.join(", "));
    ic_cdk::println!(
        "self_upgrade {id}: apply_patch ({}; incl. gunzip, emit, hashes) {} instructions, validate {} instructions ({} of {} bodies), candid interface check {} instructions; heap {} bytes",
        if patched.rebuilt {
            "walrus"
        } else {
            "sections"
        },
        after_patch - start,
        after_validate - after_patch,
        report.bodies_validated,
        report.functions,
        instructions - (after_validate - start),
        crate::heap_bytes()
    );

    Ok(record(
        caller,
        UpgradeSource::SelfPatch,
        reason,
        auto,
        Candidate {
            hash: patched.module_hash,
            wasm: Some(patched.wasm),
            version: stamp.version,
            parent: Some(running),
            patch_json: Some(wasm_patch::canonical_ops_json(&ops)),
            range: Some(RANGE),
            instructions,
        },
    ))
}

/// DESIGN.md step 3's candid compatibility: the candidate's `candid:service` must be a subtype
/// of the running module's (candid's own check), unless `breaks_on_purpose`. A running module
/// without an interface leaves nothing to compare; a candidate without one is refused unless
/// it breaks on purpose (its clients could not know what it serves).
fn check_interface(
    parent_wasm: &[u8],
    candidate: Option<String>,
    breaks_on_purpose: bool,
) -> Result<(), UpgradeError> {
    if breaks_on_purpose {
        return Ok(());
    }
    check_services(
        wasm_patch::interface::service_text(parent_wasm)?,
        candidate,
        false,
    )
}

/// [`check_interface`] of the running module's service text `old`: an unchanged text is a
/// subtype of itself, so candid is parsed only when a patch or a release changed it (parsing
/// the agent's interface twice costs some 0.38 B instructions).
fn check_services(
    old: Option<String>,
    candidate: Option<String>,
    breaks_on_purpose: bool,
) -> Result<(), UpgradeError> {
    // Mutant (issue 12 item 2 reverted): no candid compatibility check.
    if breaks_on_purpose || cfg!(feature = "mutant-interface-check") {
        return Ok(());
    }
    let Some(old) = old else {
        return Ok(());
    };
    let new = candidate.ok_or_else(|| {
        UpgradeError::Invalid(
            "the candidate declares no Candid interface (no candid:service metadata), so it \
             cannot be checked against the running one; propose it with breaks_interface = opt \
             true if that is intended"
                .into(),
        )
    })?;
    if new == old {
        return Ok(());
    }
    Ok(wasm_patch::interface::check_subtype(&new, &old)?)
}

/// An operator release: the committed `Release` upload becomes a proposal. Its Candid
/// interface must be a subtype of the running one unless `breaks_interface`.
pub fn propose_release(
    caller: Principal,
    reason: String,
    breaks_interface: bool,
) -> Result<UpgradeRecord, UpgradeError> {
    let hash = config::markers().release.ok_or_else(|| {
        UpgradeError::Missing(
            "no committed release: upload_wasm_chunk(Release, ...) then commit_wasm(Release, sha256)"
                .into(),
        )
    })?;
    if let Some(parent) = config::markers().running.and_then(|r| versions::blob(&r)) {
        let release = versions::blob(&hash)
            .ok_or_else(|| UpgradeError::Missing("the release's bytes".into()))?;
        let service = wasm_patch::interface::service_text(&release)?;
        check_interface(&parent, service, breaks_interface)?;
    }
    pass_gate(caller, UpgradeSource::Release)?;
    let info = versions::get(&hash)
        .ok_or_else(|| UpgradeError::Missing("the release's version record".into()))?;
    let rec = record(
        caller,
        UpgradeSource::Release,
        reason,
        true,
        Candidate {
            hash,
            wasm: None,
            version: info.version,
            parent: config::markers().running,
            patch_json: None,
            range: info.schema_range,
            instructions: 0,
        },
    );
    config::update_markers(|m| m.release = None);
    Ok(rec)
}

fn open(id: u64, what: &str) -> Result<UpgradeRecord, UpgradeError> {
    let rec = journal::get(id).ok_or_else(|| UpgradeError::Missing(format!("upgrade {id}")))?;
    if rec.state.is_terminal() {
        return Err(UpgradeError::State {
            id,
            state: rec.state,
            reason: format!("cannot {what} a finished upgrade"),
        });
    }
    Ok(rec)
}

/// An operator approves upgrade `id`.
pub fn approve(caller: Principal, id: u64) -> Result<UpgradeRecord, UpgradeError> {
    let mut rec = open(id, "approve")?;
    if rec.approved_by.is_some() {
        return Err(UpgradeError::State {
            id,
            state: rec.state,
            reason: "already approved".into(),
        });
    }
    rec.approved_by = Some(caller);
    audit::append(
        now(),
        caller,
        "upgrade.approval",
        Some(id),
        "approved by an operator".into(),
    );
    journal::put(&rec);
    crate::pipeline::schedule();
    Ok(rec)
}

/// An operator rejects upgrade `id`.
pub fn reject(caller: Principal, id: u64, reason: String) -> Result<UpgradeRecord, UpgradeError> {
    let mut rec = open(id, "reject")?;
    if matches!(
        rec.state,
        UpgradeState::Armed | UpgradeState::Installing | UpgradeState::Booted
    ) {
        return Err(UpgradeError::State {
            id,
            state: rec.state,
            reason: "it is armed: the watchdog decides now (an operator rolls back with the \
                     watchdog's `rollback`)"
                .into(),
        });
    }
    journal::transition(
        &mut rec,
        UpgradeState::Rejected(reason.clone()),
        now(),
        caller,
        reason,
    );
    journal::put(&rec);
    if let Some(hash) = canister_api::hash32(&rec.candidate_hash)
        && let Some(mut v) = versions::get(&hash)
    {
        v.outcome = Some("rejected".into());
        versions::put(hash, v);
    }
    versions::enforce_retention();
    Ok(rec)
}

/// An operator sets the autonomy level (clearing a tripped breaker when raising it).
pub fn set_autonomy(caller: Principal, autonomy: Autonomy) {
    let mut cfg = config::get();
    let before = cfg.autonomy;
    cfg.autonomy = autonomy;
    config::set(cfg);
    audit::append(
        now(),
        caller,
        "config.autonomy",
        None,
        format!("{before:?} -> {autonomy:?}"),
    );
}

/// The query methods the agent added to itself with committed self-patches (newest last).
pub fn own_methods() -> Vec<String> {
    let mut methods: Vec<String> = vec![];
    let mut records = vec![];
    let mut from = Some(0);
    while let Some(start) = from {
        let page = journal::page(start, 100);
        from = page.next_from;
        records.extend(page.records);
    }
    for rec in records {
        if rec.source != UpgradeSource::SelfPatch || rec.state != UpgradeState::Committed {
            continue;
        }
        let ops: Vec<serde_json::Value> = rec
            .patch_json
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default();
        for op in ops {
            let Some(name) = op["name"].as_str() else {
                continue;
            };
            match op["op"].as_str() {
                Some("add_query_method") if !methods.iter().any(|m| m == name) => {
                    methods.push(name.to_string())
                }
                Some("remove_method") => methods.retain(|m| m != name),
                _ => {}
            }
        }
    }
    methods
}
