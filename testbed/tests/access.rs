//! Every update method of the watchdog and staging refuses a caller that is not allowed, with an
//! `Unauthorized` error naming caller and method, and changes nothing; the tables cover every
//! update method of `watchdog.did` and `staging.did`. The watchdog's methods are the agent's
//! (`arm`, `disarm`, `note_repair`) or the operators' (`rollback`, `pause`, `resume`,
//! `configure`, `set_operators`).

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
    for caller in [
        stranger(),
        operator(),
        Principal::anonymous(),
        tb.staging,
        tb.agent,
    ] {
        for (method, arg, allowed) in &watchdog_calls {
            if caller == *allowed {
                continue;
            }
            let reply = tb
                .raw_update(tb.watchdog, caller, method, arg.clone())
                .unwrap();
            match Decode!(&reply, AnyResult<WatchdogError>).unwrap() {
                AnyResult::Err(WatchdogError::Unauthorized {
                    caller: c,
                    method: m,
                    ..
                }) => {
                    assert_eq!((c, m.as_str()), (caller, *method));
                }
                _ => panic!("watchdog {method} by {caller}: not refused"),
            }
        }
        if caller == tb.agent {
            continue; // the agent is the one caller staging admits
        }
        let req = RehearsalRequest {
            upgrade_id: 1,
            current_hash: vec![0; 32],
            candidate_hash: vec![1; 32],
            candidate_schema_range: None,
            budgets: None,
        };
        let reply = tb
            .raw_update(tb.staging, caller, "rehearse", Encode!(&req).unwrap())
            .unwrap();
        match Decode!(&reply, AnyResult<StagingError>).unwrap() {
            AnyResult::Err(StagingError::Unauthorized { caller: c, .. }) => assert_eq!(c, caller),
            _ => panic!("staging rehearse by {caller}: not refused"),
        }
    }
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
    assert!(
        tb.digest().same_state(&before),
        "the refused import changed nothing"
    );
    assert!(!tb.health().sandbox_copy);
}
