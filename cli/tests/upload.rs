//! `agentctl upload-args` writes candid argument files that icp and dfx can read and that decode to the
//! module's chunks (each at most 1 MiB, in order) and its SHA-256: parsed here with the candid
//! text parser dfx uses.

use candid::Decode;
use canister_api::agent::WasmKind;
use sha2::Digest;

mod common;

use common::agentctl;

fn parse(path: &std::path::Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let args: candid::IDLArgs =
        candid_parser::parse_idl_args(&text).unwrap_or_else(|e| panic!("{e}"));
    args.to_bytes().unwrap()
}

#[test]
fn upload_args_decode_to_the_module_in_order_and_its_hash() {
    let dir = std::env::temp_dir().join(format!("agentctl-upload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // 2.5 MiB: three chunks, the last one partial.
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    module.extend((0..(5 * 512 * 1024 - 8)).map(|i| (i * 31 % 251) as u8));
    let wasm = dir.join("m.wasm");
    std::fs::write(&wasm, &module).unwrap();
    let out = dir.join("args");
    let run = agentctl([
        "upload-args",
        "--kind",
        "watchdog",
        "--wasm",
        wasm.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        stdout.matches("upload_wasm_chunk --argument-file").count(),
        3,
        "{stdout}"
    );
    assert!(stdout.contains("commit_wasm --argument-file"), "{stdout}");
    assert_eq!(
        stdout
            .matches("icp canister call agent upload_wasm_chunk --args-file")
            .count(),
        3,
        "the icp forms: {stdout}"
    );
    assert!(
        stdout.contains("icp canister call agent commit_wasm --args-file"),
        "{stdout}"
    );

    let mut joined = vec![];
    for i in 0..3 {
        let bytes = parse(&out.join(format!("chunk-{i:03}.args")));
        let (kind, chunk) = Decode!(&bytes, WasmKind, serde_bytes::ByteBuf).unwrap();
        assert_eq!(kind, WasmKind::Watchdog);
        assert!(chunk.len() <= 1024 * 1024);
        joined.extend_from_slice(&chunk);
    }
    assert_eq!(joined, module);
    let bytes = parse(&out.join("commit.args"));
    let (kind, sha) = Decode!(&bytes, WasmKind, serde_bytes::ByteBuf).unwrap();
    assert_eq!(kind, WasmKind::Watchdog);
    assert_eq!(sha.to_vec(), sha2::Sha256::digest(&module).to_vec());
    assert!(stdout.contains(&hex::encode(&sha)), "{stdout}");

    // Not a module: refused, nothing written.
    std::fs::write(dir.join("x.txt"), b"hello").unwrap();
    let (text, none) = (dir.join("x.txt"), dir.join("none"));
    let run = agentctl([
        "upload-args",
        "--kind",
        "release",
        "--wasm",
        text.to_str().unwrap(),
        "--out",
        none.to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("neither a Wasm module"));
    assert!(!dir.join("none").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
