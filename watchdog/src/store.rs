//! Repository: everything the watchdog keeps in stable memory.
//!
//! | MemoryId | store |
//! | --- | --- |
//! | 0 | `State` cell (candid): agent, operators, settings, LKG record, armed upgrade, restore in progress, verdicts to deliver (with their attempts), heartbeat counters, the agent's condition and whether the watchdog still controls it |
//! | 1 | LKG module bytes, in 1 MiB pieces (`piece index -> bytes`) |
//! | 2 | incidents (`id -> Incident`) |
//! | 3 | event log (`seq -> WatchdogEvent`), the newest [`MAX_EVENTS`] kept |
//! | 4 | the previous LKG's module bytes (the LKG before the last commit), in 1 MiB pieces |

use candid::{CandidType, Deserialize, Principal};
use canister_api::agent::{Health, RepairNotice, StateDigest, UpgradeOutcome};
use canister_api::stable::Candid;
use canister_api::watchdog::{
    ArmedUpgrade, Heartbeat, Incident, LadderStep, LkgInfo, RollbackTarget, WatchdogConfig,
    WatchdogEvent,
};
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::{Cell as StableCell, DefaultMemoryImpl, StableBTreeMap};
use sha2::{Digest, Sha256};
use std::cell::RefCell;

type Mem = VirtualMemory<DefaultMemoryImpl>;

/// Events kept.
pub const MAX_EVENTS: u64 = 5_000;
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
}

/// The watchdog's state.
#[derive(CandidType, Deserialize, Clone, Debug)]
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
    /// Verdicts the agent has not acknowledged yet (retried every tick).
    pub verdicts: Vec<(u64, UpgradeOutcome)>,
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
    /// Repair notices the agent has not acknowledged yet (retried every tick).
    pub notices: Vec<RepairNotice>,
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
}

/// Undelivered verdicts and notices kept for the alerts.
pub const MAX_UNDELIVERED: usize = 10;

thread_local! {
    static MANAGER: MemoryManager<DefaultMemoryImpl> =
        MemoryManager::init(DefaultMemoryImpl::default());
    static STATE: RefCell<StableCell<Candid<Option<State>>, Mem>> = RefCell::new(
        StableCell::init(MANAGER.with(|m| m.get(MemoryId::new(0))), Candid(None)));
    static LKG: RefCell<StableBTreeMap<u32, Vec<u8>, Mem>> = RefCell::new(
        StableBTreeMap::init(MANAGER.with(|m| m.get(MemoryId::new(1)))));
    static INCIDENTS: RefCell<StableBTreeMap<u64, Candid<Incident>, Mem>> = RefCell::new(
        StableBTreeMap::init(MANAGER.with(|m| m.get(MemoryId::new(2)))));
    static EVENTS: RefCell<StableBTreeMap<u64, Candid<WatchdogEvent>, Mem>> = RefCell::new(
        StableBTreeMap::init(MANAGER.with(|m| m.get(MemoryId::new(3)))));
    static PREVIOUS: RefCell<StableBTreeMap<u32, Vec<u8>, Mem>> = RefCell::new(
        StableBTreeMap::init(MANAGER.with(|m| m.get(MemoryId::new(4)))));
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
    STATE.with(|s| s.borrow_mut().set(Candid(Some(state))));
}

/// The state.
pub fn get() -> State {
    STATE.with(|s| {
        s.borrow()
            .get()
            .0
            .clone()
            .expect("the watchdog is initialised")
    })
}

/// Changes the state.
pub fn update<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| {
        let mut state = s
            .borrow()
            .get()
            .0
            .clone()
            .expect("the watchdog is initialised");
        let r = f(&mut state);
        s.borrow_mut().set(Candid(Some(state)));
        r
    })
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

/// Records a new incident; returns its id.
pub fn add_incident(mut incident: Incident) -> u64 {
    INCIDENTS.with(|i| {
        let mut map = i.borrow_mut();
        let id = map.last_key_value().map_or(1, |(k, _)| k + 1);
        incident.id = id;
        map.insert(id, Candid(incident));
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

/// Incidents with id >= `from`, at most `limit`.
pub fn incidents(from: u64, limit: usize) -> Vec<Incident> {
    INCIDENTS.with(|i| {
        i.borrow()
            .range(from..)
            .take(limit)
            .map(|e| e.value().0)
            .collect()
    })
}

/// How many incidents there are.
pub fn incident_count() -> u64 {
    INCIDENTS.with(|i| i.borrow().len())
}

/// Appends to the event log (and prints it to the canister log).
pub fn event(action: &str, upgrade_id: Option<u64>, detail: String) {
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
        if seq >= MAX_EVENTS {
            map.remove(&(seq - MAX_EVENTS));
        }
    });
}

/// Events with `from <= seq < to`, at most 200.
pub fn events(from: u64, to: u64) -> Vec<WatchdogEvent> {
    EVENTS.with(|e| {
        e.borrow()
            .range(from..to.max(from))
            .take(200)
            .map(|e| e.value().0)
            .collect()
    })
}
