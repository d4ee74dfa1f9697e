// Scratch (not committed): which seeds' histories draw which actions.
use chaos_tests::explore::action::{Action, FaultKind, ReleaseKind, RollbackKind, Who};
fn main() {
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    for seed in 1..=200u64 {
        let h = chaos_tests::explore::generate(seed, steps);
        let mut tags = vec![];
        for (i, a) in h.iter().enumerate() {
            let t = match a {
                Action::Release(ReleaseKind::Bad(m)) => format!("bad:{m}@{i}"),
                Action::Release(ReleaseKind::Good) => format!("good@{i}"),
                Action::OutOfBandInstall(b) => format!("oob{}@{i}", *b as u8),
                Action::SelfUpgrade(_) => format!("self@{i}"),
                Action::Stop(Who::Agent) => format!("stopA@{i}"),
                Action::Kill(w) => format!("kill{:?}@{i}", w),
                Action::Rollback(RollbackKind::Snapshot(_)) => format!("rbSnap@{i}"),
                Action::Fault(FaultKind::Trap(Who::Staging)) => format!("trapS@{i}"),
                Action::Fault(FaultKind::HoldResponses(w)) => format!("hold{:?}@{i}", w),
                Action::SetAutonomy(n) => format!("auto{n}@{i}"),
                Action::Approve => format!("approve@{i}"),
                Action::TimeJump(s) => format!("jump{s}@{i}"),
                _ => continue,
            };
            tags.push(t);
        }
        println!("{seed}: {}", tags.join(" "));
    }
}
