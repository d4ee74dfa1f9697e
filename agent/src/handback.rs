//! Service: the handback, which puts the running module back into the version store from the
//! watchdog's copy of the LKG when the store lacks it.
//!
//! A clean reinstall (the watchdog's last rung, `Reinstall`) empties the agent's stable memory,
//! and with it the version store, while the IC runs the LKG module the watchdog holds. Every
//! upgrade needs the running module's bytes (staging installs them on its sandbox first; the
//! watchdog arms with them as the parent), so a release after such a repair used to fail at
//! once with "the running module is not stored" (found by the explorer, seed 1).
//!
//! The agent pulls: it asks the IC which module it runs (canister_status, as its own
//! controller), then reads that module from the watchdog's `lkg_chunk` query, piece by piece
//! (at most 1 MiB each, under the 2 MiB reply limit), stages the pieces in stable memory
//! (`uploads`, its own slot), checks the whole against the hash the IC reported, asks the IC
//! again that it still runs that module, and stores it as the running module (and as the LKG
//! when it has none). Pulling keeps the version store's only writer inside the agent, needs no
//! update method that takes module bytes from another canister, and lets the agent check what
//! it receives against what the IC runs.
//!
//! ```text
//! asked for (repair notice, a release that needs it, post_upgrade while one is unfinished)
//!   -> status: runs M -> stored? done : lkg_chunk(M, offset) ... -> sha256 == M
//!   -> status: still M -> store, running = M, the waiting release goes on
//! failure: transient (a call failed, a piece did not fit, the bytes did not hash to M):
//!   retry in RETRY_SECS, at most MAX_ATTEMPTS; definite (the watchdog does not hold M):
//!   give up at once. Giving up says what an operator does: upload M as `Running`.
//! ```
//!
//! - Resumable: the staged pieces and the record (`config::Handback`) are in stable memory; an
//!   upgrade in between resumes where it stopped if the IC still runs the same module, and
//!   starts over if not.
//! - Single-flight: one run at a time (a heap flag; an upgrade resets it together with the
//!   calls it could have waited for).
//! - Re-reads after every await: an operator's `commit_wasm(Running)` meanwhile ends it, a
//!   different module ends the pieces of the old one, and no call starts while the agent
//!   drains its calls before installing an upgrade (`journal::installing`).
//! - Visible: `health.alerts` says how far it is, or why it gave up and what to do.
//! - An out-of-band install (`dfx canister install` of a module neither the agent nor the
//!   watchdog stores) is the definite case: the release fails with the operator's fix. The
//!   watchdog adopts such a module as its LKG only once the agent stores it, so it cannot hand
//!   it back.

use crate::api::VersionInfo;
use crate::config::{self, Handback};
use crate::{audit, journal, sandbox, schema, uploads, versions};
use canister_api::cdk::{Busy, me, now};
use canister_api::hash32;
use canister_api::ic::{self, CallError};
use canister_api::watchdog::WatchdogError;
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::time::Duration;

/// Attempts before the handback gives up (a new repair notice or a new release starts it again).
pub const MAX_ATTEMPTS: u32 = 5;
/// Seconds between attempts.
pub const RETRY_SECS: u64 = 60;
/// Bounded wait of each `lkg_chunk` call, in seconds.
const CALL_TIMEOUT_SECS: u32 = 60;
/// A run older than this is considered dead (its message trapped after an await).
const RUN_EXPIRY_NS: u64 = 30 * 60 * 1_000_000_000;

thread_local! {
    /// Since when a run is under way, if one is.
    static RUNNING: Cell<Option<u64>> = const { Cell::new(None) };
    /// When the next run is due (its timer is set): a look from a waiting release schedules
    /// one only when none is due (a run that trapped after an await set none).
    static DUE: Cell<Option<u64>> = const { Cell::new(None) };
}

/// What an operator does when the handback cannot work.
pub const OPERATOR_FIX: &str = "upload the module the agent runs with \
    upload_wasm_chunk(Running, ...) and commit_wasm(Running, sha256) (`agentctl upload-args \
    --kind running --wasm FILE --out DIR` prints the commands), then propose the release again";

/// Where the running module stands, for a release that needs its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunningModule {
    /// Stored: the hash the IC runs (or, when canister_status failed, the running marker).
    Stored([u8; 32]),
    /// The handback is under way; the release waits and looks again (`pipeline`).
    Waiting(String),
    /// Not stored and the handback gave up: the release fails with this (what to do included).
    Unavailable(String),
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// Worth another attempt.
    Transient(String),
    /// No attempt will do better: give up now.
    Definite(String),
}

/// The handback, if one is wanted.
pub fn current() -> Option<Handback> {
    config::markers().handback
}

fn set(state: Option<Handback>) {
    config::update_markers(|m| m.handback = state);
}

fn update(f: impl FnOnce(&mut Handback)) {
    config::update_markers(|m| {
        if let Some(h) = m.handback.as_mut() {
            f(h);
        }
    });
}

/// Whether `hash` is in the version store with its bytes.
fn stored(hash: &[u8; 32]) -> bool {
    versions::get(hash).is_some() && versions::blob(hash).is_some()
}

/// Asks for the handback (again): a fresh count of attempts; the pieces received so far stay
/// (they are checked against the module the IC runs at the next run). Runs it soon.
pub fn request(why: &str) {
    if sandbox::is_copy() {
        return;
    }
    let previous = current();
    set(Some(Handback {
        hash: previous.as_ref().and_then(|h| h.hash),
        total: previous.as_ref().and_then(|h| h.total),
        attempts: 0,
        last_error: None,
        gave_up: None,
        since: now(),
        why: why.to_string(),
    }));
    if previous.is_none_or(|p| p.gave_up.is_some()) {
        audit::append(now(), me(), "versions.handback_requested", None, why.into());
    }
    schedule(Duration::ZERO);
}

fn schedule(after: Duration) {
    DUE.with(|d| d.set(Some(now() + after.as_nanos() as u64)));
    ic_cdk_timers::set_timer(after, run());
}

/// Whether a run is under way or due (a few seconds' grace for its timer).
fn alive() -> bool {
    let t = now();
    RUNNING
        .with(|r| r.get())
        .is_some_and(|since| t < since + RUN_EXPIRY_NS)
        || DUE
            .with(|d| d.get())
            .is_some_and(|due| t < due + 5_000_000_000)
}

/// At boot: an unfinished handback goes on (timers do not survive an upgrade).
pub fn on_boot() {
    if current().is_some_and(|h| h.gave_up.is_none()) && !sandbox::is_copy() {
        schedule(Duration::ZERO);
    }
}

/// For a release: the running module's hash if it is stored (correcting the running marker
/// when the IC runs another stored module, an install made outside the pipeline), else the
/// handback's state. A handback that gave up is consumed here: the release fails with its
/// reason, and the next release asks for it again.
pub async fn running_module(why: &str) -> RunningModule {
    let reported = crate::own_module_hash().await;
    let marker = config::markers().running;
    let module = match reported {
        Ok(Some(m)) => hash32(&m),
        // canister_status failed: go by the marker as verified last, if its bytes are stored.
        _ => marker.filter(stored),
    };
    let Some(module) = module else {
        request(why);
        return RunningModule::Waiting(
            "the agent could not ask the IC which module it runs; retrying".into(),
        );
    };
    if stored(&module) {
        if marker != Some(module) {
            adopt_stored(module, "canister_status reports it");
        }
        return RunningModule::Stored(module);
    }
    match current() {
        Some(Handback {
            gave_up: Some(reason),
            ..
        }) => {
            set(None);
            RunningModule::Unavailable(reason)
        }
        Some(h) if h.hash.is_none_or(|x| x == module) => {
            if !alive() {
                schedule(Duration::ZERO);
            }
            RunningModule::Waiting(describe(&h))
        }
        _ => {
            request(why);
            RunningModule::Waiting(format!(
                "fetching the running module {} from the watchdog",
                hex::encode(module)
            ))
        }
    }
}

/// For a release's proposal: when the IC runs a stored module other than the one the running
/// marker names (an install made outside the pipeline, for instance during a probation that then
/// failed), the marker follows the IC, so the release is checked against the module it will
/// upgrade. Changes nothing when canister_status fails, when the module is not stored (the
/// rehearsal then asks the watchdog for it), or when an upgrade went in flight meanwhile (its
/// verdict moves the marker).
pub async fn correct_running_marker() {
    let Ok(Some(reported)) = crate::own_module_hash().await else {
        return;
    };
    // Re-read after the call: an upgrade may have started or ended meanwhile.
    let Some(module) = hash32(&reported) else {
        return;
    };
    if journal::in_flight().is_none()
        && stored(&module)
        && config::markers().running != Some(module)
    {
        adopt_stored(module, "canister_status reports it at a release's proposal");
    }
}

/// For `self_upgrade` (which needs the running module to patch): while a handback is under way
/// (a clean reinstall emptied the store) the answer says so; `None` otherwise, and the patch
/// goes ahead or fails on its own terms (no running module stored: the deployer's upload; a
/// stale parent).
pub fn missing_for_patch(ic_running: Option<&[u8]>) -> Option<String> {
    let module = ic_running.and_then(hash32)?;
    if config::markers().running.is_some() || stored(&module) {
        return None;
    }
    let h = current().filter(|h| h.gave_up.is_none() && h.hash.is_none_or(|x| x == module))?;
    if !alive() {
        schedule(Duration::ZERO);
    }
    Some(format!(
        "{}: retry once health.alerts no longer lists it",
        describe(&h)
    ))
}

/// The running marker follows a module the store holds (the LKG marker too when none is set).
fn adopt_stored(module: [u8; 32], how: &str) {
    let before = config::markers().running;
    config::update_markers(|m| {
        m.running = Some(module);
        m.lkg.get_or_insert(module);
        m.handback = None;
    });
    audit::append(
        now(),
        me(),
        "versions.running_corrected",
        None,
        format!(
            "the agent runs {} ({how}), not {}: the running marker follows",
            hex::encode(module),
            before.map_or("no module".into(), hex::encode)
        ),
    );
}

/// One run: fetch, check and store the module, or count a failed attempt.
pub async fn run() {
    if sandbox::is_copy() || current().is_none_or(|h| h.gave_up.is_some()) {
        return;
    }
    let t = now();
    if RUNNING
        .with(|r| r.get())
        .is_some_and(|since| t < since + RUN_EXPIRY_NS)
    {
        return;
    }
    DUE.with(|d| d.set(None));
    if journal::installing().is_some() {
        // No outgoing call while the agent drains its calls before installing an upgrade.
        return schedule(Duration::from_secs(RETRY_SECS));
    }
    let _running = Busy::hold(&RUNNING, Some(t));
    match attempt().await {
        Ok(()) => {}
        Err(Failure::Definite(why)) => give_up(why),
        Err(Failure::Transient(why)) => {
            let Some(h) = current() else { return };
            let attempts = h.attempts + 1;
            if attempts >= MAX_ATTEMPTS {
                give_up(format!(
                    "{attempts} attempts failed, {RETRY_SECS} s apart (last: {why})"
                ));
            } else {
                update(|h| {
                    h.attempts = attempts;
                    h.last_error = Some(why.clone());
                });
                audit::append(
                    now(),
                    me(),
                    "versions.handback_retry",
                    None,
                    format!("attempt {attempts} of {MAX_ATTEMPTS} failed: {why}"),
                );
                schedule(Duration::from_secs(RETRY_SECS));
            }
        }
    }
}

fn give_up(why: String) {
    let module = current()
        .and_then(|h| h.hash)
        .map_or("the module it runs".into(), |h| {
            format!("module {}", hex::encode(h))
        });
    let reason = format!(
        "the agent runs {module}, which its version store lacks, and the watchdog could not \
         hand it back: {why}. Fix: {OPERATOR_FIX}"
    );
    uploads::handback_clear();
    update(|h| {
        h.gave_up = Some(reason.clone());
        h.last_error = Some(why);
    });
    audit::append(now(), me(), "versions.handback_failed", None, reason);
}

/// The agent's module as the IC reports it.
async fn module_now() -> Result<[u8; 32], Failure> {
    let reported = crate::own_module_hash()
        .await
        .map_err(|e| Failure::Transient(e.to_string()))?;
    reported
        .as_deref()
        .and_then(hash32)
        .ok_or_else(|| Failure::Transient("canister_status reports no module".into()))
}

/// Whether the handback is still wanted for `module` after an await (an operator's commit may
/// have ended it, or a newer request may name another module).
fn still_wanted(module: &[u8; 32]) -> bool {
    current().is_some_and(|h| h.gave_up.is_none() && h.hash == Some(*module))
}

async fn attempt() -> Result<(), Failure> {
    let module = module_now().await?;
    // Re-read after the await.
    let Some(h) = current() else {
        return Ok(()); // stored meanwhile (an operator's commit)
    };
    if stored(&module) {
        uploads::handback_clear();
        adopt_stored(module, "its bytes are stored already");
        return Ok(());
    }
    if h.hash != Some(module) {
        // Another module than the pieces belong to (an upgrade in between): start over.
        uploads::handback_clear();
        update(|h| {
            h.hash = Some(module);
            h.total = None;
        });
    }
    let Some(watchdog) = config::get().watchdog else {
        return Err(Failure::Definite("no watchdog is configured".into()));
    };
    loop {
        let offset = uploads::handback_bytes();
        if current().and_then(|h| h.total) == Some(offset) {
            break;
        }
        let answer: Result<Result<crate::api::ModuleChunk, WatchdogError>, CallError> =
            ic::call_args(
                watchdog,
                "lkg_chunk",
                &(serde_bytes::ByteBuf::from(module.to_vec()), offset),
                Some(CALL_TIMEOUT_SECS),
            )
            .await;
        // Re-read after the await.
        if !still_wanted(&module) || uploads::handback_bytes() != offset {
            return Ok(());
        }
        let chunk = match answer {
            Ok(Ok(chunk)) => chunk,
            Ok(Err(WatchdogError::NotFound(what))) => {
                return Err(Failure::Definite(format!(
                    "not found: {what} (an install made outside the pipeline, or a new LKG \
                     since)"
                )));
            }
            Ok(Err(e)) => return Err(Failure::Transient(format!("lkg_chunk: {e}"))),
            Err(e) => return Err(Failure::Transient(e.to_string())),
        };
        let known = current().and_then(|h| h.total);
        if let Err(why) = check_piece(offset, chunk.bytes.len() as u64, chunk.total, known) {
            uploads::handback_clear();
            update(|h| h.total = None);
            return Err(Failure::Transient(why));
        }
        uploads::handback_append(chunk.bytes.into_vec());
        update(|h| h.total = Some(chunk.total));
    }
    let bytes = uploads::handback_received();
    let actual: [u8; 32] = Sha256::digest(&bytes).into();
    if actual != module {
        uploads::handback_clear();
        update(|h| h.total = None);
        return Err(Failure::Transient(format!(
            "the {} bytes received hash to {}, not to the module the agent runs {}; dropped",
            bytes.len(),
            hex::encode(actual),
            hex::encode(module)
        )));
    }
    // The IC still runs it (an upgrade may have happened during the last call).
    let again = module_now().await?;
    if !still_wanted(&module) {
        return Ok(());
    }
    if again != module {
        return Err(Failure::Transient(format!(
            "the agent was upgraded to {} during the transfer; starting over",
            hex::encode(again)
        )));
    }
    store(module, &bytes);
    Ok(())
}

/// Checks a piece against the offset asked for and the total known so far: not empty, within
/// the total, the total unchanged and within the largest module.
fn check_piece(offset: u64, len: u64, total: u64, known: Option<u64>) -> Result<(), String> {
    if total > uploads::MAX_WASM {
        return Err(format!(
            "the watchdog reports a module of {total} bytes, over the largest of {}",
            uploads::MAX_WASM
        ));
    }
    if known.is_some_and(|k| k != total) {
        return Err(format!(
            "the module's size changed during the transfer ({} -> {total} bytes); starting over",
            known.unwrap_or_default()
        ));
    }
    if len == 0 || len > canister_api::TRANSFER_CHUNK || offset + len > total {
        return Err(format!(
            "a piece of {len} bytes at offset {offset} does not fit a module of {total} bytes"
        ));
    }
    Ok(())
}

fn store(module: [u8; 32], bytes: &[u8]) {
    versions::put_blob(module, bytes);
    if versions::get(&module).is_none() {
        versions::put(
            module,
            VersionInfo {
                hash: module.to_vec(),
                version: schema::build_version(),
                parent_hash: None,
                upgrade_id: None,
                reason: "the running module, handed back by the watchdog".into(),
                created_at: now(),
                size: bytes.len() as u64,
                schema_range: Some(schema::RANGE),
                is_running: false,
                is_lkg: false,
                outcome: None,
            },
        );
    }
    config::update_markers(|m| {
        m.running = Some(module);
        m.lkg.get_or_insert(module);
        m.handback = None;
    });
    uploads::handback_clear();
    versions::enforce_retention();
    audit::append(
        now(),
        me(),
        "versions.handback",
        None,
        format!(
            "the running module {} ({} bytes) is stored again, from the watchdog's copy, \
             checked against canister_status",
            hex::encode(module),
            bytes.len()
        ),
    );
}

fn describe(h: &Handback) -> String {
    let module = h.hash.map_or("the module it runs".into(), |m| {
        format!("module {}", hex::encode(m))
    });
    let progress = match h.total {
        Some(total) => format!("{} of {total} bytes", uploads::handback_bytes()),
        None => "not started".into(),
    };
    let last = h
        .last_error
        .as_ref()
        .map_or(String::new(), |e| format!("; last failure: {e}"));
    format!(
        "the agent runs {module}, which its version store lacks: fetching it from the \
         watchdog ({progress}, {} of {MAX_ATTEMPTS} attempts failed{last})",
        h.attempts
    )
}

/// What `health.alerts` says while the handback is wanted.
pub fn alert() -> Option<String> {
    let h = current()?;
    Some(match &h.gave_up {
        Some(reason) => reason.clone(),
        None => format!("{}; a release waits for it", describe(&h)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piece_must_fit_the_module_and_the_size_must_not_change() {
        assert_eq!(check_piece(0, 10, 30, None), Ok(()));
        assert_eq!(check_piece(20, 10, 30, Some(30)), Ok(()));
        assert!(
            check_piece(25, 10, 30, Some(30))
                .unwrap_err()
                .contains("does not fit")
        );
        assert!(
            check_piece(0, 0, 30, None)
                .unwrap_err()
                .contains("does not fit")
        );
        assert!(
            check_piece(10, 10, 40, Some(30))
                .unwrap_err()
                .contains("changed")
        );
        let big = uploads::MAX_WASM + 1;
        assert!(
            check_piece(0, 10, big, None)
                .unwrap_err()
                .contains("largest")
        );
        let len = canister_api::TRANSFER_CHUNK + 1;
        assert!(
            check_piece(0, len, 4 * len, None)
                .unwrap_err()
                .contains("does not fit")
        );
    }
}
