//! Issue 12, "Close the holes in the safety net": one test per hole, each of which failed on the
//! code before its fix (a14b2b4). Wedges (items 1, 3-7), bad candidates that were committed
//! (items 2, 8, 9), false rollbacks (item 10).

use candid::{Decode, Encode, Principal};
use canister_api::agent::{
    AgentError, AgentMethod, Autonomy, Caller, Config, LoopStatus, MethodKind, ModuleChunk,
    ProposeRelease, Supervision, UpgradeRecord, UpgradeState, WasmKind,
};
use canister_api::watchdog::{ArmReceipt, WatchdogError};
use ic_sim::Fault;
use std::time::Duration;
use testbed::{
    Options, Testbed, chaos_candidate, chaos_release, operator, release, stranger, wasm,
};

const LIMIT: Duration = Duration::from_secs(30 * 60);
/// The gate's cooldown between two proposals, and a second.
const COOLDOWN: Duration = Duration::from_secs(601);

fn seeded(opts: Options) -> Testbed {
    let tb = Testbed::deploy(opts);
    tb.seed_state(10, 10);
    tb
}

fn terminal(tb: &Testbed, id: u64) -> UpgradeRecord {
    tb.run_until(LIMIT, |tb| tb.record(id).state.is_terminal())
        .unwrap_or_else(|| panic!("upgrade {id} did not finish: {:?}", tb.record(id)));
    tb.record(id)
}

fn audit_count(tb: &Testbed, action: &str) -> usize {
    tb.audit()
        .entries
        .iter()
        .filter(|e| e.action == action)
        .count()
}

fn event_of(tb: &Testbed, action: &str, id: Option<u64>) -> bool {
    tb.events()
        .iter()
        .any(|e| e.action == action && (id.is_none() || e.upgrade_id == id))
}

fn reject(tb: &Testbed, id: u64, reason: &str) -> Result<UpgradeRecord, AgentError> {
    tb.agent_update(
        operator(),
        "reject_upgrade",
        Encode!(&id, &reason.to_string()).unwrap(),
    )
}

fn set_autonomy(tb: &Testbed, autonomy: Autonomy) -> Result<(), AgentError> {
    tb.agent_update(operator(), "set_autonomy", Encode!(&autonomy).unwrap())
}

fn paused_for(tb: &Testbed, kind: &str) -> bool {
    tb.health()
        .writes_paused
        .is_some_and(|p| p.starts_with(kind))
}

fn failed_with(rec: &UpgradeRecord, needle: &str) {
    match &rec.state {
        UpgradeState::Failed(why) => assert!(why.contains(needle), "{why}"),
        other => panic!(
            "expected Failed({needle}...), got {other:?}: {:?}",
            rec.history
        ),
    }
}

fn probe<'a>(rec: &'a UpgradeRecord, name: &str) -> &'a canister_api::staging::ProbeResult {
    let report = rec.rehearsal.as_ref().expect("a rehearsal report");
    report
        .probes
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no probe {name}: {:?}", report.probes))
}

/// The agent's stored module `hash` (export_module, as the watchdog reads it).
fn stored_module(tb: &Testbed, hash: &[u8]) -> Vec<u8> {
    let mut bytes = vec![];
    loop {
        let chunk: Result<ModuleChunk, AgentError> = tb.agent_query(
            "export_module",
            Encode!(
                &serde_bytes::ByteBuf::from(hash.to_vec()),
                &(bytes.len() as u64)
            )
            .unwrap(),
        );
        let chunk = chunk.expect("export_module");
        bytes.extend_from_slice(&chunk.bytes);
        if chunk.bytes.is_empty() || bytes.len() as u64 >= chunk.total {
            return bytes;
        }
    }
}

// ---- 1. the write pause is a lease, lifted by every end --------------------------------------

#[test]
fn item1_a_rejection_while_the_arm_is_in_flight_lifts_the_pause_and_reconciles_the_verdict() {
    let tb = seeded(Options::default());
    let id = tb
        .propose_release(&chaos_release("none"), "release")
        .expect("propose_release")
        .id;
    assert!(
        tb.tick_until(100_000, |tb| event_of(tb, "arm.accepted", Some(id))),
        "the watchdog accepts the arm request"
    );
    assert!(paused_for(&tb, "upgrade"), "the arm request paused writes");
    // Operator methods are never refused by the pause: it guards tasks and facts only.
    set_autonomy(&tb, Autonomy::ApproveEach).expect("set_autonomy during the pause");
    let rec = reject(&tb, id, "changed my mind").expect("reject_upgrade");
    assert!(matches!(rec.state, UpgradeState::Rejected(_)));
    assert!(
        !paused_for(&tb, "upgrade"),
        "the rejection lifted the pause"
    );
    // The watchdog had accepted the arm; the agent refuses to install a rejected upgrade, the
    // watchdog abandons it, and its Failed verdict meets the Rejected record.
    tb.run_until(LIMIT, |tb| event_of(tb, "verdict.delivered", Some(id)))
        .expect("the verdict is acknowledged");
    assert_eq!(audit_count(&tb, "upgrade.verdict_reconciled"), 1);
    assert!(matches!(tb.record(id).state, UpgradeState::Rejected(_)));
    assert!(tb.watchdog_status().armed.is_none());
    assert_eq!(tb.health().writes_paused, None);
    tb.try_remember("default", "after", "rejection")
        .expect("writes resume");
}

/// A release whose arm the watchdog accepted before it died, before its snapshot: no verdict
/// will ever come, so the upgrade's write pause holds for its whole lease. Its id.
fn paused_without_a_verdict(tb: &Testbed) -> u64 {
    let id = tb
        .propose_release(&chaos_release("none"), "release")
        .expect("propose_release")
        .id;
    assert!(tb.tick_until(100_000, |tb| audit_count(tb, "upgrade.arm_accepted") == 1));
    tb.sim
        .uninstall_canister(tb.watchdog, Some(operator()))
        .unwrap();
    id
}

#[test]
fn item1_a_write_pause_ends_with_its_lease_and_the_operator_can_reject() {
    let tb = seeded(Options::default());
    let id = paused_without_a_verdict(&tb);
    tb.run_for(Duration::from_secs(50 * 60));
    assert!(
        matches!(
            tb.try_remember("default", "during", "lease"),
            Err(AgentError::WritesPaused { .. })
        ),
        "still inside the lease"
    );
    tb.run_for(Duration::from_secs(11 * 60));
    assert_eq!(tb.health().writes_paused, None, "the lease ended");
    tb.try_remember("default", "after", "lease")
        .expect("writes resume after the lease");
    // The upgrade itself waits for an operator: rejecting it ends it.
    assert_eq!(tb.record(id).state, UpgradeState::Approved);
    reject(&tb, id, "the watchdog never armed it").expect("reject_upgrade");
    tb.self_upgrade_greeting("the next one")
        .expect("a new proposal is admitted");
}

/// The agent's operator-only update methods, from canister_api's method table. The agent's own
/// access table (`agent::auth::METHODS`) must name the same ones, so a method added to either is
/// covered here.
fn operator_updates() -> Vec<AgentMethod> {
    let from_api: Vec<AgentMethod> = AgentMethod::ALL
        .into_iter()
        .filter(|m| m.kind() == MethodKind::Update && m.callers() == [Caller::Operators])
        .collect();
    let mut names: Vec<&str> = from_api.iter().map(|m| m.name()).collect();
    let mut from_agent: Vec<&str> = agent::auth::METHODS
        .iter()
        .filter(|(_, kind, roles)| *kind == MethodKind::Update && *roles == agent::auth::OPERATORS)
        .map(|(name, ..)| *name)
        .collect();
    names.sort();
    from_agent.sort();
    assert_eq!(names, from_agent, "canister_api and agent::auth disagree");
    from_api
}

/// A harmless argument for operator method `m` (the current settings where it sets some).
fn operator_arg(tb: &Testbed, m: AgentMethod, upgrade_id: u64) -> Vec<u8> {
    let config: Config = tb
        .agent_query::<Result<Config, AgentError>>("get_config", Encode!().unwrap())
        .expect("get_config");
    let status: LoopStatus = tb
        .agent_query::<Result<LoopStatus, AgentError>>("loop_status", Encode!().unwrap())
        .expect("loop_status");
    let release = WasmKind::Release;
    match m {
        AgentMethod::SetLoopEnabled => Encode!(&false),
        AgentMethod::SetLlm => Encode!(&status.llm),
        AgentMethod::SetSurvival => Encode!(&status.survival),
        AgentMethod::SetPromptLayer => Encode!(&"ops", &Some("be brief".to_string())),
        AgentMethod::SetAutonomy => Encode!(&config.autonomy),
        AgentMethod::SetGateLimits => Encode!(&config.limits),
        AgentMethod::SetOperators => Encode!(&config.operators),
        AgentMethod::SetSupervision => Encode!(&config.supervision.unwrap_or_default()),
        AgentMethod::SetVersionRetention => Encode!(&3u32),
        AgentMethod::UploadWasmChunk => Encode!(&release, &serde_bytes::ByteBuf::from(vec![0; 8])),
        AgentMethod::CommitWasm => Encode!(&release, &serde_bytes::ByteBuf::from(vec![0; 32])),
        AgentMethod::DiscardUpload => Encode!(&release),
        AgentMethod::ProposeRelease => Encode!(&ProposeRelease {
            reason: "during the pause".into(),
            breaks_interface: None,
        }),
        AgentMethod::ApproveUpgrade => Encode!(&upgrade_id),
        AgentMethod::RejectUpgrade => Encode!(&upgrade_id, &"the last call".to_string()),
        other => panic!("no argument for operator method {other:?}: add one"),
    }
    .unwrap()
}

/// Issue 12 item 1 says operator methods are never blocked by the write pause: every
/// operator-only update of the method table, called during an upgrade's pause, is answered by
/// its own logic (a success or its own refusal), never `WritesPaused`. The turn loop's setters
/// and `set_version_retention` were refused.
#[test]
fn item1_no_operator_method_is_refused_by_the_write_pause() {
    let tb = seeded(Options::default());
    let id = paused_without_a_verdict(&tb);
    // Rejecting ends the upgrade and its pause: it goes last.
    let mut methods = operator_updates();
    methods.sort_by_key(|m| *m == AgentMethod::RejectUpgrade);
    assert!(methods.len() >= 15, "{methods:?}");
    let mut refused = Vec::new();
    for m in methods {
        assert!(paused_for(&tb, "upgrade"), "paused before {}", m.name());
        let arg = operator_arg(&tb, m, id);
        let answer: Result<candid::Reserved, AgentError> =
            tb.agent_update(operator(), m.name(), arg);
        if let Err(e @ AgentError::WritesPaused { .. }) = answer {
            refused.push(format!("{}: {e}", m.name()));
        }
    }
    assert!(refused.is_empty(), "refused by the pause: {refused:#?}");
    assert!(matches!(tb.record(id).state, UpgradeState::Rejected(_)));
    assert_eq!(tb.health().writes_paused, None, "the rejection lifted it");
}

// ---- 2. the control plane comes from one list; candid compatibility ----------------------------

/// A release without the control plane's `export_module` (removed from its exports and from
/// its `candid:service`).
fn release_without_export_module() -> Vec<u8> {
    let stamp = wasm_patch::Stamp::new("no-export-module").with_schema_range(1, 3);
    let ops = [wasm_patch::PatchOp::RemoveMethod {
        name: "export_module".into(),
    }];
    wasm_patch::apply_patch(&chaos_candidate("none"), &ops, &stamp)
        .unwrap()
        .wasm
}

#[test]
fn item2_a_release_without_export_module_is_refused() {
    let tb = seeded(Options::default());
    let e = tb
        .try_propose_release(&release_without_export_module(), "drops export_module")
        .unwrap_err();
    assert!(e.contains("export_module"), "{e}");
}

/// The candid check alone would catch the release above (its service lost a method); an
/// operator who breaks the interface on purpose skips that check, and the control plane's
/// required exports must still hold. (Guards the required-exports list itself: the mutant
/// `required-exports` restores the old short list.)
#[test]
fn item2_an_intended_interface_break_still_keeps_the_control_plane() {
    let tb = seeded(Options::default());
    let e = tb
        .try_propose_release_as(
            &release_without_export_module(),
            "drops export_module on purpose",
            true,
        )
        .unwrap_err();
    assert!(e.contains("export_module"), "{e}");
    assert_eq!(tb.health().upgrade_in_flight, None, "nothing was proposed");
}

#[test]
fn item2_a_candidate_whose_control_plane_traps_fails_its_rehearsal() {
    let tb = seeded(Options::default());
    let parent = tb.agent_module();
    let rec = tb
        .propose_release(&chaos_release("verdict_trap"), "complete_upgrade traps")
        .unwrap();
    let rec = terminal(&tb, rec.id);
    failed_with(&rec, "control_plane");
    let p = probe(&rec, "control_plane");
    assert!(!p.ok && p.detail.contains("complete_upgrade"), "{p:?}");
    assert_eq!(tb.agent_module(), parent, "never installed");
}

#[test]
fn item2_an_interface_break_is_refused_unless_an_operator_release_means_it() {
    let tb = seeded(Options::default());
    // A self-patch that removes a method the running interface declares.
    match tb.tool(
        "self_upgrade",
        r#"{"ops":[{"op":"remove_method","name":"metrics"}],"reason":"drop metrics"}"#,
    ) {
        Err(AgentError::Validation(m)) => {
            assert!(m.contains("not a subtype") && m.contains("metrics"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    // The same change as an operator release: refused, unless it says it breaks on purpose.
    let stamp = wasm_patch::Stamp::new("no-metrics").with_schema_range(1, 3);
    let ops = [wasm_patch::PatchOp::RemoveMethod {
        name: "metrics".into(),
    }];
    let bytes = wasm_patch::apply_patch(&chaos_candidate("none"), &ops, &stamp)
        .unwrap()
        .wasm;
    let service = wasm_patch::interface::service_text(&bytes)
        .unwrap()
        .unwrap();
    assert!(
        !service.contains("metrics :"),
        "the patch dropped it from candid:service"
    );
    let e = tb.try_propose_release(&bytes, "drops metrics").unwrap_err();
    assert!(e.contains("not a subtype"), "{e}");
    let rec = tb
        .propose_breaking_release(&bytes, "drops metrics on purpose")
        .expect("an intended break is admitted");
    assert_eq!(rec.state, UpgradeState::Validated);
    // A patch that adds a method keeps a subtype and declares the method.
    reject(&tb, rec.id, "enough").unwrap();
    tb.run_for(COOLDOWN);
    let out = tb.self_upgrade_greeting("greet").expect("self_upgrade");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let candidate = hex::decode(v["candidate_hash"].as_str().unwrap()).unwrap();
    let service = wasm_patch::interface::service_text(&stored_module(&tb, &candidate))
        .unwrap()
        .unwrap();
    assert!(service.contains("hello : () -> (text) query"), "{service}");
}

// ---- 3. one pipeline step at a time -------------------------------------------------------

#[test]
fn item3_an_approval_during_the_rehearsal_runs_one_rehearsal_and_commits() {
    let tb = seeded(Options {
        autonomy: Autonomy::ApproveEach,
        ..Options::default()
    });
    let out = tb.self_upgrade_greeting("greet").expect("self_upgrade");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = v["id"].as_u64().unwrap();
    assert!(
        tb.tick_until(100_000, |tb| paused_for(tb, "rehearsal")),
        "the rehearsal copies the state"
    );
    tb.approve(id).expect("approve_upgrade mid-rehearsal");
    let rec = terminal(&tb, id);
    assert_eq!(rec.state, UpgradeState::Committed, "{:?}", rec.history);
    assert_eq!(audit_count(&tb, "upgrade.rehearsal_started"), 1);
}

// ---- 4. the parent is what the IC runs ----------------------------------------------------

#[test]
fn item4_a_module_installed_out_of_band_is_never_patched_over_and_is_adopted_once_stored() {
    let tb = seeded(Options::default());
    tb.run_until(LIMIT, |tb| tb.watchdog_status().lkg.is_some())
        .expect("the watchdog holds its LKG");
    let deployed = testbed::gzip(&release(&wasm("agent"), "0.1.0-oob", (1, 3)));
    tb.sim
        .upgrade_canister(tb.agent, deployed.clone(), vec![], Some(operator()))
        .expect("an operator deploys out of band");
    match tb.self_upgrade_greeting("on the old parent") {
        Err(AgentError::Validation(m)) => {
            assert!(m.contains("outside the upgrade pipeline"), "{m}");
            assert!(m.contains("commit_wasm(Running"), "{m}");
        }
        other => panic!("a patch of the stale parent must be refused: {other:?}"),
    }
    tb.run_until(LIMIT, |tb| event_of(tb, "agent.out_of_band", None))
        .expect("the watchdog notices the module");
    assert!(
        tb.watchdog_status()
            .alerts
            .iter()
            .any(|a| a.contains("installed outside the pipeline")),
        "{:?}",
        tb.watchdog_status().alerts
    );
    // The operator stores the module it deployed: the watchdog adopts it as the LKG.
    tb.upload(WasmKind::Running, &deployed);
    tb.commit(WasmKind::Running, &testbed::sha256(&deployed))
        .expect("commit_wasm(Running)");
    tb.run_until(LIMIT, |tb| {
        tb.watchdog_status().lkg.map(|l| l.hash) == Some(testbed::sha256(&deployed))
    })
    .expect("the watchdog adopts the deployed module");
    let out = tb
        .self_upgrade_greeting("on the new parent")
        .expect("self_upgrade");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["parent_hash"].as_str(),
        Some(hex::encode(testbed::sha256(&deployed)).as_str())
    );
}

// ---- 5. a candidate that cannot take its verdict -------------------------------------------

#[test]
fn item5_a_candidate_whose_verdict_traps_is_rolled_back_not_left_in_flight() {
    let tb = seeded(Options::default());
    let parent = tb.agent_module().unwrap();
    let rec = tb
        .propose_release(&chaos_release("verdict_trap_live"), "verdict traps")
        .unwrap();
    let rec = terminal(&tb, rec.id);
    assert!(
        matches!(&rec.state, UpgradeState::RolledBack(why) if why.contains("verdict")),
        "{:?}",
        rec.state
    );
    assert!(event_of(&tb, "commit.failed", Some(rec.id)));
    assert_eq!(tb.agent_module(), Some(parent.clone()));
    assert_eq!(tb.watchdog_status().lkg.unwrap().hash, parent);
    tb.run_for(COOLDOWN);
    tb.self_upgrade_greeting("next")
        .expect("nothing is in flight");
}

// ---- 6. staging is trap-safe and self-healing; the envelope fits --------------------------

fn sandbox_of(tb: &Testbed) -> Option<Principal> {
    tb.query(tb.staging, stranger(), "sandbox", Encode!().unwrap())
}

#[test]
fn item6_a_rehearsal_that_traps_half_way_frees_staging_and_leaves_no_copy() {
    let tb = seeded(Options::default());
    let state = tb.sim.get_stable_memory(tb.agent).len();
    let rec = tb.propose_release(&chaos_release("none"), "first").unwrap();
    // Trap staging's next message once the sandbox holds a copy of the agent's state.
    assert!(tb.tick_until(100_000, |tb| {
        sandbox_of(tb).is_some_and(|s| tb.sim.get_stable_memory(s).len() >= state / 2)
    }));
    tb.sim.inject(Fault::TrapNextMessage {
        canister: tb.staging,
    });
    let rec = terminal(&tb, rec.id);
    failed_with(&rec, "staging could not rehearse");
    assert!(tb.sim.faults_fired().trapped > 0);
    let sandbox = sandbox_of(&tb).unwrap();
    tb.run_until(LIMIT, |tb| tb.sim.module_hash(sandbox).is_none())
        .expect("the copy does not linger");
    tb.run_for(COOLDOWN);
    let rec = tb
        .propose_release(&chaos_release("none"), "second")
        .unwrap();
    let rec = terminal(&tb, rec.id);
    assert_eq!(rec.state, UpgradeState::Committed, "{:?}", rec.history);
}

#[test]
fn item6_a_sandbox_left_without_cycles_is_refilled() {
    let tb = seeded(Options::default());
    let rec = tb
        .propose_release(&chaos_release("burn_all"), "burns the sandbox's cycles")
        .unwrap();
    let rec = terminal(&tb, rec.id);
    assert!(
        matches!(rec.state, UpgradeState::Failed(_)),
        "{:?}",
        rec.state
    );
    let sandbox = sandbox_of(&tb).unwrap();
    assert!(tb.sim.cycle_balance(sandbox) < 1_000_000_000_000);
    tb.run_for(COOLDOWN);
    let rec = tb.propose_release(&chaos_release("none"), "next").unwrap();
    let rec = terminal(&tb, rec.id);
    assert_eq!(rec.state, UpgradeState::Committed, "{:?}", rec.history);
    let p = probe(&rec, "sandbox");
    assert!(p.detail.contains("refilled"), "{p:?}");
    assert!(probe(&rec, "cleanup").ok);
}

#[test]
fn item6_the_rehearsal_requires_a_healthy_status() {
    let tb = seeded(Options::default());
    let parent = tb.agent_module();
    let rec = tb
        .propose_release(&chaos_release("reports_unhealthy_all"), "unhealthy")
        .unwrap();
    let rec = terminal(&tb, rec.id);
    failed_with(&rec, "rehearsal failed: health");
    assert_eq!(tb.agent_module(), parent, "never installed");
}

// ---- 7. the install waits for the agent's outgoing calls ---------------------------------

#[test]
fn item7_the_install_waits_for_a_held_heartbeat() {
    let tb = seeded(Options::default());
    let parent = watchdog_stand_in(&tb);
    let rec = tb
        .propose_release(&chaos_release("none"), "release")
        .unwrap();
    assert!(tb.tick_until(100_000, |tb| audit_count(tb, "upgrade.arm_accepted") == 1));
    // A heartbeat's response is held: the agent has a call in flight.
    tb.sim.inject(Fault::HoldResponses { from: tb.watchdog });
    assert!(tb.tick_until(100_000, |tb| tb.sim.held_responses() > 0));
    arm_and_drain(&tb, &rec, &parent, "the heartbeat");
}

/// The model's call (`v1_chat`, made with ic-cdk's `Call` directly to attach cycles) counts as
/// in flight too: armed while the model thinks, the install waits for its answer, whose
/// callback runs in the module that made the call; then the install goes out, and the turn
/// still ends Done.
#[test]
fn item7_the_install_waits_for_the_models_answer() {
    // No seeded tasks: the task below is the only one, so the model's call is its turn's.
    let tb = Testbed::deploy(Options {
        llm: true,
        ..Options::default()
    });
    tb.set_llm(canister_api::agent::LlmSettings {
        canister: tb.llm,
        interval_secs: 5,
        timeout_secs: 240,
        ..Default::default()
    })
    .expect("set_llm");
    tb.set_loop_enabled(true).expect("set_loop_enabled");
    tb.load_script(
        "think",
        // Always: the answer comes back while writes are paused for the upgrade, is held on
        // the heap, dropped by the install and asked for again (turn/driver.rs `Held`).
        vec![testbed::llm::always(testbed::llm::on_task(
            "think it over",
            testbed::llm::say("I thought it over."),
        ))],
    );
    let parent = watchdog_stand_in(&tb);
    // The model's answer is held (up to the 240 s timeout): the agent's only call in flight
    // is `v1_chat` while the release is rehearsed and armed.
    tb.sim.inject(Fault::HoldResponses {
        from: tb.llm.expect("the stand-in model"),
    });
    let task = tb.try_submit("think it over").expect("submit_task");
    assert!(tb.tick_until(100_000, |tb| tb.sim.held_responses() > 0));
    let rec = tb
        .propose_release(&chaos_release("none"), "release")
        .unwrap();
    assert!(tb.tick_until(100_000, |tb| audit_count(tb, "upgrade.arm_accepted") == 1));
    assert_eq!(tb.sim.held_responses(), 1, "the model has not answered yet");
    arm_and_drain(&tb, &rec, &parent, "the model's call");
    let done = tb.run_until_task_ends(task.id, LIMIT);
    assert_eq!(
        done.status,
        canister_api::agent::TaskStatus::Done,
        "{done:?}"
    );
}

/// Replaces the watchdog with a stand-in that accepts every arm request (`arm` answers a
/// deadline) and has no `status`: the test plays the watchdog's part from there on. Heartbeats
/// of the watchdog every second, each waiting up to 30 s; no repair. Answers the module the
/// agent runs.
fn watchdog_stand_in(tb: &Testbed) -> Option<Vec<u8>> {
    let reply = Encode!(&Ok::<u64, WatchdogError>(u64::MAX)).unwrap();
    let stand_in = wasm_patch::apply_patch(
        &wasm("ic-sim-probe"),
        &[wasm_patch::PatchOp::AddQueryMethod {
            name: "arm".into(),
            reply,
        }],
        &wasm_patch::Stamp::new("watchdog stand-in"),
    )
    .unwrap()
    .wasm;
    tb.sim
        .reinstall_canister(tb.watchdog, stand_in, Encode!().unwrap(), Some(operator()))
        .unwrap();
    tb.set_supervision(Supervision {
        heartbeat_interval_secs: 1,
        heartbeat_timeout_secs: 30,
        failure_threshold: 100,
        ..Supervision::default()
    })
    .unwrap();
    tb.agent_module()
}

/// Arms upgrade `rec` as the watchdog would while `held` (a call of the agent) is in flight:
/// no install for 5 s (Armed, the parent runs, `upgrade.draining` once); once the held
/// response comes back (to the old module), the install goes out.
fn arm_and_drain(tb: &Testbed, rec: &UpgradeRecord, parent: &Option<Vec<u8>>, held: &str) {
    arm_as_the_watchdog(tb, rec.id, parent);
    tb.run_for(Duration::from_secs(5));
    assert_eq!(
        tb.record(rec.id).state,
        UpgradeState::Armed,
        "no install while {held} is in flight"
    );
    assert_eq!(&tb.agent_module(), parent);
    assert_eq!(audit_count(tb, "upgrade.draining"), 1);
    tb.sim.clear_faults();
    tb.sim.release_held_responses();
    tb.run_until(LIMIT, |tb| {
        tb.try_record(rec.id)
            .is_some_and(|r| r.state == UpgradeState::Booted)
    })
    .expect("installed once drained");
    assert_eq!(tb.agent_module(), Some(rec.candidate_hash.clone()));
}

/// What the watchdog does once it took its snapshot: tells the agent that upgrade `id` is
/// armed; the agent answers Armed.
fn arm_as_the_watchdog(tb: &Testbed, id: u64, parent: &Option<Vec<u8>>) {
    let armed = tb.sim.update_call(
        tb.agent,
        tb.watchdog,
        "upgrade_armed",
        Encode!(&ArmReceipt {
            upgrade_id: id,
            snapshot_id: vec![],
            lkg_hash: parent.clone().unwrap(),
            deadline: u64::MAX,
        })
        .unwrap(),
    );
    let armed = Decode!(&armed.unwrap(), Result<UpgradeRecord, AgentError>).unwrap();
    assert_eq!(armed.unwrap().state, UpgradeState::Armed);
}

// ---- 8. broken writes do not pass ---------------------------------------------------------

#[test]
fn item8_a_candidate_whose_writes_trap_fails_its_rehearsal() {
    let tb = seeded(Options::default());
    let parent = tb.agent_module();
    let rec = tb
        .propose_release(&chaos_release("writes_trap"), "writes trap")
        .unwrap();
    let rec = terminal(&tb, rec.id);
    failed_with(&rec, "write");
    assert!(!probe(&rec, "write remember").ok);
    assert!(!probe(&rec, "write submit_task").ok);
    assert_eq!(tb.agent_module(), parent, "never installed");
}

#[test]
fn item8_a_candidate_whose_writes_trap_only_live_is_rolled_back_on_probation() {
    let tb = seeded(Options::default());
    let parent = tb.agent_module().unwrap();
    let before = tb.digest();
    let rec = tb
        .propose_release(&chaos_release("writes_trap_live"), "writes trap live")
        .unwrap();
    let rec = terminal(&tb, rec.id);
    assert!(
        matches!(&rec.state, UpgradeState::RolledBack(why) if why.contains("canary")),
        "{:?}",
        rec.state
    );
    assert_eq!(tb.agent_module(), Some(parent));
    assert!(
        tb.digest().same_state(&before),
        "the canary leaves no trace"
    );
    tb.try_remember("default", "after", "rollback")
        .expect("writes work again");
}

// ---- 9. controllers -----------------------------------------------------------------------

#[test]
fn item9_a_candidate_that_drops_the_operators_is_rolled_back() {
    let tb = seeded(Options::default());
    let parent = tb.agent_module().unwrap();
    let rec = tb
        .propose_release(&chaos_release("drops_operators"), "drops the operators")
        .unwrap();
    let rec = terminal(&tb, rec.id);
    let UpgradeState::RolledBack(reason) = &rec.state else {
        panic!("{:?}", rec.history)
    };
    // The reason names the removed operator as dfx and icp print principals.
    assert!(
        reason.contains(&format!(
            "{} were removed from the agent's controllers",
            operator()
        )),
        "{reason}"
    );
    assert_eq!(tb.agent_module(), Some(parent));
    let controllers = tb.sim.get_controllers(tb.agent);
    for c in [operator(), tb.agent, tb.watchdog] {
        assert!(
            controllers.contains(&c),
            "{c} lost control: {controllers:?}"
        );
    }
}

#[test]
fn item9_a_candidate_that_seizes_control_is_refused_by_the_rehearsal() {
    let tb = seeded(Options::default());
    let parent = tb.agent_module();
    let rec = tb
        .propose_release(&chaos_release("seizes_control"), "seizes control")
        .unwrap();
    let rec = terminal(&tb, rec.id);
    failed_with(&rec, "controllers");
    assert!(!probe(&rec, "controllers").ok);
    assert!(!probe(&rec, "cleanup").ok, "the cleanup says it failed");
    assert_eq!(tb.agent_module(), parent, "never installed");
    // Staging makes a new sandbox for the next rehearsal.
    let lost = rec.rehearsal.as_ref().unwrap().sandbox;
    tb.run_for(COOLDOWN);
    let rec = tb.propose_release(&chaos_release("none"), "next").unwrap();
    let rec = terminal(&tb, rec.id);
    assert_eq!(rec.state, UpgradeState::Committed, "{:?}", rec.history);
    assert_ne!(rec.rehearsal.unwrap().sandbox, lost);
}

#[test]
fn item9_a_watchdog_that_lost_control_says_so_and_waits_for_it() {
    let tb = seeded(Options::default());
    let parent = tb.agent_module().unwrap();
    let rec = tb
        .propose_release(&chaos_release("seizes_control_live"), "seizes control live")
        .unwrap();
    tb.run_until(LIMIT, |tb| event_of(tb, "control.lost", None))
        .expect("the watchdog notices");
    tb.run_until(LIMIT, |tb| !tb.incidents().is_empty())
        .expect("the candidate fails its probation");
    tb.run_for(Duration::from_secs(120));
    let status = tb.watchdog_status();
    assert!(
        status
            .alerts
            .iter()
            .any(|a| a.contains("not a controller of the agent")),
        "{:?}",
        status.alerts
    );
    let inc = &tb.incidents()[0];
    assert!(!inc.attempts.is_empty());
    assert!(
        inc.attempts.iter().all(|a| a.contains("waiting")),
        "no rung is tried without control: {:?}",
        inc.attempts
    );
    assert!(inc.restored_at.is_none());
    assert!(!event_of(&tb, "ladder.exhausted", None));
    // Control comes back (only the agent itself can give it here): the restore resumes.
    tb.sim
        .set_controllers(
            tb.agent,
            Some(tb.agent),
            vec![tb.agent, tb.watchdog, operator()],
        )
        .unwrap();
    let rec = terminal(&tb, rec.id);
    assert!(
        matches!(rec.state, UpgradeState::RolledBack(_)),
        "{:?}",
        rec.state
    );
    assert!(event_of(&tb, "control.regained", None));
    assert_eq!(tb.agent_module(), Some(parent));
}

// ---- 10. failures are classified ----------------------------------------------------------

fn commit_good_release(tb: &Testbed) -> UpgradeRecord {
    let rec = tb
        .propose_release(&chaos_release("none"), "release")
        .unwrap();
    let rec = terminal(tb, rec.id);
    assert_eq!(rec.state, UpgradeState::Committed, "{:?}", rec.history);
    rec
}

#[test]
fn item10_an_operator_stop_of_a_committed_version_is_never_rolled_back() {
    let tb = seeded(Options::default());
    let rec = commit_good_release(&tb);
    tb.sim.stop_canister(tb.agent, Some(operator())).unwrap();
    tb.run_for(Duration::from_secs(120));
    assert!(tb.incidents().is_empty(), "{:?}", tb.incidents());
    let status = tb.watchdog_status();
    assert!(
        status
            .alerts
            .iter()
            .any(|a| a.contains("the agent is stopped")),
        "{:?}",
        status.alerts
    );
    assert_eq!(status.consecutive_failures, 0);
    tb.sim.start_canister(tb.agent, Some(operator())).unwrap();
    tb.run_until(LIMIT, |tb| {
        tb.watchdog_status()
            .last_heartbeat
            .is_some_and(|h| h.healthy)
    })
    .expect("heartbeats resume");
    assert!(
        tb.watchdog_status()
            .alerts
            .iter()
            .all(|a| !a.contains("stopped"))
    );
    assert_eq!(tb.agent_module(), Some(rec.candidate_hash));
}

#[test]
fn item10_an_agent_out_of_cycles_raises_the_alert_and_is_not_rolled_back() {
    let tb = seeded(Options::default());
    let rec = tb
        .propose_release(&chaos_release("starves_late"), "runs out of cycles")
        .unwrap();
    let rec = terminal(&tb, rec.id);
    assert_eq!(rec.state, UpgradeState::Committed, "{:?}", rec.history);
    // The candidate burns down to its freezing threshold and keeps just enough to run messages
    // but not to make calls; its timer then retries once per block (ic-sim's
    // `min_round_interval`, as on the IC), each retry paying an execution, until it is frozen:
    // about an hour of simulated time.
    // Looked at once a simulated minute: the wait is long.
    let alerted = |tb: &Testbed| {
        tb.watchdog_status()
            .alerts
            .iter()
            .any(|a| a.contains("out of cycles"))
    };
    let minutes = (0..6 * 60)
        .find(|_| {
            tb.run_for(Duration::from_secs(60));
            alerted(&tb)
        })
        .expect("the alert is raised within 6 hours");
    println!("the alert came within {} min of the commit", minutes + 1);
    tb.run_for(Duration::from_secs(120));
    assert!(tb.incidents().is_empty(), "{:?}", tb.incidents());
    assert_eq!(tb.agent_module(), Some(rec.candidate_hash.clone()));
    tb.sim.add_cycles(tb.agent, testbed::CYCLES);
    tb.run_until(LIMIT, |tb| {
        tb.watchdog_status()
            .last_heartbeat
            .is_some_and(|h| h.healthy)
    })
    .expect("heartbeats resume once topped up");
}

// ---- same class: a restore of an arm-time snapshot ends the restored in-flight upgrade -------

#[test]
fn a_snapshot_rollback_after_the_commit_ends_the_restored_upgrade_and_writes_resume() {
    let tb = seeded(Options::default());
    let rec = commit_good_release(&tb);
    // The snapshot the watchdog took when it armed the release: in it, the release is in
    // flight and writes are paused for it.
    let snapshots = tb
        .sim
        .list_canister_snapshots(tb.agent, Some(operator()))
        .unwrap();
    assert_eq!(snapshots.len(), 1);
    tb.rollback(canister_api::watchdog::RollbackTarget::Snapshot(
        snapshots[0].id.clone(),
    ))
    .expect("rollback to the arm-time snapshot");
    tb.run_until(LIMIT, |tb| {
        tb.incidents()
            .first()
            .is_some_and(|i| i.restored_at.is_some())
    })
    .expect("restored");
    // Well within the write pause's lease (60 min): the notice of the restore ends the
    // upgrade the snapshot holds in flight, as the watchdog had decided it (Committed: a
    // terminal record never changes; the incident says the agent runs the older module), and
    // writes resume.
    tb.run_until(Duration::from_secs(300), |tb| {
        tb.record(rec.id).state.is_terminal()
    })
    .unwrap_or_else(|| panic!("still in flight after the restore: {:?}", tb.record(rec.id)));
    let ended = tb.record(rec.id);
    assert_eq!(ended.state, UpgradeState::Committed, "{:?}", ended.history);
    let last = ended.history.last().expect("a transition");
    assert!(
        last.reason.contains("restored the agent (Snapshot)")
            && last.reason.contains("as the watchdog had decided"),
        "{}",
        last.reason
    );
    assert_eq!(tb.health().writes_paused, None);
    assert_eq!(tb.health().upgrade_in_flight, None);
    tb.try_submit("after the restore").expect("writes resume");
    // And the next upgrade is not refused as "another in flight".
    tb.run_for(COOLDOWN);
    let next = tb
        .propose_release(&chaos_release("none"), "again")
        .expect("a new proposal is accepted");
    assert_eq!(terminal(&tb, next.id).state, UpgradeState::Committed);
}
