//! Serde helpers for `chrono::Duration` fields, written as whole milliseconds.

/// A `chrono::Duration` as a number of milliseconds.
pub mod millis {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the duration as whole milliseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_milliseconds())
    }

    /// Reads whole milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = i64::deserialize(d)?;
        Duration::try_milliseconds(ms)
            .ok_or_else(|| serde::de::Error::custom(format!("duration out of range: {ms} ms")))
    }
}

/// An optional `chrono::Duration` as a number of milliseconds or null.
pub mod millis_opt {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the duration as whole milliseconds, or null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.num_milliseconds()),
            None => s.serialize_none(),
        }
    }

    /// Reads whole milliseconds or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<i64>::deserialize(d)? {
            None => Ok(None),
            Some(ms) => Duration::try_milliseconds(ms)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("duration out of range: {ms} ms"))),
        }
    }
}
