//! From cargo's output to the files callers use: candid metadata, validation, gzip.
//!
//! For a canister with a `.did` file, its bytes become the custom section
//! [`CANDID_SERVICE_SECTION`] (what `dfx canister metadata NAME
//! candid:service` and other tools read), and the result must pass `wasm_patch::validate` with
//! the IC's limits (one `icp:` NAME at most once, at most 16 `icp:` sections and 1 MiB of them
//! in all). The module is then written as `NAME.wasm` and, gzip-compressed, as `NAME.wasm.gz`.
//!
//! The files are rewritten only when their bytes change, through a temporary file and a rename,
//! so a test process and `build-canisters` (or dfx) running at the same time never see half a
//! file, and an unchanged build keeps its timestamps. The gzip file goes first: a `NAME.wasm`
//! with the current bytes means its `NAME.wasm.gz` is current too.

use crate::custom_section::{self, SectionError};
use crate::{BuildError, CANDID_SERVICE_SECTION, Canister, gz_path, wasm_path, workspace_root};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::Path;

/// Turns cargo's `built` file into the canister's output files.
pub(crate) fn install(canister: &Canister, built: &Path) -> Result<(), BuildError> {
    install_at(
        canister,
        built,
        &wasm_path(canister.name),
        &gz_path(canister.name),
    )
}

/// [`install`] to the output files `wasm` and `gz` (a mutant build's).
pub(crate) fn install_at(
    canister: &Canister,
    built: &Path,
    wasm: &Path,
    gz: &Path,
) -> Result<(), BuildError> {
    let mut bytes = read(built)?;
    if let Some(did) = canister.did {
        bytes = with_candid(canister, &bytes, did)?;
    }
    if gz.exists() && std::fs::read(wasm).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    write_atomically(gz, &gzip(&bytes))?;
    write_atomically(wasm, &bytes)
}

/// `wasm` with the contents of `did` as its `candid:service` metadata, checked against the IC's
/// rules.
fn with_candid(canister: &Canister, wasm: &[u8], did: &'static str) -> Result<Vec<u8>, BuildError> {
    let service = read(&workspace_root().join(did))?;
    let wasm = custom_section::set_custom_section(wasm, CANDID_SERVICE_SECTION, &service).map_err(
        |source: SectionError| BuildError::Metadata {
            canister: canister.name,
            section: CANDID_SERVICE_SECTION,
            source,
        },
    )?;
    wasm_patch::validate(&wasm, &wasm_patch::ValidationPolicy::default()).map_err(|source| {
        BuildError::NotInstallable {
            canister: canister.name,
            did,
            source,
        }
    })?;
    Ok(wasm)
}

fn read(path: &Path) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(|e| BuildError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// gzip with a zero timestamp and no file name, so equal Wasm gives equal `.gz` bytes (and the
/// same module hash on the IC) on every machine.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .expect("writing to a Vec cannot fail")
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    let unwritable = |e: std::io::Error| BuildError::Unwritable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".tmp-{}", std::process::id()));
    std::fs::create_dir_all(path.parent().expect("output files have a parent"))
        .and_then(|()| std::fs::write(&temp, bytes))
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(unwritable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn gzip_is_deterministic_and_round_trips() {
        let bytes = b"\0asm\x01\0\0\0 some module bytes".repeat(100);
        let (a, b) = (gzip(&bytes), gzip(&bytes));
        assert_eq!(a, b);
        assert_eq!(&a[4..8], [0, 0, 0, 0], "no timestamp in the gzip header");
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(a.as_slice())
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, bytes);
    }
}
