//! Mutant builds: the trio with one fix of issue 12 ("Close the holes in the safety net")
//! reverted, to prove that the tests and the explorer (issue 15) find each hole again.
//!
//! A mutant `NAME` is the cargo feature `mutant-NAME` of the canister crates it touches
//! ([`Mutant::packages`]); under it the crate restores the old behaviour at exactly the place of
//! the fix (a `#[cfg(feature = "mutant-NAME")]` line or block there). Mutants are never part of
//! [`crate::CANISTERS`]: nothing builds them unless asked, so they cost the default test command
//! nothing.
//!
//! - [`MUTANTS`]: every mutant, with the issue item and a one-line description of the reverted
//!   fix.
//! - [`mutant_trio`]: the Wasm a deployment of mutant `NAME` uses: `agent`, `agent-chaos` (the
//!   source of bad candidates: it carries the mutation too, so that a candidate that is
//!   committed keeps it), `watchdog` and `staging`. Canisters the mutant does not touch are the
//!   plain builds.
//! - [`mutant_wasm`] and [`mutant_wasm_gz_path`]: one canister of it.
//!
//! The builds share one target directory (`target/canisters/mutants/build`: the dependencies
//! are compiled once; each mutant recompiles and relinks only the crates it touches), guarded
//! by a file lock so that two processes never read each other's output. The results are
//! `target/canisters/mutants/wasm/NAME/CANISTER.wasm` and `.wasm.gz`, with the same metadata and
//! checks as the plain builds. In one process each is built once.

use crate::{BuildError, Canister, canister_target_dir, cargo, output};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// One reverted fix.
#[derive(Debug, Clone, Copy)]
pub struct Mutant {
    /// The mutant's name; its cargo feature is `mutant-NAME`.
    pub name: &'static str,
    /// The item of issue 12 whose fix it reverts ("1", "2", ..., or "extra" for a fix of the
    /// same class made later).
    pub item: &'static str,
    /// What the mutant does instead of the fix, in one line.
    pub reverts: &'static str,
    /// The cargo packages that carry the feature `mutant-NAME`.
    pub packages: &'static [&'static str],
    /// The test of `testbed/tests/safety_net.rs` that guards the fix (it fails under the
    /// mutant).
    pub guarded_by: &'static str,
}

impl Mutant {
    /// The cargo feature of this mutant.
    pub fn feature(&self) -> String {
        format!("mutant-{}", self.name)
    }
}

/// The canisters of a mutant trio, by the names of their plain builds.
pub const TRIO: &[&str] = &["agent", "agent-chaos", "watchdog", "staging"];

/// Every mutant.
pub const MUTANTS: &[Mutant] = &[
    Mutant {
        name: "pause-lease",
        item: "1",
        reverts: "a write pause has no end: it lasts until something lifts it",
        packages: &["agent"],
        guarded_by: "item1_a_write_pause_ends_with_its_lease_and_the_operator_can_reject",
    },
    Mutant {
        name: "end-lifts-pause",
        item: "1",
        reverts: "ending an upgrade (a rejection, a failure) does not lift its write pause",
        packages: &["agent"],
        guarded_by: "item1_a_rejection_while_the_arm_is_in_flight_lifts_the_pause_and_reconciles_the_verdict",
    },
    Mutant {
        name: "pause-blocks-operators",
        item: "1",
        reverts: "the write pause refuses an operator's set_autonomy as it refuses writes",
        packages: &["agent"],
        guarded_by: "item1_no_operator_method_is_refused_by_the_write_pause",
    },
    Mutant {
        name: "required-exports",
        item: "2",
        reverts: "a candidate must export only the old short list of methods (no export_module, \
                  complete_upgrade, upgrade_armed, state_digest, import_state, ...)",
        packages: &["agent"],
        guarded_by: "item2_an_intended_interface_break_still_keeps_the_control_plane",
    },
    Mutant {
        name: "interface-check",
        item: "2",
        reverts: "no candid subtype check: a self-patch or release may drop or change methods \
                  of the running interface",
        packages: &["agent"],
        guarded_by: "item2_an_interface_break_is_refused_unless_an_operator_release_means_it",
    },
    Mutant {
        name: "control-plane-probe",
        item: "2",
        reverts: "the rehearsal does not call the control-plane methods on the sandbox",
        packages: &["staging"],
        guarded_by: "item2_a_candidate_whose_control_plane_traps_fails_its_rehearsal",
    },
    Mutant {
        name: "single-flight",
        item: "3",
        reverts: "the pipeline's advance is not single-flight: an approval during a rehearsal \
                  starts a second one",
        packages: &["agent"],
        guarded_by: "item3_an_approval_during_the_rehearsal_runs_one_rehearsal_and_commits",
    },
    Mutant {
        name: "stale-parent",
        item: "4",
        reverts: "a self-patch is built on the stored running module without asking the IC \
                  which module runs",
        packages: &["agent"],
        guarded_by: "item4_a_module_installed_out_of_band_is_never_patched_over_and_is_adopted_once_stored",
    },
    Mutant {
        name: "verdict-bound",
        item: "5",
        reverts: "the watchdog retries a verdict the candidate cannot take forever, and never \
                  rolls it back",
        packages: &["watchdog"],
        guarded_by: "item5_a_candidate_whose_verdict_traps_is_rolled_back_not_left_in_flight",
    },
    Mutant {
        name: "trap-cleanup",
        item: "6",
        reverts: "a rehearsal that traps half-way leaves the sandbox with the copy of the \
                  agent's state (no clean-up after a trap)",
        packages: &["staging"],
        guarded_by: "item6_a_rehearsal_that_traps_half_way_frees_staging_and_leaves_no_copy",
    },
    Mutant {
        name: "sandbox-refill",
        item: "6",
        reverts: "staging reuses a sandbox without topping up its cycles",
        packages: &["staging"],
        guarded_by: "item6_a_sandbox_left_without_cycles_is_refilled",
    },
    Mutant {
        name: "health-probe",
        item: "6",
        reverts: "the rehearsal's health probe passes whatever status the candidate reports",
        packages: &["staging"],
        guarded_by: "item6_the_rehearsal_requires_a_healthy_status",
    },
    Mutant {
        name: "drain",
        item: "7",
        reverts: "the agent issues its self-install while its own calls are in flight",
        packages: &["agent"],
        guarded_by: "item7_the_install_waits_for_a_held_heartbeat",
    },
    Mutant {
        name: "write-probes",
        item: "8",
        reverts: "the rehearsal probes only reads: it makes no real write on the sandbox",
        packages: &["staging"],
        guarded_by: "item8_a_candidate_whose_writes_trap_fails_its_rehearsal",
    },
    Mutant {
        name: "canary",
        item: "8",
        reverts: "neither probation nor the agent's self-test makes a write on the live \
                  candidate",
        packages: &["agent", "watchdog"],
        guarded_by: "item8_a_candidate_whose_writes_trap_only_live_is_rolled_back_on_probation",
    },
    Mutant {
        name: "controllers",
        item: "9",
        reverts: "neither probation nor the self-test checks the agent's controllers (the \
                  self-test re-adds only the agent and the watchdog)",
        packages: &["agent", "watchdog"],
        guarded_by: "item9_a_candidate_that_drops_the_operators_is_rolled_back",
    },
    Mutant {
        name: "controllers-probe",
        item: "9",
        reverts: "the rehearsal does not check the sandbox's controllers after the upgrade",
        packages: &["staging"],
        guarded_by: "item9_a_candidate_that_seizes_control_is_refused_by_the_rehearsal",
    },
    Mutant {
        name: "failure-classes",
        item: "10",
        reverts: "every failed heartbeat counts towards the ladder, and every reject fails the \
                  self-test, whatever its code (an operator's stop too)",
        packages: &["agent", "watchdog"],
        guarded_by: "item10_an_operator_stop_of_a_committed_version_is_never_rolled_back",
    },
    Mutant {
        name: "restore-ends-upgrade",
        item: "extra",
        reverts: "a restore of an arm-time snapshot leaves the restored upgrade in flight and \
                  writes paused",
        packages: &["agent"],
        guarded_by: "a_snapshot_rollback_after_the_commit_ends_the_restored_upgrade_and_writes_resume",
    },
];

/// The mutant called `name`.
pub fn find_mutant(name: &str) -> Result<&'static Mutant, BuildError> {
    MUTANTS
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| BuildError::UnknownMutant {
            name: name.to_string(),
            known: MUTANTS
                .iter()
                .map(|m| m.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The Wasm of one mutant: raw modules, as [`crate::canister_wasm`] gives the plain ones.
#[derive(Debug, Clone)]
pub struct MutantTrio {
    /// The mutant.
    pub mutant: &'static Mutant,
    /// The agent (deploy it gzipped: [`mutant_wasm_gz_path`] gives the file).
    pub agent: Vec<u8>,
    /// The chaos build of the agent, with the mutation: bad candidates are made from it.
    pub agent_chaos: Vec<u8>,
    /// The watchdog.
    pub watchdog: Vec<u8>,
    /// Staging.
    pub staging: Vec<u8>,
}

/// Every canister of mutant `name`, built on first use (see the module docs).
pub fn mutant_trio(name: &str) -> Result<MutantTrio, BuildError> {
    let mutant = find_mutant(name)?;
    Ok(MutantTrio {
        mutant,
        agent: mutant_wasm(name, "agent")?,
        agent_chaos: mutant_wasm(name, "agent-chaos")?,
        watchdog: mutant_wasm(name, "watchdog")?,
        staging: mutant_wasm(name, "staging")?,
    })
}

/// The raw Wasm of `canister` (one of [`TRIO`]) in mutant `mutant`.
pub fn mutant_wasm(mutant: &str, canister: &str) -> Result<Vec<u8>, BuildError> {
    let (wasm, _) = built(mutant, canister)?;
    std::fs::read(&wasm).map_err(|e| BuildError::Unreadable {
        path: wasm,
        reason: e.to_string(),
    })
}

/// The gzip-compressed Wasm file of `canister` (one of [`TRIO`]) in mutant `mutant`: what a
/// deployer installs; its SHA-256 is the module hash the IC reports.
pub fn mutant_wasm_gz_path(mutant: &str, canister: &str) -> Result<PathBuf, BuildError> {
    built(mutant, canister).map(|(_, gz)| gz)
}

/// The directory of the mutants' builds and outputs.
pub fn mutants_dir() -> PathBuf {
    canister_target_dir().join("mutants")
}

/// The output files (raw, gzip) of `canister` in mutant `mutant`, built once per process.
fn built(mutant: &str, canister: &str) -> Result<(PathBuf, PathBuf), BuildError> {
    let mutant = find_mutant(mutant)?;
    let plain = trio_member(canister)?;
    if !mutant.packages.contains(&plain.package) {
        return Ok((
            crate::canister_wasm_path(plain.name)?,
            crate::canister_wasm_gz_path(plain.name)?,
        ));
    }
    static BUILT: OnceLock<Mutex<HashMap<(&str, &str), Result<(), BuildError>>>> = OnceLock::new();
    let mut done = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    done.entry((mutant.name, plain.name))
        .or_insert_with(|| build(mutant, plain))
        .clone()?;
    Ok(output_paths(mutant, plain))
}

fn trio_member(canister: &str) -> Result<&'static Canister, BuildError> {
    if !TRIO.contains(&canister) {
        return Err(BuildError::NotInTrio {
            name: canister.to_string(),
            known: TRIO.join(", "),
        });
    }
    crate::find(canister)
}

fn output_paths(mutant: &Mutant, plain: &Canister) -> (PathBuf, PathBuf) {
    let dir = mutants_dir().join("wasm").join(mutant.name);
    (
        dir.join(format!("{}.wasm", plain.name)),
        dir.join(format!("{}.wasm.gz", plain.name)),
    )
}

/// `plain` built with `mutant`'s feature added, into the shared directory under its lock.
fn build(mutant: &Mutant, plain: &Canister) -> Result<(), BuildError> {
    cargo::ensure_wasm_target();
    let dir = mutants_dir().join("build");
    let lock_path = mutants_dir().join("build.lock");
    let lock = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::File::create(&lock_path))
        .and_then(|f| f.lock().map(|()| f))
        .map_err(|e| BuildError::Unwritable {
            path: lock_path,
            reason: e.to_string(),
        })?;
    let feature = mutant.feature();
    let features: Vec<&str> = plain
        .features
        .iter()
        .copied()
        .chain(std::iter::once(feature.as_str()))
        .collect();
    cargo::build(std::iter::once(plain.package), &features, &dir)?;
    let (wasm, gz) = output_paths(mutant, plain);
    let result = output::install_at(plain, &cargo::built_wasm(&dir, plain.package), &wasm, &gz);
    drop(lock);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CANISTERS;

    /// Every mutant's feature is declared by each package it names and used in its sources,
    /// names a test of safety_net.rs, and has its row in docs/benchmarks.md's mutation table: a
    /// mutant that drifts from the code or the docs fails here without building anything.
    #[test]
    fn every_mutant_is_declared_used_guarded_and_documented() {
        let root = crate::workspace_root();
        let safety_net = std::fs::read_to_string(root.join("testbed/tests/safety_net.rs")).unwrap();
        let benchmarks = std::fs::read_to_string(root.join("docs/benchmarks.md")).unwrap();
        let table = benchmarks
            .split_once("## Mutants")
            .expect("docs/benchmarks.md has a Mutants section")
            .1;
        let mut names = std::collections::HashSet::new();
        for m in MUTANTS {
            assert!(names.insert(m.name), "{} is listed twice", m.name);
            assert!(!m.packages.is_empty(), "{}", m.name);
            let feature = m.feature();
            for package in m.packages {
                assert!(
                    CANISTERS
                        .iter()
                        .any(|c| c.package == *package && TRIO.contains(&c.name)),
                    "{}: {package} is not a package of the trio",
                    m.name
                );
                let manifest =
                    std::fs::read_to_string(root.join(package).join("Cargo.toml")).unwrap();
                assert!(
                    manifest
                        .lines()
                        .any(|l| l.starts_with(&format!("{feature} ="))),
                    "{package}/Cargo.toml does not declare the feature {feature}"
                );
                let used = format!("feature = \"{feature}\"");
                assert!(
                    sources(&root.join(package).join("src"))
                        .iter()
                        .any(|text| text.contains(&used)),
                    "no `{used}` in {package}/src"
                );
            }
            assert!(
                table.contains(&format!("| `{}` | {} |", m.name, m.item)),
                "docs/benchmarks.md's mutation table has no row for {}",
                m.name
            );
            assert!(
                safety_net.contains(&format!("fn {}()", m.guarded_by)),
                "{}: no test {} in safety_net.rs",
                m.name,
                m.guarded_by
            );
        }
    }

    fn sources(dir: &std::path::Path) -> Vec<String> {
        let mut out = vec![];
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(sources(&path));
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(std::fs::read_to_string(&path).unwrap());
            }
        }
        out
    }

    #[test]
    fn unknown_names_are_refused_with_the_known_ones() {
        let e = mutant_trio("no-such-mutant").unwrap_err().to_string();
        assert!(e.contains("pause-lease"), "{e}");
        let e = mutant_wasm("pause-lease", "llm-standin")
            .unwrap_err()
            .to_string();
        assert!(e.contains("agent-chaos"), "{e}");
    }
}
