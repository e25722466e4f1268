//! [`DbTime`]: a time as a PostgreSQL `timestamptz` holds it.
//!
//! PostgreSQL keeps a `timestamptz` as microseconds since 2000-01-01 00:00:00 UTC, between
//! 4714-11-24 00:00:00 UTC BC and 294276-12-31 23:59:59.999999 UTC (plus `±infinity`).
//! [`Timestamp`] has nanoseconds and another range (years -262143 to 262142), so writing a
//! time is defined here, once:
//!
//! - a time is **truncated to the microsecond** (towards the past, also before 1970): every
//!   time with whole microseconds round-trips exactly, and the system clock only gives
//!   such times (`ota_core::clock::SystemClock`). A finer time from a test clock is read
//!   back truncated;
//! - a time before PostgreSQL's least one is written as that least time (4714 BC);
//! - a stored time after [`Timestamp`]'s greatest one (or `infinity`) is read as
//!   `DateTime::<Utc>::MAX_UTC`, one before its least (or `-infinity`) as `MIN_UTC`.
//!
//! Values go over the wire in PostgreSQL's binary form (an i64), so that neither direction
//! depends on the session's time zone or date style.

use chrono::{DateTime, FixedOffset, Utc};
use ota_core::clock::Timestamp;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{
    PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueFormat, PgValueRef, Postgres,
};
use sqlx::{Decode, Encode, Type};

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01T00:00:00Z).
const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;
/// PostgreSQL's least `timestamptz` (`MIN_TIMESTAMP`: 4714-11-24 00:00:00 UTC BC), in
/// microseconds since its epoch.
const PG_MIN: i64 = -211_813_488_000_000_000;
/// One past PostgreSQL's greatest `timestamptz` (`END_TIMESTAMP`: 294277-01-01 UTC).
const PG_END: i64 = 9_223_371_331_200_000_000;

/// A `timestamptz` value: microseconds since 2000-01-01T00:00:00Z, as PostgreSQL stores it.
/// Binds as `timestamptz` (and `timestamptz[]` for `UNNEST` arrays) and reads from such
/// columns; see the module for how times are truncated and clamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct DbTime(i64);

impl DbTime {
    /// `t` truncated to the microsecond and clamped to PostgreSQL's range.
    pub(crate) fn from_timestamp(t: Timestamp) -> Self {
        // `timestamp()` is the whole second at or before `t`; the sub-second part is never
        // negative (and above a second only within a leap second, kept in that second).
        let sub = i64::from(t.timestamp_subsec_micros().min(999_999));
        let unix = t.timestamp().saturating_mul(1_000_000).saturating_add(sub);
        DbTime(
            unix.saturating_sub(PG_EPOCH_UNIX_MICROS)
                .clamp(PG_MIN, PG_END - 1),
        )
    }

    /// The time this value stands for, saturating at the ends of [`Timestamp`]'s range.
    pub(crate) fn to_timestamp(self) -> Timestamp {
        self.0
            .checked_add(PG_EPOCH_UNIX_MICROS)
            .and_then(DateTime::from_timestamp_micros)
            .unwrap_or(if self.0 < 0 {
                DateTime::<Utc>::MIN_UTC
            } else {
                DateTime::<Utc>::MAX_UTC
            })
    }
}

impl Type<Postgres> for DbTime {
    fn type_info() -> PgTypeInfo {
        <Timestamp as Type<Postgres>>::type_info()
    }
}

impl PgHasArrayType for DbTime {
    fn array_type_info() -> PgTypeInfo {
        <Timestamp as PgHasArrayType>::array_type_info()
    }
}

impl Encode<'_, Postgres> for DbTime {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        // The binary form of a timestamptz is exactly this i64.
        <i64 as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }

    fn size_hint(&self) -> usize {
        std::mem::size_of::<i64>()
    }
}

impl<'r> Decode<'r, Postgres> for DbTime {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        match value.format() {
            PgValueFormat::Binary => Ok(DbTime(<i64 as Decode<Postgres>>::decode(value)?)),
            // Only results of unprepared statements come as text.
            PgValueFormat::Text => match value.as_str()? {
                "infinity" => Ok(DbTime(i64::MAX)),
                "-infinity" => Ok(DbTime(i64::MIN)),
                _ => {
                    let t = <DateTime<FixedOffset> as Decode<Postgres>>::decode(value)?;
                    Ok(DbTime::from_timestamp(t.with_timezone(&Utc)))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn micros(us: i64) -> Timestamp {
        DateTime::from_timestamp_micros(us).unwrap()
    }

    #[test]
    fn the_epochs() {
        assert_eq!(
            DbTime::from_timestamp(Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap()),
            DbTime(0)
        );
        assert_eq!(DbTime(0).to_timestamp().timestamp(), 946_684_800);
    }

    #[test]
    fn sub_microseconds_are_truncated_towards_the_past() {
        let after = Utc.timestamp_opt(1_704_067_200, 123_456_789).unwrap();
        assert_eq!(
            DbTime::from_timestamp(after).to_timestamp(),
            Utc.timestamp_opt(1_704_067_200, 123_456_000).unwrap()
        );
        // 1 ns before the Unix epoch is in the microsecond before it.
        let before = Utc.timestamp_opt(-1, 999_999_999).unwrap();
        assert_eq!(DbTime::from_timestamp(before).to_timestamp(), micros(-1));
    }

    #[test]
    fn the_ends_of_the_ranges_saturate() {
        let least = DbTime::from_timestamp(DateTime::<Utc>::MIN_UTC);
        assert_eq!(least, DbTime(PG_MIN));
        assert_eq!(
            least.to_timestamp(),
            Utc.with_ymd_and_hms(-4713, 11, 24, 0, 0, 0).unwrap()
        );
        let greatest = DbTime::from_timestamp(DateTime::<Utc>::MAX_UTC);
        assert_eq!(
            greatest.to_timestamp(),
            DateTime::<Utc>::MAX_UTC - chrono::Duration::nanoseconds(999)
        );
        assert_eq!(DbTime(i64::MAX).to_timestamp(), DateTime::<Utc>::MAX_UTC);
        assert_eq!(DbTime(i64::MIN).to_timestamp(), DateTime::<Utc>::MIN_UTC);
        assert_eq!(DbTime(PG_END - 1).to_timestamp(), DateTime::<Utc>::MAX_UTC);
    }

    proptest! {
        /// Every time with whole microseconds in PostgreSQL's range (and Timestamp's)
        /// round-trips exactly.
        #[test]
        fn whole_microseconds_round_trip(us in (PG_MIN + PG_EPOCH_UNIX_MICROS)..8_200_000_000_000_000_000i64) {
            let t = micros(us);
            prop_assert_eq!(DbTime::from_timestamp(t).to_timestamp(), t);
        }

        /// Any time reads back as the microsecond it is in.
        #[test]
        fn finer_times_read_back_as_their_microsecond(secs in -200_000_000_000i64..200_000_000_000, nanos in 0u32..1_000_000_000) {
            let t = Utc.timestamp_opt(secs, nanos).unwrap();
            let back = DbTime::from_timestamp(t).to_timestamp();
            prop_assert!(back <= t && t - back < chrono::Duration::microseconds(1));
        }
    }
}
