//! `agentctl bench`: the figures that matter, measured on the embedded simulator: the
//! self-patch's instructions, the agent Wasm's size, the rehearsal's instructions, detection and
//! restore times, the heartbeat's cost per day, and the simulator's throughput. Simulated times
//! are exact; wall-clock figures depend on the machine.

use anyhow::{Context, Result, bail};
use canister_api::agent::UpgradeState;
use chaos_tests::report::secs;
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};
use testbed::{Options, Testbed};

/// Every figure.
#[derive(Serialize, Debug)]
pub struct Figures {
    /// Instructions of the self_upgrade tool's patch + validation (one added query method).
    pub patch_instructions: u64,
    /// The agent Wasm as built, in bytes.
    pub agent_wasm_bytes: u64,
    /// The agent Wasm gzipped (what is installed and uploaded), in bytes.
    pub agent_wasm_gz_bytes: u64,
    /// Instructions the staging canister spent on the rehearsal.
    pub rehearsal_staging_instructions: u64,
    /// Instructions of the candidate's post_upgrade on the copied state.
    pub rehearsal_post_upgrade_instructions: Option<u64>,
    /// Bytes of stable memory the rehearsal copied.
    pub rehearsal_state_bytes: u64,
    /// Simulated seconds from install to Committed.
    pub install_to_commit_secs: f64,
    /// Simulated seconds from a bad candidate's boot to the watchdog's detection.
    pub detect_secs: Option<f64>,
    /// Simulated seconds from detection to the verified restore.
    pub restore_secs: Option<f64>,
    /// Cycles the watchdog spends per day on steady-state supervision (one hour x 24).
    pub watchdog_cycles_per_day: u128,
    /// Cycles the agent spends per day heartbeating the watchdog (one hour x 24).
    pub agent_cycles_per_day: u128,
    /// Ingress update calls per wall-clock second (`remember` on the agent).
    pub sim_updates_per_sec: f64,
}

/// Measures the figures.
pub fn measure() -> Result<Figures> {
    let agent_wasm = canister_build::canister_wasm("agent")?;
    let gz = canister_build::canister_wasm_gz_path("agent")?;
    let agent_wasm_gz_bytes = std::fs::metadata(&gz)
        .with_context(|| format!("{}", gz.display()))?
        .len();

    println!("  ... self-upgrade on a deployed trio (20 tasks, 20 facts)");
    let tb = Testbed::deploy(Options::default());
    tb.seed_state(20, 20);
    let out = tb
        .self_upgrade_greeting("bench")
        .map_err(|e| anyhow::anyhow!("self_upgrade: {e}"))?;
    let id = serde_json::from_str::<serde_json::Value>(&out)?["id"]
        .as_u64()
        .context("self_upgrade answered no id")?;
    tb.run_until(Duration::from_secs(3600), |tb| {
        tb.record(id).state.is_terminal()
    });
    let rec = tb.record(id);
    let Some(rehearsal) = rec.rehearsal.clone() else {
        bail!("the upgrade has no rehearsal report: {:?}", rec.state);
    };
    let at = |state: UpgradeState| rec.history.iter().find(|t| t.state == state).map(|t| t.at);
    let install_to_commit_secs = match (at(UpgradeState::Installing), at(UpgradeState::Committed)) {
        (Some(a), Some(b)) => secs(b - a),
        _ => bail!("the self-upgrade did not commit: {:?}", rec.state),
    };

    println!("  ... a bad candidate (health traps) through the chaos suite");
    let bad = chaos_tests::run(
        &chaos_tests::find("boots_but_health_traps").context("scenario")?,
        1,
    );

    println!("  ... one simulated hour of steady-state heartbeats");
    tb.run_for(Duration::from_secs(60));
    let (wd, ag) = (
        tb.sim.cycle_balance(tb.watchdog),
        tb.sim.cycle_balance(tb.agent),
    );
    tb.run_for(Duration::from_secs(3600));
    let watchdog_cycles_per_day = (wd - tb.sim.cycle_balance(tb.watchdog)) * 24;
    let agent_cycles_per_day = (ag - tb.sim.cycle_balance(tb.agent)) * 24;

    println!("  ... 500 update calls");
    let started = Instant::now();
    for i in 0..500 {
        tb.try_remember("default", &format!("bench-{i}"), "v")
            .map_err(|e| anyhow::anyhow!("remember: {e}"))?;
    }
    let sim_updates_per_sec = 500.0 / started.elapsed().as_secs_f64();

    Ok(Figures {
        patch_instructions: rec.instructions,
        agent_wasm_bytes: agent_wasm.len() as u64,
        agent_wasm_gz_bytes,
        rehearsal_staging_instructions: rehearsal.staging_instructions,
        rehearsal_post_upgrade_instructions: rehearsal.post_upgrade_instructions,
        rehearsal_state_bytes: rehearsal.state_bytes,
        install_to_commit_secs,
        detect_secs: bad.detect_secs,
        restore_secs: bad.restore_secs,
        watchdog_cycles_per_day,
        agent_cycles_per_day,
        sim_updates_per_sec,
    })
}

/// Runs the subcommand.
pub fn run(json: Option<&Path>) -> Result<bool> {
    println!("agentctl bench: measuring on the embedded simulator");
    let f = measure()?;
    let opt = |v: Option<f64>| v.map_or("-".into(), |s| format!("{s:.1} s (simulated)"));
    let rows = [
        (
            "self-patch (patch + validate)",
            format!("{} instructions", f.patch_instructions),
        ),
        (
            "agent Wasm",
            format!(
                "{} bytes raw, {} gzipped",
                f.agent_wasm_bytes, f.agent_wasm_gz_bytes
            ),
        ),
        (
            "rehearsal",
            format!(
                "staging {} instructions for {} bytes of state; candidate post_upgrade {}",
                f.rehearsal_staging_instructions,
                f.rehearsal_state_bytes,
                f.rehearsal_post_upgrade_instructions
                    .map_or("-".into(), |i| format!("{i} instructions"))
            ),
        ),
        (
            "install -> Committed",
            format!("{:.1} s (simulated)", f.install_to_commit_secs),
        ),
        ("bad candidate: detection", opt(f.detect_secs)),
        ("bad candidate: restore", opt(f.restore_secs)),
        (
            "heartbeats per day",
            format!(
                "watchdog {:.3} T cycles, agent {:.3} T cycles (ic-sim fees)",
                f.watchdog_cycles_per_day as f64 / 1e12,
                f.agent_cycles_per_day as f64 / 1e12
            ),
        ),
        (
            "simulator",
            format!("{:.0} update calls/s (wall clock)", f.sim_updates_per_sec),
        ),
    ];
    println!();
    for (name, value) in rows {
        println!("{name:<32} {value}");
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(&f)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("\nfigures written to {}", path.display());
    }
    Ok(true)
}
