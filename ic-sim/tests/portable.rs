//! Tests written once against [`IcBackend`], run on the simulator, through the simulator's HTTP
//! server with ic-agent as the client (`ic_sim_http::client::AgentBackend`: the server adds no
//! behaviour of its own), and, when `POCKET_IC_BIN` points to a PocketIC server binary, on
//! PocketIC too. They check the rules where all must agree exactly: reject and error codes,
//! upgrade atomicity, snapshots, controllers.

mod common;

use std::sync::Arc;

use candid::{Decode, Encode, Principal};
use common::{ProbeInit, init_arg, no_init, probe_wasm};
use ic_agent::Identity;
use ic_agent::identity::BasicIdentity;
use ic_sim::backend::IcBackend;
use ic_sim::{ErrorCode, RejectCode, Sim};
use ic_sim_http::client::AgentBackend;
use ic_sim_http::{ServerConfig, ServerHandle};

/// A user who controls nothing, with a key (so that the HTTP backend can sign as it).
fn stranger_identity() -> BasicIdentity {
    BasicIdentity::from_raw_key(&[7; 32])
}

fn stranger() -> Principal {
    stranger_identity().sender().expect("a principal")
}

/// The simulator behind its HTTP server, reached with ic-agent.
fn http_backend() -> AgentBackend {
    let config = ServerConfig {
        port: 0,
        ..ServerConfig::default()
    };
    let (server, ()) = ServerHandle::spawn(config, |_| ()).expect("the server starts");
    AgentBackend::new(server, vec![Arc::new(stranger_identity())])
}

/// Runs `test` on the simulator, through its HTTP server, and on PocketIC when a server is
/// configured.
fn on_every_backend(test: impl Fn(&dyn IcBackend)) {
    test(&Sim::new());
    test(&http_backend());
    if std::env::var_os("POCKET_IC_BIN").is_some() {
        test(&pocket_ic::PocketIc::new());
    } else {
        eprintln!(
            "portable test: POCKET_IC_BIN is not set, so the PocketIC run is skipped (the simulator run above still counts)"
        );
    }
}

fn probe(ic: &dyn IcBackend) -> Principal {
    let id = ic.create_canister();
    ic.add_cycles(id, 10_000_000_000_000);
    ic.install_canister(id, probe_wasm(), no_init(), None);
    id
}

fn inc(ic: &dyn IcBackend, id: Principal) -> u64 {
    let reply = ic
        .update_call(id, Principal::anonymous(), "inc", Encode!().unwrap())
        .expect("inc");
    Decode!(&reply, u64).unwrap()
}

fn read(ic: &dyn IcBackend, id: Principal) -> u64 {
    let reply = ic
        .query_call(id, Principal::anonymous(), "read", Encode!().unwrap())
        .expect("read");
    Decode!(&reply, u64).unwrap()
}

#[test]
fn counter_and_trap_codes_agree() {
    on_every_backend(|ic| {
        let id = probe(ic);
        assert_eq!(
            (inc(ic, id), inc(ic, id), read(ic, id)),
            (1, 2, 2),
            "{}",
            ic.backend_name()
        );
        let err = ic
            .update_call(
                id,
                Principal::anonymous(),
                "trap",
                Encode!(&"boom").unwrap(),
            )
            .unwrap_err();
        assert_eq!(
            (err.reject_code, err.error_code),
            (RejectCode::CanisterError, ErrorCode::CanisterCalledTrap)
        );
        assert!(
            err.reject_message.contains("boom"),
            "{}: {}",
            ic.backend_name(),
            err.reject_message
        );
        let err = ic
            .update_call(
                id,
                Principal::anonymous(),
                "reject",
                Encode!(&"no").unwrap(),
            )
            .unwrap_err();
        assert_eq!(
            (err.reject_code, err.error_code),
            (
                RejectCode::CanisterReject,
                ErrorCode::CanisterRejectedMessage
            )
        );
        let err = ic
            .update_call(
                id,
                Principal::anonymous(),
                "no_such_method",
                Encode!().unwrap(),
            )
            .unwrap_err();
        assert_eq!(
            err.error_code,
            ErrorCode::CanisterMethodNotFound,
            "{}",
            ic.backend_name()
        );
    });
}

#[test]
fn trapping_post_upgrade_keeps_old_state_on_every_backend() {
    on_every_backend(|ic| {
        let id = probe(ic);
        inc(ic, id);
        let bad = init_arg(ProbeInit {
            trap_with: Some("nope".into()),
            burn_instructions: 0,
        });
        let err = ic
            .upgrade_canister(id, probe_wasm(), bad, None)
            .unwrap_err();
        assert_eq!(
            err.error_code,
            ErrorCode::CanisterCalledTrap,
            "{}",
            ic.backend_name()
        );
        assert_eq!(
            read(ic, id),
            1,
            "{}: the old heap survived",
            ic.backend_name()
        );
        ic.upgrade_canister(id, probe_wasm(), no_init(), None)
            .expect("a good upgrade");
        assert_eq!(
            read(ic, id),
            1,
            "{}: pre/post_upgrade carried the counter",
            ic.backend_name()
        );
    });
}

#[test]
fn snapshot_round_trip_on_every_backend() {
    on_every_backend(|ic| {
        let id = probe(ic);
        inc(ic, id);
        let snapshot = ic.take_canister_snapshot(id, None, None).expect("snapshot");
        inc(ic, id);
        inc(ic, id);
        ic.stop_canister(id, None).expect("stop");
        ic.load_canister_snapshot(id, None, snapshot.id)
            .expect("load");
        ic.start_canister(id, None).expect("start");
        assert_eq!(read(ic, id), 1, "{}", ic.backend_name());
    });
}

#[test]
fn non_controller_is_refused_on_every_backend() {
    on_every_backend(|ic| {
        let id = probe(ic);
        let err = ic
            .upgrade_canister(id, probe_wasm(), no_init(), Some(stranger()))
            .unwrap_err();
        assert_eq!(
            err.error_code,
            ErrorCode::CanisterInvalidController,
            "{}",
            ic.backend_name()
        );
        assert!(
            err.reject_message
                .contains("Only the controllers of the canister")
        );
        let status = ic.canister_status(id, None).expect("status");
        assert_eq!(status.settings.controllers, ic.get_controllers(id));
    });
}
