//! `build-canisters [NAME...]`: builds canister Wasm into `target/canisters/wasm` and prints the
//! files written, `NAME.wasm` and `NAME.wasm.gz` for each (every canister without arguments).
//!
//! `build-canisters --mutants` lists the mutants (`canister_build::mutants`), one a line: name,
//! issue item, guarding test and the reverted fix, separated by tabs. `build-canisters --mutant
//! NAME` builds mutant NAME's trio and prints its files.
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
    match names.first().map(String::as_str) {
        Some("--mutants") => {
            for m in canister_build::MUTANTS {
                println!("{}\t{}\t{}\t{}", m.name, m.item, m.guarded_by, m.reverts);
            }
            return Ok(());
        }
        Some("--mutant") => {
            let name = names.get(1).map_or("", String::as_str);
            canister_build::mutant_trio(name)?;
            for canister in canister_build::mutants::TRIO {
                let gz = canister_build::mutants::mutant_wasm_gz_path(name, canister)?;
                println!("{}", gz.display());
            }
            return Ok(());
        }
        _ => {}
    }
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
