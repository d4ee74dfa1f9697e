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
            let Some((id, _)) = map.first_key_value() else {
                break;
            };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TurnState;
    use candid::Principal;

    fn turn(id: u64, started_at: u64, state: TurnState) -> TurnRecord {
        TurnRecord {
            id,
            task_id: id,
            state,
            model: "m".into(),
            llm_canister: Principal::anonymous(),
            started_at,
            updated_at: started_at,
            finished_at: None,
            rounds: 0,
            messages: vec![],
            tool_calls: vec![],
            events: vec![],
            answer: None,
            model_calls: 0,
            model_failures: 0,
            invalid_calls: 0,
            instructions: 0,
            model_cycles: 0,
            prompt_bytes_max: 0,
            started_module: None,
        }
    }

    #[test]
    fn the_log_keeps_the_newest_turns_and_never_the_active_one_out() {
        for id in 1..=KEEP_TURNS + 5 {
            put(turn(id, id, TurnState::Done));
        }
        assert_eq!(prune(KEEP_TURNS + 5, Some(KEEP_TURNS + 5)), 5);
        assert_eq!(count(), KEEP_TURNS);
        assert!(get(5).is_none() && get(6).is_some());
        let page = page(0, 1000, KEEP_TURNS + 6);
        assert_eq!(page.turns.len(), PAGE, "a page is capped");
        assert_eq!((page.oldest, page.turns[0].id), (6, 6));
    }

    #[test]
    fn finished_turns_older_than_the_age_limit_are_pruned_unfinished_ones_kept() {
        let day = DAY_NS;
        put(turn(1, day, TurnState::Done));
        put(turn(2, 2 * day, TurnState::Model)); // still under way (as the active turn)
        put(turn(3, 3 * day, TurnState::Failed("x".into())));
        put(turn(4, 40 * day, TurnState::Done));
        let now = (KEEP_DAYS + 5) * day;
        assert_eq!(prune(now, Some(2)), 1, "turn 1 is old and finished");
        assert!(get(1).is_none());
        assert!(get(2).is_some(), "pruning stops at the active turn");
        assert!(get(3).is_some() && get(4).is_some());
    }

    #[test]
    fn events_keep_the_first_five_and_the_latest() {
        let mut t = turn(1, 0, TurnState::Model);
        for i in 0..100 {
            event(&mut t, i, format!("e{i}"));
        }
        put(t);
        let events = get(1).unwrap().events;
        assert_eq!(events.len(), MAX_EVENTS);
        assert_eq!(events[4].what, "e4");
        assert_eq!(events[5].what, "e65");
        assert_eq!(events.last().unwrap().what, "e99");
    }
}
