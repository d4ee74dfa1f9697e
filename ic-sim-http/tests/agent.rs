//! ic-agent, DFINITY's Rust client, against the server: it checks every certificate against the
//! pinned root key and every query signature against the node key it reads from the state tree.
//! The server checks the client's signatures and ingress expiry, and refuses what the replica
//! refuses.

use std::time::Duration;

use candid::{Decode, Encode, Principal};
use ic_agent::identity::{AnonymousIdentity, BasicIdentity, Secp256k1Identity};
use ic_agent::{Agent, AgentError, Identity};
use ic_sim::Sim;
use ic_sim_http::{ServerConfig, ServerHandle};
use ic_transport_types::Envelope;

fn probe_wasm() -> Vec<u8> {
    canister_build::canister_wasm("ic-sim-probe").expect("the probe canister builds")
}

/// A server with one probe canister controlled by `controller`.
fn serve(controller: Principal) -> (ServerHandle, Principal) {
    let wasm = probe_wasm();
    let config = ServerConfig {
        port: 0,
        seed: 3,
        ..ServerConfig::default()
    };
    ServerHandle::spawn(config, move |sim: &Sim| {
        let id = sim.create_canister();
        sim.add_cycles(id, 10_000_000_000_000);
        sim.install_canister(id, wasm, Encode!(&None::<()>).unwrap(), None);
        sim.set_controllers(id, None, vec![controller])
            .expect("set controllers");
        id
    })
    .expect("the server starts")
}

fn ed25519(seed: u8) -> BasicIdentity {
    BasicIdentity::from_raw_key(&[seed; 32])
}

fn agent(server: &ServerHandle, identity: impl Identity + 'static) -> Agent {
    let agent = Agent::builder()
        .with_url(server.url())
        .with_identity(identity)
        .with_ingress_expiry(Duration::from_secs(180))
        .build()
        .expect("an agent");
    agent.set_root_key(server.root_key().to_vec());
    agent
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn updates_queries_and_read_state_verify_under_the_pinned_root_key() {
    let operator = ed25519(1);
    let (server, id) = serve(operator.sender().unwrap());
    let agent = agent(&server, operator);
    rt().block_on(async {
        let reply = agent
            .update(&id, "inc")
            .with_arg(Encode!().unwrap())
            .call_and_wait()
            .await
            .unwrap();
        assert_eq!(Decode!(&reply, u64).unwrap(), 1);
        let reply = agent
            .query(&id, "read")
            .with_arg(Encode!().unwrap())
            .call()
            .await
            .unwrap();
        assert_eq!(
            Decode!(&reply, u64).unwrap(),
            1,
            "a signed query sees the update"
        );
        let controllers = agent.read_state_canister_controllers(id).await.unwrap();
        assert_eq!(controllers, vec![agent.get_principal().unwrap()]);
        let hash = agent.read_state_canister_module_hash(id).await.unwrap();
        assert_eq!(hash.len(), 32);
        let candid = agent
            .read_state_canister_metadata(id, "candid:service")
            .await;
        assert!(candid.is_err() || !candid.unwrap().is_empty());
        let err = agent
            .update(&id, "trap")
            .with_arg(Encode!(&"boom").unwrap())
            .call_and_wait()
            .await
            .unwrap_err();
        match err {
            AgentError::CertifiedReject { reject, .. } => {
                assert_eq!(reject.error_code.as_deref(), Some("IC0503"));
                assert!(
                    reject.reject_message.contains("boom"),
                    "{}",
                    reject.reject_message
                );
            }
            other => panic!("expected a certified reject, got {other}"),
        }
    });
}

#[test]
fn a_wrong_root_key_is_refused_by_the_client() {
    let (server, id) = serve(Principal::anonymous());
    let agent = agent(&server, AnonymousIdentity);
    agent.set_root_key(ic_sim_http::Keys::from_seed(4).root_key_der().to_vec());
    let err = rt()
        .block_on(
            agent
                .update(&id, "inc")
                .with_arg(Encode!().unwrap())
                .call_and_wait(),
        )
        .unwrap_err();
    assert!(
        matches!(err, AgentError::CertificateVerificationFailed()),
        "{err}"
    );
}

#[test]
fn secp256k1_identities_are_accepted_and_the_caller_is_who_signed() {
    let key = k256::SecretKey::from_slice(&[9; 32]).unwrap();
    let identity = Secp256k1Identity::from_private_key(key);
    let me = identity.sender().unwrap();
    let (server, id) = serve(me);
    let agent = agent(&server, identity);
    rt().block_on(async {
        // canister_status is for controllers only: it succeeds as the signer.
        let status = agent
            .update(&Principal::management_canister(), "canister_status")
            .with_effective_canister_id(id)
            .with_arg(
                Encode!(&ic_management_canister_types::CanisterIdRecord { canister_id: id })
                    .unwrap(),
            )
            .call_and_wait()
            .await;
        assert!(status.is_ok(), "{status:?}");
    });
}

/// Signs an `inc` call as `identity`, lets `tamper` change the envelope, sends it raw.
fn send_tampered(
    server: &ServerHandle,
    id: Principal,
    identity: impl Identity + 'static,
    expire_at: Option<std::time::SystemTime>,
    tamper: impl FnOnce(&mut Envelope<'static>),
) -> AgentError {
    let agent = agent(server, identity);
    let mut builder = agent.update(&id, "inc").with_arg(Encode!().unwrap());
    if let Some(t) = expire_at {
        builder = builder.expire_at(t);
    }
    let signed = builder.sign().expect("signs");
    let mut envelope: Envelope<'static> = serde_cbor::from_slice(&signed.signed_update).unwrap();
    tamper(&mut envelope);
    rt().block_on(agent.update_signed(id, envelope.encode_bytes()))
        .expect_err("the server refuses it")
}

fn http_400(err: &AgentError) -> String {
    match err {
        AgentError::HttpError(payload) => {
            assert_eq!(payload.status, 400, "{err}");
            String::from_utf8_lossy(&payload.content).into_owned()
        }
        other => panic!("expected HTTP 400, got {other}"),
    }
}

#[test]
fn forged_expired_and_impersonating_requests_are_refused() {
    let operator = ed25519(1);
    let (server, id) = serve(operator.sender().unwrap());
    // A signature flipped in one bit.
    let err = send_tampered(&server, id, ed25519(1), None, |e| {
        if let Some(sig) = e.sender_sig.as_mut() {
            sig[0] ^= 1;
        }
    });
    assert!(http_400(&err).starts_with("Invalid signature"), "{err}");
    // Someone else's key claiming to be the operator.
    let operator_principal = ed25519(1).sender().unwrap();
    let err = send_tampered(&server, id, ed25519(2), None, |e| {
        let mut content = e.content.clone().into_owned();
        if let ic_transport_types::EnvelopeContent::Call { sender, .. } = &mut content {
            *sender = operator_principal;
        }
        e.content = std::borrow::Cow::Owned(content);
    });
    assert!(
        http_400(&err).contains("does not match the public key"),
        "{err}"
    );
    // No signature at all for a named sender.
    let err = send_tampered(&server, id, ed25519(1), None, |e| {
        e.sender_sig = None;
        e.sender_pubkey = None;
    });
    assert!(
        http_400(&err).starts_with("Missing signature from user"),
        "{err}"
    );
    // An expiry in the past, and one too far ahead.
    let past = std::time::SystemTime::now() - Duration::from_secs(60);
    let err = send_tampered(&server, id, ed25519(1), Some(past), |_| {});
    assert!(
        http_400(&err).contains("Specified ingress_expiry not within expected range"),
        "{err}"
    );
    let future = std::time::SystemTime::now() + Duration::from_secs(600);
    let err = send_tampered(&server, id, ed25519(1), Some(future), |_| {});
    assert!(
        http_400(&err).contains("Specified ingress_expiry not within expected range"),
        "{err}"
    );
    // None of them ran: the counter is still 0.
    let agent = agent(&server, ed25519(1));
    let reply = rt()
        .block_on(agent.query(&id, "read").with_arg(Encode!().unwrap()).call())
        .unwrap();
    assert_eq!(Decode!(&reply, u64).unwrap(), 0);
}

#[test]
fn a_delegation_chain_is_refused_with_a_message_that_says_so() {
    let operator = ed25519(1);
    let (server, id) = serve(operator.sender().unwrap());
    let err = send_tampered(&server, id, ed25519(1), None, |e| {
        e.sender_delegation = Some(vec![ic_transport_types::SignedDelegation {
            delegation: ic_transport_types::Delegation {
                pubkey: e.sender_pubkey.clone().unwrap(),
                expiration: u64::MAX,
                targets: None,
                permissions: None,
            },
            signature: vec![0; 64],
        }]);
    });
    assert!(
        http_400(&err).contains("does not verify delegation chains"),
        "{err}"
    );
}

/// A module with a private metadata section (readable by controllers only) and a public one.
fn metadata_wasm() -> Vec<u8> {
    wat::parse_str(
        r#"(module
             (@custom "icp:private secret" "shh")
             (@custom "icp:public motto" "hello"))"#,
    )
    .unwrap()
}

#[test]
fn read_state_follows_the_replicas_access_rules() {
    let owner = ed25519(1);
    let owner_principal = owner.sender().unwrap();
    let wasm = metadata_wasm();
    let config = ServerConfig {
        port: 0,
        seed: 5,
        ..ServerConfig::default()
    };
    let (server, (probe, plain)) = ServerHandle::spawn(config, move |sim: &Sim| {
        let probe = sim.create_canister();
        sim.add_cycles(probe, 10_000_000_000_000);
        sim.install_canister(probe, probe_wasm(), Encode!(&None::<()>).unwrap(), None);
        let plain = sim.create_canister();
        sim.add_cycles(plain, 10_000_000_000_000);
        sim.install_canister(plain, wasm, vec![], None);
        for c in [probe, plain] {
            sim.set_controllers(c, None, vec![owner_principal]).unwrap();
        }
        (probe, plain)
    })
    .expect("the server starts");
    let owner = agent(&server, owner);
    let stranger = agent(&server, ed25519(2));
    rt().block_on(async {
        // Metadata: public for anyone, private for controllers only (403 for the others).
        let motto = stranger
            .read_state_canister_metadata(plain, "motto")
            .await
            .unwrap();
        assert_eq!(motto, b"hello");
        let secret = owner
            .read_state_canister_metadata(plain, "secret")
            .await
            .unwrap();
        assert_eq!(secret, b"shh");
        match stranger.read_state_canister_metadata(plain, "secret").await {
            Err(AgentError::HttpError(p)) => {
                assert_eq!(p.status, 403);
                assert!(
                    String::from_utf8_lossy(&p.content)
                        .contains("can only be requested by the controllers")
                );
            }
            other => panic!("a stranger read private metadata: {other:?}"),
        }
        // A canister path must name the effective canister (400).
        let path = vec![vec![
            "canister".into(),
            ic_agent::hash_tree::Label::from_bytes(plain.as_slice()),
            "controllers".into(),
        ]];
        match owner.read_state_raw(path, probe).await {
            Err(AgentError::HttpError(p)) => {
                assert_eq!(p.status, 400);
                assert!(
                    String::from_utf8_lossy(&p.content)
                        .contains("does not match requested principal id")
                );
            }
            other => panic!("a foreign canister path was served: {other:?}"),
        }
        // A path the state tree does not have (404).
        match owner
            .read_state_raw(vec![vec!["nonsense".into()]], probe)
            .await
        {
            Err(AgentError::HttpError(p)) => assert_eq!(p.status, 404),
            other => panic!("an invalid path was served: {other:?}"),
        }
        // A request's status is for its sender only (403 for another).
        let signed = owner
            .update(&probe, "inc")
            .with_arg(Encode!().unwrap())
            .sign()
            .unwrap();
        let request_id = signed.request_id;
        owner
            .update_signed(probe, signed.signed_update)
            .await
            .unwrap();
        let (status, _) = owner.request_status_raw(&request_id, probe).await.unwrap();
        assert!(
            matches!(
                status,
                ic_transport_types::RequestStatusResponse::Replied(_)
            ),
            "{status:?}"
        );
        match stranger.request_status_raw(&request_id, probe).await {
            Err(AgentError::HttpError(p)) => assert_eq!(p.status, 403),
            other => panic!("a stranger read another sender's request status: {other:?}"),
        }
    });
}

#[test]
fn a_call_past_the_sync_budget_answers_202_and_completes_by_polling() {
    let wasm = probe_wasm();
    let config = ServerConfig {
        port: 0,
        seed: 6,
        // No time for a synchronous answer: every call falls back to 202.
        sync_call_budget: Duration::ZERO,
        ..ServerConfig::default()
    };
    let (server, id) = ServerHandle::spawn(config, move |sim: &Sim| {
        let id = sim.create_canister();
        sim.add_cycles(id, 10_000_000_000_000);
        sim.install_canister(id, wasm, Encode!(&None::<()>).unwrap(), None);
        id
    })
    .expect("the server starts");
    let agent = agent(&server, AnonymousIdentity);
    rt().block_on(async {
        let answer = agent
            .update(&id, "inc")
            .with_arg(Encode!().unwrap())
            .call()
            .await
            .expect("accepted");
        let ic_agent::agent::CallResponse::Poll(request_id) = answer else {
            panic!("expected 202 and a request id to poll, got a synchronous answer");
        };
        let (reply, _certificate) = agent
            .wait(&request_id, id)
            .await
            .expect("polled to the end");
        assert_eq!(Decode!(&reply, u64).unwrap(), 1);
    });
}
