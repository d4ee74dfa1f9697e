//! What the base draw ([`super::action::base`]) cannot reach: timings that need a fault to land
//! between two particular messages (a trap half-way through a rehearsal, an approval during
//! one, a heartbeat held across the install), an upgrade left unended past the write lease, a
//! release without a control-plane export, a cycles drain. These come from a separate random
//! stream ([`EXTRA_STREAM`]) and are inserted between the base actions ([`insert`]), so a seed
//! keeps its base actions in order, and a seed whose extra stream inserts nothing keeps exactly
//! its old history.
//!
//! This module also runs the new actions on the trio ([`apply`]) and checks the invariants
//! only they can break ([`check`]):
//!
//! | invariant | holds when |
//! | --- | --- |
//! | `control_plane_kept` | a release without a control-plane export is refused at proposal, even when it says it breaks the interface on purpose |
//! | `install_drained` | the agent's module never changes while a response to one of its own calls is still on its way (its callback would run in the new module) |

use super::action::{Action, Holder, ReleaseKind, Who};
use super::check::Violation;
use super::world::World;
use crate::rng::{Rng, hash_name};
use candid::{Encode, Principal};
use canister_api::agent::{Autonomy, Supervision, UpgradeRecord, UpgradeState};
use ic_sim::Fault;
use std::time::Duration;
use testbed::operator;

/// The name the extra stream's generator is seeded with (`seed ^ hash_name(EXTRA_STREAM)`).
pub const EXTRA_STREAM: &str = "explore-extra";

/// The name of the stream that inserts [`Action::RejectMidArm`] scenarios
/// (`seed ^ hash_name(REJECT_STREAM)`). A stream of its own, drawn after [`EXTRA_STREAM`]'s
/// draw for the same base action, so that every scenario [`EXTRA_STREAM`] inserted before it
/// existed stays as it was. Its suffix was picked (the first of 1..50) so that no history that
/// was measured or replayed before it existed gets an insertion (the test
/// `the_reject_stream_leaves_the_measured_histories_alone`, and seeds 1..12 of 20 steps).
pub const REJECT_STREAM: &str = "explore-reject-mid-arm-19";

/// The chance, per thousand, that [`REJECT_STREAM`] inserts its scenario after a base action.
pub const REJECT_PER_MILLE: u64 = 10;

/// The chance, per thousand, that the extra stream inserts a scenario after a base action.
/// Low, so that most seeds of a short history keep their old actions unchanged (at 20 steps,
/// about a third of the seeds get an insertion).
pub const INSERT_PER_MILLE: u64 = 20;

/// Control-plane exports a release may be cut down to lack: methods the watchdog and staging
/// call ([`canister_api::agent::required_exports`]) that the list before issue 12's fix did not
/// require.
pub const CONTROL_PLANE_DROPS: &[&str] = &[
    "export_module",
    "state_digest",
    "export_state",
    "import_state",
    "upgrade_armed",
    "complete_upgrade",
    "canary_write",
];

/// The cycles a top-up deposits.
pub const TOP_UP: u128 = 5_000_000_000_000;

/// Simulated time a composite action waits for the moment its fault needs (a rehearsal
/// half-way, an arm accepted) before it gives up and says so.
const REACH_BOUND: Duration = Duration::from_secs(30 * 60);

/// The scenarios the extra stream draws from, each a short list of actions.
fn scenario(rng: &mut Rng) -> Vec<Action> {
    match rng.below(7) {
        // Issue 12 item 3: an approval lands during the rehearsal.
        0 => vec![Action::ApproveMidRehearsal],
        // Item 6: a trap half-way through the rehearsal, then time for the copy to linger
        // (two steps: the no-copy rule measures between step ends).
        1 => vec![
            Action::TrapMidRehearsal,
            Action::Wait(600),
            Action::Wait(2400),
        ],
        // Item 2: a release without a control-plane export, breaking on purpose.
        2 => vec![Action::ReleaseWithout(
            CONTROL_PLANE_DROPS[rng.below(CONTROL_PLANE_DROPS.len() as u64) as usize],
        )],
        // Item 1: an upgrade left unended past the lease, with writes tried across it; then
        // the operator rejects it (the guarding test's way out).
        3 => {
            let k = rng.below(8) as u8;
            vec![
                Action::StallArmed,
                Action::Remember(k, 1000),
                Action::Wait(3600),
                Action::Wait(3700),
                Action::Remember(k, 1001),
                Action::Reject,
            ]
        }
        // Item 7: a heartbeat held across the install.
        4 => vec![Action::HoldAcrossInstall],
        // Item 6: the sandbox left without cycles, then a release staging must rehearse.
        5 => vec![
            Action::Release(ReleaseKind::Good),
            Action::Wait(900),
            Action::Drain(Holder::Sandbox),
            Action::Wait(700),
            Action::Release(ReleaseKind::Good),
        ],
        // A cycles drain of one of the trio, and the operator's top-up.
        _ => {
            let who = [Who::Agent, Who::Watchdog, Who::Staging][rng.below(3) as usize];
            vec![
                Action::Drain(Holder::Trio(who)),
                Action::Wait(30 + rng.below(570)),
                Action::TopUp(Holder::Trio(who)),
            ]
        }
    }
}

/// `base` with the extra stream's scenarios inserted after some of its actions, then the reject
/// stream's ([`REJECT_STREAM`]), then the coverage stream's ([`super::cover`]). After base
/// action `i` each stream draws whether to insert (and what), in order, so `insert(seed,
/// base(seed, n))` is a prefix of the same for a longer `n`; the streams are independent, so
/// one stream changes no insertion of another.
pub fn insert(seed: u64, base: Vec<Action>) -> Vec<Action> {
    let mut rng = Rng::new(seed ^ hash_name(EXTRA_STREAM));
    let mut reject = Rng::new(seed ^ hash_name(REJECT_STREAM));
    let mut cover = Rng::new(seed ^ hash_name(super::cover::COVERAGE_STREAM));
    let mut out = Vec::with_capacity(base.len());
    for action in base {
        out.push(action);
        if rng.below(1000) < INSERT_PER_MILLE {
            out.extend(scenario(&mut rng));
        }
        if reject.below(1000) < REJECT_PER_MILLE {
            out.extend(reject_scenario(&mut reject));
        }
        if cover.below(1000) < super::cover::COVER_PER_MILLE {
            out.extend(super::cover::scenario(&mut cover));
        }
    }
    out
}

/// Issue 12 item 1's other history: an upgrade ended (rejected) while its arm request was in
/// flight, with writes tried at once and again within the 60-min lease; the rejection must
/// have lifted the write pause the arm request took.
fn reject_scenario(rng: &mut Rng) -> Vec<Action> {
    let k = rng.below(8) as u8;
    vec![
        Action::RejectMidArm(k),
        Action::Remember(k, 1002),
        Action::Wait(30 + rng.below(570)),
        Action::Remember(k, 1003),
    ]
}

/// Whether `action` is one the base draw never makes (only the extra stream inserts it).
pub fn is_extra(action: &Action) -> bool {
    matches!(
        action,
        Action::ApproveMidRehearsal
            | Action::TrapMidRehearsal
            | Action::ReleaseWithout(_)
            | Action::StallArmed
            | Action::HoldAcrossInstall
            | Action::RejectMidArm(_)
            | Action::Drain(_)
            | Action::TopUp(_)
            | Action::RejectAt(_)
            | Action::CommitRelease
            | Action::Misuse(_)
    )
}

fn enc<T: candid::CandidType>(v: &T) -> Vec<u8> {
    Encode!(v).expect("encode")
}

/// Runs one round at a time (idle time skipped 100 ms at most) until `done` holds, at most
/// [`REACH_BOUND`] of simulated time or the history's wall-time bound; answers whether it held.
pub(super) fn tick_until(w: &mut World, mut done: impl FnMut(&mut World) -> bool) -> bool {
    let start = w.now();
    loop {
        if done(w) {
            return true;
        }
        if w.now() - start >= REACH_BOUND.as_nanos() as u64 || w.past_deadline() {
            return false;
        }
        w.tb.sim.skip_idle_time(Duration::from_millis(100));
        w.tb.sim.tick();
    }
}

pub(super) fn record(w: &World, id: u64) -> Option<UpgradeRecord> {
    w.records()?.into_iter().find(|r| r.id == id)
}

/// The agent's write pause, in words (`rehearsal ...`, `upgrade ...`), if any.
fn writes_paused(w: &World) -> Option<String> {
    w.tb.try_health().ok()?.writes_paused
}

/// The agent's audit entries from sequence number `from` on with this action, counted (every
/// page), and the next sequence number to be written; `(0, from)` if the agent does not answer.
fn audit_since(w: &World, from: u64, action: &str) -> (usize, u64) {
    let (mut count, mut at, mut next) = (0, from, from);
    loop {
        let Some(page) = super::safety_net::audit_page(w, at) else {
            return (count, next);
        };
        count += page.entries.iter().filter(|e| e.action == action).count();
        next = page.next;
        match page.next_from {
            Some(n) if n > at => at = n,
            _ => return (count, next),
        }
    }
}

/// How many entries the agent's audit log still holds with this action.
fn audit_count(w: &World, action: &str) -> usize {
    audit_since(w, 0, action).0
}

/// Proposes the healthy build (or `bytes`), answering its upgrade id or why not. Like an
/// operator, it waits out the gate's rate limit and an upgrade still in flight (running the
/// subnet meanwhile), for [`REACH_BOUND`] at most.
pub(super) fn release(w: &mut World, bytes: Option<Vec<u8>>) -> Result<u64, String> {
    // The healthy build, stamped with the simulated time: a module no earlier release of the
    // history proposed (the watchdog refuses to arm the module already running).
    let bytes = bytes.unwrap_or_else(|| {
        let label = format!("explore-reach-{}", w.now() / 1_000_000_000);
        testbed::release(&testbed::chaos_candidate("none"), &label, (1, 3))
    });
    w.modules.insert(testbed::sha256(&bytes), bytes.clone());
    let start = w.now();
    loop {
        let e = match w.propose(&bytes, true) {
            Ok(r) => return Ok(r.id),
            Err(e) => e,
        };
        let secs = if e.contains("rate limited") {
            e.split("retry in ")
                .nth(1)
                .and_then(|t| t.split(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(600)
                + 1
        } else if e.contains("in flight") {
            60
        } else {
            return Err(e);
        };
        let waited = Duration::from_nanos(w.now() - start);
        if waited + Duration::from_secs(secs) > REACH_BOUND || !w.run_for(Duration::from_secs(secs))
        {
            return Err(e);
        }
    }
}

/// Approves upgrade `id` if it waits for an operator.
pub(super) fn approve_if_waiting(w: &mut World, id: u64) {
    let waits = record(w, id)
        .is_some_and(|r| matches!(r.state, UpgradeState::Rehearsed | UpgradeState::Validated));
    if waits {
        let _ = w.agent::<UpgradeRecord>(operator(), "approve_upgrade", enc(&id));
    }
}

/// Ticks until upgrade `id` is armed by the watchdog (the agent audited the accepted arm
/// request), approving it if it waits; answers whether it got there.
fn until_arm_accepted(w: &mut World, id: u64) -> bool {
    let (_, from) = audit_since(w, u64::MAX, "");
    let mut n = 0u32;
    let mut accepted = false;
    tick_until(w, |w| {
        n += 1;
        // Reading the journal and the audit log every round costs more than the rounds.
        if !n.is_multiple_of(5) {
            return false;
        }
        approve_if_waiting(w, id);
        accepted = audit_since(w, from, "upgrade.arm_accepted").0 > 0;
        accepted || record(w, id).is_none_or(|r| r.state.is_terminal())
    }) && accepted
}

/// Runs an action of this module; answers what came of it, in words.
pub fn apply(w: &mut World, action: &Action) -> String {
    match action {
        Action::ApproveMidRehearsal => approve_mid_rehearsal(w),
        Action::TrapMidRehearsal => trap_mid_rehearsal(w),
        Action::ReleaseWithout(name) => release_without(w, name),
        Action::StallArmed => stall_armed(w),
        Action::HoldAcrossInstall => hold_across_install(w),
        Action::RejectMidArm(k) => reject_mid_arm(w, *k),
        Action::Drain(holder) => match holder_id(w, *holder) {
            Some(id) => {
                let burned = w.tb.sim.burn_cycles(id, u128::MAX);
                format!(
                    "burned {burned} cycles; {} left (threshold {})",
                    w.tb.sim.cycle_balance(id),
                    w.tb.sim.freezing_threshold_cycles(id)
                )
            }
            None => "skipped: staging has no sandbox yet".into(),
        },
        Action::TopUp(holder) => match holder_id(w, *holder) {
            Some(id) => format!("balance {}", w.tb.sim.add_cycles(id, TOP_UP)),
            None => "skipped: staging has no sandbox yet".into(),
        },
        Action::RejectAt(_) | Action::CommitRelease | Action::Misuse(_) => {
            super::cover::apply(w, action)
        }
        other => unreachable!("not an action of the extra stream: {other:?}"),
    }
}

fn holder_id(w: &World, holder: Holder) -> Option<Principal> {
    match holder {
        Holder::Trio(who) => Some(w.id(who)),
        Holder::Sandbox => super::safety_net::sandbox(w),
    }
}

/// Under `ApproveEach`, a self-upgrade that adds the query method `name` answering "hi", so
/// that it waits for the operator's approval; answers its id, or why it was skipped.
pub(super) fn self_upgrade_for_approval(
    w: &mut World,
    name: &str,
    reason: &str,
) -> Result<u64, String> {
    let _ = w.agent::<()>(operator(), "set_autonomy", enc(&Autonomy::ApproveEach));
    let args = serde_json::json!({
        "ops": [{
            "op": "add_query_method",
            "name": name,
            "reply_hex": hex::encode(Encode!(&"hi").expect("encode")),
        }],
        "reason": reason,
    });
    let out: Result<String, String> = w.agent(
        operator(),
        "call_tool",
        Encode!(&"self_upgrade", &args.to_string()).expect("encode"),
    );
    let id = match out {
        Ok(o) => serde_json::from_str::<serde_json::Value>(&o)
            .ok()
            .and_then(|v| v["id"].as_u64()),
        Err(e) => return Err(format!("skipped: the self-upgrade was refused: {e}")),
    };
    id.ok_or_else(|| "skipped: the self-upgrade answered no upgrade id".into())
}

/// Issue 12 item 3's history: under `ApproveEach` a self-upgrade starts its rehearsal, and the
/// operator approves it while the rehearsal's write pause is up.
fn approve_mid_rehearsal(w: &mut World) -> String {
    let id = match self_upgrade_for_approval(w, "hello_rehearsed", "explore: approve mid-rehearsal")
    {
        Ok(id) => id,
        Err(skipped) => return skipped,
    };
    if !tick_until(w, |w| {
        writes_paused(w).is_some_and(|p| p.starts_with("rehearsal"))
    }) {
        return format!("upgrade {id}: no rehearsal began to approve during");
    }
    let out: Result<UpgradeRecord, String> = w.agent(operator(), "approve_upgrade", enc(&id));
    // The approval's effect (the pipeline's next advance) runs in the rounds after it: let the
    // rehearsal answer, so that the step's checks see what the approval started.
    let answered = tick_until(w, |w| {
        !writes_paused(w).is_some_and(|p| p.starts_with("rehearsal"))
    });
    let answered = format!(
        "{}; rehearsals started so far: {}",
        if answered {
            "the rehearsal answered"
        } else {
            "the rehearsal did not answer within 30 min"
        },
        audit_count(w, "upgrade.rehearsal_started")
    );
    match out {
        Ok(r) => format!(
            "upgrade {id}: approved mid-rehearsal: ok {:?}; {answered}",
            r.state
        ),
        Err(e) => format!("upgrade {id}: approval mid-rehearsal refused: {e}; {answered}"),
    }
}

/// Issue 12 item 6's history: staging's next message traps once the sandbox holds half of the
/// agent's state.
fn trap_mid_rehearsal(w: &mut World) -> String {
    let state = w.tb.sim.get_stable_memory(w.tb.agent).len();
    let id = match release(w, None) {
        Ok(id) => id,
        Err(e) => return format!("skipped: the release was refused: {e}"),
    };
    let half_way = tick_until(w, |w| {
        super::safety_net::sandbox(w)
            .is_some_and(|s| w.tb.sim.get_stable_memory(s).len() >= state / 2)
    });
    if !half_way {
        return format!("upgrade {id}: the rehearsal never copied the state: no trap");
    }
    w.tb.sim.inject(Fault::TrapNextMessage {
        canister: w.tb.staging,
    });
    format!("upgrade {id}: staging's next message traps (the sandbox holds the copy)")
}

/// Issue 12 item 2's history: a release without a control-plane export, marked as breaking.
fn release_without(w: &mut World, name: &str) -> String {
    let ops = [wasm_patch::PatchOp::RemoveMethod { name: name.into() }];
    let stamp = wasm_patch::Stamp::new(format!("no-{name}")).with_schema_range(1, 3);
    let bytes = match wasm_patch::apply_patch(&testbed::chaos_candidate("none"), &ops, &stamp) {
        Ok(p) => p.wasm,
        Err(e) => return format!("skipped: the module could not be cut: {e}"),
    };
    let hash = testbed::sha256(&bytes);
    w.bad_modules.push(hash);
    match release(w, Some(bytes)) {
        Ok(id) => format!("ok: upgrade {id} admitted without `{name}`"),
        Err(e) => format!("refused: {e}"),
    }
}

/// Issue 12 item 1's history: the watchdog is uninstalled once it accepted the arm request,
/// so the upgrade has no verdict and stays unended with writes paused.
fn stall_armed(w: &mut World) -> String {
    let id = match release(w, None) {
        Ok(id) => id,
        Err(e) => return format!("skipped: the release was refused: {e}"),
    };
    if !until_arm_accepted(w, id) {
        return format!("upgrade {id}: never armed: the watchdog stays");
    }
    w.watchdog_erased = true;
    let out = w.tb.sim.uninstall_canister(w.tb.watchdog, Some(operator()));
    format!(
        "upgrade {id}: armed, then the watchdog uninstalled: {}",
        match out {
            Ok(()) => "ok".to_string(),
            Err(e) => e.reject_message,
        }
    )
}

/// Issue 12 item 7's history: heartbeats every second; once the watchdog has stopped the agent
/// for its snapshot and started it again, its responses are held for 5 s, so the agent has a
/// heartbeat in flight when it would install. Reports `INSTALL IN FLIGHT` if the agent's module
/// changed while a response to one of its calls was held.
fn hold_across_install(w: &mut World) -> String {
    let previous = w.config().and_then(|c| c.supervision).unwrap_or_default();
    // Heartbeats every second, each waiting up to 30 s (longer than the hold), as the
    // guarding test sets them.
    let fast = Supervision {
        heartbeat_interval_secs: 1,
        heartbeat_timeout_secs: 30,
        ..previous
    };
    let set = w
        .agent::<Supervision>(operator(), "set_supervision", enc(&fast))
        .map_or_else(
            |e| format!("set_supervision refused: {e}"),
            |_| String::new(),
        );
    let restore = |w: &mut World| {
        let _ = w.agent::<Supervision>(operator(), "set_supervision", enc(&previous));
    };
    let (_, audit_from) = audit_since(w, u64::MAX, "");
    let id = match release(w, None) {
        Ok(id) => id,
        Err(e) => {
            restore(w);
            return format!("skipped: the release was refused: {e}");
        }
    };
    let agent = w.tb.agent;
    // The watchdog stops the agent, snapshots it and starts it again before it says "go":
    // the hold begins while the agent is stopped.
    let mut passed = false;
    let mut n = 0u32;
    let stopped = tick_until(w, |w| {
        n += 1;
        if w.tb.sim.canister_run_status(agent) == Some(ic_sim::CanisterStatusType::Stopped) {
            return true;
        }
        // Reading the journal every round costs more than the rounds.
        if n.is_multiple_of(5) {
            approve_if_waiting(w, id);
            passed = record(w, id).is_some_and(|r| {
                r.state.is_terminal()
                    || matches!(
                        r.state,
                        UpgradeState::Armed | UpgradeState::Installing | UpgradeState::Booted
                    )
            });
        }
        passed
    }) && !passed;
    if !stopped {
        restore(w);
        let state = record(w, id).map(|r| r.state);
        return format!(
            "upgrade {id}: the agent was not seen stopped for the snapshot (now {state:?}): no hold"
        );
    }
    // The clock moves 2 s (a time jump): the agent's heartbeat is due as it restarts, and goes
    // out before or with the watchdog's go-ahead (the agent starts no call once armed); its
    // response is held.
    w.tb.sim.advance_time(Duration::from_secs(2));
    w.tb.sim.inject(Fault::HoldResponses {
        from: w.tb.watchdog,
    });
    let start = w.now();
    let mut installed_in_flight = false;
    let mut held_any = false;
    let mut changed_with = None;
    while w.now() - start < 5_000_000_000 && !w.past_deadline() {
        let module = w.tb.sim.module_hash(agent);
        let waiting = w.tb.sim.awaited_held_responses_of(agent);
        w.tb.sim.skip_idle_time(Duration::from_millis(100));
        w.tb.sim.tick();
        let still_waiting = w.tb.sim.awaited_held_responses_of(agent);
        held_any |= still_waiting > 0;
        // The module changed under a call the old module made, still in flight.
        if w.tb.sim.module_hash(agent) != module {
            changed_with = Some((waiting, still_waiting));
            installed_in_flight |= waiting > 0 && still_waiting > 0;
        }
    }
    w.clear_faults();
    restore(w);
    let state = record(w, id).map(|r| r.state);
    if !set.is_empty() {
        return format!("upgrade {id}: {set}; now {state:?}");
    }
    if installed_in_flight {
        format!(
            "INSTALL IN FLIGHT: upgrade {id}'s module was installed while a response to one of \
             the agent's calls was held (its callback runs in the new module); now {state:?}"
        )
    } else if held_any {
        let draining = audit_since(w, audit_from, "upgrade.draining").0;
        format!(
            "upgrade {id}: a heartbeat was held across the arm (install waited: {}; the module \
             changed with {changed_with:?} calls in flight before/after); now {state:?}",
            draining > 0
        )
    } else {
        format!("upgrade {id}: nothing of the agent's was held; now {state:?}")
    }
}

/// Whether the watchdog logged event `action` for upgrade `id` (false if it does not answer).
fn watchdog_event(w: &World, action: &str, id: u64) -> bool {
    w.tb.try_events().is_ok_and(|events| {
        events
            .iter()
            .any(|e| e.action == action && e.upgrade_id == Some(id))
    })
}

/// Rounds [`reject_mid_arm`] steps one at a time, at most, from the arm request's write pause
/// to the watchdog's acceptance (a few in practice: the agent reads its status, then calls).
const ARM_ROUNDS: u32 = 200;

/// Issue 12 item 1's guarding test as a history step: the operator releases the healthy build;
/// once the agent's arm request paused writes and the watchdog accepted the arm (its answer on
/// the way, the go-ahead not yet given), the operator rejects the upgrade and writes fact
/// `k{k}` at once. Reports `PAUSED AFTER END` if that write was refused by the pause of the
/// upgrade the rejection had ended.
fn reject_mid_arm(w: &mut World, k: u8) -> String {
    let id = match release(w, None) {
        Ok(id) => id,
        Err(e) => return format!("skipped: the release was refused: {e}"),
    };
    // Up to the arm request (its pause), approving the upgrade if it waits; a rehearsal takes
    // many rounds, so the journal is read every fifth round until the upgrade is approved.
    let mut n = 0u32;
    let mut approved = false;
    let paused = tick_until(w, |w| {
        n += 1;
        if !approved && !n.is_multiple_of(5) {
            return false;
        }
        approve_if_waiting(w, id);
        let Some(state) = record(w, id).map(|r| r.state) else {
            return true;
        };
        approved = state == UpgradeState::Approved;
        if !approved {
            return state.is_terminal() || matches!(state, UpgradeState::Armed);
        }
        writes_paused(w).is_some_and(|p| p.starts_with(&format!("upgrade of upgrade {id} ")))
    });
    let state = record(w, id).map(|r| r.state);
    if !paused || state != Some(UpgradeState::Approved) {
        return format!("upgrade {id}: no arm request was seen in flight (now {state:?})");
    }
    // Round by round until the watchdog accepted the arm, while the agent is still Approved.
    let mut accepted = false;
    for _ in 0..ARM_ROUNDS {
        accepted = watchdog_event(w, "arm.accepted", id);
        if accepted || record(w, id).is_none_or(|r| r.state != UpgradeState::Approved) {
            break;
        }
        w.tb.sim.tick();
    }
    let state = record(w, id).map(|r| r.state);
    if !accepted || state != Some(UpgradeState::Approved) {
        return format!(
            "upgrade {id}: the arm was not seen accepted while approved (now {state:?}): no rejection"
        );
    }
    let rejected: Result<UpgradeRecord, String> = w.agent(
        operator(),
        "reject_upgrade",
        Encode!(&id, &"explore: rejected while its arm is in flight").expect("encode"),
    );
    let rejected = match rejected {
        Ok(r) => r,
        Err(e) => {
            return format!("upgrade {id}: rejection while its arm is in flight refused: {e}");
        }
    };
    let write = w.apply(&Action::Remember(k, 1001));
    let ended = record(w, id).is_some_and(|r| r.state.is_terminal());
    let refused_for = write
        .split("writes are paused for upgrade ")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u64>().ok());
    let head = if ended && refused_for == Some(id) {
        "PAUSED AFTER END: "
    } else {
        ""
    };
    format!(
        "{head}upgrade {id}: rejected while its arm is in flight (the watchdog accepted it): \
         {:?}; remember k{k}: {write}",
        rejected.state
    )
}

fn violation(invariant: &str, detail: &str) -> Violation {
    Violation {
        invariant: invariant.into(),
        detail: detail.into(),
    }
}

/// The invariants only this module's actions can break, after `action` answered `result`.
pub fn check(action: &Action, result: &str) -> Result<(), Violation> {
    if let Action::ReleaseWithout(name) = action
        && result.starts_with("ok")
    {
        return Err(violation(
            "control_plane_kept",
            &format!("a release without the control-plane export `{name}` was admitted: {result}"),
        ));
    }
    if result.starts_with("INSTALL IN FLIGHT") {
        return Err(violation("install_drained", result));
    }
    if result.starts_with("PAUSED AFTER END") {
        return Err(violation("writes_pause_bounded", result));
    }
    super::cover::check(action, result)
}

#[cfg(test)]
mod tests {
    use super::super::action::base;
    use super::*;

    /// Whether `sub` is `all` with some actions left out, in order.
    fn is_subsequence(sub: &[Action], all: &[Action]) -> bool {
        let mut it = all.iter();
        sub.iter().all(|a| it.any(|b| b == a))
    }

    #[test]
    fn insertions_keep_the_base_actions_in_order_and_only_add_extra_ones() {
        let mut changed = 0;
        for seed in 1..=200 {
            let old = base(seed, 20);
            let new = super::super::action::generate(seed, 20);
            assert!(is_subsequence(&old, &new), "seed {seed}");
            // What is not base is a scenario of the extra stream.
            let extra = new.len() - old.len();
            let mut base_left = old.iter().peekable();
            let mut inserted = 0;
            for a in &new {
                if base_left.peek() == Some(&a) {
                    base_left.next();
                } else {
                    inserted += 1;
                }
            }
            assert_eq!(inserted, extra, "seed {seed}");
            if extra == 0 {
                assert_eq!(old, new, "seed {seed}: nothing inserted, nothing changed");
            } else {
                changed += 1;
                assert!(new.iter().any(is_extra), "seed {seed}: {new:?}");
            }
        }
        // About a third of the seeds get an insertion at 20 steps; most keep their history.
        assert!((30..=110).contains(&changed), "{changed} of 200 changed");
    }

    #[test]
    fn the_seeds_the_tests_and_readme_replay_keep_their_histories() {
        // The budget of `tests/explore.rs` (seeds 1, 2 of 16 steps) and its replays of the
        // base draw (seed 8 of 20 steps, seed 4 of 30).
        for (seed, steps) in [(1, 16), (2, 16), (8, 20), (4, 30)] {
            assert_eq!(
                super::super::action::generate(seed, steps),
                base(seed, steps),
                "seed {seed}"
            );
        }
    }

    /// The histories docs/benchmarks.md's mutation rows, the coordination notes' findings and
    /// the tests replay (seed, steps) were measured before [`REJECT_STREAM`] existed: it
    /// inserts nothing into them.
    #[test]
    fn the_reject_stream_leaves_the_measured_histories_alone() {
        let measured = [
            (12, 5),
            (40, 1),
            (36, 11),
            (34, 3),
            (5, 11),
            (164, 1),
            (16, 2),
            (8, 1),
            (140, 2),
            (77, 3),
            (35, 5),
            (6, 14),
            (17, 2),
            (131, 3),
            (192, 15),
            (150, 5),
            (11, 5),
            (161, 4),
            (44, 5),
            (160, 1),
            (195, 1),
            (783, 1),
            (392, 1),
            (873, 1),
            (162, 1),
            (59, 4),
            (236, 10),
            (53, 15),
            (1, 16),
            (2, 16),
            (8, 20),
            (4, 30),
        ];
        let plain_20 = (1..=12).map(|s| (s, 20));
        for (seed, steps) in measured.into_iter().chain(plain_20) {
            let history = super::super::action::generate(seed, steps);
            assert!(
                !history.iter().any(|a| matches!(a, Action::RejectMidArm(_))),
                "seed {seed} at {steps} steps"
            );
        }
    }

    #[test]
    fn a_shorter_history_is_a_prefix_of_a_longer_one() {
        for seed in 1..=60 {
            let short = super::super::action::generate(seed, 7);
            let long = super::super::action::generate(seed, 30);
            assert_eq!(short[..], long[..short.len()], "seed {seed}");
        }
    }

    #[test]
    fn the_extra_stream_draws_every_scenario() {
        let kinds: std::collections::BTreeSet<String> = (1..=400)
            .flat_map(|s| super::super::action::generate(s, 30))
            .filter(is_extra)
            .map(|a| a.kind())
            .collect();
        for k in [
            "approve_mid_rehearsal",
            "trap_mid_rehearsal",
            "release_without",
            "stall_armed",
            "hold_across_install",
            "reject_mid_arm",
            "drain_sandbox",
            "top_up_agent",
        ] {
            assert!(kinds.contains(k), "no {k} in {kinds:?}");
        }
    }

    #[test]
    fn a_write_refused_by_a_rejected_upgrades_pause_breaks_the_rule() {
        let action = Action::RejectMidArm(2);
        let held = "upgrade 1: rejected while its arm is in flight (the watchdog accepted it): \
                    Rejected(\"x\"); remember k2: ok None";
        assert!(check(&action, held).is_ok());
        let v = check(&action, &format!("PAUSED AFTER END: {held}")).unwrap_err();
        assert_eq!(v.invariant, "writes_pause_bounded");
        // The insertion is the scenario: the rejection, then writes within the lease.
        let mut rng = Rng::new(7);
        let s = reject_scenario(&mut rng);
        assert!(matches!(s[0], Action::RejectMidArm(_)), "{s:?}");
        assert!(matches!(s[1], Action::Remember(..)) && matches!(s[3], Action::Remember(..)));
        assert!(matches!(s[2], Action::Wait(t) if t < 3600), "{s:?}");
    }

    #[test]
    fn every_dropped_export_is_required_by_the_control_plane() {
        let required = canister_api::agent::required_exports();
        for name in CONTROL_PLANE_DROPS {
            assert!(
                required.contains(&format!("canister_method {name}")),
                "{name} is not a control-plane export"
            );
        }
    }

    #[test]
    fn an_admitted_release_without_a_control_plane_export_breaks_the_rule() {
        let action = Action::ReleaseWithout("export_module");
        assert!(check(&action, "refused: propose_release: ... export_module").is_ok());
        let v = check(&action, "ok: upgrade 2 admitted without `export_module`").unwrap_err();
        assert_eq!(v.invariant, "control_plane_kept");
        let v = check(
            &Action::HoldAcrossInstall,
            "INSTALL IN FLIGHT: upgrade 1 ...",
        )
        .unwrap_err();
        assert_eq!(v.invariant, "install_drained");
        assert!(
            check(
                &Action::HoldAcrossInstall,
                "upgrade 1: a heartbeat was held"
            )
            .is_ok()
        );
    }
}
