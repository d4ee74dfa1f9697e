//! Every list endpoint pages by bytes with a cursor: however large the records, a page's reply
//! stays far under the IC's 2 MiB reply limit, and the pages cover every record once, in order.

mod common;
use common::*;

/// The IC's reply limit.
const REPLY_LIMIT: usize = 2 * 1024 * 1024;

fn big(i: usize, len: usize) -> String {
    format!("{i:04}-{}", "x".repeat(len))
}

/// A raw query as the operator: the reply's bytes (panics on a reject).
fn raw_query(env: &Env, method: &str, arg: Vec<u8>) -> Vec<u8> {
    env.sim
        .query_call(env.agent, operator(), method, arg)
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

#[test]
fn list_facts_pages_by_bytes_and_the_pages_cover_every_fact_once() {
    let env = Env::latest(Autonomy::Manual);
    // 40 facts of 60 KiB: 2.4 MB, more than one reply can carry.
    for i in 0..40 {
        env.remember("big", &format!("k{i:02}"), &big(i, facts_value_len()));
    }
    for i in 0..30 {
        env.remember("default", &format!("k{i:02}"), "small");
    }
    let mut pages = 0;
    let mut seen: Vec<(String, String)> = vec![];
    let mut from: Option<FactCursor> = None;
    loop {
        let bytes = raw_query(&env, "list_facts", Encode!(&None::<String>, &from).unwrap());
        assert!(
            bytes.len() < REPLY_LIMIT / 2 + 4096,
            "{} bytes",
            bytes.len()
        );
        let page = Decode!(&bytes, Result<FactPage, AgentError>)
            .unwrap()
            .unwrap();
        pages += 1;
        seen.extend(
            page.facts
                .iter()
                .map(|f| (f.namespace.clone(), f.key.clone())),
        );
        match page.next_from {
            None => break,
            next => from = next,
        }
    }
    assert!(pages >= 3, "{pages} pages");
    let mut expected: Vec<(String, String)> = (0..40)
        .map(|i| ("big".to_string(), format!("k{i:02}")))
        .chain((0..30).map(|i| ("default".to_string(), format!("k{i:02}"))))
        .collect();
    expected.sort();
    assert_eq!(seen, expected, "every fact once, in (namespace, key) order");

    // One namespace only, and a cursor that names another namespace is refused.
    let page = env.facts_page(Some("default"), None);
    assert_eq!(page.facts.len(), 30);
    assert!(page.facts.iter().all(|f| f.namespace == "default"));
    assert_eq!(page.next_from, None);
    let wrong = FactCursor {
        namespace: "big".into(),
        key: "k00".into(),
    };
    let r: Result<FactPage, AgentError> = env.query(
        operator(),
        "list_facts",
        Encode!(&Some("default"), &Some(wrong)).unwrap(),
    );
    assert!(matches!(r, Err(AgentError::InvalidArgument(_))), "{r:?}");
}

/// Values of 60 KiB (the agent accepts up to 64 KiB).
fn facts_value_len() -> usize {
    60 * 1024
}

#[test]
fn list_tasks_upgrade_history_and_the_audit_log_page_by_bytes() {
    let env = Env::latest(Autonomy::Manual);
    // 600 tasks of 4 KiB: 2.4 MB.
    for i in 0..600 {
        env.submit(&big(i, 4000), None);
    }
    let mut pages = 0;
    let mut ids = vec![];
    let mut from = Some(0u64);
    while let Some(at) = from {
        let bytes = raw_query(&env, "list_tasks", Encode!(&at, &10_000u32).unwrap());
        assert!(
            bytes.len() < REPLY_LIMIT / 2 + 4096,
            "{} bytes",
            bytes.len()
        );
        let page = Decode!(&bytes, Result<TaskPage, AgentError>)
            .unwrap()
            .unwrap();
        ids.extend(page.tasks.iter().map(|t| t.id));
        pages += 1;
        from = page.next_from;
    }
    assert!(pages >= 3, "{pages} pages");
    assert_eq!(ids, (1..=600).collect::<Vec<u64>>());
    // A count limit still holds.
    let page: Result<TaskPage, AgentError> =
        env.query(operator(), "list_tasks", Encode!(&10u64, &5u32).unwrap());
    let page = page.unwrap();
    assert_eq!(page.tasks.len(), 5);
    assert_eq!(page.next_from, Some(15));

    // The audit log: a page stops at 200 entries and says where the next one starts.
    for i in 0..250 {
        let _: Result<(), AgentError> = env.update(
            operator(),
            "set_autonomy",
            Encode!(if i % 2 == 0 {
                &Autonomy::Auto
            } else {
                &Autonomy::Manual
            })
            .unwrap(),
        );
    }
    let first: Result<AuditPage, AgentError> =
        env.query(operator(), "audit_log", Encode!(&0u64, &u64::MAX).unwrap());
    let first = first.unwrap();
    assert_eq!(first.entries.len(), 200);
    assert_eq!(first.next_from, Some(200));
    let second: Result<AuditPage, AgentError> = env.query(
        operator(),
        "audit_log",
        Encode!(&200u64, &u64::MAX).unwrap(),
    );
    let second = second.unwrap();
    assert_eq!(second.entries.first().map(|e| e.seq), Some(200));
    assert_eq!(second.next_from, None);

    // upgrade_history answers a page too (empty here: nothing proposed).
    let history: Result<UpgradePage, AgentError> = env.query(
        operator(),
        "upgrade_history",
        Encode!(&0u64, &10u32).unwrap(),
    );
    assert_eq!(
        history.unwrap(),
        UpgradePage {
            records: vec![],
            next_from: None
        }
    );
}

#[test]
fn list_versions_pages_and_refuses_a_malformed_cursor() {
    let env = Env::latest(Autonomy::Manual);
    env.store_running("agent");
    let page: Result<VersionPage, AgentError> =
        env.query(operator(), "list_versions", Encode!().unwrap());
    let page = page.unwrap();
    assert_eq!(page.versions.len(), 1);
    assert_eq!(page.next_from, None);
    // A cursor past the only hash: an empty page.
    let past = serde_bytes::ByteBuf::from(vec![0xff; 32]);
    let page: Result<VersionPage, AgentError> =
        env.query(operator(), "list_versions", Encode!(&Some(past)).unwrap());
    assert!(page.unwrap().versions.is_empty());
    let short = serde_bytes::ByteBuf::from(vec![1; 3]);
    let r: Result<VersionPage, AgentError> =
        env.query(operator(), "list_versions", Encode!(&Some(short)).unwrap());
    assert!(matches!(r, Err(AgentError::InvalidArgument(_))), "{r:?}");
}
