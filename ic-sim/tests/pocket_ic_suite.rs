//! The pocket-ic crate's own test suite (dfinity/ic, packages/pocket-ic/tests/tests.rs), ported
//! to ic-sim through `ic_sim::pocket_ic` (issue "ic-sim against suites written by others").
//!
//! Each test keeps its name, scenario and assertions; PocketIC's test canister is replaced by
//! `ic-sim-pocket-test` (the same candid interface for the methods these tests call). The tests
//! that need what ic-sim does not have (a server, live mode and the HTTP gateway, state
//! directories, ICP features such as the NNS canisters, threshold keys, HTTP outcalls, async
//! clients) are not ported; ic-sim/README.md lists them. Tests whose outcome differs on ic-sim
//! are `#[ignore]`d with the reason, and the README has each difference with the replica's
//! behaviour; `cargo test -p ic-sim --test pocket_ic_suite -- --ignored` shows them failing.

use std::io::Read;
use std::time::{Duration, SystemTime};

use candid::{Decode, Encode, Principal, encode_one};
use ic_management_canister_types::{CanisterIdRecord, ProvisionalCreateCanisterWithCyclesArgs};
use ic_sim::pocket_ic::common::rest::{BlobCompression, RawEffectivePrincipal, SubnetKind};
use ic_sim::pocket_ic::{
    CanisterInstallMode, CanisterSettings, ErrorCode, PocketIc, PocketIcBuilder, RejectCode, Time,
    call_candid_as, query_candid, update_candid,
};
use sha2::{Digest, Sha256};

const INIT_CYCLES: u128 = 2_000_000_000_000;

fn test_canister_wasm() -> Vec<u8> {
    canister_build::canister_wasm("ic-sim-pocket-test").expect("the test canister builds")
}

/// A counter in the first heap word: `write` adds one and replies it, `read` replies it (4 raw
/// little-endian bytes).
fn counter_wasm() -> Vec<u8> {
    wat::parse_str(
        r#"(module
            (import "ic0" "msg_reply" (func $reply))
            (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
            (func $read (call $append (i32.const 0) (i32.const 4)) (call $reply))
            (func $write
                (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
                (call $read))
            (memory 1)
            (export "canister_query read" (func $read))
            (export "canister_update write" (func $write)))"#,
    )
    .unwrap()
}

fn deploy_counter_canister(pic: &PocketIc) -> Principal {
    let id = pic.create_canister();
    pic.add_cycles(id, INIT_CYCLES);
    pic.install_canister(id, counter_wasm(), vec![], None);
    id
}

fn call_counter_canister(pic: &PocketIc, id: Principal, method: &str) -> Vec<u8> {
    pic.update_call(id, Principal::anonymous(), method, encode_one(()).unwrap())
        .expect("counter call")
}

fn deploy_test_canister(pic: &PocketIc, subnet: Option<Principal>) -> Principal {
    let id = match subnet {
        Some(subnet) => pic.create_canister_on_subnet(None, None, subnet),
        None => pic.create_canister(),
    };
    pic.add_cycles(id, INIT_CYCLES);
    pic.install_canister(id, test_canister_wasm(), vec![], None);
    id
}

#[test]
fn test_counter_canister() {
    let pic = PocketIc::new();
    let id = deploy_counter_canister(&pic);
    assert_eq!(call_counter_canister(&pic, id, "read"), [0, 0, 0, 0]);
    assert_eq!(call_counter_canister(&pic, id, "write"), [1, 0, 0, 0]);
    assert_eq!(call_counter_canister(&pic, id, "write"), [2, 0, 0, 0]);
    assert_eq!(call_counter_canister(&pic, id, "read"), [2, 0, 0, 0]);
}

#[test]
fn test_create_canister_with_id() {
    let pic = PocketIcBuilder::new()
        .with_nns_subnet()
        .with_ii_subnet()
        .build();
    let on_nns = Principal::from_text("rrkah-fqaaa-aaaaa-aaaaq-cai").unwrap();
    assert_eq!(
        pic.create_canister_with_id(None, None, on_nns).unwrap(),
        on_nns
    );
    assert_eq!(
        pic.get_subnet(on_nns).unwrap(),
        pic.topology().get_nns().unwrap()
    );
    let on_ii = Principal::from_text("rdmx6-jaaaa-aaaaa-aaadq-cai").unwrap();
    assert_eq!(
        pic.create_canister_with_id(None, None, on_ii).unwrap(),
        on_ii
    );
    assert_eq!(
        pic.get_subnet(on_ii).unwrap(),
        pic.topology().get_ii().unwrap()
    );
}

#[test]
#[should_panic(expected = "is out of cycles")]
#[ignore = "diverges: PocketIC's create_canister grants 100 T cycles, yet its test expects installing an empty module to run out of cycles; ic-sim installs it (see ic-sim/README.md)"]
fn test_install_canister_with_no_cycles() {
    let pic = PocketIc::new();
    let id = pic.create_canister();
    pic.install_canister(
        id,
        b"\x00\x61\x73\x6d\x01\x00\x00\x00".to_vec(),
        vec![],
        None,
    );
}

#[test]
#[should_panic(expected = "not found")]
fn test_canister_routing_not_found() {
    let pic = PocketIc::new();
    let id = pic.create_canister();
    pic.add_cycles(id, INIT_CYCLES);
    pic.stop_canister(id, None).unwrap();
    pic.delete_canister(id, None).unwrap();
    pic.install_canister(
        id,
        b"\x00\x61\x73\x6d\x01\x00\x00\x00".to_vec(),
        vec![],
        None,
    );
}

#[test]
fn test_create_canister_after_create_canister_with_id() {
    let pic = PocketIcBuilder::new().with_nns_subnet().build();
    let id = Principal::from_text("rwlgt-iiaaa-aaaaa-aaaaa-cai").unwrap();
    assert_eq!(pic.create_canister_with_id(None, None, id).unwrap(), id);
    assert_ne!(pic.create_canister(), id);
}

#[test]
fn test_create_canister_with_used_id_fails() {
    let pic = PocketIcBuilder::new().with_nns_subnet().build();
    let id = Principal::from_text("rwlgt-iiaaa-aaaaa-aaaaa-cai").unwrap();
    assert!(pic.create_canister_with_id(None, None, id).is_ok());
    assert!(pic.create_canister_with_id(None, None, id).is_err());
}

#[test]
#[should_panic(
    expected = "The binary representation 04 of effective canister ID 2vxsx-fae should consist of 10 bytes."
)]
fn test_create_canister_with_not_contained_id_panics() {
    let pic = PocketIc::new();
    let _ = pic.create_canister_with_id(None, None, Principal::anonymous());
}

#[test]
#[should_panic(
    expected = "The effective canister ID rwlgt-iiaaa-aaaaa-aaaaa-cai belongs to the NNS or II subnet on the IC mainnet for which PocketIC provides a `SubnetKind`: please set up your PocketIC instance with a subnet of that `SubnetKind`."
)]
fn test_create_canister_with_special_mainnet_id_panics() {
    let pic = PocketIc::new();
    let _ = pic.create_canister_with_id(
        None,
        None,
        Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 1]),
    );
}

#[test]
#[should_panic(
    expected = "The effective canister ID nti35-np7aa-aaaaa-aaaaa-cai does not belong to an existing subnet and it is not a mainnet canister ID."
)]
#[ignore = "diverges: ic-sim does not hold the mainnet routing table, so it cannot tell a mainnet canister id from another; it creates a subnet for any id outside its ranges (see ic-sim/README.md)"]
fn test_create_canister_with_not_mainnet_id_panics() {
    let pic = PocketIc::new();
    let _ = pic.create_canister_with_id(
        None,
        None,
        Principal::from_slice(&[0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 1]),
    );
}

#[test]
fn test_cycle_scaling() {
    let pic = PocketIcBuilder::new()
        .with_application_subnet()
        .with_fiduciary_subnet()
        .build();
    let app = pic.create_canister_on_subnet(None, None, pic.topology().get_app_subnets()[0]);
    pic.add_cycles(app, 100_000_000_000_000);
    let fidu = pic.create_canister_on_subnet(None, None, pic.topology().get_fiduciary().unwrap());
    pic.add_cycles(fidu, 100_000_000_000_000);
    let install_cost = |id: Principal| {
        let before = pic.cycle_balance(id);
        pic.install_canister(id, test_canister_wasm(), vec![], None);
        before - pic.cycle_balance(id)
    };
    let app_delta = install_cost(app);
    let fidu_delta = install_cost(fidu);
    // 28 nodes against 13: more than twice the cost.
    assert!(fidu_delta > 2 * app_delta);
}

#[test]
fn test_canister_creation_subnet_selection() {
    let kind_of_default = |pic: &PocketIc| {
        let id = pic.create_canister();
        let subnet = pic.get_subnet(id).unwrap();
        pic.topology()
            .subnet_configs
            .get(&subnet)
            .unwrap()
            .subnet_kind
    };
    let all = PocketIcBuilder::new()
        .with_nns_subnet()
        .with_sns_subnet()
        .with_ii_subnet()
        .with_fiduciary_subnet()
        .with_bitcoin_subnet()
        .with_system_subnet()
        .with_application_subnet()
        .build();
    assert_eq!(kind_of_default(&all), SubnetKind::Application);
    let no_app = PocketIcBuilder::new()
        .with_nns_subnet()
        .with_sns_subnet()
        .with_ii_subnet()
        .with_fiduciary_subnet()
        .with_bitcoin_subnet()
        .with_system_subnet()
        .build();
    assert_eq!(kind_of_default(&no_app), SubnetKind::System);
}

#[test]
fn test_routing_with_multiple_subnets() {
    let pic = PocketIcBuilder::new()
        .with_nns_subnet()
        .with_application_subnet()
        .build();
    let on_nns = pic.create_canister_on_subnet(None, None, pic.topology().get_nns().unwrap());
    let on_app = pic.create_canister_on_subnet(None, None, pic.topology().get_app_subnets()[0]);
    for id in [on_nns, on_app] {
        pic.add_cycles(id, INIT_CYCLES);
        pic.install_canister(id, counter_wasm(), vec![], None);
        assert_eq!(call_counter_canister(&pic, id, "read"), [0, 0, 0, 0]);
        assert_eq!(call_counter_canister(&pic, id, "write"), [1, 0, 0, 0]);
    }
    let _ = pic.create_canister();
}

#[test]
fn test_multiple_large_xnet_payloads() {
    let pic = PocketIcBuilder::new()
        .with_nns_subnet()
        .with_application_subnet()
        .build();
    let a = deploy_test_canister(&pic, Some(pic.topology().get_nns().unwrap()));
    let b = deploy_test_canister(&pic, Some(pic.topology().get_app_subnets()[0]));
    for from in [a, b] {
        for to in [a, b] {
            for size in [2_000_000u64, 10_000_000] {
                let result = pic.update_call(
                    from,
                    Principal::anonymous(),
                    "call_with_large_blob",
                    Encode!(&to, &size).unwrap(),
                );
                if from == to || size <= 2_000_000 {
                    assert_eq!(Decode!(&result.unwrap(), u64).unwrap(), size);
                } else {
                    assert_eq!(
                        result.unwrap_err().error_code,
                        ErrorCode::CanisterCalledTrap
                    );
                }
            }
        }
    }
}

#[test]
fn test_initial_timestamp() {
    let initial = 1_620_328_630_000_000_000;
    let pic = PocketIcBuilder::new()
        .with_application_subnet()
        .with_initial_time(Time::from_nanos_since_unix_epoch(initial))
        .build();
    assert_eq!(pic.get_time().as_nanos_since_unix_epoch(), initial + 1);
}

#[test]
#[should_panic(
    expected = "The initial timestamp (unix timestamp in nanoseconds) must be no earlier than 1620328630000000000 (provided 0)."
)]
fn test_invalid_initial_timestamp() {
    let _pic = PocketIcBuilder::new()
        .with_application_subnet()
        .with_initial_time(Time::from_nanos_since_unix_epoch(0))
        .build();
}

fn query_and_check_time(pic: &PocketIc, canister: Principal) {
    let now = pic.get_time().as_nanos_since_unix_epoch();
    let (t,): (u64,) = query_candid(pic, canister, "time", ((),)).unwrap();
    assert_eq!(pic.get_time().as_nanos_since_unix_epoch(), now);
    assert_eq!(t, now);
}

#[test]
fn test_get_and_set_and_advance_time() {
    let pic = PocketIc::new();
    let canister = deploy_test_canister(&pic, None);
    let time = Time::from_nanos_since_unix_epoch(1_650_000_000_000_000_000);
    pic.set_time(time);
    assert_eq!(pic.get_time(), time);
    pic.tick();
    query_and_check_time(&pic, canister);
    assert_eq!(pic.get_time(), time);
    pic.tick();
    query_and_check_time(&pic, canister);
    assert_eq!(pic.get_time(), time + Duration::from_nanos(1));

    let time = Time::from_nanos_since_unix_epoch(1_700_000_000_000_000_000);
    pic.set_certified_time(time);
    query_and_check_time(&pic, canister);
    assert_eq!(pic.get_time(), time);
    pic.tick();
    query_and_check_time(&pic, canister);
    assert_eq!(pic.get_time(), time + Duration::from_nanos(1));
    pic.tick();
    query_and_check_time(&pic, canister);
    assert_eq!(pic.get_time(), time + Duration::from_nanos(2));

    let time = pic.get_time();
    pic.advance_time(Duration::from_secs(420));
    assert_eq!(pic.get_time(), time + Duration::from_secs(420));
    pic.tick();
    query_and_check_time(&pic, canister);
    assert_eq!(pic.get_time(), time + Duration::from_secs(420));
    pic.tick();
    query_and_check_time(&pic, canister);
    assert_eq!(
        pic.get_time(),
        time + Duration::from_secs(420) + Duration::from_nanos(1)
    );
}

#[test]
#[should_panic(expected = "SettingTimeIntoPast")]
fn set_time_into_past() {
    let pic = PocketIc::new();
    let now = SystemTime::now();
    pic.set_time((now + Duration::from_secs(1)).into());
    pic.set_time(now.into());
}

#[test]
fn test_get_set_cycle_balance() {
    let pic = PocketIc::new();
    let id = pic.create_canister();
    let initial = pic.cycle_balance(id);
    assert_eq!(pic.add_cycles(id, 420), initial + 420);
    assert_eq!(pic.cycle_balance(id), initial + 420);
}

#[test]
fn test_tick() {
    let pic = PocketIc::new();
    pic.tick();
}

#[test]
fn test_root_key() {
    assert!(PocketIc::new().root_key().is_none());
    assert!(
        PocketIcBuilder::new()
            .with_nns_subnet()
            .build()
            .root_key()
            .is_some()
    );
}

#[test]
#[should_panic(expected = "SubnetConfigSet must contain at least one subnet")]
fn test_new_pocket_ic_without_subnets_panics() {
    let _pic: PocketIc = PocketIcBuilder::new().build();
}

#[test]
fn test_canister_exists() {
    let pic = PocketIc::new();
    let id = pic.create_canister();
    pic.add_cycles(id, INIT_CYCLES);
    assert!(pic.canister_exists(id));
    pic.stop_canister(id, None).unwrap();
    pic.delete_canister(id, None).unwrap();
    assert!(!pic.canister_exists(id));
    assert!(!PocketIc::new().canister_exists(id));
}

#[test]
fn test_get_subnet_of_canister() {
    let pic = PocketIcBuilder::new()
        .with_nns_subnet()
        .with_application_subnet()
        .build();
    let nns = pic.topology().get_nns().unwrap();
    let app = pic.topology().get_app_subnets()[0];
    let id = pic.create_canister_on_subnet(None, None, nns);
    assert_eq!(pic.get_subnet(id).unwrap(), nns);
    let id = pic.create_canister_on_subnet(None, None, app);
    assert_eq!(pic.get_subnet(id).unwrap(), app);

    let pic = PocketIc::new();
    let id = pic.create_canister();
    assert_eq!(
        pic.get_subnet(id).unwrap(),
        pic.topology().get_app_subnets()[0]
    );
    pic.add_cycles(id, INIT_CYCLES);
    pic.stop_canister(id, None).unwrap();
    pic.delete_canister(id, None).unwrap();
    assert!(pic.get_subnet(id).is_none());
}

#[test]
fn test_set_and_get_stable_memory_not_compressed() {
    let pic = PocketIc::new();
    let id = deploy_counter_canister(&pic);
    let data = b"deadbeef".to_vec();
    pic.set_stable_memory(id, data.clone(), BlobCompression::NoCompression);
    assert_eq!(pic.get_stable_memory(id)[..8], data);
}

#[test]
fn test_set_and_get_stable_memory_compressed() {
    let pic = PocketIc::new();
    let id = deploy_counter_canister(&pic);
    let data = b"decafbad".to_vec();
    let mut compressed = Vec::new();
    flate2::read::GzEncoder::new(&data[..], flate2::Compression::default())
        .read_to_end(&mut compressed)
        .unwrap();
    pic.set_stable_memory(id, compressed, BlobCompression::Gzip);
    assert_eq!(pic.get_stable_memory(id)[..8], data);
}

#[test]
fn test_parallel_calls() {
    let wasm = wat::parse_str(
        r#"(module
            (import "ic0" "time" (func $time (result i64)))
            (import "ic0" "msg_reply" (func $reply))
            (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
            (func $now
                (i64.store (i32.const 0) (call $time))
                (call $append (i32.const 0) (i32.const 8))
                (call $reply))
            (memory 1)
            (export "canister_update time" (func $now)))"#,
    )
    .unwrap();
    let pic = PocketIc::new();
    let id = pic.create_canister();
    pic.add_cycles(id, INIT_CYCLES);
    pic.install_canister(id, wasm, vec![], None);
    let submit = || {
        pic.submit_call(id, Principal::anonymous(), "time", encode_one(()).unwrap())
            .unwrap()
    };
    let (first, second) = (submit(), submit());
    let time_1 = pic.await_call(first).unwrap();
    let time_2 = pic.await_call(second).unwrap();
    assert_eq!(time_1, time_2, "executed in the same round");
    let time_3 = pic
        .update_call(id, Principal::anonymous(), "time", encode_one(()).unwrap())
        .unwrap();
    assert_ne!(time_1, time_3, "a later round, a later time");
}

#[test]
fn test_inspect_message() {
    let wasm = wat::parse_str(
        r#"(module
            (import "ic0" "accept_message" (func $accept))
            (import "ic0" "msg_reply" (func $reply))
            (func $inspect
                (if (i32.load (i32.const 0)) (then) (else (call $accept))))
            (func $inc
                (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
                (call $reply))
            (memory 1)
            (export "canister_inspect_message" (func $inspect))
            (export "canister_update inc" (func $inc)))"#,
    )
    .unwrap();
    let pic = PocketIc::new();
    let id = pic.create_canister();
    pic.add_cycles(id, INIT_CYCLES);
    pic.install_canister(id, wasm, vec![], None);
    pic.update_call(id, Principal::anonymous(), "inc", encode_one(()).unwrap())
        .unwrap();
    pic.update_call(id, Principal::anonymous(), "inc", encode_one(()).unwrap())
        .unwrap_err();
}

#[test]
#[should_panic]
fn test_too_large_call() {
    let pic = PocketIc::new();
    let id = deploy_counter_canister(&pic);
    pic.update_call(id, Principal::anonymous(), "inc", vec![42; 2_097_152 + 1])
        .unwrap_err();
}

#[test]
fn install_very_large_wasm() {
    let n = 5_000_000;
    let wasm = wat::parse_str(format!(
        r#"(module
            (import "ic0" "msg_reply" (func $reply))
            (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
            (func $read (call $append (i32.const 0) (i32.const 4)) (call $reply))
            (memory {})
            (export "canister_update read" (func $read))
            (data (i32.const 0) "{}"))"#,
        n / 65536 + 42,
        "X".repeat(n)
    ))
    .unwrap();
    assert!(wasm.len() >= n);
    let pic = PocketIcBuilder::new().with_application_subnet().build();
    let id = pic.create_canister();
    pic.add_cycles(id, 100 * INIT_CYCLES);
    pic.install_canister(id, wasm, vec![], None);
    let reply = pic
        .update_call(id, Principal::anonymous(), "read", vec![])
        .unwrap();
    assert_eq!(reply, b"XXXX");
}

#[test]
fn test_uninstall_canister() {
    let pic = PocketIc::new();
    let id = deploy_counter_canister(&pic);
    assert!(pic.canister_status(id, None).unwrap().module_hash.is_some());
    pic.uninstall_canister(id, None).unwrap();
    assert!(pic.canister_status(id, None).unwrap().module_hash.is_none());
}

#[test]
fn test_update_canister_settings() {
    let pic = PocketIc::new();
    let id = pic.create_canister();
    pic.add_cycles(id, 100 * INIT_CYCLES);
    let zero: candid::Nat = 0u64.into();
    assert_eq!(
        pic.canister_status(id, None)
            .unwrap()
            .settings
            .compute_allocation,
        zero
    );
    let one: candid::Nat = 1u64.into();
    let settings = CanisterSettings {
        compute_allocation: Some(one.clone()),
        ..Default::default()
    };
    pic.update_canister_settings(id, None, settings).unwrap();
    assert_eq!(
        pic.canister_status(id, None)
            .unwrap()
            .settings
            .compute_allocation,
        one
    );
}

#[test]
fn test_xnet_call_and_create_canister_with_specified_id() {
    let pic = PocketIcBuilder::new()
        .with_application_subnet()
        .with_application_subnet()
        .build();
    let subnet_1 = pic.topology().get_app_subnets()[0];
    let subnet_2 = pic.topology().get_app_subnets()[1];
    assert_ne!(subnet_1, subnet_2);
    let canister_1 = pic.create_canister_on_subnet(None, None, subnet_1);
    assert_eq!(pic.get_subnet(canister_1), Some(subnet_1));
    let canister_2 = pic.create_canister_on_subnet(None, None, subnet_2);
    assert_eq!(pic.get_subnet(canister_2), Some(subnet_2));

    let specified = Principal::from_text("rimrc-piaaa-aaaao-aaljq-cai").unwrap();
    assert!(pic.get_subnet(specified).is_none());
    let canister_3 = pic.create_canister_with_id(None, None, specified).unwrap();
    assert_eq!(canister_3, specified);
    let subnet_3 = pic.get_subnet(specified).unwrap();
    assert_ne!(subnet_1, subnet_3);
    assert_ne!(subnet_2, subnet_3);

    let bitcoin = Principal::from_text("ghsi2-tqaaa-aaaan-aaaca-cai").unwrap();
    assert!(pic.get_subnet(bitcoin).is_none());
    assert!(pic.topology().get_bitcoin().is_none());
    let canister_4 = pic.create_canister_with_id(None, None, bitcoin).unwrap();
    assert_eq!(canister_4, bitcoin);
    let subnet_4 = pic.get_subnet(bitcoin).unwrap();
    assert_eq!(pic.topology().get_bitcoin().unwrap(), subnet_4);
    for other in [subnet_1, subnet_2, subnet_3] {
        assert_ne!(other, subnet_4);
    }

    let all = [canister_1, canister_2, canister_3, canister_4];
    for id in all {
        pic.add_cycles(id, INIT_CYCLES);
        pic.install_canister(id, test_canister_wasm(), vec![], None);
    }
    for a in all {
        for b in all {
            if a != b {
                let reply = pic
                    .update_call(a, Principal::anonymous(), "whois", Encode!(&b).unwrap())
                    .unwrap();
                assert_eq!(Decode!(&reply, String).unwrap(), b.to_string());
            }
        }
    }
}

#[test]
fn test_query_call_on_new_pocket_ic() {
    let pic = PocketIc::new();
    let id: Principal = pic.topology().default_effective_canister_id.into();
    pic.query_call(id, Principal::anonymous(), "foo", vec![])
        .unwrap_err();
}

#[test]
fn test_ecdsa_disabled() {
    let pic = PocketIcBuilder::new()
        .with_nns_subnet()
        .with_application_subnet()
        .build();
    let canister = deploy_test_canister(&pic, Some(pic.topology().get_app_subnets()[0]));
    let derivation_path = vec![b"my message".to_vec()];
    let message_hash: Vec<u8> = Sha256::digest(b"Hello, world!").to_vec();
    let key = "dfx_test_key".to_string();
    let public_key_err = update_candid::<
        (Option<Principal>, Vec<Vec<u8>>, String),
        (Result<ic_management_canister_types::EcdsaPublicKeyResult, String>,),
    >(
        &pic,
        canister,
        "ecdsa_public_key",
        (None, derivation_path.clone(), key.clone()),
    )
    .unwrap()
    .0
    .unwrap_err();
    assert!(public_key_err.contains(
        "Requested unknown threshold key: ecdsa:Secp256k1:dfx_test_key, existing keys: []"
    ));
    let signature_err =
        update_candid::<(Vec<u8>, Vec<Vec<u8>>, String), (Result<Vec<u8>, String>,)>(
            &pic,
            canister,
            "sign_with_ecdsa",
            (message_hash, derivation_path, key),
        )
        .unwrap()
        .0
        .unwrap_err();
    assert!(signature_err.contains(
        "Requested unknown or disabled threshold key: ecdsa:Secp256k1:dfx_test_key, existing enabled keys: []"
    ));
}

#[test]
fn subnet_metrics() {
    let pic = PocketIcBuilder::new().with_application_subnet().build();
    let app = pic.topology().get_app_subnets()[0];
    assert!(
        pic.get_subnet_metrics(Principal::management_canister())
            .is_none()
    );
    deploy_counter_canister(&pic);
    let metrics = pic.get_subnet_metrics(app).unwrap();
    assert_eq!(metrics.num_canisters, 1);
    assert!((1 << 16) < metrics.canister_state_bytes && metrics.canister_state_bytes < (1 << 17));
    let id = deploy_counter_canister(&pic);
    let metrics = pic.get_subnet_metrics(app).unwrap();
    assert_eq!(metrics.num_canisters, 2);
    assert!((1 << 17) < metrics.canister_state_bytes && metrics.canister_state_bytes < (1 << 18));
    pic.uninstall_canister(id, None).unwrap();
    pic.stop_canister(id, None).unwrap();
    let metrics = pic.get_subnet_metrics(app).unwrap();
    assert_eq!(metrics.num_canisters, 2);
    assert!((1 << 16) < metrics.canister_state_bytes && metrics.canister_state_bytes < (1 << 17));
    pic.delete_canister(id, None).unwrap();
    let metrics = pic.get_subnet_metrics(app).unwrap();
    assert_eq!(metrics.num_canisters, 1);
    assert!((1 << 16) < metrics.canister_state_bytes && metrics.canister_state_bytes < (1 << 17));
}

#[test]
fn create_canister_with_effective_canister_id() {
    // The helper of PocketIC's test_get_default_effective_canister_id, without the gateway:
    // provisional creation routed by an effective canister id lands on that id's subnet.
    let pic = PocketIcBuilder::new()
        .with_nns_subnet()
        .with_application_subnet()
        .build();
    let effective: Principal = pic.topology().default_effective_canister_id.into();
    let (CanisterIdRecord { canister_id },) = call_candid_as(
        &pic,
        Principal::management_canister(),
        RawEffectivePrincipal::CanisterId(effective.as_slice().to_vec()),
        Principal::anonymous(),
        "provisional_create_canister_with_cycles",
        (ProvisionalCreateCanisterWithCyclesArgs {
            settings: None,
            specified_id: None,
            amount: None,
            sender_canister_version: None,
        },),
    )
    .unwrap();
    assert_eq!(canister_id, effective);
    let subnet = pic.get_subnet(canister_id).unwrap();
    assert!(pic.topology().get_app_subnets().contains(&subnet));
}

#[test]
fn get_controllers() {
    let pic = PocketIc::new();
    let id = pic.create_canister();
    assert_eq!(pic.get_controllers(id), vec![Principal::anonymous()]);
    let user = Principal::from_slice(&[u8::MAX; 29]);
    pic.set_controllers(id, None, vec![Principal::anonymous(), user])
        .unwrap();
    let controllers = pic.get_controllers(id);
    assert_eq!(controllers.len(), 2);
    assert!(controllers.contains(&Principal::anonymous()));
    assert!(controllers.contains(&user));
}

#[test]
#[should_panic(expected = "CanisterNotFound(CanisterId")]
fn get_controllers_of_nonexisting_canister() {
    let pic = PocketIc::new();
    let id = pic.create_canister();
    pic.add_cycles(id, 100_000_000_000_000);
    pic.stop_canister(id, None).unwrap();
    pic.delete_canister(id, None).unwrap();
    let _ = pic.get_controllers(id);
}

#[test]
fn test_canister_snapshots() {
    let pic = PocketIc::new();
    let id = deploy_counter_canister(&pic);
    assert_eq!(call_counter_canister(&pic, id, "write"), 1u32.to_le_bytes());
    assert!(pic.list_canister_snapshots(id, None).unwrap().is_empty());

    pic.stop_canister(id, None).unwrap();
    let first = pic.take_canister_snapshot(id, None, None).unwrap();
    pic.start_canister(id, None).unwrap();
    let listed = pic.list_canister_snapshots(id, None).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, first.id);
    assert_eq!(listed[0].total_size, first.total_size);
    assert_eq!(listed[0].taken_at_timestamp, first.taken_at_timestamp);

    assert_eq!(call_counter_canister(&pic, id, "write"), 2u32.to_le_bytes());
    pic.stop_canister(id, None).unwrap();
    pic.load_canister_snapshot(id, None, first.id.clone())
        .unwrap();
    pic.start_canister(id, None).unwrap();
    assert_eq!(call_counter_canister(&pic, id, "read"), 1u32.to_le_bytes());
    assert_eq!(call_counter_canister(&pic, id, "write"), 2u32.to_le_bytes());

    pic.stop_canister(id, None).unwrap();
    let second = pic
        .take_canister_snapshot(id, None, Some(first.id))
        .unwrap();
    pic.start_canister(id, None).unwrap();
    let listed = pic.list_canister_snapshots(id, None).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, second.id);

    pic.stop_canister(id, None).unwrap();
    let third = pic.take_canister_snapshot(id, None, None).unwrap();
    pic.start_canister(id, None).unwrap();
    assert_eq!(
        pic.list_canister_snapshots(id, None).unwrap()[0].id,
        second.id
    );
    pic.delete_canister_snapshot(id, None, second.id).unwrap();
    let listed = pic.list_canister_snapshots(id, None).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, third.id);
}

#[test]
fn test_wasm_chunk_store() {
    let pic = PocketIc::new();
    let store = pic.create_canister();
    pic.add_cycles(store, INIT_CYCLES);
    assert!(pic.stored_chunks(store, None).unwrap().is_empty());
    let mut first = test_canister_wasm();
    let second = first.split_off(first.len() / 2);
    let first_hash = pic.upload_chunk(store, None, first.clone()).unwrap();
    assert_eq!(first_hash, Sha256::digest(&first).to_vec());
    assert_eq!(
        pic.upload_chunk(store, None, first.clone()).unwrap(),
        first_hash
    );
    let second_hash = pic.upload_chunk(store, None, second).unwrap();
    let stored = pic.stored_chunks(store, None).unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.contains(&first_hash) && stored.contains(&second_hash));

    let target = pic.create_canister();
    pic.add_cycles(target, INIT_CYCLES);
    pic.install_chunked_canister(
        target,
        None,
        CanisterInstallMode::Install,
        store,
        vec![first_hash, second_hash],
        Sha256::digest(test_canister_wasm()).to_vec(),
        Encode!(&()).unwrap(),
    )
    .unwrap();
    pic.clear_chunk_store(store, None).unwrap();
    assert!(pic.stored_chunks(store, None).unwrap().is_empty());
}

#[test]
fn canister_logs() {
    let pic = PocketIc::new();
    let canister = deploy_test_canister(&pic, None);
    assert!(
        pic.fetch_canister_logs(canister, Principal::anonymous())
            .unwrap()
            .is_empty()
    );
    for msg in ["Logging works!", "Multiple logs are stored!"] {
        pic.update_call(
            canister,
            Principal::anonymous(),
            "canister_log",
            encode_one(msg).unwrap(),
        )
        .unwrap();
    }
    let logs = pic
        .fetch_canister_logs(canister, Principal::anonymous())
        .unwrap();
    assert_eq!(logs.len(), 2);
    assert_eq!(
        String::from_utf8(logs[0].content.clone()).unwrap(),
        "Logging works!"
    );
    assert_eq!(
        String::from_utf8(logs[1].content.clone()).unwrap(),
        "Multiple logs are stored!"
    );
}

#[test]
fn get_subnet() {
    let pic = PocketIcBuilder::new()
        .with_nns_subnet()
        .with_application_subnet()
        .build();
    let topology = pic.topology();
    let default = topology
        .get_subnet(topology.default_effective_canister_id.clone().into())
        .unwrap();
    assert_eq!(
        topology.subnet_configs.get(&default).unwrap().subnet_kind,
        SubnetKind::Application
    );
    let nns = topology
        .get_subnet(Principal::from_text("rwlgt-iiaaa-aaaaa-aaaaa-cai").unwrap())
        .unwrap();
    assert_eq!(
        topology.subnet_configs.get(&nns).unwrap().subnet_kind,
        SubnetKind::NNS
    );
}

#[test]
fn many_intersubnet_calls() {
    let pic = PocketIcBuilder::new()
        .with_application_subnet()
        .with_application_subnet()
        .build();
    let subnets = pic.topology().get_app_subnets();
    let a = pic.create_canister_on_subnet(None, None, subnets[0]);
    pic.add_cycles(a, 100_000_000_000_000_000);
    pic.install_canister(a, test_canister_wasm(), vec![], None);
    let b = pic.create_canister_on_subnet(None, None, subnets[1]);
    pic.add_cycles(b, 100_000_000_000_000_000);
    pic.install_canister(b, test_canister_wasm(), vec![], None);
    let ids: Vec<_> = (0..500)
        .map(|_| {
            pic.submit_call(
                a,
                Principal::anonymous(),
                "call_with_large_blob",
                Encode!(&b, &10_000u64).unwrap(),
            )
            .unwrap()
        })
        .collect();
    for id in ids {
        pic.await_call(id).unwrap();
    }
}

#[test]
fn test_reject_response_type() {
    let pic = PocketIc::new();
    let canister = deploy_test_canister(&pic, None);
    for certified in [true, false] {
        for action in ["reject", "trap"] {
            for method in ["query", "update"] {
                if !certified && method == "update" {
                    continue;
                }
                let name = format!("{action}_{method}");
                let (err, msg_id) = if certified {
                    let msg_id = pic
                        .submit_call(
                            canister,
                            Principal::anonymous(),
                            &name,
                            Encode!(&()).unwrap(),
                        )
                        .unwrap();
                    (pic.await_call(msg_id.clone()).unwrap_err(), Some(msg_id))
                } else {
                    let err = pic
                        .query_call(
                            canister,
                            Principal::anonymous(),
                            &name,
                            Encode!(&()).unwrap(),
                        )
                        .unwrap_err();
                    (err, None)
                };
                if let Some(msg_id) = msg_id {
                    assert_eq!(pic.ingress_status(msg_id).unwrap().unwrap_err(), err);
                }
                if action == "reject" {
                    assert_eq!(err.reject_code, RejectCode::CanisterReject);
                    assert_eq!(err.error_code, ErrorCode::CanisterRejectedMessage);
                } else {
                    assert_eq!(err.reject_code, RejectCode::CanisterError);
                    assert_eq!(err.error_code, ErrorCode::CanisterCalledTrap);
                }
                assert!(
                    err.reject_message
                        .contains(&format!("{action} in {method} method"))
                );
                assert_eq!(err.certified, certified);
            }
        }
    }
    for action in [b"trap".as_slice(), b"skip"] {
        let err = pic
            .submit_call(
                canister,
                Principal::anonymous(),
                "trap_update",
                action.to_vec(),
            )
            .unwrap_err();
        if action == b"trap" {
            assert_eq!(err.reject_code, RejectCode::CanisterError);
            assert!(err.reject_message.contains("trap in inspect message"));
            assert_eq!(err.error_code, ErrorCode::CanisterCalledTrap);
        } else {
            assert_eq!(err.reject_code, RejectCode::CanisterReject);
            assert!(err.reject_message.contains("Canister rejected the message"));
            assert_eq!(err.error_code, ErrorCode::CanisterRejectedMessage);
        }
        assert!(!err.certified, "inspect message is never certified");
    }
}

#[test]
fn stack_overflow() {
    let wasm = wat::parse_str(
        r#"(module
            (func $f (export "canister_update foo")
                (local i64) (local i64) (local i64) (local i64) (local i64)
                (local i64) (local i64) (local i64) (local i64) (local i64)
                (local i64) (local i64) (local i64) (local i64) (local i64)
                (local i64) (local i64) (local i64) (local i64) (local i64)
                (call $f))
            (memory 0))"#,
    )
    .unwrap();
    let pic = PocketIc::new();
    let id = pic.create_canister();
    pic.add_cycles(id, INIT_CYCLES);
    pic.install_canister(id, wasm, vec![], None);
    let err = pic
        .update_call(id, Principal::anonymous(), "foo", encode_one(()).unwrap())
        .unwrap_err();
    assert!(
        err.reject_message
            .contains("Canister trapped: stack overflow")
    );
}

#[test]
fn test_specified_id_on_fresh_instance() {
    let pic = PocketIcBuilder::new().with_application_subnet().build();
    let id = Principal::from_text("rimrc-piaaa-aaaao-aaljq-cai").unwrap();
    assert_eq!(pic.create_canister_with_id(None, None, id).unwrap(), id);
}

#[test]
fn test_invalid_specified_id() {
    let specified = {
        let pic = PocketIcBuilder::new().with_application_subnet().build();
        pic.create_canister()
    };
    let pic = PocketIcBuilder::new().with_application_subnet().build();
    let err = pic
        .create_canister_with_id(None, None, specified)
        .unwrap_err();
    let expected = format!(
        "The `specified_id` {specified} is invalid because it belongs to the canister allocation ranges of the test environment.\\nUse a `specified_id` that matches a canister ID on the ICP mainnet and a test environment that supports canister creation with `specified_id` (e.g., PocketIC)."
    );
    assert!(err.contains(&expected), "{err}");
}
