//! Maintenance windows: devices of a campaign are notified only inside one.
//!
//! A window opens at every occurrence of a cron expression, read in the window's time zone,
//! and stays open for its duration. Two forms are accepted:
//!
//! - a **classic five-field** expression (`min hour day-of-month month day-of-week`), read as
//!   classic cron reads it, at second 0: weekday numbers run 0-7 with **0 and 7 both Sunday**,
//!   so `1-5` is Monday to Friday (`0 2 * * 1-5`: 02:00 on working days); names (`Mon-Fri`)
//!   work too;
//! - six or seven fields with seconds first (`sec min hour day-of-month month day-of-week
//!   [year]`), as the `cron` crate reads them: there weekday numbers run 1-7 from **Sunday**
//!   (`1` is Sunday); prefer names (`0 0 22 * * Mon-Fri`) to avoid the confusion.
//!
//! Local times follow the time zone's rules, the same way the scheduler's do
//! ([`crate::schedule`]): a window whose opening time does not exist on the night clocks jump
//! forward (02:30 when they jump from 02:00 to 03:00) **opens at the end of the gap** (03:00,
//! the first instant after it), and one whose opening time happens twice on the night they
//! fall back opens at both, so it stays open from the first one until one duration after the
//! second.

use crate::clock::Timestamp;
use chrono::offset::LocalResult;
use chrono::{Duration, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
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
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let normalized = if fields.len() == 5 {
            let dow = classic_weekdays(fields[4]).map_err(|message| WindowError::InvalidCron {
                expression: cron.to_string(),
                message,
            })?;
            format!(
                "0 {} {} {} {} {dow}",
                fields[0], fields[1], fields[2], fields[3]
            )
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

    /// The earliest and latest instants of the local time `naive` (equal unless the clocks
    /// fall back over it); a local time in a spring-forward gap maps to the end of the gap.
    fn instants(&self, naive: NaiveDateTime) -> Option<(Timestamp, Timestamp)> {
        match self.time_zone.from_local_datetime(&naive) {
            LocalResult::Single(t) => Some((t.with_timezone(&Utc), t.with_timezone(&Utc))),
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
                Some((a.min(b), a.max(b)))
            }
            LocalResult::None => {
                // The first whole minute after the gap is where the clocks jumped to.
                let mut probe = naive
                    .with_second(0)?
                    .with_nanosecond(0)?
                    .checked_add_signed(Duration::minutes(1))?;
                for _ in 0..(48 * 60) {
                    if let Some(t) = self.time_zone.from_local_datetime(&probe).earliest() {
                        let t = t.with_timezone(&Utc);
                        return Some((t, t));
                    }
                    probe = probe.checked_add_signed(Duration::minutes(1))?;
                }
                None
            }
        }
    }

    /// How far (in local time) around `at` openings must be looked at: none when the offset
    /// does not change within a few hours (local time maps one to one), else a margin that
    /// covers the transition.
    fn margin(&self, at: Timestamp) -> Duration {
        let offset = |t: Timestamp| {
            self.time_zone
                .offset_from_utc_datetime(&t.naive_utc())
                .fix()
        };
        let around = [at - TRANSITION_MARGIN, at + TRANSITION_MARGIN];
        if around.iter().all(|t| offset(*t) == offset(at)) {
            Duration::zero()
        } else {
            TRANSITION_MARGIN
        }
    }

    /// The latest opening at or before `at`.
    fn last_opening(&self, at: Timestamp) -> Option<Timestamp> {
        let local = self
            .time_zone
            .from_utc_datetime(&at.naive_utc())
            .naive_local();
        // Occurrences in local time, read as if local time were UTC; `after(t)` walks backward
        // from t, exclusive: start one second later to include t.
        let from = Utc.from_utc_datetime(&local) + self.margin(at) + Duration::seconds(1);
        let mut best: Option<Timestamp> = None;
        for occurrence in self.schedule.after(&from).rev().take(MAX_CANDIDATES) {
            let (early, late) = self.instants(occurrence.naive_utc())?;
            if best.is_some_and(|b| late < b) {
                break;
            }
            for t in [early, late] {
                if t <= at && best.is_none_or(|b| t > b) {
                    best = Some(t);
                }
            }
        }
        best
    }

    /// The first opening strictly after `at`.
    fn next_opening(&self, at: Timestamp) -> Option<Timestamp> {
        let local = self
            .time_zone
            .from_utc_datetime(&at.naive_utc())
            .naive_local();
        let from = Utc.from_utc_datetime(&local) - self.margin(at);
        let mut best: Option<Timestamp> = None;
        for occurrence in self.schedule.after(&from).take(MAX_CANDIDATES) {
            let (early, late) = self.instants(occurrence.naive_utc())?;
            if best.is_some_and(|b| early > b) {
                break;
            }
            for t in [early, late] {
                if t > at && best.is_none_or(|b| t < b) {
                    best = Some(t);
                }
            }
        }
        best
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

/// Time zone offsets change by at most this much at once (and not twice within it).
const TRANSITION_MARGIN: Duration = Duration::hours(3);

/// The most occurrences looked at around one instant (a cron firing every second around a
/// transition needs 2 x 3 h of them).
const MAX_CANDIDATES: usize = 25_000;

/// A classic cron day-of-week field (0-7, 0 and 7 Sunday) in the `cron` crate's terms:
/// numbers become day names; names, `*` and `?` stay.
fn classic_weekdays(field: &str) -> Result<String, String> {
    const NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let number = |s: &str| -> Result<Option<u32>, String> {
        if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
            match s.parse::<u32>() {
                Ok(n) if n <= 7 => Ok(Some(n)),
                _ => Err(format!("day of week {s} is not in 0-7")),
            }
        } else {
            Ok(None)
        }
    };
    let mut out: Vec<String> = Vec::new();
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((b, s)) => (b, Some(s)),
            None => (item, None),
        };
        let range = match base.split_once('-') {
            Some((a, b)) => match (number(a)?, number(b)?) {
                (Some(a), Some(b)) => Some((a, b)),
                (None, None) => None,
                _ => return Err(format!("day-of-week range {base} mixes numbers and names")),
            },
            None if base == "*" => step.map(|_| (0, 6)),
            None => number(base)?.map(|n| (n, if step.is_some() { 7 } else { n })),
        };
        let Some((from, to)) = range else {
            out.push(item.to_string());
            continue;
        };
        if from > to {
            return Err(format!("day-of-week range {base} runs backward"));
        }
        let step = match step {
            None => 1,
            Some(s) => match s.parse::<u32>() {
                Ok(n) if n > 0 => n,
                _ => return Err(format!("day-of-week step {s:?} is not a positive number")),
            },
        };
        for day in (from..=to).step_by(step as usize) {
            let name = NAMES[(day % 7) as usize].to_string();
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    Ok(out.join(","))
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
    fn classic_five_field_weekdays_are_classic() {
        // 2024-06-09 is a Sunday, 06-10 a Monday, 06-14 a Friday, 06-15 a Saturday.
        let workdays = MaintenanceWindow::new("0 22 * * 1-5", Duration::hours(1), "UTC").unwrap();
        assert!(workdays.contains(utc(2024, 6, 10, 22, 30)), "Monday");
        assert!(workdays.contains(utc(2024, 6, 14, 22, 30)), "Friday");
        assert!(!workdays.contains(utc(2024, 6, 15, 22, 30)), "Saturday");
        assert!(!workdays.contains(utc(2024, 6, 9, 22, 30)), "Sunday");
        for sunday in ["0 3 * * 0", "0 3 * * 7", "0 3 * * SUN", "0 3 * * 6-7"] {
            let w = MaintenanceWindow::new(sunday, Duration::hours(1), "UTC").unwrap();
            assert!(w.contains(utc(2024, 6, 9, 3, 30)), "{sunday}");
            assert!(!w.contains(utc(2024, 6, 10, 3, 30)), "{sunday}");
        }
        let odd = MaintenanceWindow::new("0 3 * * */2", Duration::hours(1), "UTC").unwrap();
        assert!(odd.contains(utc(2024, 6, 9, 3, 30)), "Sunday is day 0");
        assert!(!odd.contains(utc(2024, 6, 10, 3, 30)), "Monday is day 1");
        assert!(matches!(
            MaintenanceWindow::new("0 3 * * 8", Duration::hours(1), "UTC"),
            Err(WindowError::InvalidCron { .. })
        ));
        assert!(matches!(
            MaintenanceWindow::new("0 3 * * 5-1", Duration::hours(1), "UTC"),
            Err(WindowError::InvalidCron { .. })
        ));
    }

    #[test]
    fn an_opening_in_the_spring_forward_gap_opens_at_the_end_of_the_gap() {
        // Berlin, 2024-03-31: clocks jump from 02:00 to 03:00 (01:00 UTC).
        let w = MaintenanceWindow::new("30 2 * * *", Duration::hours(1), "Europe/Berlin").unwrap();
        let (start, end) = w.current_or_next(utc(2024, 3, 30, 23, 0)).unwrap();
        assert_eq!(
            start,
            utc(2024, 3, 31, 1, 0),
            "03:00 CEST, the end of the gap"
        );
        assert_eq!(end, utc(2024, 3, 31, 2, 0));
        assert!(w.contains(utc(2024, 3, 31, 1, 30)));
        // New York, 2024-03-10: 02:00 -> 03:00 EDT (07:00 UTC).
        let ny = MaintenanceWindow::new("15 2 * * *", Duration::minutes(30), "America/New_York")
            .unwrap();
        assert_eq!(
            ny.next_open(utc(2024, 3, 10, 5, 0)),
            Some(utc(2024, 3, 10, 7, 0))
        );
        // The next night is back to normal: 02:15 EDT = 06:15 UTC.
        assert_eq!(
            ny.next_open(utc(2024, 3, 10, 8, 0)),
            Some(utc(2024, 3, 11, 6, 15))
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
