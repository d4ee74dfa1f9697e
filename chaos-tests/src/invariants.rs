//! The invariants every scenario must leave intact, checked after the system settled:
//!
//! | invariant | holds when |
//! | --- | --- |
//! | `fault_took_effect` | the run shows the fault the scenario injects (see `Run::not_shown`) |
//! | `outcome_allowed` | the upgrade ended in one of the scenario's allowed outcomes |
//! | `runs_verified_version` | the agent runs the watchdog's LKG, which is the candidate if committed and the version before otherwise, and answers `health` healthy |
//! | `state_preserved` | the state digest equals the one before the fault, or the scenario allows a loss and the incidents state exactly that loss |
//! | `journal_truthful` | the upgrade's record ends in the state the outcome says; every incident is restored, names its rung, and its `records_lost` matches its digests |
//! | `watchdog_alive` | the watchdog runs the module the agent stores for it, answers `status`, and heartbeats the agent healthy |
//! | `mutual_control` | the agent controls itself and the watchdog controls it; the agent controls the watchdog |
//! | `writes_resumed` | the agent accepts a write again |

use crate::report::{Check, Outcome, Report, secs};
use crate::{Run, Scenario};
use canister_api::agent::{HEALTH_UNHEALTHY, UpgradeRecord, UpgradeState};
use canister_api::watchdog::Incident;

fn verdict(name: &'static str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name,
        ok,
        detail: detail.into(),
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

/// Checks every invariant of `run` and builds its report.
pub fn check(scenario: &Scenario, seed: u64, run: &Run) -> Report {
    let tb = &run.tb;
    let incidents = tb.incidents();
    let rec = run.upgrade.map(|id| tb.record(id));
    let outcome = outcome(run, rec.as_ref(), &incidents);
    let expected = match (outcome, &rec) {
        (Outcome::Committed, Some(r)) => r.candidate_hash.clone(),
        _ => run.parent.clone(),
    };
    let module = tb.agent_module().unwrap_or_default();
    let after = tb.digest();
    let lost = run.before.records_missing_in(&after);
    let mut checks = vec![verdict(
        "fault_took_effect",
        run.not_shown.is_none(),
        run.not_shown.clone().unwrap_or_else(|| "shown".into()),
    )];

    checks.push(verdict(
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
    ));

    let status = tb.watchdog_status();
    let lkg = status.lkg.as_ref().map(|l| l.hash.clone());
    let health = tb.try_health();
    let healthy = health.as_ref().is_ok_and(|h| h.status != HEALTH_UNHEALTHY);
    checks.push(verdict(
        "runs_verified_version",
        module == expected && lkg.as_ref() == Some(&module) && healthy,
        format!(
            "runs {}, expected {}, watchdog LKG {}, health {}",
            short(&module),
            short(&expected),
            lkg.as_deref().map_or("none".into(), short),
            match &health {
                Ok(h) => h.status.clone(),
                Err(e) => e.to_string(),
            }
        ),
    ));

    let stated: u64 = incidents.iter().filter_map(|i| i.records_lost).sum();
    let state_ok = if lost == 0 && after.same_state(&run.before) {
        true
    } else {
        scenario.loss_allowed && stated == lost
    };
    checks.push(verdict(
        "state_preserved",
        state_ok,
        format!(
            "{} tasks, {} facts before; {} and {} after; {lost} records lost, incidents state {stated}",
            run.before.tasks, run.before.facts, after.tasks, after.facts
        ),
    ));

    checks.push(journal(rec.as_ref(), outcome, &incidents));

    // The testbed installs and stores the same watchdog build.
    let stored_watchdog = testbed::sha256(&testbed::wasm("watchdog"));
    let wd_module = tb.watchdog_module();
    let beat = status.last_heartbeat.clone();
    let fresh = beat.as_ref().is_some_and(|h| {
        h.healthy
            && tb.now_nanos().saturating_sub(h.at)
                <= 3 * status.config.heartbeat_interval_secs * 1_000_000_000
    });
    checks.push(verdict(
        "watchdog_alive",
        fresh && wd_module.as_ref() == Some(&stored_watchdog),
        format!(
            "module {}, last heartbeat {:?}",
            wd_module.as_deref().map_or("none".into(), short),
            beat.map(|h| (h.healthy, h.detail))
        ),
    ));

    let agent_ctl = tb.sim.get_controllers(tb.agent);
    let wd_ctl = tb.sim.get_controllers(tb.watchdog);
    checks.push(verdict(
        "mutual_control",
        agent_ctl.contains(&tb.agent)
            && agent_ctl.contains(&tb.watchdog)
            && wd_ctl.contains(&tb.agent),
        format!(
            "agent controllers [{}], watchdog controllers [{}]",
            names(tb, &agent_ctl),
            names(tb, &wd_ctl)
        ),
    ));

    let write = tb.try_remember("default", "chaos-after", "the fault");
    checks.push(verdict(
        "writes_resumed",
        write.is_ok(),
        format!("{write:?}"),
    ));

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
    if let Some(r) = &rec {
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

/// The journal and the incident log tell the truth.
fn journal(rec: Option<&UpgradeRecord>, outcome: Outcome, incidents: &[Incident]) -> Check {
    let mut problems = vec![];
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
    verdict(
        "journal_truthful",
        problems.is_empty(),
        if problems.is_empty() {
            format!("{} incident(s)", incidents.len())
        } else {
            problems.join("; ")
        },
    )
}

/// Controllers by role (agent, watchdog, operator), others by their text form.
fn names(tb: &testbed::Testbed, principals: &[candid::Principal]) -> String {
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
