//! The invariants that guard the safety net's own rules (issue 12, "Close the holes in the
//! safety net"), checked after every step next to [`super::check`]'s. Each is a rule a user of
//! the trio can see from the outside; the mutation table (`scripts/mutants.sh --explore`) is
//! how we know the explorer finds each reverted fix through them.
//!
//! | invariant | holds when |
//! | --- | --- |
//! | `writes_pause_bounded` | a write is never refused for an upgrade that had already ended, nor refused for one upgrade (with no write accepted in between) for longer than [`PAUSE_BOUND`] |
//! | `operator_methods_answer` | no operator method the history calls (autonomy, supervision, operators, approval, rejection, upload and proposal) is refused by the write pause |
//! | `rehearsal_catches` | a bad candidate whose fault shows in a sandbox copy ([`SANDBOX_VISIBLE`]) never passes its rehearsal |
//! | `rehearsal_names_fault` | a rehearsal that installed such a candidate in the sandbox fails the probe made for its fault ([`fault_probe`]): the report tells the operator what is wrong with the candidate, and staging acts on it (a seized sandbox is forgotten, not reused) |
//! | `rehearsal_single_flight` | an upgrade's rehearsal starts again only after staging answered the last one (a busy retry), or after the agent may have lost that call (it was reinstalled, restored, installed out of band) |
//! | `no_copy_lingers` | with every upgrade ended and staging running, staging's sandbox holds no module for longer than [`LINGER_BOUND`] |
//! | `interface_kept` | a self-patch that removes a method the running interface declares is refused (only an operator's release may break the interface on purpose) |
//!
//! [`Seen`] is what these rules remember between steps (kept in [`World::net`]).

use super::action::{Action, PatchKind, ReleaseKind};
use super::check::{UPGRADE_BOUND, Violation};
use super::coverage::state_name;
use super::world::{World, call, release_bytes};
use candid::{Encode, Principal};
use canister_api::agent::{AgentError, AuditPage, UpgradeRecord};
use canister_api::staging::RehearsalReport;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::Duration;
use testbed::operator;

/// Longest the writes of one upgrade may be refused without a write accepted in between: the
/// rehearsal's pause (15 min), the arm window (10 min) and the upgrade's lease (60 min) with
/// room to spare (the explorer's upgrade bound).
pub const PAUSE_BOUND: Duration = UPGRADE_BOUND;
/// Longest a copy of the agent's state may stay in staging's sandbox once every upgrade ended
/// (the clean-up runs at once; a rehearsal's own pause lasts 15 min at most).
pub const LINGER_BOUND: Duration = Duration::from_secs(30 * 60);
/// The chaos corpus's bad candidates that misbehave in a sandbox copy too, so that a rehearsal
/// sees them (`agent/src/chaos.rs`): a trap in post_upgrade, writes that trap, a verdict that
/// traps (the control-plane probe), an unhealthy status, control seized.
pub const SANDBOX_VISIBLE: &[&str] = &[
    "boot_trap",
    "writes_trap",
    "verdict_trap",
    "reports_unhealthy_all",
    "seizes_control",
];

/// What the rules remember between steps.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// Per upgrade, when a write was first refused for it since a write was last accepted
    /// (simulated nanoseconds).
    refused_since: BTreeMap<u64, u64>,
    /// Upgrades that were terminal at the end of the last step.
    ended: BTreeSet<u64>,
    /// The next audit entry to read.
    audit_from: u64,
    /// Upgrades whose rehearsal started and that staging has not answered yet, as far as the
    /// audit log tells.
    rehearsing: BTreeSet<u64>,
    /// Incidents the watchdog had at the end of the last step.
    incidents: usize,
    /// Since when staging's sandbox holds a module while every upgrade has ended.
    copy_since: Option<u64>,
    /// The running agent's `candid:service` at the end of the last step.
    service: Option<String>,
}

fn violation(invariant: &str, detail: String) -> Violation {
    Violation {
        invariant: invariant.into(),
        detail,
    }
}

/// The upgrade a refusal by the write pause names (`writes are paused for upgrade N (...)`).
fn paused_for(result: &str) -> Option<u64> {
    let rest = result.split("writes are paused for upgrade ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Whether `action` is one of the domain writes the pause guards.
fn is_domain_write(action: &Action) -> bool {
    matches!(
        action,
        Action::Remember(..) | Action::Forget(_) | Action::SubmitTask(_)
    )
}

/// Whether `action` calls only operator methods of the agent (which the pause never refuses).
fn is_operator_call(action: &Action) -> bool {
    matches!(
        action,
        Action::SetAutonomy(_)
            | Action::SetSupervision(_)
            | Action::SetOperators(_)
            | Action::Approve
            | Action::Reject
            | Action::Release(_)
    )
}

/// Whether `action` may have reinstalled or restored the agent (an outgoing call of its old
/// instance is then lost, and a rehearsal may start again).
fn may_reinstall_agent(action: &Action) -> bool {
    matches!(
        action,
        Action::Kill(_) | Action::OutOfBandInstall(_) | Action::Rollback(_) | Action::Checkpoint
    )
}

/// The write pause: bounded, and lifted by every end ([`PAUSE_BOUND`]). `ended_now`: the
/// upgrades terminal after the step; `restored`: the agent may have been restored during it (a
/// restored snapshot may hold an ended upgrade in flight again until the watchdog ends it).
fn write_pause(
    w: &mut World,
    action: &Action,
    result: &str,
    ended_now: &BTreeSet<u64>,
    restored: bool,
) -> Result<(), Violation> {
    let now = w.now();
    if is_operator_call(action)
        && let Some(id) = paused_for(result)
    {
        return Err(violation(
            "operator_methods_answer",
            format!("`{action}` was refused by the write pause of upgrade {id}: {result}"),
        ));
    }
    if !is_domain_write(action) {
        return Ok(());
    }
    let Some(id) = paused_for(result) else {
        if result.starts_with("ok") {
            w.net.refused_since.clear();
        }
        return Ok(());
    };
    if w.net.ended.contains(&id) && ended_now.contains(&id) && !restored {
        return Err(violation(
            "writes_pause_bounded",
            format!("a write was refused for upgrade {id}, which had already ended: {result}"),
        ));
    }
    let since = *w.net.refused_since.entry(id).or_insert(now);
    if now.saturating_sub(since) > PAUSE_BOUND.as_nanos() as u64 {
        return Err(violation(
            "writes_pause_bounded",
            format!(
                "writes have been refused for upgrade {id} for {} s (bound {} s): {result}",
                (now - since) / 1_000_000_000,
                PAUSE_BOUND.as_secs()
            ),
        ));
    }
    Ok(())
}

/// The hashes of the [`SANDBOX_VISIBLE`] releases, with their modes (built once per process).
fn sandbox_visible() -> &'static [(Vec<u8>, &'static str)] {
    static HASHES: OnceLock<Vec<(Vec<u8>, &'static str)>> = OnceLock::new();
    HASHES.get_or_init(|| {
        SANDBOX_VISIBLE
            .iter()
            .map(|m| (testbed::sha256(&release_bytes(ReleaseKind::Bad(m))), *m))
            .collect()
    })
}

/// The mode of `hash` if it is a bad candidate this history released whose fault the
/// rehearsal can see ([`SANDBOX_VISIBLE`]).
fn visible_bad_mode(w: &World, hash: &[u8]) -> Option<&'static str> {
    if !w.bad_modules.iter().any(|m| m == hash) {
        return None;
    }
    sandbox_visible()
        .iter()
        .find(|(h, _)| h.as_slice() == hash)
        .map(|(_, mode)| *mode)
}

/// A bad candidate the rehearsal can see never passes it.
fn rehearsal_catches(w: &World, records: &[UpgradeRecord]) -> Result<(), Violation> {
    for r in records {
        let Some(mode) = visible_bad_mode(w, &r.candidate_hash) else {
            continue;
        };
        if r.history
            .iter()
            .any(|t| state_name(&t.state) == "Rehearsed")
        {
            let names: Vec<String> = r.history.iter().map(|t| state_name(&t.state)).collect();
            return Err(violation(
                "rehearsal_catches",
                format!(
                    "upgrade {} (bad candidate `{mode}`, which misbehaves in a sandbox copy too) \
                     passed its rehearsal: {names:?}",
                    r.id
                ),
            ));
        }
    }
    Ok(())
}

/// The probe of a staging rehearsal made for the fault of a [`SANDBOX_VISIBLE`] mode
/// (`staging/src/rehearsal.rs`, `staging/src/probes.rs`).
pub fn fault_probe(mode: &str) -> Option<fn(&str) -> bool> {
    Some(match mode {
        "boot_trap" => |n| n == "upgrade",
        "writes_trap" => |n| n.starts_with("write "),
        "verdict_trap" => |n| n == "control_plane",
        "reports_unhealthy_all" => |n| n == "health",
        "seizes_control" => |n| n == "controllers",
        _ => return None,
    })
}

/// Whether a report whose candidate was installed in the sandbox (its `upgrade` probe held)
/// lacks a failed probe for `mode`'s fault. A report that stopped before the install (a fault
/// on staging, a setup failure) says nothing about the candidate and is not judged.
fn fault_unnamed(mode: &str, report: &RehearsalReport) -> bool {
    let Some(names_fault) = fault_probe(mode) else {
        return false;
    };
    let installed = report.probes.iter().any(|p| p.name == "upgrade" && p.ok);
    installed && !report.probes.iter().any(|p| !p.ok && names_fault(&p.name))
}

/// A rehearsal of a bad candidate the rehearsal can see fails the probe made for its fault.
fn rehearsal_names_fault(w: &World, records: &[UpgradeRecord]) -> Result<(), Violation> {
    for r in records {
        let (Some(report), Some(mode)) = (&r.rehearsal, visible_bad_mode(w, &r.candidate_hash))
        else {
            continue;
        };
        if fault_unnamed(mode, report) {
            let failed: Vec<&str> = report
                .probes
                .iter()
                .filter(|p| !p.ok)
                .map(|p| p.name.as_str())
                .collect();
            return Err(violation(
                "rehearsal_names_fault",
                format!(
                    "upgrade {}'s rehearsal installed bad candidate `{mode}` but no probe made \
                     for its fault failed (failed probes: {failed:?})",
                    r.id
                ),
            ));
        }
    }
    Ok(())
}

/// Reads the audit log from where the last step stopped: a rehearsal starts again only after
/// staging answered (or the agent lost the call).
fn rehearsal_single_flight(w: &mut World, restored: bool) -> Result<(), Violation> {
    if restored {
        w.net.rehearsing.clear();
    }
    loop {
        let Some(page) = audit_page(w, w.net.audit_from) else {
            return Ok(());
        };
        if let Some(last) = page.entries.last() {
            w.net.audit_from = last.seq + 1;
        }
        for e in &page.entries {
            let Some(id) = e.upgrade_id else { continue };
            match e.action.as_str() {
                "upgrade.rehearsal_started" if !w.net.rehearsing.insert(id) => {
                    return Err(violation(
                        "rehearsal_single_flight",
                        format!(
                            "upgrade {id}'s rehearsal started again (audit entry {}) while \
                             staging had not answered the last one",
                            e.seq
                        ),
                    ));
                }
                "upgrade.rehearsal_retry" => {
                    w.net.rehearsing.remove(&id);
                }
                _ => {}
            }
        }
        if page.next_from.is_none() || page.entries.is_empty() {
            return Ok(());
        }
    }
}

/// The page of the agent's audit log from sequence number `from` on, if the agent answers
/// (`audit_log` answers a `Result`: decoding it as a bare page failed on every call, and the
/// rule above saw no entry until this was fixed).
pub fn audit_page(w: &World, from: u64) -> Option<AuditPage> {
    call::<Result<AuditPage, AgentError>>(
        &w.tb,
        w.tb.agent,
        operator(),
        "audit_log",
        Encode!(&from, &u64::MAX).expect("encode"),
        true,
    )
    .ok()?
    .ok()
}

/// Staging's sandbox, if staging answers.
pub(super) fn sandbox(w: &World) -> Option<Principal> {
    call::<Option<Principal>>(
        &w.tb,
        w.tb.staging,
        operator(),
        "sandbox",
        Encode!().expect("encode"),
        true,
    )
    .ok()
    .flatten()
}

/// At rest, no copy of the agent's state stays in the sandbox for longer than
/// [`LINGER_BOUND`].
fn no_copy_lingers(w: &mut World, all_ended: bool) -> Result<(), Violation> {
    let copy = all_ended
        && w.is_running(super::action::Who::Staging)
        && sandbox(w).is_some_and(|s| w.tb.sim.module_hash(s).is_some());
    if !copy {
        w.net.copy_since = None;
        return Ok(());
    }
    let now = w.now();
    let since = *w.net.copy_since.get_or_insert(now);
    if now - since > LINGER_BOUND.as_nanos() as u64 {
        return Err(violation(
            "no_copy_lingers",
            format!(
                "every upgrade ended {} s ago or more, and staging's sandbox still holds a module \
                 (the copy of the agent's state)",
                (now - since) / 1_000_000_000
            ),
        ));
    }
    Ok(())
}

/// Whether `service` declares method `name` (dropping it breaks the interface).
fn declares(service: &str, name: &str) -> bool {
    wasm_patch::interface::remove_method(service, name)
        .is_ok_and(|without| wasm_patch::interface::check_subtype(&without, service).is_err())
}

/// An accepted self-patch removes no method the running interface declared.
fn interface_kept(w: &World, action: &Action, result: &str) -> Result<(), Violation> {
    // The interface before the step (before the first step, the deployed one: the IC still
    // runs it, as a self-patch only proposes).
    let before = w.net.service.clone().or_else(|| running_service(w));
    let (Action::SelfUpgrade(ops), true, Some(service)) =
        (action, result.starts_with("ok"), before.as_deref())
    else {
        return Ok(());
    };
    for op in ops {
        if let PatchKind::Remove(name) = op {
            let name = w.resolve_method(name);
            if declares(service, &name) {
                return Err(violation(
                    "interface_kept",
                    format!(
                        "a self-patch removing `{name}`, which the running interface declares, \
                         was accepted: {result}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The running agent's `candid:service`, if it has one.
pub fn running_service(w: &World) -> Option<String> {
    w.tb.sim
        .metadata_section(w.tb.agent, "candid:service")
        .and_then(|s| String::from_utf8(s.bytes).ok())
}

/// The rules of this module that read only the trio's state, at the end of a history (after
/// the final liveness check: a rehearsal that passed in its last steps is judged too).
pub fn at_end(w: &World) -> Result<(), Violation> {
    match w.records() {
        Some(records) => {
            rehearsal_catches(w, &records)?;
            rehearsal_names_fault(w, &records)
        }
        None => Ok(()),
    }
}

/// The rules of this module after a step (`action`, answered `result`).
pub fn check(w: &mut World, action: &Action, result: &str) -> Result<(), Violation> {
    let records = w.records();
    let ended_now: BTreeSet<u64> = records
        .iter()
        .flatten()
        .filter(|r| r.state.is_terminal())
        .map(|r| r.id)
        .collect();
    let incidents = super::check::incidents(w).map_or(w.net.incidents, |i| i.len());
    let restoring = w.watchdog_status().is_some_and(|s| s.restore.is_some());
    let restored = may_reinstall_agent(action) || incidents != w.net.incidents || restoring;
    w.net.incidents = incidents;
    let outcome = (|| {
        write_pause(w, action, result, &ended_now, restored)?;
        interface_kept(w, action, result)?;
        if let Some(records) = &records {
            rehearsal_catches(w, records)?;
            rehearsal_names_fault(w, records)?;
        }
        rehearsal_single_flight(w, restored)?;
        let all_ended = records
            .as_ref()
            .is_some_and(|r| r.iter().all(|r| r.state.is_terminal()));
        no_copy_lingers(w, all_ended)
    })();
    if records.is_some() {
        w.net.ended = ended_now;
    }
    w.net.service = running_service(w);
    outcome
}

/// `AgentError`'s pause refusal as the world words it, for the tests.
#[cfg(test)]
fn refusal(id: u64) -> String {
    format!(
        "error: {}",
        canister_api::agent::AgentError::WritesPaused {
            upgrade_id: id,
            reason: "it is armed, installing or on probation".into(),
            retry_after_secs: 30,
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use canister_api::staging::ProbeResult;

    #[test]
    fn a_pause_refusal_names_its_upgrade() {
        assert_eq!(paused_for(&refusal(7)), Some(7));
        assert_eq!(
            paused_for("upgrade 3: error: writes are paused for upgrade 12 (x)"),
            Some(12)
        );
        assert_eq!(paused_for("ok Some(\"v1\")"), None);
    }

    #[test]
    fn a_declared_method_is_declared_and_another_is_not() {
        let service =
            "service : {\n  hello_3 : () -> (text) query;\n  metrics : () -> (text) query;\n}";
        assert!(declares(service, "hello_3"));
        assert!(declares(service, "metrics"));
        assert!(!declares(service, "hello_1"));
    }

    fn report(probes: &[(&str, bool)]) -> RehearsalReport {
        RehearsalReport {
            probes: probes
                .iter()
                .map(|(name, ok)| ProbeResult {
                    name: name.to_string(),
                    ok: *ok,
                    detail: String::new(),
                    instructions: None,
                })
                .collect(),
            upgrade_id: 1,
            candidate_hash: vec![0; 32],
            sandbox: Principal::anonymous(),
            passed: false,
            state_bytes: 0,
            post_upgrade_instructions: None,
            staging_instructions: 0,
            started_at: 0,
            finished_at: 0,
        }
    }

    #[test]
    fn a_rehearsal_must_fail_the_probe_made_for_the_fault() {
        let seized = report(&[("upgrade", true), ("health", true), ("cleanup", false)]);
        assert!(fault_unnamed("seizes_control", &seized));
        let caught = report(&[
            ("upgrade", true),
            ("controllers", false),
            ("cleanup", false),
        ]);
        assert!(!fault_unnamed("seizes_control", &caught));
        let writes = report(&[("upgrade", true), ("write remember", false)]);
        assert!(!fault_unnamed("writes_trap", &writes));
        assert!(fault_unnamed("verdict_trap", &writes));
        // Not installed (a fault on staging): not judged.
        let stopped = report(&[("install_current", false)]);
        assert!(!fault_unnamed("seizes_control", &stopped));
        assert!(fault_probe("burn_all").is_none());
    }
}
