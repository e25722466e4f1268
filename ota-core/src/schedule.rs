//! Recurrences of scheduled events (once, daily, weekly on chosen days, every N seconds,
//! minutes or hours, until an end time) in a time zone.
//!
//! Daily and weekly occurrences happen at the start's local wall-clock time on each (chosen)
//! day: when that time does not exist (clocks jump forward) the occurrence is the first
//! instant after the gap; when it exists twice (clocks fall back) the occurrence is the
//! earlier instant, once. `Every` repeats at a fixed absolute interval from the first
//! occurrence, whatever the clocks do.
//!
//! Catch-up: [`Recurrence::due`] returns only the latest occurrence missed since the last
//! run, so events missed while the process was down run once, not once per missed
//! occurrence.

use crate::clock::Timestamp;
use chrono::{Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// How an event repeats.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Repeat {
    /// Only at the start.
    Once,
    /// Every day at the start's local time.
    Daily,
    /// On the chosen days of the week at the start's local time.
    Weekly {
        /// The days (at least one; repeats are harmless).
        days: Vec<Weekday>,
    },
    /// Every `interval` from the start (at least one second).
    Every {
        /// The interval.
        #[serde(with = "crate::duration_serde::millis")]
        interval: Duration,
    },
}

/// A recurrence definition that is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The time zone is not an IANA name.
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    /// Weekly without days.
    #[error("a weekly repeat needs at least one day")]
    NoDays,
    /// Interval under one second.
    #[error("the repeat interval must be at least one second")]
    IntervalTooShort,
    /// `until` before the first occurrence.
    #[error("the end time is before the first occurrence")]
    UntilBeforeStart,
}

/// When a scheduled event happens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    /// The first occurrence, as a local date and time in `time_zone`.
    pub start: NaiveDateTime,
    /// The time zone (IANA name when serialized).
    #[serde(with = "tz_name")]
    pub time_zone: Tz,
    /// How it repeats.
    pub repeat: Repeat,
    /// No occurrence after this instant.
    pub until: Option<Timestamp>,
}

mod tz_name {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::str::FromStr;

    pub fn serialize<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let name = String::deserialize(d)?;
        Tz::from_str(&name)
            .map_err(|_| serde::de::Error::custom(format!("unknown time zone {name:?}")))
    }
}

/// Resolves a local date-time: the earlier instant when ambiguous, the first instant after
/// the gap when it does not exist.
fn resolve(tz: Tz, local: NaiveDateTime) -> Option<Timestamp> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        LocalResult::None => {
            // Walk forward minute by minute to the end of the gap (gaps are at most a day).
            let mut probe = local;
            for _ in 0..(48 * 60) {
                probe = probe.checked_add_signed(Duration::minutes(1))?;
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    // The first valid instant after the gap is where the clocks jumped to:
                    // truncate to the minute the gap ended.
                    return Some(t.with_timezone(&Utc));
                }
            }
            None
        }
    }
}

impl Recurrence {
    /// A validated recurrence; `time_zone` is an IANA name such as `Europe/Berlin`.
    pub fn new(
        start: NaiveDateTime,
        time_zone: &str,
        repeat: Repeat,
        until: Option<Timestamp>,
    ) -> Result<Self, ScheduleError> {
        let tz = Tz::from_str(time_zone.trim())
            .map_err(|_| ScheduleError::UnknownTimeZone(time_zone.to_string()))?;
        let r = Self {
            start,
            time_zone: tz,
            repeat,
            until,
        };
        r.validate()?;
        Ok(r)
    }

    /// Checks the definition.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        match &self.repeat {
            Repeat::Weekly { days } if days.is_empty() => return Err(ScheduleError::NoDays),
            Repeat::Every { interval } if *interval < Duration::seconds(1) => {
                return Err(ScheduleError::IntervalTooShort)
            }
            _ => {}
        }
        if let (Some(until), Some(first)) = (self.until, resolve(self.time_zone, self.start)) {
            if until < first {
                return Err(ScheduleError::UntilBeforeStart);
            }
        }
        Ok(())
    }

    fn within_until(&self, t: Timestamp) -> Option<Timestamp> {
        match self.until {
            Some(u) if t > u => None,
            _ => Some(t),
        }
    }

    /// The occurrence on local date `date` (daily and weekly), if that day is chosen.
    fn on_date(&self, date: NaiveDate) -> Option<Timestamp> {
        if date < self.start.date() {
            return None;
        }
        if let Repeat::Weekly { days } = &self.repeat {
            if !days.contains(&date.weekday()) {
                return None;
            }
        }
        resolve(self.time_zone, date.and_time(self.start.time()))
    }

    /// The first occurrence.
    pub fn first(&self) -> Option<Timestamp> {
        match &self.repeat {
            Repeat::Weekly { .. } => {
                self.next_after(resolve(self.time_zone, self.start)? - Duration::seconds(1))
            }
            _ => resolve(self.time_zone, self.start).and_then(|t| self.within_until(t)),
        }
    }

    /// The first occurrence strictly after `after`, not past `until`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = resolve(self.time_zone, self.start)?;
        let next = match &self.repeat {
            Repeat::Once => (start > after).then_some(start)?,
            Repeat::Every { interval } => {
                if after < start {
                    start
                } else {
                    let step = interval.num_milliseconds().max(1000);
                    let k = (after - start).num_milliseconds() / step + 1;
                    start.checked_add_signed(Duration::milliseconds(step.checked_mul(k)?))?
                }
            }
            Repeat::Daily | Repeat::Weekly { .. } => {
                let local_date = after.with_timezone(&self.time_zone).date_naive();
                let from = local_date.pred_opt()?.max(self.start.date());
                let mut date = from;
                let mut found = None;
                for _ in 0..16 {
                    if let Some(t) = self.on_date(date) {
                        if t > after {
                            found = Some(t);
                            break;
                        }
                    }
                    date = date.succ_opt()?;
                }
                found?
            }
        };
        self.within_until(next)
    }

    /// The latest occurrence at or before `at`.
    pub fn latest_at_or_before(&self, at: Timestamp) -> Option<Timestamp> {
        let start = resolve(self.time_zone, self.start)?;
        let at = match self.until {
            Some(u) if u < at => u,
            _ => at,
        };
        if at < start {
            return None;
        }
        match &self.repeat {
            Repeat::Once => Some(start),
            Repeat::Every { interval } => {
                let step = interval.num_milliseconds().max(1000);
                let k = (at - start).num_milliseconds() / step;
                start.checked_add_signed(Duration::milliseconds(step.checked_mul(k)?))
            }
            Repeat::Daily | Repeat::Weekly { .. } => {
                let mut date = at.with_timezone(&self.time_zone).date_naive().succ_opt()?;
                for _ in 0..16 {
                    if let Some(t) = self.on_date(date) {
                        if t <= at {
                            return Some(t);
                        }
                    }
                    if date <= self.start.date() {
                        return None;
                    }
                    date = date.pred_opt()?;
                }
                None
            }
        }
    }

    /// Occurrences from `from` (inclusive) to `to` (exclusive), at most `limit`.
    pub fn occurrences_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Vec<Timestamp> {
        let mut out = Vec::new();
        let mut next = from
            .checked_sub_signed(Duration::milliseconds(1))
            .and_then(|t| self.next_after(t));
        while let Some(t) = next {
            if t >= to || out.len() >= limit {
                break;
            }
            out.push(t);
            next = self.next_after(t);
        }
        out
    }

    /// The occurrence to run now, if any: the latest one at or before `now` that is after
    /// `last_run` (any, when it never ran). Missed occurrences collapse into this one.
    pub fn due(&self, last_run: Option<Timestamp>, now: Timestamp) -> Option<Timestamp> {
        let latest = self.latest_at_or_before(now)?;
        match last_run {
            Some(l) if latest <= l => None,
            _ => Some(latest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> Timestamp {
        Utc.from_utc_datetime(&local(y, m, d, h, min))
    }

    #[test]
    fn daily_at_half_past_two_across_dst_in_berlin_and_new_york() {
        let berlin = Recurrence::new(
            local(2024, 3, 29, 2, 30),
            "Europe/Berlin",
            Repeat::Daily,
            None,
        )
        .unwrap();
        let got = berlin.occurrences_between(utc(2024, 3, 29, 0, 0), utc(2024, 4, 2, 0, 0), 10);
        assert_eq!(
            got,
            vec![
                utc(2024, 3, 29, 1, 30),
                utc(2024, 3, 30, 1, 30),
                utc(2024, 3, 31, 1, 0), // 02:30 does not exist: 03:00 CEST
                utc(2024, 4, 1, 0, 30),
            ]
        );
        let autumn = Recurrence::new(
            local(2024, 10, 26, 2, 30),
            "Europe/Berlin",
            Repeat::Daily,
            None,
        )
        .unwrap();
        let got = autumn.occurrences_between(utc(2024, 10, 26, 0, 0), utc(2024, 10, 29, 0, 0), 10);
        assert_eq!(
            got,
            vec![
                utc(2024, 10, 26, 0, 30),
                utc(2024, 10, 27, 0, 30),
                utc(2024, 10, 28, 1, 30)
            ],
            "once on the fall-back night"
        );

        let ny = Recurrence::new(
            local(2024, 3, 9, 2, 30),
            "America/New_York",
            Repeat::Daily,
            None,
        )
        .unwrap();
        let got = ny.occurrences_between(utc(2024, 3, 9, 0, 0), utc(2024, 3, 12, 0, 0), 10);
        assert_eq!(
            got,
            vec![
                utc(2024, 3, 9, 7, 30),
                utc(2024, 3, 10, 7, 0),
                utc(2024, 3, 11, 6, 30)
            ]
        );
        let ny_fall = Recurrence::new(
            local(2024, 11, 2, 1, 30),
            "America/New_York",
            Repeat::Daily,
            None,
        )
        .unwrap();
        let got = ny_fall.occurrences_between(utc(2024, 11, 2, 0, 0), utc(2024, 11, 5, 0, 0), 10);
        assert_eq!(
            got,
            vec![
                utc(2024, 11, 2, 5, 30),
                utc(2024, 11, 3, 5, 30),
                utc(2024, 11, 4, 6, 30)
            ]
        );
    }

    #[test]
    fn weekly_every_and_until() {
        let days: Vec<Weekday> = [Weekday::Mon, Weekday::Wed, Weekday::Fri]
            .into_iter()
            .collect();
        // 2024-06-03 is a Monday.
        let weekly = Recurrence::new(
            local(2024, 6, 3, 9, 0),
            "UTC",
            Repeat::Weekly { days },
            None,
        )
        .unwrap();
        let got = weekly.occurrences_between(utc(2024, 6, 3, 0, 0), utc(2024, 6, 10, 0, 0), 10);
        assert_eq!(
            got,
            vec![
                utc(2024, 6, 3, 9, 0),
                utc(2024, 6, 5, 9, 0),
                utc(2024, 6, 7, 9, 0)
            ]
        );

        let every = Recurrence::new(
            local(2024, 6, 3, 0, 0),
            "Asia/Kolkata",
            Repeat::Every {
                interval: Duration::minutes(90),
            },
            Some(utc(2024, 6, 3, 0, 0)),
        )
        .unwrap();
        let got = every.occurrences_between(utc(2024, 6, 1, 0, 0), utc(2024, 6, 4, 0, 0), 10);
        // Local midnight in Kolkata is 18:30 UTC the day before; until 00:00 UTC allows 4.
        assert_eq!(
            got,
            vec![
                utc(2024, 6, 2, 18, 30),
                utc(2024, 6, 2, 20, 0),
                utc(2024, 6, 2, 21, 30),
                utc(2024, 6, 2, 23, 0)
            ]
        );
        let once = Recurrence::new(local(2024, 6, 3, 9, 0), "UTC", Repeat::Once, None).unwrap();
        assert_eq!(once.next_after(utc(2024, 6, 3, 9, 0)), None);
        assert_eq!(once.first(), Some(utc(2024, 6, 3, 9, 0)));
    }

    #[test]
    fn missed_occurrences_run_once_on_catch_up() {
        let daily = Recurrence::new(local(2024, 6, 1, 3, 0), "UTC", Repeat::Daily, None).unwrap();
        let last = Some(utc(2024, 6, 1, 3, 0));
        // Down from June 1 to June 5 noon: one run, for the latest missed occurrence.
        assert_eq!(
            daily.due(last, utc(2024, 6, 5, 12, 0)),
            Some(utc(2024, 6, 5, 3, 0))
        );
        assert_eq!(
            daily.due(Some(utc(2024, 6, 5, 3, 0)), utc(2024, 6, 5, 12, 0)),
            None
        );
        assert_eq!(daily.due(None, utc(2024, 5, 31, 0, 0)), None);
    }

    #[test]
    fn bad_definitions_are_typed_errors() {
        let start = local(2024, 6, 1, 0, 0);
        assert!(matches!(
            Recurrence::new(start, "Nowhere/City", Repeat::Daily, None),
            Err(ScheduleError::UnknownTimeZone(_))
        ));
        assert_eq!(
            Recurrence::new(start, "UTC", Repeat::Weekly { days: Vec::new() }, None),
            Err(ScheduleError::NoDays)
        );
        assert_eq!(
            Recurrence::new(
                start,
                "UTC",
                Repeat::Every {
                    interval: Duration::milliseconds(500)
                },
                None
            ),
            Err(ScheduleError::IntervalTooShort)
        );
        assert_eq!(
            Recurrence::new(start, "UTC", Repeat::Daily, Some(utc(2024, 5, 1, 0, 0))),
            Err(ScheduleError::UntilBeforeStart)
        );
        let json = serde_json::to_value(
            Recurrence::new(start, "Europe/Berlin", Repeat::Daily, None).unwrap(),
        )
        .unwrap();
        assert_eq!(json["time_zone"], "Europe/Berlin");
        assert!(serde_json::from_value::<Recurrence>(serde_json::json!({"start": "2024-06-01T00:00:00", "time_zone": "X/Y", "repeat": {"type": "daily"}, "until": null})).is_err());
    }

    fn any_zone() -> impl Strategy<Value = &'static str> {
        proptest::sample::select(vec![
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Australia/Sydney",
            "Asia/Kolkata",
            "America/Sao_Paulo",
        ])
    }

    fn any_repeat() -> impl Strategy<Value = Repeat> {
        prop_oneof![
            Just(Repeat::Daily),
            proptest::collection::vec(
                proptest::sample::select(vec![
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                    Weekday::Sat,
                    Weekday::Sun
                ]),
                1..4
            )
            .prop_map(|days| Repeat::Weekly { days }),
            (1i64..200_000).prop_map(|s| Repeat::Every {
                interval: Duration::seconds(s)
            }),
        ]
    }

    proptest! {
        #[test]
        fn occurrences_increase_and_keep_their_rule(
            zone in any_zone(),
            repeat in any_repeat(),
            day in 0i64..730,
            minute in 0i64..1440,
        ) {
            let start = local(2023, 1, 1, 0, 0) + Duration::days(day) + Duration::minutes(minute);
            let r = Recurrence::new(start, zone, repeat.clone(), None).unwrap();
            let first = r.first().unwrap();
            let got = r.occurrences_between(first, first + Duration::days(60), 200);
            prop_assert!(!got.is_empty());
            for pair in got.windows(2) {
                prop_assert!(pair[0] < pair[1]);
                if let Repeat::Every { interval } = &repeat {
                    prop_assert_eq!(pair[1] - pair[0], *interval);
                }
            }
            for t in &got {
                let local_t = t.with_timezone(&r.time_zone).naive_local();
                match &repeat {
                    Repeat::Daily | Repeat::Weekly { .. } => {
                        // The start's wall-clock time, or (in a gap) the first instant after it.
                        let same = local_t.time() == start.time();
                        let after_gap = r.time_zone.from_local_datetime(&local_t.date().and_time(start.time())).single().is_none();
                        prop_assert!(same || after_gap, "{} vs {}", local_t, start);
                        if let Repeat::Weekly { days } = &repeat {
                            prop_assert!(days.contains(&local_t.date().weekday()) || after_gap);
                        }
                    }
                    _ => {}
                }
                prop_assert_eq!(r.latest_at_or_before(*t), Some(*t));
                prop_assert_eq!(r.due(None, *t), Some(*t));
            }
        }
    }
}

/// What a scheduled event does when it comes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ScheduledAction {
    /// Assign a package to a device, group or profile.
    Assign {
        /// Where.
        target: crate::assignment::AssignmentTarget,
        /// What.
        package_id: crate::ids::PackageId,
    },
    /// Start a DRAFT campaign.
    StartCampaign {
        /// The campaign.
        campaign_id: crate::ids::CampaignId,
    },
}

/// A scheduled event (ThingsBoard PE's scheduler): an action at the occurrences of a
/// recurrence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledEvent {
    /// Identifier.
    pub id: crate::ids::ScheduleId,
    /// Owning tenant.
    pub tenant_id: crate::ids::TenantId,
    /// Name.
    pub name: String,
    /// When.
    pub recurrence: Recurrence,
    /// What.
    pub action: ScheduledAction,
    /// The occurrence it last ran for.
    pub last_run: Option<Timestamp>,
    /// The next occurrence to run (`None`: no more).
    pub next_run: Option<Timestamp>,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// Incremented by every stored change; the compare-and-set token.
    pub revision: u64,
}
