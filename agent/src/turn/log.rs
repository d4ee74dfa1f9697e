//! Repository: the turn log (MemoryId `TURNS`), bounded in three ways:
//!
//! - per turn: texts are cut when stored ([`MAX_MESSAGE_BYTES`], [`MAX_RESULT_BYTES`], a
//!   finished call's arguments to [`MAX_KEPT_ARGUMENT_BYTES`]), events are at most
//!   [`MAX_EVENTS`], tool calls at most `MAX_CALLS_PER_TURN`: a record stays under ~100 KiB;
//! - by count: the newest [`KEEP_TURNS`] turns are kept;
//! - by age: a finished turn older than [`KEEP_DAYS`] days is pruned.
//!
//! A page ([`page`]) holds at most [`PAGE`] turns, well under the 2 MiB reply limit.

use crate::api::{TurnEvent, TurnPage, TurnRecord};
use crate::memory::{self, Candid, Mem};
use ic_stable_structures::StableBTreeMap;
use std::cell::RefCell;

/// Turns kept at most.
pub const KEEP_TURNS: u64 = 100;
/// Days a finished turn is kept at most.
pub const KEEP_DAYS: u64 = 30;
/// Turns per page.
pub const PAGE: usize = 10;
/// Bytes kept of a message of the transcript.
pub const MAX_MESSAGE_BYTES: usize = 2048;
/// Bytes kept of a tool call's result.
pub const MAX_RESULT_BYTES: usize = 1024;
/// Bytes kept of a finished tool call's arguments (a pending call keeps them whole).
pub const MAX_KEPT_ARGUMENT_BYTES: usize = 1024;
/// Events kept per turn: the first few and the latest.
pub const MAX_EVENTS: usize = 40;

const DAY_NS: u64 = 86_400_000_000_000;

thread_local! {
    static TURNS: RefCell<StableBTreeMap<u64, Candid<TurnRecord>, Mem>> =
        RefCell::new(StableBTreeMap::init(memory::get(memory::TURNS)));
}

/// Turn `id`.
pub fn get(id: u64) -> Option<TurnRecord> {
    TURNS.with(|t| t.borrow().get(&id).map(|c| c.0))
}

/// Stores `turn` (its events bounded).
pub fn put(mut turn: TurnRecord) {
    bound_events(&mut turn.events);
    TURNS.with(|t| t.borrow_mut().insert(turn.id, Candid(turn)));
}

/// Appends an event to `turn` (in memory; [`put`] stores it).
pub fn event(turn: &mut TurnRecord, at: u64, what: impl Into<String>) {
    turn.events.push(TurnEvent {
        at,
        what: crate::text::cut(&what.into(), 300),
    });
    turn.updated_at = at;
}

fn bound_events(events: &mut Vec<TurnEvent>) {
    const HEAD: usize = 5;
    if events.len() > MAX_EVENTS {
        let drop = events.len() - MAX_EVENTS;
        events.drain(HEAD..HEAD + drop);
    }
}

/// Prunes by count and age; `now` in ns. Answers how many turns were dropped.
pub fn prune(now: u64, active: Option<u64>) -> u64 {
    TURNS.with(|t| {
        let mut map = t.borrow_mut();
        let mut dropped = 0;
        while map.len() > KEEP_TURNS {
            let Some((id, _)) = map.first_key_value() else { break };
            if Some(id) == active {
                break;
            }
            map.remove(&id);
            dropped += 1;
        }
        // Turns are stored in start order: stop at the first one still young (or unfinished).
        while let Some((id, turn)) = map.first_key_value() {
            let expired = turn.0.started_at + KEEP_DAYS * DAY_NS < now;
            if !expired || !turn.0.state.is_finished() || Some(id) == active {
                break;
            }
            map.remove(&id);
            dropped += 1;
        }
        dropped
    })
}

/// Turns with id >= `from`, at most `limit` (capped at [`PAGE`]).
pub fn page(from: u64, limit: u32, next: u64) -> TurnPage {
    TURNS.with(|t| {
        let map = t.borrow();
        TurnPage {
            turns: map
                .range(from..)
                .take((limit as usize).min(PAGE))
                .map(|e| e.value().0)
                .collect(),
            oldest: map.first_key_value().map_or(next, |(k, _)| k),
            next,
        }
    })
}

/// Turns kept.
pub fn count() -> u64 {
    TURNS.with(|t| t.borrow().len())
}
