//! `agentctl`: the project's command line. One file per subcommand.
//!
//! - `agentctl demo`: the main job, on the embedded IC simulator.
//! - `agentctl upload-args`: argument files to upload a Wasm module to the agent with dfx.

mod demo;
pub mod upload;

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
    Demo,
    /// Write candid argument files to upload a Wasm module to the agent with dfx, and print the
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
        /// dfx network (`ic` for mainnet); local when absent.
        #[arg(long)]
        network: Option<String>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo => demo::run(),
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
