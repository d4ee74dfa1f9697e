//! The agent's control plane (`AgentMethod`) has one source, and everything that names the
//! agent's methods agrees with it (issue 12, item 2):
//!
//! - every method is in `agent/agent.did`, as a query or an update as the list says;
//! - the watchdog, staging and the agent's self-test name the agent's methods only through
//!   `AgentMethod` (no string literal as the method of a call);
//! - every `dfx canister call agent METHOD` of the README's runbook is a control-plane method
//!   that operators call, and every method operators call is in the runbook or the deploy guide;
//! - a candidate must export every one of them.

use canister_api::agent::{AgentMethod, Caller, MethodKind, required_exports};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_control_plane_method_is_in_agent_did_with_its_kind() {
    use candid::types::{FuncMode, TypeInner};
    let did = read(&root().join("agent/agent.did"));
    let (env, actor) = candid_parser::utils::CandidSource::Text(&did)
        .load()
        .expect("agent.did parses");
    let actor = env.trace_type(&actor.expect("a service")).unwrap();
    let service = match actor.as_ref() {
        TypeInner::Class(_, s) => s.clone(),
        _ => actor.clone(),
    };
    let methods = env.as_service(&service).expect("a service").to_vec();
    for m in AgentMethod::ALL {
        let Some((_, ty)) = methods.iter().find(|(name, _)| name == m.name()) else {
            panic!("`{}` is in AgentMethod but not in agent.did", m.name());
        };
        let TypeInner::Func(f) = ty.as_ref() else {
            panic!("`{}` is not a function in agent.did", m.name());
        };
        let is_query = f.modes.contains(&FuncMode::Query);
        assert_eq!(
            is_query,
            m.kind() == MethodKind::Query,
            "`{}`: agent.did and AgentMethod::kind disagree",
            m.name()
        );
    }
}

/// The argument list of the call starting at `text` (just after its `(`), split at top-level
/// commas.
fn call_args(text: &str) -> Vec<String> {
    let mut depth = 0i32;
    let mut args = vec![String::new()];
    let mut in_string = false;
    for c in text.chars() {
        match c {
            '"' => in_string = !in_string,
            '(' | '[' | '{' if !in_string => depth += 1,
            ')' | ']' | '}' if !in_string => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            ',' if !in_string && depth == 0 => {
                args.push(String::new());
                continue;
            }
            _ => {}
        }
        args.last_mut().expect("one argument at least").push(c);
    }
    args.into_iter().map(|a| a.trim().to_string()).collect()
}

/// Calls whose method (second argument) is a string literal, in `source`.
fn string_methods(source: &str) -> Vec<String> {
    const CALLS: [&str; 6] = [
        "ic::call(",
        "ic::call_args(",
        "call_args(",
        "heartbeat_call(",
        "Call::unbounded_wait(",
        "Call::bounded_wait(",
    ];
    let mut found = vec![];
    for call in CALLS {
        for (at, _) in source.match_indices(call) {
            // `ic::call_args(` also matches `call_args(`: count it once.
            if call == "call_args(" && source[..at].ends_with("ic::") {
                continue;
            }
            let args = call_args(&source[at + call.len()..]);
            if args.get(1).is_some_and(|m| m.starts_with('"')) {
                found.push(format!("{call}{}, {}, ...)", args[0], args[1]));
            }
        }
    }
    found
}

#[test]
fn the_watchdog_and_staging_name_agent_methods_only_through_agent_method() {
    let mut files = vec![root().join("agent/src/selftest.rs")];
    for dir in ["watchdog/src", "staging/src"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut violations = vec![];
    for file in &files {
        for call in string_methods(&read(file)) {
            violations.push(format!("{}: {call}", file.display()));
        }
    }
    assert!(
        violations.is_empty(),
        "these calls name a method by a string literal; name the agent's methods with \
         canister_api::agent::AgentMethod (and add a new one there):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scan_catches_a_string_method() {
    assert_eq!(
        string_methods(r#"let x = ic::call(agent, "export_module", &(a, b), None).await;"#),
        vec![r#"ic::call(agent, "export_module", ...)"#.to_string()]
    );
    assert!(string_methods("ic::agent_call(agent, AgentMethod::Health, &(), None)").is_empty());
}

#[test]
fn the_runbook_calls_only_control_plane_methods_and_names_every_operator_method() {
    let readme = read(&root().join("README.md"));
    let mut named = vec![];
    for (at, _) in readme.match_indices("dfx canister call agent ") {
        let rest = &readme[at + "dfx canister call agent ".len()..];
        let method: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let m = AgentMethod::ALL
            .into_iter()
            .find(|m| m.name() == method)
            .unwrap_or_else(|| {
                panic!("the README tells operators to call `{method}`, which AgentMethod lacks")
            });
        assert!(
            m.callers().contains(&Caller::Operators),
            "the README tells operators to call `{method}`, but AgentMethod says operators do not"
        );
        named.push(method);
    }
    for m in AgentMethod::ALL {
        if m.callers().contains(&Caller::Operators) {
            assert!(
                named.iter().any(|n| n == m.name()),
                "operators call `{}` (AgentMethod), but the README never shows how",
                m.name()
            );
        }
    }
}

#[test]
fn a_candidate_must_export_the_whole_control_plane() {
    let required = required_exports();
    assert!(required.contains(&"canister_init".to_string()));
    assert!(required.contains(&"canister_post_upgrade".to_string()));
    for m in AgentMethod::ALL {
        assert!(
            required.contains(&format!("canister_method {}", m.name())),
            "{}",
            m.name()
        );
    }
}
