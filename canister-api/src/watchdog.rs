//! The watchdog's interface: arming and supervising the agent's upgrades, the restore ladder,
//! incidents, and the operator's view.

use crate::agent::{AgentInit, Health, SchemaRange, StateDigest};
use crate::cadence::{Beat, Cadence};
use candid::{CandidType, Deserialize, Principal};
use serde::Serialize;

/// Supervision settings (operators change them with `configure`).
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchdogConfig {
    /// Seconds between two heartbeats (and supervision steps) at the fast cadence: on
    /// probation, during a restore, after a missed heartbeat (see `canister_api::cadence`).
    pub heartbeat_interval_secs: u64,
    /// Seconds between two heartbeats at the steady cadence (nothing armed, no restore, the
    /// agent healthy for a while): `heartbeat_interval_secs..=86400`; equal to
    /// `heartbeat_interval_secs` turns the steady cadence off. Absent: 480 s.
    pub steady_interval_secs: Option<u64>,
    /// Consecutive failed heartbeats that start the restore ladder.
    pub failure_threshold: u32,
    /// Seconds a heartbeat waits for `health` (a bounded-wait call).
    pub heartbeat_timeout_secs: u32,
    /// Healthy heartbeats a new version needs before it is committed.
    pub probation_heartbeats: u32,
    /// Seconds from arming until the new module must be running.
    pub arm_window_secs: u64,
    /// Snapshots of the agent kept (the IC allows 10 per canister); the oldest is replaced.
    pub max_snapshots: u32,
    /// A balance (own or the agent's) below this is reported in `status.alerts`.
    pub cycles_floor: u128,
    /// No heartbeat is sent while the watchdog's own balance is below this: its last cycles
    /// are kept for a restore.
    pub cycles_reserve: u128,
    /// A candidate on probation that burns cycles faster than this (per day, extrapolated from
    /// its heartbeats) fails its heartbeats.
    pub max_cycles_per_day: u128,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval_secs: 10,
            steady_interval_secs: None,
            failure_threshold: 3,
            heartbeat_timeout_secs: 5,
            probation_heartbeats: 3,
            arm_window_secs: 600,
            max_snapshots: 2,
            cycles_floor: 1_000_000_000_000,
            cycles_reserve: 100_000_000_000,
            max_cycles_per_day: 20_000_000_000_000,
        }
    }
}

impl WatchdogConfig {
    /// The heartbeat settings the cadences and their bounds are computed from.
    pub fn beat(&self) -> Beat {
        Beat {
            interval_secs: self.heartbeat_interval_secs,
            steady_secs: self.steady_interval_secs,
            failure_threshold: self.failure_threshold,
            timeout_secs: self.heartbeat_timeout_secs,
        }
    }

    /// The longest time from the agent's failure to the start of the restore ladder at the
    /// fast cadence, in seconds: `interval x threshold + timeout`.
    pub fn detection_bound_secs(&self) -> u64 {
        self.beat().fast_bound_secs()
    }

    /// The same at the steady cadence (see `canister_api::cadence`).
    pub fn steady_detection_bound_secs(&self) -> u64 {
        self.beat().steady_bound_secs()
    }

    /// The steady interval in force.
    pub fn steady_interval_secs(&self) -> u64 {
        self.beat().steady_interval_secs()
    }

    /// Why these settings are not acceptable, if they are not.
    pub fn check(&self) -> Result<(), String> {
        let mut problems = crate::heartbeat_problems(
            self.heartbeat_interval_secs,
            self.failure_threshold,
            self.heartbeat_timeout_secs,
            self.cycles_floor,
            self.cycles_reserve,
            &self.beat(),
        );
        if self.probation_heartbeats == 0 || self.probation_heartbeats > 1_000 {
            problems.push("probation_heartbeats must be 1..=1000");
        }
        if self.arm_window_secs < 60 || self.arm_window_secs > 86_400 {
            problems.push("arm_window_secs must be 60..=86400");
        }
        if self.max_snapshots == 0 || self.max_snapshots > 10 {
            problems.push("max_snapshots must be 1..=10 (the IC keeps at most 10 per canister)");
        }
        crate::problems_to_result(problems)
    }
}

/// The watchdog's init argument.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct WatchdogInit {
    /// The agent it supervises.
    pub agent: Principal,
    /// Principals that may steer the watchdog (dfx identities).
    pub operators: Vec<Principal>,
    /// Settings; the defaults when absent.
    pub config: Option<WatchdogConfig>,
    /// The LKG record to restore (set by the agent when it reinstalls a dead watchdog): the
    /// watchdog fetches these module bytes from the agent and checks their hash. When absent,
    /// the watchdog adopts the agent's running module once the agent answers healthy.
    pub lkg: Option<LkgInfo>,
}

/// `rollback`'s target.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum RollbackTarget {
    /// The last-known-good module (the restore ladder, as for a failure).
    Lkg,
    /// A module stored in the agent's version store, by SHA-256; it becomes the LKG.
    Version(Vec<u8>),
    /// A snapshot of the agent, by id (`list_canister_snapshots` / `dfx canister snapshot list`).
    Snapshot(Vec<u8>),
}

/// `arm`'s argument, sent by the agent once an upgrade is approved.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct ArmRequest {
    /// The agent's journal entry.
    pub upgrade_id: u64,
    /// The module to be installed.
    pub candidate_hash: Vec<u8>,
    /// The version the candidate will report in `health`.
    pub candidate_version: String,
    /// The schema range the candidate declares.
    pub candidate_schema_range: Option<SchemaRange>,
    /// The module running now (becomes the LKG if the watchdog has none).
    pub parent_hash: Vec<u8>,
    /// Its version.
    pub parent_version: String,
    /// The schema range it reads.
    pub parent_schema_range: Option<SchemaRange>,
    /// The init argument for a clean reinstall (last step of the ladder).
    pub restore_init: AgentInit,
    /// Set when a watchdog the agent reinstalled adopts an upgrade already armed by its
    /// predecessor: the snapshot taken then. The watchdog skips the snapshot and supervises
    /// the install from where it stands.
    pub resume: Option<Vec<u8>>,
}

/// What the watchdog tells the agent once armed: the agent then installs the candidate.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ArmReceipt {
    /// The journal entry.
    pub upgrade_id: u64,
    /// The snapshot of the agent taken for this upgrade.
    pub snapshot_id: Vec<u8>,
    /// The LKG module the watchdog holds (hash-checked).
    pub lkg_hash: Vec<u8>,
    /// The new module must be running by then.
    pub deadline: u64,
}

/// Rungs of the restore ladder, cheapest first.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LadderStep {
    /// Install the LKG in upgrade mode, keeping stable memory.
    CodeOnly,
    /// Load the snapshot taken when the upgrade was armed.
    Snapshot,
    /// Reinstall the LKG clean (data loss, operators alerted).
    Reinstall,
    /// An operator's rollback to a stored version: install it in upgrade mode.
    Version,
    /// The LKG failed after its commit: install the previous LKG in upgrade mode (it becomes
    /// the LKG again; the failed version is dropped).
    Previous,
}

/// Where supervision of an armed upgrade stands.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum ArmPhase {
    /// Accepted; the LKG copy and the snapshot are being taken.
    Arming,
    /// Armed; waiting for the candidate's module hash.
    AwaitingInstall,
    /// The candidate runs; counting healthy heartbeats.
    Probation,
    /// Probation passed; recording the new LKG and telling the agent.
    Committing,
    /// Restoring the LKG (see the incident).
    RollingBack,
}

/// An upgrade the watchdog is supervising.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ArmedUpgrade {
    /// The agent's journal entry.
    pub upgrade_id: u64,
    /// Where it stands.
    pub phase: ArmPhase,
    /// The module expected after install.
    pub candidate_hash: Vec<u8>,
    /// The version it must report.
    pub candidate_version: String,
    /// Its declared schema range.
    pub candidate_schema_range: Option<SchemaRange>,
    /// The module it replaces.
    pub parent_hash: Vec<u8>,
    /// The parent's version.
    pub parent_version: String,
    /// The schema range the parent reads.
    pub parent_schema_range: Option<SchemaRange>,
    /// The snapshot taken for it.
    pub snapshot_id: Option<Vec<u8>>,
    /// The agent's logical state when armed.
    pub digest_before: Option<StateDigest>,
    /// When the arm request was accepted.
    pub armed_at: u64,
    /// The candidate must be running by then.
    pub deadline: u64,
    /// Healthy heartbeats seen on probation.
    pub healthy_heartbeats: u32,
    /// The candidate's first probation heartbeat: when, and its cycle balance (the burn rate
    /// is measured from it).
    pub probation_start: Option<(u64, u128)>,
    /// The incident, while rolling back.
    pub incident_id: Option<u64>,
    /// The init argument for a clean reinstall.
    pub restore_init: AgentInit,
    /// The agent's controllers when the upgrade was armed (canister_status): a candidate that
    /// changes them fails its probation.
    pub controllers_before: Option<Vec<Principal>>,
}

/// The LKG module the watchdog holds.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct LkgInfo {
    /// SHA-256 of the module (checked when stored and before every install).
    pub hash: Vec<u8>,
    /// Its version.
    pub version: String,
    /// The schema range it reads.
    pub schema_range: Option<SchemaRange>,
    /// Its size in bytes.
    pub size: u64,
    /// When it became the LKG.
    pub since: u64,
}

/// One heartbeat.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// When it was sent.
    pub at: u64,
    /// Whether the agent answered healthy.
    pub healthy: bool,
    /// What was seen (the version, or why it failed).
    pub detail: String,
}

/// What happened to the agent's data in a restore.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Incident {
    /// Its id, from 1.
    pub id: u64,
    /// The upgrade that caused it, if any.
    pub upgrade_id: Option<u64>,
    /// Why the ladder started.
    pub cause: String,
    /// When the failure was detected.
    pub detected_at: u64,
    /// When the agent was verified restored.
    pub restored_at: Option<u64>,
    /// The rung that restored it.
    pub ladder_step: Option<LadderStep>,
    /// Every rung tried, with its outcome: the first lines and the newest ones (at most 32 in
    /// all, each at most 2 KiB).
    pub attempts: Vec<String>,
    /// Attempt lines dropped between the first and the newest ones (a ladder that keeps
    /// failing would otherwise grow the incident without bound).
    pub attempts_omitted: Option<u64>,
    /// The module restored.
    pub lkg_hash: Vec<u8>,
    /// The agent's logical state before: when armed, or when the ladder started; once
    /// restored by a rung that replaced stable memory (a snapshot load, a clean reinstall),
    /// right before that rung, the state whose records the rung may have dropped.
    pub digest_before: Option<StateDigest>,
    /// Its logical state after the restore.
    pub digest_after: Option<StateDigest>,
    /// Tasks and facts lost (0 when the digests match; `None` while unknown).
    pub records_lost: Option<u64>,
    /// Exactly what was lost, in words.
    pub data_lost: String,
    /// Journal transitions written after the restored state was taken and dropped by the
    /// restore (a snapshot load or a clean reinstall; 0 for the rungs that keep stable memory;
    /// `None` while unknown).
    pub journal_entries_lost: Option<u64>,
    /// Audit log entries dropped by the restore, as for `journal_entries_lost`.
    pub audit_entries_lost: Option<u64>,
    /// Whether operators must act (a clean reinstall, or a ladder that ran out of rungs).
    pub alert: bool,
}

/// A page of `incidents` (see `canister_api::page`).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct IncidentPage {
    /// Incidents in id order.
    pub incidents: Vec<Incident>,
    /// The `from` of the next page; absent when this page reaches the end.
    pub next_from: Option<u64>,
    /// The oldest incident id still kept (older ones were evicted); 0 when none is kept.
    pub oldest: u64,
}

/// A page of `events` (see `canister_api::page`).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct EventPage {
    /// Events with `from <= seq < to`, oldest first.
    pub events: Vec<WatchdogEvent>,
    /// The `from` of the next page when this one stopped before `to`; absent otherwise.
    pub next_from: Option<u64>,
    /// The oldest sequence number still kept (older ones were evicted).
    pub oldest: u64,
}

/// One entry of the watchdog's event log.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct WatchdogEvent {
    /// Sequence number, from 0.
    pub seq: u64,
    /// When.
    pub at: u64,
    /// What (`arm.accepted`, `arm.snapshot`, `verify.healthy`, `ladder.code_only`...).
    pub action: String,
    /// The upgrade concerned.
    pub upgrade_id: Option<u64>,
    /// Details.
    pub detail: String,
}

/// `status`: everything an operator looks at first.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct WatchdogStatus {
    /// The agent supervised.
    pub agent: Principal,
    /// The LKG module held.
    pub lkg: Option<LkgInfo>,
    /// The LKG before the last commit (what a version failing after commit is demoted to).
    pub previous_lkg: Option<LkgInfo>,
    /// The upgrade under supervision.
    pub armed: Option<ArmedUpgrade>,
    /// The last heartbeat.
    pub last_heartbeat: Option<Heartbeat>,
    /// Failed heartbeats in a row.
    pub consecutive_failures: u32,
    /// Incidents recorded.
    pub incidents: u64,
    /// Whether supervision is paused by an operator.
    pub paused: bool,
    /// Settings.
    pub config: WatchdogConfig,
    /// Operators.
    pub operators: Vec<Principal>,
    /// What the last healthy heartbeat saw of the agent.
    pub agent_health: Option<Health>,
    /// The restore in progress: incident and next rung.
    pub restore: Option<RestoreView>,
    /// The watchdog's own cycle balance.
    pub cycles: u128,
    /// What operators should look at (low cycles, a ladder that ran out of rungs, an LKG not
    /// held yet). Empty when all is well.
    pub alerts: Vec<String>,
    /// Repairs of the watchdog by the agent, as the agent reported them.
    pub repairs: u64,
    /// The cadence the watchdog heartbeats the agent at now (absent from watchdogs built
    /// before the steady cadence).
    pub cadence: Option<Cadence>,
}

/// A restore in progress, as `status` shows it.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RestoreView {
    /// The incident.
    pub incident_id: u64,
    /// The rung tried next.
    pub step: LadderStep,
    /// The upgrade rolled back, if any.
    pub upgrade_id: Option<u64>,
    /// Why: a failure, or an operator's rollback.
    pub target: RollbackTarget,
    /// Full passes over the ladder that failed.
    pub passes: u32,
}

/// Every error a watchdog endpoint returns.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WatchdogError {
    /// The caller may not call this method.
    #[error("{caller} is not allowed to call `{method}` (allowed: {allowed})")]
    Unauthorized {
        /// Who called.
        caller: Principal,
        /// What.
        method: String,
        /// Who may.
        allowed: String,
    },
    /// An argument is not acceptable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Another upgrade is armed or a restore is running.
    #[error("busy with upgrade {upgrade_id}: {reason}")]
    Busy {
        /// The upgrade being supervised.
        upgrade_id: u64,
        /// What it is doing.
        reason: String,
    },
    /// Supervision is paused.
    #[error("supervision is paused by an operator; `resume` first")]
    Paused,
    /// Nothing with that id.
    #[error("not found: {0}")]
    NotFound(String),
    /// The agent's state does not match the request.
    #[error("refused: {0}")]
    Refused(String),
}
