//! Adaptive supervision: the two cadences at which the watchdog heartbeats the agent and the
//! agent heartbeats the watchdog, and the detection bound of each.
//!
//! ```text
//!            an armed upgrade, probation, a restore or repair (an operator's rollback
//!            too), a missed heartbeat, a verdict or notice to deliver
//!   Steady  ----------------------------------------------------------------->  Fast
//!   (every steady_interval_secs)                          (every heartbeat_interval_secs)
//!           <-----------------------------------------------------------------
//!            nothing in flight and STEADY_AFTER_HEALTHY healthy heartbeats in a row
//! ```
//!
//! The cadence is a function of the stored state (never of a timer: timers are lost on an
//! upgrade), so a canister upgraded or restored picks the cadence its state calls for.
//!
//! Detection bounds (from a failure to the start of the ladder or the repair):
//! - fast: `interval x threshold + timeout` (the first of `threshold` failing heartbeats comes
//!   at most one interval after the failure, each failure is seen at most `timeout` after it);
//! - steady: `steady + timeout + (threshold - 1) x interval + timeout`: the first failing
//!   heartbeat comes at most one steady interval after the failure and, once its failure is
//!   seen (at most `timeout` later), switches the canister to the fast cadence; the remaining
//!   `threshold - 1` heartbeats follow at the fast interval. With the steady interval equal to
//!   the fast one there is no switch and the fast bound holds.

use candid::{CandidType, Deserialize};
use serde::Serialize;

/// Seconds between two heartbeats in steady state when an operator did not set
/// `steady_interval_secs`: 8 minutes. With the default fast settings (10 s, 3 failures, 5 s)
/// the steady detection bound is 480 + 5 + 2 x 10 + 5 = 510 s, under the 10 minutes issue 19
/// asks for.
pub const DEFAULT_STEADY_INTERVAL_SECS: u64 = 480;

/// Healthy heartbeats in a row, with nothing in flight, after which a canister moves from the
/// fast cadence to the steady one (one minute at the default 10 s).
pub const STEADY_AFTER_HEALTHY: u32 = 6;

/// Seconds between two looks of the agent's idle turn loop at its task queue once nothing has
/// been pending for a while (its `interval_secs` until then; a new task pokes it at once).
pub const STEADY_IDLE_LOOK_SECS: u64 = 600;

/// Which cadence a supervising canister heartbeats at.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cadence {
    /// Every `heartbeat_interval_secs`: an upgrade, a restore or a repair is under way, a
    /// heartbeat failed, or the peer has not been healthy for long.
    Fast,
    /// Every `steady_interval_secs`: nothing happens.
    Steady,
}

/// `detection_bound_secs`: the bound of each cadence, and the one in force now.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectionBounds {
    /// Seconds from a failure to the ladder's start at the fast cadence.
    pub fast_secs: u64,
    /// The same at the steady cadence (a missed heartbeat switches to the fast one).
    pub steady_secs: u64,
    /// The cadence now.
    pub cadence: Cadence,
    /// The bound of the cadence now.
    pub in_force_secs: u64,
}

/// The heartbeat settings both canisters share, as the bounds need them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Beat {
    /// The fast interval (`heartbeat_interval_secs`).
    pub interval_secs: u64,
    /// `steady_interval_secs` as configured (the default when absent).
    pub steady_secs: Option<u64>,
    /// Failures in a row that start the ladder or the repair.
    pub failure_threshold: u32,
    /// The heartbeat's timeout.
    pub timeout_secs: u32,
}

impl Beat {
    /// The steady interval in force: the configured one, or the default, never shorter than
    /// the fast interval.
    pub fn steady_interval_secs(&self) -> u64 {
        self.steady_secs
            .unwrap_or(DEFAULT_STEADY_INTERVAL_SECS)
            .max(self.interval_secs)
    }

    /// The interval of `cadence`.
    pub fn interval_of(&self, cadence: Cadence) -> u64 {
        match cadence {
            Cadence::Fast => self.interval_secs,
            Cadence::Steady => self.steady_interval_secs(),
        }
    }

    /// The fast cadence's detection bound (see the module doc).
    pub fn fast_bound_secs(&self) -> u64 {
        self.interval_secs * u64::from(self.failure_threshold) + u64::from(self.timeout_secs)
    }

    /// The steady cadence's detection bound (see the module doc).
    pub fn steady_bound_secs(&self) -> u64 {
        let steady = self.steady_interval_secs();
        if steady == self.interval_secs {
            return self.fast_bound_secs();
        }
        steady
            + 2 * u64::from(self.timeout_secs)
            + u64::from(self.failure_threshold.saturating_sub(1)) * self.interval_secs
    }

    /// Both bounds, with `cadence` in force.
    pub fn bounds(&self, cadence: Cadence) -> DetectionBounds {
        let (fast_secs, steady_secs) = (self.fast_bound_secs(), self.steady_bound_secs());
        DetectionBounds {
            fast_secs,
            steady_secs,
            cadence,
            in_force_secs: match cadence {
                Cadence::Fast => fast_secs,
                Cadence::Steady => steady_secs,
            },
        }
    }

    /// Why `steady_secs` is not acceptable, if it is not.
    pub fn steady_problem(&self) -> Option<&'static str> {
        let s = self.steady_secs?;
        (s < self.interval_secs || s > 86_400).then_some(
            "steady_interval_secs must be heartbeat_interval_secs..=86400 (equal to \
             heartbeat_interval_secs turns the steady cadence off)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Beat {
        Beat {
            interval_secs: 10,
            steady_secs: None,
            failure_threshold: 3,
            timeout_secs: 5,
        }
    }

    #[test]
    fn the_default_bounds_are_35_s_fast_and_510_s_steady() {
        let b = defaults().bounds(Cadence::Steady);
        assert_eq!(b.fast_secs, 35);
        assert_eq!(b.steady_secs, 510);
        assert!(
            b.steady_secs <= 600,
            "issue 19: steady detection <= 10 minutes"
        );
        assert_eq!(b.in_force_secs, 510);
        assert_eq!(defaults().bounds(Cadence::Fast).in_force_secs, 35);
    }

    #[test]
    fn a_steady_interval_equal_to_the_fast_one_turns_the_steady_cadence_off() {
        let beat = Beat {
            steady_secs: Some(10),
            ..defaults()
        };
        assert_eq!(beat.steady_bound_secs(), beat.fast_bound_secs());
        assert_eq!(beat.interval_of(Cadence::Steady), 10);
        assert_eq!(beat.steady_problem(), None);
    }

    #[test]
    fn a_steady_interval_shorter_than_the_fast_one_or_over_a_day_is_refused() {
        for bad in [9, 86_401] {
            let beat = Beat {
                steady_secs: Some(bad),
                ..defaults()
            };
            assert!(beat.steady_problem().is_some(), "{bad}");
        }
        // Absent: the default, raised to the fast interval when that is longer.
        let slow_fast = Beat {
            interval_secs: 900,
            ..defaults()
        };
        assert_eq!(slow_fast.steady_problem(), None);
        assert_eq!(slow_fast.steady_interval_secs(), 900);
    }
}
