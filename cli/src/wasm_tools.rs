//! `agentctl patch` and `agentctl inspect`: the agent's wasm-patch operations and its
//! validation, offline, on any module file. `inspect` validates with the policy the agent applies
//! to a candidate (IC rules, the required exports, the schema range covering `--schema`);
//! `patch` applies a JSON list of operations and stamps the result as the agent does.

use anyhow::{Context, bail};
use canister_api::agent::required_exports;
use serde::Serialize;
use std::path::Path;
use wasm_patch::tool_spec;
use wasm_patch::{PatchOp, Stamp, ValidationPolicy};

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// The agent's validation policy for a candidate, at schema `schema` when given.
pub fn agent_policy(schema: Option<u32>) -> ValidationPolicy {
    ValidationPolicy {
        required_exports: required_exports(),
        current_schema: schema,
        ..ValidationPolicy::default()
    }
}

#[derive(Serialize)]
struct Inspection {
    file: String,
    size: u64,
    module_hash: String,
    valid: bool,
    verdict: String,
    version: Option<String>,
    parent_hash: Option<String>,
    patch_digest: Option<String>,
    schema_range: Option<(u32, u32)>,
    exported_methods: Vec<String>,
    /// The synthesized tools the module's registry lists.
    tools: Vec<InspectedTool>,
}

/// A synthesized tool, as `inspect` shows it.
#[derive(serde::Serialize)]
struct InspectedTool {
    name: String,
    description: String,
    parameters: Vec<String>,
    examples: usize,
    code_sha256: String,
}

fn inspected_tools(bytes: &[u8]) -> Vec<InspectedTool> {
    let Ok(Some(registry)) = wasm_patch::tool_registry(bytes) else {
        return vec![];
    };
    registry
        .tools
        .iter()
        .map(|t| {
            let f = &t.schema["function"];
            InspectedTool {
                name: t.name.clone(),
                description: f["description"].as_str().unwrap_or_default().to_string(),
                parameters: f["parameters"]["properties"]
                    .as_object()
                    .map(|p| p.keys().cloned().collect())
                    .unwrap_or_default(),
                examples: t.spec["examples"].as_array().map_or(0, Vec::len),
                code_sha256: t.code_sha256.clone(),
            }
        })
        .collect()
}

/// `agentctl inspect`: `Ok(true)` when the module is valid under the agent's policy.
pub fn inspect(file: &Path, schema: Option<u32>, json: bool) -> anyhow::Result<bool> {
    let bytes = read(file)?;
    let verdict = wasm_patch::validate(&bytes, &agent_policy(schema));
    let print = wasm_patch::fingerprint(&bytes).ok();
    let report = Inspection {
        file: file.display().to_string(),
        size: bytes.len() as u64,
        module_hash: hex::encode(wasm_patch::sha256(&bytes)),
        valid: verdict.is_ok(),
        verdict: match &verdict {
            Ok(_) => "valid: the agent would accept it as a candidate".into(),
            Err(e) => format!("invalid: {e}"),
        },
        version: print.as_ref().and_then(|p| p.version.clone()),
        parent_hash: print.as_ref().and_then(|p| p.parent_hash.map(hex::encode)),
        patch_digest: print.as_ref().and_then(|p| p.patch_digest.map(hex::encode)),
        schema_range: print.as_ref().and_then(|p| p.schema_range),
        exported_methods: print.map(|p| p.exported_methods).unwrap_or_default(),
        tools: inspected_tools(&bytes),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: {} bytes, sha256 {}",
            report.file, report.size, report.module_hash
        );
        println!(
            "  version       {}",
            report.version.as_deref().unwrap_or("(not stamped)")
        );
        println!(
            "  parent        {}",
            report.parent_hash.as_deref().unwrap_or("-")
        );
        println!(
            "  patch digest  {}",
            report.patch_digest.as_deref().unwrap_or("-")
        );
        println!(
            "  schema range  {}",
            report
                .schema_range
                .map_or("(not declared)".into(), |(a, b)| format!("{a}..={b}"))
        );
        println!("  methods       {}", report.exported_methods.join(", "));
        println!("  tools         {}", report.tools.len());
        for t in &report.tools {
            println!(
                "    {}({}): {} [{} examples, code {}]",
                t.name,
                t.parameters.join(", "),
                t.description,
                t.examples,
                &t.code_sha256[..12.min(t.code_sha256.len())]
            );
        }
        println!("  verdict       {}", report.verdict);
    }
    Ok(report.valid)
}

/// Parses `MIN..=MAX` or `MIN..MAX` (inclusive either way) or a single version.
pub fn parse_schema_range(text: &str) -> anyhow::Result<(u32, u32)> {
    let (a, b) = match text.split_once("..") {
        Some((a, b)) => (a, b.trim_start_matches('=')),
        None => (text, text),
    };
    let (a, b): (u32, u32) = (
        a.trim()
            .parse()
            .with_context(|| format!("schema range `{text}`"))?,
        b.trim()
            .parse()
            .with_context(|| format!("schema range `{text}`"))?,
    );
    if a > b {
        bail!("schema range `{text}`: {a} > {b}");
    }
    Ok((a, b))
}

/// `agentctl patch`: applies the operations in `ops` (a JSON list) to `wasm` and writes `out`.
pub fn patch(
    wasm: &Path,
    ops: &Path,
    out: &Path,
    version: &str,
    schema: Option<(u32, u32)>,
) -> anyhow::Result<bool> {
    let bytes = read(wasm)?;
    let text =
        std::fs::read_to_string(ops).with_context(|| format!("reading {}", ops.display()))?;
    let ops: Vec<PatchOp> = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a JSON list of patch operations", ops.display()))?;
    // As the agent does at proposal: specs checked and their examples run in the interpreter
    // before any Wasm is built.
    for (i, op) in ops.iter().enumerate() {
        if let PatchOp::AddTool { spec } = op {
            let spec = tool_spec::check(spec, &|_| None)
                .map_err(|e| anyhow::anyhow!("op {i} (add_tool): the spec does not check: {e}"))?;
            tool_spec::examples::check_all_steps(&spec)
                .map_err(|e| anyhow::anyhow!("op {i} (add_tool): {e}"))?;
            println!(
                "op {i}: tool `{}` checks; its {} examples pass in the interpreter",
                spec.name,
                spec.examples.len()
            );
        }
    }
    let mut stamp = Stamp::new(version);
    if let Some((a, b)) = schema {
        stamp = stamp.with_schema_range(a, b);
    }
    let patched =
        wasm_patch::apply_patch(&bytes, &ops, &stamp).map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(out, &patched.wasm).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{} -> {}: {} op(s), {} -> {} bytes\n  parent {}\n  module {}\n  patch digest {}",
        wasm.display(),
        out.display(),
        ops.len(),
        bytes.len(),
        patched.wasm.len(),
        hex::encode(patched.parent_hash),
        hex::encode(patched.module_hash),
        hex::encode(patched.patch_digest)
    );
    Ok(true)
}
