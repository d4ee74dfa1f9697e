//! `agentctl serve`: the simulator behind the IC's HTTP interface (`ic-sim-http`), so that icp,
//! dfx-era clients and ic-agent talk to it as to a replica. `--deploy` first deploys and wires
//! the trio as the README's deploy guide does, with `--operator` as their operator and a
//! controller of all three, and prints the ids for `icp canister link`.
//! `agentctl demo --serve` serves the trio the demo leaves behind.
//!
//! What it prints, one `key: value` per line, ends with `ready` once it accepts requests, so a
//! script can wait for that line (the runbook does).

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use candid::Principal;
use canister_api::agent::Autonomy;
use ic_sim_http::{Server, ServerConfig};
use testbed::{Options, Testbed};

/// The `icp.yaml` environment that points at a local `agentctl serve`.
pub const ICP_ENVIRONMENT: &str = "sim";

/// How to serve.
pub struct ServeArgs {
    /// The port (0: any free one).
    pub port: u16,
    /// The key seed (the root key in icp.yaml is seed 0's).
    pub seed: u64,
    /// Deploy the trio first.
    pub deploy: bool,
    /// The operator of the trio (required with `deploy`).
    pub operator: Option<Principal>,
}

impl ServeArgs {
    fn config(&self) -> ServerConfig {
        ServerConfig {
            port: self.port,
            seed: self.seed,
            ..ServerConfig::default()
        }
    }
}

/// Runs `agentctl serve`; returns only on an error (the server runs until the process ends).
pub fn run(args: &ServeArgs) -> Result<bool> {
    let config = args.config();
    if !args.deploy {
        let sim = ic_sim::Sim::with_config(config.sim_config());
        let server = Server::bind(sim, &config)?;
        announce(&server, None);
        return serve(server);
    }
    let Some(operator) = args.operator else {
        bail!(
            "--deploy needs --operator PRINCIPAL: the identity you will run the runbook as (`icp identity principal`)"
        );
    };
    println!("deploying agent, watchdog and staging (first run: minutes to build the canisters)");
    let tb = Testbed::deploy(Options {
        operator,
        autonomy: Autonomy::ApproveEach,
        sim_config: Some(config.sim_config()),
        ..Options::default()
    });
    serve_testbed(tb, &config)
}

/// Serves a deployed trio until the process ends.
pub fn serve_testbed(tb: Testbed, config: &ServerConfig) -> Result<bool> {
    let Testbed {
        sim,
        agent,
        watchdog,
        staging,
        operator,
        llm,
    } = tb;
    let server = Server::bind(sim, config)?;
    let mut canisters = vec![
        ("agent", agent),
        ("watchdog", watchdog),
        ("staging", staging),
    ];
    // The test double of the LLM canister, where the demo deployed it (llm-standin/README.md).
    canisters.extend(llm.map(|standin| ("llm-standin", standin)));
    announce(&server, Some(&canisters));
    println!("operator: {operator}");
    serve(server)
}

/// The simulator settings of `agentctl demo --serve`: the served subnet's id, and a start one
/// hour ago, so that the demo's simulated minutes end before the wall clock and the server
/// then follows it.
pub fn demo_sim_config(config: &ServerConfig) -> ic_sim::SimConfig {
    let mut sim = config.sim_config();
    sim.initial_time_nanos -= Duration::from_secs(3600).as_nanos() as u64;
    sim
}

/// Adds `operator` to the operators of the agent and the watchdog and to the controllers of
/// the trio (and of `llm-standin`, which has no `set_operators`: a controller reinstalls it
/// with its own operators to load scripts), as the demo's own operator.
pub fn add_operator(tb: &Testbed, operator: Principal) -> Result<()> {
    use candid::Encode;
    let operators = vec![tb.operator, operator];
    for canister in [tb.agent, tb.watchdog] {
        tb.sim
            .update_call(
                canister,
                tb.operator,
                "set_operators",
                Encode!(&operators).expect("encode"),
            )
            .with_context(|| format!("set_operators on {canister}"))?;
    }
    for canister in [tb.agent, tb.watchdog, tb.staging]
        .into_iter()
        .chain(tb.llm)
    {
        let mut controllers = tb.sim.get_controllers(canister);
        controllers.push(operator);
        tb.sim
            .set_controllers(canister, Some(tb.operator), controllers)
            .with_context(|| format!("adding {operator} to the controllers of {canister}"))?;
    }
    Ok(())
}

fn announce(server: &Server, canisters: Option<&[(&str, Principal)]>) {
    println!("url: {}", server.url());
    println!("root key: {}", hex::encode(server.root_key()));
    println!("subnet: {}", server.sim().subnet_id());
    if let Some(canisters) = canisters {
        for (name, id) in canisters {
            println!("{name}: {id}");
        }
        println!("# link them for icp (environment `{ICP_ENVIRONMENT}` of icp.yaml):");
        for (name, id) in canisters {
            println!("#   icp canister link {name} {id} -e {ICP_ENVIRONMENT}");
        }
    }
}

fn serve(mut server: Server) -> Result<bool> {
    println!("ready");
    server.serve(&AtomicBool::new(false));
    Ok(true)
}
