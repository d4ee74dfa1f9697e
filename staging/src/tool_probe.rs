//! The rehearsal's `tool_examples` probe: the candidate's synthesized tools run their examples
//! on the sandbox, compiled, and each must give what its example expects and what the
//! interpreter gives.
//!
//! Which tools the candidate has is read from its own bytes (the registry section
//! `icp:public agent:tools`), not asked of the sandbox: a candidate that answers for fewer
//! tools than it carries fails the probe. A candidate without tools passes it without a call
//! (it may be a build from before the probe existed).

use candid::Principal;
use canister_api::agent::{AgentError, AgentMethod, ToolExamples};
use canister_api::ic;
use canister_api::staging::ProbeResult;
use std::io::Read;
use tool_spec::registry::{Registry, SECTION, custom_section};

/// The probe's name in the report.
pub const NAME: &str = "tool_examples";

/// Largest module staging decompresses (the IC's limit for an uncompressed module).
const MAX_MODULE: u64 = 100 * 1024 * 1024;

fn result(ok: bool, detail: String, instructions: Option<u64>) -> ProbeResult {
    ProbeResult {
        name: NAME.to_string(),
        ok,
        detail,
        instructions,
    }
}

/// The tools the candidate's registry names (raw or gzip bytes).
fn expected_tools(candidate: &[u8]) -> Result<Vec<String>, String> {
    let raw;
    let wasm = if candidate.starts_with(&[0x1f, 0x8b, 0x08]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(candidate)
            .take(MAX_MODULE)
            .read_to_end(&mut out)
            .map_err(|e| format!("the candidate does not decompress: {e}"))?;
        raw = out;
        &raw[..]
    } else {
        candidate
    };
    match custom_section(wasm, SECTION) {
        None => Ok(vec![]),
        Some(bytes) => Registry::parse(bytes)
            .map(|r| r.names().iter().map(|n| n.to_string()).collect())
            .map_err(|e| e.to_string()),
    }
}

/// Runs the probe on the upgraded `sandbox`.
pub async fn probe(sandbox: Principal, candidate: &[u8]) -> ProbeResult {
    let expected = match expected_tools(candidate) {
        Ok(names) => names,
        Err(e) => return result(false, e, None),
    };
    if expected.is_empty() {
        return result(true, "the candidate has no synthesized tools".into(), None);
    }
    let answer: Result<Result<ToolExamples, AgentError>, _> =
        ic::agent_call(sandbox, AgentMethod::ToolExamples, &(), None).await;
    let report = match answer {
        Err(e) => return result(false, format!("tool_examples: {e}"), None),
        Ok(Err(e)) => return result(false, format!("tool_examples: {e}"), None),
        Ok(Ok(report)) => report,
    };
    let compiled: u64 = report.runs.iter().map(|r| r.compiled_instructions).sum();
    if report.tools != expected {
        return result(
            false,
            format!(
                "the candidate carries tools {expected:?} but ran the examples of {:?}",
                report.tools
            ),
            Some(compiled),
        );
    }
    if let Some(tool) = expected
        .iter()
        .find(|t| !report.runs.iter().any(|r| &r.tool == *t))
    {
        return result(
            false,
            format!("tool `{tool}` ran no example"),
            Some(compiled),
        );
    }
    if let Some(failure) = report.first_failure() {
        return result(false, failure, Some(compiled));
    }
    let interpreted: u64 = report.runs.iter().map(|r| r.interpreted_instructions).sum();
    result(
        true,
        format!(
            "{} tools, {} examples passed on the compiled code ({compiled} instructions; the interpreter agreed with {interpreted})",
            expected.len(),
            report.runs.len()
        ),
        Some(compiled),
    )
}
