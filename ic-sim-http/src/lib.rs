//! `ic-sim-http`: the simulator behind the Internet Computer's HTTP interface, so that real
//! clients (icp-cli, ic-agent, the JS agent) talk to it as to a replica, with full certificate
//! and query-signature checks on their side and request signatures checked on ours.
//!
//! ```no_run
//! use ic_sim_http::{Server, ServerConfig};
//! let config = ServerConfig { port: 0, ..ServerConfig::default() };
//! let sim = ic_sim::Sim::with_config(config.sim_config());
//! let mut server = Server::bind(sim, &config).unwrap();
//! println!("{} root key {}", server.url(), hex::encode(server.root_key()));
//! server.serve(&std::sync::atomic::AtomicBool::new(false));
//! ```
//!
//! # Layout
//! - [`server`]: the endpoints, the wall clock, synchronous calls with the 202 fallback.
//! - [`auth`]: ingress expiry and request signatures (Ed25519, ECDSA secp256k1).
//! - [`state_tree`]: the paths of the state tree clients read, and who may read them.
//! - [`ingress`]: the bounded history of request ids and their outcomes.
//! - [`keys`]: the root key (BLS12-381) and node key (Ed25519), derived from a seed.
//! - [`handle`]: a server on its own thread, for tests and demos.
//! - `client` (feature `client`): `IcBackend` over HTTP with ic-agent.

pub mod auth;
#[cfg(feature = "client")]
pub mod client;
pub mod error;
pub mod handle;
pub mod ingress;
pub mod keys;
pub mod server;
pub mod state_tree;

pub use error::{HttpError, ServeError};
pub use handle::ServerHandle;
pub use keys::Keys;
pub use server::{Server, ServerConfig};
