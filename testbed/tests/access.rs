//! Every update method of the watchdog and staging refuses a caller that is not allowed, with an
//! `Unauthorized` error naming caller and method, and changes nothing; the tables cover every
//! update method of `watchdog.did` and `staging.did`.

use candid::{CandidType, Decode, Deserialize, Encode, Principal};
use canister_api::agent::{AgentInit, Autonomy};
use canister_api::staging::{RehearsalRequest, StagingError};
use canister_api::watchdog::{ArmRequest, WatchdogError};
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
    }
}

#[test]
fn watchdog_and_staging_refuse_every_caller_but_the_agent() {
    let tb = Testbed::deploy(Options::default());
    let watchdog_calls: Vec<(&str, Vec<u8>)> = vec![
        ("arm", Encode!(&arm_request()).unwrap()),
        ("disarm", Encode!(&1u64, &"r").unwrap()),
    ];
    let did = include_str!("../../watchdog/watchdog.did");
    for m in update_methods(did) {
        assert!(
            watchdog_calls.iter().any(|(n, _)| *n == m),
            "{m} missing from the table"
        );
    }
    #[derive(CandidType, Deserialize)]
    enum AnyResult<E> {
        Ok(candid::Reserved),
        Err(E),
    }
    for caller in [stranger(), operator(), Principal::anonymous(), tb.staging] {
        for (method, arg) in &watchdog_calls {
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
    // Nothing changed: nothing armed, no sandbox created.
    assert!(tb.watchdog_status().armed.is_none());
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
    assert_eq!(tb.digest(), before);
    assert!(!tb.health().sandbox_copy);
}
