//! The version store and the first steps of the upgrade journal: uploads in chunks checked
//! against hashes and canister_status, typed errors that change nothing, self patches up to
//! `Validated`, operator releases, the gate, approvals and the audit log. Also prints the
//! instructions of patch + validate + hash of the agent's own Wasm.

mod common;
use common::*;

/// What must not change when a call fails.
fn snapshot(
    env: &Env,
) -> (
    Option<Vec<u8>>,
    Vec<VersionInfo>,
    u64,
    Option<UpgradeRecord>,
) {
    (
        env.health().running_module_hash,
        env.versions(),
        env.audit().next,
        env.upgrade_record(None),
    )
}

fn chunk(env: &Env, kind: WasmKind, bytes: Vec<u8>) -> Result<UploadProgress, AgentError> {
    env.update(
        operator(),
        "upload_wasm_chunk",
        Encode!(&kind, &serde_bytes::ByteBuf::from(bytes)).unwrap(),
    )
}

#[test]
fn the_running_wasm_is_stored_once_its_hash_matches_canister_status() {
    let env = Env::latest(Autonomy::Manual);
    let bytes = installable("agent");
    env.store_running("agent");
    let health = env.health();
    assert_eq!(health.running_module_hash, Some(sha256(&bytes)));
    assert_eq!(
        Some(health.running_module_hash.unwrap().as_slice()),
        env.sim.module_hash(env.agent).as_ref().map(|h| &h[..])
    );
    let versions = env.versions();
    assert_eq!(versions.len(), 1);
    assert!(versions[0].is_running && versions[0].is_lkg);
    assert_eq!(versions[0].size, bytes.len() as u64);
}

#[test]
fn a_running_upload_that_is_not_the_running_module_is_refused_and_changes_nothing() {
    let env = Env::latest(Autonomy::Manual);
    let other = installable("agent-schema-v2"); // a valid agent, but not the one running
    env.upload(WasmKind::Running, &other);
    let before = snapshot(&env);
    match env.commit(WasmKind::Running, &sha256(&other)) {
        Err(AgentError::HashMismatch {
            what,
            expected,
            actual,
        }) => {
            assert!(what.contains("canister_status"), "{what}");
            assert_eq!(actual, hex::encode(sha256(&other)));
            assert_eq!(
                expected,
                hex::encode(env.sim.module_hash(env.agent).unwrap())
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(&env), before);
}

#[test]
fn a_wrong_hash_is_refused_with_both_hashes_and_changes_nothing() {
    let env = Env::latest(Autonomy::Manual);
    let bytes = installable("agent");
    env.upload(WasmKind::Running, &bytes);
    let before = snapshot(&env);
    match env.commit(WasmKind::Running, &[7u8; 32]) {
        Err(AgentError::HashMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, hex::encode([7u8; 32]));
            assert_eq!(actual, hex::encode(sha256(&bytes)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(&env), before);
    // The chunks stay: the right hash then succeeds.
    env.commit(WasmKind::Running, &sha256(&bytes)).unwrap();
}

#[test]
fn oversized_and_malformed_chunks_are_refused_and_change_nothing() {
    let env = Env::latest(Autonomy::Manual);
    let before = snapshot(&env);
    assert_eq!(
        chunk(&env, WasmKind::Release, vec![0; CHUNK + 1]),
        Err(AgentError::ChunkTooLarge {
            size: CHUNK as u64 + 1,
            max: CHUNK as u64
        })
    );
    assert!(matches!(
        chunk(&env, WasmKind::Release, vec![]),
        Err(AgentError::InvalidArgument(_))
    ));
    match chunk(&env, WasmKind::Release, b"not wasm".to_vec()) {
        Err(AgentError::InvalidArgument(m)) => assert!(m.contains("magic"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(&env), before);
    // commit without an upload
    assert!(matches!(
        env.commit(WasmKind::Release, &[0; 32]),
        Err(AgentError::NotFound(_))
    ));
}

#[test]
fn an_upload_over_the_maximum_is_refused() {
    let env = Env::latest(Autonomy::Manual);
    let max = agent::uploads::MAX_WASM;
    let mut first = b"\0asm\x01\0\0\0".to_vec();
    first.resize(CHUNK, 0);
    for i in 0..9 {
        let p = chunk(
            &env,
            WasmKind::Release,
            if i == 0 {
                first.clone()
            } else {
                vec![0; CHUNK]
            },
        )
        .unwrap();
        assert_eq!(p.chunks, i + 1);
    }
    // A tenth full chunk (10 MiB in all) leaves no room for the install message's envelope.
    assert_eq!(
        chunk(&env, WasmKind::Release, vec![0; CHUNK]),
        Err(AgentError::UploadTooLarge {
            size: 10 * CHUNK as u64,
            max
        })
    );
    let last = max as usize - 9 * CHUNK;
    chunk(&env, WasmKind::Release, vec![0; last]).expect("up to the maximum");
    assert_eq!(
        chunk(&env, WasmKind::Release, vec![0; 1]),
        Err(AgentError::UploadTooLarge { size: max + 1, max })
    );
    // A malformed module (a Wasm header then zeros) fails validation at commit, typed.
    let all: Vec<u8> = [first, vec![0; 8 * CHUNK + last]].concat();
    let before = snapshot(&env);
    assert!(matches!(
        env.commit(WasmKind::Release, &sha256(&all)),
        Err(AgentError::Validation(_))
    ));
    assert_eq!(snapshot(&env), before);
}

/// The largest module the agent accepts still fits, with its `install_code` envelope, in the
/// IC's 10 MiB limit on a request between canisters of one subnet (issue 12, item 6).
#[test]
fn the_largest_upload_fits_in_an_install_message() {
    use ic_management_canister_types as mgmt;
    let args = mgmt::InstallCodeArgs {
        mode: canister_api_upgrade_mode(),
        canister_id: Principal::management_canister(),
        wasm_module: vec![0xff; agent::uploads::MAX_WASM as usize],
        arg: Encode!(&Some(AgentUpgradeArg {
            upgrade_id: Some(u64::MAX)
        }))
        .unwrap(),
        sender_canister_version: Some(u64::MAX),
    };
    let message = candid::encode_args((args,)).unwrap();
    assert!(
        message.len() as u64 + "install_code".len() as u64 <= agent::uploads::MAX_REQUEST,
        "{} bytes",
        message.len()
    );
}

fn canister_api_upgrade_mode() -> ic_management_canister_types::CanisterInstallMode {
    ic_management_canister_types::CanisterInstallMode::Upgrade(Some(
        ic_management_canister_types::UpgradeFlags {
            skip_pre_upgrade: Some(true),
            wasm_memory_persistence: None,
        },
    ))
}

#[test]
fn a_patch_of_a_missing_export_fails_typed_and_changes_nothing() {
    let env = Env::latest(Autonomy::Auto);
    env.store_running("agent");
    let before = snapshot(&env);
    let err = env
        .tool(
            "self_upgrade",
            r#"{"ops":[{"op":"remove_method","name":"no_such_method"}],"reason":"tidy"}"#,
        )
        .unwrap_err();
    match err {
        AgentError::Patch(m) => assert!(m.contains("no_such_method"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Removing a required export patches fine but fails validation.
    let err = env
        .tool(
            "self_upgrade",
            r#"{"ops":[{"op":"remove_method","name":"health"}],"reason":"oops"}"#,
        )
        .unwrap_err();
    match err {
        AgentError::Validation(m) => assert!(m.contains("health"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(&env), before);
}

#[test]
fn self_upgrade_reaches_validated_with_lineage_and_an_audited_history() {
    let env = Env::latest(Autonomy::ApproveEach);
    env.store_running("agent");
    let running = sha256(&installable("agent"));
    let out = env
        .tool("self_upgrade", r#"{"ops":[{"op":"add_query_method","name":"hello","reply_hex":"4449444c0000"}],"reason":"greet"}"#)
        .unwrap();
    let instructions = env.sim.last_instructions(env.agent);
    let rec = env.upgrade_record(None).unwrap();
    assert_eq!(rec.state, UpgradeState::Validated);
    assert_eq!(rec.parent_hash, Some(running.clone()));
    assert_eq!(rec.approved_by, None, "ApproveEach waits for an operator");
    assert_eq!(rec.schema_range, Some(SchemaRange { min: 1, max: 3 }));
    let states: Vec<_> = rec.history.iter().map(|t| t.state.clone()).collect();
    assert_eq!(
        states,
        [
            UpgradeState::Proposed,
            UpgradeState::Patched,
            UpgradeState::Validated
        ]
    );
    let actions: Vec<String> = env
        .audit()
        .entries
        .iter()
        .map(|e| e.action.clone())
        .collect();
    assert!(
        actions.ends_with(&[
            "upgrade.proposed".into(),
            "upgrade.patched".into(),
            "upgrade.validated".into()
        ]),
        "{actions:?}"
    );
    // The candidate is stored and carries the stamp.
    let candidate = env
        .versions()
        .into_iter()
        .find(|v| v.upgrade_id == Some(rec.id))
        .unwrap();
    assert_eq!(candidate.hash, rec.candidate_hash);
    assert!(out.contains(&hex::encode(&rec.candidate_hash)));

    eprintln!(
        "self_upgrade of the agent's own Wasm ({} bytes raw, {} gzipped as installed): patch+validate+hash {} instructions; whole call {} instructions",
        wasm("agent").len(),
        installable("agent").len(),
        rec.instructions,
        instructions
    );

    for line in env.sim.debug_log(env.agent) {
        eprintln!("  agent: {line}");
    }

    // One in flight: a second proposal is refused.
    env.sim.advance_time(std::time::Duration::from_secs(3600));
    assert!(matches!(
        env.tool("self_upgrade", r#"{"ops":[],"reason":"again"}"#),
        Err(AgentError::UpgradeInFlight { id }) if id == rec.id
    ));
    // Approve, then reject: both audited; the journal entry ends Rejected.
    let approved: Result<UpgradeRecord, AgentError> =
        env.update(operator(), "approve_upgrade", Encode!(&rec.id).unwrap());
    assert_eq!(approved.unwrap().approved_by, Some(operator()));
    let rejected: Result<UpgradeRecord, AgentError> = env.update(
        operator(),
        "reject_upgrade",
        Encode!(&rec.id, &"not now").unwrap(),
    );
    assert_eq!(
        rejected.unwrap().state,
        UpgradeState::Rejected("not now".into())
    );
    let again: Result<UpgradeRecord, AgentError> = env.update(
        operator(),
        "reject_upgrade",
        Encode!(&rec.id, &"twice").unwrap(),
    );
    assert!(matches!(again, Err(AgentError::WrongState { .. })));
    // No longer in flight: a new proposal goes through (cooldown long past).
    env.tool("self_upgrade", r#"{"ops":[],"reason":"again"}"#)
        .unwrap();
}

#[test]
fn the_gate_refuses_under_manual_and_within_the_cooldown() {
    let env = Env::latest(Autonomy::Manual);
    env.store_running("agent");
    match env.tool("self_upgrade", r#"{"ops":[],"reason":"x"}"#) {
        Err(AgentError::AutonomyForbids {
            autonomy: Autonomy::Manual,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let r: Result<(), AgentError> = env.update(
        operator(),
        "set_autonomy",
        Encode!(&Autonomy::Auto).unwrap(),
    );
    r.unwrap();
    let first = serde_json::from_str::<serde_json::Value>(
        &env.tool("self_upgrade", r#"{"ops":[],"reason":"x"}"#)
            .unwrap(),
    )
    .unwrap();
    let id = first["id"].as_u64().unwrap();
    let _: Result<UpgradeRecord, AgentError> =
        env.update(operator(), "reject_upgrade", Encode!(&id, &"no").unwrap());
    match env.tool("self_upgrade", r#"{"ops":[],"reason":"y"}"#) {
        Err(AgentError::RateLimited {
            retry_after_secs, ..
        }) => assert!(retry_after_secs > 0 && retry_after_secs <= 600),
        other => panic!("{other:?}"),
    }
    assert!(
        env.audit()
            .entries
            .iter()
            .any(|e| e.action == "config.autonomy")
    );
}

#[test]
fn an_operator_release_is_uploaded_checked_and_proposed() {
    let env = Env::latest(Autonomy::Manual);
    env.store_running("agent");
    // The operator stamps the release as agentctl would: version and schema range.
    let stamp = wasm_patch::Stamp::new("0.2.0").with_schema_range(1, 3);
    let release = wasm_patch::apply_patch(&wasm("agent-schema-v2"), &[], &stamp)
        .unwrap()
        .wasm;
    env.upload(WasmKind::Release, &release);
    let committed = env.commit(WasmKind::Release, &sha256(&release)).unwrap();
    assert_eq!(committed.size, release.len() as u64);
    let rec: Result<UpgradeRecord, AgentError> = env.update(
        operator(),
        "propose_release",
        Encode!(&ProposeRelease {
            breaks_interface: None,
            reason: "v0.2.0".into()
        })
        .unwrap(),
    );
    let rec = rec.unwrap();
    assert_eq!(rec.source, UpgradeSource::Release);
    assert_eq!(rec.state, UpgradeState::Validated);
    assert_eq!(rec.version, "0.2.0");
    assert_eq!(rec.approved_by, Some(operator()));
    // A release without a schema range covering the current schema is refused.
    let unstamped = wasm("agent-schema-v1");
    env.upload(WasmKind::Release, &unstamped);
    assert!(matches!(
        env.commit(WasmKind::Release, &sha256(&unstamped)),
        Err(AgentError::Validation(_))
    ));
}

#[test]
fn the_watchdog_wasm_is_kept_for_mutual_repair() {
    let env = Env::latest(Autonomy::Manual);
    let probe = wasm("ic-sim-probe");
    env.upload(WasmKind::Watchdog, &probe);
    env.commit(WasmKind::Watchdog, &sha256(&probe)).unwrap();
    assert!(
        env.versions()
            .iter()
            .any(|v| v.hash == sha256(&probe) && v.version == "watchdog")
    );
}

#[test]
fn the_audit_log_is_queryable_by_range() {
    let env = Env::latest(Autonomy::Manual);
    for a in [Autonomy::Auto, Autonomy::ApproveEach, Autonomy::Manual] {
        let r: Result<(), AgentError> =
            env.update(operator(), "set_autonomy", Encode!(&a).unwrap());
        r.unwrap();
    }
    let all = env.audit();
    assert_eq!((all.oldest, all.next, all.entries.len()), (0, 3, 3));
    let page: Result<AuditPage, AgentError> =
        env.query(operator(), "audit_log", Encode!(&1u64, &2u64).unwrap());
    let page = page.unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].seq, 1);
    assert_eq!(page.entries[0].detail, "Auto -> ApproveEach");
    assert_eq!(page.entries[0].actor, operator());
}

/// Uploads, commits and proposes `bytes` as a release; answers the record.
fn propose(env: &Env, bytes: &[u8], reason: &str) -> UpgradeRecord {
    env.upload(WasmKind::Release, bytes);
    env.commit(WasmKind::Release, &sha256(bytes)).unwrap();
    let rec: Result<UpgradeRecord, AgentError> = env.update(
        operator(),
        "propose_release",
        Encode!(&ProposeRelease {
            reason: reason.into(),
            breaks_interface: None,
        })
        .unwrap(),
    );
    rec.unwrap()
}

fn retain(env: &Env, keep: u32) -> Result<Vec<VersionInfo>, AgentError> {
    env.update(operator(), "set_version_retention", Encode!(&keep).unwrap())
}

#[test]
fn the_version_store_keeps_the_protected_versions_and_a_bounded_number_of_others() {
    let env = Env::latest(Autonomy::Manual);
    env.store_running("agent");
    let running = env.health().running_module_hash.unwrap();
    let r: Result<(), AgentError> = env.update(
        operator(),
        "set_gate_limits",
        Encode!(&GateLimits {
            max_per_day: 100,
            cooldown_secs: 0
        })
        .unwrap(),
    );
    r.unwrap();
    assert_eq!(retain(&env, 2).unwrap(), vec![], "nothing to evict yet");
    let base = wasm("agent-schema-v2");
    let mut candidates = vec![];
    for i in 0..5 {
        let stamp = wasm_patch::Stamp::new(format!("0.3.{i}")).with_schema_range(1, 3);
        let release = wasm_patch::apply_patch(&base, &[], &stamp).unwrap().wasm;
        let rec = propose(&env, &release, &format!("release {i}"));
        // No staging canister: the upgrade waits at Validated, in flight, and is kept.
        assert!(env.versions().iter().any(|v| v.hash == rec.candidate_hash));
        let r: Result<UpgradeRecord, AgentError> = env.update(
            operator(),
            "reject_upgrade",
            Encode!(&rec.id, &"not now").unwrap(),
        );
        r.unwrap();
        candidates.push(rec.candidate_hash);
    }
    // The running module and the two newest others; the three oldest were evicted.
    let versions = env.versions();
    let hashes: Vec<&Vec<u8>> = versions.iter().map(|v| &v.hash).collect();
    assert_eq!(versions.len(), 3, "{hashes:?}");
    assert!(hashes.contains(&&running));
    assert!(hashes.contains(&&candidates[3]) && hashes.contains(&&candidates[4]));
    let evicted = env
        .audit()
        .entries
        .iter()
        .filter(|e| e.action == "versions.evicted")
        .count();
    assert_eq!(evicted, 3);
    // An evicted module's bytes are gone too.
    let r: Result<ModuleChunk, AgentError> = env.query(
        operator(),
        "export_module",
        Encode!(&serde_bytes::ByteBuf::from(candidates[0].clone()), &0u64).unwrap(),
    );
    assert!(matches!(r, Err(AgentError::NotFound(_))), "{r:?}");
    // `health` reports the bytes stored.
    let bytes: u64 = versions.iter().map(|v| v.size).sum();
    assert_eq!(env.health().version_store_bytes, Some(bytes));

    // The candidate in flight is kept even with no room for others; the rest goes at once.
    let stamp = wasm_patch::Stamp::new("0.4.0").with_schema_range(1, 3);
    let release = wasm_patch::apply_patch(&base, &[], &stamp).unwrap().wasm;
    let rec = propose(&env, &release, "in flight");
    let gone = retain(&env, 0).unwrap();
    assert_eq!(gone.len(), 2);
    let kept: Vec<Vec<u8>> = env.versions().into_iter().map(|v| v.hash).collect();
    assert_eq!(kept.len(), 2);
    assert!(kept.contains(&running) && kept.contains(&rec.candidate_hash));
    // A setting over the maximum is refused and changes nothing.
    assert!(matches!(
        retain(&env, MAX_KEEP_VERSIONS + 1),
        Err(AgentError::InvalidArgument(_))
    ));
    let config: Result<Config, AgentError> =
        env.query(operator(), "get_config", Encode!().unwrap());
    assert_eq!(config.unwrap().keep_versions, Some(0));
}
