//! How long a stage's checks may take: the Lambda deadline minus a reserve for the report, or a
//! configured budget when the deadline cannot be trusted.

use std::time::{Duration, SystemTime};

/// The longest a Lambda invocation can last; a deadline further out than this is not real.
const LAMBDA_MAX: Duration = Duration::from_secs(900);

/// Milliseconds since 1970 (0 before it), as Lambda deadlines and the watch state count.
pub(crate) fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// Time for the checks of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// How long the checks may run.
    pub checks: Duration,
    /// Where that number came from.
    pub source: BudgetSource,
}

/// Where a [`Budget`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetSource {
    /// The invocation deadline, less the report reserve.
    Deadline {
        /// Time left until the deadline when the stage started.
        remaining: Duration,
    },
    /// `defaults.budget`, because the deadline was absent, past or implausible.
    Fallback {
        /// Why the deadline was not used.
        reason: &'static str,
        /// Whether that is what a local runtime emulator sends (no deadline, or one in 1970 as
        /// `cargo lambda watch` does): expected there, so not worth a warning.
        emulator: bool,
    },
}

/// Deadlines before this (2001-09-09) are no real Lambda's: an emulator's placeholder.
const PLACEHOLDER_BEFORE_MS: u64 = 1_000_000_000_000;

impl Budget {
    /// A fixed budget (CLI).
    pub fn fixed(checks: Duration) -> Self {
        Budget {
            checks,
            source: BudgetSource::Fallback {
                reason: "no deadline (run outside Lambda)",
                emulator: false,
            },
        }
    }

    /// Budget from a Lambda deadline in milliseconds since the epoch (`0` when absent).
    ///
    /// `cargo lambda watch` sends a deadline in 1970, so absent, past and further-than-15-minutes
    /// deadlines all fall back to `fallback`; a real deadline that leaves less than `reserve`
    /// gives the checks no time at all, so the stage fails and is still reported in time.
    pub fn from_deadline(
        deadline_ms: u64,
        now: SystemTime,
        reserve: Duration,
        fallback: Duration,
    ) -> Self {
        let emulator = deadline_ms < PLACEHOLDER_BEFORE_MS;
        let fall_back = |reason| Budget {
            checks: fallback,
            source: BudgetSource::Fallback { reason, emulator },
        };
        if deadline_ms == 0 {
            return fall_back("the invocation has no deadline");
        }
        let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
        match deadline.duration_since(now) {
            Err(_) => fall_back("the invocation deadline is already past"),
            Ok(remaining) if remaining > LAMBDA_MAX + Duration::from_secs(60) => {
                fall_back("the invocation deadline is further out than Lambda allows")
            }
            Ok(remaining) => Budget {
                checks: remaining.saturating_sub(reserve),
                source: BudgetSource::Deadline { remaining },
            },
        }
    }
}

impl Budget {
    /// Whether the deadline was an emulator's placeholder (see `BudgetSource::Fallback`).
    pub fn is_emulator(&self) -> bool {
        matches!(self.source, BudgetSource::Fallback { emulator: true, .. })
    }

    #[cfg(test)]
    fn source_reason(&self) -> &'static str {
        match self.source {
            BudgetSource::Fallback { reason, .. } => reason,
            BudgetSource::Deadline { .. } => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESERVE: Duration = Duration::from_secs(10);
    const FALLBACK: Duration = Duration::from_secs(120);

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn a_real_deadline_keeps_the_reserve() {
        let now = 1_700_000_000_000;
        let b = Budget::from_deadline(now + 60_000, at(now), RESERVE, FALLBACK);
        assert_eq!(b.checks, Duration::from_secs(50));
        assert!(matches!(b.source, BudgetSource::Deadline { .. }));
    }

    #[test]
    fn absent_past_and_bogus_deadlines_fall_back() {
        let now = 1_700_000_000_000;
        for deadline in [0, 600_000, now - 1, now + 3_600_000] {
            let b = Budget::from_deadline(deadline, at(now), RESERVE, FALLBACK);
            assert_eq!(b.checks, FALLBACK, "deadline {deadline}");
            let emulator = deadline < PLACEHOLDER_BEFORE_MS;
            assert_eq!(
                b.source,
                BudgetSource::Fallback {
                    reason: b.source_reason(),
                    emulator
                },
                "deadline {deadline}"
            );
        }
        // What cargo lambda watch sends, and no deadline at all, are an emulator's; a deadline
        // a second past is a real Lambda's, late.
        assert!(Budget::from_deadline(600_000, at(now), RESERVE, FALLBACK).is_emulator());
        assert!(Budget::from_deadline(0, at(now), RESERVE, FALLBACK).is_emulator());
        assert!(!Budget::from_deadline(now - 1_000, at(now), RESERVE, FALLBACK).is_emulator());
    }

    #[test]
    fn a_deadline_inside_the_reserve_leaves_no_time_for_checks() {
        let now = 1_700_000_000_000;
        let b = Budget::from_deadline(now + 3_000, at(now), RESERVE, FALLBACK);
        assert_eq!(b.checks, Duration::ZERO);
    }
}
