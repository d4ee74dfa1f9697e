//! What one step of a history does, and the generator that draws a history from a seed.
//!
//! A history is a list of [`Action`]s drawn up front from the seed ([`generate`]); each action
//! carries its own parameters, so a history replays exactly and a shrunk history (some actions
//! removed) still means the same thing step by step. Actions that name an upgrade, a version or a
//! snapshot name it by role ("the newest upgrade in flight", "the second stored version") and
//! are resolved against the trio when they run.

use crate::rng::Rng;
use serde::Serialize;
use std::fmt;

/// One of the three canisters.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Who {
    /// The agent.
    Agent,
    /// The watchdog.
    Watchdog,
    /// Staging.
    Staging,
}

/// A release the operator uploads and proposes: the healthy chaos build, or one of the chaos
/// corpus's bad candidates (`agent/src/chaos.rs`), or a module the agent must refuse on upload.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseKind {
    /// A chaos build in mode `none`.
    Good,
    /// A chaos build in this mode (see [`BAD_MODES`]).
    Bad(&'static str),
    /// The healthy release cut off half-way.
    Truncated,
    /// No bytes at all.
    Empty,
}

/// The chaos corpus's bad candidates the generator draws from. Left out: `boot_spin` (runs to
/// the 300 B install limit: minutes of wall time per history), `seizes_control_live` (nobody but
/// the agent controls it any more: the README's stated limit, no restore possible),
/// `starves_late` and `burn_all` (out of cycles: an alert for the operator, not a rollback).
pub const BAD_MODES: &[&str] = &[
    "boot_trap",
    "boot_trap_live",
    "health_trap_live",
    "health_trap_late",
    "corrupt_state",
    "corrupt_raw",
    "tool_broken",
    "drops_watchdog",
    "drops_operators",
    "burn_cycles",
    "dies_after_5",
    "reports_unhealthy",
    "reports_unhealthy_all",
    "writes_trap",
    "writes_trap_live",
    "verdict_trap",
    "verdict_trap_live",
    "seizes_control",
    "health_calls_out",
    "miscompile_tools",
    "pre_upgrade_trap",
];

/// The patch operations of a `self_upgrade` the generator draws (one or two per call).
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PatchKind {
    /// `add_query_method` of a new method `hello_N`.
    AddMethod(u32),
    /// `remove_method` of this method (control-plane methods included; `hello_1` stands for
    /// the newest method a self-patch added, `World::resolve_method`).
    Remove(&'static str),
    /// `guard_controller_only` of this method.
    Guard(&'static str),
    /// `add_tool` of the `tally_vote` sample.
    AddTool,
    /// `remove_tool` of `tally_vote`.
    RemoveTool,
}

/// Methods a patch may remove or guard: control plane, domain and patch-added ones.
pub const PATCH_TARGETS: &[&str] = &[
    "health",
    "complete_upgrade",
    "export_module",
    "state_digest",
    "metrics",
    "recall",
    "remember",
    "list_facts",
    "canary_write",
    "hello_1",
];

/// An unauthorised call: the stranger tries a method it may not call.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Intrusion {
    /// Agent `set_autonomy(Auto)`.
    SetAutonomy,
    /// Agent `set_operators([stranger])`.
    AgentSetOperators,
    /// Agent `approve_upgrade(newest)`.
    Approve,
    /// Agent `complete_upgrade(newest, Committed)` (the watchdog's verdict).
    ForgeVerdict,
    /// Agent `upload_wasm_chunk(Release, ..)`.
    Upload,
    /// Watchdog `rollback(Lkg)`.
    Rollback,
    /// Watchdog `pause()`.
    Pause,
    /// Watchdog `set_operators([stranger])`.
    WatchdogSetOperators,
}

/// Which rollback target an operator asks the watchdog for.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RollbackKind {
    /// The LKG.
    Lkg,
    /// The agent's N-th stored version (mod the number stored), or an unknown hash if none.
    Version(u8),
    /// The agent's N-th snapshot (mod the number held), or an unknown id if none.
    Snapshot(u8),
}

/// A simulator fault (`ic_sim::Fault`).
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The canister's next message traps.
    Trap(Who),
    /// Calls to the canister fail (queue full).
    FailCallsTo(Who),
    /// The canister's responses are held until the faults clear.
    HoldResponses(Who),
    /// Percent of the canister's responses dropped.
    DropResponses(Who, u8),
}

/// One step of a history.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    // ---- time
    /// Simulated seconds pass.
    Wait(u64),
    /// Rounds run one at a time (a fault or call then lands between two particular messages).
    Ticks(u32),
    /// The clock jumps (no round runs in between).
    TimeJump(u64),
    // ---- domain and the agent's tools (as the operator, who may call them)
    /// `remember` fact `kN` = `vM` in namespace `explore`.
    Remember(u8, u32),
    /// `forget` fact `kN`.
    Forget(u8),
    /// `submit_task`.
    SubmitTask(u32),
    /// `call_tool("recall", kN)`.
    RecallTool(u8),
    /// `call_tool("self_upgrade", ops)`.
    SelfUpgrade(Vec<PatchKind>),
    // ---- operator
    /// Upload, commit and propose a release.
    Release(ReleaseKind),
    /// `approve_upgrade` of the newest upgrade.
    Approve,
    /// `reject_upgrade` of the newest upgrade.
    Reject,
    /// `set_autonomy`: 0 manual, 1 approve each, 2 auto.
    SetAutonomy(u8),
    /// The watchdog's `rollback`.
    Rollback(RollbackKind),
    /// The watchdog's `pause`.
    Pause,
    /// The watchdog's `resume`.
    Resume,
    /// The watchdog's `configure`: 0 defaults, 1 fast heartbeats, 2 long probation, 3 invalid.
    Configure(u8),
    /// The agent's `set_supervision`: 0 defaults, 1 fast, 2 invalid.
    SetSupervision(u8),
    /// `set_operators` on the agent and the watchdog: 0 the operator, 1 with a second, 2 empty.
    SetOperators(u8),
    /// `stop_canister` by the operator.
    Stop(Who),
    /// `start_canister` by the operator.
    Start(Who),
    /// `dfx canister install --mode upgrade` of the agent, out of band: the LKG's module when
    /// `false`, the healthy chaos build when `true`.
    OutOfBandInstall(bool),
    // ---- faults
    /// A simulator fault, in force until [`Action::ClearFaults`] (a trap fires once).
    Fault(FaultKind),
    /// Faults cleared and held responses released.
    ClearFaults,
    /// The canister is uninstalled (its partner must repair it); skipped while the partner
    /// itself is not running.
    Kill(Who),
    /// An unauthorised call.
    Intrude(Intrusion),
    /// Faults stop, the operator starts what is stopped, resumes the watchdog and rejects what
    /// awaits approval; then liveness is checked ([`super::check::liveness`]).
    Checkpoint,
    // ---- drawn only from the extra stream ([`super::reach`]): timings the base draw cannot hit
    /// Under `ApproveEach`, the operator releases the healthy build and approves it while its
    /// rehearsal runs (the rehearsal's write pause is up).
    ApproveMidRehearsal,
    /// The operator releases the healthy build, and staging's next message traps once the
    /// sandbox holds half of the agent's state (half-way through the rehearsal).
    TrapMidRehearsal,
    /// The operator releases the healthy build without this control-plane export, marked as
    /// breaking the interface on purpose.
    ReleaseWithout(&'static str),
    /// The operator releases the healthy build; once the watchdog accepted the arm request it is
    /// uninstalled, so the upgrade stays unended (armed, writes paused) without a verdict.
    StallArmed,
    /// Under a release, the watchdog's responses are held once the watchdog armed the upgrade:
    /// the agent has a heartbeat in flight when it would install. Released after 5 s.
    HoldAcrossInstall,
    /// The operator releases the healthy build; once the agent asked the watchdog to arm it
    /// (its write pause is up) and the watchdog accepted, before the watchdog's go-ahead, the
    /// operator rejects it and at once writes a fact (the rejection must lift the pause).
    RejectMidArm(u8),
    /// Cycles burned from a canister down to its freezing threshold
    /// (`ic_sim::Sim::burn_cycles`).
    Drain(Holder),
    /// The operator tops a canister up with 5 T cycles (`dfx canister deposit-cycles`).
    TopUp(Holder),
    // ---- drawn only from the coverage stream ([`super::cover`])
    /// Under `ApproveEach`, a self-upgrade that the operator rejects once the journal shows it
    /// in state `cover::REJECTABLE[n]` (Validated, Rehearsed, Approved).
    RejectAt(u8),
    /// The operator releases the healthy build and the subnet runs until the verdict
    /// (approving it if it waits).
    CommitRelease,
    /// A malformed or ill-timed operator call.
    Misuse(Misuse),
}

/// A malformed or ill-timed operator call ([`Action::Misuse`]).
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Misuse {
    /// `upload_wasm_chunk` of 1 MiB + 1 byte.
    ChunkTooLarge,
    /// 1 MiB chunks past the upload's bound.
    UploadTooLarge,
    /// `commit_wasm` with nothing uploaded.
    CommitWithoutUpload,
    /// `commit_wasm` naming another hash than the upload's.
    CommitWrongHash,
    /// `call_tool` of a tool the agent does not have.
    UnknownTool,
    /// The watchdog's `rollback` while it is paused (then `resume`).
    RollbackWhilePaused,
    /// Two `rollback(Lkg)` in a row: the second while the first restore runs.
    RollbackTwice,
    /// `rollback` to a snapshot the agent does not have.
    RollbackUnknownSnapshot,
}

/// A canister that holds cycles: one of the trio, or staging's sandbox.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Holder {
    /// One of the trio.
    Trio(Who),
    /// Staging's sandbox (skipped while staging has none).
    Sandbox,
}

impl Action {
    /// The action's kind, for the summary.
    pub fn kind(&self) -> String {
        match self {
            Action::Release(ReleaseKind::Bad(m)) => format!("release_bad_{m}"),
            Action::Fault(f) => format!(
                "fault_{}",
                match f {
                    FaultKind::Trap(_) => "trap",
                    FaultKind::FailCallsTo(_) => "fail_calls",
                    FaultKind::HoldResponses(_) => "hold_responses",
                    FaultKind::DropResponses(..) => "drop_responses",
                }
            ),
            other => {
                let text = serde_json::to_string(other).unwrap_or_default();
                // `"pause"` or `{"wait":5}`: the tag, plus the sub-kind of a release or stop.
                let tag = text
                    .trim_start_matches(['{', '"'])
                    .split(['"', ':'])
                    .next()
                    .unwrap_or_default()
                    .to_string();
                match other {
                    Action::Release(k) => format!("release_{}", format!("{k:?}").to_lowercase()),
                    Action::Stop(w) | Action::Start(w) | Action::Kill(w) => {
                        format!("{tag}_{}", format!("{w:?}").to_lowercase())
                    }
                    Action::Drain(h) | Action::TopUp(h) => format!("{tag}_{}", h.name()),
                    _ => tag,
                }
            }
        }
    }

    /// Whether this action is a fault (for the summary's "faults by kind").
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            Action::Fault(_)
                | Action::Kill(_)
                | Action::TimeJump(_)
                | Action::Release(ReleaseKind::Bad(_))
                | Action::Release(ReleaseKind::Truncated | ReleaseKind::Empty)
                | Action::Intrude(_)
                | Action::TrapMidRehearsal
                | Action::ReleaseWithout(_)
                | Action::StallArmed
                | Action::HoldAcrossInstall
                | Action::Drain(_)
        )
    }
}

impl Holder {
    /// `agent`, `watchdog`, `staging` or `sandbox`.
    pub fn name(self) -> String {
        match self {
            Holder::Trio(w) => format!("{w:?}").to_lowercase(),
            Holder::Sandbox => "sandbox".into(),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Wait(s) => write!(f, "wait {s} s"),
            Action::Ticks(n) => write!(f, "run {n} round(s)"),
            Action::TimeJump(s) => write!(f, "clock jumps {s} s"),
            Action::Remember(k, v) => write!(f, "operator: remember k{k} = v{v}"),
            Action::Forget(k) => write!(f, "operator: forget k{k}"),
            Action::SubmitTask(n) => write!(f, "operator: submit_task \"explore {n}\""),
            Action::RecallTool(k) => write!(f, "operator: call_tool recall k{k}"),
            Action::SelfUpgrade(ops) => write!(f, "agent: self_upgrade {ops:?}"),
            Action::Release(k) => write!(f, "operator: release {k:?}"),
            Action::Approve => write!(f, "operator: approve the newest upgrade"),
            Action::Reject => write!(f, "operator: reject the newest upgrade"),
            Action::SetAutonomy(a) => write!(f, "operator: set_autonomy {:?}", autonomy(*a)),
            Action::Rollback(k) => write!(f, "operator: watchdog rollback {k:?}"),
            Action::Pause => write!(f, "operator: watchdog pause"),
            Action::Resume => write!(f, "operator: watchdog resume"),
            Action::Configure(v) => write!(f, "operator: watchdog configure #{v}"),
            Action::SetSupervision(v) => write!(f, "operator: set_supervision #{v}"),
            Action::SetOperators(v) => write!(f, "operator: set_operators #{v}"),
            Action::Stop(w) => write!(f, "operator: stop {w:?}"),
            Action::Start(w) => write!(f, "operator: start {w:?}"),
            Action::OutOfBandInstall(other) => write!(
                f,
                "operator: out-of-band upgrade install of {}",
                if *other {
                    "the healthy chaos build"
                } else {
                    "the LKG"
                }
            ),
            Action::Fault(k) => write!(f, "fault: {k:?}"),
            Action::ClearFaults => write!(f, "faults cleared, held responses released"),
            Action::Kill(w) => write!(f, "fault: uninstall {w:?}"),
            Action::Intrude(i) => write!(f, "stranger: {i:?}"),
            Action::Checkpoint => write!(f, "checkpoint: heal, then check liveness"),
            Action::ApproveMidRehearsal => write!(
                f,
                "operator: under ApproveEach, release the healthy build and approve it mid-rehearsal"
            ),
            Action::TrapMidRehearsal => write!(
                f,
                "operator: release the healthy build; fault: staging traps half-way through the rehearsal"
            ),
            Action::ReleaseWithout(m) => write!(
                f,
                "operator: release the healthy build without `{m}`, breaking on purpose"
            ),
            Action::StallArmed => write!(
                f,
                "operator: release the healthy build; fault: uninstall the watchdog once it accepted the arm"
            ),
            Action::HoldAcrossInstall => write!(
                f,
                "operator: release the healthy build; fault: hold the watchdog's responses across the install (5 s)"
            ),
            Action::RejectMidArm(k) => write!(
                f,
                "operator: release the healthy build, reject it while its arm is in flight, then remember k{k}"
            ),
            Action::Drain(h) => write!(
                f,
                "fault: burn {}'s cycles down to its freezing threshold",
                h.name()
            ),
            Action::TopUp(h) => write!(f, "operator: top up {} with 5 T cycles", h.name()),
            Action::RejectAt(n) => write!(
                f,
                "operator: under ApproveEach, a self-upgrade rejected in {}",
                super::cover::REJECTABLE[usize::from(*n) % super::cover::REJECTABLE.len()]
            ),
            Action::CommitRelease => write!(
                f,
                "operator: release the healthy build and wait for its verdict"
            ),
            Action::Misuse(m) => write!(f, "operator: misuse {m:?}"),
        }
    }
}

/// The autonomy level `n` (mod 3) names.
pub fn autonomy(n: u8) -> canister_api::agent::Autonomy {
    use canister_api::agent::Autonomy;
    [Autonomy::Manual, Autonomy::ApproveEach, Autonomy::Auto][usize::from(n % 3)]
}

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.below(items.len() as u64) as usize]
}

fn who(rng: &mut Rng) -> Who {
    pick(rng, &[Who::Agent, Who::Watchdog, Who::Staging])
}

fn patch(rng: &mut Rng, step: u32) -> PatchKind {
    match rng.below(10) {
        0..=3 => PatchKind::AddMethod(step),
        4 | 5 => PatchKind::Remove(pick(rng, PATCH_TARGETS)),
        6 | 7 => PatchKind::Guard(pick(rng, PATCH_TARGETS)),
        8 => PatchKind::AddTool,
        _ => PatchKind::RemoveTool,
    }
}

/// The mode of a history's next bad release (`count` of them came before): the first one of
/// seed `s` is `BAD_MODES[s % len]`, later ones the random `drawn`. So any run of
/// `BAD_MODES.len()` consecutive seeds releases every mode of the corpus as some history's
/// first bad release (the one most likely to be admitted and rehearsed): a uniform draw left
/// some modes to seeds past 50. The draw itself is still made, so the rest of the history is
/// the same as without this.
fn stratified_bad_mode(seed: u64, count: &mut usize, drawn: &'static str) -> &'static str {
    *count += 1;
    if *count == 1 {
        BAD_MODES[(seed % BAD_MODES.len() as u64) as usize]
    } else {
        drawn
    }
}

/// The history `seed` picks: `steps` actions of the base draw ([`base`]), with the extra
/// stream's insertions between them ([`super::reach::insert`]). The base actions keep their
/// order and meaning; a seed whose extra stream inserts nothing draws exactly [`base`].
pub fn generate(seed: u64, steps: usize) -> Vec<Action> {
    super::reach::insert(seed, base(seed, steps))
}

/// The base draw: `steps` actions that `seed` picks. Weights favour what moves the system
/// (releases, self-upgrades, time) over what only probes it; every fifth of the history ends
/// with the chance of a checkpoint.
pub fn base(seed: u64, steps: usize) -> Vec<Action> {
    let mut rng = Rng::new(seed ^ crate::rng::hash_name("explore"));
    let mut out = Vec::with_capacity(steps);
    let mut bad_releases = 0;
    for i in 0..steps {
        let step = i as u32;
        let roll = rng.below(100);
        let action = match roll {
            0..=11 => match rng.below(10) {
                0..=6 => Action::Wait(1 + rng.below(90)),
                7 | 8 => Action::Ticks(1 + rng.below(12) as u32),
                _ => Action::Wait(300 + rng.below(900)),
            },
            12..=13 => Action::TimeJump(pick(&mut rng, &[600, 3_600, 86_400])),
            14..=23 => Action::Remember(rng.below(8) as u8, rng.next_u64() as u32 % 1000),
            24..=25 => Action::Forget(rng.below(8) as u8),
            26..=27 => Action::SubmitTask(step),
            28 => Action::RecallTool(rng.below(8) as u8),
            29..=35 => {
                let n = 1 + rng.below(2);
                Action::SelfUpgrade((0..n).map(|_| patch(&mut rng, step)).collect())
            }
            36..=45 => Action::Release(match rng.below(10) {
                0..=2 => ReleaseKind::Good,
                3 => pick(&mut rng, &[ReleaseKind::Truncated, ReleaseKind::Empty]),
                _ => {
                    let drawn = pick(&mut rng, BAD_MODES);
                    ReleaseKind::Bad(stratified_bad_mode(seed, &mut bad_releases, drawn))
                }
            }),
            46..=48 => Action::Approve,
            49..=50 => Action::Reject,
            51..=53 => Action::SetAutonomy(rng.below(3) as u8),
            54..=56 => Action::Rollback(match rng.below(3) {
                0 => RollbackKind::Lkg,
                1 => RollbackKind::Version(rng.below(4) as u8),
                _ => RollbackKind::Snapshot(rng.below(4) as u8),
            }),
            57..=58 => Action::Pause,
            59..=60 => Action::Resume,
            61 => Action::Configure(rng.below(4) as u8),
            62 => Action::SetSupervision(rng.below(3) as u8),
            63 => Action::SetOperators(rng.below(3) as u8),
            64..=66 => Action::Stop(who(&mut rng)),
            67..=69 => Action::Start(who(&mut rng)),
            70..=71 => Action::OutOfBandInstall(rng.below(2) == 1),
            72..=81 => {
                let w = who(&mut rng);
                Action::Fault(match rng.below(4) {
                    0 => FaultKind::Trap(w),
                    1 => FaultKind::FailCallsTo(w),
                    2 => FaultKind::HoldResponses(w),
                    _ => FaultKind::DropResponses(w, pick(&mut rng, &[10, 30, 100])),
                })
            }
            82..=86 => Action::ClearFaults,
            87..=89 => Action::Kill(pick(&mut rng, &[Who::Agent, Who::Watchdog])),
            90..=93 => Action::Intrude(pick(
                &mut rng,
                &[
                    Intrusion::SetAutonomy,
                    Intrusion::AgentSetOperators,
                    Intrusion::Approve,
                    Intrusion::ForgeVerdict,
                    Intrusion::Upload,
                    Intrusion::Rollback,
                    Intrusion::Pause,
                    Intrusion::WatchdogSetOperators,
                ],
            )),
            _ => Action::Checkpoint,
        };
        out.push(action);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_the_same_history_and_another_seed_another() {
        assert_eq!(generate(5, 40), generate(5, 40));
        assert_ne!(generate(5, 40), generate(6, 40));
        assert_eq!(base(5, 40)[..10], base(5, 10)[..]);
    }

    #[test]
    fn consecutive_seeds_release_every_bad_mode_first() {
        let first_bad = |seed: u64| {
            generate(seed, 200).into_iter().find_map(|a| match a {
                Action::Release(ReleaseKind::Bad(m)) => Some(m),
                _ => None,
            })
        };
        let n = BAD_MODES.len() as u64;
        for start in [1, 40] {
            let seen: std::collections::BTreeSet<&str> =
                (start..start + n).filter_map(first_bad).collect();
            assert_eq!(seen.len(), BAD_MODES.len(), "seeds {start}..: {seen:?}");
        }
    }

    #[test]
    fn kinds_name_the_tag_and_the_target() {
        assert_eq!(Action::Wait(3).kind(), "wait");
        assert_eq!(Action::Pause.kind(), "pause");
        assert_eq!(Action::Stop(Who::Staging).kind(), "stop_staging");
        assert_eq!(
            Action::Release(ReleaseKind::Bad("boot_trap")).kind(),
            "release_bad_boot_trap"
        );
        assert_eq!(
            Action::Fault(FaultKind::Trap(Who::Agent)).kind(),
            "fault_trap"
        );
        assert_eq!(Action::SelfUpgrade(vec![]).kind(), "self_upgrade");
    }

    #[test]
    fn a_long_history_draws_every_kind_of_action() {
        let kinds: std::collections::BTreeSet<String> = (1..=20)
            .flat_map(|s| generate(s, 100))
            .map(|a| a.kind().split('_').next().unwrap_or_default().to_string())
            .collect();
        for k in [
            "wait",
            "ticks",
            "time",
            "remember",
            "forget",
            "submit",
            "recall",
            "self",
            "release",
            "approve",
            "reject",
            "set",
            "rollback",
            "pause",
            "resume",
            "configure",
            "stop",
            "start",
            "out",
            "fault",
            "clear",
            "kill",
            "intrude",
            "checkpoint",
        ] {
            assert!(kinds.contains(k), "no {k} in {kinds:?}");
        }
    }
}
