//! Service: survival tiers. The turn loop spends cycles (each model call attaches
//! [`CYCLES_PER_CALL`], refunded by free models), so it slows down as the balance falls and stops
//! calling the model before it would eat into what the agent needs to stay alive.
//!
//! | tier | balance | the loop |
//! | --- | --- | --- |
//! | `Normal` | >= `slow_below` | runs at its interval |
//! | `Low` | < `slow_below` | new turns at most every `interval x slow_factor`; steps `interval` apart |
//! | `Critical` | < `stop_below` | no model calls (a turn waits; other steps go on) |
//!
//! A call is also not made when attaching its cycles would take the balance under `stop_below`.

use crate::api::{SurvivalSettings, SurvivalTier};
pub use canister_api::llm::CYCLES_PER_CALL;

/// The tier of `balance`.
pub fn tier(balance: u128, s: &SurvivalSettings) -> SurvivalTier {
    if balance < s.stop_below {
        SurvivalTier::Critical
    } else if balance < s.slow_below {
        SurvivalTier::Low
    } else {
        SurvivalTier::Normal
    }
}

/// Whether the agent can attach `attach` cycles to a call and stay at or above `stop_below`.
pub fn can_spare(balance: u128, attach: u128, s: &SurvivalSettings) -> bool {
    balance >= s.stop_below.saturating_add(attach)
}

/// The tier of the agent's balance now.
pub fn current(s: &SurvivalSettings) -> SurvivalTier {
    tier(ic_cdk::api::canister_cycle_balance(), s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u128 = 1_000_000_000_000;

    #[test]
    fn tiers_follow_the_thresholds() {
        let s = SurvivalSettings::default();
        assert_eq!(tier(100 * T, &s), SurvivalTier::Normal);
        assert_eq!(tier(5 * T, &s), SurvivalTier::Normal);
        assert_eq!(tier(5 * T - 1, &s), SurvivalTier::Low);
        assert_eq!(tier(T, &s), SurvivalTier::Low);
        assert_eq!(tier(T - 1, &s), SurvivalTier::Critical);
    }

    #[test]
    fn a_call_is_not_made_with_cycles_the_agent_cannot_spare() {
        let s = SurvivalSettings::default();
        assert!(can_spare(T + CYCLES_PER_CALL, CYCLES_PER_CALL, &s));
        assert!(!can_spare(T + CYCLES_PER_CALL - 1, CYCLES_PER_CALL, &s));
    }
}
