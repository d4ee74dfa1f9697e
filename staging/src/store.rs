//! Repository: the staging canister's stable state: its configuration, its sandbox canister
//! (and whether it may hold a copy of the agent's state), and the last report (stable cells, candid-encoded, so they survive upgrades of staging).

use candid::{CandidType, Deserialize, Principal};
use canister_api::stable::Candid;
use canister_api::staging::RehearsalReport;
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::{Cell as StableCell, DefaultMemoryImpl};
use std::cell::RefCell;

type Mem = VirtualMemory<DefaultMemoryImpl>;

/// Everything staging keeps.
#[derive(CandidType, Deserialize, Clone, Debug, Default)]
pub struct State {
    /// The agent (the only caller of `rehearse`).
    pub agent: Option<Principal>,
    /// Operators.
    pub operators: Vec<Principal>,
    /// The sandbox canister, once created.
    pub sandbox: Option<Principal>,
    /// The last report.
    pub last_report: Option<RehearsalReport>,
    /// Rehearsals run.
    pub rehearsals: u64,
    /// The sandbox may hold a copy of the agent's state (set before the copy, cleared when the
    /// sandbox is uninstalled).
    pub sandbox_dirty: Option<bool>,
    /// Sandboxes staging lost control of (a candidate changed their controllers); each may
    /// still hold a copy of the agent's state, for operators to see.
    pub lost_sandboxes: Option<Vec<Principal>>,
}

thread_local! {
    static MANAGER: MemoryManager<DefaultMemoryImpl> =
        MemoryManager::init(DefaultMemoryImpl::default());
    static STATE: RefCell<StableCell<Candid<State>, Mem>> = RefCell::new(StableCell::init(
        MANAGER.with(|m| m.get(MemoryId::new(0))),
        Candid(State::default()),
    ));
}

/// The state.
pub fn get() -> State {
    STATE.with(|s| s.borrow().get().0.clone())
}

/// Changes the state.
pub fn update(f: impl FnOnce(&mut State)) {
    STATE.with(|s| {
        let mut state = s.borrow().get().0.clone();
        f(&mut state);
        s.borrow_mut().set(Candid(state));
    });
}
