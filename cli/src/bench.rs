//! `agentctl bench`: the figures that matter, measured on the embedded simulator: the
//! self-patch's instructions, the agent Wasm's size, the rehearsal's instructions, detection and
//! restore times, the heartbeat's cost per day, a turn of the loop (instructions, cycles, log
//! bytes; the model is `llm-standin`, whose own cost is not counted), the bill at the IC's fees
//! (see [`crate::bill`]), and the simulator's throughput. Simulated times are exact; wall-clock
//! figures depend on the machine.

use anyhow::{Context, Result, bail};
use canister_api::agent::{LlmSettings, TaskStatus, UpgradeState};
use canister_api::cadence::Cadence;
use chaos_tests::report::secs;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};
use testbed::{Options, Testbed};

use crate::bill::{self, ByKind, StorageHeld, TrioCharges};

/// Simulated hours the idle trio is measured over (a divisor of 24; 4 h is a whole number of
/// steady intervals at the default 480 s and of the self-test's steady period of 1 h).
const IDLE_HOURS: u64 = 4;

/// Every figure.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
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
    /// Cycles the watchdog spends per day on steady-state supervision (4 hours x 6).
    pub watchdog_cycles_per_day: u128,
    /// Cycles the agent spends per day heartbeating the watchdog, self-test included (4 hours
    /// x 6).
    pub agent_cycles_per_day: u128,
    /// A plain turn (2 model calls, 1 tool call): instructions the agent spent on it.
    pub turn_instructions: u64,
    /// The same turn: cycles off the agent's balance (the model's price excluded: the stand-in
    /// keeps none of the cycles attached).
    pub turn_cycles: u128,
    /// The same turn's record in the turn log, candid-encoded, in bytes.
    pub turn_log_bytes: u64,
    /// A turn whose model upgrades the agent (3 model calls): instructions in the agent,
    /// patch and validation included.
    pub upgrade_turn_instructions: u64,
    /// That turn's record, in bytes.
    pub upgrade_turn_log_bytes: u64,
    /// Ingress update calls per wall-clock second (`remember` on the agent).
    pub sim_updates_per_sec: f64,
    /// The idle trio's cycles per day at the IC's fees (4 steady-state hours x 6), by kind:
    /// agent, watchdog, staging.
    pub idle_per_day: [ByKind; 3],
    /// The same, all three together.
    pub idle_trio_cycles_per_day: u128,
    /// Seconds between two heartbeats of the idle trio (the watchdog's steady interval).
    pub idle_interval_secs: u64,
    /// The watchdog's detection bound at that cadence, in seconds.
    pub idle_detection_bound_secs: u64,
    /// The same in USD per month ([`bill::USD_PER_XDR`]).
    pub idle_trio_usd_per_month: f64,
    /// Cycles the trio was charged for one self-upgrade end to end (patch, rehearsal, arm
    /// snapshot, install, probation; heartbeats during it included).
    pub self_upgrade_cycles: u128,
    /// Cycles the trio was charged for one operator release (upload, commit, propose,
    /// rehearsal, arm snapshot, install, probation; heartbeats during it included).
    pub release_cycles: u128,
    /// Storage held after the release and the self-upgrade: agent, watchdog, staging.
    pub storage: [StorageHeld; 3],
    /// Bytes of modules in the agent's version store (part of its stable memory).
    pub version_store_bytes: Option<u64>,
    /// USD per XDR the USD figures use.
    pub usd_per_xdr: f64,
}

/// Figures of one turn of the loop.
struct TurnFigures {
    instructions: u64,
    cycles: u128,
    log_bytes: u64,
    upgrade_instructions: u64,
    upgrade_log_bytes: u64,
}

/// One plain turn, measured alone (between two heartbeats), then one that upgrades the agent.
fn turn_figures() -> Result<TurnFigures> {
    use testbed::llm::{add_method_ops, call, on_task, on_tool_result, say};
    let tb = Testbed::deploy(Options {
        llm: true,
        ..Options::default()
    });
    let ops = add_method_ops("hello", "hi");
    tb.load_script(
        "bench",
        vec![
            on_task(
                "remember my name",
                call(&[("remember", &[("key", "name"), ("value", "Ada")])]),
            ),
            on_tool_result(
                "\"previous\":null",
                say("I will remember that you are Ada."),
            ),
            on_task(
                "learn to greet",
                call(&[("self_upgrade", &[("ops", &ops), ("reason", "greet")])]),
            ),
            on_tool_result(
                "Committed",
                call(&[("call_own_method", &[("method", "hello")])]),
            ),
            on_tool_result("\"reply\":\"hi\"", say("I can greet.")),
        ],
    );
    tb.set_llm(LlmSettings {
        canister: tb.llm,
        interval_secs: 3600, // no idle polls during the measurement
        ..LlmSettings::default()
    })
    .map_err(|e| anyhow::anyhow!("set_llm: {e}"))?;
    tb.set_loop_enabled(true)
        .map_err(|e| anyhow::anyhow!("set_loop_enabled: {e}"))?;
    tb.run_for(Duration::from_secs(12)); // past the first heartbeats and the self-test
    let task = tb
        .try_submit("remember my name: Ada")
        .map_err(|e| anyhow::anyhow!("submit_task: {e}"))?;
    let balance = tb.sim.cycle_balance(tb.agent);
    let done = tb.run_until_task_ends(task.id, Duration::from_secs(600));
    let cycles = balance.saturating_sub(tb.sim.cycle_balance(tb.agent));
    if done.status != TaskStatus::Done {
        bail!("the bench turn did not finish: {done:?}");
    }
    let turn = tb.turn(done.turn_id.context("no turn")?);
    let task = tb
        .try_submit("learn to greet")
        .map_err(|e| anyhow::anyhow!("submit_task: {e}"))?;
    let done = tb.run_until_task_ends(task.id, Duration::from_secs(1800));
    if done.status != TaskStatus::Done {
        bail!("the bench upgrade turn did not finish: {done:?}");
    }
    let upgrade = tb.turn(done.turn_id.context("no turn")?);
    Ok(TurnFigures {
        instructions: turn.instructions,
        cycles,
        log_bytes: candid::encode_one(&turn)?.len() as u64,
        upgrade_instructions: upgrade.instructions,
        upgrade_log_bytes: candid::encode_one(&upgrade)?.len() as u64,
    })
}

/// Measures the figures.
pub fn measure() -> Result<Figures> {
    let agent_wasm = canister_build::canister_wasm("agent")?;
    let gz = canister_build::canister_wasm_gz_path("agent")?;
    let agent_wasm_gz_bytes = std::fs::metadata(&gz)
        .with_context(|| format!("{}", gz.display()))?
        .len();

    let tb = Testbed::deploy(Options::default());
    tb.seed_state(20, 20);
    println!("  ... one operator release on a deployed trio (20 tasks, 20 facts)");
    let before_release = TrioCharges::now(&tb);
    let release = tb
        .propose_release(&testbed::chaos_release("none"), "bench release")
        .map_err(|e| anyhow::anyhow!("propose_release: {e}"))?;
    tb.run_until(Duration::from_secs(3600), |tb| {
        tb.record(release.id).state.is_terminal()
    });
    let release_state = tb.record(release.id).state;
    if release_state != UpgradeState::Committed {
        bail!("the operator release did not commit: {release_state:?}");
    }
    let release_cycles = TrioCharges::now(&tb).total_since(&before_release);
    // Upgrades are rate-limited: wait out the cooldown before the self-upgrade.
    tb.run_for(Duration::from_secs(601));

    println!("  ... a self-upgrade");
    let before_upgrade = TrioCharges::now(&tb);
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
    let self_upgrade_cycles = TrioCharges::now(&tb).total_since(&before_upgrade);
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

    let storage = [
        bill::storage_held(&tb, tb.agent)?,
        bill::storage_held(&tb, tb.watchdog)?,
        bill::storage_held(&tb, tb.staging)?,
    ];
    let version_store_bytes = tb.health().version_store_bytes;

    println!("  ... {IDLE_HOURS} simulated hours of steady-state supervision");
    // Idle means both sides at their steady cadence (nothing armed, the peer healthy for a
    // while); the window is a whole number of steady intervals and self-test periods.
    tb.run_until(Duration::from_secs(3600), |tb| {
        tb.watchdog_status().cadence == Some(Cadence::Steady)
            && tb.health().watchdog.and_then(|w| w.cadence) == Some(Cadence::Steady)
    })
    .context("the trio did not reach its steady cadence within an hour")?;
    let (wd, ag) = (
        tb.sim.cycle_balance(tb.watchdog),
        tb.sim.cycle_balance(tb.agent),
    );
    let before_idle = TrioCharges::now(&tb);
    tb.run_for(Duration::from_secs(IDLE_HOURS * 3600));
    let per_day = u128::from(24 / IDLE_HOURS);
    let watchdog_cycles_per_day = (wd - tb.sim.cycle_balance(tb.watchdog)) * per_day;
    let agent_cycles_per_day = (ag - tb.sim.cycle_balance(tb.agent)) * per_day;
    let idle_per_day = TrioCharges::now(&tb)
        .since(&before_idle)
        .map(|window| window.times(per_day));
    let idle_trio_cycles_per_day: u128 = idle_per_day.iter().map(ByKind::total).sum();
    let idle_config = tb.watchdog_status().config;

    println!("  ... a turn of the loop, and one whose model upgrades the agent");
    let turn = turn_figures()?;

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
        turn_instructions: turn.instructions,
        turn_cycles: turn.cycles,
        turn_log_bytes: turn.log_bytes,
        upgrade_turn_instructions: turn.upgrade_instructions,
        upgrade_turn_log_bytes: turn.upgrade_log_bytes,
        sim_updates_per_sec,
        idle_per_day,
        idle_trio_cycles_per_day,
        idle_interval_secs: idle_config.steady_interval_secs(),
        idle_detection_bound_secs: idle_config.steady_detection_bound_secs(),
        idle_trio_usd_per_month: bill::usd_per_month(idle_trio_cycles_per_day),
        self_upgrade_cycles,
        release_cycles,
        storage,
        version_store_bytes,
        usd_per_xdr: bill::USD_PER_XDR,
    })
}

/// The bill's rows: what the trio costs at the IC's fees.
fn bill_rows(f: &Figures) -> Vec<(String, String)> {
    let t = |c: u128| format!("{:.3} B", c as f64 / 1e9);
    let mut rows = vec![(
        "idle trio per day".to_string(),
        format!(
            "{} cycles = {:.2} USD/month (1 T cycles = 1 XDR = {} USD)",
            t(f.idle_trio_cycles_per_day),
            f.idle_trio_usd_per_month,
            f.usd_per_xdr
        ),
    )];
    for (name, day, held) in [
        ("agent", &f.idle_per_day[0], &f.storage[0]),
        ("watchdog", &f.idle_per_day[1], &f.storage[1]),
        ("staging", &f.idle_per_day[2], &f.storage[2]),
    ] {
        rows.push((
            format!("  {name} per day"),
            format!(
                "{} cycles: execution {}, calls {}, ingress {}, storage {}",
                t(day.total()),
                t(day.execution),
                t(day.calls),
                t(day.ingress),
                t(day.storage)
            ),
        ));
        rows.push((
            format!("  {name} storage held"),
            format!(
                "{} bytes: heap {}, stable {}, module {}, snapshots {}, chunk store {}",
                held.total, held.heap, held.stable, held.module, held.snapshots, held.chunk_store
            ),
        ));
    }
    rows.push((
        "  agent version store".to_string(),
        f.version_store_bytes
            .map_or("-".into(), |b| format!("{b} bytes (in its stable memory)")),
    ));
    rows.push((
        "self-upgrade, end to end".to_string(),
        format!(
            "{} cycles = {:.4} USD",
            t(f.self_upgrade_cycles),
            f.self_upgrade_cycles as f64 / bill::CYCLES_PER_XDR * f.usd_per_xdr
        ),
    ));
    rows.push((
        "operator release, end to end".to_string(),
        format!(
            "{} cycles = {:.4} USD",
            t(f.release_cycles),
            f.release_cycles as f64 / bill::CYCLES_PER_XDR * f.usd_per_xdr
        ),
    ));
    rows
}

/// Runs the subcommand: measures, prints, writes the JSON when asked, answers the figures
/// (which the caller may check against, or record as, the docs' cost tables).
pub fn run(json: Option<&Path>) -> Result<Figures> {
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
                "watchdog {:.3} T cycles, agent {:.3} T cycles (IC fees; steady cadence, a heartbeat every {} s, detection bound {} s)",
                f.watchdog_cycles_per_day as f64 / 1e12,
                f.agent_cycles_per_day as f64 / 1e12,
                f.idle_interval_secs,
                f.idle_detection_bound_secs
            ),
        ),
        (
            "turn (2 model calls, 1 tool)",
            format!(
                "{} instructions, {} cycles (model excluded), {} bytes of turn log",
                f.turn_instructions, f.turn_cycles, f.turn_log_bytes
            ),
        ),
        (
            "turn that self-upgrades",
            format!(
                "{} instructions (patch + validate included), {} bytes of turn log",
                f.upgrade_turn_instructions, f.upgrade_turn_log_bytes
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
    println!("\nthe bill at the IC's fees (13-node application subnet)");
    for (name, value) in bill_rows(&f) {
        println!("{name:<32} {value}");
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(&f)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("\nfigures written to {}", path.display());
    }
    Ok(f)
}
