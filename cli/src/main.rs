//! `agentctl`: the project's command line. One file per subcommand.
//!
//! - `agentctl demo`: the main job, on the embedded IC simulator.

mod demo;

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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo => demo::run(),
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
