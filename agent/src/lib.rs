//! The agent canister: a turn loop that works on tasks with a model (the IC's LLM canister)
//! and its tools, memory facts, a version store of its own Wasm, and the upgrade journal that
//! patches, validates, rehearses (in staging) and installs new versions of itself under the
//! watchdog's supervision. See `../shared/DESIGN.md`.
//!
//! `lib.rs` holds the endpoints only; each one checks its caller ([`auth`]), runs a service or
//! repository, converts the service's error to [`api::AgentError`] and records metrics. The
//! candid interface is `agent.did` beside this crate (a test keeps it equal to the code).
//!
//! # Layout
//!
//! - [`api`]: candid types and [`api::AgentError`].
//! - [`memory`]: every MemoryId; [`schema`]: the schema version of this build and the
//!   migrations run at upgrade (the formats and steps are in the `migrations` crate).
//! - Repositories, one per noun: [`tasks`], [`facts`], [`config`], [`uploads`], [`versions`],
//!   [`journal`], [`audit`], [`loop_state`] (the turn loop's settings).
//! - Services: [`auth`], [`gate`], [`upgrade`] (proposal to `Validated`), [`pipeline`]
//!   (rehearsal, arming, install, boot, verdict), [`handback`] (the running module back into
//!   the version store from the watchdog's copy), [`writes`] (the write pause), [`canary`]
//!   (a write that leaves no trace, for probation and the self-test),
//!   [`synth`] (synthesized tools and the host ABI their code calls),
//!   [`sandbox`] (state export/import for rehearsals), [`digest`] (kept up to date on every
//!   write) and [`recount`] (at boot, when it cannot be trusted), [`tools`], [`metrics`].
//! - The turn loop: [`turn`] (the loop, its state machine and log), [`llm`] (the LLM canister
//!   client), [`prompt`] (the layered system prompt), [`survival`] (cycle tiers); [`text`].
//!
//! # Operational limits
//!
//! - Metrics are on the heap and restart at every upgrade; all other state is in stable memory.
//! - Chunks are at most 1 MiB, modules at most [`uploads::MAX_WASM`] (10 MiB less room for the
//!   envelope of the `install_code` message that carries one).
//! - The `Running` upload is checked against canister_status: the agent must be one of its
//!   own controllers (DESIGN.md, Controllers).

pub mod api;
pub mod audit;
pub mod auth;
pub mod canary;
#[cfg(feature = "chaos")]
pub mod chaos;
pub mod config;
pub mod digest;
pub mod facts;
pub mod gate;
pub mod handback;
pub mod journal;
pub mod llm;
pub mod loop_state;
pub mod memory;
pub mod metrics;
pub mod pipeline;
pub mod prompt;
pub mod recount;
pub mod sandbox;
pub mod schema;
pub mod selftest;
pub mod supervision;
pub mod survival;
pub mod synth;
pub mod tasks;
pub mod text;
pub mod tools;
pub mod turn;
pub mod upgrade;
pub mod uploads;
pub mod versions;
pub mod writes;

use api::{
    AgentError, AgentInit, AgentUpgradeArg, ArmReceipt, AuditPage, Autonomy, CommittedWasm, Config,
    Fact, FactCursor, FactPage, GateLimits, Health, LlmSettings, LoopStatus, MethodMetrics,
    ModuleChunk, Priority, PromptLayer, ProposeRelease, RepairNotice, StateChunk, StateDigest,
    SubmitTask, Supervision, SurvivalSettings, Task, TaskPage, TaskStatus, ToolExamples, TurnPage,
    UpgradeOutcome, UpgradePage, UpgradeRecord, UploadProgress, VersionInfo, VersionPage, WasmKind,
};
use auth::{OPERATORS, OPERATORS_SELF, READERS, SELF, WATCHDOG, WATCHDOG_SELF, WRITERS};
use candid::Principal;
use ic_cdk::{init, post_upgrade, query, update};
use metrics::track;
use std::cell::Cell;

type AgentResult<T> = Result<T, AgentError>;

// ---- lifecycle --------------------------------------------------------------------------------

thread_local! {
    /// Instructions the last post_upgrade used (heap: this module instance's own boot).
    static BOOT_INSTRUCTIONS: Cell<Option<u64>> = const { Cell::new(None) };
}

#[init]
fn init(arg: AgentInit) {
    schema::migrate(); // a fresh memory: writes the header at this build's schema
    recount::at_boot();
    sandbox::init(arg.sandbox == Some(true), arg.staging);
    sandbox::record_identity();
    turn::settings::init(arg.turn_loop.clone());
    if let Err(e) = turn::settings::get().llm.check() {
        ic_cdk::trap(format!("AgentInit.turn_loop: {e}"));
    }
    config::init(arg);
    supervision::start();
    selftest::start();
    turn::start();
}

/// Runs the pending migrations before anything else touches stable memory (the repositories
/// open their maps lazily, on first use, after this), then journals `Booted` when this install
/// is the pipeline's own, and re-arms the pipeline's timer (timers do not survive an upgrade).
///
/// The argument is an optional `AgentUpgradeArg`; no argument, or one that does not decode, is
/// a plain upgrade (for example `dfx deploy`).
#[post_upgrade]
fn post_upgrade() {
    let report = schema::migrate();
    recount::at_boot();
    if !report.steps.is_empty() {
        audit::append(
            ic_cdk::api::time(),
            ic_cdk::api::canister_self(),
            "schema.migrate",
            None,
            format!("{report:?}"),
        );
    }
    sandbox::record_identity();
    let raw = ic_cdk::api::msg_arg_data();
    let arg = candid::decode_one::<Option<AgentUpgradeArg>>(&raw)
        .ok()
        .flatten();
    pipeline::on_boot(arg);
    #[cfg(feature = "chaos")]
    chaos::on_boot();
    #[cfg(feature = "chaos")]
    facts::on_chaos_boot();
    pipeline::schedule();
    handback::on_boot();
    supervision::start();
    selftest::start();
    turn::start();
    BOOT_INSTRUCTIONS.with(|b| b.set(Some(ic_cdk::api::performance_counter(0))));
}

/// The chaos build's `pre_upgrade` (the real build has none: its state is in stable
/// structures); it misbehaves as `chaos::on_pre_upgrade` says.
#[cfg(feature = "chaos")]
#[ic_cdk::pre_upgrade]
fn pre_upgrade() {
    chaos::on_pre_upgrade();
}

/// An ingress update from a caller who may not call the method is refused here, before it
/// executes and costs the agent cycles (`auth::ingress_allowed`).
#[ic_cdk::inspect_message]
fn inspect_message() {
    if auth::ingress_allowed(&ic_cdk::api::msg_method_name(), ic_cdk::api::msg_caller()) {
        ic_cdk::api::accept_message();
    }
}

/// An update method's body: its metrics (`metrics::track`) and, when it succeeded, the global
/// timer re-armed if a trap in `canister_global_timer` left it disarmed
/// (`supervision::keep_timer_armed`).
fn update_method<T>(method: &'static str, body: impl FnOnce() -> AgentResult<T>) -> AgentResult<T> {
    let result = track(method, body);
    if result.is_ok() {
        supervision::keep_timer_armed();
    }
    result
}

// ---- public ------------------------------------------------------------------------------------

/// Public: what the watchdog polls.
#[cfg(not(feature = "chaos"))]
#[query]
fn health() -> Health {
    health_now()
}

/// Public: what the watchdog polls. In the chaos build an update, so it can misbehave the way
/// `chaos::on_health` says (await a call).
#[cfg(feature = "chaos")]
#[update]
async fn health() -> Health {
    chaos::on_health().await;
    let mut health = health_now();
    if (chaos::mode() == "reports_unhealthy" && !sandbox::is_copy())
        || chaos::mode() == "reports_unhealthy_all"
    {
        health.status = api::HEALTH_UNHEALTHY.into();
    }
    health
}

fn health_now() -> Health {
    let markers = config::markers();
    let version = markers
        .running
        .and_then(|h| versions::get(&h))
        .map_or_else(schema::build_version, |v| v.version);
    Health {
        status: if schema::stored_version() != schema::RANGE.max || !selftest::failures().is_empty()
        {
            api::HEALTH_UNHEALTHY.into()
        } else if markers.last_error.is_some() {
            "degraded".into()
        } else {
            "ok".into()
        },
        version,
        build: schema::build_version(),
        boot_instructions: BOOT_INSTRUCTIONS.with(|b| b.get()),
        version_store_bytes: Some(versions::stored_bytes()),
        writes_paused: writes::describe(),
        sandbox_copy: sandbox::is_copy(),
        schema_version: schema::stored_version(),
        schema_range: schema::RANGE,
        running_module_hash: markers.running.map(|h| h.to_vec()),
        cycles: ic_cdk::api::canister_cycle_balance(),
        stable_memory_bytes: ic_cdk::stable::stable_size() * 65536,
        heap_memory_bytes: heap_bytes(),
        pending_tasks: digest::pending(),
        last_error: markers.last_error,
        upgrade_in_flight: journal::in_flight(),
        autonomy: config::get().autonomy,
        time: ic_cdk::api::time(),
        alerts: supervision::alerts()
            .into_iter()
            .chain(
                selftest::failures()
                    .into_iter()
                    .map(|f| format!("self-test: {f}")),
            )
            .chain(selftest::control_alert().map(|a| format!("controllers: {a}")))
            .chain(handback::alert().map(|a| format!("version store: {a}")))
            .chain(turn::alert())
            .collect(),
        watchdog: supervision::view(),
        turn_loop: Some(turn::health()),
        staging: config::get().staging,
    }
}

/// The Wasm heap's size: its high-water mark, since a Wasm memory never shrinks.
#[cfg(target_arch = "wasm32")]
pub(crate) fn heap_bytes() -> u64 {
    core::arch::wasm32::memory_size(0) as u64 * 65536
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn heap_bytes() -> u64 {
    0
}

/// Public: the logical state digest (tasks and facts, schema-independent). Staging compares
/// it across a rehearsed upgrade, the watchdog across an upgrade or a restore.
#[query]
fn state_digest() -> StateDigest {
    digest::compute()
}

/// Public: calls, errors and instructions per method since the module started.
#[query]
fn metrics() -> Vec<MethodMetrics> {
    metrics::all()
}

/// Public: the tools' JSON schemas (OpenAI function-calling format): the built-in tools, then
/// the synthesized ones.
#[query]
fn tools() -> String {
    tools::schemas()
}

/// Runs every example of every synthesized tool on the compiled code and on the interpreter
/// (staging's rehearsal probe; state changes of a query are discarded, and examples use their
/// own facts anyway).
#[query]
fn tool_examples() -> AgentResult<ToolExamples> {
    auth::require("tool_examples", READERS)?;
    synth::examples()
}

// ---- tasks and facts ---------------------------------------------------------------------------

/// Checks and submits a task (shared with the `submit_task` tool).
pub(crate) fn submit_task_checked(description: String, priority: Priority) -> AgentResult<Task> {
    if description.trim().is_empty() || description.len() > tasks::MAX_DESCRIPTION {
        return Err(AgentError::InvalidArgument(format!(
            "description must be 1..={} bytes",
            tasks::MAX_DESCRIPTION
        )));
    }
    Ok(tasks::submit(description, priority, ic_cdk::api::time()))
}

#[update]
fn submit_task(arg: SubmitTask) -> AgentResult<Task> {
    update_method("submit_task", || {
        auth::require("submit_task", WRITERS)?;
        writes::check()?;
        let task = submit_task_checked(arg.description, arg.priority.unwrap_or(Priority::Normal))?;
        turn::poke();
        Ok(task)
    })
}

#[update]
fn set_task_status(id: u64, status: TaskStatus) -> AgentResult<Task> {
    update_method("set_task_status", || {
        auth::require("set_task_status", WRITERS)?;
        writes::check()?;
        tasks::set_status(id, status, ic_cdk::api::time())
            .ok_or_else(|| AgentError::NotFound(format!("task {id}")))
    })
}

#[query]
fn get_task(id: u64) -> AgentResult<Task> {
    auth::require("get_task", READERS)?;
    tasks::get(id).ok_or_else(|| AgentError::NotFound(format!("task {id}")))
}

/// A page of tasks with id >= `from`: at most `limit` (capped at 10,000) and 1 MiB of candid;
/// `next_from` continues it.
#[query]
fn list_tasks(from: u64, limit: u32) -> AgentResult<TaskPage> {
    auth::require("list_tasks", READERS)?;
    Ok(tasks::page(from, limit))
}

fn fact_err(e: facts::FactError) -> AgentError {
    AgentError::InvalidArgument(e.to_string())
}

fn ns(namespace: Option<String>) -> String {
    namespace.unwrap_or_else(|| migrations::DEFAULT_NAMESPACE.to_string())
}

/// Stores a fact; returns the previous value.
#[update]
fn remember(fact: Fact) -> AgentResult<Option<String>> {
    update_method("remember", || {
        auth::require("remember", WRITERS)?;
        writes::check()?;
        facts::remember(&fact.namespace, &fact.key, fact.value).map_err(fact_err)
    })
}

#[query]
fn recall(namespace: Option<String>, key: String) -> AgentResult<Option<String>> {
    auth::require("recall", READERS)?;
    facts::recall(&ns(namespace), &key).map_err(fact_err)
}

/// Removes a fact; returns its value.
#[update]
fn forget(namespace: Option<String>, key: String) -> AgentResult<Option<String>> {
    update_method("forget", || {
        auth::require("forget", WRITERS)?;
        writes::check()?;
        facts::forget(&ns(namespace), &key).map_err(fact_err)
    })
}

/// A page of the facts of a namespace (all if none) from `from` on, in (namespace, key)
/// order: at most 1 MiB of candid; `next_from` continues it.
#[query]
fn list_facts(namespace: Option<String>, from: Option<FactCursor>) -> AgentResult<FactPage> {
    auth::require("list_facts", READERS)?;
    facts::page(
        namespace.as_deref(),
        from,
        canister_api::page::MAX_PAGE_ITEMS,
    )
    .map_err(fact_err)
}

// ---- tools ---------------------------------------------------------------------------------

/// Runs one tool with JSON arguments; answers JSON. `self_upgrade` first asks the IC which
/// module the agent runs: a patch is built only on that module.
#[update]
async fn call_tool(name: String, json_args: String) -> AgentResult<String> {
    let result = async {
        let caller = auth::require("call_tool", OPERATORS_SELF)?;
        Ok(tools::call_async(caller, &name, &json_args).await?)
    }
    .await;
    metrics::record("call_tool", &result);
    result
}

/// The watchdog (on probation) and the self-test: a write of a fact and a task that is undone
/// in the same message (`canary`); not refused by the write pause, which it does not disturb.
#[update]
fn canary_write() -> AgentResult<String> {
    update_method("canary_write", || {
        auth::require("canary_write", WATCHDOG_SELF)?;
        canary::run(ic_cdk::api::time())
            .map_err(|e| AgentError::InvalidArgument(format!("the canary write failed: {e}")))
    })
}

// ---- the turn loop -------------------------------------------------------------------------

/// Operators: turns the loop on or off (a turn under way waits while it is off).
#[update]
fn set_loop_enabled(enabled: bool) -> AgentResult<LoopStatus> {
    update_method("set_loop_enabled", || {
        let caller = auth::require("set_loop_enabled", OPERATORS)?;
        Ok(turn::set_enabled(caller, enabled))
    })
}

/// Operators: the LLM canister (none: `PUBLIC_CANISTER_ID:llm`, else mainnet), the model, the
/// call timeout, the rounds per turn and the loop's interval.
#[update]
fn set_llm(settings: LlmSettings) -> AgentResult<LoopStatus> {
    update_method("set_llm", || {
        let caller = auth::require("set_llm", OPERATORS)?;
        turn::set_llm(caller, settings)
    })
}

/// Operators: the cycle thresholds under which the loop slows down and stops calling the
/// model.
#[update]
fn set_survival(settings: SurvivalSettings) -> AgentResult<LoopStatus> {
    update_method("set_survival", || {
        let caller = auth::require("set_survival", OPERATORS)?;
        turn::set_survival(caller, settings)
    })
}

/// Operators: sets an operator layer of the system prompt, or removes it (`null`). A layer
/// that tries to override an immutable one is refused and logged; answers every layer.
#[update]
fn set_prompt_layer(name: String, content: Option<String>) -> AgentResult<Vec<PromptLayer>> {
    update_method("set_prompt_layer", || {
        let caller = auth::require("set_prompt_layer", OPERATORS)?;
        turn::set_prompt_layer(caller, name, content)
    })
}

/// The turn loop: settings, the LLM canister it calls, the survival tier, the prompt layers.
#[query]
fn loop_status() -> AgentResult<LoopStatus> {
    auth::require("loop_status", READERS)?;
    Ok(turn::status())
}

/// Turns with id >= `from`, at most `limit` (capped at 10): messages, tool calls and their
/// results, events, instructions and cycles.
#[query]
fn turns(from: u64, limit: u32) -> AgentResult<TurnPage> {
    auth::require("turns", READERS)?;
    let next = turn::settings::get().next_turn.max(1);
    Ok(turn::log::page(from, limit, next))
}

/// The agent itself only (the turn loop): runs one claimed tool call of a turn, once.
#[update]
async fn run_tool_call(turn_id: u64, index: u32) -> AgentResult<()> {
    auth::require("run_tool_call", SELF)?;
    turn::run::run_tool_call(turn_id, index).await
}

// ---- version store -------------------------------------------------------------------------

/// Appends a chunk (at most 1 MiB) to the upload of `kind`.
#[update]
fn upload_wasm_chunk(kind: WasmKind, chunk: serde_bytes::ByteBuf) -> AgentResult<UploadProgress> {
    update_method("upload_wasm_chunk", || {
        auth::require("upload_wasm_chunk", OPERATORS)?;
        let chunk = chunk.into_vec();
        let size = chunk.len() as u64;
        if size == 0 {
            return Err(AgentError::InvalidArgument("empty chunk".into()));
        }
        if size > uploads::MAX_CHUNK {
            return Err(AgentError::ChunkTooLarge {
                size,
                max: uploads::MAX_CHUNK,
            });
        }
        let before = uploads::progress(kind);
        if before.chunks == 0
            && !(chunk.starts_with(b"\0asm") || chunk.starts_with(&[0x1f, 0x8b, 0x08]))
        {
            return Err(AgentError::InvalidArgument(
                "the first chunk starts with neither the Wasm magic (00 61 73 6d) nor gzip (1f 8b 08)"
                    .into(),
            ));
        }
        if before.bytes + size > uploads::MAX_WASM {
            return Err(AgentError::UploadTooLarge {
                size: before.bytes + size,
                max: uploads::MAX_WASM,
            });
        }
        Ok(uploads::append(kind, chunk))
    })
}

/// Drops the chunks of an upload.
#[update]
fn discard_upload(kind: WasmKind) -> AgentResult<()> {
    update_method("discard_upload", || {
        auth::require("discard_upload", OPERATORS)?;
        uploads::clear(kind);
        Ok(())
    })
}

/// The module hash the IC reports for the agent itself (canister_status: the agent must be its
/// own controller).
pub(crate) async fn own_module_hash() -> AgentResult<Option<Vec<u8>>> {
    canister_api::ic::management::status(ic_cdk::api::canister_self())
        .await
        .map(|s| s.module_hash)
        .map_err(|e| {
            AgentError::ManagementCall(format!(
                "canister_status of the agent itself: {e} (is the agent its own controller?)"
            ))
        })
}

/// Refuses an endpoint that would make an outgoing call while the agent drains its calls
/// before installing an upgrade (`pipeline::quiet`).
pub(crate) fn refuse_calls_while_quiet() -> AgentResult<()> {
    match pipeline::quiet() {
        None => Ok(()),
        Some(id) => Err(AgentError::WrongState {
            id,
            state: "armed".into(),
            reason: "the agent is about to install this upgrade and makes no outgoing call \
                     until it runs: retry in a minute"
                .into(),
        }),
    }
}

/// Verifies and stores the upload of `kind`: its SHA-256 must be `expected_sha256`; a
/// `Running` upload must also be the module canister_status reports; a `Release` must pass
/// validation. On error nothing is stored and the chunks stay.
#[update]
async fn commit_wasm(
    kind: WasmKind,
    expected_sha256: serde_bytes::ByteBuf,
) -> AgentResult<CommittedWasm> {
    let result = async {
        let caller = auth::require("commit_wasm", OPERATORS)?;
        let module_hash = match kind {
            WasmKind::Running => {
                refuse_calls_while_quiet()?;
                own_module_hash().await?
            }
            _ => None,
        };
        Ok(upgrade::commit(
            caller,
            kind,
            &expected_sha256,
            module_hash,
        )?)
    }
    .await;
    metrics::record("commit_wasm", &result);
    result
}

// ---- upgrade journal -----------------------------------------------------------------------

/// Turns the committed `Release` upload into an upgrade proposal. Its parent is the module the
/// IC runs (asked with canister_status, unless the agent is draining its calls before an
/// install, when the gate refuses a proposal anyway), not only what the running marker says.
#[update]
async fn propose_release(arg: ProposeRelease) -> AgentResult<UpgradeRecord> {
    if let Err(e) = auth::require("propose_release", OPERATORS) {
        metrics::record("propose_release", &Err::<(), _>(e.clone()));
        return Err(e);
    }
    if pipeline::quiet().is_none() {
        handback::correct_running_marker().await;
    }
    // Re-read everything after the call: `propose_release` reads the markers afresh.
    update_method("propose_release", || {
        let caller = auth::require("propose_release", OPERATORS)?;
        Ok(upgrade::propose_release(
            caller,
            arg.reason,
            arg.breaks_interface == Some(true),
        )?)
    })
}

#[update]
fn approve_upgrade(id: u64) -> AgentResult<UpgradeRecord> {
    update_method("approve_upgrade", || {
        let caller = auth::require("approve_upgrade", OPERATORS)?;
        Ok(upgrade::approve(caller, id)?)
    })
}

#[update]
fn reject_upgrade(id: u64, reason: String) -> AgentResult<UpgradeRecord> {
    update_method("reject_upgrade", || {
        let caller = auth::require("reject_upgrade", OPERATORS)?;
        Ok(upgrade::reject(caller, id, reason)?)
    })
}

#[update]
fn set_autonomy(autonomy: Autonomy) -> AgentResult<()> {
    update_method("set_autonomy", || {
        let caller = auth::require("set_autonomy", OPERATORS)?;
        // Mutant (issue 12 item 1 reverted): the write pause blocks operator methods too.
        #[cfg(feature = "mutant-pause-blocks-operators")]
        writes::check()?;
        upgrade::set_autonomy(caller, autonomy);
        Ok(())
    })
}

#[update]
fn set_gate_limits(limits: GateLimits) -> AgentResult<()> {
    update_method("set_gate_limits", || {
        let caller = auth::require("set_gate_limits", OPERATORS)?;
        if limits.max_per_day == 0 {
            return Err(AgentError::InvalidArgument(
                "max_per_day must be at least 1".into(),
            ));
        }
        let mut cfg = config::get();
        cfg.limits = limits;
        config::set(cfg);
        audit::append(
            ic_cdk::api::time(),
            caller,
            "config.limits",
            None,
            format!("{limits:?}"),
        );
        Ok(())
    })
}

/// Operators: how many stored versions to keep besides the protected ones (running, LKG,
/// previous LKG, the candidate in flight and its parent, the committed release, the watchdog's
/// module); older ones are evicted at once. Answers the versions evicted.
#[update]
fn set_version_retention(keep: u32) -> AgentResult<Vec<VersionInfo>> {
    update_method("set_version_retention", || {
        let caller = auth::require("set_version_retention", OPERATORS)?;
        if keep > api::MAX_KEEP_VERSIONS {
            return Err(AgentError::InvalidArgument(format!(
                "keep must be 0..={}",
                api::MAX_KEEP_VERSIONS
            )));
        }
        let mut cfg = config::get();
        let before = cfg.keep_versions;
        cfg.keep_versions = Some(keep);
        config::set(cfg);
        audit::append(
            ic_cdk::api::time(),
            caller,
            "config.keep_versions",
            None,
            format!("{before:?} -> {keep}"),
        );
        Ok(versions::enforce_retention())
    })
}

/// Operators: replace the agent's operator list (not empty, no anonymous principal, at most
/// 20). The watchdog keeps its own list (`set_operators` on the watchdog).
#[update]
fn set_operators(operators: Vec<Principal>) -> AgentResult<Vec<Principal>> {
    update_method("set_operators", || {
        let caller = auth::require("set_operators", OPERATORS)?;
        auth::check_operators(&operators).map_err(AgentError::InvalidArgument)?;
        let mut cfg = config::get();
        let before = std::mem::replace(&mut cfg.operators, operators.clone());
        config::set(cfg);
        audit::append(
            ic_cdk::api::time(),
            caller,
            "config.operators",
            None,
            format!("{before:?} -> {operators:?}"),
        );
        // A new operator becomes a controller now, not at the next self-test (up to an hour
        // away at the steady cadence), which would otherwise add it on a later candidate's
        // probation (explorer seed 40).
        ic_cdk_timers::set_timer(std::time::Duration::ZERO, selftest::run());
        Ok(operators)
    })
}

/// Operators: how the agent heartbeats the watchdog and watches cycles; answers the settings
/// in force.
#[update]
fn set_supervision(settings: Supervision) -> AgentResult<Supervision> {
    update_method("set_supervision", || {
        let caller = auth::require("set_supervision", OPERATORS)?;
        settings.check().map_err(AgentError::InvalidArgument)?;
        let mut cfg = config::get();
        cfg.supervision = Some(settings);
        config::set(cfg);
        supervision::start();
        audit::append(
            ic_cdk::api::time(),
            caller,
            "config.supervision",
            None,
            format!("{settings:?}"),
        );
        Ok(settings)
    })
}

/// The watchdog only: it restored the agent (journaled here; the running module and the LKG
/// marker follow the module it restored, when the agent stores it).
#[update]
fn note_repair(notice: RepairNotice) -> AgentResult<()> {
    update_method("note_repair", || {
        let caller = auth::require("note_repair", WATCHDOG)?;
        supervision::note_restored(caller, notice);
        Ok(())
    })
}

/// The watchdog armed an upgrade (snapshot taken): the agent journals `Armed`, then
/// `Installing`, and issues a one-way install_code of the candidate on itself.
#[update]
fn upgrade_armed(receipt: ArmReceipt) -> AgentResult<UpgradeRecord> {
    update_method("upgrade_armed", || {
        let caller = auth::require("upgrade_armed", WATCHDOG)?;
        let answer = pipeline::armed(caller, receipt);
        supervision::sync(); // the fast cadence at once for the install and probation
        answer
    })
}

/// The watchdog's verdict on an armed upgrade: committed, rolled back or failed.
#[update]
fn complete_upgrade(id: u64, outcome: UpgradeOutcome) -> AgentResult<UpgradeRecord> {
    #[cfg(feature = "chaos")]
    chaos::on_complete();
    update_method("complete_upgrade", || {
        let caller = auth::require("complete_upgrade", WATCHDOG)?;
        let rec = pipeline::complete(caller, id, outcome)?;
        turn::poke(); // a turn may be waiting for this verdict
        Ok(rec)
    })
}

/// A piece (at most 1 MiB from `offset`) of a stored module: the watchdog keeps its own copy of
/// the LKG, staging installs the current module and the candidate on its sandbox.
#[query]
fn export_module(hash: serde_bytes::ByteBuf, offset: u64) -> AgentResult<ModuleChunk> {
    auth::require("export_module", READERS)?;
    let key: [u8; 32] = hash
        .as_slice()
        .try_into()
        .map_err(|_| AgentError::InvalidArgument("a module hash is 32 bytes".into()))?;
    let bytes = versions::blob(&key)
        .ok_or_else(|| AgentError::NotFound(format!("module {}", hex::encode(key))))?;
    let total = bytes.len() as u64;
    if offset > total {
        return Err(AgentError::InvalidArgument(format!(
            "offset {offset} is past the module's {total} bytes"
        )));
    }
    let end = (offset + canister_api::TRANSFER_CHUNK).min(total);
    Ok(ModuleChunk {
        total,
        bytes: serde_bytes::ByteBuf::from(bytes[offset as usize..end as usize].to_vec()),
    })
}

/// Staging only, while writes are paused for its rehearsal: a piece of stable memory.
#[query]
fn export_state(offset: u64, max_len: u64) -> AgentResult<StateChunk> {
    let copying = writes::current().is_some_and(|p| p.reason == "rehearsal");
    sandbox::export(ic_cdk::api::msg_caller(), offset, max_len, copying)
}

/// A sandbox only (installed with `sandbox = opt true`), from the staging canister that
/// installed it: writes a piece of a copied state. Upgrade the sandbox before reading it.
#[update]
fn import_state(chunk: StateChunk) -> AgentResult<()> {
    // No metrics or last_error here: they live in stable cells this import overwrites.
    sandbox::import(ic_cdk::api::msg_caller(), &chunk)
}

#[query]
fn get_config() -> AgentResult<Config> {
    auth::require("get_config", READERS)?;
    Ok(config::get())
}

/// Upgrade `id`, or the latest when `None`.
#[query]
fn upgrade_status(id: Option<u64>) -> AgentResult<Option<UpgradeRecord>> {
    auth::require("upgrade_status", READERS)?;
    Ok(match id {
        Some(id) => journal::get(id),
        None => journal::latest(),
    })
}

/// A page of upgrades with id >= `from`: at most `limit` (capped at 10,000) and 1 MiB of
/// candid; `next_from` continues it.
#[query]
fn upgrade_history(from: u64, limit: u32) -> AgentResult<UpgradePage> {
    auth::require("upgrade_history", READERS)?;
    Ok(journal::page(from, limit))
}

/// A page of the stored versions in hash order from the hash `from` on (the first when
/// absent): at most 1 MiB of candid; `next_from` continues it.
#[query]
fn list_versions(from: Option<serde_bytes::ByteBuf>) -> AgentResult<VersionPage> {
    auth::require("list_versions", READERS)?;
    let from = match from {
        None => None,
        Some(hash) => Some(<[u8; 32]>::try_from(hash.as_slice()).map_err(|_| {
            AgentError::InvalidArgument("a version is named by its 32-byte SHA-256".into())
        })?),
    };
    Ok(versions::page(from, canister_api::page::MAX_PAGE_ITEMS))
}

/// Audit entries with `from <= seq < to`: at most 200 and 1 MiB of candid per page;
/// `next_from` continues it.
#[query]
fn audit_log(from: u64, to: u64) -> AgentResult<AuditPage> {
    auth::require("audit_log", READERS)?;
    Ok(audit::range(from, to))
}

/// The generated candid service (`__export_service`, and `get_candid_pointer` for dfx).
#[allow(missing_docs)]
mod candid_export {
    use super::*;
    ic_cdk::export_candid!();

    /// `auth::METHODS`, which `inspect_message` goes by, names every method of the service
    /// with its kind, and nothing else.
    #[test]
    fn the_access_table_covers_the_exported_service() {
        let exported = canister_api::service::methods(&__export_service());
        let mut table: Vec<(String, auth::Kind)> = auth::METHODS
            .iter()
            .map(|(name, kind, _)| (name.to_string(), *kind))
            .collect();
        table.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(table, exported);
    }

    /// The checked-in `agent.did` is the interface the code exports.
    #[test]
    fn checked_in_did_matches_the_exported_service() {
        canister_api::assert_did_current(
            "agent",
            concat!(env!("CARGO_MANIFEST_DIR"), "/agent.did"),
            &__export_service(),
        );
    }
}
