//! `ic-sim-pocket-test`: the methods of PocketIC's test canister that the portable part of the
//! pocket-ic crate's own test suite calls (`ic-sim/tests/pocket_ic_suite.rs`), with the same
//! candid interface and observable behaviour, written for ic-sim (PocketIC's own canister also
//! serves threshold keys, HTTP outcalls and the HTTP gateway, which ic-sim does not provide).

use candid::Principal;
use ic_cdk::call::Call;
use ic_cdk::{inspect_message, query, update};
use ic_management_canister_types as mgmt;

/// The canister's own id, as text.
#[update]
fn whoami() -> String {
    ic_cdk::api::canister_self().to_string()
}

/// Asks `canister` who it is (an inter-canister call to its `whoami`).
#[update]
async fn whois(canister: Principal) -> String {
    Call::unbounded_wait(canister, "whoami")
        .with_arg(())
        .await
        .expect("whoami call")
        .candid()
        .expect("whoami reply")
}

/// The length of the blob it was sent.
#[update]
fn blob_len(blob: serde_bytes::ByteBuf) -> u64 {
    blob.len() as u64
}

/// Sends a blob of `len` bytes to `canister`'s `blob_len`; traps if the call fails.
#[update]
async fn call_with_large_blob(canister: Principal, len: u64) -> u64 {
    let blob = serde_bytes::ByteBuf::from(vec![42u8; len as usize]);
    Call::unbounded_wait(canister, "blob_len")
        .with_arg(blob)
        .await
        .expect("blob_len call")
        .candid()
        .expect("blob_len reply")
}

/// Burns instructions until the counter reaches `n`.
#[update]
fn execute_many_instructions(n: u64) {
    while ic_cdk::api::instruction_counter() < n {}
}

/// Writes `msg` to the canister log.
#[update]
fn canister_log(msg: String) {
    ic_cdk::api::debug_print(msg);
}

/// `ic0.time` in a query.
#[query]
fn time() -> u64 {
    ic_cdk::api::time()
}

/// Accepts every ingress message except one whose raw argument is `trap` (traps) or `skip`
/// (not accepted).
#[inspect_message]
fn inspect_message() {
    match ic_cdk::api::msg_arg_data().as_slice() {
        b"trap" => ic_cdk::trap("trap in inspect message"),
        b"skip" => {}
        _ => ic_cdk::api::accept_message(),
    }
}

#[query(manual_reply = true)]
fn reject_query() {
    ic_cdk::api::msg_reject("reject in query method");
}

#[update(manual_reply = true)]
fn reject_update() {
    ic_cdk::api::msg_reject("reject in update method");
}

#[query]
fn trap_query() {
    ic_cdk::trap("trap in query method");
}

#[update]
fn trap_update() {
    ic_cdk::trap("trap in update method");
}

/// The ECDSA public key of `key_name` (secp256k1), or the management canister's refusal.
#[update]
async fn ecdsa_public_key(
    canister_id: Option<Principal>,
    derivation_path: Vec<serde_bytes::ByteBuf>,
    key_name: String,
) -> Result<mgmt::EcdsaPublicKeyResult, String> {
    let args = mgmt::EcdsaPublicKeyArgs {
        canister_id,
        derivation_path: derivation_path.into_iter().map(|p| p.into_vec()).collect(),
        key_id: secp256k1(key_name),
    };
    Call::unbounded_wait(Principal::management_canister(), "ecdsa_public_key")
        .with_arg(args)
        .await
        .map_err(|e| e.to_string())?
        .candid()
        .map_err(|e| e.to_string())
}

/// An ECDSA signature of `message_hash` with `key_name`, or the management canister's refusal.
#[update]
async fn sign_with_ecdsa(
    message_hash: serde_bytes::ByteBuf,
    derivation_path: Vec<serde_bytes::ByteBuf>,
    key_name: String,
) -> Result<serde_bytes::ByteBuf, String> {
    let args = mgmt::SignWithEcdsaArgs {
        message_hash: message_hash.into_vec(),
        derivation_path: derivation_path.into_iter().map(|p| p.into_vec()).collect(),
        key_id: secp256k1(key_name),
    };
    let result: mgmt::SignWithEcdsaResult =
        Call::unbounded_wait(Principal::management_canister(), "sign_with_ecdsa")
            .with_arg(args)
            .with_cycles(26_153_846_153)
            .await
            .map_err(|e| e.to_string())?
            .candid()
            .map_err(|e| e.to_string())?;
    Ok(serde_bytes::ByteBuf::from(result.signature))
}

fn secp256k1(name: String) -> mgmt::EcdsaKeyId {
    mgmt::EcdsaKeyId {
        curve: mgmt::EcdsaCurve::Secp256k1,
        name,
    }
}

/// Stable memory in pages.
#[query]
fn stable_size() -> u64 {
    ic_cdk::stable::stable_size()
}

/// Grows stable memory by `pages` and fills each new page with the bytes 0, 1, ..., 255, ...
#[update]
fn stable_grow_and_fill(pages: u64) {
    let first = ic_cdk::stable::stable_size();
    ic_cdk::stable::stable_grow(pages).expect("stable memory grows");
    let page: Vec<u8> = (0..65536u32).map(|i| (i % 256) as u8).collect();
    for i in 0..pages {
        ic_cdk::stable::stable_write((first + i) << 16, &page);
    }
}
