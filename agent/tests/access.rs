//! Every update method, and every query that exposes data, refuses a caller that is not
//! allowed, with `AgentError::Unauthorized` naming the caller and the method; an ingress update
//! that the caller may not send is refused by `canister_inspect_message` before it executes.

mod common;
use common::*;

type Call = (&'static str, Vec<u8>, bool);

fn methods() -> Vec<Call> {
    let kind = WasmKind::Release;
    let blob = serde_bytes::ByteBuf::from(b"\0asm\x01\0\0\0".to_vec());
    vec![
        // (method, argument, is_update)
        (
            "submit_task",
            Encode!(&SubmitTask {
                description: "x".into(),
                priority: None
            })
            .unwrap(),
            true,
        ),
        (
            "set_task_status",
            Encode!(&1u64, &TaskStatus::Done).unwrap(),
            true,
        ),
        (
            "remember",
            Encode!(&Fact {
                namespace: "default".into(),
                key: "k".into(),
                value: "v".into()
            })
            .unwrap(),
            true,
        ),
        ("forget", Encode!(&None::<String>, &"k").unwrap(), true),
        (
            "call_tool",
            Encode!(&"recall", &r#"{"key":"k"}"#).unwrap(),
            true,
        ),
        ("upload_wasm_chunk", Encode!(&kind, &blob).unwrap(), true),
        ("discard_upload", Encode!(&kind).unwrap(), true),
        (
            "commit_wasm",
            Encode!(&kind, &serde_bytes::ByteBuf::from(vec![0u8; 32])).unwrap(),
            true,
        ),
        (
            "propose_release",
            Encode!(&ProposeRelease {
                reason: "r".into(),
                breaks_interface: None
            })
            .unwrap(),
            true,
        ),
        ("approve_upgrade", Encode!(&1u64).unwrap(), true),
        ("set_version_retention", Encode!(&1u32).unwrap(), true),
        ("reject_upgrade", Encode!(&1u64, &"no").unwrap(), true),
        ("set_autonomy", Encode!(&Autonomy::Auto).unwrap(), true),
        (
            "set_gate_limits",
            Encode!(&GateLimits {
                max_per_day: 9,
                cooldown_secs: 0
            })
            .unwrap(),
            true,
        ),
        ("set_operators", Encode!(&vec![stranger()]).unwrap(), true),
        (
            "set_supervision",
            Encode!(&Supervision::default()).unwrap(),
            true,
        ),
        (
            "note_repair",
            Encode!(&RepairNotice {
                at: 0,
                by: watchdog(),
                repaired: Principal::anonymous(),
                action: "x".into(),
                detail: "y".into(),
                incident_id: None,
                module_hash: None,
                decided: None
            })
            .unwrap(),
            true,
        ),
        (
            "upgrade_armed",
            Encode!(&ArmReceipt {
                upgrade_id: 1,
                snapshot_id: vec![1],
                lkg_hash: vec![0; 32],
                deadline: 0
            })
            .unwrap(),
            true,
        ),
        (
            "complete_upgrade",
            Encode!(&1u64, &UpgradeOutcome::Committed).unwrap(),
            true,
        ),
        ("import_state", Encode!(&state_chunk()).unwrap(), true),
        ("set_loop_enabled", Encode!(&true).unwrap(), true),
        ("set_llm", Encode!(&LlmSettings::default()).unwrap(), true),
        (
            "set_survival",
            Encode!(&SurvivalSettings::default()).unwrap(),
            true,
        ),
        (
            "set_prompt_layer",
            Encode!(&"style", &Some("Answer briefly.")).unwrap(),
            true,
        ),
        ("run_tool_call", Encode!(&1u64, &0u32).unwrap(), true),
        ("loop_status", Encode!().unwrap(), false),
        ("turns", Encode!(&0u64, &10u32).unwrap(), false),
        ("canary_write", Encode!().unwrap(), true),
        (
            "export_module",
            Encode!(&serde_bytes::ByteBuf::from(vec![0u8; 32]), &0u64).unwrap(),
            false,
        ),
        ("export_state", Encode!(&0u64, &10u64).unwrap(), false),
        ("get_task", Encode!(&1u64).unwrap(), false),
        ("list_tasks", Encode!(&0u64, &10u32).unwrap(), false),
        ("recall", Encode!(&None::<String>, &"k").unwrap(), false),
        ("list_facts", Encode!(&None::<String>).unwrap(), false),
        ("get_config", Encode!().unwrap(), false),
        ("upgrade_status", Encode!(&None::<u64>).unwrap(), false),
        ("upgrade_history", Encode!(&0u64, &10u32).unwrap(), false),
        ("list_versions", Encode!().unwrap(), false),
        ("audit_log", Encode!(&0u64, &10u64).unwrap(), false),
    ]
}

fn state_chunk() -> StateChunk {
    StateChunk {
        offset: 0,
        total: 4,
        bytes: serde_bytes::ByteBuf::from(vec![1, 2, 3, 4]),
    }
}

/// Only the watchdog may deliver its verdicts (and make the canary write of probation).
const WATCHDOG_ONLY: &[&str] = &[
    "upgrade_armed",
    "complete_upgrade",
    "note_repair",
    "canary_write",
];

/// Decodes any `Result<_, AgentError>` reply far enough to see the error.
fn error_of(bytes: &[u8]) -> Option<AgentError> {
    #[derive(CandidType, Deserialize)]
    enum AnyResult {
        Ok(candid::Reserved),
        Err(AgentError),
    }
    match Decode!(bytes, AnyResult).expect("a Result") {
        AnyResult::Ok(_) => None,
        AnyResult::Err(e) => Some(e),
    }
}

fn assert_unauthorized(reply: &[u8], caller: Principal, method: &str) {
    match error_of(reply) {
        Some(AgentError::Unauthorized {
            caller: c,
            method: m,
            allowed,
        }) => {
            assert_eq!(c, caller);
            assert_eq!(m, method);
            let text = AgentError::Unauthorized {
                caller: c,
                method: m,
                allowed,
            }
            .to_string();
            assert!(
                text.contains(&caller.to_text()) && text.contains(method),
                "{text}"
            );
        }
        other => panic!("{method} by {caller}: expected Unauthorized, got {other:?}"),
    }
}

/// The methods themselves refuse a caller without a role: queries from users, and updates
/// from a canister (`inspect_message` sees only ingress, so the endpoint's own check is what
/// stops another canister).
#[test]
fn every_update_method_and_data_query_refuses_an_unauthorised_caller() {
    let env = Env::latest(Autonomy::Auto);
    let all = methods();
    let did = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/agent.did")).unwrap();
    // The table covers every update method of agent.did.
    for line in did.lines().map(str::trim) {
        if let Some((name, sig)) = line.split_once(" : (")
            && name != "service"
            && !sig.ends_with("query;")
        {
            assert!(
                all.iter().any(|(m, _, _)| *m == name),
                "{name} missing from the table"
            );
        }
    }
    let probe = testbed::install_probe(&env.sim);
    for (method, arg, is_update) in &all {
        if *is_update {
            let reply = testbed::call_via(&env.sim, probe, env.agent, method, arg.clone())
                .unwrap_or_else(|e| panic!("{method}: rejected instead of refused: {e}"));
            assert_unauthorized(&reply, probe, method);
            continue;
        }
        for caller in [stranger(), Principal::anonymous(), watchdog()] {
            // The watchdog may read.
            if caller == watchdog() && *method != "export_state" {
                continue;
            }
            let reply = env
                .sim
                .query_call(env.agent, caller, method, arg.clone())
                .unwrap_or_else(|e| panic!("{method}: rejected instead of refused: {e}"));
            assert_unauthorized(&reply, caller, method);
        }
    }
    // Nothing was changed by the refused calls: no task, and import_state on the real agent
    // wrote nothing into its stable memory (the header is intact).
    assert!(env.tasks().is_empty());
    assert_eq!(env.health().schema_version, 3);
    // A stranger's refusals are not the agent's errors: health stays `ok`.
    assert_eq!(env.health().status, "ok", "{:?}", env.health().last_error);
    assert_eq!(env.health().last_error, None);
    assert_eq!(env.health().autonomy, Autonomy::Auto);
    let config: Result<Config, AgentError> =
        env.query(operator(), "get_config", Encode!().unwrap());
    let config = config.unwrap();
    assert_eq!(config.operators, vec![operator()], "operators unchanged");
    assert_eq!(config.supervision, None, "supervision settings unchanged");
    let status: Result<LoopStatus, AgentError> =
        env.query(operator(), "loop_status", Encode!().unwrap());
    let status = status.unwrap();
    assert!(!status.enabled, "the loop stayed off");
    assert!(
        status
            .prompt_layers
            .iter()
            .all(|l| l.kind != LayerKind::Operator),
        "no operator layer was set"
    );
}

/// `canister_inspect_message`: an ingress update from a caller who may not call the method is
/// refused before it executes (no execution fee is charged, nothing changes); so is a query
/// method sent as an update by anyone but an operator (a stranger could otherwise make the
/// agent pay for replicated executions of its public queries).
#[test]
fn an_ingress_update_from_a_caller_who_may_not_call_it_is_refused_before_it_executes() {
    let env = Env::latest(Autonomy::Auto);
    let did = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/agent.did")).unwrap();
    let mut queries: Vec<(&str, Vec<u8>)> = vec![
        ("health", Encode!().unwrap()),
        ("state_digest", Encode!().unwrap()),
        ("metrics", Encode!().unwrap()),
        ("tools", Encode!().unwrap()),
    ];
    queries.extend(
        methods()
            .into_iter()
            .filter(|(_, _, is_update)| !is_update)
            .map(|(m, arg, _)| (m, arg)),
    );
    for (name, _) in &queries {
        assert!(
            did.contains(&format!("  {name} : (")),
            "{name} is not in agent.did"
        );
    }
    let cycles = env.sim.cycle_balance(env.agent);
    let mut refused = 0;
    for caller in [stranger(), Principal::anonymous(), watchdog()] {
        let calls = methods()
            .into_iter()
            .filter(|(m, _, is_update)| {
                *is_update && !(caller == watchdog() && WATCHDOG_ONLY.contains(m))
            })
            .map(|(m, arg, _)| (m, arg))
            .chain(queries.iter().cloned());
        for (method, arg) in calls {
            match env.raw_update(caller, method, arg) {
                Err(e) => {
                    assert_eq!(
                        e.error_code,
                        ic_sim::ErrorCode::CanisterRejectedMessage,
                        "{e}"
                    );
                    assert!(e.reject_message.contains("rejected the message"), "{e}");
                    refused += 1;
                }
                Ok(reply) => panic!("{method} by {caller}: executed as an update: {reply:?}"),
            }
        }
    }
    assert!(refused > 60, "{refused}");
    assert_eq!(
        env.sim.cycle_balance(env.agent),
        cycles,
        "a refused ingress message costs the agent nothing"
    );
    assert!(env.tasks().is_empty());
    // An operator may send a query method as an update (`dfx canister call --update`).
    let digest: StateDigest = env.update(operator(), "state_digest", Encode!().unwrap());
    assert_eq!((digest.tasks, digest.facts), (0, 0));
}

#[test]
fn health_metrics_and_tools_are_public() {
    let env = Env::latest(Autonomy::Manual);
    let health = env.health();
    assert_eq!(health.status, "ok");
    assert_eq!(health.schema_version, 3);
    let _: Vec<MethodMetrics> = env.query(stranger(), "metrics", Encode!().unwrap());
    let tools: String = env.query(stranger(), "tools", Encode!().unwrap());
    assert!(tools.contains("self_upgrade"));
}

#[test]
fn metrics_count_calls_errors_and_instructions_per_method() {
    let env = Env::latest(Autonomy::Manual);
    env.submit("a", None);
    let _: Result<Task, AgentError> = env.update(
        operator(),
        "submit_task",
        Encode!(&SubmitTask {
            description: " ".into(),
            priority: None
        })
        .unwrap(),
    );
    let metrics: Vec<MethodMetrics> = env.query(stranger(), "metrics", Encode!().unwrap());
    let m = metrics
        .iter()
        .find(|m| m.method == "submit_task")
        .expect("submit_task metrics");
    assert_eq!((m.calls, m.errors), (2, 1));
    assert!(m.instructions_total > 0 && m.instructions_last > 0);
    let health = env.health();
    assert_eq!(health.status, "degraded");
    assert!(health.last_error.unwrap().contains("submit_task"));
}
