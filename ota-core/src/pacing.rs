//! Release pacing: how many queued device updates may be released now.
//!
//! A [`Pacing`] combines a [`Rate`] (N releases per period, released **evenly**: 100 per minute
//! is one every 600 ms), a concurrency window (`max_in_progress`) and an optional exponential
//! [`Ramp`] (as in AWS IoT Jobs). Its rules are pure functions over a small [`PaceState`] that
//! the caller stores (for example in a database row updated by compare-and-set, so that one
//! pace holds across server instances).
//!
//! # Slots
//!
//! Releases use *slots*. The first slot is at the time of the first release; each release
//! moves the next slot on by the current interval (`per / current count`, the current count
//! following the ramp). A slot can be used once its time has come. Slots older than
//! `now - catch_up` are forfeited rather than accumulated, so after idling the burst is at most
//! `1 + catch_up / interval`; a `catch_up` at least as long as the gap between two ticks of
//! the caller keeps the long-run rate equal to the pace.
//!
//! ```
//! use chrono::{Duration, TimeZone, Utc};
//! use ota_core::pacing::{PaceState, Pacing, Rate};
//!
//! let pacing = Pacing::default().rate(Rate::new(100, Duration::seconds(60)).unwrap());
//! let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
//! let mut state = PaceState::default();
//! assert_eq!(pacing.available(&state, t0, 0), 1);
//! pacing.commit(&mut state, t0, 1);
//! assert_eq!(pacing.available(&state, t0 + Duration::milliseconds(599), 0), 0);
//! assert_eq!(pacing.available(&state, t0 + Duration::milliseconds(600), 0), 1);
//! ```

use crate::clock::Timestamp;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

const NANOS_PER_SEC: i128 = 1_000_000_000;
const NANOS_PER_MILLI: i128 = 1_000_000;

/// How many ramp steps one computation follows before it keeps the interval it reached
/// (a longer one than the ramp would give, so the pace only errs on the slow side).
const MAX_RAMP_SEGMENTS: u32 = 1024;

/// Why a pacing configuration is invalid.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PacingError {
    /// A rate of zero releases per period.
    #[error("the rate's count must be at least 1")]
    ZeroCount,
    /// A rate period of zero or less.
    #[error("the rate's period must be positive")]
    NonPositivePeriod,
    /// A rate period that is not a whole number of milliseconds.
    #[error("the rate's period must be a whole number of milliseconds")]
    SubMillisecondPeriod,
    /// A ramp starting at zero releases per period.
    #[error("the ramp's start count must be at least 1")]
    ZeroRampStart,
    /// A ramp factor outside (1.0, 5.0].
    #[error("the ramp's factor must be a finite number above 1.0 and at most 5.0, got {0}")]
    BadRampFactor(f64),
    /// A ramp increasing every zero releases.
    #[error("the ramp's step must be at least 1 release")]
    ZeroRampStep,
    /// A ramp without a rate to ramp up to.
    #[error("a ramp needs a rate (the count it ramps up to)")]
    RampWithoutRate,
    /// A concurrency window of zero, which would never release anything.
    #[error("max_in_progress must be at least 1 (leave it unset for no limit)")]
    ZeroWindow,
    /// A negative catch-up allowance.
    #[error("catch_up must not be negative")]
    NegativeCatchUp,
    /// A catch-up allowance that is not a whole number of milliseconds.
    #[error("catch_up must be a whole number of milliseconds")]
    SubMillisecondCatchUp,
}

/// A duration in nanoseconds, without overflow for any `Duration`.
fn nanos(d: Duration) -> i128 {
    i128::from(d.num_seconds()) * NANOS_PER_SEC + i128::from(d.subsec_nanos())
}

/// A duration from nanoseconds, if it is in `Duration`'s range.
fn from_nanos(ns: i128) -> Option<Duration> {
    let secs = i64::try_from(ns.div_euclid(NANOS_PER_SEC)).ok()?;
    let sub = u32::try_from(ns.rem_euclid(NANOS_PER_SEC)).ok()?;
    Duration::new(secs, sub)
}

/// `t + ns`, saturating at the ends of the timestamp range.
fn add_nanos(t: Timestamp, ns: i128) -> Timestamp {
    match from_nanos(ns).and_then(|d| t.checked_add_signed(d)) {
        Some(r) => r,
        None if ns > 0 => DateTime::<Utc>::MAX_UTC,
        None => DateTime::<Utc>::MIN_UTC,
    }
}

/// `t - d`, saturating at the ends of the timestamp range.
fn sub_saturating(t: Timestamp, d: Duration) -> Timestamp {
    add_nanos(t, -nanos(d))
}

/// `d` if it is a whole number of milliseconds.
fn whole_millis(d: Duration) -> bool {
    nanos(d) % NANOS_PER_MILLI == 0
}

/// A rate: `count` releases per `per`, released evenly (one every [`Rate::interval`]).
///
/// Serialized as `{"count":100,"per_ms":60000}` and validated when deserialized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RateRepr", into = "RateRepr")]
pub struct Rate {
    count: u32,
    per: Duration,
}

#[derive(Serialize, Deserialize)]
struct RateRepr {
    count: u32,
    per_ms: i64,
}

impl TryFrom<RateRepr> for Rate {
    type Error = PacingError;

    fn try_from(r: RateRepr) -> Result<Self, Self::Error> {
        if r.per_ms <= 0 {
            return Err(PacingError::NonPositivePeriod);
        }
        let per = Duration::try_milliseconds(r.per_ms).ok_or(PacingError::NonPositivePeriod)?;
        Rate::new(r.count, per)
    }
}

impl From<Rate> for RateRepr {
    fn from(r: Rate) -> Self {
        Self {
            count: r.count,
            per_ms: r.per.num_milliseconds(),
        }
    }
}

impl Rate {
    /// `count` releases per `per`. The count must be at least 1 and the period positive and a
    /// whole number of milliseconds (the unit it is stored in).
    pub fn new(count: u32, per: Duration) -> Result<Rate, PacingError> {
        if count == 0 {
            return Err(PacingError::ZeroCount);
        }
        if per <= Duration::zero() {
            return Err(PacingError::NonPositivePeriod);
        }
        if !whole_millis(per) {
            return Err(PacingError::SubMillisecondPeriod);
        }
        Ok(Rate { count, per })
    }

    /// Releases per period.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The period.
    pub fn per(&self) -> Duration {
        self.per
    }

    /// The time between two releases: `per / count`, rounded up to the nanosecond (100 per
    /// 60 s is 600 ms).
    pub fn interval(&self) -> Duration {
        // The interval is at most `per`, which is a valid duration.
        from_nanos(self.interval_nanos(self.count)).unwrap_or(self.per)
    }

    /// The interval at `count` releases per period, in nanoseconds (at least 1).
    fn interval_nanos(&self, count: u32) -> i128 {
        let count = i128::from(count.max(1));
        let per = nanos(self.per).max(1);
        ((per + count - 1) / count).max(1)
    }
}

/// An exponential ramp, as in AWS IoT Jobs: the count per period starts at `start_count` and is
/// multiplied by `factor` after every `step` releases, never above the rate's count.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ramp {
    /// The count per period at the start.
    pub start_count: u32,
    /// The factor the count is multiplied by at every step, in (1.0, 5.0].
    pub factor: f64,
    /// The number of releases between two increases.
    pub step: u32,
}

impl Ramp {
    /// Checks start ≥ 1, factor finite in (1.0, 5.0], step ≥ 1.
    pub fn validate(&self) -> Result<(), PacingError> {
        if self.start_count == 0 {
            return Err(PacingError::ZeroRampStart);
        }
        if !self.factor.is_finite() || self.factor <= 1.0 || self.factor > 5.0 {
            return Err(PacingError::BadRampFactor(self.factor));
        }
        if self.step == 0 {
            return Err(PacingError::ZeroRampStep);
        }
        Ok(())
    }

    /// The count per period after `released` releases, capped at `max` (the rate's count):
    /// `start_count × factor^(released / step)`, rounded down.
    pub fn count_after(&self, released: u64, max: u32) -> u32 {
        let max = max.max(1);
        let start = self.start_count.clamp(1, max);
        let steps = released / u64::from(self.step.max(1));
        if steps == 0 {
            return start;
        }
        // Precision loss in the cast only matters for step counts far past saturation.
        #[allow(clippy::cast_precision_loss)]
        let c = f64::from(start) * self.factor.powf(steps as f64);
        if c.is_nan() {
            start
        } else if c >= f64::from(max) {
            max
        } else {
            // Truncation is the intended rounding down; the value is in [0, max).
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let c = c as u32;
            c.clamp(1, max)
        }
    }
}

/// How releases are paced: a rate, a concurrency window, a ramp and a catch-up allowance.
///
/// Serialized with `catch_up` in milliseconds (`catch_up_ms`), validated when deserialized;
/// missing fields take their defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PacingRepr", into = "PacingRepr")]
#[non_exhaustive]
pub struct Pacing {
    /// Releases per period, evenly spaced; `None`: no rate limit.
    pub rate: Option<Rate>,
    /// At most this many devices in progress at once; `None`: no limit.
    pub max_in_progress: Option<u32>,
    /// Ramps the rate's count up from a lower start; needs a rate.
    pub ramp: Option<Ramp>,
    /// How far back unused slots stay usable (not negative, whole milliseconds). Set it at
    /// least to the interval between two calls to keep the long-run rate at the pace.
    pub catch_up: Duration,
}

#[derive(Serialize, Deserialize)]
struct PacingRepr {
    #[serde(default)]
    rate: Option<Rate>,
    #[serde(default)]
    max_in_progress: Option<u32>,
    #[serde(default)]
    ramp: Option<Ramp>,
    #[serde(default = "default_catch_up_ms")]
    catch_up_ms: i64,
}

fn default_catch_up_ms() -> i64 {
    1000
}

impl TryFrom<PacingRepr> for Pacing {
    type Error = PacingError;

    fn try_from(r: PacingRepr) -> Result<Self, Self::Error> {
        if r.catch_up_ms < 0 {
            return Err(PacingError::NegativeCatchUp);
        }
        let catch_up =
            Duration::try_milliseconds(r.catch_up_ms).ok_or(PacingError::NegativeCatchUp)?;
        let pacing = Pacing {
            rate: r.rate,
            max_in_progress: r.max_in_progress,
            ramp: r.ramp,
            catch_up,
        };
        pacing.validate()?;
        Ok(pacing)
    }
}

impl From<Pacing> for PacingRepr {
    fn from(p: Pacing) -> Self {
        Self {
            rate: p.rate,
            max_in_progress: p.max_in_progress,
            ramp: p.ramp,
            catch_up_ms: p.catch_up.num_milliseconds(),
        }
    }
}

impl Default for Pacing {
    /// Unlimited: no rate, no window, no ramp; catch-up 1 s.
    fn default() -> Self {
        Self {
            rate: None,
            max_in_progress: None,
            ramp: None,
            catch_up: Duration::seconds(1),
        }
    }
}

/// The state a pace keeps between calls: small, serializable, updated by [`Pacing::commit`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaceState {
    /// The time of the next slot; `None` before the first release.
    pub next_slot: Option<Timestamp>,
    /// How many were released so far (drives the ramp).
    pub released: u64,
}

impl Pacing {
    /// Sets the rate.
    pub fn rate(mut self, rate: Rate) -> Self {
        self.rate = Some(rate);
        self
    }

    /// Allows at most `max_in_progress` devices in progress at once.
    pub fn max_in_progress(mut self, max_in_progress: u32) -> Self {
        self.max_in_progress = Some(max_in_progress);
        self
    }

    /// Ramps the rate up (needs a rate).
    pub fn ramp(mut self, ramp: Ramp) -> Self {
        self.ramp = Some(ramp);
        self
    }

    /// Sets how far back unused slots stay usable.
    pub fn catch_up(mut self, catch_up: Duration) -> Self {
        self.catch_up = catch_up;
        self
    }

    /// Checks the ramp, that a ramp has a rate, that the window is at least 1 and that
    /// `catch_up` is not negative and in whole milliseconds.
    pub fn validate(&self) -> Result<(), PacingError> {
        if let Some(ramp) = &self.ramp {
            ramp.validate()?;
            if self.rate.is_none() {
                return Err(PacingError::RampWithoutRate);
            }
        }
        if self.max_in_progress == Some(0) {
            return Err(PacingError::ZeroWindow);
        }
        if self.catch_up < Duration::zero() {
            return Err(PacingError::NegativeCatchUp);
        }
        if !whole_millis(self.catch_up) {
            return Err(PacingError::SubMillisecondCatchUp);
        }
        Ok(())
    }

    /// The count per period in effect for the next release (following the ramp); `None`
    /// without a rate.
    pub fn current_count(&self, state: &PaceState) -> Option<u32> {
        self.rate.map(|rate| self.count_at(&rate, state.released))
    }

    /// The interval in effect for the next release (following the ramp); `None` without a
    /// rate.
    pub fn current_interval(&self, state: &PaceState) -> Option<Duration> {
        self.rate.map(|rate| {
            let ns = rate.interval_nanos(self.count_at(&rate, state.released));
            from_nanos(ns).unwrap_or(rate.per)
        })
    }

    /// How many may be released at `now` with `in_progress` devices in progress: the least
    /// of the window's room (`max_in_progress - in_progress`) and the rate's room (the slots
    /// whose time has come, see the [module](self) documentation).
    pub fn available(&self, state: &PaceState, now: Timestamp, in_progress: u32) -> u32 {
        let window = match self.max_in_progress {
            Some(max) => max.saturating_sub(in_progress),
            None => u32::MAX,
        };
        if window == 0 {
            return 0;
        }
        let Some(rate) = self.rate else {
            return window;
        };
        let base = self.base(state, now);
        if base > now {
            return 0;
        }
        let (n, _) = self.walk(&rate, state.released, base, Some(now), u64::from(window));
        u32::try_from(n).unwrap_or(window)
    }

    /// Records that `n` were released at `now`: the next slot moves on by `n` intervals from
    /// the later of the next slot and `now - catch_up`, and `released` grows by `n`.
    /// Committing more than [`Pacing::available`] allowed is possible; it delays later slots.
    pub fn commit(&self, state: &mut PaceState, now: Timestamp, n: u32) {
        if n == 0 {
            return;
        }
        if let Some(rate) = self.rate {
            let base = self.base(state, now);
            let (_, next) = self.walk(&rate, state.released, base, None, u64::from(n));
            state.next_slot = Some(next);
        }
        state.released = state.released.saturating_add(u64::from(n));
    }

    /// When the next slot can be used (`now` if it already can); `None` without a rate. The
    /// concurrency window is not considered: it opens when devices finish.
    pub fn next_release(&self, state: &PaceState, now: Timestamp) -> Option<Timestamp> {
        self.rate?;
        Some(state.next_slot.map_or(now, |next| next.max(now)))
    }

    fn count_at(&self, rate: &Rate, released: u64) -> u32 {
        match &self.ramp {
            Some(ramp) => ramp.count_after(released, rate.count),
            None => rate.count,
        }
    }

    /// The time of the first usable slot at `now`.
    fn base(&self, state: &PaceState, now: Timestamp) -> Timestamp {
        match state.next_slot {
            None => now,
            Some(next) => next.max(sub_saturating(now, self.catch_up.max(Duration::zero()))),
        }
    }

    /// Takes slots from `base` on (with `released` releases before them) while their time is
    /// at most `until` and fewer than `limit` were taken. Returns how many were taken and the
    /// time of the slot after them.
    fn walk(
        &self,
        rate: &Rate,
        released: u64,
        base: Timestamp,
        until: Option<Timestamp>,
        limit: u64,
    ) -> (u64, Timestamp) {
        let horizon = until.map(|u| nanos(u.signed_duration_since(base)));
        let mut taken: u64 = 0;
        let mut offset: i128 = 0;
        let mut r = released;
        let mut segments = 0u32;
        while taken < limit && horizon.is_none_or(|h| offset <= h) {
            let count = self.count_at(rate, r);
            let interval = rate.interval_nanos(count);
            let segment_left = match &self.ramp {
                Some(ramp) if count < rate.count && segments < MAX_RAMP_SEGMENTS => {
                    let step = u64::from(ramp.step.max(1));
                    step - r % step
                }
                _ => u64::MAX,
            };
            let mut n = segment_left.min(limit - taken);
            if let Some(h) = horizon {
                let fit = (h - offset) / interval + 1;
                n = n.min(u64::try_from(fit).unwrap_or(u64::MAX));
            }
            taken += n;
            r = r.saturating_add(n);
            offset = offset.saturating_add(i128::from(n).saturating_mul(interval));
            if n == segment_left {
                segments += 1;
            }
        }
        (taken, add_nanos(base, offset))
    }
}

#[cfg(test)]
mod tests;
