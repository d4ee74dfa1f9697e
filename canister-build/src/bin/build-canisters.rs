//! `build-canisters [NAME...]`: builds canister Wasm into `target/canisters/wasm` and prints the
//! files written, `NAME.wasm` and `NAME.wasm.gz` for each (every canister without arguments).
//!
//! dfx runs it as the `build` command of each canister in `dfx.json`; it is the same build
//! `cargo test` does, so both leave the same bytes behind.

use std::process::ExitCode;

fn main() -> ExitCode {
    let names: Vec<String> = std::env::args().skip(1).collect();
    match run(&names) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("build-canisters: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(names: &[String]) -> Result<(), canister_build::BuildError> {
    let canisters = if names.is_empty() {
        canister_build::CANISTERS.iter().collect()
    } else {
        names
            .iter()
            .map(|name| canister_build::find(name))
            .collect::<Result<Vec<_>, _>>()?
    };
    let list: Vec<&str> = canisters.iter().map(|c| c.name).collect();
    eprintln!(
        "build-canisters: building {} (cargo's output is shown if it fails)",
        list.join(", ")
    );
    canister_build::build(&canisters)?;
    for canister in canisters {
        let wasm = canister_build::wasm_path(canister.name);
        let gz = canister_build::gz_path(canister.name);
        println!("{}\n{}", wasm.display(), gz.display());
    }
    Ok(())
}
