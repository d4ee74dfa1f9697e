//! Every update method of the watchdog and staging refuses a caller that is not allowed, with an
//! `Unauthorized` error naming caller and method, and changes nothing; the tables cover every
//! update method of `watchdog.did` and `staging.did`. The watchdog's methods are the agent's
//! (`arm`, `disarm`, `note_repair`) or the operators' (`rollback`, `pause`, `resume`,
//! `configure`, `set_operators`). As ingress, `canister_inspect_message` refuses the others
//! before the method runs; from a canister, the method's own check does.

use candid::{CandidType, Decode, Deserialize, Encode, Principal};
use canister_api::agent::RepairNotice;
use canister_api::agent::{AgentInit, Autonomy};
use canister_api::staging::{RehearsalRequest, StagingError};
use canister_api::watchdog::{ArmRequest, RollbackTarget, WatchdogConfig, WatchdogError};
use testbed::{Options, Testbed, operator, stranger};

fn update_methods(did: &str) -> Vec<String> {
    did.lines()
        .map(str::trim)
        .filter_map(|l| l.split_once(" : ("))
        .filter(|(name, sig)| *name != "service" && !sig.ends_with("query;"))
        .map(|(name, _)| name.to_string())
        .collect()
}

fn arm_request() -> ArmRequest {
    ArmRequest {
        upgrade_id: 1,
        candidate_hash: vec![1; 32],
        candidate_version: "x".into(),
        candidate_schema_range: None,
        parent_hash: vec![2; 32],
        parent_version: "y".into(),
        parent_schema_range: None,
        restore_init: AgentInit {
            operators: vec![],
            watchdog: None,
            staging: None,
            autonomy: Autonomy::Manual,
            sandbox: None,
            turn_loop: None,
        },
        resume: None,
    }
}

#[test]
fn watchdog_and_staging_refuse_every_caller_but_the_allowed_one() {
    let tb = Testbed::deploy(Options::default());
    let notice = RepairNotice {
        at: 0,
        by: tb.agent,
        repaired: tb.watchdog,
        action: "start".into(),
        detail: "x".into(),
        incident_id: None,
        module_hash: None,
        decided: None,
    };
    let silent = WatchdogConfig {
        heartbeat_interval_secs: 86_400,
        ..WatchdogConfig::default()
    };
    // (method, argument, allowed caller)
    let watchdog_calls: Vec<(&str, Vec<u8>, Principal)> = vec![
        ("arm", Encode!(&arm_request()).unwrap(), tb.agent),
        ("disarm", Encode!(&1u64, &"r").unwrap(), tb.agent),
        ("note_repair", Encode!(&notice).unwrap(), tb.agent),
        (
            "rollback",
            Encode!(&RollbackTarget::Lkg).unwrap(),
            operator(),
        ),
        ("pause", Encode!().unwrap(), operator()),
        ("resume", Encode!().unwrap(), operator()),
        ("configure", Encode!(&silent).unwrap(), operator()),
        (
            "set_operators",
            Encode!(&vec![stranger()]).unwrap(),
            operator(),
        ),
    ];
    let did = include_str!("../../watchdog/watchdog.did");
    let mut methods = update_methods(did);
    methods.sort();
    let mut table: Vec<String> = watchdog_calls.iter().map(|(m, ..)| m.to_string()).collect();
    table.sort();
    assert_eq!(methods, table, "the table covers watchdog.did's updates");
    #[derive(CandidType, Deserialize)]
    enum AnyResult<E> {
        Ok(candid::Reserved),
        Err(E),
    }
    // Through a canister that is nobody in particular, the methods' own checks refuse it.
    let probe = testbed::install_probe(&tb.sim);
    for (method, arg, _) in &watchdog_calls {
        let reply = testbed::call_via(&tb.sim, probe, tb.watchdog, method, arg.clone())
            .unwrap_or_else(|e| panic!("watchdog {method}: rejected instead of refused: {e}"));
        match Decode!(&reply, AnyResult<WatchdogError>).unwrap() {
            AnyResult::Err(WatchdogError::Unauthorized {
                caller: c,
                method: m,
                ..
            }) => assert_eq!((c, m.as_str()), (probe, *method)),
            _ => panic!("watchdog {method} by the probe: not refused"),
        }
    }
    let req = RehearsalRequest {
        upgrade_id: 1,
        current_hash: vec![0; 32],
        candidate_hash: vec![1; 32],
        candidate_schema_range: None,
        budgets: None,
    };
    let reply = testbed::call_via(
        &tb.sim,
        probe,
        tb.staging,
        "rehearse",
        Encode!(&req).unwrap(),
    )
    .expect("rehearse through the probe");
    match Decode!(&reply, AnyResult<StagingError>).unwrap() {
        AnyResult::Err(StagingError::Unauthorized { caller: c, .. }) => assert_eq!(c, probe),
        _ => panic!("staging rehearse by the probe: not refused"),
    }
    // As ingress, `canister_inspect_message` refuses every caller but the allowed one before
    // the method runs: no cycles are charged.
    let cycles = (
        tb.sim.cycle_balance(tb.watchdog),
        tb.sim.cycle_balance(tb.staging),
    );
    let queries: Vec<(Principal, &str, Vec<u8>)> = vec![
        (tb.watchdog, "status", Encode!().unwrap()),
        (tb.watchdog, "incidents", Encode!(&0u64, &10u32).unwrap()),
        (tb.watchdog, "events", Encode!(&0u64, &10u64).unwrap()),
        (tb.watchdog, "detection_bound_secs", Encode!().unwrap()),
        (
            tb.watchdog,
            "lkg_chunk",
            Encode!(&serde_bytes::ByteBuf::from(vec![0u8; 32]), &0u64).unwrap(),
        ),
        (tb.staging, "last_report", Encode!().unwrap()),
        (tb.staging, "sandbox", Encode!().unwrap()),
    ];
    for caller in [
        stranger(),
        operator(),
        Principal::anonymous(),
        tb.staging,
        tb.agent,
    ] {
        let mut calls: Vec<(Principal, &str, Vec<u8>)> = watchdog_calls
            .iter()
            .filter(|(_, _, allowed)| *allowed != caller)
            .map(|(m, arg, _)| (tb.watchdog, *m, arg.clone()))
            .collect();
        if caller != tb.agent {
            calls.push((tb.staging, "rehearse", Encode!(&req).unwrap()));
        }
        if caller != operator() {
            calls.extend(queries.iter().cloned());
        }
        for (canister, method, arg) in calls {
            match tb.raw_update(canister, caller, method, arg) {
                Err(e) => assert!(e.reject_message.contains("rejected the message"), "{e}"),
                Ok(_) => panic!("{method} by {caller}: executed as an ingress update"),
            }
        }
    }
    assert_eq!(
        (
            tb.sim.cycle_balance(tb.watchdog),
            tb.sim.cycle_balance(tb.staging)
        ),
        cycles,
        "refused ingress messages cost nothing"
    );
    let did = include_str!("../../staging/staging.did");
    assert_eq!(
        update_methods(did),
        ["rehearse"],
        "the table covers staging's updates"
    );
    // Nothing changed: nothing armed, no restore, settings and operators as deployed, no
    // repair noted, no sandbox created.
    let status = tb.watchdog_status();
    assert!(status.armed.is_none());
    assert!(status.restore.is_none());
    assert!(!status.paused);
    assert_eq!(status.config, WatchdogConfig::default());
    assert_eq!(status.operators, vec![operator()]);
    assert_eq!(status.repairs, 0);
    assert_eq!(status.incidents, 0);
    let sandbox: Option<Principal> =
        tb.query(tb.staging, stranger(), "sandbox", Encode!().unwrap());
    assert_eq!(sandbox, None);
}

#[test]
fn the_agent_exports_its_state_only_to_staging_during_a_rehearsal() {
    use canister_api::agent::{AgentError, StateChunk};
    let tb = Testbed::deploy(Options::default());
    // Staging itself is refused while no rehearsal paused the writes.
    let r: Result<StateChunk, AgentError> = tb.query(
        tb.agent,
        tb.staging,
        "export_state",
        Encode!(&0u64, &1024u64).unwrap(),
    );
    match r {
        Err(AgentError::InvalidArgument(m)) => assert!(m.contains("no rehearsal"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The real agent never imports a state, not even from staging.
    let chunk = StateChunk {
        offset: 0,
        total: 3,
        bytes: serde_bytes::ByteBuf::from(vec![0, 0, 0]),
    };
    let before = tb.digest();
    let r: Result<(), AgentError> = Decode!(
        &tb.raw_update(tb.agent, tb.staging, "import_state", Encode!(&chunk).unwrap()).unwrap(),
        Result<(), AgentError>
    )
    .unwrap();
    assert!(matches!(r, Err(AgentError::Unauthorized { .. })), "{r:?}");
    let after = tb.digest();
    assert!(after.same_state(&before), "{after:?}");
    assert_eq!(
        (after.journal_transitions, after.audit_next),
        (before.journal_transitions, before.audit_next)
    );
    assert!(!tb.health().sandbox_copy);
}
