//! Service: the gate of the upgrade journal (bounded autonomy), as pure functions.
//!
//! Checked in this order when an upgrade is proposed: one upgrade in flight; the autonomy level
//! (a self patch under `Manual` is refused; operator releases are always admitted, the operator
//! being the approver); cooldown since the last proposal; at most `max_per_day` proposals in any
//! 24 hours. The circuit breaker ([`breaker_trips`]) drops autonomy to `Manual` once 3
//! rollbacks happened within 24 hours; the caller persists that and audits it.

use crate::api::{AgentError, Autonomy, GateLimits, UpgradeSource};

/// Nanoseconds in a day.
pub const DAY_NS: u64 = 24 * 3600 * 1_000_000_000;
/// Rollbacks within 24 hours that trip the breaker.
pub const BREAKER_ROLLBACKS: u32 = 3;

/// What the gate looks at.
#[derive(Debug, Clone)]
pub struct GateInput {
    /// Autonomy in force.
    pub autonomy: Autonomy,
    /// Where the proposal comes from.
    pub source: UpgradeSource,
    /// Now, ns.
    pub now: u64,
    /// Rate limit and cooldown.
    pub limits: GateLimits,
    /// Creation times of proposals in the last 24 hours.
    pub recent: Vec<u64>,
    /// The upgrade in flight.
    pub in_flight: Option<u64>,
}

/// Why the gate refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// One at a time.
    #[error("upgrade {0} is in flight")]
    InFlight(u64),
    /// Autonomy forbids a self patch.
    #[error(
        "autonomy is Manual: self_upgrade is disabled; an operator can raise it with set_autonomy"
    )]
    Manual,
    /// Too soon after the last proposal.
    #[error("cooldown: retry in {0} s")]
    Cooldown(u64),
    /// Too many proposals today.
    #[error("rate limit of {max} proposals per 24 h reached: retry in {retry} s")]
    RateLimit {
        /// The limit.
        max: u32,
        /// Seconds to wait.
        retry: u64,
    },
}

impl From<GateError> for AgentError {
    fn from(e: GateError) -> Self {
        match e {
            GateError::InFlight(id) => AgentError::UpgradeInFlight { id },
            GateError::Manual => AgentError::AutonomyForbids {
                autonomy: Autonomy::Manual,
                reason: "self_upgrade is disabled; an operator can raise it with set_autonomy"
                    .into(),
            },
            GateError::Cooldown(retry) => AgentError::RateLimited {
                retry_after_secs: retry,
                reason: "cooldown since the last proposal".into(),
            },
            GateError::RateLimit { max, retry } => AgentError::RateLimited {
                retry_after_secs: retry,
                reason: format!("at most {max} proposals per 24 h"),
            },
        }
    }
}

/// Whether the proposal may enter the journal; `Ok(auto_approved)`.
pub fn check(input: &GateInput) -> Result<bool, GateError> {
    if let Some(id) = input.in_flight {
        return Err(GateError::InFlight(id));
    }
    if input.source == UpgradeSource::SelfPatch && input.autonomy == Autonomy::Manual {
        return Err(GateError::Manual);
    }
    let secs = |ns: u64| ns.div_ceil(1_000_000_000);
    if let Some(last) = input.recent.iter().max() {
        let open_at = last + input.limits.cooldown_secs * 1_000_000_000;
        if input.now < open_at {
            return Err(GateError::Cooldown(secs(open_at - input.now)));
        }
    }
    let window: Vec<u64> = input
        .recent
        .iter()
        .copied()
        .filter(|t| *t + DAY_NS > input.now)
        .collect();
    if window.len() as u64 >= u64::from(input.limits.max_per_day) {
        let oldest = window.iter().min().copied().unwrap_or(input.now);
        return Err(GateError::RateLimit {
            max: input.limits.max_per_day,
            retry: secs(oldest + DAY_NS - input.now),
        });
    }
    Ok(input.source == UpgradeSource::Release || input.autonomy == Autonomy::Auto)
}

/// Whether the breaker trips: `rollbacks` within 24 h and autonomy not yet `Manual`.
pub fn breaker_trips(autonomy: Autonomy, rollbacks_24h: u32) -> bool {
    autonomy != Autonomy::Manual && rollbacks_24h >= BREAKER_ROLLBACKS
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn input() -> GateInput {
        GateInput {
            autonomy: Autonomy::Auto,
            source: UpgradeSource::SelfPatch,
            now: 10 * DAY_NS,
            limits: GateLimits {
                max_per_day: 2,
                cooldown_secs: 60,
            },
            recent: vec![],
            in_flight: None,
        }
    }

    #[test]
    fn one_upgrade_in_flight_at_a_time() {
        let i = GateInput {
            in_flight: Some(4),
            ..input()
        };
        assert_eq!(check(&i), Err(GateError::InFlight(4)));
    }

    #[test]
    fn manual_refuses_self_patches_but_admits_releases() {
        let mut i = GateInput {
            autonomy: Autonomy::Manual,
            ..input()
        };
        assert_eq!(check(&i), Err(GateError::Manual));
        assert_eq!(
            AgentError::from(GateError::Manual).to_string(),
            "autonomy is Manual: self_upgrade is disabled; an operator can raise it with \
             set_autonomy",
            "the level is said once"
        );
        i.source = UpgradeSource::Release;
        assert_eq!(check(&i), Ok(true), "a release is approved by its operator");
    }

    #[test]
    fn approve_each_admits_without_approving() {
        let i = GateInput {
            autonomy: Autonomy::ApproveEach,
            ..input()
        };
        assert_eq!(check(&i), Ok(false));
    }

    #[test]
    fn cooldown_counts_from_the_last_proposal() {
        let mut i = input();
        i.recent = vec![i.now - 20 * S];
        assert_eq!(check(&i), Err(GateError::Cooldown(40)));
        i.recent = vec![i.now - 60 * S];
        assert_eq!(check(&i), Ok(true));
    }

    #[test]
    fn rate_limit_counts_a_rolling_day() {
        let mut i = input();
        i.recent = vec![i.now - 3600 * S, i.now - 7200 * S];
        assert_eq!(
            check(&i),
            Err(GateError::RateLimit {
                max: 2,
                retry: 22 * 3600
            })
        );
        i.recent = vec![i.now - 3600 * S, i.now - DAY_NS];
        assert_eq!(check(&i), Ok(true));
    }

    #[test]
    fn breaker_trips_at_three_rollbacks_unless_already_manual() {
        assert!(!breaker_trips(Autonomy::Auto, 2));
        assert!(breaker_trips(Autonomy::Auto, 3));
        assert!(breaker_trips(Autonomy::ApproveEach, 5));
        assert!(!breaker_trips(Autonomy::Manual, 3));
    }
}
