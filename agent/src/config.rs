//! Repository: the configuration cell (MemoryId `CONFIG`) and the markers cell (`MARKERS`).

use crate::api::{AgentInit, Autonomy, Config, GateLimits, Supervision, WatchdogView};
use crate::memory::{self, Candid, Mem};
use candid::{CandidType, Deserialize};
use canister_api::watchdog::{LkgInfo, WatchdogConfig};
use ic_stable_structures::Cell as StableCell;
use std::cell::RefCell;

/// Gate limits of a fresh agent.
pub const DEFAULT_LIMITS: GateLimits = GateLimits {
    max_per_day: 6,
    cooldown_secs: 600,
};

/// Which stored modules play which role, and the last error. Candid; new fields `opt`.
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Markers {
    /// Hash of the running module as last verified against canister_status.
    pub running: Option<[u8; 32]>,
    /// The last-known-good module.
    pub lkg: Option<[u8; 32]>,
    /// The watchdog's module.
    pub watchdog: Option<[u8; 32]>,
    /// The committed operator release waiting for `propose_release`.
    pub release: Option<[u8; 32]>,
    /// The last error an endpoint returned.
    pub last_error: Option<String>,
    /// The canister this state was created in. A copy of the state in another canister (a
    /// staging sandbox) sees a different id and stays inert.
    pub canister_id: Option<candid::Principal>,
    /// State-changing calls are refused while this is set (see `writes`).
    pub writes_paused: Option<WritePause>,
    /// The agent's supervision of the watchdog (see `supervision`).
    pub peer: Option<PeerState>,
    /// The tools the last self-test found broken (see `selftest`).
    pub self_test_failures: Option<Vec<String>>,
    /// Why the last self-test could not check or repair the agent's controllers.
    pub control_alert: Option<String>,
    /// The snapshot the watchdog took for the upgrade in flight (from its receipt).
    pub armed_snapshot: Option<Vec<u8>>,
    /// The agent's controllers as the last self-test found (and repaired) them: one of them
    /// missing later is a failure of the version running.
    pub controllers_seen: Option<Vec<candid::Principal>>,
    /// The LKG before the last commit (what the watchdog demotes a failing LKG to): kept in
    /// the version store.
    pub previous_lkg: Option<[u8; 32]>,
    /// The token of the digest cell this state's digest was kept in (see `digest`): a build
    /// that does not keep the digest drops this field when it rewrites the markers at boot,
    /// which tells the next build to recompute it.
    pub digest_token: Option<u64>,
    /// The running module coming back from the watchdog into the version store (see
    /// `handback`): set while it is wanted, cleared once stored.
    pub handback: Option<Handback>,
}

/// The handback of the running module from the watchdog's LKG copy (see `handback`): which
/// module, how far, how many attempts failed, and why it stopped if it gave up.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Handback {
    /// The module canister_status reports (`None` until it answered).
    pub hash: Option<[u8; 32]>,
    /// Its size as the watchdog reports it (`None` before the first piece).
    pub total: Option<u64>,
    /// Attempts that failed since it was last asked for.
    pub attempts: u32,
    /// The last failure.
    pub last_error: Option<String>,
    /// Why it stopped, and what an operator does about it (`None` while it goes on).
    pub gave_up: Option<String>,
    /// When it was asked for (the last time).
    pub since: u64,
    /// Why it was asked for (a repair by the watchdog, a release that needs it).
    pub why: String,
}

/// What the agent knows of the watchdog: its heartbeats, and what it needs to reinstall it.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PeerState {
    /// Heartbeats and repairs, as `health` shows them.
    pub view: WatchdogView,
    /// The watchdog's settings as last reported.
    pub config: Option<WatchdogConfig>,
    /// Its operators as last reported.
    pub operators: Vec<candid::Principal>,
    /// Its LKG record as last reported.
    pub lkg: Option<LkgInfo>,
    /// A repair that failed, for `health.alerts`.
    pub alert: Option<String>,
    /// Heartbeats are skipped for low cycles (logged once).
    pub skipping: bool,
    /// A repair deferred by an armed window was logged.
    pub deferred_logged: bool,
    /// Healthy heartbeats in a row with nothing in flight on either side (absent: none);
    /// the steady cadence starts at `canister_api::cadence::STEADY_AFTER_HEALTHY`.
    pub calm: Option<u32>,
}

impl Default for PeerState {
    fn default() -> Self {
        Self {
            view: WatchdogView {
                last_seen: None,
                consecutive_failures: 0,
                last_failure: None,
                cycles: None,
                repairs: 0,
                cadence: None,
            },
            config: None,
            operators: vec![],
            lkg: None,
            alert: None,
            skipping: false,
            deferred_logged: false,
            calm: None,
        }
    }
}

/// Why, since when and until when state-changing calls are refused.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WritePause {
    /// The upgrade.
    pub upgrade_id: u64,
    /// `rehearsal` (the state is being copied) or `upgrade` (armed, installing or on
    /// probation).
    pub reason: String,
    /// Since when.
    pub since: u64,
    /// Lifted automatically after this time (a rehearsal that never answers), if set.
    pub until: Option<u64>,
}

fn empty_config() -> Config {
    Config {
        autonomy: Autonomy::Manual,
        operators: vec![],
        watchdog: None,
        staging: None,
        limits: DEFAULT_LIMITS,
        breaker_tripped_at: None,
        supervision: None,
        keep_versions: None,
    }
}

thread_local! {
    static CONFIG: RefCell<StableCell<Candid<Config>, Mem>> =
        RefCell::new(StableCell::init(memory::get(memory::CONFIG), Candid(empty_config())));
    static MARKERS: RefCell<StableCell<Candid<Markers>, Mem>> =
        RefCell::new(StableCell::init(memory::get(memory::MARKERS), Candid(Markers::default())));
}

/// Writes the configuration of a fresh install.
pub fn init(arg: AgentInit) {
    set(Config {
        autonomy: arg.autonomy,
        operators: arg.operators,
        watchdog: arg.watchdog,
        staging: arg.staging,
        limits: DEFAULT_LIMITS,
        breaker_tripped_at: None,
        supervision: None,
        keep_versions: None,
    });
}

/// How the agent supervises the watchdog (the defaults unless an operator set them).
pub fn supervision() -> Supervision {
    get().supervision.unwrap_or_default()
}

/// The configuration.
pub fn get() -> Config {
    CONFIG.with(|c| c.borrow().get().0.clone())
}

/// Replaces the configuration.
pub fn set(config: Config) {
    CONFIG.with(|c| c.borrow_mut().set(Candid(config)));
}

/// The markers.
pub fn markers() -> Markers {
    MARKERS.with(|c| c.borrow().get().0.clone())
}

/// Changes the markers.
pub fn update_markers(f: impl FnOnce(&mut Markers)) {
    MARKERS.with(|c| {
        let mut m = c.borrow().get().0.clone();
        f(&mut m);
        c.borrow_mut().set(Candid(m));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The markers as a build from before the digest cell knew them (`digest_token` and
    /// `previous_lkg` missing).
    #[derive(CandidType, Deserialize)]
    struct OldMarkers {
        running: Option<[u8; 32]>,
        lkg: Option<[u8; 32]>,
        canister_id: Option<candid::Principal>,
    }

    /// What `digest` relies on: a build that does not know `digest_token` drops it when it
    /// rewrites the markers (candid skips unknown fields when decoding and writes only the
    /// fields it knows), so the next build sees no token and recounts the digest.
    #[test]
    fn an_older_build_rewriting_the_markers_drops_the_digest_token() {
        let new = Markers {
            running: Some([1; 32]),
            digest_token: Some(7),
            ..Markers::default()
        };
        let bytes = candid::encode_one(&new).unwrap();
        let old: OldMarkers = candid::decode_one(&bytes).unwrap();
        assert_eq!(old.running, Some([1; 32]));
        let rewritten = candid::encode_one(&old).unwrap();
        let back: Markers = candid::decode_one(&rewritten).unwrap();
        assert_eq!(back.running, Some([1; 32]));
        assert_eq!(back.digest_token, None);
    }
}
