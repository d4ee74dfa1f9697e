//! Repository: everything the watchdog keeps in stable memory.
//!
//! The state is split by how often it changes, so that a heartbeat re-encodes a few hundred
//! bytes, not the whole state; it is cached on the heap (the IC runs one message at a time and
//! a trap rolls back heap and stable memory together, so the cache never disagrees with the
//! cells), and [`update`] writes back only the parts that changed. Every list is bounded.
//!
//! | MemoryId | store |
//! | --- | --- |
//! | 0 | retired: the whole state in one cell (`legacy::State`, before the split); moved into 5-10 by the first `post_upgrade` of this layout ([`adopt_legacy`]) and left empty |
//! | 1 | LKG module bytes, in 1 MiB pieces (`piece index -> bytes`) |
//! | 2 | incidents (`id -> Incident`), the newest [`MAX_INCIDENTS`] kept, each with at most [`MAX_ATTEMPTS`] attempt lines |
//! | 3 | event log (`seq -> WatchdogEvent`), the newest [`MAX_EVENTS`] kept |
//! | 4 | the previous LKG's module bytes (the LKG before the last commit), in 1 MiB pieces |
//! | 5 | settings cell (candid [`Settings`]): agent, operators, config, paused |
//! | 6 | modules cell (candid [`Modules`]): LKG, previous LKG and pending LKG records |
//! | 7 | work cell (candid [`Work`]): the armed upgrade, the restore in progress |
//! | 8 | observations cell (candid [`Observations`]): heartbeats and the healthy streak, the agent's health and digest, repairs, low balances, delivery attempts and undelivered alerts, the agent's condition, whether the watchdog still controls it, a module installed out of band |
//! | 9 | verdicts to deliver (`upgrade id -> UpgradeOutcome`), at most [`MAX_QUEUED`] |
//! | 10 | repair notices to deliver (`seq -> RepairNotice`), at most [`MAX_QUEUED`] |
//! | 11 | outcomes decided (`upgrade id -> UpgradeOutcome`), delivered or not, the newest [`MAX_DECIDED`] upgrades: a restore's notice carries them ([`decided`]) |
//!
//! Every text the watchdog stores from elsewhere (an event's detail, an attempt line) is cut
//! at [`MAX_TEXT`] bytes.

use candid::{CandidType, Deserialize, Principal};
use canister_api::agent::{Health, ModuleChunk, RepairNotice, StateDigest, UpgradeOutcome};
use canister_api::page;
use canister_api::stable::Candid;
use canister_api::watchdog::{
    ArmedUpgrade, EventPage, Heartbeat, Incident, IncidentPage, LadderStep, LkgInfo,
    RollbackTarget, WatchdogConfig, WatchdogError, WatchdogEvent,
};
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::{Cell as StableCell, DefaultMemoryImpl, StableBTreeMap};
use sha2::{Digest, Sha256};
use std::cell::RefCell;

type Mem = VirtualMemory<DefaultMemoryImpl>;

/// Events kept.
pub const MAX_EVENTS: u64 = 5_000;
/// Incidents kept (ids are never reused; `incidents` reports the oldest kept).
pub const MAX_INCIDENTS: u64 = 1_000;
/// Attempt lines kept per incident: the first half and the newest half; the ones between are
/// counted in `Incident::attempts_omitted`.
pub const MAX_ATTEMPTS: usize = 32;
/// Verdicts and repair notices queued for the agent at most (the oldest is dropped, with an
/// event, when the agent has not taken them).
pub const MAX_QUEUED: u64 = 64;
/// Decided outcomes kept after delivery (the newest upgrades), for the notices of restores: at
/// most 64 × ([`MAX_TEXT`] + a few bytes) ≈ 130 KiB in a notice.
pub const MAX_DECIDED: u64 = 64;
/// Longest text stored from elsewhere (an event's detail, an attempt line), in bytes.
pub const MAX_TEXT: usize = 2048;
const PIECE: usize = 1024 * 1024;

/// A restore in progress: which rung is next.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Restore {
    /// The incident it serves.
    pub incident_id: u64,
    /// The rung to try next.
    pub step: LadderStep,
    /// The upgrade rolled back, if any.
    pub upgrade_id: Option<u64>,
    /// The schema version the agent's stable memory is believed to be at.
    pub schema: Option<u32>,
    /// The snapshot to load at the snapshot rung.
    pub snapshot_id: Option<Vec<u8>>,
    /// Full passes over the ladder that failed.
    pub passes: u32,
    /// What was asked: the LKG (a failure, or an operator), a stored version or a snapshot.
    pub target: RollbackTarget,
    /// For `RollbackTarget::Version`: the version's record (from the agent's version store).
    pub version: Option<LkgInfo>,
    /// Whether the ladder already tried to take the digest before the first rung.
    pub digest_tried: bool,
    /// The agent's digest right before the first rung of this restore that replaces its
    /// stable memory (a snapshot load, a clean reinstall), or why it could not be taken:
    /// what the restore dropped is counted from it, whatever a later rung replaces (`None`
    /// until such a rung ran; absent in a restore stored by an older build).
    pub replaced_from: Option<Result<StateDigest, String>>,
}

/// The watchdog's state, as its code reads it (assembled from the cells 5-8).
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// The agent.
    pub agent: Principal,
    /// Operators.
    pub operators: Vec<Principal>,
    /// Settings.
    pub config: WatchdogConfig,
    /// Supervision paused by an operator.
    pub paused: bool,
    /// The LKG module held (bytes in MemoryId 1).
    pub lkg: Option<LkgInfo>,
    /// The LKG before the last commit (bytes in MemoryId 4): what a version that fails after
    /// its commit is demoted to.
    pub previous_lkg: Option<LkgInfo>,
    /// The upgrade under supervision.
    pub armed: Option<ArmedUpgrade>,
    /// The restore in progress.
    pub restore: Option<Restore>,
    /// Failed heartbeats in a row.
    pub consecutive_failures: u32,
    /// The last heartbeat.
    pub last_heartbeat: Option<Heartbeat>,
    /// The schema version the last healthy heartbeat reported.
    pub last_schema: Option<u32>,
    /// The agent's state digest as last taken (when arming).
    pub last_digest: Option<StateDigest>,
    /// An LKG record to restore, whose bytes are still to be fetched from the agent (after
    /// the agent reinstalled the watchdog).
    pub lkg_pending: Option<LkgInfo>,
    /// The agent as the last healthy heartbeat saw it.
    pub agent_health: Option<Health>,
    /// Repairs of the watchdog by the agent, as the agent reported them.
    pub repairs: u64,
    /// Balances found below the floor (`watchdog`, `agent`), so each crossing is logged once.
    pub low_cycles: Vec<String>,
    /// Delivery attempts of each queued verdict (upgrade id, attempts).
    pub verdict_attempts: Option<Vec<(u64, u32)>>,
    /// Delivery attempts of the first queued notice.
    pub notice_attempts: Option<u32>,
    /// Verdicts and notices given up after [`crate::supervise::MAX_DELIVERIES`] attempts, for
    /// `status.alerts` (the newest [`MAX_UNDELIVERED`]).
    pub undelivered: Option<Vec<String>>,
    /// Why the agent's last heartbeat failed through no fault of its code (stopped, stopping,
    /// out of cycles, the network), while that lasts: an alert, not a rollback.
    pub condition: Option<String>,
    /// Since when and why the watchdog is not a controller of the agent any more: it cannot
    /// snapshot, restore or roll back until an operator gives control back.
    pub control_lost: Option<(u64, String)>,
    /// A module the agent runs that is not the LKG, installed outside the pipeline (logged
    /// once; adopted as the LKG once the agent stores it as its running module).
    pub foreign_module: Option<Vec<u8>>,
    /// Healthy heartbeats in a row since the last failure, arm or restore: the steady cadence
    /// starts at `canister_api::cadence::STEADY_AFTER_HEALTHY` (see [`crate::cadence`]).
    pub healthy_streak: u32,
}

/// Undelivered verdicts and notices kept for the alerts.
pub const MAX_UNDELIVERED: usize = 10;

/// Cell 5: who and how (changes when an operator acts).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct Settings {
    /// The agent.
    pub agent: Principal,
    /// Operators.
    pub operators: Vec<Principal>,
    /// Settings.
    pub config: WatchdogConfig,
    /// Supervision paused by an operator.
    pub paused: bool,
}

/// Cell 6: the module records (changes at a commit, a restore or an LKG copy).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct Modules {
    /// See [`State::lkg`].
    pub lkg: Option<LkgInfo>,
    /// See [`State::previous_lkg`].
    pub previous_lkg: Option<LkgInfo>,
    /// See [`State::lkg_pending`].
    pub lkg_pending: Option<LkgInfo>,
}

/// Cell 7: the work in progress (changes at every phase of an upgrade or a restore).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct Work {
    /// See [`State::armed`].
    pub armed: Option<ArmedUpgrade>,
    /// See [`State::restore`].
    pub restore: Option<Restore>,
}

/// Cell 8: what the heartbeats saw (changes at every heartbeat).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct Observations {
    /// See [`State::consecutive_failures`].
    pub consecutive_failures: u32,
    /// See [`State::last_heartbeat`].
    pub last_heartbeat: Option<Heartbeat>,
    /// See [`State::last_schema`].
    pub last_schema: Option<u32>,
    /// See [`State::last_digest`].
    pub last_digest: Option<StateDigest>,
    /// See [`State::agent_health`].
    pub agent_health: Option<Health>,
    /// See [`State::repairs`].
    pub repairs: u64,
    /// See [`State::low_cycles`].
    pub low_cycles: Vec<String>,
    /// See [`State::verdict_attempts`].
    pub verdict_attempts: Option<Vec<(u64, u32)>>,
    /// See [`State::notice_attempts`].
    pub notice_attempts: Option<u32>,
    /// See [`State::undelivered`].
    pub undelivered: Option<Vec<String>>,
    /// See [`State::condition`].
    pub condition: Option<String>,
    /// See [`State::control_lost`].
    pub control_lost: Option<(u64, String)>,
    /// See [`State::foreign_module`].
    pub foreign_module: Option<Vec<u8>>,
    /// See [`State::healthy_streak`] (absent in cells written before the steady cadence).
    pub healthy_streak: Option<u32>,
}

impl State {
    fn settings(&self) -> Settings {
        Settings {
            agent: self.agent,
            operators: self.operators.clone(),
            config: self.config,
            paused: self.paused,
        }
    }

    fn modules(&self) -> Modules {
        Modules {
            lkg: self.lkg.clone(),
            previous_lkg: self.previous_lkg.clone(),
            lkg_pending: self.lkg_pending.clone(),
        }
    }

    fn work(&self) -> Work {
        Work {
            armed: self.armed.clone(),
            restore: self.restore.clone(),
        }
    }

    fn observations(&self) -> Observations {
        Observations {
            consecutive_failures: self.consecutive_failures,
            last_heartbeat: self.last_heartbeat.clone(),
            last_schema: self.last_schema,
            last_digest: self.last_digest.clone(),
            agent_health: self.agent_health.clone(),
            repairs: self.repairs,
            low_cycles: self.low_cycles.clone(),
            verdict_attempts: self.verdict_attempts.clone(),
            notice_attempts: self.notice_attempts,
            undelivered: self.undelivered.clone(),
            condition: self.condition.clone(),
            control_lost: self.control_lost.clone(),
            foreign_module: self.foreign_module.clone(),
            healthy_streak: Some(self.healthy_streak).filter(|n| *n > 0),
        }
    }

    fn from_parts(s: Settings, m: Modules, w: Work, o: Observations) -> State {
        State {
            agent: s.agent,
            operators: s.operators,
            config: s.config,
            paused: s.paused,
            lkg: m.lkg,
            previous_lkg: m.previous_lkg,
            lkg_pending: m.lkg_pending,
            armed: w.armed,
            restore: w.restore,
            consecutive_failures: o.consecutive_failures,
            last_heartbeat: o.last_heartbeat,
            last_schema: o.last_schema,
            last_digest: o.last_digest,
            agent_health: o.agent_health,
            repairs: o.repairs,
            low_cycles: o.low_cycles,
            verdict_attempts: o.verdict_attempts,
            notice_attempts: o.notice_attempts,
            undelivered: o.undelivered,
            condition: o.condition,
            control_lost: o.control_lost,
            foreign_module: o.foreign_module,
            healthy_streak: o.healthy_streak.unwrap_or(0),
        }
    }
}

type Part<T> = RefCell<StableCell<Candid<Option<T>>, Mem>>;

fn part<T: CandidType + for<'de> Deserialize<'de>>(id: u8) -> Part<T> {
    RefCell::new(StableCell::init(
        MANAGER.with(|m| m.get(MemoryId::new(id))),
        Candid(None),
    ))
}

thread_local! {
    static MANAGER: MemoryManager<DefaultMemoryImpl> =
        MemoryManager::init(DefaultMemoryImpl::default());
    static LEGACY: RefCell<StableCell<Candid<Option<legacy::State>>, Mem>> = RefCell::new(
        StableCell::init(MANAGER.with(|m| m.get(MemoryId::new(0))), Candid(None)));
    static LKG: RefCell<StableBTreeMap<u32, Vec<u8>, Mem>> = RefCell::new(
        StableBTreeMap::init(MANAGER.with(|m| m.get(MemoryId::new(1)))));
    static INCIDENTS: RefCell<StableBTreeMap<u64, Candid<Incident>, Mem>> = RefCell::new(
        StableBTreeMap::init(MANAGER.with(|m| m.get(MemoryId::new(2)))));
    static EVENTS: RefCell<StableBTreeMap<u64, Candid<WatchdogEvent>, Mem>> = RefCell::new(
        StableBTreeMap::init(MANAGER.with(|m| m.get(MemoryId::new(3)))));
    static PREVIOUS: RefCell<StableBTreeMap<u32, Vec<u8>, Mem>> = RefCell::new(
        StableBTreeMap::init(MANAGER.with(|m| m.get(MemoryId::new(4)))));
    static SETTINGS: Part<Settings> = part(5);
    static MODULES: Part<Modules> = part(6);
    static WORK: Part<Work> = part(7);
    static OBSERVATIONS: Part<Observations> = part(8);
    static VERDICTS: RefCell<StableBTreeMap<u64, Candid<UpgradeOutcome>, Mem>> = RefCell::new(
        StableBTreeMap::init(MANAGER.with(|m| m.get(MemoryId::new(9)))));
    static NOTICES: RefCell<StableBTreeMap<u64, Candid<RepairNotice>, Mem>> = RefCell::new(
        StableBTreeMap::init(MANAGER.with(|m| m.get(MemoryId::new(10)))));
    static DECIDED: RefCell<StableBTreeMap<u64, Candid<UpgradeOutcome>, Mem>> = RefCell::new(
        StableBTreeMap::init(MANAGER.with(|m| m.get(MemoryId::new(11)))));
    /// The state as the cells hold it (see the module doc).
    static CACHE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn read<T: Clone + CandidType + for<'de> Deserialize<'de>>(
    cell: &'static std::thread::LocalKey<Part<T>>,
) -> Option<T> {
    cell.with(|c| c.borrow().get().0.clone())
}

fn write<T: Clone + CandidType + for<'de> Deserialize<'de>>(
    cell: &'static std::thread::LocalKey<Part<T>>,
    value: T,
) {
    cell.with(|c| c.borrow_mut().set(Candid(Some(value))));
}

/// Writes the parts of `new` that differ from `old` (all of them when `old` is `None`).
fn persist(old: Option<&State>, new: &State) {
    if old.is_none_or(|o| o.settings() != new.settings()) {
        write(&SETTINGS, new.settings());
    }
    if old.is_none_or(|o| o.modules() != new.modules()) {
        write(&MODULES, new.modules());
    }
    if old.is_none_or(|o| o.work() != new.work()) {
        write(&WORK, new.work());
    }
    if old.is_none_or(|o| o.observations() != new.observations()) {
        write(&OBSERVATIONS, new.observations());
    }
}

fn load() -> State {
    match (
        read(&SETTINGS),
        read(&MODULES),
        read(&WORK),
        read(&OBSERVATIONS),
    ) {
        (Some(s), Some(m), Some(w), Some(o)) => State::from_parts(s, m, w, o),
        _ => ic_cdk::trap(
            "the watchdog's state is missing: it was neither initialised nor moved from the \
             single-cell layout",
        ),
    }
}

/// Cuts `text` at [`MAX_TEXT`] bytes (on a character boundary), saying so.
pub fn bounded(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut at = MAX_TEXT - 16;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
        text.push_str(" ... (cut)");
    }
    text
}

type Pieces = std::thread::LocalKey<RefCell<StableBTreeMap<u32, Vec<u8>, Mem>>>;

fn write_pieces(slot: &'static Pieces, bytes: &[u8]) {
    slot.with(|l| {
        let mut map = l.borrow_mut();
        let old: Vec<u32> = map.keys().collect();
        for k in old {
            map.remove(&k);
        }
        for (i, piece) in bytes.chunks(PIECE).enumerate() {
            map.insert(i as u32, piece.to_vec());
        }
    });
}

/// The bytes of `slot` if they hash to `info.hash`.
fn read_checked(slot: &'static Pieces, info: &LkgInfo, what: &str) -> Result<Vec<u8>, String> {
    let bytes: Vec<u8> = slot.with(|l| l.borrow().values().flatten().collect());
    let actual = Sha256::digest(&bytes);
    if actual.as_slice() != info.hash.as_slice() {
        return Err(format!(
            "the {what} copy is corrupted: it hashes to {}, the {what} is {}",
            hex::encode(actual),
            hex::encode(&info.hash)
        ));
    }
    Ok(bytes)
}

/// Writes the state of a fresh install.
pub fn init(state: State) {
    persist(None, &state);
    CACHE.with(|c| *c.borrow_mut() = Some(state));
}

/// In `post_upgrade`: moves a state kept in the single cell of the old layout (MemoryId 0) into
/// the cells and queues of this one, and empties the old cell. Answers whether there was one.
pub fn adopt_legacy() -> bool {
    let Some(old) = LEGACY.with(|l| l.borrow().get().0.clone()) else {
        return false;
    };
    let (state, verdicts, notices) = old.split();
    init(state);
    for (id, outcome) in verdicts {
        queue_verdict(id, outcome);
    }
    for notice in notices {
        queue_notice(notice);
    }
    LEGACY.with(|l| l.borrow_mut().set(Candid(None)));
    true
}

/// The state.
pub fn get() -> State {
    CACHE.with(|c| c.borrow_mut().get_or_insert_with(load).clone())
}

/// Changes the state; only the parts that changed are written.
pub fn update<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let old = get();
    let mut new = old.clone();
    let r = f(&mut new);
    persist(Some(&old), &new);
    CACHE.with(|c| *c.borrow_mut() = Some(new));
    r
}

/// Queues `outcome` for upgrade `id` (replacing one queued for it); drops the oldest beyond
/// [`MAX_QUEUED`]. The outcome is also kept as decided ([`decided`]). A reason is cut at
/// [`MAX_TEXT`] bytes, the same in both.
pub fn queue_verdict(id: u64, outcome: UpgradeOutcome) {
    let outcome = cut_reason(outcome);
    keep_decided(id, &outcome);
    let dropped = VERDICTS.with(|v| {
        let mut map = v.borrow_mut();
        map.insert(id, Candid(outcome));
        let mut dropped = vec![];
        while map.len() > MAX_QUEUED {
            dropped.extend(map.pop_first().map(|(id, _)| id));
        }
        dropped
    });
    for id in dropped {
        event(
            "verdict.dropped",
            Some(id),
            format!("more than {MAX_QUEUED} verdicts were waiting for the agent"),
        );
    }
}

/// Whether a verdict or a repair notice waits for the agent.
pub fn has_deliveries() -> bool {
    !VERDICTS.with(|v| v.borrow().is_empty()) || !NOTICES.with(|n| n.borrow().is_empty())
}

/// The verdicts waiting for the agent, oldest upgrade first.
pub fn verdicts() -> Vec<(u64, UpgradeOutcome)> {
    VERDICTS.with(|v| {
        v.borrow()
            .iter()
            .map(|e| {
                let (id, o) = e.into_pair();
                (id, o.0)
            })
            .collect()
    })
}

/// `outcome` with its reason cut at [`MAX_TEXT`] bytes.
fn cut_reason(outcome: UpgradeOutcome) -> UpgradeOutcome {
    match outcome {
        UpgradeOutcome::RolledBack {
            reason,
            incident_id,
        } => UpgradeOutcome::RolledBack {
            reason: bounded(reason),
            incident_id,
        },
        UpgradeOutcome::Failed(reason) => UpgradeOutcome::Failed(bounded(reason)),
        UpgradeOutcome::Committed => UpgradeOutcome::Committed,
    }
}

/// Keeps `outcome` as decided for upgrade `id` (the newest [`MAX_DECIDED`] are kept): every
/// verdict, whether queued ([`queue_verdict`]) or taken by the agent at once (a commit).
pub fn keep_decided(id: u64, outcome: &UpgradeOutcome) {
    let outcome = cut_reason(outcome.clone());
    DECIDED.with(|d| {
        let mut map = d.borrow_mut();
        map.insert(id, Candid(outcome));
        while map.len() > MAX_DECIDED {
            map.pop_first();
        }
    });
}

/// The outcomes decided for the newest [`MAX_DECIDED`] upgrades, delivered or not, oldest
/// upgrade first.
pub fn decided() -> Vec<(u64, UpgradeOutcome)> {
    DECIDED.with(|d| {
        d.borrow()
            .iter()
            .map(|e| {
                let (id, o) = e.into_pair();
                (id, o.0)
            })
            .collect()
    })
}

/// Upgrade `id` is armed: an outcome kept under its id is an older upgrade's (the agent's
/// journal numbers afresh after a restore or a clean reinstall), and is forgotten.
pub fn forget_decided(id: u64) {
    DECIDED.with(|d| d.borrow_mut().remove(&id));
}

/// The agent took the verdict on upgrade `id` (it stays among the [`decided`] outcomes).
pub fn verdict_delivered(id: u64) {
    VERDICTS.with(|v| v.borrow_mut().remove(&id));
}

/// Queues a repair notice for the agent; drops the oldest beyond [`MAX_QUEUED`].
pub fn queue_notice(notice: RepairNotice) {
    let dropped = NOTICES.with(|n| {
        let mut map = n.borrow_mut();
        let seq = map.last_key_value().map_or(0, |(k, _)| k + 1);
        map.insert(seq, Candid(notice));
        let mut dropped = 0;
        while map.len() > MAX_QUEUED {
            map.pop_first();
            dropped += 1;
        }
        dropped
    });
    if dropped > 0 {
        event(
            "notice.dropped",
            None,
            format!("more than {MAX_QUEUED} repair notices were waiting for the agent"),
        );
    }
}

/// The repair notices waiting for the agent, oldest first, with their sequence numbers.
pub fn notices() -> Vec<(u64, RepairNotice)> {
    NOTICES.with(|n| {
        n.borrow()
            .iter()
            .map(|e| {
                let (seq, o) = e.into_pair();
                (seq, o.0)
            })
            .collect()
    })
}

/// The agent took notice `seq`.
pub fn notice_delivered(seq: u64) {
    NOTICES.with(|n| n.borrow_mut().remove(&seq));
}

/// Stores `bytes` as the LKG module with `info` (the caller checked the hash). The LKG it
/// replaces becomes the previous LKG when `keep_previous` (a commit), and is dropped otherwise.
pub fn set_lkg(info: LkgInfo, bytes: &[u8], keep_previous: bool) {
    let old = get().lkg;
    let previous = match old {
        Some(old) if keep_previous && old.hash != info.hash => match lkg_bytes() {
            Ok(old_bytes) => {
                write_pieces(&PREVIOUS, &old_bytes);
                Some(old)
            }
            Err(_) => None,
        },
        _ => get()
            .previous_lkg
            .filter(|p| keep_previous && p.hash != info.hash),
    };
    write_pieces(&LKG, bytes);
    update(|s| {
        s.lkg = Some(info);
        s.previous_lkg = previous;
    });
}

/// The LKG module's bytes, if they still hash to the recorded LKG hash.
pub fn lkg_bytes() -> Result<Vec<u8>, String> {
    let info = get().lkg.ok_or("the watchdog holds no LKG module yet")?;
    read_checked(&LKG, &info, "LKG")
}

/// The previous LKG module's bytes, if they still hash to its recorded hash.
pub fn previous_bytes() -> Result<(LkgInfo, Vec<u8>), String> {
    let info = get()
        .previous_lkg
        .ok_or("the watchdog holds no previous LKG")?;
    let bytes = read_checked(&PREVIOUS, &info, "previous LKG")?;
    Ok((info, bytes))
}

/// A piece of a module the watchdog holds, its LKG or its previous LKG, by hash: the bytes
/// from `offset` to the end of the stored 1 MiB piece that holds `offset` (so at most
/// [`canister_api::TRANSFER_CHUNK`], well under the 2 MiB reply limit), and the module's total
/// size. Not re-hashed here: the receiver checks the whole against the hash it asked for (the
/// agent's `handback`), which keeps each piece cheap.
pub fn module_piece(hash: &[u8], offset: u64) -> Result<ModuleChunk, WatchdogError> {
    let st = get();
    let slot: &'static Pieces = match (&st.lkg, &st.previous_lkg) {
        (Some(l), _) if l.hash == hash => &LKG,
        (_, Some(p)) if p.hash == hash => &PREVIOUS,
        _ => {
            return Err(WatchdogError::NotFound(format!(
                "module {}: the watchdog keeps only its LKG ({}) and the previous LKG",
                hex::encode(hash),
                st.lkg.map_or("not set yet".into(), |l| format!(
                    "{} {}",
                    l.version,
                    hex::encode(l.hash)
                ))
            )));
        }
    };
    slot.with(|l| {
        let map = l.borrow();
        let total = match map.last_key_value() {
            Some((last, bytes)) => u64::from(last) * PIECE as u64 + bytes.len() as u64,
            None => 0,
        };
        if offset > total {
            return Err(WatchdogError::InvalidArgument(format!(
                "offset {offset} is past the module's {total} bytes"
            )));
        }
        let index = (offset / PIECE as u64) as u32;
        let within = (offset % PIECE as u64) as usize;
        let bytes = map
            .get(&index)
            .map(|piece| piece.get(within..).unwrap_or_default().to_vec())
            .unwrap_or_default();
        Ok(ModuleChunk {
            total,
            bytes: serde_bytes::ByteBuf::from(bytes),
        })
    })
}

/// Records a new incident; returns its id. The oldest beyond [`MAX_INCIDENTS`] are evicted.
pub fn add_incident(mut incident: Incident) -> u64 {
    INCIDENTS.with(|i| {
        let mut map = i.borrow_mut();
        let id = map.last_key_value().map_or(1, |(k, _)| k + 1);
        incident.id = id;
        map.insert(id, Candid(incident));
        while map.len() > MAX_INCIDENTS {
            map.pop_first();
        }
        id
    })
}

/// Incident `id`.
pub fn incident(id: u64) -> Option<Incident> {
    INCIDENTS.with(|i| i.borrow().get(&id).map(|c| c.0))
}

/// Replaces incident `incident.id`.
pub fn put_incident(incident: Incident) {
    INCIDENTS.with(|i| i.borrow_mut().insert(incident.id, Candid(incident)));
}

/// Adds an attempt line to `incident`, keeping the first and the newest lines within
/// [`MAX_ATTEMPTS`] and counting the ones dropped between them.
pub fn push_attempt(incident: &mut Incident, line: String) {
    incident.attempts.push(bounded(line));
    if incident.attempts.len() > MAX_ATTEMPTS {
        incident.attempts.remove(MAX_ATTEMPTS / 2);
        *incident.attempts_omitted.get_or_insert(0) += 1;
    }
}

/// A page of incidents with id >= `from` (at most `limit`, see `canister_api::page`).
pub fn incidents(from: u64, limit: u32) -> IncidentPage {
    INCIDENTS.with(|i| {
        let map = i.borrow();
        let oldest = map.first_key_value().map_or(0, |(k, _)| k);
        let items = map.range(from..).map(|e| {
            let (id, incident) = e.into_pair();
            (id, incident.0)
        });
        let (incidents, next_from) = page::collect(items, limit, page::PAGE_BYTES);
        IncidentPage {
            incidents,
            next_from,
            oldest,
        }
    })
}

/// How many incidents there are (ids are never reused: the newest id).
pub fn incident_count() -> u64 {
    INCIDENTS.with(|i| i.borrow().last_key_value().map_or(0, |(k, _)| k))
}

/// Appends to the event log (and prints it to the canister log).
pub fn event(action: &str, upgrade_id: Option<u64>, detail: String) {
    let detail = bounded(detail);
    ic_cdk::println!("watchdog {action} {upgrade_id:?}: {detail}");
    EVENTS.with(|e| {
        let mut map = e.borrow_mut();
        let seq = map.last_key_value().map_or(0, |(k, _)| k + 1);
        map.insert(
            seq,
            Candid(WatchdogEvent {
                seq,
                at: ic_cdk::api::time(),
                action: action.to_string(),
                upgrade_id,
                detail,
            }),
        );
        while map.len() > MAX_EVENTS {
            map.pop_first();
        }
    });
}

/// Events with `from <= seq < to`: a page of at most 200 (see `canister_api::page`).
pub fn events(from: u64, to: u64) -> EventPage {
    EVENTS.with(|e| {
        let map = e.borrow();
        let oldest = map.first_key_value().map_or(0, |(k, _)| k);
        let items = map.range(from..to.max(from)).map(|e| {
            let (seq, event) = e.into_pair();
            (seq, event.0)
        });
        let (events, next_from) = page::collect(items, 200, page::PAGE_BYTES);
        EventPage {
            events,
            next_from,
            oldest,
        }
    })
}

/// The single-cell layout the watchdog kept before the split (MemoryId 0): its state is read
/// once, by [`adopt_legacy`]. Field for field the old `State`.
mod legacy {
    use super::*;

    #[derive(CandidType, Deserialize, Clone, Debug)]
    pub struct State {
        pub agent: Principal,
        pub operators: Vec<Principal>,
        pub config: WatchdogConfig,
        pub paused: bool,
        pub lkg: Option<LkgInfo>,
        pub previous_lkg: Option<LkgInfo>,
        pub armed: Option<ArmedUpgrade>,
        pub restore: Option<Restore>,
        pub verdicts: Vec<(u64, UpgradeOutcome)>,
        pub consecutive_failures: u32,
        pub last_heartbeat: Option<Heartbeat>,
        pub last_schema: Option<u32>,
        pub last_digest: Option<StateDigest>,
        pub lkg_pending: Option<LkgInfo>,
        pub notices: Vec<RepairNotice>,
        pub agent_health: Option<Health>,
        pub repairs: u64,
        pub low_cycles: Vec<String>,
    }

    impl State {
        /// The state of this layout, and the queues.
        pub fn split(self) -> (super::State, Vec<(u64, UpgradeOutcome)>, Vec<RepairNotice>) {
            let state = super::State {
                agent: self.agent,
                operators: self.operators,
                config: self.config,
                paused: self.paused,
                lkg: self.lkg,
                previous_lkg: self.previous_lkg,
                armed: self.armed,
                restore: self.restore,
                consecutive_failures: self.consecutive_failures,
                last_heartbeat: self.last_heartbeat,
                last_schema: self.last_schema,
                last_digest: self.last_digest,
                lkg_pending: self.lkg_pending,
                agent_health: self.agent_health,
                repairs: self.repairs,
                low_cycles: self.low_cycles,
                verdict_attempts: None,
                notice_attempts: None,
                undelivered: None,
                condition: None,
                control_lost: None,
                foreign_module: None,
                healthy_streak: 0,
            };
            (state, self.verdicts, self.notices)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decided_outcomes_stay_after_delivery_bounded_and_cut() {
        for id in 1..=100 {
            let reason = if id == 100 {
                "x".repeat(5000)
            } else {
                format!("upgrade {id}")
            };
            queue_verdict(
                id,
                UpgradeOutcome::RolledBack {
                    reason,
                    incident_id: id,
                },
            );
            verdict_delivered(id);
        }
        assert!(verdicts().is_empty());
        let kept = decided();
        assert_eq!(kept.len() as u64, MAX_DECIDED);
        assert_eq!(kept[0].0, 100 - MAX_DECIDED + 1, "the oldest are dropped");
        assert!(
            matches!(&kept[0].1, UpgradeOutcome::RolledBack { reason, .. } if reason == "upgrade 37")
        );
        match &kept.last().unwrap().1 {
            UpgradeOutcome::RolledBack { reason, .. } => assert!(reason.len() <= MAX_TEXT),
            other => panic!("{other:?}"),
        }
        forget_decided(100);
        assert_eq!(
            decided().last().unwrap().0,
            99,
            "an id armed again forgets its outcome"
        );
    }

    #[test]
    fn an_incident_keeps_the_first_and_newest_attempt_lines() {
        let mut incident = Incident {
            id: 1,
            upgrade_id: None,
            cause: "test".into(),
            detected_at: 0,
            restored_at: None,
            ladder_step: None,
            attempts: vec![],
            attempts_omitted: None,
            lkg_hash: vec![],
            digest_before: None,
            digest_after: None,
            records_lost: None,
            data_lost: String::new(),
            journal_entries_lost: None,
            audit_entries_lost: None,
            alert: false,
        };
        for i in 0..500 {
            push_attempt(
                &mut incident,
                format!("line {i} {}", "x".repeat(if i == 7 { 5000 } else { 0 })),
            );
        }
        assert_eq!(incident.attempts.len(), MAX_ATTEMPTS);
        assert_eq!(incident.attempts_omitted, Some(500 - MAX_ATTEMPTS as u64));
        assert!(incident.attempts[0].starts_with("line 0 "));
        assert!(
            incident.attempts[MAX_ATTEMPTS / 2 - 1]
                .starts_with(&format!("line {} ", MAX_ATTEMPTS / 2 - 1))
        );
        assert!(incident.attempts.last().unwrap().starts_with("line 499 "));
        assert!(incident.attempts.iter().all(|l| l.len() <= MAX_TEXT));
    }
}
