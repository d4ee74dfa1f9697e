//! Service: the restore ladder, cheapest rung first, each verified before the next is tried.
//!
//! 0. `Previous` (a failure in steady state, when a previous LKG is held): the LKG failed after
//!    its commit, so it is not known-good any more; install the LKG before it in upgrade mode.
//! 1. `CodeOnly`: install the LKG in upgrade mode (skipping the bad module's pre_upgrade),
//!    keeping stable memory; only when the LKG reads the schema the state is at.
//! 2. `Snapshot`: load the snapshot taken when the upgrade was armed (writes were paused from
//!    then on, so nothing is lost), or the newest snapshot outside an upgrade; a snapshot that
//!    holds an older module gets the LKG installed over its state in upgrade mode.
//! 3. `Reinstall`: reinstall the LKG clean with the agent's init argument; every record is
//!    lost; operators are alerted.
//!
//! An operator's rollback (`rollback`) starts at its own first rung: `Version` (install a stored
//! version in upgrade mode; it becomes the LKG) or `Snapshot` with the operator's snapshot (the
//! module it holds becomes the LKG). If that rung fails, the ladder continues at `CodeOnly`.
//!
//! Before the first rung the ladder asks the agent for its state digest if the incident has none
//! (only an armed upgrade's digest is known to be current), so the incident can say exactly what
//! was lost. A rung is verified by the module hash (canister_status), a `health` answer, and, where the
//! state before is known, no record missing (outside an upgrade the agent takes writes while
//! the ladder runs). A rung whose module runs but whose agent does not answer in time is tried
//! again at the next tick (`RungError::Unanswered`): a non-answer never makes the ladder
//! replace stable memory. A rung that replaces it counts the records lost from the digest taken
//! right before it. A canister stuck in `stopping` (an open call
//! context that never closes; the IC times the stop request out after 5 minutes) is upgraded
//! while stopping at rung 1, and uninstalled (which rejects its open contexts) before rung 2
//! loads the snapshot. Progress is stored after every rung, so a restore interrupted by a trap
//! resumes at the next tick; a ladder that runs out of rungs raises the alert and starts over.
//!
//! Every rung needs control of the agent. A watchdog that is no longer one of its controllers
//! (a candidate removed it) does not try: the incident says it waits, `status.alerts` says why,
//! and the restore resumes at the first tick after an operator gave control back. A restore of
//! an armed upgrade also puts back the controllers the agent had when it was armed.

use crate::agent_client;
use crate::control::{lost_control, regained_control};
use crate::store::{self, Restore};
use crate::store::{queue_notice, queue_verdict};
use candid::Principal;
use canister_api::agent::{AgentInit, Autonomy, RepairNotice, StateDigest, UpgradeOutcome};
use canister_api::cdk::now;
use canister_api::failure::not_a_controller;
use canister_api::ic::management;
use canister_api::watchdog::{LadderStep, LkgInfo, RollbackTarget};
use ic_management_canister_types as mgmt;

fn attempt(incident_id: u64, line: String) {
    store::event(
        "ladder.attempt",
        None,
        format!("incident {incident_id}: {line}"),
    );
    if let Some(mut i) = store::incident(incident_id) {
        store::push_attempt(&mut i, line);
        store::put_incident(i);
    }
}

/// The restore after rung `r.step` failed, or `None` when the ladder ran out of rungs.
fn next_rung(r: &Restore) -> Option<Restore> {
    let mut next = r.clone();
    match r.step {
        LadderStep::Version | LadderStep::Previous => next.step = LadderStep::CodeOnly,
        LadderStep::CodeOnly => next.step = LadderStep::Snapshot,
        LadderStep::Snapshot => {
            if let RollbackTarget::Snapshot(id) = &r.target
                && r.snapshot_id.as_ref() == Some(id)
            {
                // The operator's snapshot failed: the ladder proper, with the newest snapshot.
                next.step = LadderStep::CodeOnly;
                next.snapshot_id = None;
            } else {
                next.step = LadderStep::Reinstall;
            }
        }
        LadderStep::Reinstall => return None,
    }
    Some(next)
}

/// What a rung that held leaves behind.
struct Restored {
    /// The agent's state digest after it.
    after: Option<StateDigest>,
    /// For a rung that replaces stable memory (a snapshot load, a clean reinstall): the agent's
    /// digest right before it, whose log counters say what the rung dropped (`None` when the
    /// agent did not answer; `Some` is only set by those rungs).
    replaced: Option<Result<StateDigest, String>>,
    /// A new LKG (an operator's target), with its bytes.
    new_lkg: Option<(LkgInfo, Vec<u8>)>,
    /// The module the agent runs now.
    module: Vec<u8>,
}

/// Why a rung did not restore the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RungError {
    /// The rung failed: the ladder goes on to the next rung.
    Failed(String),
    /// The rung's module runs, but the agent did not answer in time (SYS_UNKNOWN at the
    /// deadline). Its code was just installed afresh, so a slow subnet or held responses are
    /// as likely as its code: the ladder retries a rung that keeps stable memory at the next
    /// tick and never replaces stable memory for a non-answer (found by the explorer: an agent
    /// whose answers were held for 15 minutes was reinstalled clean, its records erased).
    Unanswered(String),
}

impl From<String> for RungError {
    fn from(why: String) -> Self {
        RungError::Failed(why)
    }
}

impl From<&str> for RungError {
    fn from(why: &str) -> Self {
        RungError::Failed(why.to_string())
    }
}

/// The rung to retry at the next tick after `step` ran but the agent did not answer: the
/// same rung if it keeps stable memory (installing its module again is harmless), `CodeOnly`
/// after a rung that replaced it (replacing it again would drop what the agent took since).
fn retry_rung(step: LadderStep) -> LadderStep {
    match step {
        LadderStep::Snapshot | LadderStep::Reinstall => LadderStep::CodeOnly,
        keeps_memory => keeps_memory,
    }
}

/// Whether `lkg` reads stable memory at `schema` (unknown schema or range: no).
fn reads(lkg: &LkgInfo, schema: Option<u32>) -> bool {
    match (lkg.schema_range, schema) {
        (Some(r), Some(s)) => r.min <= s && s <= r.max,
        _ => false,
    }
}

/// Takes the agent's digest for the incident if it has none (once per restore).
async fn digest_before(r: &Restore, agent: Principal, timeout: u32) {
    if r.digest_tried {
        return;
    }
    store::update(|s| {
        if let Some(x) = s.restore.as_mut() {
            x.digest_tried = true;
        }
    });
    let Some(mut incident) = store::incident(r.incident_id) else {
        return;
    };
    if incident.digest_before.is_some() {
        return;
    }
    match agent_client::digest(agent, timeout.max(30)).await {
        Ok(d) => {
            incident.digest_before = Some(d);
            store::put_incident(incident);
        }
        Err(e) => attempt(
            r.incident_id,
            format!("state digest before the first rung: unavailable ({e})"),
        ),
    }
}

/// Runs the ladder from the stored rung until a rung holds or all failed.
pub async fn run() {
    let Some(r) = store::get().restore else {
        return;
    };
    let st = store::get();
    match management::status(st.agent).await {
        Err(e) if not_a_controller(&e.message) => {
            let noted = store::incident(r.incident_id)
                .is_some_and(|i| i.attempts.iter().any(|a| a.starts_with("waiting")));
            if !noted {
                attempt(
                    r.incident_id,
                    format!(
                        "waiting: the watchdog is not a controller of the agent ({e}); the \
                         restore resumes once an operator gives control back"
                    ),
                );
            }
            return lost_control(e.to_string());
        }
        Ok(_) => regained_control(),
        Err(_) => {}
    }
    digest_before(&r, st.agent, st.config.heartbeat_timeout_secs).await;
    loop {
        let Some(r) = store::get().restore else {
            return;
        };
        match try_rung(&r).await {
            Ok(restored) => {
                restore_controllers(r.incident_id, r.upgrade_id).await;
                return finish(&r, restored);
            }
            Err(RungError::Unanswered(why)) => {
                let retry = retry_rung(r.step);
                attempt(
                    r.incident_id,
                    format!(
                        "{:?}: {why}; {retry:?} is tried again at the next tick (a non-answer \
                         never makes the ladder replace the agent's stable memory)",
                        r.step
                    ),
                );
                if let Some(mut i) = store::incident(r.incident_id) {
                    i.alert = true;
                    i.data_lost = format!(
                        "not restored yet: the agent runs the restored module but does not \
                         answer in time; the watchdog retries {retry:?} at every tick. If it is \
                         stuck for good, an operator can load one of its snapshots or reinstall \
                         it with dfx (README, \"Handback\")"
                    );
                    store::put_incident(i);
                }
                store::update(|s| {
                    if let Some(x) = s.restore.as_mut() {
                        x.step = retry;
                    }
                });
                return;
            }
            Err(RungError::Failed(why)) => {
                attempt(r.incident_id, format!("{:?}: {why}", r.step));
                match next_rung(&r) {
                    // Only the rung moves on: what the failed rung stored in the restore
                    // (`replaced_from`) is kept.
                    Some(next) => store::update(|s| {
                        if let Some(x) = s.restore.as_mut() {
                            x.step = next.step;
                            x.snapshot_id = next.snapshot_id;
                        }
                    }),
                    None => {
                        if let Some(mut i) = store::incident(r.incident_id) {
                            i.alert = true;
                            i.data_lost = "not restored yet: every rung failed; the ladder starts \
                                           over at the next tick"
                                .into();
                            store::put_incident(i);
                        }
                        store::update(|s| {
                            if let Some(x) = s.restore.as_mut() {
                                x.step = LadderStep::CodeOnly;
                                x.passes += 1;
                            }
                        });
                        store::event(
                            "ladder.exhausted",
                            r.upgrade_id,
                            format!("incident {}: ALERT", r.incident_id),
                        );
                        return;
                    }
                }
            }
        }
    }
}

/// Puts back the agent's controllers of the moment upgrade `upgrade_id` was armed, if the
/// candidate changed them.
async fn restore_controllers(incident_id: u64, upgrade_id: Option<u64>) {
    let st = store::get();
    let Some(before) = st
        .armed
        .filter(|a| Some(a.upgrade_id) == upgrade_id)
        .and_then(|a| a.controllers_before)
    else {
        return;
    };
    let Ok(status) = management::status(st.agent).await else {
        return;
    };
    let now_set = status.settings.controllers;
    if before.len() == now_set.len() && before.iter().all(|c| now_set.contains(c)) {
        return;
    }
    let line = match management::set_controllers(st.agent, before.clone()).await {
        Ok(()) => format!("controllers {now_set:?} put back to {before:?}"),
        Err(e) => format!("controllers {now_set:?} could not be put back to {before:?}: {e}"),
    };
    attempt(incident_id, line);
}

/// The LKG bytes, repaired from the agent's own copy when the watchdog's is corrupted.
async fn lkg(agent: Principal) -> Result<(LkgInfo, Vec<u8>), String> {
    let info = store::get().lkg.ok_or("the watchdog holds no LKG module")?;
    match store::lkg_bytes() {
        Ok(bytes) => Ok((info, bytes)),
        Err(corrupt) => {
            let bytes = agent_client::module(agent, &info.hash)
                .await
                .map_err(|e| format!("{corrupt}; re-fetching it from the agent failed: {e}"))?;
            store::set_lkg(info.clone(), &bytes, true);
            store::event(
                "ladder.lkg_repaired",
                None,
                format!("{corrupt}; re-fetched from the agent"),
            );
            Ok((info, bytes))
        }
    }
}

/// Stops the agent (a stop that fails leaves it stopping), installs `wasm` in upgrade mode
/// skipping the failed module's pre_upgrade, and starts it again.
async fn upgrade_in_place(
    agent: Principal,
    incident_id: u64,
    rung: LadderStep,
    wasm: &[u8],
) -> Result<(), String> {
    if let Err(e) = management::stop(agent).await {
        attempt(
            incident_id,
            format!("{rung:?}: stop failed ({e}); upgrading the stopping canister"),
        );
    }
    let installed = install(agent, management::upgrade_mode(), wasm, vec![]).await;
    let started = management::start(agent).await;
    installed?;
    started.map_err(|e| e.to_string())
}

fn schema_mismatch(info: &LkgInfo, schema: Option<u32>) -> String {
    format!(
        "skipped: {} reads schema {}, the state is at {}",
        info.version,
        info.schema_range
            .map_or("?".into(), |x| format!("{}..={}", x.min, x.max)),
        schema.map_or("an unknown version".into(), |s| s.to_string())
    )
}

async fn try_rung(r: &Restore) -> Result<Restored, RungError> {
    let st = store::get();
    let agent = st.agent;
    let timeout = st.config.heartbeat_timeout_secs;
    let before = store::incident(r.incident_id).and_then(|i| i.digest_before);
    match r.step {
        LadderStep::Version => {
            let info = r.version.clone().ok_or("no version named")?;
            if !reads(&info, r.schema) {
                return Err(schema_mismatch(&info, r.schema).into());
            }
            let wasm = match (lkg(agent).await, store::previous_bytes()) {
                (Ok((lkg, bytes)), _) if lkg.hash == info.hash => bytes,
                (_, Ok((prev, bytes))) if prev.hash == info.hash => bytes,
                _ => {
                    // An interrupted attempt may have left the agent stopped: it must run to
                    // hand out the module.
                    let _ = management::start(agent).await;
                    agent_client::module(agent, &info.hash)
                        .await
                        .map_err(|e| format!("fetching version {} failed: {e}", info.version))?
                }
            };
            upgrade_in_place(agent, r.incident_id, r.step, &wasm).await?;
            let after = verify(agent, Some(&info.hash), before.as_ref(), timeout).await?;
            Ok(Restored {
                after: Some(after),
                replaced: None,
                module: info.hash.clone(),
                new_lkg: Some((info, wasm)),
            })
        }
        LadderStep::Previous => {
            let (lkg_info, _) = lkg(agent).await?;
            let running = management::status(agent)
                .await
                .map_err(|e| e.to_string())?
                .module_hash;
            let (info, wasm) = store::previous_bytes()?;
            // The previous LKG runs when this rung is retried after a non-answer.
            if running.as_ref() != Some(&lkg_info.hash) && running.as_ref() != Some(&info.hash) {
                return Err(format!(
                    "skipped: the agent runs {}, not the LKG, so the LKG itself is restored",
                    running.map_or("no module".into(), hex::encode)
                )
                .into());
            }
            if !reads(&info, r.schema) {
                return Err(schema_mismatch(&info, r.schema).into());
            }
            upgrade_in_place(agent, r.incident_id, r.step, &wasm).await?;
            let after = verify(agent, Some(&info.hash), before.as_ref(), timeout).await?;
            attempt(
                r.incident_id,
                format!(
                    "Previous: {} failed after its commit and is dropped; {} is the LKG again",
                    lkg_info.version, info.version
                ),
            );
            Ok(Restored {
                after: Some(after),
                replaced: None,
                module: info.hash.clone(),
                new_lkg: Some((info, wasm)),
            })
        }
        LadderStep::CodeOnly => {
            let (info, wasm) = lkg(agent).await?;
            if !reads(&info, r.schema) {
                return Err(schema_mismatch(&info, r.schema).into());
            }
            upgrade_in_place(agent, r.incident_id, r.step, &wasm).await?;
            let after = verify(agent, Some(&info.hash), before.as_ref(), timeout).await?;
            Ok(Restored {
                after: Some(after),
                replaced: None,
                new_lkg: None,
                module: info.hash,
            })
        }
        LadderStep::Snapshot => {
            let operators_pick = matches!(&r.target, RollbackTarget::Snapshot(id)
                if r.snapshot_id.as_ref() == Some(id));
            let snapshot = match &r.snapshot_id {
                Some(id) => id.clone(),
                None => management::list_snapshots(agent)
                    .await
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .max_by_key(|s| s.taken_at_timestamp)
                    .map(|s| s.id)
                    .ok_or("the agent has no snapshot")?,
            };
            let replaced = Some(replaced_from(r.incident_id, agent, timeout).await);
            if let Err(e) = management::stop(agent).await {
                attempt(
                    r.incident_id,
                    format!("Snapshot: stop failed ({e}); uninstalling to close its call contexts"),
                );
                management::uninstall_code(agent)
                    .await
                    .map_err(|e| e.to_string())?;
                management::stop(agent).await.map_err(|e| e.to_string())?;
            }
            let loaded = management::load_snapshot(agent, snapshot.clone()).await;
            let started = management::start(agent).await;
            loaded.map_err(|e| e.to_string())?;
            started.map_err(|e| e.to_string())?;
            if operators_pick {
                // The snapshot brings its own module: it becomes the LKG if the agent stores it.
                let after = verify(agent, None, None, timeout).await?;
                let module = management::status(agent)
                    .await
                    .map_err(|e| e.to_string())?
                    .module_hash
                    .ok_or("no module after loading the snapshot")?;
                let new_lkg = adopt(agent, &module, r.incident_id).await;
                return Ok(Restored {
                    after: Some(after),
                    replaced,
                    new_lkg,
                    module,
                });
            }
            let (info, wasm) = lkg(agent).await?;
            // Outside an upgrade the newest snapshot may predate the last commit and hold the
            // module it was taken with: the LKG is installed over its state in upgrade mode,
            // which keeps what the load restored (found by the explorer: seed 21, where the
            // check "runs the parent, not the LKG" failed the rung and a clean reinstall
            // erased the state the snapshot had brought back).
            let loaded_module = management::status(agent)
                .await
                .map_err(|e| e.to_string())?
                .module_hash;
            if loaded_module.as_ref() != Some(&info.hash) {
                attempt(
                    r.incident_id,
                    format!(
                        "Snapshot {}: loaded with module {}; the LKG is installed over its state",
                        hex::encode(&snapshot),
                        loaded_module.map_or("none".into(), hex::encode)
                    ),
                );
                upgrade_in_place(agent, r.incident_id, r.step, &wasm).await?;
            }
            // The snapshot's state predates the arm: its digest is the one taken then.
            let after = verify(agent, Some(&info.hash), None, timeout).await?;
            if let Some(b) = &before
                && !after.same_state(b)
            {
                attempt(
                    r.incident_id,
                    format!(
                        "Snapshot {}: loaded, but the digest differs from the one taken before",
                        hex::encode(&snapshot)
                    ),
                );
            }
            Ok(Restored {
                after: Some(after),
                replaced,
                new_lkg: None,
                module: info.hash,
            })
        }
        LadderStep::Reinstall => {
            let (info, wasm) = lkg(agent).await?;
            let init = st
                .armed
                .as_ref()
                .map(|a| a.restore_init.clone())
                .unwrap_or(AgentInit {
                    operators: st.operators.clone(),
                    watchdog: Some(ic_cdk::api::canister_self()),
                    // No upgrade armed: the staging canister the last healthy heartbeat named
                    // (found by the explorer: with `None` every later upgrade waited at
                    // Validated for good).
                    staging: st.agent_health.as_ref().and_then(|h| h.staging),
                    autonomy: Autonomy::Manual,
                    sandbox: None,
                    turn_loop: None,
                });
            let replaced = Some(replaced_from(r.incident_id, agent, timeout).await);
            let _ = management::stop(agent).await;
            let arg = candid::encode_one(&init).map_err(|e| e.to_string())?;
            let installed = install(agent, mgmt::CanisterInstallMode::Reinstall, &wasm, arg).await;
            let started = management::start(agent).await;
            installed?;
            started.map_err(|e| e.to_string())?;
            let after = verify(agent, Some(&info.hash), None, timeout).await?;
            Ok(Restored {
                after: Some(after),
                replaced,
                new_lkg: None,
                module: info.hash,
            })
        }
    }
}

/// The agent's digest right before the first rung of this restore that replaces its stable
/// memory: its records, journal and audit counters are what the restore drops. Taken once and
/// kept in the restore, so a later rung counts from it, not from the state an earlier rung
/// loaded (found by the explorer: seed 21, where a snapshot load failed its check and the clean
/// reinstall after it counted from the snapshot's state, "no task or fact" lost).
async fn replaced_from(
    incident_id: u64,
    agent: Principal,
    timeout: u32,
) -> Result<StateDigest, String> {
    if let Some(taken) = store::get()
        .restore
        .filter(|x| x.incident_id == incident_id)
        .and_then(|x| x.replaced_from)
    {
        return taken;
    }
    let taken = agent_client::digest(agent, timeout.max(30))
        .await
        .map_err(|e| e.to_string());
    store::update(|s| {
        if let Some(x) = s.restore.as_mut().filter(|x| x.incident_id == incident_id) {
            x.replaced_from.get_or_insert_with(|| taken.clone());
        }
    });
    taken
}

/// Journal transitions and audit entries that the rung dropped: the counters before it minus
/// the counters after it (`None` when either is unknown).
fn logs_lost(before: &StateDigest, after: &StateDigest) -> (Option<u64>, Option<u64>) {
    let lost = |b: Option<u64>, a: Option<u64>| Some(b?.saturating_sub(a?));
    (
        lost(before.journal_transitions, after.journal_transitions),
        lost(before.audit_next, after.audit_next),
    )
}

/// The module `hash` the agent runs after an operator's snapshot, as the new LKG: fetched from
/// the agent's store (hash-checked) with the version and schema range `health` reports.
async fn adopt(agent: Principal, hash: &[u8], incident_id: u64) -> Option<(LkgInfo, Vec<u8>)> {
    if store::get().lkg.is_some_and(|l| l.hash == hash) {
        return None;
    }
    let timeout = store::get().config.heartbeat_timeout_secs;
    let fetched = async {
        let health = agent_client::health(agent, timeout)
            .await
            .map_err(|e| e.to_string())?;
        let bytes = agent_client::module(agent, hash).await?;
        Ok::<_, String>((
            LkgInfo {
                hash: hash.to_vec(),
                version: health.version,
                schema_range: Some(health.schema_range),
                size: bytes.len() as u64,
                since: now(),
            },
            bytes,
        ))
    }
    .await;
    match fetched {
        Ok(lkg) => Some(lkg),
        Err(e) => {
            attempt(
                incident_id,
                format!(
                    "the snapshot's module {} could not be copied as the LKG ({e}); the LKG is \
                     unchanged",
                    hex::encode(hash)
                ),
            );
            None
        }
    }
}

async fn install(
    agent: Principal,
    mode: mgmt::CanisterInstallMode,
    wasm: &[u8],
    arg: Vec<u8>,
) -> Result<(), String> {
    // The agent may live on another subnet (2 MiB per request there): large modules go in
    // chunks.
    management::install_anywhere(agent, mode, wasm, arg)
        .await
        .map_err(|e| e.to_string())
}

/// The agent runs `expected` (any module when `None`), answers `health`, and (when `before` is
/// known) holds the same state.
async fn verify(
    agent: Principal,
    expected: Option<&Vec<u8>>,
    before: Option<&StateDigest>,
    timeout: u32,
) -> Result<StateDigest, RungError> {
    let status = management::status(agent).await.map_err(|e| e.to_string())?;
    if let Some(expected) = expected
        && status.module_hash.as_ref() != Some(expected)
    {
        return Err(format!(
            "after the rung the agent runs {}, not {}",
            status.module_hash.map_or("no module".into(), hex::encode),
            hex::encode(expected)
        )
        .into());
    }
    agent_client::heartbeat(agent, timeout)
        .await
        .map_err(|e| match e.unanswered {
            true => RungError::Unanswered(format!(
                "the restored agent did not answer `health` in time: {e}"
            )),
            false => RungError::Failed(format!("the restored agent is not healthy: {e}")),
        })?;
    let after = agent_client::digest(agent, timeout.max(30))
        .await
        .map_err(|e| match e.late {
            true => RungError::Unanswered(format!(
                "the restored agent did not answer state_digest in time: {e}"
            )),
            false => RungError::Failed(format!(
                "the restored agent does not answer state_digest: {e}"
            )),
        })?;
    // A rung that keeps stable memory must keep every record; records written since `before`
    // are no failure: outside an upgrade the agent takes writes while the ladder runs (a slow
    // agent looks hung, found by the explorer: seed 16, where the write made CodeOnly "fail"
    // and the clean reinstall after it erased the write).
    if let Some(b) = before
        && b.records_missing_in(&after) > 0
    {
        return Err(format!(
            "the restored state lost records: {} tasks, {} facts before; {} tasks, {} facts after",
            b.tasks, b.facts, after.tasks, after.facts
        )
        .into());
    }
    Ok(after)
}

/// Two digests in words: `N tasks and M facts before, N' and M' after (digest X -> Y)`.
fn compared(b: &StateDigest, a: &StateDigest) -> String {
    format!(
        "{} tasks and {} facts before, {} and {} after (digest {} -> {})",
        b.tasks,
        b.facts,
        a.tasks,
        a.facts,
        hex::encode(&b.sha256[..8.min(b.sha256.len())]),
        hex::encode(&a.sha256[..8.min(a.sha256.len())])
    )
}

fn finish(r: &Restore, restored: Restored) {
    let Restored {
        after,
        replaced,
        new_lkg,
        module,
    } = restored;
    if let Some((info, bytes)) = new_lkg {
        store::set_lkg(info.clone(), &bytes, false);
        store::event(
            "ladder.new_lkg",
            r.upgrade_id,
            format!("{} ({}) is the LKG", info.version, hex::encode(&info.hash)),
        );
    }
    let at = now();
    let mut incident = store::incident(r.incident_id).expect("the incident of a restore");
    // What the count of lost records starts from. A rung that replaced stable memory dropped
    // the state the agent held right before it: outside an upgrade the agent took writes
    // while the ladder ran, so the digest from when the ladder started may miss some (found by
    // the explorer: seed 16). In an upgrade, writes are paused from the arm on, so its digest
    // from then still counts if the agent did not answer right before the rung.
    let before = match &replaced {
        Some(Ok(right_before)) => Some(right_before.clone()),
        Some(Err(_)) if r.upgrade_id.is_none() => None,
        _ => incident.digest_before.clone(),
    };
    let (lost, text) = match (&before, &after) {
        (Some(b), Some(a)) if a.same_state(b) && replaced.is_some() => (
            Some(0),
            "no task or fact: the logical state digest is unchanged".to_string(),
        ),
        (Some(b), Some(a)) if a.same_state(b) => (
            Some(0),
            "none: the logical state digest is unchanged".to_string(),
        ),
        (Some(b), Some(a)) if replaced.is_none() && b.records_missing_in(a) == 0 => (
            Some(0),
            format!(
                "none: every record is kept ({} tasks and {} facts before, {} and {} after: \
                 written while the ladder ran)",
                b.tasks, b.facts, a.tasks, a.facts
            ),
        ),
        // A rung that replaced stable memory with an older state undoes what was written
        // since: a record written again (a new value of a fact) is no missing record, so the
        // counts cannot say how many were undone (found by the explorer: seed 50, an
        // operator's snapshot rollback that put back a fact's older value, "none" lost).
        (Some(b), Some(a)) if replaced.is_some() && b.records_missing_in(a) == 0 => (
            None,
            format!(
                "unknown: the state it replaced differs ({}): what was written after the \
                 restored state was taken is undone, and rewritten records cannot be counted",
                compared(b, a)
            ),
        ),
        (Some(b), Some(a)) => (Some(b.records_missing_in(a)), compared(b, a)),
        (None, Some(a)) if replaced.is_some() && r.upgrade_id.is_none() => (
            None,
            format!(
                "unknown: the agent did not answer right before its stable memory was replaced, \
                 and it took writes while the ladder ran (restored state holds {} tasks, {} \
                 facts)",
                a.tasks, a.facts
            ),
        ),
        (None, Some(a)) => (
            None,
            format!(
                "unknown: no digest before (restored state holds {} tasks, {} facts)",
                a.tasks, a.facts
            ),
        ),
        (_, None) => (None, "unknown".to_string()),
    };
    if before.is_some() {
        incident.digest_before = before;
    }
    // The rungs that keep stable memory drop no journal or audit entry; a snapshot load or a
    // clean reinstall drops those written after the state it restores.
    let (journal_lost, audit_lost, logs_text) = match (&replaced, &after) {
        (None, _) => (Some(0), Some(0), String::new()),
        (Some(Ok(b)), Some(a)) => {
            let (journal, audit) = logs_lost(b, a);
            let count = |n: Option<u64>| n.map_or("an unknown number of".into(), |n| n.to_string());
            (
                journal,
                audit,
                format!(
                    "; dropped with the replaced stable memory: {} journal transitions and {} audit entries",
                    count(journal),
                    count(audit)
                ),
            )
        }
        (Some(Err(e)), _) => (
            None,
            None,
            format!(
                "; journal and audit entries written after the restored state were dropped (how many is unknown: {e})"
            ),
        ),
        (Some(Ok(_)), None) => (None, None, String::new()),
    };
    incident.restored_at = Some(at);
    incident.ladder_step = Some(r.step);
    incident.digest_after = after;
    incident.records_lost = lost;
    incident.journal_entries_lost = journal_lost;
    incident.audit_entries_lost = audit_lost;
    incident.data_lost = if r.step == LadderStep::Reinstall {
        format!("clean reinstall: {text}{logs_text}")
    } else {
        format!("{text}{logs_text}")
    };
    incident.alert = r.step == LadderStep::Reinstall;
    incident.lkg_hash = module.clone();
    store::put_incident(incident.clone());
    store::update(|s| {
        s.restore = None;
        s.armed = None;
        s.consecutive_failures = 0;
        s.healthy_streak = 0;
    });
    store::event(
        "ladder.restored",
        r.upgrade_id,
        format!(
            "incident {} restored by {:?} in {} s; data lost: {}",
            r.incident_id,
            r.step,
            (at - incident.detected_at) / 1_000_000_000,
            incident.data_lost
        ),
    );
    // Decided before the notice is written: the notice carries it (`decided`).
    if let Some(id) = r.upgrade_id {
        queue_verdict(
            id,
            UpgradeOutcome::RolledBack {
                reason: incident.cause.clone(),
                incident_id: r.incident_id,
            },
        );
    }
    queue_notice(RepairNotice {
        at,
        by: ic_cdk::api::canister_self(),
        repaired: store::get().agent,
        action: format!("{:?}", r.step),
        detail: format!(
            "incident {}: {}; data lost: {}",
            r.incident_id, incident.cause, incident.data_lost
        ),
        incident_id: Some(r.incident_id),
        module_hash: Some(module),
        // A snapshot's journal may show an upgrade in flight that ended since: the agent ends
        // it as it had ended.
        decided: Some(store::decided()),
    });
}
