//! The handback: after a clean reinstall (the watchdog's last rung) the agent's version store is
//! empty; the agent fetches the module it runs from the watchdog's LKG copy (`lkg_chunk`),
//! checks it against canister_status, and stores it, so the next release commits (found by the
//! explorer, seed 1). Also: a transfer that fails and one whose bytes do not hash to the module
//! are retried and change nothing meanwhile; an upgrade in the middle does not break it; a
//! module installed out of band that nobody stores makes the release fail with the operator's
//! fix, which works; a stored module installed out of band (the parent again during a
//! probation, or between a proposal and its rehearsal) ends the upgrade at once with the reason,
//! and the next proposal is made against the module that runs; `lkg_chunk` refuses strangers.

use candid::{Encode, Principal};
use canister_api::agent::{ModuleChunk, UpgradeRecord, UpgradeState, WasmKind};
use canister_api::watchdog::{LadderStep, WatchdogError};
use ic_sim::Fault;
use std::time::Duration;
use testbed::{Testbed, chaos_release, operator, sha256, stranger};

const LIMIT: Duration = Duration::from_secs(30 * 60);

fn seeded() -> Testbed {
    let tb = Testbed::deploy(testbed::Options::default());
    tb.seed_state(5, 5);
    tb.run_until(LIMIT, |tb| {
        tb.watchdog_status().lkg.is_some() && tb.watchdog_status().agent_health.is_some()
    })
    .expect("the watchdog has an LKG and a healthy heartbeat");
    tb
}

/// Uninstalls the agent and waits until the watchdog reinstalled it clean.
fn reinstalled_clean(tb: &Testbed) {
    tb.uninstall_agent_until_reinstalled_clean(LIMIT);
}

fn audit_details(tb: &Testbed, action: &str) -> Vec<String> {
    tb.audit()
        .entries
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| e.detail)
        .collect()
}

/// The running module is in the version store, marked running (and LKG).
fn running_stored(tb: &Testbed) -> bool {
    let module = tb.agent_module();
    tb.versions()
        .iter()
        .any(|v| Some(&v.hash) == module.as_ref() && v.is_running && v.is_lkg)
}

fn terminal(tb: &Testbed, id: u64) -> UpgradeRecord {
    tb.run_until(LIMIT, |tb| tb.record(id).state.is_terminal())
        .unwrap_or_else(|| panic!("upgrade {id} did not finish: {:?}", tb.record(id)));
    tb.record(id)
}

fn commits(tb: &Testbed, bytes: &[u8]) -> UpgradeRecord {
    let rec = tb.propose_release(bytes, "release").expect("propose");
    let rec = terminal(tb, rec.id);
    assert_eq!(rec.state, UpgradeState::Committed, "{:?}", rec.history);
    rec
}

fn lkg_chunk(
    tb: &Testbed,
    caller: Principal,
    hash: &[u8],
    offset: u64,
) -> Result<ModuleChunk, WatchdogError> {
    tb.query(
        tb.watchdog,
        caller,
        "lkg_chunk",
        Encode!(&serde_bytes::ByteBuf::from(hash.to_vec()), &offset).unwrap(),
    )
}

fn version_store_alert(tb: &Testbed) -> Option<String> {
    tb.health()
        .alerts
        .into_iter()
        .find(|a| a.starts_with("version store:"))
}

#[test]
fn a_release_after_a_clean_reinstall_commits_with_the_module_handed_back() {
    let tb = seeded();
    let module = tb.agent_module().expect("the agent runs a module");
    reinstalled_clean(&tb);
    assert_eq!(
        tb.agent_module().as_ref(),
        Some(&module),
        "the LKG is reinstalled"
    );
    tb.run_until(LIMIT, running_stored)
        .unwrap_or_else(|| panic!("not handed back; audit {:?}", tb.audit().entries));
    let handed = audit_details(&tb, "versions.handback");
    assert_eq!(handed.len(), 1, "{handed:?}");
    assert!(handed[0].contains(&hex::encode(&module)), "{handed:?}");
    assert_eq!(version_store_alert(&tb), None);
    assert_eq!(
        tb.health().running_module_hash.as_ref(),
        Some(&module),
        "health names the running module again"
    );
    let rec = commits(&tb, &chaos_release("none"));
    assert_eq!(rec.parent_hash.as_ref(), Some(&module));
}

/// Uninstalls the agent and steps round by round until the clean reinstall made the agent ask
/// for the handback, before its first piece is fetched.
fn reinstalled_clean_handback_asked(tb: &Testbed) {
    tb.sim
        .uninstall_canister(tb.agent, Some(operator()))
        .expect("uninstall the agent");
    assert!(
        tb.tick_until(1_000_000, |tb| tb.try_audit().is_ok_and(|a| a
            .entries
            .iter()
            .any(|e| e.action == "versions.handback_requested"))),
        "the reinstalled agent never asked for the handback; incidents {:?}",
        tb.incidents()
    );
    assert!(
        tb.incidents()
            .iter()
            .any(|i| i.ladder_step == Some(LadderStep::Reinstall))
    );
}

/// Drops the watchdog's answers until one attempt of the handback failed: the call in flight
/// is a bounded-wait one, so the agent sees its answer lost (the watchdog's own guaranteed
/// responses, such as its timers' self-calls, are held instead, and released after).
fn one_attempt_fails(tb: &Testbed) {
    let before = tb.sim.faults_fired().responses_dropped;
    tb.sim.inject(Fault::DropResponses {
        from: tb.watchdog,
        probability: 1.0,
    });
    assert!(
        tb.tick_until(100_000, |tb| {
            !audit_details(tb, "versions.handback_retry").is_empty()
        }),
        "no failed attempt; audit {:?}",
        tb.audit().entries
    );
    tb.sim.clear_faults();
    tb.sim.release_held_responses();
    assert!(
        tb.sim.faults_fired().responses_dropped > before,
        "the fault struck"
    );
}

#[test]
fn a_transfer_that_does_not_hash_to_the_module_is_refused_and_changes_nothing() {
    let tb = seeded();
    let module = tb.agent_module().expect("a module");
    let installed = testbed::installable("agent");
    assert_eq!(sha256(&installed), module);
    reinstalled_clean_handback_asked(&tb);
    // The watchdog's copy is corrupted before the first piece goes out (one byte flipped in its
    // stable memory): the bytes received do not hash to the module, and are refused.
    let memory = tb.sim.get_stable_memory(tb.watchdog);
    let probe = &installed[1000..1064];
    let at = memory
        .windows(probe.len())
        .position(|w| w == probe)
        .expect("the LKG's bytes in the watchdog's stable memory");
    let mut corrupted = memory;
    corrupted[at + 10] ^= 0xff;
    tb.sim.set_stable_memory(tb.watchdog, corrupted);
    tb.run_until(LIMIT, |tb| {
        audit_details(tb, "versions.handback_retry")
            .iter()
            .any(|d| d.contains("hash to"))
    })
    .unwrap_or_else(|| panic!("no refusal; audit {:?}", tb.audit().entries));
    assert!(
        tb.versions().is_empty(),
        "nothing stored: {:?}",
        tb.versions()
    );
    assert_eq!(tb.health().running_module_hash, None);
    assert!(audit_details(&tb, "versions.handback").is_empty());
    let alert = version_store_alert(&tb).expect("health says the handback is incomplete");
    assert!(
        alert.contains(&hex::encode(&module)) && alert.contains("1 of 5 attempts failed"),
        "{alert}"
    );
    // A self-patch needs the module too: it says why it cannot go ahead yet.
    let refused = tb
        .self_upgrade_greeting("while the handback runs")
        .expect_err("no patch without the running module");
    assert!(
        refused
            .to_string()
            .contains("fetching it from the watchdog"),
        "{refused}"
    );

    // Repaired (the byte flipped back in the memory as it is now), the next attempt stores the
    // module.
    let mut repaired = tb.sim.get_stable_memory(tb.watchdog);
    assert_ne!(&repaired[at..at + probe.len()], probe, "still corrupted");
    repaired[at + 10] ^= 0xff;
    assert_eq!(&repaired[at..at + probe.len()], probe);
    tb.sim.set_stable_memory(tb.watchdog, repaired);
    tb.run_until(LIMIT, running_stored)
        .unwrap_or_else(|| panic!("not handed back; audit {:?}", tb.audit().entries));
    assert_eq!(version_store_alert(&tb), None);
    commits(&tb, &chaos_release("none"));
}

/// An upgrade between two attempts: the retry's timer is gone with it, but the handback's
/// record is in stable memory and the new module goes on at boot. (ic-sim delivers a
/// same-subnet call and its answer in one round, so a transfer cannot be cut between its two
/// pieces from here; that a transfer resumes at the bytes staged is the agent's
/// `handback::attempt`, which reads its offset from stable memory.)
#[test]
fn a_handback_interrupted_by_an_upgrade_of_the_agent_completes_after_it() {
    let tb = seeded();
    let module = tb.agent_module().expect("a module");
    reinstalled_clean_handback_asked(&tb);
    one_attempt_fails(&tb);
    // An operator upgrades the agent (same module) before the retry.
    tb.sim
        .upgrade_canister(
            tb.agent,
            testbed::installable("agent"),
            vec![],
            Some(operator()),
        )
        .expect("upgrade");
    assert_eq!(tb.agent_module().as_ref(), Some(&module));
    let alert = version_store_alert(&tb).expect("still incomplete after the upgrade");
    assert!(alert.contains("1 of 5 attempts failed"), "{alert}");
    tb.run_until(LIMIT, running_stored)
        .unwrap_or_else(|| panic!("not handed back; audit {:?}", tb.audit().entries));
    commits(&tb, &chaos_release("none"));
}

#[test]
fn a_module_installed_out_of_band_fails_the_release_with_the_operators_fix_which_works() {
    let tb = seeded();
    let before = tb.agent_module().expect("a module");
    // `dfx canister install --mode upgrade` of a build the agent never stored.
    let foreign = testbed::gzip(&testbed::release(
        &testbed::wasm("agent"),
        "out-of-band",
        (1, 3),
    ));
    tb.sim
        .upgrade_canister(tb.agent, foreign.clone(), vec![], Some(operator()))
        .expect("out-of-band upgrade");
    let foreign_hash = sha256(&foreign);
    assert_ne!(foreign_hash, before);
    assert_eq!(tb.agent_module().as_ref(), Some(&foreign_hash));
    let rec = tb
        .propose_release(&chaos_release("none"), "release")
        .expect("propose");
    let rec = terminal(&tb, rec.id);
    let UpgradeState::Failed(reason) = &rec.state else {
        panic!("{:?}", rec.state)
    };
    assert!(
        reason.contains(&hex::encode(&foreign_hash))
            && reason.contains("commit_wasm(Running, sha256)")
            && reason.contains("not found"),
        "{reason}"
    );
    // Nothing was rehearsed or installed.
    assert_eq!(tb.agent_module().as_ref(), Some(&foreign_hash));
    // The operator's fix: upload the running module.
    tb.upload(WasmKind::Running, &foreign);
    tb.commit(WasmKind::Running, &foreign_hash)
        .expect("commit the running module");
    assert_eq!(version_store_alert(&tb), None);
    // Past the gate's cooldown since the failed proposal.
    tb.run_for(Duration::from_secs(601));
    let rec = commits(&tb, &chaos_release("none"));
    assert_eq!(rec.parent_hash.as_ref(), Some(&foreign_hash));
}

/// The deployed agent (the watchdog's LKG), installed again outside the pipeline.
fn install_the_deployed_agent_out_of_band(tb: &Testbed) -> Vec<u8> {
    let deployed = testbed::installable("agent");
    tb.sim
        .upgrade_canister(tb.agent, deployed.clone(), vec![], Some(operator()))
        .expect("out-of-band upgrade");
    sha256(&deployed)
}

/// Found by the explorer (seed 236, 10 steps): during a probation the operator installs the
/// parent again outside the pipeline. The watchdog waited for the arm deadline (the agent's
/// writes paused 10 minutes) and ended the upgrade "install_code did not take effect"; the
/// agent's running marker still named the candidate, so the next release was proposed against
/// it and the watchdog abandoned its arm ("the agent runs ..., not the parent named in the arm
/// request"). Now the watchdog ends the upgrade at once, saying what happened, and a proposal
/// asks the IC which module runs.
#[test]
fn a_parent_installed_again_during_probation_ends_the_upgrade_at_once_and_the_next_release_commits()
{
    let tb = seeded();
    let parent = tb.agent_module().expect("a module");
    let rec = tb
        .propose_release(&chaos_release("none"), "release")
        .expect("propose");
    tb.run_until(LIMIT, |tb| {
        tb.events()
            .iter()
            .any(|e| e.action == "verify.installed" && e.upgrade_id == Some(rec.id))
    })
    .expect("the candidate runs on probation");
    assert_eq!(install_the_deployed_agent_out_of_band(&tb), parent);
    let took = tb
        .run_until(LIMIT, |tb| tb.record(rec.id).state.is_terminal())
        .expect("the upgrade ends");
    assert!(
        took < Duration::from_secs(120),
        "ended {took:?} after the install, not at once"
    );
    let UpgradeState::Failed(reason) = tb.record(rec.id).state else {
        panic!("{:?}", tb.record(rec.id))
    };
    assert!(
        reason.contains("installed again outside the pipeline")
            && reason.contains(&hex::encode(&parent)),
        "{reason}"
    );
    assert_eq!(tb.agent_module().as_ref(), Some(&parent));
    // Writes are accepted again.
    tb.try_remember("handback", "after", "1")
        .expect("writes resume once the upgrade ended");
    // Past the gate's cooldown: the next release names the module that runs and commits.
    tb.run_for(Duration::from_secs(601));
    let next = testbed::release(&testbed::chaos_candidate("none"), "after-probation", (1, 3));
    let rec = commits(&tb, &next);
    assert_eq!(rec.parent_hash.as_ref(), Some(&parent));
}

/// A stored module installed outside the pipeline between a release's proposal and its
/// rehearsal: the release was checked against the module that ran at the proposal, so it fails
/// before the rehearsal, naming both modules and the fix, and the watchdog never arms it (no
/// snapshot is taken). The operator's proposal again then commits.
#[test]
fn a_module_installed_between_proposal_and_rehearsal_fails_the_release_before_any_snapshot() {
    let tb = seeded();
    let deployed = tb.agent_module().expect("a module");
    let first = commits(&tb, &chaos_release("none"));
    let candidate = first.candidate_hash.clone();
    tb.run_for(Duration::from_secs(601));
    let next = testbed::release(&testbed::chaos_candidate("none"), "second", (1, 3));
    let rec = tb.propose_release(&next, "release").expect("propose");
    assert_eq!(rec.parent_hash.as_ref(), Some(&candidate));
    assert_eq!(install_the_deployed_agent_out_of_band(&tb), deployed);
    let rec = terminal(&tb, rec.id);
    let UpgradeState::Failed(reason) = &rec.state else {
        panic!("{:?}", rec.state)
    };
    assert!(
        reason.contains(&format!(
            "the agent runs {}, not {}, the module this upgrade was made against",
            hex::encode(&deployed),
            hex::encode(&candidate)
        )) && reason.contains("propose the release again"),
        "{reason}"
    );
    assert!(
        !tb.events()
            .iter()
            .any(|e| e.action == "arm.accepted" && e.upgrade_id == Some(rec.id)),
        "the watchdog armed the stale release"
    );
    assert_eq!(tb.agent_module().as_ref(), Some(&deployed));
    tb.run_for(Duration::from_secs(601));
    let again = commits(&tb, &next);
    assert_eq!(again.parent_hash.as_ref(), Some(&deployed));
}

#[test]
fn lkg_chunk_serves_the_agent_and_operators_only() {
    let tb = seeded();
    let lkg = tb.watchdog_status().lkg.expect("an LKG").hash;
    let installed = testbed::installable("agent");
    let first = lkg_chunk(&tb, operator(), &lkg, 0).expect("an operator reads the LKG");
    assert_eq!(first.total, installed.len() as u64);
    assert_eq!(&first.bytes[..], &installed[..first.bytes.len()]);
    for caller in [stranger(), Principal::anonymous(), tb.staging] {
        match lkg_chunk(&tb, caller, &lkg, 0) {
            Err(WatchdogError::Unauthorized {
                caller: c, method, ..
            }) => {
                assert_eq!((c, method.as_str()), (caller, "lkg_chunk"))
            }
            other => panic!("{caller}: {other:?}"),
        }
    }
    // A module the watchdog does not hold, an offset past the end.
    match lkg_chunk(&tb, operator(), &[7; 32], 0) {
        Err(WatchdogError::NotFound(m)) => assert!(m.contains(&hex::encode([7u8; 32])), "{m}"),
        other => panic!("{other:?}"),
    }
    let past = installed.len() as u64 + 1;
    assert!(matches!(
        lkg_chunk(&tb, operator(), &lkg, past),
        Err(WatchdogError::InvalidArgument(_))
    ));
    // As an ingress update, refused before it runs.
    let arg = Encode!(&serde_bytes::ByteBuf::from(lkg.clone()), &0u64).unwrap();
    let refused = tb.raw_update(tb.watchdog, stranger(), "lkg_chunk", arg);
    let e = refused.expect_err("lkg_chunk as an ingress update");
    assert!(e.reject_message.contains("rejected the message"), "{e}");
}
