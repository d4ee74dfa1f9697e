//! Repository: the turn loop's cell (MemoryId `TURN_LOOP`): settings, operator prompt layers,
//! the turn under way, the backoff after the model could not be reached. Candid; new fields
//! `opt`.

use crate::api::{LlmSettings, LoopInit, SurvivalSettings};
use crate::memory::{self, Candid, Mem};
use candid::{CandidType, Deserialize};
use ic_stable_structures::Cell as StableCell;
use std::cell::RefCell;

/// Seconds of the first backoff after a turn failed because the model could not be reached;
/// each further such failure doubles it, up to [`MAX_BACKOFF_SECS`].
pub const FIRST_BACKOFF_SECS: u64 = 60;
/// The longest backoff.
pub const MAX_BACKOFF_SECS: u64 = 3600;

/// The loop's stored state.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct LoopState {
    /// Whether the loop runs.
    pub enabled: bool,
    /// The LLM settings.
    pub llm: LlmSettings,
    /// The survival thresholds.
    pub survival: SurvivalSettings,
    /// Operator prompt layers (name, text), in order.
    pub layers: Vec<(String, String)>,
    /// The turn under way.
    pub active: Option<u64>,
    /// The id the next turn gets (from 1).
    pub next_turn: u64,
    /// When the last turn started.
    pub last_turn_started: Option<u64>,
    /// No model call before this time (ns).
    pub backoff_until: Option<u64>,
    /// The current backoff, seconds.
    pub backoff_secs: u64,
    /// The last turn that failed, and why.
    pub last_failure: Option<String>,
}

thread_local! {
    static CELL: RefCell<StableCell<Candid<LoopState>, Mem>> = RefCell::new(StableCell::init(
        memory::get(memory::TURN_LOOP),
        Candid(LoopState {
            next_turn: 1,
            ..LoopState::default()
        }),
    ));
}

/// The state.
pub fn get() -> LoopState {
    CELL.with(|c| c.borrow().get().0.clone())
}

/// Changes the state.
pub fn update(f: impl FnOnce(&mut LoopState)) -> LoopState {
    CELL.with(|c| {
        let mut s = c.borrow().get().0.clone();
        f(&mut s);
        c.borrow_mut().set(Candid(s.clone()));
        s
    })
}

/// Writes the settings of a fresh install.
pub fn init(arg: Option<LoopInit>) {
    let arg = arg.unwrap_or_default();
    update(|s| {
        s.enabled = arg.enabled.unwrap_or(false);
        s.llm.canister = arg.llm_canister;
        if let Some(model) = arg.model {
            s.llm.model = model;
        }
    });
}

/// The init argument a clean reinstall gives back (the loop off: an operator turns it on).
pub fn restore_init() -> LoopInit {
    let s = get();
    LoopInit {
        llm_canister: s.llm.canister,
        model: Some(s.llm.model),
        enabled: Some(false),
    }
}
