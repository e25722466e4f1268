//! Maintenance windows: devices of a campaign are notified only inside one.
//!
//! A window opens at every occurrence of a cron expression, read in the window's time zone,
//! and stays open for its duration. The expression has six or seven fields with seconds
//! first (`sec min hour day-of-month month day-of-week [year]`, as the `cron` crate reads
//! them); a classic five-field expression (`min hour dom month dow`) is accepted too and
//! means second 0. Examples: `0 2 * * *` (02:00 every day), `0 0 22 * * Mon-Fri`.
//!
//! Local times follow the time zone's rules: a window at 02:30 on the night clocks jump from
//! 02:00 to 03:00 does not open that night (02:30 does not exist), and one at 02:30 on the
//! night they fall back opens at both 02:30s, so it stays open from the first one until one
//! duration after the second.

use crate::clock::Timestamp;
use chrono::{Duration, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::str::FromStr;

/// The longest window: 31 days.
pub const MAX_WINDOW: Duration = Duration::days(31);

/// A recurring maintenance window.
#[derive(Clone, Debug)]
pub struct MaintenanceWindow {
    cron: String,
    schedule: cron::Schedule,
    duration: Duration,
    time_zone: Tz,
}

impl PartialEq for MaintenanceWindow {
    fn eq(&self, other: &Self) -> bool {
        self.cron == other.cron
            && self.duration == other.duration
            && self.time_zone == other.time_zone
    }
}

/// A window definition that is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WindowError {
    /// The cron expression does not parse.
    #[error("invalid cron expression {expression:?}: {message}")]
    InvalidCron {
        /// The expression.
        expression: String,
        /// The parser's message.
        message: String,
    },
    /// The time zone is not an IANA name.
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    /// The duration is zero, negative or longer than [`MAX_WINDOW`].
    #[error("a window lasts more than 0 and at most 31 days, not {millis} ms")]
    InvalidDuration {
        /// The duration given, in milliseconds.
        millis: i64,
    },
}

impl MaintenanceWindow {
    /// A window opening at every occurrence of `cron` in time zone `time_zone` (an IANA name
    /// such as `Europe/Berlin`) and lasting `duration`.
    pub fn new(cron: &str, duration: Duration, time_zone: &str) -> Result<Self, WindowError> {
        let tz = Tz::from_str(time_zone.trim())
            .map_err(|_| WindowError::UnknownTimeZone(time_zone.to_string()))?;
        if duration <= Duration::zero() || duration > MAX_WINDOW {
            return Err(WindowError::InvalidDuration {
                millis: duration.num_milliseconds(),
            });
        }
        let expression = cron.trim();
        let fields = expression.split_whitespace().count();
        let normalized = if fields == 5 {
            format!("0 {expression}")
        } else {
            expression.to_string()
        };
        let schedule =
            cron::Schedule::from_str(&normalized).map_err(|e| WindowError::InvalidCron {
                expression: cron.to_string(),
                message: e.to_string(),
            })?;
        Ok(Self {
            cron: expression.to_string(),
            schedule,
            duration,
            time_zone: tz,
        })
    }

    /// The cron expression as given (trimmed).
    pub fn cron(&self) -> &str {
        &self.cron
    }

    /// How long the window stays open.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The time zone.
    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// The latest opening at or before `at`.
    fn last_opening(&self, at: Timestamp) -> Option<Timestamp> {
        let local = self.time_zone.from_utc_datetime(&at.naive_utc());
        // `after(t)` walks backward from t, exclusive: start one second later to include t.
        let from = local.checked_add_signed(Duration::seconds(1))?;
        self.schedule
            .after(&from)
            .next_back()
            .map(|t| t.with_timezone(&chrono::Utc))
    }

    /// The first opening strictly after `at`.
    fn next_opening(&self, at: Timestamp) -> Option<Timestamp> {
        let local = self.time_zone.from_utc_datetime(&at.naive_utc());
        self.schedule
            .after(&local)
            .next()
            .map(|t| t.with_timezone(&chrono::Utc))
    }

    /// Whether the window is open at `at` (opening inclusive, closing exclusive).
    pub fn contains(&self, at: Timestamp) -> bool {
        self.current_or_next(at)
            .is_some_and(|(start, end)| start <= at && at < end)
    }

    /// The window open at `at`, or else the next one, as (opening, closing).
    pub fn current_or_next(&self, at: Timestamp) -> Option<(Timestamp, Timestamp)> {
        if let Some(start) = self.last_opening(at) {
            let end = start.checked_add_signed(self.duration)?;
            if at < end {
                return Some((start, end));
            }
        }
        let start = self.next_opening(at)?;
        Some((start, start.checked_add_signed(self.duration)?))
    }

    /// When the window is next open: `at` itself when it is open now.
    pub fn next_open(&self, at: Timestamp) -> Option<Timestamp> {
        self.current_or_next(at).map(|(start, _)| start.max(at))
    }
}

/// The stored form of a window.
#[derive(Serialize, Deserialize)]
struct WindowRepr {
    cron: String,
    duration_ms: i64,
    time_zone: String,
}

impl Serialize for MaintenanceWindow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WindowRepr {
            cron: self.cron.clone(),
            duration_ms: self.duration.num_milliseconds(),
            time_zone: self.time_zone.name().to_string(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for MaintenanceWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = WindowRepr::deserialize(d)?;
        let duration = Duration::try_milliseconds(r.duration_ms)
            .ok_or_else(|| serde::de::Error::custom("window duration out of range"))?;
        MaintenanceWindow::new(&r.cron, duration, &r.time_zone).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, Utc};
    use proptest::prelude::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> Timestamp {
        let naive = NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|x| x.and_hms_opt(h, min, 0))
            .expect("valid date");
        Utc.from_utc_datetime(&naive)
    }

    fn nightly() -> MaintenanceWindow {
        MaintenanceWindow::new("0 2 * * *", Duration::hours(2), "Europe/Berlin").unwrap()
    }

    #[test]
    fn a_nightly_window_follows_local_time_across_dst() {
        let w = nightly();
        // Winter: Berlin is UTC+1, the window is 01:00-03:00 UTC.
        assert!(!w.contains(utc(2024, 1, 15, 0, 59)));
        assert!(w.contains(utc(2024, 1, 15, 1, 0)), "opening is inclusive");
        assert!(w.contains(utc(2024, 1, 15, 2, 59)));
        assert!(!w.contains(utc(2024, 1, 15, 3, 0)), "closing is exclusive");
        // Summer: UTC+2, the window is 00:00-02:00 UTC.
        assert!(w.contains(utc(2024, 7, 15, 0, 0)));
        assert!(!w.contains(utc(2024, 7, 15, 2, 0)));
        // 2024-03-31: 02:00 local does not exist (clocks jump to 03:00).
        let spring = w.current_or_next(utc(2024, 3, 30, 23, 0)).unwrap();
        assert!(spring.0 >= utc(2024, 3, 31, 0, 0), "{spring:?}");
        // 2024-10-27: 02:00 local happens twice (00:00 and 01:00 UTC); the window opens at
        // both and so stays open from 00:00 to 03:00 UTC.
        let (start, _) = w.current_or_next(utc(2024, 10, 26, 22, 0)).unwrap();
        assert_eq!(start, utc(2024, 10, 27, 0, 0));
        assert!(w.contains(utc(2024, 10, 27, 1, 59)));
        assert!(w.contains(utc(2024, 10, 27, 2, 30)));
        assert!(!w.contains(utc(2024, 10, 27, 3, 0)));
        let next = w.current_or_next(utc(2024, 10, 27, 3, 0)).unwrap();
        assert_eq!(
            next.0,
            utc(2024, 10, 28, 1, 0),
            "the next night, in winter time"
        );
    }

    #[test]
    fn weekday_windows_skip_weekends() {
        let w = MaintenanceWindow::new("0 0 22 * * Mon-Fri", Duration::hours(1), "UTC").unwrap();
        // 2024-06-07 is a Friday, 06-08 a Saturday.
        assert!(w.contains(utc(2024, 6, 7, 22, 30)));
        assert!(!w.contains(utc(2024, 6, 8, 22, 30)));
        assert_eq!(
            w.next_open(utc(2024, 6, 8, 12, 0)),
            Some(utc(2024, 6, 10, 22, 0))
        );
        assert_eq!(
            w.next_open(utc(2024, 6, 7, 22, 10)),
            Some(utc(2024, 6, 7, 22, 10))
        );
    }

    #[test]
    fn bad_definitions_are_typed_errors() {
        assert!(matches!(
            MaintenanceWindow::new("every night", Duration::hours(1), "UTC"),
            Err(WindowError::InvalidCron { .. })
        ));
        assert!(matches!(
            MaintenanceWindow::new("0 2 * * *", Duration::hours(1), "Mars/Olympus"),
            Err(WindowError::UnknownTimeZone(_))
        ));
        for d in [Duration::zero(), Duration::seconds(-5), Duration::days(32)] {
            assert!(matches!(
                MaintenanceWindow::new("0 2 * * *", d, "UTC"),
                Err(WindowError::InvalidDuration { .. })
            ));
        }
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let w = nightly();
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["time_zone"], "Europe/Berlin");
        assert_eq!(json["duration_ms"], 7_200_000);
        let back: MaintenanceWindow = serde_json::from_value(json).unwrap();
        assert_eq!(back, w);
        let bad = serde_json::json!({"cron": "0 2 * * *", "duration_ms": 0, "time_zone": "UTC"});
        assert!(serde_json::from_value::<MaintenanceWindow>(bad).is_err());
    }

    proptest! {
        #[test]
        fn contains_agrees_with_current_or_next(
            secs in 0i64..(4 * 365 * 86_400),
            zone in proptest::sample::select(vec!["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]),
            hour in 0u32..24,
            minutes in 1i64..600,
        ) {
            let w = MaintenanceWindow::new(&format!("0 {hour} * * *"), Duration::minutes(minutes), zone).unwrap();
            let t = utc(2023, 1, 1, 0, 0) + Duration::seconds(secs);
            let (start, end) = w.current_or_next(t).unwrap();
            prop_assert!(start < end);
            prop_assert_eq!(w.contains(t), start <= t && t < end);
            let open = w.next_open(t).unwrap();
            prop_assert!(open >= t);
            prop_assert!(w.contains(open));
        }
    }
}
