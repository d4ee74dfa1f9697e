//! `agentctl ic-rules`: the IC rules a self-upgrading canister lives by, shown on the embedded
//! simulator with the real canister Wasm of the fidelity suite's probe canister.
//!
//! Each step states what the IC guarantees, does it, and checks the outcome; it prints a
//! timeline in simulated time and a verdict, and fails if any step did not hold.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use candid::{CandidType, Decode, Encode, Principal};
use ic_sim::{Fault, Sim};

#[derive(CandidType)]
struct ProbeInit {
    trap_with: Option<String>,
    burn_instructions: u64,
}

#[derive(CandidType)]
struct CallArgs {
    target: Principal,
    method: String,
    arg: Vec<u8>,
    cycles: candid::Nat,
    bounded_wait_secs: Option<u32>,
}

struct Demo {
    sim: Sim,
    start: u64,
    operator: Principal,
    steps: Vec<(String, bool)>,
}

impl Demo {
    fn elapsed(&self) -> f64 {
        (self.sim.get_time().as_nanos_since_unix_epoch() - self.start) as f64 / 1e9
    }

    fn step(&mut self, title: &str, held: bool, detail: String) {
        let mark = if held { "ok  " } else { "FAIL" };
        println!(
            "[t+{:>7.1}s] {mark} {title}\n              {detail}",
            self.elapsed()
        );
        self.steps.push((title.to_string(), held));
    }

    fn read(&self, canister: Principal) -> Result<u64> {
        let reply = self
            .sim
            .query_call(canister, self.operator, "read", Encode!().unwrap())
            .context("query read")?;
        Ok(Decode!(&reply, u64)?)
    }

    fn inc(&self, canister: Principal) -> Result<u64> {
        let reply = self
            .sim
            .update_call(canister, self.operator, "inc", Encode!().unwrap())
            .context("update inc")?;
        Ok(Decode!(&reply, u64)?)
    }
}

/// Runs the demo; `Ok(true)` when every step held.
pub fn run() -> Result<bool> {
    println!("agentctl ic-rules: IC upgrade semantics on the embedded simulator (ic-sim)\n");
    println!("building the probe canister (first run compiles it, later runs reuse it)...");
    let wasm = canister_build::canister_wasm("ic-sim-probe")?;
    let sim = Sim::new();
    let start = sim.get_time().as_nanos_since_unix_epoch();
    let operator = Principal::from_slice(&[0xAA; 29]);
    let mut demo = Demo {
        sim,
        start,
        operator,
        steps: Vec::new(),
    };
    let no_init = Encode!(&None::<ProbeInit>)?;

    // 1. Deploy: the canister controls itself (it must, to upgrade itself) and the operator does.
    let agent = demo.sim.create_canister_with_settings(Some(operator), None);
    demo.sim
        .install_canister(agent, wasm.clone(), no_init.clone(), Some(operator));
    demo.sim
        .set_controllers(agent, Some(operator), vec![operator, agent])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for _ in 0..3 {
        demo.inc(agent)?;
    }
    let count = demo.read(agent)?;
    let hash = demo.sim.module_hash(agent).context("installed")?;
    demo.step(
        "deploy a canister that controls itself; 3 updates",
        count == 3,
        format!("counter = {count}, module hash {}", hex::encode(&hash[..6])),
    );

    // 2. An upgrade whose post_upgrade traps is atomic: old module, old state.
    let bad_arg = Encode!(&Some(ProbeInit {
        trap_with: Some("migration failed".into()),
        burn_instructions: 0
    }))?;
    let result = demo
        .sim
        .upgrade_canister(agent, wasm.clone(), bad_arg, Some(operator));
    let count = demo.read(agent)?;
    let same_module = demo.sim.module_hash(agent) == Some(hash);
    let detail = match &result {
        Err(e) => format!(
            "rejected {} ({:?}); counter = {count}; same module: {same_module}",
            e.error_code, e.reject_code
        ),
        Ok(()) => "the upgrade was accepted".to_string(),
    };
    demo.step(
        "upgrade with a trapping post_upgrade is rolled back",
        result.is_err() && count == 3 && same_module,
        detail,
    );

    // 3. Snapshot, more writes, load: the snapshot's state comes back.
    let snapshot = demo
        .sim
        .take_canister_snapshot(agent, Some(operator), None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    demo.inc(agent)?;
    demo.inc(agent)?;
    demo.sim
        .stop_canister(agent, Some(operator))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    demo.sim
        .load_canister_snapshot(agent, Some(operator), snapshot.id.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    demo.sim
        .start_canister(agent, Some(operator))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let count = demo.read(agent)?;
    demo.step(
        "snapshot, 2 more updates, load the snapshot",
        count == 3,
        format!(
            "counter back to {count} (snapshot {} bytes)",
            snapshot.total_size
        ),
    );

    // 4. A self-upgrade must be a one-way call: the canister schedules install_code on itself.
    let version_before = demo
        .sim
        .canister_status(agent, Some(operator))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .version;
    let reply = demo
        .sim
        .update_call(
            agent,
            operator,
            "self_upgrade_oneway",
            Encode!(&wasm, &no_init)?,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for _ in 0..5 {
        demo.sim.tick();
    }
    let status = demo
        .sim
        .canister_status(agent, Some(operator))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let count = demo.read(agent)?;
    demo.step(
        "self-upgrade through a one-way install_code call",
        !reply.is_empty() && status.version > version_before && count == 3,
        format!("canister version {version_before} -> {}; counter kept through pre/post_upgrade: {count}", status.version),
    );

    // 5. Stopping waits for open call contexts; the stop request times out after 5 minutes.
    let callee = demo.sim.create_canister_with_settings(Some(operator), None);
    demo.sim
        .install_canister(callee, wasm.clone(), no_init.clone(), Some(operator));
    demo.sim.inject(Fault::HoldResponses { from: callee });
    let call = CallArgs {
        target: callee,
        method: "inc".into(),
        arg: Encode!()?,
        cycles: 0u64.into(),
        bounded_wait_secs: None,
    };
    let pending = demo
        .sim
        .submit_call(agent, operator, "call", Encode!(&call)?)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for _ in 0..3 {
        demo.sim.tick();
    }
    let stop = demo.sim.stop_canister_nonblocking(agent, Some(operator));
    demo.sim.tick();
    demo.sim.advance_time(Duration::from_secs(301));
    demo.sim.tick();
    let stop_outcome = demo.sim.ingress_status(stop.clone());
    let still_stopping =
        demo.sim.canister_run_status(agent) == Some(ic_sim::CanisterStatusType::Stopping);
    let timed_out = matches!(&stop_outcome, Some(Err(e)) if e.error_code == ic_sim::ErrorCode::StopCanisterRequestTimeout);
    demo.step(
        "stop a canister with an open call context",
        timed_out && still_stopping,
        format!(
            "after 5 min: stop request {}, canister still stopping: {still_stopping}",
            match &stop_outcome {
                Some(Err(e)) => format!("rejected {}", e.error_code),
                Some(Ok(_)) => "succeeded".into(),
                None => "pending".into(),
            }
        ),
    );
    demo.sim.clear_faults();
    demo.sim.release_held_responses();
    let call_done = demo.sim.await_call(pending).is_ok();
    let stop_again = demo.sim.stop_canister(agent, Some(operator));
    demo.step(
        "release the held response: the call completes, the canister stops",
        call_done && stop_again.is_ok(),
        format!(
            "call completed: {call_done}; stop: {:?}",
            stop_again.map(|_| "stopped")
        ),
    );

    let held = demo.steps.iter().filter(|(_, ok)| *ok).count();
    let all = demo.steps.len();
    println!(
        "\nverdict: {held}/{all} steps held{}",
        if held == all { "" } else { " — FAILED" }
    );
    if held != all {
        for (title, _) in demo.steps.iter().filter(|(_, ok)| !ok) {
            println!("  failed: {title}");
        }
    }
    if all == 0 {
        bail!("no step ran");
    }
    Ok(held == all)
}
