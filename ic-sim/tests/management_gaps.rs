//! Management canister methods the simulator used to leave out or fake (issue "ic-sim against
//! suites written by others", item 4): canister_info and the canister history,
//! canister_metadata, canister logs with their visibility and memory limit, `specified_id` of
//! provisional creation, and environment variables in settings with the `ic0.env_var_*`
//! functions. Texts and limits follow rs/execution_environment/src/canister_manager.rs and
//! canister_manager/types.rs.

mod common;

use common::*;
use ic_management_canister_types as mgmt;

fn info(sim: &Sim, caller: Principal, of: Principal, n: u64) -> mgmt::CanisterInfoResult {
    let args = mgmt::CanisterInfoArgs {
        canister_id: of,
        num_requested_changes: Some(n),
    };
    let call = CallArgs::new(management(), "canister_info", Encode!(&args).unwrap());
    probe_call(sim, caller, call).reply()
}

fn kinds(changes: &[mgmt::Change]) -> Vec<&'static str> {
    changes
        .iter()
        .map(|c| match c.details.as_ref().expect("details") {
            mgmt::ChangeDetails::Creation(_) => "creation",
            mgmt::ChangeDetails::CodeDeployment(d) => match d.mode {
                mgmt::CodeDeploymentMode::Install => "install",
                mgmt::CodeDeploymentMode::Reinstall => "reinstall",
                mgmt::CodeDeploymentMode::Upgrade => "upgrade",
            },
            mgmt::ChangeDetails::CodeUninstall => "uninstall",
            mgmt::ChangeDetails::ControllersChange(_) => "controllers",
            mgmt::ChangeDetails::LoadSnapshot(_) => "load_snapshot",
            mgmt::ChangeDetails::RenameCanister(_) => "rename",
        })
        .collect()
}

/// canister_info returns the history (creation, deployments, controller changes, uninstall)
/// with module hashes, versions and origins, the total count, the module hash and controllers.
#[test]
fn canister_info_reports_the_history() {
    let sim = Sim::new();
    let observer = new_probe(&sim);
    let id = new_probe(&sim);
    let alice = user("alice");
    sim.set_controllers(id, None, vec![Principal::anonymous(), alice])
        .unwrap();
    sim.upgrade_canister(id, probe_wasm_gz(), no_init(), None)
        .unwrap();
    let result = info(&sim, observer, id, 10);
    assert_eq!(
        kinds(&result.recent_changes),
        ["creation", "install", "controllers", "upgrade"]
    );
    assert_eq!(result.total_num_changes, 4);
    assert_eq!(result.module_hash, Some(sha256(&probe_wasm_gz()).to_vec()));
    assert_eq!(result.controllers.len(), 2);
    let upgrade = result.recent_changes.last().unwrap();
    match &upgrade.details {
        Some(mgmt::ChangeDetails::CodeDeployment(d)) => {
            assert_eq!(d.module_hash, sha256(&probe_wasm_gz()).to_vec())
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        upgrade.canister_version,
        sim.canister_status(id, None).unwrap().version
    );
    assert_eq!(
        upgrade.origin,
        mgmt::ChangeOrigin::FromUser(mgmt::FromUserRecord {
            user_id: Principal::anonymous()
        })
    );
    assert_eq!(
        kinds(&info(&sim, observer, id, 1).recent_changes),
        ["upgrade"]
    );
    sim.uninstall_canister(id, None).unwrap();
    let after = info(&sim, observer, id, 1);
    assert_eq!(kinds(&after.recent_changes), ["uninstall"]);
    assert_eq!(after.module_hash, None);
    let status = sim.canister_status(id, None).unwrap();
    assert!(status.memory_metrics.canister_history_size > 0u8);
}

/// The history keeps the last 20 changes and counts them all; canister_info is for canisters
/// only ("Only canisters can call ic00 method canister_info", IC0406).
#[test]
fn the_history_is_bounded_and_canister_info_refuses_ingress() {
    let sim = Sim::new();
    let observer = new_probe(&sim);
    let id = new_probe(&sim);
    for _ in 0..25 {
        sim.upgrade_canister(id, probe_wasm(), no_init(), None)
            .unwrap();
    }
    let result = info(&sim, observer, id, 100);
    assert_eq!(result.total_num_changes, 27);
    assert_eq!(result.recent_changes.len(), 20);
    let args = mgmt::CanisterInfoArgs {
        canister_id: id,
        num_requested_changes: None,
    };
    let result = sim.update_call(
        management(),
        Principal::anonymous(),
        "canister_info",
        Encode!(&args).unwrap(),
    );
    expect_reject(
        result,
        RejectCode::CanisterReject,
        ErrorCode::CanisterRejectedMessage,
        &["Only canisters can call ic00 method canister_info"],
    );
}

/// canister_metadata: a public section for anyone, a private one for controllers only, and
/// the same error for a private section as for a missing one.
#[test]
fn canister_metadata_respects_visibility() {
    let sim = Sim::new();
    let id = new_empty(&sim);
    let wasm = with_custom_section(
        with_custom_section(probe_wasm(), "icp:public candid:service", b"service : {}"),
        "icp:private secret",
        b"hidden",
    );
    sim.install_canister(id, wasm, no_init(), None);
    let metadata = |sender: Principal, name: &str| {
        let args = mgmt::CanisterMetadataArgs {
            canister_id: id,
            name: name.to_string(),
        };
        sim.update_call(
            management(),
            sender,
            "canister_metadata",
            Encode!(&args).unwrap(),
        )
        .map(|b| Decode!(&b, mgmt::CanisterMetadataResult).unwrap().value)
    };
    assert_eq!(
        metadata(stranger(), "candid:service").unwrap(),
        b"service : {}"
    );
    assert_eq!(
        metadata(Principal::anonymous(), "secret").unwrap(),
        b"hidden"
    );
    for name in ["secret", "nope"] {
        expect_reject(
            metadata(stranger(), name),
            RejectCode::CanisterReject,
            ErrorCode::CanisterRejectedMessage,
            &[&format!(
                "The canister {id} has no metadata section with the name {name}."
            )],
        );
    }
}

fn set(sim: &Sim, id: Principal, settings: CanisterSettings) -> Result<(), RejectResponse> {
    sim.update_canister_settings(id, None, settings)
}

/// Canister logs hold debug prints and traps, with indices and times; only who the log
/// visibility names may fetch them; the memory limit (default 4096) drops the oldest records;
/// a replicated call (update, or from a canister) is refused.
#[test]
fn canister_logs_follow_visibility_and_memory_limit() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    update::<()>(&sim, id, "debug_print", Encode!(&"hello").unwrap()).unwrap();
    let _ = sim.update_call(
        id,
        Principal::anonymous(),
        "trap",
        Encode!(&"boom").unwrap(),
    );
    let logs = sim.fetch_canister_logs(id, Principal::anonymous()).unwrap();
    let contents: Vec<String> = logs
        .iter()
        .map(|r| String::from_utf8(r.content.clone()).unwrap())
        .collect();
    assert_eq!(contents, ["hello", "[TRAP]: boom"]);
    assert!(logs[0].idx < logs[1].idx && logs[0].timestamp_nanos < logs[1].timestamp_nanos);
    assert_eq!(
        sim.canister_status(id, None)
            .unwrap()
            .settings
            .log_memory_limit,
        Nat::from(4096u32)
    );

    expect_reject(
        sim.fetch_canister_logs(id, stranger()),
        RejectCode::CanisterReject,
        ErrorCode::CanisterRejectedMessage,
        &[&format!(
            "Caller {} is not allowed to query ic00 method fetch_canister_logs",
            stranger()
        )],
    );
    set(
        &sim,
        id,
        CanisterSettings {
            log_visibility: Some(mgmt::LogVisibility::AllowedViewers(vec![stranger()])),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(sim.fetch_canister_logs(id, stranger()).unwrap().len(), 2);
    set(
        &sim,
        id,
        CanisterSettings {
            log_visibility: Some(mgmt::LogVisibility::Public),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        sim.fetch_canister_logs(id, user("anyone")).unwrap().len(),
        2
    );

    for i in 0..100 {
        update::<()>(
            &sim,
            id,
            "debug_print",
            Encode!(&format!("line {i:03} {}", "x".repeat(90))).unwrap(),
        )
        .unwrap();
    }
    let logs = sim.fetch_canister_logs(id, Principal::anonymous()).unwrap();
    let bytes: usize = logs.iter().map(|r| r.content.len()).sum();
    assert!(bytes <= 4096, "{bytes} bytes kept");
    assert!(String::from_utf8_lossy(&logs.last().unwrap().content).starts_with("line 099"));
    assert!(
        !logs.iter().any(|r| r.content == b"hello"),
        "the oldest record was dropped"
    );

    expect_reject(
        set(
            &sim,
            id,
            CanisterSettings {
                log_memory_limit: Some(Nat::from(100u32)),
                ..Default::default()
            },
        ),
        RejectCode::CanisterReject,
        ErrorCode::CanisterRejectedMessage,
        &["The canister log memory limit 100 is too low."],
    );
    set(
        &sim,
        id,
        CanisterSettings {
            log_memory_limit: Some(Nat::from(8192u32)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        sim.canister_status(id, None)
            .unwrap()
            .settings
            .log_memory_limit,
        Nat::from(8192u32)
    );

    let args = mgmt::FetchCanisterLogsArgs {
        canister_id: id,
        filter: None,
    };
    expect_reject(
        sim.update_call(
            management(),
            Principal::anonymous(),
            "fetch_canister_logs",
            Encode!(&args).unwrap(),
        ),
        RejectCode::CanisterReject,
        ErrorCode::CanisterRejectedMessage,
        &["fetch_canister_logs API is only accessible in non-replicated mode"],
    );
}

/// `specified_id`: an id outside every subnet creates the canister on a new subnet; a taken
/// id is IC0205; an id from the environment's allocation range is IC0408.
#[test]
fn specified_ids_are_honoured_or_refused_as_the_replica_does() {
    let sim = Sim::new();
    let mainnet = Principal::from_text("rimrc-piaaa-aaaao-aaljq-cai").unwrap();
    assert_eq!(
        sim.create_canister_with_id(None, None, mainnet),
        Ok(mainnet)
    );
    assert!(sim.canister_exists(mainnet));
    assert_eq!(sim.subnets().len(), 2, "a subnet was added for the id");
    assert_ne!(sim.get_subnet(mainnet), Some(sim.subnets()[0].id));
    let taken = sim
        .create_canister_with_id(None, None, mainnet)
        .unwrap_err();
    assert!(
        taken.contains(&format!("canister id {mainnet} already exists")),
        "{taken}"
    );
    assert!(taken.contains("CanisterIdAlreadyExists"), "{taken}");
    let allocated = sim.create_canister();
    sim.add_cycles(allocated, CYCLES);
    sim.stop_canister(allocated, None).unwrap();
    sim.delete_canister(allocated, None).unwrap();
    let err = sim
        .create_canister_with_id(None, None, allocated)
        .unwrap_err();
    assert!(err.contains(&format!("The `specified_id` {allocated} is invalid because it belongs to the canister allocation ranges of the test environment.")), "{err}");
}

/// Environment variables set in settings reach the canister through `ic0.env_var_*` (name
/// order) and canister_status; the replica's limits refuse a bad set and change nothing.
#[test]
fn environment_variables_reach_the_canister() {
    let sim = Sim::new();
    let var = |name: &str, value: &str| mgmt::EnvironmentVariable {
        name: name.to_string(),
        value: value.to_string(),
    };
    let id = new_probe(&sim);
    set(
        &sim,
        id,
        CanisterSettings {
            environment_variables: Some(vec![
                var("PUBLIC_CANISTER_ID:llm", "w36hm-eqaaa-aaaal-qr76a-cai"),
                var("MODE", "test"),
            ]),
            ..Default::default()
        },
    )
    .unwrap();
    let vars: Vec<(String, String)> = query(&sim, id, "env_vars", Encode!().unwrap()).unwrap();
    assert_eq!(
        vars,
        [
            ("MODE".to_string(), "test".to_string()),
            (
                "PUBLIC_CANISTER_ID:llm".to_string(),
                "w36hm-eqaaa-aaaal-qr76a-cai".to_string()
            )
        ]
    );
    let llm: Option<String> = query(
        &sim,
        id,
        "env_var",
        Encode!(&"PUBLIC_CANISTER_ID:llm").unwrap(),
    )
    .unwrap();
    assert_eq!(llm.as_deref(), Some("w36hm-eqaaa-aaaal-qr76a-cai"));
    let missing: Option<String> = query(&sim, id, "env_var", Encode!(&"NOPE").unwrap()).unwrap();
    assert_eq!(missing, None);
    let status = sim.canister_status(id, None).unwrap();
    assert_eq!(status.settings.environment_variables.len(), 2);

    let too_many: Vec<_> = (0..21).map(|i| var(&format!("V{i}"), "x")).collect();
    expect_reject(
        set(
            &sim,
            id,
            CanisterSettings {
                environment_variables: Some(too_many),
                ..Default::default()
            },
        ),
        RejectCode::CanisterReject,
        ErrorCode::InvalidManagementPayload,
        &["Too many environment variables: 21 (max: 20)"],
    );
    expect_reject(
        set(
            &sim,
            id,
            CanisterSettings {
                environment_variables: Some(vec![var("V", &"x".repeat(129))]),
                ..Default::default()
            },
        ),
        RejectCode::CanisterReject,
        ErrorCode::InvalidManagementPayload,
        &["exceeds the maximum allowed length of 128."],
    );
    // Duplicate names are refused when the settings are decoded, before any other check
    // (canister_settings.rs: `UpdateSettingsError::DuplicateEnvironmentVariables`).
    let mut duplicates: Vec<_> = (0..21).map(|i| var(&format!("V{i}"), "x")).collect();
    duplicates.push(var("V0", "y"));
    expect_reject(
        set(
            &sim,
            id,
            CanisterSettings {
                environment_variables: Some(duplicates),
                ..Default::default()
            },
        ),
        RejectCode::CanisterReject,
        ErrorCode::InvalidManagementPayload,
        &["Duplicate environment variables are not allowed"],
    );
    let vars_after: Vec<(String, String)> =
        query(&sim, id, "env_vars", Encode!().unwrap()).unwrap();
    assert_eq!(vars_after, vars, "a refused update changes nothing");

    // Given at creation, they are there from init on, and the creation record hashes them.
    let created = sim.create_canister_with_settings(
        None,
        Some(CanisterSettings {
            environment_variables: Some(vec![var("A", "1")]),
            ..Default::default()
        }),
    );
    sim.add_cycles(created, CYCLES);
    sim.install_canister(created, probe_wasm(), no_init(), None);
    let a: Option<String> = query(&sim, created, "env_var", Encode!(&"A").unwrap()).unwrap();
    assert_eq!(a.as_deref(), Some("1"));
    match &info(&sim, id, created, 20).recent_changes[0].details {
        // The replica's hash (rs/types/base_types/src/environment_variables.rs,
        // `EnvironmentVariables::hash`: the spec's hash_of_map over SHA-256(name) ·
        // SHA-256(value)); for one variable, SHA-256 of that one pair.
        Some(mgmt::ChangeDetails::Creation(c)) => {
            use sha2::{Digest, Sha256};
            let pair = [Sha256::digest(b"A"), Sha256::digest(b"1")].concat();
            assert_eq!(
                c.environment_variables_hash.as_deref(),
                Some(Sha256::digest(&pair).as_slice())
            );
        }
        other => panic!("{other:?}"),
    }
}
