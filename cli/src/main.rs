//! `agentctl`: the project's command line. One file per subcommand.
//!
//! - `agentctl demo`: the main job: the three canisters on the embedded IC simulator.
//! - `agentctl ic-rules`: the IC rules a self-upgrading canister lives by, on the probe canister.
//! - `agentctl chaos`: the chaos scenarios, with a table and JSON reports.
//! - `agentctl explore`: random histories of the whole trio, checked after every step.
//! - `agentctl bench`: the figures that matter, measured on the simulator.
//! - `agentctl patch` / `agentctl inspect`: the wasm-patch operations and validation, offline.
//! - `agentctl upload-args`: argument files to upload a Wasm module to the agent with dfx or icp.
//! - `agentctl serve`: the simulator behind the IC's HTTP interface, for icp and other real clients.

mod bench;
mod bill;
mod chaos;
mod cost_table;
mod demo;
mod explore;
mod ic_rules;
mod serve;
pub mod upload;
mod wasm_tools;

use clap::{Parser, Subcommand};

/// Self-upgrading agent and watchdog on the Internet Computer: command line.
#[derive(Parser)]
#[command(name = "agentctl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the demo on the embedded simulator; exit 0 only if every step held.
    Demo {
        /// Afterwards, serve the trio over the IC's HTTP interface (like `serve`) until killed.
        #[arg(long)]
        serve: bool,
        /// With --serve: the port (0: any free one).
        #[arg(long, default_value_t = 4943)]
        port: u16,
        /// With --serve: also make this principal an operator and controller.
        #[arg(long)]
        operator: Option<candid::Principal>,
    },
    /// Serve the simulator over the IC's HTTP interface (status, call, query, read_state) until
    /// killed; icp, ic-agent and the JS agent talk to it as to a replica.
    Serve {
        /// The port (0: any free one).
        #[arg(long, default_value_t = 4943)]
        port: u16,
        /// Seed of the root and node keys (icp.yaml pins seed 0's root key).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Deploy and wire agent, watchdog and staging first, and print their ids.
        #[arg(long)]
        deploy: bool,
        /// With --deploy: the operator (and a controller) of the trio.
        #[arg(long)]
        operator: Option<candid::Principal>,
    },
    /// Show the IC rules a self-upgrading canister lives by, on the simulator's probe canister.
    IcRules,
    /// Run chaos scenarios on the embedded simulator; exit non-zero if any invariant breaks.
    Chaos {
        /// Only this scenario (all when absent).
        #[arg(long)]
        scenario: Option<String>,
        /// Seeds 1..=N per scenario.
        #[arg(long, default_value_t = 3)]
        seeds: u64,
        /// Write the reports as JSON to this file.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// Offer this Wasm file as an operator release instead of the built-in scenarios.
        #[arg(long)]
        candidate: Option<std::path::PathBuf>,
    },
    /// Run random histories of the whole trio (operators, the agent, faults, message orders) on
    /// the embedded simulator, checking every invariant after every step; exit non-zero if any
    /// breaks. A failing seed replays exactly (`--seed S`) and is shrunk to a short timeline.
    Explore {
        /// Seeds 1..=N (10 when neither this, --minutes nor --seed is given).
        #[arg(long)]
        seeds: Option<u64>,
        /// Seeds from 1 on until this many minutes passed.
        #[arg(long)]
        minutes: Option<u64>,
        /// Only this seed (a replay), with its timeline.
        #[arg(long)]
        seed: Option<u64>,
        /// Steps per history.
        #[arg(long, default_value_t = 30)]
        steps: usize,
        /// Write the summary as JSON to this file.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// Explore a mutant trio (a build with one safety fix reverted).
        #[arg(long)]
        mutant: Option<String>,
        /// Re-runs allowed to shrink each failing history (0: do not shrink).
        #[arg(long, default_value_t = 40)]
        shrink_runs: usize,
        /// Wall-clock seconds one history may take after its trio is deployed; a history that reaches
        /// it is reported as TIMEOUT (neither passed nor failed) and the run goes on
        /// (0: unbounded).
        #[arg(long, default_value_t = chaos_tests::explore::DEFAULT_HISTORY_LIMIT.as_secs())]
        history_secs: u64,
    },
    /// Measure the figures that matter on the embedded simulator.
    Bench {
        /// Write the figures as JSON to this file.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// Record the figures in docs/bench-figures.json and regenerate the cost tables of
        /// README.md and docs/benchmarks.md from them.
        #[arg(long)]
        record: bool,
        /// Fail when a cost figure moved more than 20 % from docs/bench-figures.json, or the
        /// docs' cost tables are not the recorded ones.
        #[arg(long)]
        check: bool,
    },
    /// Apply wasm-patch operations (a JSON list) to a module and stamp it, offline.
    Patch {
        /// The module (raw or gzipped).
        #[arg(long)]
        wasm: std::path::PathBuf,
        /// A JSON list of operations, e.g. `[{"op":"remove_method","name":"x"}]`.
        #[arg(long)]
        ops: std::path::PathBuf,
        /// Where to write the patched module.
        #[arg(long)]
        out: std::path::PathBuf,
        /// The version to stamp.
        #[arg(long, default_value = "patched")]
        version: String,
        /// The schema range to stamp, `MIN..=MAX`.
        #[arg(long)]
        schema: Option<String>,
    },
    /// Validate a module as the agent validates a candidate, and show its stamp; exit non-zero
    /// if it is invalid.
    Inspect {
        /// The module (raw or gzipped).
        file: std::path::PathBuf,
        /// The schema version the agent's state is at (the stamp's range must cover it).
        #[arg(long)]
        schema: Option<u32>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write candid argument files to upload a Wasm module to the agent, and print the icp and
    /// dfx commands that use them.
    UploadArgs {
        /// What the module is.
        #[arg(long, value_enum)]
        kind: upload::Kind,
        /// The module file (raw or gzipped), e.g. target/canisters/wasm/agent.wasm.gz.
        #[arg(long)]
        wasm: std::path::PathBuf,
        /// Directory for the argument files.
        #[arg(long)]
        out: std::path::PathBuf,
        /// icp environment / dfx network (`ic` for mainnet); local when absent.
        #[arg(long)]
        network: Option<String>,
    },
}

/// `agentctl demo --serve`: the demo, then its trio served over HTTP.
fn demo_then_serve(port: u16, operator: Option<candid::Principal>) -> anyhow::Result<bool> {
    let config = ic_sim_http::ServerConfig {
        port,
        ..Default::default()
    };
    let (held, tb) = demo::run_on(testbed::Options {
        sim_config: Some(serve::demo_sim_config(&config)),
        ..Default::default()
    })?;
    if !held {
        anyhow::bail!("the demo failed, so its trio is not served");
    }
    if let Some(operator) = operator {
        serve::add_operator(&tb, operator)?;
        println!("added operator and controller: {operator}");
    }
    println!("\nserving the demo's trio (Ctrl-C to stop)");
    serve::serve_testbed(tb, &config)
}

/// `agentctl bench`, then the docs' cost tables checked against (`check`) or regenerated from
/// (`record`) its figures.
fn bench_and_docs(
    json: Option<&std::path::Path>,
    record: bool,
    check: bool,
) -> anyhow::Result<bool> {
    let figures = bench::run(json)?;
    let root = canister_build::workspace_root();
    if check {
        cost_table::check(&figures, &root)?;
    }
    if record {
        cost_table::record(&figures, &root)?;
    }
    Ok(true)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { serve: false, .. } => demo::run(),
        Command::Demo {
            serve: true,
            port,
            operator,
        } => demo_then_serve(port, operator),
        Command::Serve {
            port,
            seed,
            deploy,
            operator,
        } => serve::run(&serve::ServeArgs {
            port,
            seed,
            deploy,
            operator,
        }),
        Command::IcRules => ic_rules::run(),
        Command::Chaos {
            scenario,
            seeds,
            json,
            candidate,
        } => chaos::run(
            scenario.as_deref(),
            seeds,
            json.as_deref(),
            candidate.as_deref(),
        ),
        Command::Explore {
            seeds,
            minutes,
            seed,
            steps,
            json,
            mutant,
            shrink_runs,
            history_secs,
        } => explore::run(&explore::ExploreArgs {
            seeds,
            minutes,
            seed,
            steps,
            json: json.as_deref(),
            mutant: mutant.as_deref(),
            shrink_runs,
            history_secs,
        }),
        Command::Bench {
            json,
            record,
            check,
        } => bench_and_docs(json.as_deref(), record, check),
        Command::Patch {
            wasm,
            ops,
            out,
            version,
            schema,
        } => schema
            .as_deref()
            .map(wasm_tools::parse_schema_range)
            .transpose()
            .and_then(|range| wasm_tools::patch(&wasm, &ops, &out, &version, range)),
        Command::Inspect { file, schema, json } => wasm_tools::inspect(&file, schema, json),
        Command::UploadArgs {
            kind,
            wasm,
            out,
            network,
        } => upload::run(kind, &wasm, &out, network.as_deref()),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("agentctl: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
