//! The management canister: creation, controllers, settings and canister_status
//! (IC-SEMANTICS.md, "Lifecycle": controllers and canister_status).

mod common;

use common::*;
use ic_management_canister_types::{CanisterIdRecord, CreateCanisterArgs};

/// Fidelity check: the default controller is the creator.
#[test]
fn default_controller_is_the_creator() {
    let sim = Sim::new();
    let by_anonymous = sim.create_canister();
    assert_eq!(
        sim.get_controllers(by_anonymous),
        vec![Principal::anonymous()]
    );

    let alice = user("alice");
    let by_alice = sim.create_canister_with_settings(Some(alice), None);
    assert_eq!(sim.get_controllers(by_alice), vec![alice]);

    let bob = user("bob");
    let explicit = sim.create_canister_with_settings(
        Some(alice),
        Some(CanisterSettings {
            controllers: Some(vec![bob]),
            ..CanisterSettings::default()
        }),
    );
    assert_eq!(
        sim.get_controllers(explicit),
        vec![bob],
        "explicit controllers replace the default"
    );
}

/// A canister that creates a canister through the management canister controls it.
#[test]
fn canister_created_by_a_canister_is_controlled_by_it() {
    let sim = Sim::new();
    let parent = new_probe(&sim);
    let args = CallArgs::new(
        management(),
        "create_canister",
        Encode!(&CreateCanisterArgs::default()).unwrap(),
    )
    .with_cycles(2_000_000_000_000);
    let created: CanisterIdRecord = probe_call(&sim, parent, args).reply();
    assert!(sim.canister_exists(created.canister_id));
    assert_eq!(sim.get_controllers(created.canister_id), vec![parent]);
}

/// Controllers only: every controller-only operation refuses a stranger with IC0512.
#[test]
fn controller_only_operations_refuse_others() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let snapshot = sim.take_canister_snapshot(id, None, None).unwrap();
    let x = Some(stranger());
    let needles = [not_controller(id), format!("Sender's ID: {}", stranger())];
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    let refused = |what: &str, result: Result<(), RejectResponse>| {
        let err = result.expect_err(what);
        assert_reject(
            &err,
            RejectCode::CanisterError,
            ErrorCode::CanisterInvalidController,
            &needles,
        );
    };

    refused(
        "install",
        sim.install_code(CanisterInstallMode::Install, id, probe_wasm(), no_init(), x),
    );
    refused(
        "reinstall",
        sim.reinstall_canister(id, probe_wasm(), no_init(), x),
    );
    refused(
        "upgrade",
        sim.upgrade_canister(id, probe_wasm(), no_init(), x),
    );
    refused("uninstall", sim.uninstall_canister(id, x));
    refused("stop", sim.stop_canister(id, x));
    refused("start", sim.start_canister(id, x));
    refused("delete", sim.delete_canister(id, x));
    refused(
        "set_controllers",
        sim.set_controllers(id, x, vec![stranger()]),
    );
    refused(
        "update_settings",
        sim.update_canister_settings(
            id,
            x,
            CanisterSettings {
                freezing_threshold: Some(Nat::from(1u8)),
                ..CanisterSettings::default()
            },
        ),
    );
    refused(
        "take_snapshot",
        sim.take_canister_snapshot(id, x, None).map(|_| ()),
    );
    refused(
        "load_snapshot",
        sim.load_canister_snapshot(id, x, snapshot.id.clone()),
    );
    refused(
        "list_snapshots",
        sim.list_canister_snapshots(id, x).map(|_| ()),
    );
    refused(
        "delete_snapshot",
        sim.delete_canister_snapshot(id, x, snapshot.id.clone()),
    );
    refused(
        "upload_chunk",
        sim.upload_chunk(id, x, vec![1, 2, 3]).map(|_| ()),
    );
    refused("stored_chunks", sim.stored_chunks(id, x).map(|_| ()));
    refused("clear_chunk_store", sim.clear_chunk_store(id, x));

    // Nothing changed.
    assert_eq!(sim.get_controllers(id), vec![Principal::anonymous()]);
    assert_eq!(sim.module_hash(id), Some(sha256(&probe_wasm())));
    assert_eq!(inc(&sim, id), 1);
}

/// At most 10 controllers: an 11th is refused (IC0504, invalid settings); 10 are fine.
#[test]
fn at_most_10_controllers() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let ten: Vec<Principal> = (0..10).map(|i| user(&format!("c{i}"))).collect();
    let mut eleven = ten.clone();
    eleven.push(user("c10"));

    let result = sim.set_controllers(id, None, eleven);
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterContractViolation,
        &["Invalid settings: 'controllers' length exceeds maximum size allowed of 10."],
    );
    assert_eq!(sim.get_controllers(id), vec![Principal::anonymous()]);

    sim.set_controllers(id, None, ten.clone()).unwrap();
    let mut got = sim.get_controllers(id);
    got.sort();
    let mut want = ten;
    want.sort();
    assert_eq!(got, want);
}

/// set_controllers hands control over: the old controller is refused afterwards, and
/// ic0.is_controller follows.
#[test]
fn set_controllers_hands_control_over() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let alice = user("alice");
    sim.set_controllers(id, None, vec![alice]).unwrap();
    assert!(query::<bool>(&sim, id, "is_controller", Encode!(&alice).unwrap()).unwrap());
    assert!(
        !query::<bool>(
            &sim,
            id,
            "is_controller",
            Encode!(&Principal::anonymous()).unwrap()
        )
        .unwrap()
    );
    let result = sim.stop_canister(id, None);
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterInvalidController,
        &[&not_controller(id)],
    );
    sim.stop_canister(id, Some(alice)).unwrap();
}

/// canister_status returns the record ic-cdk's types require, decoded by ic-cdk inside the
/// canister (which may read its own status without being its own controller).
#[test]
fn canister_status_decodes_in_ic_cdk_and_matches() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    inc(&sim, id);
    let from_canister: Result<CanisterStatusResult, String> =
        update(&sim, id, "status_of", Encode!(&id).unwrap()).unwrap();
    let from_canister = from_canister.expect("a canister may read its own status");
    let from_sim = sim.canister_status(id, None).unwrap();

    assert_eq!(from_canister.status, CanisterStatusType::Running);
    assert_eq!(
        from_canister.module_hash,
        Some(sha256(&probe_wasm()).to_vec())
    );
    assert_eq!(
        from_canister.settings.controllers,
        vec![Principal::anonymous()]
    );
    assert!(from_canister.cycles > 0u8);
    assert!(from_canister.memory_size > 0u8);
    assert_eq!(from_canister.version, from_sim.version);
    assert_eq!(from_canister.module_hash, from_sim.module_hash);
    assert_eq!(
        from_canister.settings.controllers,
        from_sim.settings.controllers
    );
    assert_eq!(
        from_sim.settings.freezing_threshold,
        Nat::from(2_592_000u64),
        "IC default"
    );
}

/// update_settings changes what canister_status reports.
#[test]
fn update_settings_shows_in_canister_status() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    sim.update_canister_settings(
        id,
        None,
        CanisterSettings {
            freezing_threshold: Some(Nat::from(1_000u64)),
            ..CanisterSettings::default()
        },
    )
    .unwrap();
    let status = sim.canister_status(id, None).unwrap();
    assert_eq!(status.settings.freezing_threshold, Nat::from(1_000u64));
    assert_eq!(
        status.settings.controllers,
        vec![Principal::anonymous()],
        "untouched"
    );
}

/// An unknown management method is rejected (IC0536; management rejects carry no ICxxxx prefix).
#[test]
fn unknown_management_method_is_rejected() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let outcome = probe_call(&sim, id, CallArgs::no_arg(management(), "no_such_method"));
    assert_call_reject(
        &outcome,
        RejectCode::CanisterError,
        &["Management canister has no method 'no_such_method'"],
    );
}

/// canister_status answers the settings the current interface added after
/// `ic-management-canister-types` 0.8 (icp-cli 1.5 refuses a reply without them), and still
/// decodes as the older record.
#[test]
fn canister_status_answers_the_current_settings_fields() {
    #[derive(CandidType, Deserialize)]
    struct Settings {
        minimum_incoming_canister_call_cycles: Nat,
        status_visibility: ic_management_canister_types::SnapshotVisibility,
        controllers: Vec<Principal>,
    }
    #[derive(CandidType, Deserialize)]
    struct Status {
        settings: Settings,
    }
    let sim = Sim::new();
    let id = sim.create_canister();
    let reply = sim
        .update_call(
            management(),
            Principal::anonymous(),
            "canister_status",
            Encode!(&CanisterIdRecord { canister_id: id }).unwrap(),
        )
        .expect("the controller reads the status");
    let status = Decode!(&reply, Status).expect("the current fields are there");
    assert_eq!(
        status.settings.minimum_incoming_canister_call_cycles,
        Nat::from(0u8)
    );
    assert_eq!(
        status.settings.status_visibility,
        ic_management_canister_types::SnapshotVisibility::Controllers
    );
    assert_eq!(status.settings.controllers, vec![Principal::anonymous()]);
    let older = sim
        .canister_status(id, None)
        .expect("and the 0.8 record still decodes");
    assert_eq!(older.settings.controllers, vec![Principal::anonymous()]);
}
