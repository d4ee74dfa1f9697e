//! The watchdog's stable state: a state kept in the single-cell layout (MemoryId 0, before the
//! split into cells by rate of change and bounded queues) is adopted at the watchdog's upgrade,
//! with its settings, operators, LKG and queued verdicts and notices (a notice of the shape
//! before `decided` included).

use candid::{CandidType, Deserialize, Encode, Principal};
use canister_api::agent::{Health, StateDigest, UpgradeOutcome};
use canister_api::watchdog::{ArmedUpgrade, Heartbeat, LkgInfo, WatchdogConfig};
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager};
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Cell as StableCell, StableBTreeMap, Storable, VectorMemory};
use std::borrow::Cow;
use std::time::Duration;
use testbed::{Options, Testbed, installable, operator, sha256, wasm};

/// The watchdog's state as the single-cell layout stored it, field for field.
#[derive(CandidType, Deserialize, Clone)]
struct SingleCellState {
    agent: Principal,
    operators: Vec<Principal>,
    config: WatchdogConfig,
    paused: bool,
    lkg: Option<LkgInfo>,
    previous_lkg: Option<LkgInfo>,
    armed: Option<ArmedUpgrade>,
    /// A restore in progress (none here: `opt` decodes a mismatched type as null).
    restore: Option<()>,
    verdicts: Vec<(u64, UpgradeOutcome)>,
    consecutive_failures: u32,
    last_heartbeat: Option<Heartbeat>,
    last_schema: Option<u32>,
    last_digest: Option<StateDigest>,
    lkg_pending: Option<LkgInfo>,
    notices: Vec<OldRepairNotice>,
    agent_health: Option<Health>,
    repairs: u64,
    low_cycles: Vec<String>,
}

/// A repair notice as builds before `decided` (the outcomes a restore's notice carries) stored
/// it, field for field.
#[derive(CandidType, Deserialize, Clone)]
struct OldRepairNotice {
    at: u64,
    by: Principal,
    repaired: Principal,
    action: String,
    detail: String,
    incident_id: Option<u64>,
    module_hash: Option<Vec<u8>>,
}

/// The cell's value: `Candid<Option<State>>` as the watchdog stored it.
struct Cell(Option<SingleCellState>);

impl Storable for Cell {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(candid::encode_one(&self.0).unwrap())
    }
    fn into_bytes(self) -> Vec<u8> {
        candid::encode_one(&self.0).unwrap()
    }
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        Cell(candid::decode_one(&bytes).unwrap())
    }
    const BOUND: Bound = Bound::Unbounded;
}

#[test]
fn a_state_of_the_single_cell_layout_is_adopted_at_upgrade() {
    let tb = Testbed::deploy(Options::default());
    let module = installable("agent");
    let lkg = LkgInfo {
        hash: sha256(&module),
        version: "0.1.0-schema3".into(),
        schema_range: None,
        size: module.len() as u64,
        since: 1,
    };
    let config = WatchdogConfig {
        heartbeat_interval_secs: 20,
        ..WatchdogConfig::default()
    };
    let second_operator = Principal::self_authenticating(b"second operator");
    let state = SingleCellState {
        agent: tb.agent,
        operators: vec![operator(), second_operator],
        config,
        paused: false,
        lkg: Some(lkg.clone()),
        previous_lkg: None,
        armed: None,
        restore: None,
        verdicts: vec![(99, UpgradeOutcome::Failed("from the old layout".into()))],
        consecutive_failures: 0,
        last_heartbeat: None,
        last_schema: Some(3),
        last_digest: None,
        lkg_pending: None,
        notices: vec![OldRepairNotice {
            at: 1,
            by: tb.watchdog,
            repaired: tb.agent,
            action: "CodeOnly".into(),
            detail: "a notice of the old shape".into(),
            incident_id: Some(7),
            module_hash: None,
        }],
        agent_health: None,
        repairs: 4,
        low_cycles: vec![],
    };
    let memory = VectorMemory::default();
    {
        let manager = MemoryManager::init(memory.clone());
        let mut cell = StableCell::init(manager.get(MemoryId::new(0)), Cell(None));
        cell.set(Cell(Some(state)));
        let mut pieces: StableBTreeMap<u32, Vec<u8>, _> =
            StableBTreeMap::init(manager.get(MemoryId::new(1)));
        for (i, piece) in module.chunks(1024 * 1024).enumerate() {
            pieces.insert(i as u32, piece.to_vec());
        }
    }
    let image = memory.borrow().clone();
    tb.sim.set_stable_memory(tb.watchdog, image);
    tb.sim
        .upgrade_canister(
            tb.watchdog,
            wasm("watchdog"),
            Encode!().unwrap(),
            Some(operator()),
        )
        .expect("the watchdog upgrades onto the old layout");
    let status = tb.watchdog_status();
    assert_eq!(status.operators, vec![operator(), second_operator]);
    assert_eq!(status.config, config);
    assert_eq!(status.lkg, Some(lkg));
    assert_eq!(status.repairs, 4);
    assert!(status.alerts.is_empty(), "{:?}", status.alerts);
    // The queued verdict was moved into the verdict queue and is delivered at the next tick.
    tb.run_for(Duration::from_secs(25));
    let events = tb.events();
    assert!(
        events.iter().any(|e| e.action == "store.split"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.action == "verdict.delivered" && e.upgrade_id == Some(99)),
        "{events:?}"
    );
    // The notice of the old shape decodes (no `decided`) and reaches the agent.
    tb.run_until(Duration::from_secs(120), |tb| {
        tb.audit().entries.iter().any(|e| {
            e.action == "agent.restored_by_watchdog"
                && e.detail.contains("a notice of the old shape")
        })
    })
    .unwrap_or_else(|| panic!("the old notice was not delivered: {:?}", tb.events()));
    // An upgrade of the split layout adopts nothing and keeps everything.
    tb.sim
        .upgrade_canister(
            tb.watchdog,
            wasm("watchdog"),
            Encode!().unwrap(),
            Some(operator()),
        )
        .expect("upgrade");
    assert_eq!(tb.watchdog_status().operators, status.operators);
    assert_eq!(
        tb.events()
            .iter()
            .filter(|e| e.action == "store.split")
            .count(),
        1
    );
}
