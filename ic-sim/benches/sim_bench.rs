//! Simulator throughput figures (printed, never asserted): ingress update calls per second on a
//! counter canister, inter-canister round trips per second, and install time of a ~2 MB module,
//! cold (cranelift compile) and cached.
//!
//! Run: `cargo bench -p ic-sim --bench sim_bench`. Under `cargo test --all-targets` the same code
//! runs once with tiny counts, as a smoke test that keeps the benchmark working.

use std::time::Instant;

use candid::{CandidType, Principal, encode_args, encode_one};
use ic_sim::{Sim, compilations};

#[derive(CandidType)]
struct CallArgs {
    target: Principal,
    method: String,
    arg: Vec<u8>,
    cycles: candid::Nat,
    bounded_wait_secs: Option<u32>,
}

/// A valid canister module of about `target_bytes`: many functions with arithmetic bodies, so
/// that compiling it costs what compiling real code of that size costs.
fn synthetic_module(target_bytes: usize) -> Vec<u8> {
    let mut body = String::from("local.get 0\n");
    for i in 0..120 {
        body.push_str(&format!(
            "i32.const {}\ni32.add\ni32.const 3\ni32.mul\n",
            i * 7919
        ));
    }
    let mut wat = String::from("(module (memory 1)\n");
    let mut n = 0;
    loop {
        wat.push_str(&format!("(func $f{n} (param i32) (result i32)\n{body})\n"));
        n += 1;
        if n % 100 == 0
            && wat::parse_str(format!("{wat})")).expect("valid WAT").len() >= target_bytes
        {
            break;
        }
    }
    wat.push_str("(func (export \"canister_update noop\"))\n)");
    wat::parse_str(&wat).expect("valid WAT")
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (updates, round_trips) = if full { (3_000, 1_000) } else { (10, 5) };
    // Cold compiles must not be served from an earlier run's disk cache.
    let cache = std::env::temp_dir().join(format!("ic-sim-bench-cache-{}", std::process::id()));
    // SAFETY: set before any other thread exists (the benchmark is single-threaded).
    unsafe { std::env::set_var("IC_SIM_CACHE_DIR", &cache) };

    let probe = canister_build::canister_wasm("ic-sim-probe").expect("probe canister builds");
    let sim = Sim::new();
    let a = sim.create_canister();
    let b = sim.create_canister();
    sim.install_canister(a, probe.clone(), encode_args(()).unwrap(), None);
    sim.install_canister(b, probe, encode_args(()).unwrap(), None);
    let anon = Principal::anonymous();

    let start = Instant::now();
    for _ in 0..updates {
        sim.update_call(a, anon, "inc", encode_args(()).unwrap())
            .expect("inc");
    }
    let per_sec = updates as f64 / start.elapsed().as_secs_f64();
    println!("ingress update calls per second (counter canister): {per_sec:.0}");

    let call = encode_one(CallArgs {
        target: b,
        method: "inc".into(),
        arg: encode_args(()).unwrap(),
        cycles: 0u64.into(),
        bounded_wait_secs: None,
    })
    .unwrap();
    let start = Instant::now();
    for _ in 0..round_trips {
        sim.update_call(a, anon, "call", call.clone())
            .expect("call");
    }
    let per_sec = round_trips as f64 / start.elapsed().as_secs_f64();
    println!("inter-canister round trips per second (one ingress each): {per_sec:.0}");

    // Just under the 2 MiB ingress limit: a larger module needs install_chunked_code, as on the IC.
    let module = synthetic_module(1_900_000);
    let c = sim.create_canister();
    let before = compilations();
    let start = Instant::now();
    sim.install_canister(c, module.clone(), vec![], None);
    let cold = start.elapsed();
    assert_eq!(
        compilations(),
        before + 1,
        "the cold install compiled the module"
    );
    let d = sim.create_canister();
    let start = Instant::now();
    sim.install_canister(d, module.clone(), vec![], None);
    let cached = start.elapsed();
    assert_eq!(
        compilations(),
        before + 1,
        "the second install was served from the cache"
    );
    println!(
        "install of a {:.2} MB module: cold {:.0} ms (cranelift compile), cached {:.1} ms",
        module.len() as f64 / 1e6,
        cold.as_secs_f64() * 1e3,
        cached.as_secs_f64() * 1e3
    );
    let _ = std::fs::remove_dir_all(&cache);
}
