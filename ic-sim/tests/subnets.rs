//! Several subnets: 29-byte self-authenticating subnet ids, routing, the 2 MiB limit on
//! requests between subnets, and cross-subnet messages taking a round each way (issue "ic-sim
//! against suites written by others", items 5 and 6).

mod common;

use common::*;
use ic_sim::{MessageOrder, SubnetKind};

fn two_app_subnets() -> Sim {
    Sim::with_config(SimConfig {
        subnets: vec![SubnetKind::Application, SubnetKind::Application],
        message_order: MessageOrder::RoundRobin,
        ..SimConfig::default()
    })
}

fn probe_on(sim: &Sim, subnet: Principal) -> Principal {
    let id = sim.create_canister_on_subnet(None, None, subnet);
    sim.add_cycles(id, CYCLES);
    sim.install_canister(id, probe_wasm(), no_init(), None);
    id
}

/// Item 5: a subnet id is a self-authenticating principal (29 bytes, last byte 0x02), and a
/// canister sees its own subnet through ic0.subnet_self_copy. The replica builds subnet ids
/// with `PrincipalId::new_self_authenticating` (rs/types/base_types/src/principal_id.rs:
/// SHA-224 of a public key followed by `TYPE_SELF_AUTH: u8 = 0x02`), so a canister that
/// parses or stores its subnet id must handle 29 bytes.
#[test]
fn subnet_ids_are_self_authenticating_principals() {
    let sim = Sim::new();
    let subnets = sim.subnets();
    assert_eq!(subnets.len(), 1);
    let id = subnets[0].id;
    assert_eq!(id.as_slice().len(), 29);
    assert_eq!(id.as_slice()[28], 0x02, "self-authenticating tag");
    let probe = new_probe(&sim);
    assert_eq!(
        query::<Principal>(&sim, probe, "subnet_self", Encode!().unwrap()).unwrap(),
        id
    );
    assert_eq!(sim.get_subnet(probe), Some(id));
}

/// Item 6: canisters are placed on the subnet asked for, get ids from its range, see its size.
#[test]
fn canisters_live_on_their_subnet() {
    let sim = Sim::with_config(SimConfig {
        subnets: vec![SubnetKind::Application, SubnetKind::Fiduciary],
        ..SimConfig::default()
    });
    let [app, fiduciary] = [0, 1].map(|i| sim.subnets()[i].clone());
    assert_ne!(app.id, fiduciary.id);
    let a = probe_on(&sim, app.id);
    let f = probe_on(&sim, fiduciary.id);
    assert_eq!(sim.get_subnet(a), Some(app.id));
    assert_eq!(sim.get_subnet(f), Some(fiduciary.id));
    assert!(fiduciary.ranges.iter().any(|(lo, hi)| *lo <= f && f <= *hi));
    assert_eq!(
        query::<Principal>(&sim, f, "subnet_self", Encode!().unwrap()).unwrap(),
        fiduciary.id
    );
    assert_eq!(
        query::<u32>(&sim, f, "subnet_node_count", Encode!().unwrap()).unwrap(),
        28
    );
    assert_eq!(
        query::<u32>(&sim, a, "subnet_node_count", Encode!().unwrap()).unwrap(),
        13
    );
    // Fees scale with the subnet size: the same install costs more than twice as much on 28 nodes.
    let cost = |id: Principal| {
        let before = sim.cycle_balance(id);
        sim.reinstall_canister(id, probe_wasm(), no_init(), None)
            .unwrap();
        before - sim.cycle_balance(id)
    };
    assert!(cost(f) > 2 * cost(a));
}

/// Item 6: a call between subnets works, and takes a round each way (message routing), unlike
/// one within a subnet.
#[test]
fn cross_subnet_calls_take_a_round_each_way() {
    let sim = two_app_subnets();
    let [s1, s2] = [0, 1].map(|i| sim.subnets()[i].id);
    let a = probe_on(&sim, s1);
    let b = probe_on(&sim, s2);
    let id = submit_probe_call(&sim, a, CallArgs::no_arg(b, "inc"));
    let mut rounds = 0;
    while sim.ingress_status(id.clone()).is_none() {
        sim.tick();
        rounds += 1;
    }
    assert_eq!(rounds, 3, "request in round 2, response in round 3");
    assert_eq!(
        decode_outcome(sim.ingress_status(id).unwrap()).reply::<u64>(),
        1
    );
}

/// Item 6: a request of more than 2 MiB to another subnet is answered with a reject by the
/// stream builder (rs/messaging/src/routing/stream_builder.rs: CANISTER_ERROR, "Canister X
/// violated contract: attempted to send a message of size N exceeding the limit 2097152"); the
/// same request within the subnet goes through (10 MiB limit).
#[test]
fn requests_over_2_mib_cannot_cross_subnets() {
    let sim = two_app_subnets();
    let [s1, s2] = [0, 1].map(|i| sim.subnets()[i].id);
    let a = probe_on(&sim, s1);
    let local = probe_on(&sim, s1);
    let remote = probe_on(&sim, s2);
    let size = 3 * 1024 * 1024u64;
    let call = |target: Principal| -> CallOutcome {
        let reply = sim
            .update_call(
                a,
                Principal::anonymous(),
                "call_with_payload",
                Encode!(&target, &"stable_inc", &size).unwrap(),
            )
            .unwrap();
        Decode!(&reply, CallOutcome).unwrap()
    };
    // The local callee got the request (stable_inc ignores the raw bytes it cannot decode).
    assert_eq!(call(local).reply::<u64>(), 1);
    let remote_outcome = call(remote);
    assert_call_reject(
        &remote_outcome,
        RejectCode::CanisterError,
        &[&format!(
            "Canister {a} violated contract: attempted to send a message of size {} exceeding the limit 2097152",
            size + "stable_inc".len() as u64
        )],
    );
    assert_eq!(
        stable_read(&sim, remote),
        0,
        "the remote canister never saw it"
    );
}

/// Item 6: install_code of a module over 2 MiB into a canister on another subnet is refused
/// the same way (a management request goes to the subnet of the canister it names), while
/// chunked code installed from the target's own chunk store works across subnets.
#[test]
fn large_installs_across_subnets_must_be_chunked() {
    // The module reaches the installer by ingress here, so this test lifts the ingress limit
    // (a canister would assemble it from several uploads).
    let sim = Sim::with_config(SimConfig {
        subnets: vec![SubnetKind::Application, SubnetKind::Application],
        message_order: MessageOrder::RoundRobin,
        max_ingress_payload: 8 * 1024 * 1024,
        ..SimConfig::default()
    });
    let [s1, s2] = [0, 1].map(|i| sim.subnets()[i].id);
    let installer = probe_on(&sim, s1);
    let target = sim.create_canister_on_subnet(None, None, s2);
    sim.add_cycles(target, CYCLES);
    sim.set_controllers(target, None, vec![Principal::anonymous(), installer])
        .unwrap();
    let big = with_custom_section(probe_wasm(), "padding", &vec![7u8; 2 * 1024 * 1024]);
    let args = ic_management_canister_types::InstallCodeArgs {
        mode: CanisterInstallMode::Install,
        canister_id: target,
        wasm_module: big.clone(),
        arg: no_init(),
        sender_canister_version: None,
    };
    let direct = CallArgs::new(
        Principal::management_canister(),
        "install_code",
        Encode!(&args).unwrap(),
    );
    let outcome = probe_call(&sim, installer, direct);
    assert_call_reject(
        &outcome,
        RejectCode::CanisterError,
        &[
            &format!("Canister {installer} violated contract: attempted to send a message of size"),
            "exceeding the limit 2097152",
        ],
    );
    assert_eq!(sim.module_hash(target), None);

    // The same module in chunks of at most 1 MiB, uploaded to the target's own chunk store
    // and installed from there: every request stays under 2 MiB.
    let mgmt_call = |method: &str, arg: Vec<u8>| -> CallOutcome {
        let call = CallArgs::new(Principal::management_canister(), method, arg);
        probe_call(&sim, installer, call)
    };
    let mut hashes = Vec::new();
    for chunk in big.chunks(1024 * 1024) {
        let upload = ic_management_canister_types::UploadChunkArgs {
            canister_id: target,
            chunk: chunk.to_vec(),
        };
        let reply = mgmt_call("upload_chunk", Encode!(&upload).unwrap());
        hashes.push(reply.reply::<ic_management_canister_types::ChunkHash>());
    }
    let chunked = ic_management_canister_types::InstallChunkedCodeArgs {
        mode: CanisterInstallMode::Install,
        target_canister: target,
        store_canister: None,
        chunk_hashes_list: hashes,
        wasm_module_hash: sha256(&big).to_vec(),
        arg: no_init(),
        sender_canister_version: None,
    };
    let reply = mgmt_call("install_chunked_code", Encode!(&chunked).unwrap());
    reply.reply::<()>();
    assert_eq!(sim.module_hash(target), Some(sha256(&big)));
    assert_eq!(inc(&sim, target), 1);
}
