//! The turn loop's steps: each step is one timer message that moves the active turn by one
//! state (or starts one), then schedules the next step: at once while there is work, at the
//! loop's interval when idle, every [`STEADY_IDLE_SECS`] once idle for a while (a new task
//! pokes it at once), slower in the `Low` survival tier.
//!
//! A step may await one call: the model (`v1_chat`) or a tool run (`run_tool_call` on the agent
//! itself). It writes before the await and re-reads after it; what comes back while writes are
//! paused is held on the heap ([`Held`]) and written by a later step. A step that traps after an
//! await loses only that callback: the next step was scheduled before the await.

use super::{
    MAX_CALLS_PER_ROUND, MAX_CALLS_PER_TURN, MAX_INVALID_CALLS, MAX_MODEL_FAILURES,
    UPGRADE_WAIT_SECS, describe_outcome, log, model_tools, prompt_layers, settings,
    settings::LoopState, transcript,
};
use crate::api::{
    AgentError, SurvivalTier, TaskStatus, ToolCallRecord, ToolCallStatus, TurnMessage, TurnRecord,
    TurnRole, TurnState,
};
use crate::llm::{self, LlmError};
use crate::{audit, config, journal, prompt, sandbox, survival, tasks, tools, writes};
use canister_api::cdk::{Busy, me, now};
use canister_api::ic::{self, CallError};
use canister_api::llm::{CYCLES_PER_CALL, prompt_bytes};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

const SEC: u64 = 1_000_000_000;

/// What became of a claimed tool call's run, as the driver saw it (heap only).
pub enum Note {
    /// It was not run: writes were paused. Run it when they resume.
    Deferred,
    /// Its run trapped, with this reject.
    Trapped(String),
}

/// Results that came back while the driver could not write them (heap: an upgrade drops
/// them; a dropped model answer is asked for again, a dropped note fails its call).
#[derive(Default)]
struct Held {
    /// (turn, its `model_calls` when asked, the answer, instructions of the callback).
    answer: Option<(u64, u32, llm::Answer, u64)>,
    /// (turn, call id) -> note.
    notes: BTreeMap<(u64, String), Note>,
}

thread_local! {
    static TIMER: Cell<Option<ic_cdk_timers::TimerId>> = const { Cell::new(None) };
    static BUSY: Cell<bool> = const { Cell::new(false) };
    static HELD: RefCell<Held> = RefCell::new(Held::default());
}

/// When to take the next step.
enum Next {
    /// At once (at the pace of the tier).
    Now,
    /// After this long.
    After(Duration),
    /// At the idle interval.
    Idle,
}

/// Stores `turn`, adding this execution's instructions (each execution saves a turn once).
fn save(mut turn: TurnRecord) {
    turn.instructions += ic_cdk::api::performance_counter(0);
    log::put(turn);
}

fn schedule(delay: Duration) {
    if let Some(old) = TIMER.with(|t| t.take()) {
        ic_cdk_timers::clear_timer(old);
    }
    let id = ic_cdk_timers::set_timer(delay, step());
    TIMER.with(|t| t.set(Some(id)));
}

/// (Re)starts the loop: init, post_upgrade (timers do not survive an upgrade), and the
/// operator setters. Does nothing in a sandbox copy.
pub fn start() {
    if !sandbox::is_copy() {
        schedule(Duration::ZERO);
    }
}

/// A new task: take a step soon unless one is under way.
pub fn poke() {
    if !sandbox::is_copy() && !BUSY.with(|b| b.get()) && settings::get().enabled {
        schedule(Duration::ZERO);
    }
}

fn tier(state: &LoopState) -> SurvivalTier {
    survival::current(&state.survival)
}

fn interval(state: &LoopState) -> Duration {
    Duration::from_secs(state.llm.interval_secs)
}

/// Seconds between two idle looks at the queue once the loop has been idle for a while (see
/// `canister_api::cadence`): a task submitted pokes the loop at once (`submit_task` ->
/// [`poke`]), and an operator's setter restarts it, so only the end of a backoff waits on an
/// idle look, and it is looked for on time.
pub const STEADY_IDLE_SECS: u64 = canister_api::cadence::STEADY_IDLE_LOOK_SECS;
/// Idle looks (no task pending), counted from the last turn's start, after which the loop
/// looks at [`STEADY_IDLE_SECS`] instead of `interval_secs`.
pub const STEADY_IDLE_AFTER_LOOKS: u64 = 10;

fn idle_delay(state: &LoopState) -> Duration {
    let base = match tier(state) {
        SurvivalTier::Low => interval(state) * state.survival.slow_factor,
        _ => interval(state),
    };
    let at = now();
    let quiet_for = STEADY_IDLE_AFTER_LOOKS * state.llm.interval_secs * SEC;
    // A pending task that waits (a backoff, a survival tier) is not idleness.
    let quiet = crate::digest::pending() == 0
        && state
            .last_turn_started
            .is_none_or(|t| at >= t.saturating_add(quiet_for));
    if !quiet {
        return base;
    }
    let steady = base.max(Duration::from_secs(STEADY_IDLE_SECS));
    match state.backoff_until.filter(|until| *until > at) {
        Some(until) => steady.min(base.max(Duration::from_nanos(until - at))),
        None => steady,
    }
}

async fn step() {
    if sandbox::is_copy() || BUSY.with(|b| b.get()) {
        return;
    }
    let state = settings::get();
    if !state.enabled {
        return;
    }
    let _busy = Busy::hold(&BUSY, true);
    // The next step is due even if a callback of this one traps.
    schedule(idle_delay(&state));
    let delay = match advance(&state).await {
        Next::Now if tier(&state) == SurvivalTier::Low => interval(&state),
        Next::Now => Duration::ZERO,
        Next::After(d) => d,
        Next::Idle => idle_delay(&state),
    };
    schedule(delay);
}

async fn advance(state: &LoopState) -> Next {
    if writes::current().is_some() {
        return Next::Idle; // the state stands still for the upgrade
    }
    let Some(id) = state.active else {
        return start_turn(state);
    };
    let Some(turn) = log::get(id).filter(|t| !t.state.is_finished()) else {
        settings::update(|s| s.active = None);
        return Next::Now;
    };
    match tasks::get(turn.task_id).map(|t| t.status) {
        Some(TaskStatus::Running) => {}
        other => {
            let why = format!(
                "cancelled: task {} is {} (an operator changed it); the turn stops",
                turn.task_id,
                other.map_or("gone".into(), |s| format!("{s:?}"))
            );
            finish(turn, Err(why));
            return Next::Now;
        }
    }
    match turn.state.clone() {
        TurnState::Model => ask_model(state, turn).await,
        TurnState::Tools => run_tools(turn).await,
        TurnState::AwaitingUpgrade { upgrade_id, since } => await_upgrade(turn, upgrade_id, since),
        TurnState::Done | TurnState::Failed(_) => Next::Now,
    }
}

fn start_turn(state: &LoopState) -> Next {
    let at = now();
    if state.backoff_until.is_some_and(|t| at < t) {
        return Next::Idle;
    }
    match tier(state) {
        SurvivalTier::Critical => return Next::Idle,
        SurvivalTier::Low
            if state.last_turn_started.is_some_and(|t| {
                at < t + state.llm.interval_secs * u64::from(state.survival.slow_factor) * SEC
            }) =>
        {
            return Next::Idle;
        }
        _ => {}
    }
    // The kept count first: an idle look does not scan the task table.
    if crate::digest::pending() == 0 {
        return Next::Idle;
    }
    let Some(task) = tasks::next_pending() else {
        return Next::Idle;
    };
    let id = state.next_turn.max(1);
    let (llm_canister, _) = llm::resolve(&state.llm);
    let mut turn = TurnRecord {
        id,
        task_id: task.id,
        state: TurnState::Model,
        model: state.llm.model.clone(),
        llm_canister,
        started_at: at,
        updated_at: at,
        finished_at: None,
        rounds: 0,
        messages: vec![TurnMessage {
            role: TurnRole::User,
            content: crate::text::cut(&task.description, log::MAX_MESSAGE_BYTES),
            tool_call_ids: vec![],
            round: 0,
            at,
        }],
        tool_calls: vec![],
        events: vec![],
        answer: None,
        model_calls: 0,
        model_failures: 0,
        invalid_calls: 0,
        instructions: 0,
        model_cycles: 0,
        prompt_bytes_max: 0,
        started_module: config::markers().running.map(|h| h.to_vec()),
    };
    log::event(
        &mut turn,
        at,
        format!("started on task {} ({:?} priority)", task.id, task.priority),
    );
    settings::update(|s| {
        s.active = Some(id);
        s.next_turn = id + 1;
        s.last_turn_started = Some(at);
    });
    tasks::set_status(task.id, TaskStatus::Running, at);
    tasks::set_answer(task.id, id, None);
    log::prune(at, Some(id));
    if let Some((layer, phrase)) = prompt::override_attempt(&task.description) {
        let why = format!(
            "refused: the task tries to override the immutable `{layer}` prompt layer \
             (\"{phrase}\"); the model was not asked"
        );
        audit::append(
            at,
            me(),
            "turn.refused",
            None,
            format!("turn {id}, task {}: {why}", task.id),
        );
        finish(turn, Err(why));
    } else {
        save(turn);
    }
    Next::Now
}

/// Ends `turn`: Done with the model's answer, or Failed with the reason; the task follows
/// (unless an operator changed it already).
fn finish(mut turn: TurnRecord, outcome: Result<String, String>) {
    let at = now();
    let (state, status, text, action) = match outcome {
        Ok(answer) => (TurnState::Done, TaskStatus::Done, answer, "turn.done"),
        Err(why) => (
            TurnState::Failed(why.clone()),
            TaskStatus::Failed,
            why,
            "turn.failed",
        ),
    };
    let text = crate::text::cut(&text, tasks::MAX_ANSWER);
    log::event(&mut turn, at, format!("{action}: {text}"));
    turn.answer = Some(text.clone());
    turn.state = state;
    turn.finished_at = Some(at);
    if tasks::get(turn.task_id).is_some_and(|t| t.status == TaskStatus::Running) {
        tasks::set_status(turn.task_id, status, at);
    }
    tasks::set_answer(turn.task_id, turn.id, Some(text.clone()));
    let failed = status == TaskStatus::Failed;
    settings::update(|s| {
        s.active = None;
        if failed {
            s.last_failure = Some(format!("turn {}: {text}", turn.id));
        }
    });
    audit::append(
        at,
        me(),
        action,
        None,
        crate::text::cut(
            &format!("turn {} (task {}): {text}", turn.id, turn.task_id),
            300,
        ),
    );
    save(turn);
}

fn take_held_answer(turn: u64, asked: u32) -> Option<(llm::Answer, u64)> {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        match h.answer.take() {
            Some((t, a, answer, spent)) if t == turn && a == asked => Some((answer, spent)),
            _ => None, // stale: another turn or call
        }
    })
}

async fn ask_model(state: &LoopState, mut turn: TurnRecord) -> Next {
    let id = turn.id;
    if let Some((answer, spent)) = take_held_answer(id, turn.model_calls) {
        turn.instructions += spent;
        return apply_answer(state, turn, answer);
    }
    if turn.rounds >= state.llm.max_rounds {
        let why = format!(
            "the model gave no final answer in {} rounds (max_rounds)",
            turn.rounds
        );
        finish(turn, Err(why));
        return Next::Now;
    }
    let at = now();
    if state.backoff_until.is_some_and(|t| at < t) {
        return Next::Idle;
    }
    let balance = ic_cdk::api::canister_cycle_balance();
    if !survival::can_spare(balance, CYCLES_PER_CALL, &state.survival) {
        let why = LlmError::CannotSpare {
            balance,
            attach: CYCLES_PER_CALL,
            floor: state.survival.stop_below,
        };
        if turn
            .events
            .last()
            .is_none_or(|e| !e.what.starts_with("waiting"))
        {
            log::event(&mut turn, at, format!("waiting: {why}"));
            save(turn);
        }
        return Next::Idle;
    }
    let tools = model_tools::llm_tools(&tools::schemas());
    let system = prompt::system_prompt(&prompt_layers());
    let task = tasks::get(turn.task_id)
        .map(|t| t.description)
        .unwrap_or_default();
    let request = match transcript::build(&transcript::Inputs {
        model: &state.llm.model,
        system: &system,
        task: &task,
        turn: &turn,
        tools: &tools,
    }) {
        Ok(r) => r,
        Err(e) => {
            finish(turn, Err(e.to_string()));
            return Next::Now;
        }
    };
    let (canister, _) = llm::resolve(&state.llm);
    let bytes = prompt_bytes(&request) as u64;
    turn.model_calls += 1;
    turn.prompt_bytes_max = turn.prompt_bytes_max.max(bytes);
    turn.llm_canister = canister;
    turn.model = state.llm.model.clone();
    let what = format!(
        "asked the model {} (round {}, {} messages, {bytes} bytes)",
        turn.model,
        turn.rounds + 1,
        request.messages.len()
    );
    log::event(&mut turn, at, what);
    let asked = turn.model_calls;
    save(turn);

    let answer = llm::chat(canister, &request, state.llm.timeout_secs).await;

    let spent = ic_cdk::api::performance_counter(0);
    if writes::current().is_some() {
        HELD.with(|h| h.borrow_mut().answer = Some((id, asked, answer, spent)));
        return Next::Idle;
    }
    let _ = spent; // this callback's instructions are counted when it saves the turn
    let Some(turn) = log::get(id).filter(|t| t.state == TurnState::Model && t.model_calls == asked)
    else {
        return Next::Now; // the turn moved on meanwhile
    };
    if tasks::get(turn.task_id).is_none_or(|t| t.status != TaskStatus::Running) {
        return Next::Now; // an operator cancelled the task: the next step ends the turn
    }
    apply_answer(state, turn, answer)
}

fn backoff() {
    settings::update(|s| {
        s.backoff_secs =
            (s.backoff_secs * 2).clamp(settings::FIRST_BACKOFF_SECS, settings::MAX_BACKOFF_SECS);
        s.backoff_until = Some(now() + s.backoff_secs * SEC);
    });
}

fn apply_answer(state: &LoopState, mut turn: TurnRecord, answer: llm::Answer) -> Next {
    let at = now();
    turn.model_cycles += answer.charged;
    let message = match answer.message {
        Ok(m) => m,
        Err(e) => {
            turn.model_failures += 1;
            log::event(&mut turn, at, format!("the model call failed: {e}"));
            if turn.model_failures >= MAX_MODEL_FAILURES {
                backoff();
                let why = format!(
                    "the model could not be reached ({} failed calls; the loop backs off); last: {e}",
                    turn.model_failures
                );
                finish(turn, Err(why));
                return Next::Now;
            }
            save(turn);
            return Next::After(interval(state));
        }
    };
    if state.backoff_secs > 0 {
        settings::update(|s| {
            s.backoff_secs = 0;
            s.backoff_until = None;
        });
    }
    turn.rounds += 1;
    let round = turn.rounds;
    let calls = message.tool_calls;
    let content = message.content.unwrap_or_default();
    let garbage = if calls.len() > MAX_CALLS_PER_ROUND {
        Some(format!(
            "the model asked for {} tool calls in one answer; at most {MAX_CALLS_PER_ROUND}",
            calls.len()
        ))
    } else if turn.tool_calls.len() + calls.len() > MAX_CALLS_PER_TURN {
        Some(format!(
            "the model asked for more than {MAX_CALLS_PER_TURN} tool calls in one turn"
        ))
    } else if calls.is_empty() && content.trim().is_empty() {
        Some("the model answered with neither text nor a tool call".into())
    } else {
        let mut ids: Vec<&str> = calls.iter().map(|c| c.id.as_str()).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        (ids.len() != n || ids.iter().any(|i| i.is_empty() || i.len() > 64))
            .then(|| "the model's tool calls have missing, over-long or repeated ids".into())
    };
    if let Some(why) = garbage {
        finish(turn, Err(why));
        return Next::Now;
    }
    turn.messages.push(TurnMessage {
        role: TurnRole::Assistant,
        content: crate::text::cut(&content, log::MAX_MESSAGE_BYTES),
        tool_call_ids: calls.iter().map(|c| c.id.clone()).collect(),
        round,
        at,
    });
    if calls.is_empty() {
        finish(turn, Ok(content));
        return Next::Now;
    }
    let schemas = tools::schemas();
    let mut last_problem = None;
    for c in &calls {
        let name = crate::text::cut(&c.function.name, 64);
        let (status, arguments, finished_at) =
            match model_tools::arguments_json(&schemas, &c.function.name, &c.function.arguments) {
                Ok(json) => (ToolCallStatus::Pending, json, None),
                Err(problem) => {
                    turn.invalid_calls += 1;
                    let raw: Vec<String> = c
                        .function
                        .arguments
                        .iter()
                        .map(|a| format!("{}={}", a.name, a.value))
                        .collect();
                    last_problem = Some(problem.to_string());
                    (
                        ToolCallStatus::Failed(problem.to_string()),
                        crate::text::cut(&raw.join(", "), log::MAX_KEPT_ARGUMENT_BYTES),
                        Some(at),
                    )
                }
            };
        turn.tool_calls.push(ToolCallRecord {
            id: c.id.clone(),
            round,
            name,
            arguments,
            status,
            at,
            finished_at,
            upgrade_id: None,
            upgrade_outcome: None,
        });
    }
    let names: Vec<&str> = calls.iter().map(|c| c.function.name.as_str()).collect();
    log::event(
        &mut turn,
        at,
        format!("the model asked for {}", names.join(", ")),
    );
    if turn.invalid_calls >= MAX_INVALID_CALLS {
        let why = format!(
            "the model made {} invalid tool calls; the last: {}",
            turn.invalid_calls,
            last_problem.unwrap_or_default()
        );
        finish(turn, Err(why));
        return Next::Now;
    }
    turn.state = TurnState::Tools;
    save(turn);
    Next::Now
}

fn take_note(turn: u64, call: &str) -> Option<Note> {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        h.notes.retain(|(t, _), _| *t == turn); // notes of turns that ended otherwise
        h.notes.remove(&(turn, call.to_string()))
    })
}

fn fail_call(turn: &mut TurnRecord, index: usize, why: String) {
    let at = now();
    let call = &mut turn.tool_calls[index];
    call.status = ToolCallStatus::Failed(why.clone());
    call.finished_at = Some(at);
    let name = call.name.clone();
    log::event(turn, at, format!("{name}: {why}"));
}

async fn run_tools(mut turn: TurnRecord) -> Next {
    let at = now();
    if let Some(i) = turn
        .tool_calls
        .iter()
        .position(|c| c.status == ToolCallStatus::Claimed)
    {
        match take_note(turn.id, &turn.tool_calls[i].id) {
            Some(Note::Deferred) => return invoke(turn.id, i, turn.tool_calls[i].id.clone()).await,
            Some(Note::Trapped(reject)) => fail_call(
                &mut turn,
                i,
                format!(
                    "the tool trapped ({reject}); a tool call runs at most once, so it is not run again"
                ),
            ),
            None => fail_call(
                &mut turn,
                i,
                "interrupted: the agent was upgraded or trapped before the call's result was \
                 recorded; a tool call runs at most once, so it is not run again"
                    .into(),
            ),
        }
        save(turn);
        return Next::Now;
    }
    if let Some(i) = turn
        .tool_calls
        .iter()
        .position(|c| c.status == ToolCallStatus::Pending)
    {
        turn.tool_calls[i].status = ToolCallStatus::Claimed;
        let (id, call_id, name) = (
            turn.id,
            turn.tool_calls[i].id.clone(),
            turn.tool_calls[i].name.clone(),
        );
        log::event(&mut turn, at, format!("running {name}"));
        save(turn);
        return invoke(id, i, call_id).await;
    }
    let waiting = turn
        .tool_calls
        .iter()
        .rev()
        .find(|c| c.upgrade_id.is_some() && c.upgrade_outcome.is_none())
        .and_then(|c| c.upgrade_id);
    turn.state = match waiting {
        Some(upgrade_id) => {
            log::event(
                &mut turn,
                at,
                format!("waiting for upgrade {upgrade_id} to end"),
            );
            TurnState::AwaitingUpgrade {
                upgrade_id,
                since: at,
            }
        }
        None => TurnState::Model,
    };
    save(turn);
    Next::Now
}

/// Runs claimed call `index` of turn `turn` in its own message (a call to the agent itself),
/// and notes what became of it for the next step.
async fn invoke(turn: u64, index: usize, call_id: String) -> Next {
    let answer: Result<Result<(), AgentError>, CallError> =
        ic::call_args(me(), "run_tool_call", &(turn, index as u32), None).await;
    let note = match answer {
        Ok(Ok(())) => return Next::Now,
        Ok(Err(AgentError::WritesPaused { .. })) => Note::Deferred,
        Ok(Err(e)) => Note::Trapped(format!("run_tool_call refused: {e}")),
        Err(e) => Note::Trapped(e.message),
    };
    let deferred = matches!(note, Note::Deferred);
    HELD.with(|h| h.borrow_mut().notes.insert((turn, call_id), note));
    if deferred { Next::Idle } else { Next::Now }
}

fn await_upgrade(mut turn: TurnRecord, upgrade_id: u64, since: u64) -> Next {
    let at = now();
    let outcome = match journal::get(upgrade_id) {
        None => Some(format!(
            "upgrade {upgrade_id} is not in the journal any more"
        )),
        Some(r) if r.state.is_terminal() => Some(describe_outcome(&r)),
        Some(r) if at.saturating_sub(since) > UPGRADE_WAIT_SECS * SEC => Some(format!(
            "upgrade {upgrade_id} is still {} after {} h (it may wait for an operator); the turn \
             goes on without it",
            journal::state_name(&r.state),
            UPGRADE_WAIT_SECS / 3600
        )),
        Some(_) => None,
    };
    let Some(outcome) = outcome else {
        return Next::Idle;
    };
    for c in turn
        .tool_calls
        .iter_mut()
        .filter(|c| c.upgrade_id == Some(upgrade_id) && c.upgrade_outcome.is_none())
    {
        c.upgrade_outcome = Some(outcome.clone());
    }
    let module = config::markers()
        .running
        .map_or("unknown".into(), |h| hex::encode(&h[..6]));
    let first = outcome.split(':').next().unwrap_or_default().to_string();
    log::event(
        &mut turn,
        at,
        format!("{first}; the turn resumes in module {module}"),
    );
    turn.state = TurnState::Model;
    save(turn);
    Next::Now
}
