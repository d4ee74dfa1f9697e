//! Schema versions on ic-sim: state survives upgrades to builds of the next schema versions;
//! committed stable-memory images of every version upgrade to the latest with every record
//! intact; a trapping migration and a downgrade leave the old module and state (IC atomicity).
//!
//! Fixtures: `tests/fixtures/schema-vN.stable.gz`, regenerated only by
//! `BLESS=1 cargo test -p agent --test schema_upgrades -- --ignored bless`.

mod common;
use common::*;
use std::io::{Read, Write};

const BUILDS: [&str; 3] = ["agent-schema-v1", "agent-schema-v2", "agent"];

fn fixture_path(version: u32) -> String {
    format!(
        "{}/tests/fixtures/schema-v{version}.stable.gz",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The records every fixture holds, as written by the build of its schema.
/// (description, status, priority as submitted) and (namespace, key, value).
fn model_tasks() -> Vec<(&'static str, TaskStatus, Priority)> {
    vec![
        ("collect sources", TaskStatus::Done, Priority::High),
        ("summarise findings", TaskStatus::Running, Priority::Low),
        ("publish report", TaskStatus::Pending, Priority::Normal),
        ("retry the failed fetch", TaskStatus::Failed, Priority::High),
    ]
}

fn model_facts(version: u32) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut facts = vec![
        ("default", "owner", "the operators"),
        ("default", "motto", "nothing is lost"),
        ("default", "ünïcødé", "välüe"),
    ];
    if version >= 3 {
        facts.push(("prefs", "colour", "blue"));
    }
    facts
}

/// Writes the model through the build's own interface.
fn seed(env: &Env) {
    for (description, status, priority) in model_tasks() {
        let task = env.submit(description, Some(priority));
        let r: Result<Task, AgentError> = env.update(
            operator(),
            "set_task_status",
            Encode!(&task.id, &status).unwrap(),
        );
        r.unwrap();
    }
    let version = env.health().schema_version;
    for (ns, key, value) in model_facts(version) {
        env.remember(ns, key, value);
    }
}

/// Checks every record against the model of a store written at schema `written_at`, read now
/// by a build at schema `env`'s version.
fn check(env: &Env, written_at: u32) {
    let tasks = env.tasks();
    let model = model_tasks();
    assert_eq!(tasks.len(), model.len());
    let reader = env.health().schema_version;
    for (i, (task, (description, status, priority))) in tasks.iter().zip(model).enumerate() {
        assert_eq!(task.id, i as u64 + 1);
        assert_eq!(task.description, description);
        assert_eq!(task.status, status);
        // Written under v1, a task has no priority: v2 gives it Normal.
        let expected = if written_at == 1 || reader == 1 {
            Priority::Normal
        } else {
            priority
        };
        assert_eq!(task.priority, expected, "task {}", task.id);
        assert!(task.created_at <= task.updated_at);
    }
    let mut facts: Vec<(String, String, String)> = env
        .facts()
        .into_iter()
        .map(|f| (f.namespace, f.key, f.value))
        .collect();
    facts.sort();
    let mut expected: Vec<(String, String, String)> = model_facts(written_at)
        .into_iter()
        .map(|(n, k, v)| (n.into(), k.into(), v.into()))
        .collect();
    expected.sort();
    assert_eq!(facts, expected);
    for (ns, key, value) in model_facts(written_at) {
        let namespace = (ns != "default").then_some(ns);
        assert_eq!(env.recall(namespace, key).as_deref(), Some(value));
    }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gzip fixture");
    out
}

#[test]
fn state_survives_upgrades_to_builds_of_each_next_schema() {
    let env = Env::new("agent-schema-v1", Autonomy::Manual);
    assert_eq!(env.health().schema_version, 1);
    seed(&env);
    check(&env, 1);
    env.upgrade_to("agent-schema-v2").expect("v1 -> v2");
    assert_eq!(env.health().schema_version, 2);
    check(&env, 1);
    let high = env.submit("new after v2", Some(Priority::High));
    env.upgrade_to("agent").expect("v2 -> v3");
    assert_eq!(env.health().schema_version, 3);
    assert_eq!(env.health().schema_range, SchemaRange { min: 1, max: 3 });
    let tasks = env.tasks();
    assert_eq!(tasks.last().unwrap().priority, Priority::High);
    assert_eq!(tasks.last().unwrap().id, high.id);
    assert_eq!(env.recall(None, "owner").as_deref(), Some("the operators"));
    let audit = env.audit();
    assert!(audit.entries.iter().any(|e| e.action == "schema.migrate"));
}

#[test]
fn every_fixture_upgrades_to_the_latest_with_every_record() {
    for (version, build) in (1u32..).zip(BUILDS) {
        let image = gunzip(&std::fs::read(fixture_path(version)).unwrap_or_else(|e| {
            panic!("fixture v{version}: {e} (BLESS=1 cargo test -p agent --test schema_upgrades -- --ignored bless)")
        }));
        let env = Env::new(build, Autonomy::Manual);
        env.sim.set_stable_memory(env.agent, image);
        // Reload the image in the build of its own schema (heap caches from init are stale).
        env.upgrade_to(build)
            .unwrap_or_else(|e| panic!("v{version} reload: {e}"));
        assert_eq!(env.health().schema_version, version);
        check(&env, version);
        // The image was written by a build that kept no digest: it was recounted at boot.
        env.assert_digest_matches_records();
        env.upgrade_to("agent")
            .unwrap_or_else(|e| panic!("v{version} -> latest: {e}"));
        assert_eq!(env.health().schema_version, migrations::LATEST);
        check(&env, version);
        env.assert_digest_matches_records();
    }
}

#[test]
fn a_migration_that_traps_leaves_the_old_module_and_state() {
    let env = Env::new("agent-schema-v2", Autonomy::Manual);
    seed(&env);
    let module = env.sim.module_hash(env.agent);
    let stable = env.sim.get_stable_memory(env.agent);
    let err = env
        .upgrade_to("agent-migration-trap")
        .expect_err("the migration traps");
    assert!(
        err.reject_message
            .contains("fault-migration-trap: v2->v3 migration trapped"),
        "{err}"
    );
    assert_eq!(env.sim.module_hash(env.agent), module, "old module kept");
    assert_eq!(
        env.sim.get_stable_memory(env.agent),
        stable,
        "stable memory unchanged"
    );
    assert_eq!(env.health().schema_version, 2);
    check(&env, 2);
    // The good build then migrates the same state.
    env.upgrade_to("agent").expect("v2 -> v3");
    check(&env, 2);
}

#[test]
fn a_downgrade_is_refused_with_a_clear_trap_and_changes_nothing() {
    let env = Env::latest(Autonomy::Manual);
    seed(&env);
    let module = env.sim.module_hash(env.agent);
    let err = env
        .upgrade_to("agent-schema-v1")
        .expect_err("downgrade refused");
    assert!(
        err.reject_message.contains("stable memory is at schema v3 but this build supports at most v1; downgrades are not supported"),
        "{err}"
    );
    assert_eq!(env.sim.module_hash(env.agent), module);
    check(&env, 3);
}

#[test]
fn an_older_build_refuses_namespaces_it_cannot_store() {
    let env = Env::new("agent-schema-v2", Autonomy::Manual);
    let fact = Fact {
        namespace: "prefs".into(),
        key: "k".into(),
        value: "v".into(),
    };
    let r: Result<Option<String>, AgentError> =
        env.update(operator(), "remember", Encode!(&fact).unwrap());
    match r {
        Err(AgentError::InvalidArgument(m)) => assert!(m.contains("schema v3"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// Regenerates the fixtures: `BLESS=1 cargo test -p agent --test schema_upgrades -- --ignored bless`.
#[test]
#[ignore = "writes tests/fixtures; run with BLESS=1"]
fn bless_fixtures() {
    assert!(
        std::env::var("BLESS").is_ok(),
        "set BLESS=1 to overwrite the fixtures"
    );
    for (version, build) in (1u32..).zip(BUILDS) {
        let env = Env::new(build, Autonomy::Manual);
        seed(&env);
        check(&env, version);
        let image = env.sim.get_stable_memory(env.agent);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&image).unwrap();
        std::fs::write(fixture_path(version), gz.finish().unwrap()).unwrap();
        eprintln!("fixture v{version}: {} bytes of stable memory", image.len());
    }
}

/// The v2 -> v3 step leaves the older facts where they were: schema 3 reads them as namespace
/// `default`, merged in key order with the facts it writes, and moves one when it is written
/// again (or drops it when forgotten); the digest follows every change.
#[test]
fn facts_of_schema_2_are_read_merged_and_moved_when_written_again() {
    let env = Env::new("agent-schema-v2", Autonomy::Manual);
    for k in ["k1", "k2", "k3"] {
        env.remember("default", k, &format!("old {k}"));
    }
    env.upgrade_to("agent").expect("v2 -> v3");
    env.remember("aaa", "x", "1");
    env.remember("zzz", "y", "2");
    env.remember("default", "k0", "new k0");
    env.remember("default", "k2", "new k2");
    let r: Result<Option<String>, AgentError> = env.update(
        operator(),
        "forget",
        Encode!(&Some("default"), &"k1").unwrap(),
    );
    assert_eq!(r.unwrap().as_deref(), Some("old k1"));
    let all: Vec<(String, String, String)> = env
        .facts()
        .into_iter()
        .map(|f| (f.namespace, f.key, f.value))
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("aaa", "x", "1"),
        ("default", "k0", "new k0"),
        ("default", "k2", "new k2"),
        ("default", "k3", "old k3"),
        ("zzz", "y", "2"),
    ]
    .into_iter()
    .map(|(n, k, v)| (n.into(), k.into(), v.into()))
    .collect();
    assert_eq!(all, expected);
    assert_eq!(env.recall(None, "k1"), None);
    assert_eq!(env.recall(None, "k3").as_deref(), Some("old k3"));
    // A page of one namespace, and a cursor inside the older facts.
    let page = env.facts_page(
        Some("default"),
        Some(FactCursor {
            namespace: "default".into(),
            key: "k2".into(),
        }),
    );
    let keys: Vec<String> = page.facts.into_iter().map(|f| f.key).collect();
    assert_eq!(keys, ["k2", "k3"]);
    env.assert_digest_matches_records();
    assert_eq!(env.digest().facts, 5);
    // Another upgrade keeps all of it.
    env.upgrade_to("agent").expect("upgrade");
    assert_eq!(env.facts().len(), 5);
    env.assert_digest_matches_records();
}
