//! Service: the probes a rehearsal runs on the upgraded sandbox besides health, schema, digest
//! and the read-only replays (`rehearsal`):
//!
//! - [`control_plane`]: every method of the agent's control plane (`AgentMethod::ALL`, what the
//!   watchdog, staging, operators and the agent itself call) is called with a harmless
//!   argument and must answer something of its declared type. Staging is no operator or
//!   watchdog, so the methods that change anything answer `Unauthorized`: that proves them
//!   exported, decoding their argument and answering their type. A trap, a missing method or
//!   an answer of another type fails the probe. The domain writes are [`writes`]' business.
//! - [`writes`]: real writes on the copy (a task submitted and moved to `Done`, a fact
//!   remembered and forgotten), as staging in a sandbox copy may make them: a candidate whose
//!   writes trap never reaches the live agent.
//! - [`controllers`]: the sandbox's controllers are still staging and the sandbox itself: a
//!   candidate that changes its own controllers shows it here, before it is installed.

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Principal};
use canister_api::agent::{
    AgentError, AgentMethod, AuditPage, Autonomy, CommittedWasm, Config, Fact, FactCursor,
    FactPage, GateLimits, Health, ModuleChunk, ProposeRelease, RepairNotice, StateChunk,
    StateDigest, SubmitTask, Supervision, Task, TaskPage, TaskStatus, UpgradeOutcome, UpgradePage,
    UpgradeRecord, UploadProgress, VersionInfo, VersionPage, WasmKind,
};
use canister_api::agent::{
    LlmSettings, LoopStatus, PromptLayer, SurvivalSettings, ToolExamples, TurnPage,
};
use canister_api::failure::not_a_controller;
use canister_api::ic::{self, management};
use canister_api::staging::ProbeResult;
use canister_api::watchdog::ArmReceipt;
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;

fn probe(name: String, ok: bool, detail: String) -> ProbeResult {
    ProbeResult {
        name,
        ok,
        detail,
        instructions: None,
    }
}

/// `method` on the sandbox, answered and decoded as `R`.
async fn answer<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
    sandbox: Principal,
    method: AgentMethod,
    args: &A,
) -> Result<R, String> {
    ic::agent_call(sandbox, method, args, None)
        .await
        .map_err(|e| e.to_string())
}

/// What a typed answer says, in a few words (an error answer is fine: it is typed).
fn said<T>(r: Result<Result<T, AgentError>, String>) -> Result<String, String> {
    match r? {
        Ok(_) => Ok("answered Ok".into()),
        Err(e) => Ok(format!("answered its error type: {e}")),
    }
}

/// One call of `method` with a harmless argument.
async fn call_one(
    sandbox: Principal,
    method: AgentMethod,
    current: &[u8],
) -> Result<String, String> {
    use AgentMethod as M;
    let none = ();
    match method {
        M::Health => answer::<_, Health>(sandbox, method, &none)
            .await
            .map(|h| format!("status {}", h.status)),
        M::StateDigest => answer::<_, StateDigest>(sandbox, method, &none)
            .await
            .map(|d| format!("{} tasks, {} facts", d.tasks, d.facts)),
        M::ExportModule => said(
            answer::<_, Result<ModuleChunk, AgentError>>(
                sandbox,
                method,
                &(ByteBuf::from(current.to_vec()), 0u64),
            )
            .await,
        ),
        M::ExportState => {
            said(answer::<_, Result<StateChunk, AgentError>>(sandbox, method, &(0u64, 0u64)).await)
        }
        M::ImportState => {
            let empty = StateChunk {
                offset: 0,
                total: 0,
                bytes: ByteBuf::new(),
            };
            said(answer::<_, Result<(), AgentError>>(sandbox, method, &(empty,)).await)
        }
        M::UpgradeArmed => {
            let receipt = ArmReceipt {
                upgrade_id: u64::MAX,
                snapshot_id: vec![],
                lkg_hash: vec![],
                deadline: 0,
            };
            said(answer::<_, Result<UpgradeRecord, AgentError>>(sandbox, method, &(receipt,)).await)
        }
        M::CompleteUpgrade => {
            let outcome = UpgradeOutcome::Failed("rehearsal probe".into());
            said(
                answer::<_, Result<UpgradeRecord, AgentError>>(
                    sandbox,
                    method,
                    &(u64::MAX, outcome),
                )
                .await,
            )
        }
        M::NoteRepair => {
            let notice = RepairNotice {
                at: 0,
                by: ic_cdk::api::canister_self(),
                repaired: sandbox,
                action: "rehearsal probe".into(),
                detail: String::new(),
                incident_id: None,
                module_hash: None,
                decided: None,
            };
            said(answer::<_, Result<(), AgentError>>(sandbox, method, &(notice,)).await)
        }
        M::CanaryWrite => {
            said(answer::<_, Result<String, AgentError>>(sandbox, method, &none).await)
        }
        M::ListVersions => said(
            answer::<_, Result<VersionPage, AgentError>>(sandbox, method, &(None::<ByteBuf>,))
                .await,
        ),
        M::ListTasks => {
            said(answer::<_, Result<TaskPage, AgentError>>(sandbox, method, &(0u64, 1u32)).await)
        }
        M::ListFacts => said(
            answer::<_, Result<FactPage, AgentError>>(
                sandbox,
                method,
                &(None::<String>, None::<FactCursor>),
            )
            .await,
        ),
        M::GetConfig => said(answer::<_, Result<Config, AgentError>>(sandbox, method, &none).await),
        M::UpgradeHistory => {
            said(answer::<_, Result<UpgradePage, AgentError>>(sandbox, method, &(0u64, 1u32)).await)
        }
        M::UpgradeStatus => said(
            answer::<_, Result<Option<UpgradeRecord>, AgentError>>(
                sandbox,
                method,
                &(None::<u64>,),
            )
            .await,
        ),
        M::AuditLog => {
            said(answer::<_, Result<AuditPage, AgentError>>(sandbox, method, &(0u64, 1u64)).await)
        }
        // Real writes: see `writes`.
        M::SubmitTask | M::SetTaskStatus | M::Remember | M::Forget => {
            Ok("probed by the write probes".into())
        }
        M::CallTool => said(
            answer::<_, Result<String, AgentError>>(
                sandbox,
                method,
                &(
                    "recall".to_string(),
                    r#"{"key":"__rehearsal__"}"#.to_string(),
                ),
            )
            .await,
        ),
        M::ApproveUpgrade => said(
            answer::<_, Result<UpgradeRecord, AgentError>>(sandbox, method, &(u64::MAX,)).await,
        ),
        M::RejectUpgrade => said(
            answer::<_, Result<UpgradeRecord, AgentError>>(
                sandbox,
                method,
                &(u64::MAX, "rehearsal probe".to_string()),
            )
            .await,
        ),
        M::SetAutonomy => {
            said(answer::<_, Result<(), AgentError>>(sandbox, method, &(Autonomy::Manual,)).await)
        }
        M::SetGateLimits => {
            let limits = GateLimits {
                max_per_day: 0,
                cooldown_secs: 0,
            };
            said(answer::<_, Result<(), AgentError>>(sandbox, method, &(limits,)).await)
        }
        M::SetOperators => said(
            answer::<_, Result<Vec<Principal>, AgentError>>(
                sandbox,
                method,
                &(Vec::<Principal>::new(),),
            )
            .await,
        ),
        M::SetSupervision => said(
            answer::<_, Result<Supervision, AgentError>>(
                sandbox,
                method,
                &(Supervision::default(),),
            )
            .await,
        ),
        M::UploadWasmChunk => said(
            answer::<_, Result<UploadProgress, AgentError>>(
                sandbox,
                method,
                &(WasmKind::Release, ByteBuf::new()),
            )
            .await,
        ),
        M::CommitWasm => said(
            answer::<_, Result<CommittedWasm, AgentError>>(
                sandbox,
                method,
                &(WasmKind::Release, ByteBuf::new()),
            )
            .await,
        ),
        M::DiscardUpload => {
            said(answer::<_, Result<(), AgentError>>(sandbox, method, &(WasmKind::Release,)).await)
        }
        M::ToolExamples => {
            said(answer::<_, Result<ToolExamples, AgentError>>(sandbox, method, &none).await)
        }
        M::SetLoopEnabled => {
            said(answer::<_, Result<LoopStatus, AgentError>>(sandbox, method, &(false,)).await)
        }
        M::SetLlm => said(
            answer::<_, Result<LoopStatus, AgentError>>(
                sandbox,
                method,
                &(LlmSettings::default(),),
            )
            .await,
        ),
        M::SetSurvival => said(
            answer::<_, Result<LoopStatus, AgentError>>(
                sandbox,
                method,
                &(SurvivalSettings::default(),),
            )
            .await,
        ),
        M::SetPromptLayer => said(
            answer::<_, Result<Vec<PromptLayer>, AgentError>>(
                sandbox,
                method,
                &("rehearsal".to_string(), None::<String>),
            )
            .await,
        ),
        M::LoopStatus => {
            said(answer::<_, Result<LoopStatus, AgentError>>(sandbox, method, &none).await)
        }
        M::Turns => {
            said(answer::<_, Result<TurnPage, AgentError>>(sandbox, method, &(0u64, 1u32)).await)
        }
        M::SetVersionRetention => {
            said(answer::<_, Result<Vec<VersionInfo>, AgentError>>(sandbox, method, &(3u32,)).await)
        }
        M::ProposeRelease => {
            let arg = ProposeRelease {
                breaks_interface: None,
                reason: "rehearsal probe".into(),
            };
            said(answer::<_, Result<UpgradeRecord, AgentError>>(sandbox, method, &(arg,)).await)
        }
    }
}

/// Every method of the control plane answers (see the module docs): one probe
/// `control_plane` that names every method that did not.
pub async fn control_plane(sandbox: Principal, current: &[u8]) -> ProbeResult {
    let mut broken = vec![];
    for method in AgentMethod::ALL {
        if let Err(e) = call_one(sandbox, method, current).await {
            broken.push(format!("`{}`: {e}", method.name()));
        }
    }
    let n = AgentMethod::ALL.len();
    if broken.is_empty() {
        probe(
            "control_plane".into(),
            true,
            format!("all {n} methods the watchdog, staging, operators and the agent call answer"),
        )
    } else {
        probe(
            "control_plane".into(),
            false,
            format!(
                "{} of {n} methods do not answer: {}",
                broken.len(),
                broken.join("; ")
            ),
        )
    }
}

/// Real writes on the copy, one probe each (see the module docs).
pub async fn writes(sandbox: Principal) -> Vec<ProbeResult> {
    let mut out = vec![];
    let name = |m: AgentMethod| format!("write {}", m.name());
    let submitted: Result<Result<Task, AgentError>, String> = answer(
        sandbox,
        AgentMethod::SubmitTask,
        &(SubmitTask {
            description: "rehearsal write probe".into(),
            priority: None,
        },),
    )
    .await;
    let task = match submitted {
        Ok(Ok(task)) => {
            out.push(probe(
                name(AgentMethod::SubmitTask),
                true,
                format!("task {}", task.id),
            ));
            Some(task)
        }
        other => {
            out.push(probe(
                name(AgentMethod::SubmitTask),
                false,
                format!("{other:?}"),
            ));
            None
        }
    };
    if let Some(task) = task {
        let moved: Result<Result<Task, AgentError>, String> = answer(
            sandbox,
            AgentMethod::SetTaskStatus,
            &(task.id, TaskStatus::Done),
        )
        .await;
        let ok = matches!(&moved, Ok(Ok(t)) if t.status == TaskStatus::Done);
        out.push(probe(
            name(AgentMethod::SetTaskStatus),
            ok,
            format!("{moved:?}"),
        ));
    }
    let fact = Fact {
        namespace: "default".into(),
        key: "__rehearsal__".into(),
        value: "write probe".into(),
    };
    let remembered: Result<Result<Option<String>, AgentError>, String> =
        answer(sandbox, AgentMethod::Remember, &(fact,)).await;
    out.push(probe(
        name(AgentMethod::Remember),
        matches!(remembered, Ok(Ok(_))),
        format!("{remembered:?}"),
    ));
    let forgotten: Result<Result<Option<String>, AgentError>, String> = answer(
        sandbox,
        AgentMethod::Forget,
        &(None::<String>, "__rehearsal__".to_string()),
    )
    .await;
    let ok = matches!(&forgotten, Ok(Ok(Some(v))) if v == "write probe");
    out.push(probe(
        name(AgentMethod::Forget),
        ok,
        format!("{forgotten:?}"),
    ));
    out
}

/// The sandbox's controllers are still staging and the sandbox itself. `Err` carries the
/// probe when staging lost control of the sandbox (it is then forgotten by the caller).
pub async fn controllers(sandbox: Principal) -> Result<ProbeResult, ProbeResult> {
    let me = ic_cdk::api::canister_self();
    match management::status(sandbox).await {
        Ok(s) => {
            let c = s.settings.controllers;
            let ok = c.len() == 2 && c.contains(&me) && c.contains(&sandbox);
            Ok(probe(
                "controllers".into(),
                ok,
                if ok {
                    "staging and the sandbox itself, as before the upgrade".into()
                } else {
                    format!("the candidate changed its controllers to {c:?}")
                },
            ))
        }
        Err(e) if not_a_controller(&e.message) => Err(probe(
            "controllers".into(),
            false,
            format!(
                "the candidate removed staging from its controllers ({e}): sandbox {sandbox} \\
                 and the copy of the agent's state in it are out of staging's reach; staging \\
                 creates a new sandbox"
            ),
        )),
        Err(e) => Ok(probe(
            "controllers".into(),
            false,
            format!("canister_status of the sandbox failed: {e}"),
        )),
    }
}
