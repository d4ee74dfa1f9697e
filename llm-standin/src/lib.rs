//! llm-standin: a test double of the IC's LLM canister for ic-sim. It answers `v1_chat` from
//! scripts that operators load; it does not think. See `README.md`.
//!
//! - [`script`]: the scripts and how a request is matched to a step (pure, unit-tested).
//! - This file: the endpoints and the heap state (an upgrade forgets both scripts and log).

pub mod script;

use candid::Principal;
use canister_api::llm::{
    self, ChatRequest, ChatResponse, STANDIN_LOG, Script, ScriptProgress, StandinError,
    StandinInit, StandinRequest,
};
use ic_cdk::{init, query, update};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::marker::PhantomData;

#[derive(Default)]
struct State {
    operators: Vec<Principal>,
    scripts: script::Scripts,
    log: VecDeque<StandinRequest>,
    next_seq: u64,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

#[init]
fn init(arg: StandinInit) {
    STATE.with(|s| s.borrow_mut().operators = arg.operators);
}

fn require_operator() -> Result<(), StandinError> {
    let caller = ic_cdk::api::msg_caller();
    if STATE.with(|s| s.borrow().operators.contains(&caller)) {
        Ok(())
    } else {
        Err(StandinError::Unauthorized { caller })
    }
}

/// The LLM canister's chat method: answers from the first matching script step, or rejects.
#[update(manual_reply = true)]
fn v1_chat(request: ChatRequest) -> PhantomData<ChatResponse> {
    let prompt_bytes = llm::prompt_bytes(&request) as u64;
    let attached = ic_cdk::api::msg_cycles_available();
    let decision = STATE.with(|s| s.borrow_mut().scripts.answer(&request, prompt_bytes));
    let outcome = match &decision {
        Ok(answer) => answer.by.clone(),
        Err(why) => format!("rejected: {why}"),
    };
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let seq = s.next_seq;
        s.next_seq += 1;
        s.log.push_back(StandinRequest {
            seq,
            at: ic_cdk::api::time(),
            caller: ic_cdk::api::msg_caller(),
            request,
            prompt_bytes,
            cycles_attached: attached,
            outcome,
        });
        while s.log.len() > STANDIN_LOG {
            s.log.pop_front();
        }
    });
    match decision {
        Ok(script::Answer {
            reply: Ok(message),
            charge,
            ..
        }) => {
            ic_cdk::api::msg_cycles_accept(charge.min(attached));
            let bytes =
                candid::encode_one(ChatResponse { message }).expect("encoding a chat response");
            ic_cdk::api::msg_reply(bytes);
        }
        Ok(script::Answer {
            reply: Err(reject), ..
        }) => ic_cdk::api::msg_reject(reject),
        Err(why) => ic_cdk::api::msg_reject(format!("llm-standin: {why}")),
    }
    PhantomData
}

/// Operators: adds a script after those loaded; answers its number of steps.
#[update]
fn load_script(script: Script) -> Result<u32, StandinError> {
    require_operator()?;
    STATE.with(|s| s.borrow_mut().scripts.load(script))
}

/// Operators: drops every script.
#[update]
fn clear_scripts() -> Result<(), StandinError> {
    require_operator()?;
    STATE.with(|s| s.borrow_mut().scripts = script::Scripts::default());
    Ok(())
}

/// The scripts loaded and the uses each step has left.
#[query]
fn scripts() -> Vec<ScriptProgress> {
    STATE.with(|s| s.borrow().scripts.progress())
}

/// The requests received with `seq >= from`, at most `limit` (capped at 20), oldest first.
#[query]
fn requests(from: u64, limit: u32) -> Vec<StandinRequest> {
    STATE.with(|s| {
        s.borrow()
            .log
            .iter()
            .filter(|r| r.seq >= from)
            .take(limit.min(20) as usize)
            .cloned()
            .collect()
    })
}

/// The generated candid service (`__export_service`, and `get_candid_pointer` for dfx).
#[allow(missing_docs)]
mod candid_export {
    use super::*;
    ic_cdk::export_candid!();

    /// The checked-in `llm-standin.did` is the interface the code exports.
    #[test]
    fn checked_in_did_matches_the_exported_service() {
        canister_api::assert_did_current(
            "llm-standin",
            concat!(env!("CARGO_MANIFEST_DIR"), "/llm-standin.did"),
            &__export_service(),
        );
    }
}
