//! The invariants of a history. Safety ([`safety`]) is checked after every step; liveness
//! ([`liveness`]) at checkpoints and at the end, after the faults stop and the operator did what
//! an operator does (start what is stopped, resume the watchdog, reject what awaits approval).
//!
//! | invariant | kind | holds when |
//! | --- | --- | --- |
//! | `no_unauthorised_change` | safety | a stranger's call of an operator, watchdog or agent-only method is refused as unauthorised and the operators, autonomy, pause flag and settings did not move |
//! | `journal_truthful` | safety | every record's state is its history's last; histories start at `Proposed`, move forward only, and end at their one terminal state; a terminal state never changes (while its journal lasts: a clean reinstall erases it); at most one upgrade is in flight; a `RolledBack` record names an incident of its upgrade; an incident's `records_lost` matches its digests and a restored incident names its rung |
//! | `acked_writes_kept` | safety, at rest | every acknowledged `remember`/`forget` of the explorer's namespace reads back, unless an incident detected after it states lost records (a count, or "unknown" for a snapshot load or clean reinstall of an uninstalled agent) |
//! | `runs_lkg_or_candidate` | safety, at rest | the agent runs the watchdog's LKG (at rest: nothing armed, no restore running, the watchdog not paused, no out-of-band install within the detection bound), or a module the operator installed out of band that the watchdog's alerts name with the operator's fix |
//! | `mutual_control` | safety | the agent's controllers hold the agent, the watchdog and the operator; the watchdog's hold the agent and the operator |
//! | `no_false_rollback` | safety | every incident belongs to an upgrade, was asked for by an operator, or follows a tampered agent (uninstalled, installed out of band), a committed bad candidate, or heartbeats that ran out of time while the agent's answers were held (a held agent looks hung) |
//! | `upgrades_end` | liveness | after healing, every upgrade is terminal and nothing is armed or being restored within [`UPGRADE_BOUND`] |
//! | `writes_resume` | liveness | a write is accepted within [`WRITE_BOUND`] (the write lease is 60 min) |
//! | `operator_methods_answer` | liveness | `configure` on the watchdog and `set_autonomy` on the agent answer Ok (no Busy) |
//! | `heartbeats_resume` | liveness | within the steady cadence's detection bound plus two steady intervals (either side's, the longer), the watchdog's last heartbeat is healthy and fresh and the agent has seen the watchdog as recently |
//! | `release_commits` | liveness, at the end | the operator's healthy release (marked as breaking the interface) commits within [`UPGRADE_BOUND`], the operator waiting out the gate and approving when asked |
//! | `runs_verified_version` | liveness | the agent runs the LKG and its health is not `unhealthy`; every incident is restored. A module the operator installed out of band is first stored as the watchdog's alert asks (`upload_wasm_chunk(Running)`, `commit_wasm(Running)`); the alert must come, and the watchdog must adopt it, within the heartbeat bound |

use super::coverage::state_name;
use super::world::{NAMESPACE, World, call};
use candid::Encode;
use canister_api::agent::WasmKind;
use canister_api::agent::{AgentError, Autonomy, HEALTH_UNHEALTHY, Health, UpgradeRecord};
use canister_api::watchdog::{
    Incident, IncidentPage, LadderStep, WatchdogConfig, WatchdogError, WatchdogStatus,
};
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::Duration;
use testbed::{operator, stranger};

/// Simulated time within which every upgrade ends once the faults stop (the arm window is
/// 10 min, probation a few minutes, the pipeline's own expiry 30 min, a restore's ladder some
/// minutes: two hours is the bound the chaos suite settles within too).
pub const UPGRADE_BOUND: Duration = Duration::from_secs(2 * 3600);
/// Simulated time within which a write is accepted once upgrades ended (the agent's write
/// lease is 60 min; 5 min of slack).
pub const WRITE_BOUND: Duration = Duration::from_secs(65 * 60);
/// How long after an out-of-band install the agent may run a module that is not the LKG (the
/// watchdog's detection: heartbeats, then canister_status).
pub const OUT_OF_BAND_GRACE: Duration = Duration::from_secs(10 * 60);

/// A broken invariant.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The invariant (the table above).
    pub invariant: String,
    /// What was seen.
    pub detail: String,
}

fn violation(invariant: &str, detail: impl Into<String>) -> Violation {
    Violation {
        invariant: invariant.into(),
        detail: detail.into(),
    }
}

fn short(hash: &[u8]) -> String {
    hex::encode(&hash[..hash.len().min(6)])
}

/// The watchdog's incidents, if it answers.
pub fn incidents(w: &World) -> Option<Vec<Incident>> {
    let mut all = vec![];
    let mut from = 0u64;
    loop {
        let page: IncidentPage = call(
            &w.tb,
            w.tb.watchdog,
            stranger(),
            "incidents",
            Encode!(&from, &u32::MAX).expect("encode"),
            true,
        )
        .ok()?;
        all.extend(page.incidents);
        match page.next_from {
            Some(next) => from = next,
            None => return Some(all),
        }
    }
}

/// The pipeline rank of a state (terminal states, `Committed` included, rank last).
fn rank(state: &str) -> usize {
    let chain = super::coverage::CHAIN;
    chain
        .iter()
        .position(|s| *s == state)
        .filter(|&i| i + 1 < chain.len())
        .unwrap_or(usize::MAX)
}

/// What the IC's reject says when a bounded-wait call ran out of time (SYS_UNKNOWN at the
/// deadline), as an incident's cause quotes it.
const HEARTBEAT_RAN_OUT: &str = "Call deadline has expired";

/// The journal and the incident log tell the truth (and `records` feed the coverage).
fn journal(
    w: &mut World,
    records: &[UpgradeRecord],
    incidents: Option<&[Incident]>,
) -> Result<(), Violation> {
    let fail = |d: String| Err(violation("journal_truthful", d));
    let in_flight: Vec<u64> = records
        .iter()
        .filter(|r| !r.state.is_terminal())
        .map(|r| r.id)
        .collect();
    if in_flight.len() > 1 {
        return fail(format!("several upgrades in flight: {in_flight:?}"));
    }
    forget_erased_journal(w, incidents, records);
    for r in records {
        let id = r.id;
        let now = state_name(&r.state);
        let names: Vec<String> = r.history.iter().map(|t| state_name(&t.state)).collect();
        if names.first().map(String::as_str) != Some("Proposed") {
            return fail(format!(
                "upgrade {id}'s history does not start at Proposed: {names:?}"
            ));
        }
        if r.history.last().map(|t| &t.state) != Some(&r.state) {
            return fail(format!("upgrade {id} is {now}, its history ends {names:?}"));
        }
        if r.history.windows(2).any(|p| p[1].at < p[0].at) {
            return fail(format!("upgrade {id}'s history goes back in time"));
        }
        let terminals = r.history.iter().filter(|t| t.state.is_terminal()).count();
        if terminals > usize::from(r.state.is_terminal()) {
            return fail(format!("upgrade {id} left a terminal state: {names:?}"));
        }
        let ranks: Vec<usize> = names.iter().map(|n| rank(n)).collect();
        if ranks.windows(2).any(|p| p[1] < p[0]) {
            return fail(format!("upgrade {id} moved backwards: {names:?}"));
        }
        // After the watchdog was uninstalled (and reinstalled by the agent), the outcomes it
        // had decided are gone: an older snapshot of the agent that still holds the upgrade in
        // flight ends it again with the restore's reason, the same end in other words (found by
        // the explorer: seed 44 at 25 steps). The end itself must never change.
        let variant = |s: &str| s.split('(').next().unwrap_or_default().to_string();
        let now_state = format!("{:?}", r.state);
        if let Some(seen) = w.terminal.get(&id)
            && *seen != now_state
            && !(w.watchdog_erased && variant(seen) == variant(&now_state))
        {
            return fail(format!("upgrade {id} was {seen}, is now {:?}", r.state));
        }
        if r.state.is_terminal() {
            w.terminal.insert(id, format!("{:?}", r.state));
        }
        // Checked once, while the incident exists: a watchdog that was uninstalled and
        // reinstalled by the agent has an empty incident log and numbers incidents from 1 again
        // (found by the explorer: seed 44).
        if let (canister_api::agent::UpgradeState::RolledBack(reason), Some(incidents)) =
            (&r.state, incidents)
            && !w.rollback_named.contains(&id)
        {
            let named = incidents.iter().any(|i| {
                i.upgrade_id == Some(id) && reason.contains(&format!("incident {}", i.id))
            });
            if named {
                w.rollback_named.insert(id);
            } else {
                return fail(format!(
                    "upgrade {id} RolledBack names no incident of it: {reason}"
                ));
            }
        }
    }
    // A restore outside an upgrade that nobody asked for needs a reason: the agent's code was
    // tampered with (uninstalled, installed out of band), a bad candidate was committed (one
    // that fails after its probation), or the agent looked hung: its answers were held and the
    // heartbeats ran out of time, which the watchdog cannot tell from a hung agent (README,
    // failure table). An operator's stop, a network fault (a lost response, a full queue) or a
    // held call of another canister is not one (issue 12 item 10).
    let bad_committed = records.iter().any(|r| {
        matches!(r.state, canister_api::agent::UpgradeState::Committed)
            && w.bad_modules.contains(&r.candidate_hash)
    });
    for i in incidents.unwrap_or_default() {
        let asked = i.cause.starts_with("operator ");
        let looked_hung = i.cause.contains(HEARTBEAT_RAN_OUT) && w.agent_held_at(i.detected_at);
        if i.upgrade_id.is_none() && !asked && !w.agent_tampered && !bad_committed && !looked_hung {
            return Err(violation(
                "no_false_rollback",
                format!(
                    "incident {} restores a version nobody broke: {} (ladder {:?})",
                    i.id, i.cause, i.ladder_step
                ),
            ));
        }
    }
    for i in incidents.unwrap_or_default() {
        if i.restored_at.is_some() && i.ladder_step.is_none() {
            return fail(format!("incident {} restored without a rung", i.id));
        }
        if let (Some(b), Some(a), Some(lost)) = (&i.digest_before, &i.digest_after, i.records_lost)
            && b.records_missing_in(a) != lost
        {
            return fail(format!(
                "incident {} says {lost} records lost, its digests say {}",
                i.id,
                b.records_missing_in(a)
            ));
        }
    }
    Ok(())
}

/// A clean reinstall (the `Reinstall` rung) erases the agent's journal, as its incident says,
/// and the agent numbers its upgrades from 1 again: the terminal states seen before it belong to
/// records that no longer exist, and a new upgrade that reuses an id is not the old one
/// changing its end (found by the explorer, seed 12). A snapshot load (the `Snapshot` rung, an
/// operator's or the ladder's) puts back an older journal the same way: the records newer than
/// the snapshot are gone and their ids are numbered again (seed 44 at 25 steps). So after each
/// restore that replaced stable memory, the terminal states of ids the journal no longer holds
/// are forgotten. Restores are told apart by when they finished: a watchdog reinstalled by the
/// agent numbers its incidents from 1 again. While the watchdog does not answer, nothing is
/// forgotten.
fn forget_erased_journal(w: &mut World, incidents: Option<&[Incident]>, records: &[UpgradeRecord]) {
    let newest = incidents
        .unwrap_or_default()
        .iter()
        .filter(|i| {
            matches!(
                i.ladder_step,
                Some(LadderStep::Reinstall | LadderStep::Snapshot)
            )
        })
        .filter_map(|i| i.restored_at)
        .max();
    if newest > w.journal_erased_at {
        let held: BTreeSet<u64> = records.iter().map(|r| r.id).collect();
        w.terminal.retain(|id, _| held.contains(id));
        w.rollback_named.retain(|id| held.contains(id));
        w.journal_erased_at = newest;
    }
}

/// Whether an incident states a loss of records: a count above zero, or a restore that replaced
/// the agent's stable memory (an older snapshot, a clean reinstall) and says the count is
/// unknown. The count is unknown when nobody could take it: an uninstall destroyed the state
/// first (found by the explorer: seeds 4 and 7 with the Reinstall rung, seed 8 with the
/// Snapshot rung), or outside an upgrade the agent took writes while the ladder ran and did not
/// answer right before the rung (seed 16). "Unknown" is the truth there, not a hole.
fn states_loss(i: &Incident) -> bool {
    match i.records_lost {
        Some(n) => n > 0,
        None => {
            i.restored_at.is_some()
                && matches!(
                    i.ladder_step,
                    Some(LadderStep::Reinstall | LadderStep::Snapshot)
                )
                && i.data_lost.contains("unknown")
        }
    }
}

/// Acknowledged writes read back, unless an incident restored after the write states a loss
/// (a write the agent took while the ladder ran is lost by the rung, not by the detection).
/// An excused loss is noted and the model follows the agent.
fn acked_writes(w: &mut World, incidents: &[Incident]) -> Result<(), Violation> {
    let Some(facts) = w.facts() else {
        return Ok(());
    };
    let mut diverged = vec![];
    for (key, acked) in &w.acked {
        let now = facts.get(key);
        if now != acked.value.as_ref() {
            diverged.push((key.clone(), acked.clone(), now.cloned()));
        }
    }
    for (key, acked, now) in diverged {
        let excuse = incidents
            .iter()
            .find(|i| i.restored_at.is_some_and(|r| r >= acked.at) && states_loss(i));
        match excuse {
            Some(i) => {
                let count = i
                    .records_lost
                    .map_or("an unknown number of".to_string(), |n| n.to_string());
                w.excused.push(format!(
                    "{NAMESPACE}/{key}: acknowledged {:?}, reads {now:?}; incident {} states {count} record(s) lost",
                    acked.value,
                    i.id,
                ));
                match now {
                    Some(v) => w.acked.insert(
                        key,
                        super::world::Acked {
                            value: Some(v),
                            at: acked.at,
                        },
                    ),
                    None => w.acked.remove(&key),
                };
            }
            None => {
                return Err(violation(
                    "acked_writes_kept",
                    format!(
                        "{NAMESPACE}/{key}: acknowledged {:?} at {} s, reads {now:?}; no incident states a loss",
                        acked.value,
                        acked.at / 1_000_000_000
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn mutual_control(w: &World) -> Result<(), Violation> {
    let tb = &w.tb;
    let agent = tb.sim.get_controllers(tb.agent);
    let wd = tb.sim.get_controllers(tb.watchdog);
    let ok = agent.contains(&tb.agent)
        && agent.contains(&tb.watchdog)
        && agent.contains(&operator())
        && wd.contains(&tb.agent)
        && wd.contains(&operator());
    if ok {
        Ok(())
    } else {
        let names = |ps: &[candid::Principal]| {
            ps.iter()
                .map(|p| match *p {
                    p if p == tb.agent => "agent".to_string(),
                    p if p == tb.watchdog => "watchdog".to_string(),
                    p if p == operator() => "operator".to_string(),
                    p => p.to_text(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(violation(
            "mutual_control",
            format!(
                "agent controllers [{}], watchdog controllers [{}]",
                names(&agent),
                names(&wd)
            ),
        ))
    }
}

/// The safety invariants after a step whose result was `result`.
pub fn safety(w: &mut World, result: &str) -> Result<(), Violation> {
    if result.starts_with("UNAUTHORISED CHANGE") {
        return Err(violation("no_unauthorised_change", result));
    }
    if result.starts_with("STALE PARENT") {
        return Err(violation("journal_truthful", result));
    }
    let records = w.records();
    let incidents = incidents(w);
    if let Some(records) = &records {
        w.coverage
            .observe(records, incidents.as_deref().unwrap_or_default());
        journal(w, records, incidents.as_deref())?;
    }
    let status = w.watchdog_status();
    let all_terminal = records
        .as_ref()
        .is_some_and(|r| r.iter().all(|r| r.state.is_terminal()));
    let at_rest = all_terminal
        && status
            .as_ref()
            .is_some_and(|s| s.armed.is_none() && s.restore.is_none() && !s.paused);
    // A candidate may change controllers while on probation (the watchdog then fails it):
    // control is checked at rest.
    if at_rest {
        mutual_control(w)?;
        acked_writes(w, incidents.as_deref().unwrap_or_default())?;
        let grace = w
            .out_of_band_at
            .is_some_and(|t| w.now().saturating_sub(t) < OUT_OF_BAND_GRACE.as_nanos() as u64);
        let module = w.tb.agent_module();
        let reported = |module: &[u8]| {
            w.installed_out_of_band.contains(module)
                && status
                    .as_ref()
                    .is_some_and(|s| names_foreign_module(s, module))
        };
        let lkg = status
            .as_ref()
            .and_then(|s| s.lkg.as_ref())
            .map(|l| l.hash.clone());
        if let (Some(lkg), Some(module)) = (lkg, module)
            && lkg != module
            && !grace
            && !reported(&module)
        {
            return Err(violation(
                "runs_lkg_or_candidate",
                format!(
                    "at rest the agent runs {}, the watchdog's LKG is {}{}",
                    short(&module),
                    short(&lkg),
                    if w.installed_out_of_band.contains(&module) {
                        "; installed out of band, and the watchdog's alerts do not name it"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// Whether the watchdog's alerts name `module` as installed outside the pipeline, with the
/// operator's fix (store it on the agent as its running module).
fn names_foreign_module(status: &WatchdogStatus, module: &[u8]) -> bool {
    let hash = hex::encode(module);
    status.alerts.iter().any(|a| {
        a.contains(&hash) && a.contains("installed outside the pipeline") && a.contains("Running")
    })
}

/// After an out-of-band install of a module the agent never stored, the operator does what the
/// watchdog's alert says (README, "Handback"): stores the module the agent runs with
/// `upload_wasm_chunk(Running, ..)` and `commit_wasm(Running, sha256)`; the watchdog then adopts
/// it as the LKG. Fails `runs_verified_version` when the alert does not come within `bound`, the
/// agent refuses the module, or the watchdog does not adopt it within `bound`.
fn store_out_of_band_module(w: &mut World, bound: Duration) -> Result<(), Violation> {
    let Some(module) = w.tb.agent_module() else {
        return Ok(());
    };
    let lkg = w.watchdog_status().and_then(|s| s.lkg).map(|l| l.hash);
    if !w.installed_out_of_band.contains(&module) || lkg.as_ref() == Some(&module) {
        return Ok(());
    }
    let fail = |detail: String| {
        Err(violation(
            "runs_verified_version",
            format!(
                "the agent runs {}, installed out of band: {detail}",
                short(&module)
            ),
        ))
    };
    if !run_until(w, bound, |w| {
        w.watchdog_status()
            .is_some_and(|s| names_foreign_module(&s, &module))
    }) {
        let alerts = w.watchdog_status().map(|s| s.alerts);
        return fail(format!(
            "the watchdog's alerts do not name it within {} s: {alerts:?}",
            bound.as_secs()
        ));
    }
    let Some(bytes) = w.modules.get(&module).cloned() else {
        return fail("the explorer does not know its bytes".into());
    };
    if let Err(e) = w.upload_and_commit(WasmKind::Running, &bytes) {
        return fail(format!(
            "the operator's commit_wasm(Running) was refused: {e}"
        ));
    }
    let adopted = run_until(w, bound, |w| {
        w.watchdog_status()
            .and_then(|s| s.lkg)
            .is_some_and(|l| l.hash == module)
    });
    if !adopted {
        let status = w
            .watchdog_status()
            .map(|s| (s.lkg.map(|l| short(&l.hash)), s.alerts));
        return fail(format!(
            "stored on the agent, not adopted by the watchdog within {} s: (LKG, alerts) {status:?}",
            bound.as_secs()
        ));
    }
    w.operator_steps.push(format!(
        "the operator stored the module installed out of band ({}) as the agent's running \
         module, as the watchdog's alert asked; the watchdog adopted it as the LKG",
        short(&module)
    ));
    Ok(())
}

/// Runs the subnet in 10 s steps until `done` or `limit`; answers whether `done` held. Also
/// stops (answering `false`, with [`World::out_of_time`] set) when the history's wall-time
/// bound strikes; the caller's verdict is then void.
fn run_until(w: &mut World, limit: Duration, mut done: impl FnMut(&mut World) -> bool) -> bool {
    let start = w.now();
    loop {
        if done(w) {
            return true;
        }
        if w.now() - start >= limit.as_nanos() as u64 || w.past_deadline() {
            return false;
        }
        w.run_for(Duration::from_secs(10));
    }
}

/// The release the final check proposes: the healthy chaos build stamped `explore-final` (a
/// module no history proposes before).
fn final_release() -> Vec<u8> {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES
        .get_or_init(|| {
            testbed::release(&testbed::chaos_candidate("none"), "explore-final", (1, 3))
        })
        .clone()
}

/// After a history, the operator's release of a healthy module still commits (the operator
/// waits out the gate's rate limit and approves it if autonomy asks for that). The release says
/// it breaks the interface, as the agent may have added methods to itself.
fn release_commits(w: &mut World) -> Result<(), Violation> {
    let bytes = final_release();
    let fail = |d: String| Err(violation("release_commits", d));
    let mut proposed = None;
    let mut last = String::new();
    for _ in 0..3 {
        match w.propose(&bytes, true) {
            Ok(r) => {
                proposed = Some(r.id);
                break;
            }
            Err(e) if e.contains("rate limited") || e.contains("in flight") => {
                let secs = e
                    .split("retry in ")
                    .nth(1)
                    .and_then(|t| t.split(' ').next())
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(600);
                w.tb.sim.advance_time(Duration::from_secs(secs + 1));
                w.run_for(Duration::from_secs(10));
                last = e;
            }
            Err(e) => return fail(format!("the healthy release was refused: {e}")),
        }
    }
    let Some(id) = proposed else {
        return fail(format!("the healthy release was never admitted: {last}"));
    };
    let ended = run_until(w, UPGRADE_BOUND, |w| {
        let Some(r) = w.records().and_then(|r| r.into_iter().find(|r| r.id == id)) else {
            return false;
        };
        if matches!(
            r.state,
            canister_api::agent::UpgradeState::Rehearsed
                | canister_api::agent::UpgradeState::Validated
        ) {
            let _ = call::<Result<UpgradeRecord, AgentError>>(
                &w.tb,
                w.tb.agent,
                operator(),
                "approve_upgrade",
                Encode!(&id).expect("encode"),
                false,
            );
        }
        r.state.is_terminal()
    });
    let state = w
        .records()
        .and_then(|r| r.into_iter().find(|r| r.id == id))
        .map(|r| r.state);
    match state {
        Some(canister_api::agent::UpgradeState::Committed) if ended => Ok(()),
        other => fail(format!(
            "the healthy release (upgrade {id}) did not commit within {} s: {other:?}",
            UPGRADE_BOUND.as_secs()
        )),
    }
}

/// [`liveness`], then (at the end of a history) the operator's healthy release must commit.
pub fn final_liveness(w: &mut World) -> Result<(), Violation> {
    liveness(w)?;
    release_commits(w)?;
    liveness(w)
}

/// Heals (faults off, everything started, the watchdog resumed, pending approvals rejected) and
/// checks the liveness invariants; then safety at rest.
pub fn liveness(w: &mut World) -> Result<(), Violation> {
    w.clear_faults();
    let tb = &w.tb;
    for c in [tb.agent, tb.watchdog, tb.staging] {
        let _ = tb.sim.start_canister(c, Some(operator()));
    }
    let _ = call::<Result<(), WatchdogError>>(
        tb,
        tb.watchdog,
        operator(),
        "resume",
        Encode!().expect("encode"),
        false,
    );

    let ended = run_until(w, UPGRADE_BOUND, |w| {
        let Some(records) = w.records() else {
            return false;
        };
        // An upgrade that waits for an operator's approval: the operator says no.
        let manual = w.config().is_some_and(|c| c.autonomy != Autonomy::Auto);
        for r in records.iter().filter(|r| !r.state.is_terminal()) {
            let waits = matches!(r.state, canister_api::agent::UpgradeState::Rehearsed)
                || (manual && matches!(r.state, canister_api::agent::UpgradeState::Validated));
            if waits {
                let _ = call::<Result<UpgradeRecord, AgentError>>(
                    &w.tb,
                    w.tb.agent,
                    operator(),
                    "reject_upgrade",
                    Encode!(&r.id, &"checkpoint: the operator declines").expect("encode"),
                    false,
                );
            }
        }
        records.iter().all(|r| r.state.is_terminal())
            && w.watchdog_status()
                .is_some_and(|s| s.armed.is_none() && s.restore.is_none())
    });
    if !ended {
        let records: Vec<String> = w
            .records()
            .unwrap_or_default()
            .iter()
            .filter(|r| !r.state.is_terminal())
            .map(|r| format!("upgrade {} {:?}", r.id, r.state))
            .collect();
        let status = w
            .watchdog_status()
            .map(|s| (s.armed.map(|a| a.phase), s.restore));
        return Err(violation(
            "upgrades_end",
            format!(
                "{} s after healing: in flight {records:?}; watchdog (armed, restore) {status:?}; agent runs {:?}",
                UPGRADE_BOUND.as_secs(),
                w.tb.agent_module().map(|m| short(&m))
            ),
        ));
    }

    let mut n = 0u32;
    let mut last = String::new();
    let written = run_until(w, WRITE_BOUND, |w| {
        n += 1;
        let key = format!("live-{}", w.now() / 1_000_000_000);
        let fact = canister_api::agent::Fact {
            namespace: NAMESPACE.into(),
            key: key.clone(),
            value: format!("{n}"),
        };
        match call::<Result<Option<String>, AgentError>>(
            &w.tb,
            w.tb.agent,
            operator(),
            "remember",
            Encode!(&fact).expect("encode"),
            false,
        ) {
            Ok(Ok(_)) => {
                let at = w.now();
                w.acked.insert(
                    key,
                    super::world::Acked {
                        value: Some(fact.value),
                        at,
                    },
                );
                true
            }
            other => {
                last = format!("{other:?}");
                false
            }
        }
    });
    if !written {
        return Err(violation(
            "writes_resume",
            format!("no write accepted for {} s: {last}", WRITE_BOUND.as_secs()),
        ));
    }

    let config = w.watchdog_status().map(|s| s.config).unwrap_or_default();
    let configured = call::<Result<WatchdogConfig, WatchdogError>>(
        &w.tb,
        w.tb.watchdog,
        operator(),
        "configure",
        Encode!(&config).expect("encode"),
        false,
    );
    let autonomy = w.config().map(|c| c.autonomy).unwrap_or(Autonomy::Auto);
    let set = call::<Result<(), AgentError>>(
        &w.tb,
        w.tb.agent,
        operator(),
        "set_autonomy",
        Encode!(&autonomy).expect("encode"),
        false,
    );
    if !matches!(configured, Ok(Ok(_))) || !matches!(set, Ok(Ok(()))) {
        return Err(violation(
            "operator_methods_answer",
            format!("watchdog configure: {configured:?}; agent set_autonomy: {set:?}"),
        ));
    }

    // Healed, the watchdog may be at either cadence (a steady one once the agent has been
    // healthy for a while): the bound and the freshness are those of the steady cadence,
    // whose interval is never shorter than the fast one.
    let agent_beat = w
        .config()
        .and_then(|c| c.supervision)
        .unwrap_or_default()
        .beat();
    let steady = config
        .steady_interval_secs()
        .max(agent_beat.steady_interval_secs());
    let bound = Duration::from_secs(
        config
            .steady_detection_bound_secs()
            .max(agent_beat.steady_bound_secs())
            + 2 * steady,
    );
    let healed_at = w.now();
    let fresh = |w: &mut World| {
        let interval = 3 * steady * 1_000_000_000;
        let wd = w.watchdog_status().and_then(|s| s.last_heartbeat);
        let health: Option<Health> = w.tb.try_health().ok();
        let seen = health.and_then(|h| h.watchdog).and_then(|v| v.last_seen);
        wd.is_some_and(|h| h.healthy && h.at >= healed_at && w.now() - h.at <= interval)
            && seen.is_some_and(|t| t >= healed_at)
    };
    if !run_until(w, bound, fresh) {
        let wd = w.watchdog_status().and_then(|s| s.last_heartbeat);
        let seen = w.tb.try_health().ok().and_then(|h| h.watchdog);
        return Err(violation(
            "heartbeats_resume",
            format!(
                "{} s after healing: the watchdog's last heartbeat {wd:?}; the agent's view {seen:?}",
                bound.as_secs()
            ),
        ));
    }

    store_out_of_band_module(w, bound)?;

    let lkg = w.watchdog_status().and_then(|s| s.lkg).map(|l| l.hash);
    let module = w.tb.agent_module();
    let health = w.tb.try_health();
    let unrestored: Vec<u64> = incidents(w)
        .unwrap_or_default()
        .iter()
        .filter(|i| i.restored_at.is_none())
        .map(|i| i.id)
        .collect();
    let healthy = health.as_ref().is_ok_and(|h| h.status != HEALTH_UNHEALTHY);
    if lkg.is_none() || lkg != module || !healthy || !unrestored.is_empty() {
        return Err(violation(
            "runs_verified_version",
            format!(
                "runs {:?}, LKG {:?}, health {:?}, unrestored incidents {unrestored:?}",
                module.map(|m| short(&m)),
                lkg.map(|m| short(&m)),
                health.map(|h| h.status).map_err(|e| e.reject_message)
            ),
        ));
    }
    w.out_of_band_at = None;
    safety(w, "")
}
