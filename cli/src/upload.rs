//! `agentctl upload-args`: candid argument files for uploading a Wasm module to the agent's
//! version store with icp or dfx (`upload_wasm_chunk` in 1 MiB chunks, then `commit_wasm` with
//! the module's SHA-256). A chunk does not fit on a command line, so icp reads each one with
//! `--args-file` and dfx with `--argument-file`; both forms are printed.

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The agent's largest chunk (`upload_wasm_chunk` refuses more).
pub const CHUNK: usize = 1024 * 1024;

/// What a module is uploaded as (`WasmKind` in agent.did).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// The module the agent runs now (checked against canister_status).
    Running,
    /// The watchdog's module (the agent repairs the watchdog with it).
    Watchdog,
    /// An operator release (then `propose_release`).
    Release,
}

impl Kind {
    fn variant(self) -> &'static str {
        match self {
            Kind::Running => "Running",
            Kind::Watchdog => "Watchdog",
            Kind::Release => "Release",
        }
    }
}

/// A candid `blob` literal.
fn blob(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3 + 7);
    out.push_str("blob \"");
    for b in bytes {
        let _ = write!(out, "\\{b:02x}");
    }
    out.push('"');
    out
}

/// The files written, in upload order (chunks, then the commit).
pub struct UploadArgs {
    /// `chunk-NNN.args`, one per chunk.
    pub chunks: Vec<PathBuf>,
    /// `commit.args`.
    pub commit: PathBuf,
    /// The module's SHA-256.
    pub sha256: [u8; 32],
}

/// Writes the argument files for uploading `wasm` as `kind` into `out`.
pub fn write(kind: Kind, wasm: &Path, out: &Path) -> anyhow::Result<UploadArgs> {
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    if !(bytes.starts_with(b"\0asm") || bytes.starts_with(&[0x1f, 0x8b, 0x08])) {
        bail!(
            "{} is neither a Wasm module (00 61 73 6d) nor gzip (1f 8b 08)",
            wasm.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut chunks = vec![];
    for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
        let path = out.join(format!("chunk-{i:03}.args"));
        let text = format!("(variant {{ {} }}, {})", kind.variant(), blob(chunk));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        chunks.push(path);
    }
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    let commit = out.join("commit.args");
    std::fs::write(
        &commit,
        format!("(variant {{ {} }}, {})", kind.variant(), blob(&sha256)),
    )
    .with_context(|| format!("writing {}", commit.display()))?;
    Ok(UploadArgs {
        chunks,
        commit,
        sha256,
    })
}

/// The commands that upload the files of `args` with `tool` ("icp" or "dfx"), on `network`
/// (an icp environment or a dfx network; the tool's default when absent).
pub fn commands(args: &UploadArgs, tool: &str, network: Option<&str>) -> Vec<String> {
    let call = |method: &str, file: &Path| match tool {
        "icp" => format!(
            "icp canister call agent {method} --args-file {}{}",
            file.display(),
            network.map_or(String::new(), |n| format!(" -e {n}"))
        ),
        _ => format!(
            "dfx canister call{} agent {method} --argument-file {}",
            network.map_or(String::new(), |n| format!(" --network {n}")),
            file.display()
        ),
    };
    let mut out: Vec<String> = args
        .chunks
        .iter()
        .map(|c| call("upload_wasm_chunk", c))
        .collect();
    out.push(call("commit_wasm", &args.commit));
    out
}

/// Runs the subcommand: writes the files and prints the icp and dfx commands.
pub fn run(kind: Kind, wasm: &Path, out: &Path, network: Option<&str>) -> anyhow::Result<bool> {
    let args = write(kind, wasm, out)?;
    println!(
        "# {} as {:?}: {} chunk(s), sha256 {}",
        wasm.display(),
        kind,
        args.chunks.len(),
        hex::encode(args.sha256)
    );
    for tool in ["icp", "dfx"] {
        println!("# with {tool}:");
        for line in commands(&args, tool, network) {
            println!("{line}");
        }
    }
    Ok(true)
}
