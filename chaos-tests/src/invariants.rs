//! The invariants every scenario must leave intact, checked after the system settled:
//!
//! | invariant | holds when |
//! | --- | --- |
//! | `ran_to_the_end` | nothing panicked: not the injection, not the settling |
//! | `fault_took_effect` | the run shows the fault the scenario injects: it checked at least one trace of it and every trace it checked was there (see `Run::not_shown`), and a refused run checked the typed reason of its refusal |
//! | `outcome_allowed` | the upgrade ended in one of the scenario's allowed outcomes |
//! | `runs_verified_version` | the agent runs the watchdog's LKG, which is the candidate if committed and the version before otherwise, and answers `health` healthy |
//! | `state_preserved` | the state digest equals the one before the fault, or the scenario allows a loss and the incidents state exactly that loss |
//! | `journal_truthful` | the upgrade's record ends in the state the outcome says; every incident is restored, names its rung, and its `records_lost` matches its digests |
//! | `journal_settled` | every record of the journal is terminal and `health` shows no upgrade in flight |
//! | `watchdog_alive` | the watchdog runs the module the agent stores for it, answers `status`, and heartbeats the agent healthy (within three intervals of the cadence it reports) |
//! | `controllers_intact` | every canister has exactly the controllers of DESIGN.md: agent {agent, watchdog, operator}, watchdog {agent, operator}, staging {agent, operator}, staging's sandbox {staging, sandbox}, the stand-in LLM {operator} |
//! | `no_pause_left` | the agent pauses no writes, the watchdog's supervision is not paused, nothing is armed, no restore runs |
//! | `writes_resumed` | a write of every kind the agent pauses works again ([`crate::writes`]) |
//!
//! Every reading goes through the testbed's `try_` helpers: a canister that does not answer
//! fails the invariants that need it, with the reject as the detail.

use crate::report::{Check, Outcome, Report, secs};
use crate::{Run, Scenario};
use candid::{Encode, Principal};
use canister_api::agent::{HEALTH_UNHEALTHY, Health, UpgradeRecord, UpgradeState};
use canister_api::cadence::Cadence;
use canister_api::watchdog::{Incident, WatchdogStatus};
use testbed::{CallError, Testbed};

fn verdict(name: &'static str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name,
        ok,
        detail: detail.into(),
    }
}

/// The check `name` from the problems found: it holds when there are none, and then says
/// `all_clear`; otherwise its detail lists them.
fn verdict_of(name: &'static str, problems: Vec<String>, all_clear: impl Into<String>) -> Check {
    if problems.is_empty() {
        verdict(name, true, all_clear)
    } else {
        verdict(name, false, problems.join("; "))
    }
}

fn short(hash: &[u8]) -> String {
    hex::encode(&hash[..hash.len().min(6)])
}

/// The outcome of the run, from the journal (`rec`, the scenario's upgrade) and the module
/// running now.
fn outcome(run: &Run, rec: Option<&UpgradeRecord>, incidents: &[Incident]) -> Outcome {
    if run.refused.is_some() {
        return Outcome::Rejected;
    }
    let Some(rec) = rec else {
        return Outcome::Rejected;
    };
    match rec.state {
        UpgradeState::Committed => {
            // Committed, then failed and restored to a version before it: rolled back.
            if incidents.iter().any(|i| i.restored_at.is_some())
                && run.tb.agent_module().as_ref() != Some(&rec.candidate_hash)
            {
                Outcome::RolledBack
            } else {
                Outcome::Committed
            }
        }
        UpgradeState::RolledBack(_) => Outcome::RolledBack,
        UpgradeState::Rejected(_) => Outcome::Rejected,
        _ => Outcome::Failed,
    }
}

/// What the invariants read, each as answered or the reason it was not.
struct Seen {
    rec: Option<Result<UpgradeRecord, String>>,
    incidents: Result<Vec<Incident>, String>,
    status: Result<WatchdogStatus, String>,
    health: Result<Health, String>,
}

fn text<T>(r: Result<T, CallError>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

/// Checks every invariant of `run` and builds its report. Reads the system with `try_`
/// helpers only: a broken system fails checks, it does not panic.
pub fn check(scenario: &Scenario, seed: u64, run: &Run) -> Report {
    let tb = &run.tb;
    let seen = Seen {
        rec: run.upgrade.map(|id| {
            tb.try_record(id)
                .ok_or_else(|| format!("the agent does not answer upgrade_status({id})"))
        }),
        incidents: text(tb.try_incidents()),
        status: text(tb.try_watchdog_status()),
        health: text(tb.try_health_call()),
    };
    let incidents = seen.incidents.clone().unwrap_or_default();
    let rec = seen.rec.as_ref().and_then(|r| r.as_ref().ok());
    let outcome = outcome(run, rec, &incidents);
    let expected = match (outcome, rec) {
        (Outcome::Committed, Some(r)) => r.candidate_hash.clone(),
        _ => run.parent.clone(),
    };
    let module = tb.agent_module().unwrap_or_default();
    let after = text(tb.try_digest());
    let lost = after
        .as_ref()
        .map_or(0, |after| run.before.records_missing_in(after));

    let checks = vec![
        verdict(
            "ran_to_the_end",
            run.panicked.is_none(),
            run.panicked.clone().unwrap_or_else(|| "no panic".into()),
        ),
        fault_took_effect(run, outcome),
        verdict(
            "outcome_allowed",
            scenario.allowed.contains(&outcome),
            format!(
                "{} (allowed: {})",
                outcome.name(),
                scenario
                    .allowed
                    .iter()
                    .map(|o| o.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        runs_verified_version(&seen, &module, &expected),
        state_preserved(scenario, run, &seen, &after, lost),
        journal(&seen, rec, outcome, &incidents),
        journal_settled(tb, &seen),
        watchdog_alive(tb, &seen),
        controllers_intact(tb),
        no_pause_left(&seen),
        {
            let failed = crate::writes::failures(tb);
            verdict(
                "writes_resumed",
                failed.is_empty(),
                if failed.is_empty() {
                    format!("{} kinds of write work", crate::writes::PROBES.len())
                } else {
                    failed.join("; ")
                },
            )
        },
    ];

    let first = incidents.first();
    let detect_secs = match (run.fault_at, first) {
        (Some(at), Some(i)) if i.detected_at >= at => Some(secs(i.detected_at - at)),
        _ => None,
    };
    let restore_secs = first.and_then(|i| i.restored_at.map(|r| secs(r - i.detected_at)));
    let mut notes = run.notes.clone();
    if let Some(r) = &run.refused {
        notes.push(format!("refused: {r}"));
    }
    if let Some(r) = rec {
        notes.push(format!("upgrade {}: {:?}", r.id, r.state));
    }
    for i in &incidents {
        notes.push(format!(
            "incident {}: {} -> {:?}; data lost: {}",
            i.id, i.cause, i.ladder_step, i.data_lost
        ));
    }
    let passed = checks.iter().all(|c| c.ok);
    Report {
        scenario: scenario.name.to_string(),
        seed,
        outcome,
        data_lost: lost,
        detect_secs,
        restore_secs,
        final_module_hash: hex::encode(&module),
        expected_module_hash: hex::encode(&expected),
        checks,
        passed,
        notes,
        wall_ms: 0,
        trace: run.tb.sim.trace_digest(),
    }
}

/// The scenario proved its fault struck: it checked a trace and found every one it checked;
/// a refusal was checked for its reason.
fn fault_took_effect(run: &Run, outcome: Outcome) -> Check {
    let problem = if let Some(why) = &run.not_shown {
        Some(why.clone())
    } else if run.traces_checked == 0 {
        Some("the scenario checked no trace of its fault: it could pass without it".into())
    } else if outcome == Outcome::Rejected && !run.refusal_checked {
        Some(format!(
            "rejected, but the scenario never checked why ({})",
            run.refused
                .as_ref()
                .map_or("no refusal recorded".into(), |r| r.to_string())
        ))
    } else {
        None
    };
    verdict(
        "fault_took_effect",
        problem.is_none(),
        problem.unwrap_or_else(|| format!("shown ({} traces checked)", run.traces_checked)),
    )
}

fn runs_verified_version(seen: &Seen, module: &[u8], expected: &[u8]) -> Check {
    let lkg = seen
        .status
        .as_ref()
        .ok()
        .and_then(|s| s.lkg.as_ref().map(|l| l.hash.clone()));
    let healthy = seen
        .health
        .as_ref()
        .is_ok_and(|h| h.status != HEALTH_UNHEALTHY);
    verdict(
        "runs_verified_version",
        module == expected && lkg.as_deref() == Some(module) && healthy,
        format!(
            "runs {}, expected {}, watchdog LKG {}, health {}",
            short(module),
            short(expected),
            match (&seen.status, &lkg) {
                (Err(e), _) => e.clone(),
                (Ok(_), None) => "none".into(),
                (Ok(_), Some(l)) => short(l),
            },
            match &seen.health {
                Ok(h) => h.status.clone(),
                Err(e) => e.clone(),
            }
        ),
    )
}

fn state_preserved(
    scenario: &Scenario,
    run: &Run,
    seen: &Seen,
    after: &Result<canister_api::agent::StateDigest, String>,
    lost: u64,
) -> Check {
    let Ok(after) = after else {
        return verdict(
            "state_preserved",
            false,
            format!(
                "no state digest: {}",
                after.as_ref().err().cloned().unwrap_or_default()
            ),
        );
    };
    let incidents = seen.incidents.as_deref().unwrap_or_default();
    let stated: u64 = incidents.iter().filter_map(|i| i.records_lost).sum();
    let ok = if lost == 0 && after.same_state(&run.before) {
        true
    } else {
        scenario.loss_allowed && seen.incidents.is_ok() && stated == lost
    };
    verdict(
        "state_preserved",
        ok,
        format!(
            "{} tasks, {} facts before; {} and {} after; {lost} records lost, incidents state {stated}",
            run.before.tasks, run.before.facts, after.tasks, after.facts
        ),
    )
}

/// Every upgrade of the journal ended, and the agent has none in flight.
fn journal_settled(tb: &Testbed, seen: &Seen) -> Check {
    let mut problems = vec![];
    match tb.try_journal() {
        Ok(records) => problems.extend(
            records
                .iter()
                .filter(|r| !r.state.is_terminal())
                .map(|r| format!("upgrade {} is {:?}", r.id, r.state)),
        ),
        Err(e) => problems.push(format!("no journal: {e}")),
    }
    match &seen.health {
        Ok(h) => {
            if let Some(id) = h.upgrade_in_flight {
                problems.push(format!("health shows upgrade {id} in flight"));
            }
        }
        Err(e) => problems.push(format!("no health: {e}")),
    }
    verdict_of(
        "journal_settled",
        problems,
        "every upgrade ended".to_string(),
    )
}

fn watchdog_alive(tb: &Testbed, seen: &Seen) -> Check {
    // The testbed installs and stores the same watchdog build.
    let stored_watchdog = testbed::sha256(&testbed::wasm("watchdog"));
    let wd_module = tb.watchdog_module();
    let status = match &seen.status {
        Ok(s) => s,
        Err(e) => {
            return verdict(
                "watchdog_alive",
                false,
                format!(
                    "module {}, status: {e}",
                    wd_module.as_deref().map_or("none".into(), short)
                ),
            );
        }
    };
    let beat = status.last_heartbeat.clone();
    // Fresh for the cadence the watchdog reports (at rest, the steady one: a heartbeat every
    // `steady_interval_secs`).
    let interval = status
        .config
        .beat()
        .interval_of(status.cadence.unwrap_or(Cadence::Fast));
    let fresh = beat.as_ref().is_some_and(|h| {
        h.healthy && tb.now_nanos().saturating_sub(h.at) <= 3 * interval * 1_000_000_000
    });
    verdict(
        "watchdog_alive",
        fresh && wd_module.as_ref() == Some(&stored_watchdog),
        format!(
            "module {}, last heartbeat {:?}",
            wd_module.as_deref().map_or("none".into(), short),
            beat.map(|h| (h.healthy, h.detail))
        ),
    )
}

/// The controllers every canister of the deployment must have, exactly (DESIGN.md,
/// Controllers): `(canister, its name, its controllers)`.
pub fn expected_controllers(tb: &Testbed) -> Vec<(Principal, &'static str, Vec<Principal>)> {
    let op = tb.operator;
    let mut expected = vec![
        (tb.agent, "agent", vec![tb.agent, tb.watchdog, op]),
        (tb.watchdog, "watchdog", vec![tb.agent, op]),
        (tb.staging, "staging", vec![tb.agent, op]),
    ];
    let sandbox = tb
        .try_query::<Option<Principal>>(
            tb.staging,
            testbed::stranger(),
            "sandbox",
            Encode!().expect("encode"),
        )
        .ok()
        .flatten();
    if let Some(sandbox) = sandbox {
        expected.push((sandbox, "sandbox", vec![tb.staging, sandbox]));
    }
    if let Some(llm) = tb.llm {
        expected.push((llm, "llm", vec![op]));
    }
    expected
}

/// Every canister has exactly the controllers of DESIGN.md: none missing (operators
/// included), none added.
fn controllers_intact(tb: &Testbed) -> Check {
    let mut ok = true;
    let mut parts = vec![];
    for (canister, name, want) in expected_controllers(tb) {
        let mut have = tb.sim.get_controllers(canister);
        let mut want = want;
        have.sort();
        have.dedup();
        want.sort();
        want.dedup();
        if have != want {
            ok = false;
            parts.push(format!(
                "{name} [{}], expected [{}]",
                names(tb, &have),
                names(tb, &want)
            ));
        } else {
            parts.push(format!("{name} [{}]", names(tb, &have)));
        }
    }
    verdict("controllers_intact", ok, parts.join("; "))
}

/// No pause is left: writes, supervision, an armed upgrade, a restore.
fn no_pause_left(seen: &Seen) -> Check {
    let mut problems = vec![];
    match &seen.health {
        Ok(h) => {
            if let Some(p) = &h.writes_paused {
                problems.push(format!("the agent pauses writes: {p}"));
            }
        }
        Err(e) => problems.push(format!("no health: {e}")),
    }
    match &seen.status {
        Ok(s) => {
            if s.paused {
                problems.push("the watchdog's supervision is paused".into());
            }
            if let Some(a) = &s.armed {
                problems.push(format!("the watchdog is still armed: {a:?}"));
            }
            if let Some(r) = &s.restore {
                problems.push(format!("a restore still runs: {r:?}"));
            }
        }
        Err(e) => problems.push(format!("no watchdog status: {e}")),
    }
    verdict_of("no_pause_left", problems, "nothing paused")
}

/// The journal and the incident log tell the truth.
fn journal(
    seen: &Seen,
    rec: Option<&UpgradeRecord>,
    outcome: Outcome,
    incidents: &[Incident],
) -> Check {
    let mut problems = vec![];
    if let Some(Err(e)) = &seen.rec {
        problems.push(e.clone());
    }
    if let Err(e) = &seen.incidents {
        problems.push(format!("no incident log: {e}"));
    }
    if let Some(rec) = rec {
        let id = rec.id;
        if !rec.state.is_terminal() {
            problems.push(format!("upgrade {id} did not end: {:?}", rec.state));
        }
        let state_matches = match (&rec.state, outcome) {
            (UpgradeState::Committed, Outcome::Committed | Outcome::RolledBack) => true,
            (UpgradeState::RolledBack(_), Outcome::RolledBack) => true,
            (UpgradeState::Failed(_), Outcome::Failed) => true,
            (UpgradeState::Rejected(_), Outcome::Rejected) => true,
            _ => false,
        };
        if !state_matches {
            problems.push(format!(
                "record {:?} vs outcome {}",
                rec.state,
                outcome.name()
            ));
        }
        if let UpgradeState::RolledBack(reason) = &rec.state {
            let named = incidents.iter().any(|i| {
                i.upgrade_id == Some(id) && reason.contains(&format!("incident {}", i.id))
            });
            if !named {
                problems.push(format!(
                    "RolledBack names no incident of upgrade {id}: {reason}"
                ));
            }
        }
    }
    if outcome == Outcome::RolledBack && incidents.is_empty() {
        problems.push("rolled back without an incident".into());
    }
    for i in incidents {
        if i.restored_at.is_none() || i.ladder_step.is_none() {
            problems.push(format!("incident {} not restored: {:?}", i.id, i.attempts));
        }
        if let (Some(b), Some(a), Some(lost)) = (&i.digest_before, &i.digest_after, i.records_lost)
            && b.records_missing_in(a) != lost
        {
            problems.push(format!(
                "incident {} says {lost} lost, its digests say {}",
                i.id,
                b.records_missing_in(a)
            ));
        }
    }
    verdict_of(
        "journal_truthful",
        problems,
        format!("{} incident(s)", incidents.len()),
    )
}

/// Controllers by role (agent, watchdog, operator), others by their text form.
fn names(tb: &Testbed, principals: &[candid::Principal]) -> String {
    principals
        .iter()
        .map(|p| match *p {
            p if p == tb.agent => "agent".to_string(),
            p if p == tb.watchdog => "watchdog".to_string(),
            p if p == testbed::operator() => "operator".to_string(),
            p => p.to_text(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
