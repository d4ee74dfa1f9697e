//! The coverage stream: scenarios that reach what neither the base draw nor the extra stream
//! reached in a budget of histories (`agentctl explore`'s "missed" list): an operator's
//! rejection at each state before install, the ladder's Snapshot rung (an operator's snapshot
//! rollback, and the ladder's own after an uninstall), and the error kinds only a malformed or
//! ill-timed operator call gets (an oversized chunk or upload, a commit without an upload or
//! with the wrong hash, an unknown tool, a rollback while paused, busy or to an unknown
//! snapshot).
//!
//! The scenarios come from a third random stream ([`COVERAGE_STREAM`]), drawn after the extra
//! stream's ([`super::reach::insert`]), so no seed's base actions or extra insertions change:
//! a seed whose coverage stream inserts nothing keeps exactly its history.
//!
//! | invariant | holds when |
//! | --- | --- |
//! | `bad_input_refused` | every malformed operator call of [`Misuse`] is refused (the error kind may differ: a stopped agent rejects) |

use super::action::{Action, Misuse, RollbackKind, Who};
use super::check::Violation;
use super::reach::{record, release, self_upgrade_for_approval, tick_until};
use super::world::World;
use crate::rng::Rng;
use candid::Encode;
use canister_api::agent::{UpgradeRecord, WasmKind};
use canister_api::watchdog::RollbackTarget;
use testbed::operator;

/// The name the coverage stream's generator is seeded with (`seed ^ hash_name(COVERAGE_STREAM)`).
/// Its suffix was chosen (the first of `explore-coverage`, `-1`, `-2`, ...) so that the seeds the
/// tests replay through `generate` (seeds 1 and 2 of 16 steps, 8 of 20, 4 of 30) get no
/// insertion and keep their histories (`reach::tests::the_seeds_the_tests_and_readme_replay_...`).
pub const COVERAGE_STREAM: &str = "explore-coverage-2";

/// The chance, per thousand, that the coverage stream inserts a scenario after a base action.
pub const COVER_PER_MILLE: u64 = 10;

/// The journal states an operator can reject in: `upgrade::reject` refuses once armed, and a
/// record is first stored `Validated` (`upgrade::record` writes Proposed, Patched and Validated
/// in one message), so Validated, Rehearsed and Approved.
pub const REJECTABLE: &[&str] = &["Validated", "Rehearsed", "Approved"];

/// The coverage scenarios, each a short list of actions (at least one of them drawn only from
/// the streams, [`super::reach::is_extra`]).
pub(super) fn scenario(rng: &mut Rng) -> Vec<Action> {
    match rng.below(4) {
        // A rejection in one of the states before install (X->Rejected).
        0 => vec![Action::RejectAt(rng.below(REJECTABLE.len() as u64) as u8)],
        // The Snapshot rung by the operator: a committed release leaves its arm-time snapshot.
        1 => vec![
            Action::CommitRelease,
            Action::Rollback(RollbackKind::Snapshot(0)),
            Action::Wait(600),
        ],
        // The Snapshot rung by the ladder: the agent uninstalled once a snapshot exists.
        2 => vec![
            Action::CommitRelease,
            Action::Kill(Who::Agent),
            Action::Wait(900),
        ],
        // Two malformed or ill-timed operator calls.
        _ => (0..2)
            .map(|_| Action::Misuse(MISUSES[rng.below(MISUSES.len() as u64) as usize]))
            .collect(),
    }
}

/// Whether the coverage stream inserted into `actions` (only it draws these actions).
pub fn inserted(actions: &[Action]) -> bool {
    actions.iter().any(|a| {
        matches!(
            a,
            Action::RejectAt(_) | Action::CommitRelease | Action::Misuse(_)
        )
    })
}

/// The misuses the coverage stream draws from.
pub const MISUSES: &[Misuse] = &[
    Misuse::ChunkTooLarge,
    Misuse::UploadTooLarge,
    Misuse::CommitWithoutUpload,
    Misuse::CommitWrongHash,
    Misuse::UnknownTool,
    Misuse::RollbackWhilePaused,
    Misuse::RollbackUnknownSnapshot,
    // Last: the restore it starts runs on, and a rollback behind it in a list is busy.
    Misuse::RollbackTwice,
];

fn enc<T: candid::CandidType>(v: &T) -> Vec<u8> {
    Encode!(v).expect("encode")
}

/// Runs an action of this module; answers what came of it, in words.
pub(super) fn apply(w: &mut World, action: &Action) -> String {
    match action {
        Action::RejectAt(stage) => reject_at(w, REJECTABLE[usize::from(*stage) % REJECTABLE.len()]),
        Action::CommitRelease => commit_release(w),
        Action::Misuse(m) => misuse(w, *m),
        other => unreachable!("not an action of the coverage stream: {other:?}"),
    }
}

/// The operator releases the healthy build and runs the subnet until the watchdog's verdict
/// (approving it if it waits): the release leaves its arm-time snapshot behind.
fn commit_release(w: &mut World) -> String {
    let id = match release(w, None) {
        Ok(id) => id,
        Err(e) => return format!("skipped: the release was refused: {e}"),
    };
    let mut n = 0u32;
    tick_until(w, |w| {
        n += 1;
        // Reading the journal every round costs more than the rounds.
        if !n.is_multiple_of(10) {
            return false;
        }
        super::reach::approve_if_waiting(w, id);
        record(w, id).is_none_or(|r| r.state.is_terminal())
    });
    format!("upgrade {id}: now {:?}", record(w, id).map(|r| r.state))
}

/// Under `ApproveEach`, a self-upgrade is stored `Validated`, is rehearsed and waits for
/// approval; it is approved if `want` is `Approved`. The subnet runs one round at a time until
/// the record is in state `want`, and the operator rejects it there. Answers `rejected in X` or
/// why not.
fn reject_at(w: &mut World, want: &str) -> String {
    let id = match self_upgrade_for_approval(
        w,
        &format!("hello_rejected_in_{}", want.to_lowercase()),
        &format!("explore: reject in {want}"),
    ) {
        Ok(id) => id,
        Err(skipped) => return skipped,
    };
    let mut approved = false;
    let reached = tick_until(w, |w| {
        let Some(r) = record(w, id) else {
            return true;
        };
        let name = super::coverage::state_name(&r.state);
        if name == want || r.state.is_terminal() {
            return true;
        }
        if want == "Approved" && name == "Rehearsed" && !approved {
            approved = true;
            let _ = w.agent::<UpgradeRecord>(operator(), "approve_upgrade", enc(&id));
        }
        false
    });
    let state = record(w, id).map(|r| super::coverage::state_name(&r.state));
    if !reached || state.as_deref() != Some(want) {
        return format!("upgrade {id}: never seen in {want} (now {state:?}): not rejected");
    }
    let out: Result<UpgradeRecord, String> = w.agent(
        operator(),
        "reject_upgrade",
        Encode!(&id, &format!("explore: rejected in {want}")).expect("encode"),
    );
    match out {
        Ok(r) => format!("upgrade {id}: rejected in {want}: now {:?}", r.state),
        Err(e) => format!("upgrade {id}: the rejection in {want} was refused: {e}"),
    }
}

/// The answer to a misuse in words: `refused: ...` or `ACCEPTED: ...`.
fn refused<T: std::fmt::Debug>(out: Result<T, String>) -> String {
    match out {
        Ok(v) => format!("ACCEPTED: {v:?}"),
        Err(e) => format!("refused: {}", e.lines().next().unwrap_or_default()),
    }
}

/// A chunk of `len` bytes that starts with the Wasm magic (the first chunk must).
fn wasm_chunk(len: usize) -> serde_bytes::ByteBuf {
    let mut bytes = vec![0u8; len];
    bytes[..4].copy_from_slice(b"\0asm");
    serde_bytes::ByteBuf::from(bytes)
}

fn upload(w: &mut World, chunk: serde_bytes::ByteBuf) -> Result<candid::Reserved, String> {
    w.agent(
        operator(),
        "upload_wasm_chunk",
        Encode!(&WasmKind::Release, &chunk).expect("encode"),
    )
}

fn discard(w: &mut World) {
    let _ = w.agent::<()>(operator(), "discard_upload", enc(&WasmKind::Release));
}

fn commit(w: &mut World, hash: Vec<u8>) -> Result<candid::Reserved, String> {
    w.agent(
        operator(),
        "commit_wasm",
        Encode!(&WasmKind::Release, &serde_bytes::ByteBuf::from(hash)).expect("encode"),
    )
}

/// A malformed or ill-timed operator call; the upload is discarded after it.
fn misuse(w: &mut World, m: Misuse) -> String {
    const MIB: usize = 1024 * 1024;
    let out = match m {
        Misuse::ChunkTooLarge => {
            discard(w);
            refused(upload(w, wasm_chunk(MIB + 1)))
        }
        Misuse::UploadTooLarge => {
            discard(w);
            // 1 MiB chunks until the upload would pass its bound (the 10 MiB request that
            // carries an install, less its envelope: `agent::uploads::MAX_WASM`): the tenth
            // is refused.
            let mut out = Ok(candid::Reserved);
            for _ in 0..12 {
                out = upload(w, wasm_chunk(MIB));
                if out.is_err() {
                    break;
                }
            }
            refused(out)
        }
        Misuse::CommitWithoutUpload => {
            discard(w);
            refused(commit(w, vec![0x11; 32]))
        }
        Misuse::CommitWrongHash => {
            discard(w);
            match upload(w, wasm_chunk(64)) {
                Ok(_) => refused(commit(w, vec![0x22; 32])),
                Err(e) => format!("skipped: the upload was refused: {e}"),
            }
        }
        Misuse::UnknownTool => refused(w.agent::<String>(
            operator(),
            "call_tool",
            Encode!(&"no_such_tool", &"{}").expect("encode"),
        )),
        Misuse::RollbackWhilePaused => {
            let paused = w.watchdog::<()>(operator(), "pause", enc(&()));
            let out = match paused {
                Ok(()) => {
                    refused(w.watchdog::<u64>(operator(), "rollback", enc(&RollbackTarget::Lkg)))
                }
                Err(e) => format!("skipped: pause was refused: {e}"),
            };
            let _ = w.watchdog::<()>(operator(), "resume", enc(&()));
            out
        }
        // The first rollback starts a restore (a real one: the LKG, CodeOnly); the second,
        // while it runs, is busy.
        Misuse::RollbackTwice => {
            let first = w.watchdog::<u64>(operator(), "rollback", enc(&RollbackTarget::Lkg));
            match first {
                Ok(id) => format!(
                    "incident {id}; then {}",
                    refused(w.watchdog::<u64>(operator(), "rollback", enc(&RollbackTarget::Lkg)))
                ),
                Err(e) => format!("skipped: the first rollback was refused: {e}"),
            }
        }
        Misuse::RollbackUnknownSnapshot => refused(w.watchdog::<u64>(
            operator(),
            "rollback",
            enc(&RollbackTarget::Snapshot(vec![0xee; 16])),
        )),
    };
    if matches!(
        m,
        Misuse::ChunkTooLarge
            | Misuse::UploadTooLarge
            | Misuse::CommitWithoutUpload
            | Misuse::CommitWrongHash
    ) {
        discard(w);
    }
    out
}

/// The invariant only this module's actions can break, after `action` answered `result`.
pub(super) fn check(action: &Action, result: &str) -> Result<(), Violation> {
    // A second rollback may be accepted when the first restore ended within its own message.
    if let Action::Misuse(m) = action
        && *m != Misuse::RollbackTwice
        && result.starts_with("ACCEPTED")
    {
        return Err(Violation {
            invariant: "bad_input_refused".into(),
            detail: format!("{m:?} was accepted: {result}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accepted_misuse_breaks_the_rule() {
        let a = Action::Misuse(Misuse::CommitWrongHash);
        assert!(check(&a, "refused: hash mismatch").is_ok());
        let v = check(&a, "ACCEPTED: Reserved").unwrap_err();
        assert_eq!(v.invariant, "bad_input_refused");
        assert!(
            check(
                &Action::Misuse(Misuse::RollbackTwice),
                "incident 1; then ACCEPTED"
            )
            .is_ok()
        );
    }
}
