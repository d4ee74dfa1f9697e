//! The compiled-module cache: installing the same Wasm twice compiles it once. (Its own test
//! binary, so that no other test compiles modules concurrently and moves the counter.)

mod common;

use common::{wat_fixture, with_custom_section};
use ic_sim::{Sim, compilations};

#[test]
fn installing_the_same_wasm_twice_compiles_it_once() {
    // A module no earlier run has seen (so the on-disk cache cannot serve it either).
    let nonce = format!("{:?}", std::time::SystemTime::now());
    let wasm = with_custom_section(wat_fixture("empty"), "nonce", nonce.as_bytes());
    let sim = Sim::new();
    let before = compilations();
    let a = sim.create_canister();
    sim.install_canister(a, wasm.clone(), vec![], None);
    assert_eq!(compilations(), before + 1, "the first install compiles");
    let b = sim.create_canister();
    sim.install_canister(b, wasm.clone(), vec![], None);
    let other = Sim::new();
    let c = other.create_canister();
    other.install_canister(c, wasm, vec![], None);
    assert_eq!(
        compilations(),
        before + 1,
        "later installs, in any simulator of the process, reuse it"
    );
    assert_eq!(sim.module_hash(a), sim.module_hash(b));
}
