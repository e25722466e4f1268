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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> Timestamp {
        DateTime::<Utc>::from_timestamp(1_704_067_200, 0).unwrap()
    }

    fn at(ms: i64) -> Timestamp {
        t0() + Duration::milliseconds(ms)
    }

    fn rate(count: u32, per_ms: i64) -> Rate {
        Rate::new(count, Duration::milliseconds(per_ms)).unwrap()
    }

    fn paced(count: u32, per_ms: i64, catch_up_ms: i64) -> Pacing {
        Pacing {
            rate: Some(rate(count, per_ms)),
            catch_up: Duration::milliseconds(catch_up_ms),
            ..Pacing::default()
        }
    }

    /// One release decision per tick `(time in ms, wanted)`; returns `(time, released,
    /// total released after)` for every tick that released something.
    fn simulate(p: &Pacing, ticks: &[(i64, u32)]) -> Vec<(i64, u32, u64)> {
        let mut state = PaceState::default();
        let mut out = Vec::new();
        for &(ms, want) in ticks {
            let now = at(ms);
            let n = p.available(&state, now, 0).min(want);
            p.commit(&mut state, now, n);
            if n > 0 {
                out.push((ms, n, state.released));
            }
        }
        out
    }

    fn ceil_div(a: i128, b: i128) -> i128 {
        (a + b - 1) / b
    }

    #[test]
    fn one_every_600_ms_at_100_per_minute() {
        assert_eq!(rate(100, 60_000).interval(), Duration::milliseconds(600));
        let ticks: Vec<(i64, u32)> = (0..=24).map(|i| (i * 100, u32::MAX)).collect();
        for catch_up in [0, 100, 1000] {
            let releases = simulate(&paced(100, 60_000, catch_up), &ticks);
            let times: Vec<(i64, u32)> = releases.iter().map(|r| (r.0, r.1)).collect();
            assert_eq!(
                times,
                vec![(0, 1), (600, 1), (1200, 1), (1800, 1), (2400, 1)],
                "catch_up {catch_up} ms"
            );
        }
    }

    #[test]
    fn ticks_every_second_keep_the_pace_with_catch_up() {
        let ticks: Vec<(i64, u32)> = (0..=600).map(|s| (s * 1000, u32::MAX)).collect();
        let total = |p: &Pacing| {
            simulate(p, &ticks)
                .iter()
                .map(|r| u64::from(r.1))
                .sum::<u64>()
        };
        // Slots at 0, 0.6 s, ..., 600 s.
        assert_eq!(total(&paced(100, 60_000, 1000)), 1001);
        // Without catch-up, slots between ticks are forfeited: one per tick.
        assert_eq!(total(&paced(100, 60_000, 0)), 601);
    }

    #[test]
    fn burst_after_idling_is_bounded_by_catch_up() {
        let p = paced(100, 60_000, 3000);
        let mut state = PaceState::default();
        p.commit(&mut state, at(0), 1);
        assert_eq!(p.available(&state, at(60_000), 0), 1 + 3000 / 600);
        assert_eq!(p.next_release(&state, at(100)), Some(at(600)));
        assert_eq!(p.next_release(&state, at(60_000)), Some(at(60_000)));
        assert_eq!(p.next_release(&PaceState::default(), at(5)), Some(at(5)));
        assert_eq!(Pacing::default().next_release(&state, at(5)), None);
    }

    #[test]
    fn concurrency_window_limits_releases() {
        let window = Pacing {
            max_in_progress: Some(3),
            ..Pacing::default()
        };
        let s = PaceState::default();
        assert_eq!(window.available(&s, t0(), 0), 3);
        assert_eq!(window.available(&s, t0(), 2), 1);
        assert_eq!(window.available(&s, t0(), 3), 0);
        assert_eq!(window.available(&s, t0(), 10), 0);
        assert_eq!(Pacing::default().available(&s, t0(), 10), u32::MAX);
        let both = Pacing {
            max_in_progress: Some(3),
            ..paced(100, 60_000, 60_000)
        };
        let mut s = PaceState::default();
        both.commit(&mut s, at(0), 1);
        // 100 slots have come, but only 3 may be in progress.
        assert_eq!(both.available(&s, at(59_400), 0), 3);
        assert_eq!(both.available(&s, at(59_400), 1), 2);
        assert_eq!(both.available(&s, at(300), 0), 0);
    }

    #[test]
    fn ramp_multiplies_the_count_every_step() {
        let ramp = Ramp {
            start_count: 1,
            factor: 2.0,
            step: 2,
        };
        let counts: Vec<u32> = (0..12).map(|r| ramp.count_after(r, 10)).collect();
        assert_eq!(counts, vec![1, 1, 2, 2, 4, 4, 8, 8, 10, 10, 10, 10]);
        assert_eq!(ramp.count_after(u64::MAX, 10), 10);

        let p = Pacing {
            ramp: Some(ramp),
            ..paced(10, 60_000, 0)
        };
        let mut state = PaceState::default();
        let mut times = Vec::new();
        let mut now = 0;
        while times.len() < 10 {
            if p.available(&state, at(now), 0) > 0 {
                p.commit(&mut state, at(now), 1);
                times.push(now);
            }
            now += 500;
        }
        // Intervals 60 s, 60 s, 30 s, 30 s, 15 s, 15 s, 7.5 s, 7.5 s, then 6 s (the rate).
        assert_eq!(
            times,
            vec![0, 60_000, 120_000, 150_000, 180_000, 195_000, 210_000, 217_500, 225_000, 231_000]
        );
        assert_eq!(p.current_count(&state), Some(10));
        assert_eq!(p.current_interval(&state), Some(Duration::seconds(6)));
    }

    #[test]
    fn ramp_crossing_steps_within_one_burst() {
        let p = Pacing {
            ramp: Some(Ramp {
                start_count: 1,
                factor: 2.0,
                step: 1,
            }),
            ..paced(8, 8_000, 100_000)
        };
        let mut state = PaceState::default();
        p.commit(&mut state, at(0), 1);
        // Slots at 0 (8 s), 8 s (4 s), 12 s (2 s), 14 s (1 s), 15 s, 16 s, ...
        assert_eq!(p.available(&state, at(13_999), 0), 2);
        assert_eq!(p.available(&state, at(16_000), 0), 5);
        p.commit(&mut state, at(16_000), 5);
        assert_eq!(state.next_slot, Some(at(17_000)));
        assert_eq!(state.released, 6);
    }

    #[test]
    fn invalid_configurations_are_rejected() {
        assert_eq!(
            Rate::new(0, Duration::seconds(1)),
            Err(PacingError::ZeroCount)
        );
        assert_eq!(
            Rate::new(1, Duration::zero()),
            Err(PacingError::NonPositivePeriod)
        );
        assert_eq!(
            Rate::new(1, Duration::seconds(-1)),
            Err(PacingError::NonPositivePeriod)
        );
        assert_eq!(
            Rate::new(1, Duration::microseconds(1500)),
            Err(PacingError::SubMillisecondPeriod)
        );
        let ok = Ramp {
            start_count: 1,
            factor: 1.5,
            step: 10,
        };
        assert_eq!(ok.validate(), Ok(()));
        for factor in [1.0, 0.5, 5.01, f64::NAN, f64::INFINITY] {
            let bad = Ramp { factor, ..ok };
            assert!(matches!(bad.validate(), Err(PacingError::BadRampFactor(_))));
        }
        assert_eq!(
            Ramp {
                start_count: 0,
                ..ok
            }
            .validate(),
            Err(PacingError::ZeroRampStart)
        );
        assert_eq!(
            Ramp { step: 0, ..ok }.validate(),
            Err(PacingError::ZeroRampStep)
        );
        let ramp_only = Pacing {
            ramp: Some(ok),
            ..Pacing::default()
        };
        assert_eq!(ramp_only.validate(), Err(PacingError::RampWithoutRate));
        let zero_window = Pacing {
            max_in_progress: Some(0),
            ..Pacing::default()
        };
        assert_eq!(zero_window.validate(), Err(PacingError::ZeroWindow));
        let negative = Pacing {
            catch_up: Duration::milliseconds(-1),
            ..Pacing::default()
        };
        assert_eq!(negative.validate(), Err(PacingError::NegativeCatchUp));
        let sub_ms = Pacing {
            catch_up: Duration::microseconds(10),
            ..Pacing::default()
        };
        assert_eq!(sub_ms.validate(), Err(PacingError::SubMillisecondCatchUp));
        assert_eq!(Pacing::default().validate(), Ok(()));
        assert!(PacingError::BadRampFactor(7.0).to_string().contains("7"));
    }

    #[test]
    fn serde_uses_milliseconds_and_validates() {
        let r = rate(100, 60_000);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"count":100,"per_ms":60000}"#
        );
        assert_eq!(
            serde_json::from_str::<Rate>(r#"{"count":100,"per_ms":60000}"#).unwrap(),
            r
        );
        assert!(serde_json::from_str::<Rate>(r#"{"count":0,"per_ms":60000}"#).is_err());
        assert!(serde_json::from_str::<Rate>(r#"{"count":1,"per_ms":0}"#).is_err());

        let p = Pacing {
            max_in_progress: Some(50),
            ramp: Some(Ramp {
                start_count: 5,
                factor: 2.0,
                step: 100,
            }),
            ..paced(100, 60_000, 2500)
        };
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains(r#""catch_up_ms":2500"#), "{json}");
        assert_eq!(serde_json::from_str::<Pacing>(&json).unwrap(), p);
        assert_eq!(
            serde_json::from_str::<Pacing>("{}").unwrap(),
            Pacing::default()
        );
        assert!(serde_json::from_str::<Pacing>(r#"{"catch_up_ms":-1}"#).is_err());
        assert!(serde_json::from_str::<Pacing>(r#"{"max_in_progress":0}"#).is_err());
        assert!(serde_json::from_str::<Pacing>(
            r#"{"ramp":{"start_count":1,"factor":9.0,"step":1},"rate":{"count":1,"per_ms":1}}"#
        )
        .is_err());

        let mut s = PaceState::default();
        p.commit(&mut s, t0(), 3);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<PaceState>(&json).unwrap(), s);
    }

    fn ramp_strategy() -> impl Strategy<Value = Option<Ramp>> {
        prop::option::of((1u32..20, 1.01f64..=5.0, 1u32..10).prop_map(
            |(start_count, factor, step)| Ramp {
                start_count,
                factor,
                step,
            },
        ))
    }

    fn timestamp() -> impl Strategy<Value = Timestamp> {
        let min = DateTime::<Utc>::MIN_UTC.timestamp();
        let max = DateTime::<Utc>::MAX_UTC.timestamp();
        prop_oneof![
            min..=max,
            Just(min),
            Just(max),
            1_700_000_000i64..1_800_000_000
        ]
        .prop_map(|s| DateTime::<Utc>::from_timestamp(s, 0).unwrap_or_default())
    }

    proptest! {
        #[test]
        fn releases_in_any_period_stay_within_the_bound(
            count in 1u32..200,
            per_ms in 1i64..100_000,
            catch_up_ms in 0i64..5_000,
            ramp in ramp_strategy(),
            gaps in prop::collection::vec((0i64..200_000, 0u32..50), 1..150),
        ) {
            let p = Pacing { ramp, ..paced(count, per_ms, catch_up_ms) };
            let mut now = 0;
            let ticks: Vec<(i64, u32)> = gaps
                .iter()
                .map(|&(gap, want)| {
                    now += gap % (2 * per_ms);
                    (now, want)
                })
                .collect();
            let releases = simulate(&p, &ticks);
            let r = p.rate.unwrap();
            let catch_up_ns = i128::from(catch_up_ms) * NANOS_PER_MILLI;
            for (i, &(start, _, _)) in releases.iter().enumerate() {
                let in_window: Vec<_> =
                    releases[i..].iter().take_while(|x| x.0 < start + per_ms).collect();
                let released: u64 = in_window.iter().map(|x| u64::from(x.1)).sum();
                let total_at_end = in_window.last().map_or(0, |x| x.2);
                let count_end = p.current_count(&PaceState { next_slot: None, released: total_at_end }).unwrap();
                if p.ramp.is_none() {
                    prop_assert_eq!(count_end, count);
                }
                let allowance = ceil_div(catch_up_ns, r.interval_nanos(count_end));
                let bound = i128::from(count_end) + allowance;
                prop_assert!(
                    i128::from(released) <= bound,
                    "{} released in [{}, {}) ms; bound {}", released, start, start + per_ms, bound
                );
            }
        }

        #[test]
        fn long_run_releases_match_the_pace(
            count in 1u32..100,
            per_ms in 10i64..100_000,
            catch_up_ms in 1i64..5_000,
            gaps in prop::collection::vec(1i64..=5_000, 500),
        ) {
            let p = paced(count, per_ms, catch_up_ms);
            let mut now = 0;
            let mut ticks = vec![(0, u32::MAX)];
            for g in gaps {
                // Ticks at least as frequent as the catch-up allowance.
                now += 1 + (g - 1) % catch_up_ms;
                ticks.push((now, u32::MAX));
            }
            let released: u64 = simulate(&p, &ticks).iter().map(|r| u64::from(r.1)).sum();
            let interval = p.rate.unwrap().interval_nanos(count);
            let horizon = i128::from(now) * NANOS_PER_MILLI;
            let ideal = horizon / interval;
            let allowance = 1 + ceil_div(i128::from(catch_up_ms) * NANOS_PER_MILLI, interval);
            prop_assert!((i128::from(released) - ideal).abs() <= allowance,
                "released {} over {} ms, ideal {}", released, now, ideal);
        }

        #[test]
        fn available_never_exceeds_the_window(
            max in 1u32..1000,
            in_progress in any::<u32>(),
            with_rate in any::<bool>(),
            released in any::<u64>(),
            next_ms in prop::option::of(-100_000i64..100_000),
            now_ms in -100_000i64..100_000,
        ) {
            let p = Pacing {
                max_in_progress: Some(max),
                rate: with_rate.then(|| rate(1000, 1000)),
                ..Pacing::default()
            };
            let state = PaceState { next_slot: next_ms.map(at), released };
            prop_assert!(p.available(&state, at(now_ms), in_progress) <= max.saturating_sub(in_progress));
        }

        #[test]
        fn extreme_values_never_panic(
            count in prop_oneof![Just(u32::MAX), 1u32..=u32::MAX],
            per_ms in prop_oneof![Just(1i64), Just(i64::MAX), 1i64..=i64::MAX],
            catch_up_ms in prop_oneof![Just(0i64), Just(i64::MAX), 0i64..=i64::MAX],
            max_in_progress in prop::option::of(any::<u32>()),
            ramp in prop::option::of((any::<u32>(), 1.0f64..=5.0, any::<u32>()).prop_map(
                |(start_count, factor, step)| Ramp { start_count, factor, step })),
            next in prop::option::of(timestamp()),
            released in any::<u64>(),
            now in timestamp(),
            in_progress in any::<u32>(),
            n in any::<u32>(),
        ) {
            let Ok(r) = Rate::new(count, Duration::try_milliseconds(per_ms).unwrap_or(Duration::MAX))
            else {
                return Ok(());
            };
            let _ = r.interval();
            let p = Pacing {
                rate: Some(r),
                max_in_progress,
                ramp,
                catch_up: Duration::try_milliseconds(catch_up_ms).unwrap_or(Duration::MAX),
            };
            let _ = p.validate();
            let mut state = PaceState { next_slot: next, released };
            let a = p.available(&state, now, in_progress);
            prop_assert!(a <= max_in_progress.map_or(u32::MAX, |m| m.saturating_sub(in_progress)));
            let _ = p.next_release(&state, now);
            let _ = p.current_interval(&state);
            p.commit(&mut state, now, a);
            p.commit(&mut state, now, n);
            let _ = p.available(&state, now, in_progress);
            let _ = serde_json::to_string(&p);
        }
    }
}
