//! `ic-sim`: an in-process Internet Computer subnet that runs real canister Wasm with wasmtime,
//! faithful to the IC interface specification on everything this project's canisters touch.
//!
//! ```no_run
//! use ic_sim::{Sim, Principal};
//! let sim = Sim::new();
//! let id = sim.create_canister();
//! # let wasm = vec![];
//! sim.install_canister(id, wasm, candid::encode_one(()).unwrap(), None);
//! let reply = sim.update_call(id, Principal::anonymous(), "inc", candid::encode_one(()).unwrap());
//! ```
//!
//! The API follows the `pocket-ic` crate's `PocketIc` (same names and types), so tests read like
//! PocketIC tests; [`backend::IcBackend`] lets the same test run on a real PocketIC server. The
//! simulator adds deterministic fault injection ([`Fault`]) and introspection.
//!
//! What it reproduces, and what it does not: see `ic-sim/README.md` and `docs/ic-messages.md`.
//!
//! # Layout
//! - [`sim`]: the public [`Sim`] API (PocketIC-compatible).
//! - `state`: the subnet's round loop, message routing, call contexts, callbacks, timers, stops.
//! - `management`: the management canister (install_code, stop/start, snapshots, chunks, status).
//! - `execution`: one execution on a live wasmtime instance, with rollback on trap.
//! - `system_api` and `api_context`: the `ic0` imports and where each may be called.
//! - `module`: the IC's install-time checks, instrumentation and the compiled-module cache.
//! - `errors`: the replica's reject messages, verbatim.
//! - [`config`], [`faults`], [`types`]: settings, fault injection, public value types.

mod api_context;
pub mod backend;
mod canister;
pub mod config;
mod errors;
mod execution;
pub mod faults;
mod management;
mod module;
pub mod sim;
mod state;
mod system_api;
pub mod types;

pub use candid::Principal;
pub use canister::ExecutionStats;
pub use config::{Fees, SimConfig};
pub use faults::{Fault, FaultsFired};
pub use ic_management_canister_types::{
    CanisterInstallMode, CanisterSettings, CanisterStatusResult, CanisterStatusType, Snapshot,
};
pub use module::compilations;
pub use sim::{MetadataSection, Sim};
pub use types::{ErrorCode, RawMessageId, RejectCode, RejectResponse, Time};
