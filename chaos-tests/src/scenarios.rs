//! The fault kinds. Each scenario injects one fault into a deployed trio and says which
//! outcomes are acceptable and whether data may be lost; the invariants do the rest.
//!
//! Bad candidates come from the `agent-chaos` build (`agent/src/chaos.rs`): a mode marker in
//! its data section picks the misbehaviour, and each mode has a module hash of its own.

pub mod model;

use crate::report::Outcome;
use crate::{Run, SETTLE_LIMIT};
use canister_api::agent::{AgentError, UpgradeState};
use canister_api::watchdog::LadderStep;
use ic_sim::{CanisterStatusType, Fault};
use std::sync::Arc;
use std::time::Duration;
use testbed::{chaos_candidate, chaos_release, operator, release, wasm};

/// The injection: runs against a deployed, seeded trio.
pub type Inject = Arc<dyn Fn(&mut Run) + Send + Sync>;

/// One fault kind.
#[derive(Clone)]
pub struct Scenario {
    /// Its name (`agentctl chaos --scenario NAME`).
    pub name: &'static str,
    /// What it injects, in words.
    pub about: &'static str,
    /// The agent build deployed first.
    pub build: &'static str,
    /// A module deployed first instead of `build`.
    pub running: Option<fn() -> Vec<u8>>,
    /// The install instruction limit, scaled down from the IC's 300 B (see `testbed::Options`).
    pub install_limit: Option<u64>,
    /// Acceptable outcomes.
    pub allowed: &'static [Outcome],
    /// Whether the scenario may lose records (the incident must then state exactly how many).
    pub loss_allowed: bool,
    /// Whether the trio gets `llm-standin` as its model (the turn loop's scenarios).
    pub llm: bool,
    /// The fault.
    pub inject: Inject,
}

const ANY: &[Outcome] = &[
    Outcome::Committed,
    Outcome::Rejected,
    Outcome::RolledBack,
    Outcome::Failed,
];
const REJECTED: &[Outcome] = &[Outcome::Rejected];
const FAILED: &[Outcome] = &[Outcome::Failed];
const ROLLED_BACK: &[Outcome] = &[Outcome::RolledBack];
const COMMITTED: &[Outcome] = &[Outcome::Committed];

pub(crate) fn scenario(
    name: &'static str,
    about: &'static str,
    allowed: &'static [Outcome],
    inject: impl Fn(&mut Run) + Send + Sync + 'static,
) -> Scenario {
    Scenario {
        name,
        about,
        build: "agent",
        running: None,
        install_limit: None,
        allowed,
        loss_allowed: false,
        llm: false,
        inject: Arc::new(inject),
    }
}

/// A healthy release (the chaos build without a misbehaviour).
fn good_release() -> Vec<u8> {
    chaos_release("none")
}

/// Marks the fault as taking effect when the upgrade boots; the seed picks the round it strikes
/// in (up to three rounds after the boot), as a real fault comes when it comes.
fn fault_at_boot(run: &mut Run) {
    run.until_state(UpgradeState::Booted);
    for _ in 0..run.rng.below(4) {
        run.tb.sim.tick();
    }
    if let Some(id) = run.upgrade {
        run.fault_at = run
            .tb
            .record(id)
            .history
            .iter()
            .find(|t| t.state == UpgradeState::Booted)
            .map(|t| t.at);
    }
}

/// Proposes `bytes`, uninstalls the watchdog once the release booted, and lets the agent
/// reinstall it after the armed window; the new watchdog must adopt the upgrade.
fn kill_watchdog_mid_upgrade(run: &mut Run, bytes: &[u8], reason: &str) {
    run.propose(bytes, reason);
    fault_at_boot(run);
    let (tb, wd) = (&run.tb, run.tb.watchdog);
    tb.sim
        .uninstall_canister(wd, Some(operator()))
        .expect("uninstall");
    run.until_terminal();
    run.expect_watchdog_event(
        "arm.adopted",
        "the reinstalled watchdog never adopted the upgrade",
    );
    run.fault_at = None;
}

/// Proposes a release whose `health` awaits a call to staging, and holds staging's responses
/// from the boot until the upgrade ends: the agent keeps an open call context and cannot stop.
fn hang_on_probation(run: &mut Run, reason: &str) {
    run.propose(&chaos_release("health_calls_out"), reason);
    fault_at_boot(run);
    let staging = run.tb.staging;
    run.tb.sim.inject(Fault::HoldResponses { from: staging });
    run.until_terminal();
    run.tb.sim.clear_faults();
    run.expect_fired("responses held", |f| f.responses_held);
}

/// A tool that stores `text` under `key` (64-byte fact quota) and counts `n` for every triple
/// of `words` (a budget of 2 M instructions per call). Its examples pass; large enough
/// arguments break one quota or the other.
fn bounded_tool(name: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "description": "Store a note, then count n for every triple of words.",
        "parameters": {"type": "object", "properties": {
            "key": {"type": "string", "maxLength": 16, "default": "note"},
            "text": {"type": "string", "maxLength": 512, "default": ""},
            "n": {"type": "integer", "default": 1},
            "words": {"type": "array", "items": {"type": "string"}, "maxItems": 100, "default": []}}},
        "body": {"do": [
            {"fact_put": {"arg": "key"}, "value": {"arg": "text"}},
            {"for_each": {"arg": "words"}, "as": "a", "acc": "x", "init": 0,
             "step": {"for_each": {"arg": "words"}, "as": "b", "acc": "y", "init": {"var": "x"},
                      "step": {"for_each": {"arg": "words"}, "as": "c", "acc": "z", "init": {"var": "y"},
                               "step": {"add": [{"var": "z"}, {"arg": "n"}]}}}}]},
        "examples": [
            {"args": {"text": "hi", "words": ["a", "b"]}, "result": 8, "facts_after": {"note": "hi"}},
            {"args": {"text": "x".repeat(80)}, "error": "fact_quota"}],
        "quota": {"fact_bytes": 64, "instructions": 2_000_000}
    })
}

/// `self_upgrade` adding `spec`: the upgrade, or the refusal.
fn add_tool(run: &mut Run, spec: serde_json::Value, reason: &str) {
    match run.tb.self_upgrade_add_tool(spec, reason) {
        Ok(out) => {
            let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
            run.upgrade = v["id"].as_u64();
        }
        Err(e) => run.refused = Some(e.to_string()),
    }
}

/// Calls tool `name` after its upgrade committed: it must fail with fault `code`.
fn call_must_fail(run: &mut Run, name: &str, args: serde_json::Value, code: &str) {
    run.until_terminal();
    match run.tb.tool(name, &args.to_string()) {
        Err(AgentError::ToolFailed {
            code: c, message, ..
        }) if c == code => run.notes.push(format!("`{name}` stopped: {message}")),
        other => run.expect(false, || {
            format!("the call of `{name}` was not stopped by `{code}`: {other:?}")
        }),
    }
}

/// A good release with tool `tally_vote` compiled in, and one bit flipped in a `call` of the
/// tool's code (the target of a host ABI call), chosen so that the call goes to another function
/// of the same type: the module stays valid Wasm, and only the check of the tool's code against
/// its registry can find the flip. The byte offset and bit, described.
fn tool_with_flipped_abi_call(run: &mut Run) -> (Vec<u8>, String) {
    let ops = [wasm_patch::PatchOp::AddTool {
        spec: wasm_patch::tool_spec::samples::json("tally_vote").expect("a sample"),
    }];
    let stamp = wasm_patch::Stamp::new("chaos-tool").with_schema_range(1, 3);
    let mut bytes = wasm_patch::apply_patch(&chaos_candidate("none"), &ops, &stamp)
        .expect("the patch applies")
        .wasm;
    // The type of every function (imports first), and the calls of the module's last function
    // (the tool; its calls all go to the host ABI): the offset of the index and the index.
    let mut types: Vec<u32> = vec![];
    let mut calls: Vec<(usize, u32)> = vec![];
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        match payload {
            Ok(wasmparser::Payload::ImportSection(imports)) => {
                for import in imports.into_imports().flatten() {
                    if let wasmparser::TypeRef::Func(t) = import.ty {
                        types.push(t);
                    }
                }
            }
            Ok(wasmparser::Payload::FunctionSection(funcs)) => {
                types.extend(funcs.into_iter().flatten())
            }
            Ok(wasmparser::Payload::CodeSectionEntry(body)) => {
                calls.clear();
                let Ok(mut ops) = body.get_operators_reader() else {
                    continue;
                };
                while let Ok((op, offset)) = ops.read_with_offset() {
                    if let wasmparser::Operator::Call { function_index } = op {
                        calls.push((offset + 1, function_index)); // the index's first LEB byte
                    }
                    if ops.eof() {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    // Flipping one of the low 7 bits of the first LEB byte keeps the encoding's length.
    let ty = |f: u32| types.get(f as usize).copied();
    let same_type: Vec<(usize, u32, u32)> = calls
        .iter()
        .flat_map(|&(at, f)| (0..7).map(move |bit| (at, f, bit)))
        .filter(|&(_, f, bit)| ty(f).is_some() && ty(f ^ (1 << bit)) == ty(f))
        .collect();
    assert!(
        !same_type.is_empty(),
        "no flip of a host call of the tool keeps the callee's type: the scenario needs another sample"
    );
    let (at, _, bit) = same_type[run.rng.below(same_type.len() as u64) as usize];
    bytes[at] ^= 1 << bit;
    (
        bytes,
        format!(
            "bit {bit} of byte {at}, in the function index of one of the tool's {} host calls (one of {} flips that call another function of the same type)",
            calls.len(),
            same_type.len()
        ),
    )
}

/// Every scenario, in the order of the table.
pub fn all() -> Vec<Scenario> {
    vec![
        scenario(
            "truncated_wasm",
            "a release cut off at a random byte",
            REJECTED,
            |run| {
                let full = good_release();
                let cut = 8 + run.rng.below(full.len() as u64 / 2) as usize;
                run.notes
                    .push(format!("cut at byte {cut} of {}", full.len()));
                run.propose(&full[..cut], "truncated");
            },
        ),
        scenario(
            "bit_flipped_wasm",
            "a release with one random bit flipped (it may still be valid: any outcome, no loss)",
            ANY,
            |run| {
                let mut bytes = good_release();
                let at = 8 + run.rng.below(bytes.len() as u64 - 8) as usize;
                let bit = run.rng.below(8);
                bytes[at] ^= 1 << bit;
                run.notes.push(format!("flipped bit {bit} of byte {at}"));
                run.propose(&bytes, "bit flip");
            },
        ),
        scenario("empty_wasm", "an empty release", REJECTED, |run| {
            run.propose(&[], "empty")
        }),
        scenario(
            "gzip_garbage_wasm",
            "gzip magic followed by random bytes",
            REJECTED,
            |run| {
                let mut bytes = vec![0x1f, 0x8b, 0x08];
                bytes.extend((0..4096).map(|_| run.rng.next_u64() as u8));
                run.propose(&bytes, "gzip garbage");
            },
        ),
        scenario(
            "forbidden_import",
            "a stamped module importing a System API function that does not exist",
            REJECTED,
            |run| {
                let module = wat::parse_str(
                    r#"(module
                        (import "ic0" "steal_cycles" (func (param i64)))
                        (memory 1)
                        (func $m)
                        (export "canister_init" (func $m))
                        (export "canister_post_upgrade" (func $m))
                        (export "canister_query health" (func $m)))"#,
                )
                .expect("the WAT parses");
                run.propose(&release(&module, "forbidden-import", (1, 3)), "import");
            },
        ),
        scenario(
            "missing_required_export",
            "a release without `call_tool`, which operators and the agent loop need",
            REJECTED,
            |run| {
                let stamp = wasm_patch::Stamp::new("no-call-tool").with_schema_range(1, 3);
                let ops = [wasm_patch::PatchOp::RemoveMethod {
                    name: "call_tool".into(),
                }];
                let bytes = wasm_patch::apply_patch(&chaos_candidate("none"), &ops, &stamp)
                    .expect("the patch applies")
                    .wasm;
                run.propose(&bytes, "missing export");
            },
        ),
        scenario(
            "post_upgrade_trap",
            "the candidate's post_upgrade traps",
            FAILED,
            |run| {
                run.propose(&chaos_release("boot_trap"), "boot trap");
                run.expect_reason("post_upgrade traps");
            },
        ),
        Scenario {
            build: "agent-schema-v2",
            ..scenario(
                "migration_traps_half_way",
                "at schema 2, a candidate whose v2 -> v3 migration traps half-way",
                FAILED,
                |run| {
                    let bytes = release(&wasm("agent-migration-trap"), "migration-trap", (1, 3));
                    run.propose(&bytes, "migration trap");
                    run.expect_reason("migration trapped");
                },
            )
        },
        Scenario {
            install_limit: Some(2_000_000_000),
            ..scenario(
                "post_upgrade_over_instruction_limit",
                "the candidate's post_upgrade loops until the install limit (scaled to 2 B) stops it",
                FAILED,
                |run| {
                    run.propose(&chaos_release("boot_spin"), "runaway post_upgrade");
                    run.expect_reason("instruction");
                },
            )
        },
        Scenario {
            running: Some(|| chaos_candidate("pre_upgrade_trap")),
            ..scenario(
                "current_pre_upgrade_traps",
                "the running module's pre_upgrade traps; upgrades skip it, so a good release commits",
                COMMITTED,
                |run| run.propose(&good_release(), "replace a module whose pre_upgrade traps"),
            )
        },
        scenario(
            "migration_drops_records",
            "the candidate's post_upgrade forgets a fact",
            FAILED,
            |run| {
                run.propose(&chaos_release("corrupt_state"), "drops a record");
                run.expect_reason("state_digest");
            },
        ),
        scenario(
            "boots_but_health_traps",
            "the candidate boots, then every health call traps",
            ROLLED_BACK,
            |run| {
                run.propose(&chaos_release("health_trap_live"), "health traps");
                fault_at_boot(run);
            },
        ),
        scenario(
            "boots_but_reports_unhealthy",
            "the candidate answers health with status unhealthy",
            ROLLED_BACK,
            |run| {
                run.propose(&chaos_release("reports_unhealthy"), "unhealthy");
                fault_at_boot(run);
            },
        ),
        scenario(
            "boots_healthy_but_a_tool_is_broken",
            "the candidate boots and answers health, but its `recall` tool traps",
            ROLLED_BACK,
            |run| {
                run.propose(&chaos_release("tool_broken"), "broken tool");
                fault_at_boot(run);
            },
        ),
        scenario(
            "candidate_drops_watchdog_controller",
            "soon after boot the candidate drops the watchdog from its controllers: the self-test adds it back and fails the version, which is rolled back",
            ROLLED_BACK,
            |run| {
                run.propose(&chaos_release("drops_watchdog"), "drops the watchdog");
                fault_at_boot(run);
                run.until_terminal();
                run.expect_audit(
                    "controllers.repaired",
                    "the agent never added the watchdog back",
                );
            },
        ),
        scenario(
            "candidate_burns_cycles",
            "the candidate burns 0.5 T cycles a second; probation measures the burn rate",
            ROLLED_BACK,
            |run| {
                run.propose(&chaos_release("burn_cycles"), "burns cycles");
                fault_at_boot(run);
                run.expect_reason("cycles per day");
            },
        ),
        scenario(
            "dies_after_n_calls",
            "the candidate's health traps from its 6th call on (after its commit)",
            ROLLED_BACK,
            |run| {
                run.propose(&chaos_release("dies_after_5"), "dies after 5 calls");
                run.until_terminal();
                run.until_restored();
            },
        ),
        scenario(
            "health_trap_after_commit",
            "the candidate commits, then its health traps from 120 s after boot",
            ROLLED_BACK,
            |run| {
                run.propose(&chaos_release("health_trap_late"), "late trap");
                fault_at_boot(run);
                run.fault_at = run.fault_at.map(|t| t + 120_000_000_000);
                run.until_terminal();
                run.until_restored();
            },
        ),
        scenario(
            "hangs_on_probation",
            "the candidate's health awaits a call that never returns (the agent cannot stop)",
            ROLLED_BACK,
            |run| hang_on_probation(run, "hangs"),
        ),
        Scenario {
            build: "agent-schema-v2",
            ..scenario(
                "stuck_in_stopping_during_rollback",
                "at schema 2, a candidate migrates to 3 and its health hangs: the LKG cannot read schema 3, so the snapshot rung must uninstall the stuck agent to stop it",
                ROLLED_BACK,
                |run| {
                    hang_on_probation(run, "hangs after migrating");
                    let incident = run.tb.incidents().into_iter().next();
                    let uninstalled = incident.as_ref().is_some_and(|i| {
                        i.ladder_step == Some(LadderStep::Snapshot)
                            && i.attempts.iter().any(|a| a.contains("uninstalling"))
                    });
                    run.expect(uninstalled, || {
                        format!(
                            "the snapshot rung never uninstalled a stuck agent: {:?}",
                            incident.map(|i| (i.ladder_step, i.attempts))
                        )
                    });
                },
            )
        },
        scenario(
            "watchdog_killed_in_steady_state",
            "the watchdog is uninstalled; the agent reinstalls it; then a release commits",
            COMMITTED,
            |run| {
                let (tb, wd) = (&run.tb, run.tb.watchdog);
                tb.sim
                    .uninstall_canister(wd, Some(operator()))
                    .expect("uninstall");
                let repaired = tb.run_until(SETTLE_LIMIT, |tb| {
                    tb.audit()
                        .entries
                        .iter()
                        .any(|e| e.action == "watchdog.repaired")
                });
                if let Some(after) = repaired {
                    run.notes
                        .push(format!("repaired {} s after the kill", after.as_secs()));
                }
                run.tb
                    .run_until(SETTLE_LIMIT, |tb| tb.watchdog_status().lkg.is_some());
                run.expect(repaired.is_some(), || {
                    "the agent never repaired the watchdog".into()
                });
                run.propose(&good_release(), "after the repair");
            },
        ),
        scenario(
            "watchdog_killed_mid_upgrade",
            "the watchdog is uninstalled while a release is on probation; the agent reinstalls it after the armed window and the new watchdog adopts the upgrade",
            COMMITTED,
            |run| kill_watchdog_mid_upgrade(run, &good_release(), "release"),
        ),
        scenario(
            "watchdog_killed_mid_bad_upgrade",
            "as watchdog_killed_mid_upgrade, but the release's health traps: the adopting watchdog rolls it back",
            ROLLED_BACK,
            |run| kill_watchdog_mid_upgrade(run, &chaos_release("health_trap_live"), "bad release"),
        ),
        scenario(
            "rollback_interrupted",
            "the watchdog traps mid-ladder while the agent is stopped",
            ROLLED_BACK,
            |run| {
                run.propose(&chaos_release("health_trap_live"), "health traps");
                fault_at_boot(run);
                let tb = &run.tb;
                // One round at a time from the boot: the ladder stops the agent within a round
                // or two of detecting the failure.
                tb.tick_until(1_000_000, |tb| {
                    tb.sim.canister_run_status(tb.agent) == Some(CanisterStatusType::Stopped)
                        && !tb.incidents().is_empty()
                });
                tb.sim.inject(Fault::TrapNextMessage {
                    canister: tb.watchdog,
                });
                tb.sim.tick();
                tb.sim.tick();
                tb.sim.clear_faults();
                let trapped = tb.sim.faults_fired().trapped;
                // Half-way: the agent stays stopped, unrestored, until the next tick retries.
                tb.run_for(Duration::from_secs(5));
                let status = tb.sim.canister_run_status(tb.agent);
                let stopped = status == Some(CanisterStatusType::Stopped);
                let restored = tb.incidents().first().and_then(|i| i.restored_at);
                run.expect(trapped > 0 && stopped && restored.is_none(), || {
                    format!(
                        "the trap did not interrupt the ladder ({trapped} trapped; 5 s later the agent is {status:?}, restored at {restored:?})"
                    )
                });
            },
        ),
        scenario(
            "lkg_copy_corrupted",
            "a byte of the watchdog's LKG copy is flipped in its stable memory; then a bad release",
            ROLLED_BACK,
            |run| {
                let tb = &run.tb;
                let lkg = testbed::installable("agent");
                let mut memory = tb.sim.get_stable_memory(tb.watchdog);
                let head = &lkg[..64];
                let Some(at) = memory.windows(head.len()).position(|w| w == head) else {
                    return run.expect(false, || {
                        "the LKG copy was not found in stable memory".into()
                    });
                };
                let flip = at + 64 + run.rng.below(1024) as usize;
                memory[flip] ^= 0x55;
                tb.sim.set_stable_memory(tb.watchdog, memory);
                run.notes.push(format!(
                    "flipped byte {flip} of the watchdog's stable memory"
                ));
                run.propose(&chaos_release("health_trap_live"), "health traps");
                fault_at_boot(run);
                run.until_terminal();
                run.expect_watchdog_event(
                    "ladder.lkg_repaired",
                    "the corrupted LKG copy was never repaired",
                );
            },
        ),
        scenario(
            "circuit_breaker",
            "three bad releases in a day trip the breaker; the next self_upgrade is refused",
            REJECTED,
            |run| {
                for i in 0..3 {
                    run.propose(&chaos_release("health_trap_live"), &format!("bad {i}"));
                    run.until_terminal();
                    run.upgrade = None;
                    run.tb.run_for(Duration::from_secs(601)); // the gate's cooldown
                }
                match run.tb.self_upgrade_greeting("after the breaker") {
                    Err(e @ AgentError::AutonomyForbids { .. }) => {
                        run.refused = Some(e.to_string())
                    }
                    other => run
                        .notes
                        .push(format!("self_upgrade was not refused: {other:?}")),
                }
            },
        ),
        scenario(
            "concurrent_upgrade_requests",
            "a self_upgrade while a release is in flight is refused; the release commits",
            COMMITTED,
            |run| {
                run.propose(&good_release(), "first");
                match run.tb.self_upgrade_greeting("second") {
                    Err(AgentError::UpgradeInFlight { id }) if Some(id) == run.upgrade => {
                        run.notes.push("the second request was refused".into())
                    }
                    other => {
                        run.not_shown =
                            Some(format!("the second request was not refused: {other:?}"))
                    }
                }
            },
        ),
        scenario(
            "snapshot_limit_reached",
            "the agent already holds the IC's 10 snapshots when a release is armed",
            COMMITTED,
            |run| {
                let (tb, agent, op) = (&run.tb, run.tb.agent, Some(operator()));
                for _ in 0..10 {
                    tb.sim.stop_canister(agent, op).expect("stop");
                    tb.sim
                        .take_canister_snapshot(agent, op, None)
                        .expect("snapshot");
                    tb.sim.start_canister(agent, op).expect("start");
                }
                run.propose(&good_release(), "with 10 snapshots");
                run.until_terminal();
                let replaced = run
                    .tb
                    .events()
                    .into_iter()
                    .find(|e| e.action == "arm.snapshot" && e.detail.contains("replacing"));
                let held = run
                    .tb
                    .sim
                    .list_canister_snapshots(run.tb.agent, Some(operator()))
                    .map(|l| l.len());
                match replaced {
                    Some(e) if held == Ok(10) => run.notes.push(e.detail),
                    other => run.expect(false, || {
                        format!(
                            "the arm did not replace a snapshot at the limit: {other:?}, the agent holds {held:?}"
                        )
                    }),
                }
            },
        ),
        scenario(
            "responses_dropped_at_random",
            "on probation, 20 % of the agent's responses are dropped: no false rollback",
            COMMITTED,
            |run| {
                run.propose(&good_release(), "lossy network");
                fault_at_boot(run);
                run.tb.sim.inject(Fault::DropResponses {
                    from: run.tb.agent,
                    probability: 0.2,
                });
                // A minute of it, and on until a response was dropped: a minute holds some 20
                // best-effort responses, which a seed now and then lets through.
                run.tb.run_for(Duration::from_secs(60));
                run.tb.run_until(Duration::from_secs(600), |tb| {
                    tb.sim.faults_fired().responses_dropped > 0
                });
                run.tb.sim.clear_faults();
                run.tb.sim.release_held_responses();
                run.expect_fired("responses dropped", |f| f.responses_dropped);
                run.fault_at = None;
            },
        ),
        scenario(
            "tool_exceeds_fact_quota",
            "a committed synthesized tool is called with a note bigger than its 64-byte fact quota: the call fails and writes nothing",
            COMMITTED,
            |run| {
                add_tool(run, bounded_tool("note_keeper"), "keep notes");
                let size = 70 + run.rng.below(400) as usize;
                run.notes.push(format!("a note of {size} bytes"));
                let args = serde_json::json!({"text": "n".repeat(size)});
                call_must_fail(run, "note_keeper", args, "fact_quota");
            },
        ),
        scenario(
            "tool_loops_to_its_budget",
            "a committed synthesized tool is called with enough words that its triple loop runs into its 2 M instruction budget",
            COMMITTED,
            |run| {
                add_tool(run, bounded_tool("triples"), "count triples");
                let words = 60 + run.rng.below(41) as usize;
                run.notes
                    .push(format!("{words} words: {} iterations", words.pow(3)));
                let args = serde_json::json!({"words": vec!["w"; words]});
                call_must_fail(run, "triples", args, "instruction_budget");
            },
        ),
        scenario(
            "tool_shadows_a_builtin",
            "self_upgrade adds a tool named like a built-in tool: refused at proposal",
            REJECTED,
            |run| {
                let names = wasm_patch::tool_spec::RESERVED_TOOL_NAMES;
                let name = names[run.rng.below(names.len() as u64) as usize];
                let mut spec =
                    wasm_patch::tool_spec::samples::json("tally_vote").expect("a sample");
                spec["name"] = serde_json::json!(name);
                add_tool(run, spec, "shadow a built-in");
                let refused = run.refused.clone().unwrap_or_default();
                run.expect(refused.contains("collides with a built-in tool"), || {
                    format!("`{name}` was not refused as a built-in's name: {refused:?}")
                });
            },
        ),
        scenario(
            "tool_abi_bit_flip",
            "a release whose synthesized tool has one bit flipped in a host ABI call (to another function of the same type, so the Wasm stays valid): validation finds the code is not what its spec compiles to",
            REJECTED,
            |run| {
                let (bytes, flip) = tool_with_flipped_abi_call(run);
                run.notes.push(flip);
                run.propose(&bytes, "tool with a flipped bit");
                let refused = run.refused.clone().unwrap_or_default();
                run.expect(
                    refused.contains("synthesized tools: tool `tally_vote`"),
                    || format!("the flip was not caught by the registry check: {refused:?}"),
                );
            },
        ),
        scenario(
            "time_jumps_a_day",
            "simulated time jumps a day while the candidate is on probation",
            COMMITTED,
            |run| {
                run.propose(&good_release(), "time jump");
                fault_at_boot(run);
                run.tb.sim.advance_time(Duration::from_secs(86_400));
                run.fault_at = None;
            },
        ),
    ]
    .into_iter()
    .chain(model::all())
    .collect()
}

/// The scenario named `name`.
pub fn find(name: &str) -> Option<Scenario> {
    all().into_iter().find(|s| s.name == name)
}

/// A scenario offering `bytes` as an operator release (`agentctl chaos --candidate`). A module
/// without the release stamp is stamped (version `candidate`, schemas 1..=3) when it can be.
pub fn candidate(bytes: Vec<u8>) -> Scenario {
    let offered = match wasm_patch::apply_patch(
        &bytes,
        &[],
        &wasm_patch::Stamp::new("candidate").with_schema_range(1, 3),
    ) {
        Ok(stamped) => stamped.wasm,
        Err(_) => bytes,
    };
    Scenario {
        loss_allowed: false,
        ..scenario(
            "candidate",
            "the given module, offered as an operator release",
            ANY,
            move |run| {
                run.propose(&offered, "candidate from agentctl");
                fault_at_boot(run);
            },
        )
    }
}
