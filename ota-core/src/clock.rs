//! Time as a dependency: every rule takes its time from a [`Clock`], so that tests drive time
//! with a [`ManualClock`] instead of sleeping.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use std::fmt::Debug;
use std::sync::Mutex;

/// A point in time, UTC.
///
/// Precision: the engine keeps **whole microseconds**. [`SystemClock`] truncates to the
/// microsecond, so that every time it gives round-trips exactly through every store
/// (PostgreSQL's `timestamptz` holds microseconds). A finer time (a [`ManualClock`] set to
/// one, a time built by hand) is kept as it is by the memory store but read back truncated
/// to its microsecond (towards the past) from the PostgreSQL store.
pub type Timestamp = DateTime<Utc>;

/// A source of the current time. Implementations should give whole microseconds (see
/// [`Timestamp`]) so that times read back from any store equal the times written.
pub trait Clock: Send + Sync + Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock, truncated to the microsecond.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now().trunc_subsecs(6)
    }
}

/// A clock that only moves when told to. For tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// A clock standing at 2024-01-01T00:00:00Z.
    pub fn at_epoch_2024() -> Self {
        Self::new(
            DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
                .expect("valid literal")
                .with_timezone(&Utc),
        )
    }

    /// Moves the clock forward (or backward, for a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: Timestamp) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::at_epoch_2024();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::milliseconds(600));
        assert_eq!(clock.now() - t0, Duration::milliseconds(600));
        clock.set(t0);
        assert_eq!(clock.now(), t0);
    }

    #[test]
    fn system_clock_gives_whole_microseconds() {
        for _ in 0..100 {
            assert_eq!(SystemClock.now().timestamp_subsec_nanos() % 1_000, 0);
        }
    }

    #[test]
    fn system_clock_is_not_before_2024() {
        assert!(SystemClock.now() > ManualClock::at_epoch_2024().now());
    }
}
