//! The explorer inside the README's test command: a fixed budget of short histories
//! (`EXPLORE_SEEDS`, `EXPLORE_STEPS` for a longer soak), replay, shrinking, and the module cache.

use chaos_tests::explore::{self, Action, Config, action::ReleaseKind, trio};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn probe_one() {
    let seed = env("EXPLORE_SEED", 1);
    let h = explore::run_seed(seed, &Config { steps: env("EXPLORE_STEPS", 30) as usize, ..Config::default() });
    println!("{}", h.timeline());
    println!("{:?} {} ms compilations {}", h.coverage, h.wall_ms, h.compilations);
}
