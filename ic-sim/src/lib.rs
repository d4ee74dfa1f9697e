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
//! - [`pocket_ic`]: the same simulator behind pocket-ic 16's interface (`PocketIc`,
//!   `PocketIcBuilder`, `update_candid`...), for tests written for PocketIC.
//! - `state`: the IC's state and the execution of one message: call contexts, callbacks, timers,
//!   stops.
//! - `scheduler`: the round loop, routing and same-subnet induction, message orders; `queues`:
//!   the messages in flight and the input queues (one FIFO per source and destination).
//! - [`subnet`]: subnet kinds, ids, canister ranges and routing.
//! - `trace`: the digest of what a run executed.
//! - `management`: the management canister: `mod.rs` (dispatch, create, stop/start, delete,
//!   cycles), `settings`, `install` (install_code, chunks), `snapshots` (take, load, download,
//!   upload), `info` (canister_status, canister_info, canister_metadata, logs).
//! - `execution`: one execution on a live wasmtime instance, with rollback on trap.
//! - `system_api` and `api_context`: the `ic0` imports and where each may be called.
//! - `module`: the IC's install-time checks, instrumentation and the compiled-module cache.
//! - `instruction_costs`: the replica's instruction weights as wasmtime fuel costs.
//! - `errors`: the replica's reject messages, verbatim.
//! - [`fees`]: the IC's fee schedule, its formulas, and the charges by kind per canister.
//! - [`config`], [`faults`], [`types`]: settings, fault injection, public value types.

mod api_context;
pub mod backend;
mod canister;
pub mod config;
mod errors;
mod execution;
pub mod faults;
pub mod fees;
mod instruction_costs;
pub(crate) mod management;
mod module;
#[cfg(feature = "pocket-ic")]
pub mod pocket_ic;
mod queues;
mod scheduler;
pub mod sim;
mod state;
pub mod subnet;
mod system_api;
mod trace;
pub mod types;

pub use candid::Principal;
pub use canister::ExecutionStats;
pub use config::{MessageOrder, SimConfig};
pub use faults::{Fault, FaultsFired};
pub use fees::{CyclesCharged, Fees};
pub use ic_management_canister_types::{
    CanisterInstallMode, CanisterSettings, CanisterStatusResult, CanisterStatusType, Snapshot,
};
pub use module::compilations;
pub use sim::{MetadataSection, Sim};
pub use subnet::{SubnetInfo, SubnetKind};
pub use types::{ErrorCode, RawMessageId, RejectCode, RejectResponse, Time};
