//! Conversions between ota-core values and column values.

use ota_core::clock::Timestamp;
use ota_core::store::{Page, PageRequest, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

pub(crate) use crate::time::DbTime;

/// A time as a `timestamptz` value: truncated to the microsecond (PostgreSQL's precision),
/// within PostgreSQL's range (see [`DbTime`]).
pub(crate) fn db_time(t: Timestamp) -> DbTime {
    DbTime::from_timestamp(t)
}

/// A time read from a `timestamptz` column.
pub(crate) fn from_db_time(t: DbTime) -> Timestamp {
    t.to_timestamp()
}

/// An optional time as a `timestamptz` value.
pub(crate) fn db_time_opt(t: Option<Timestamp>) -> Option<DbTime> {
    t.map(db_time)
}

/// The serde form of a value as JSON, for `jsonb` columns.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(value).map_err(|e| StoreError::Backend {
        message: format!("cannot encode a record: {e}"),
    })
}

/// A value from its stored serde form.
pub(crate) fn from_json<T: DeserializeOwned>(
    entity: &str,
    value: serde_json::Value,
) -> Result<T, StoreError> {
    serde_json::from_value(value).map_err(|e| StoreError::Backend {
        message: format!("stored {entity} cannot be read: {e}"),
    })
}

/// A value's name as its serde form spells it (enums with unit variants).
pub(crate) fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// An enum from the name it was stored under.
pub(crate) fn parse_name<T: DeserializeOwned>(entity: &str, name: &str) -> Result<T, StoreError> {
    from_json(entity, serde_json::Value::String(name.to_string()))
}

/// A u64 stored as bigint.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A bigint read back as u64.
pub(crate) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The limit to fetch for a page: one more than the page holds.
pub(crate) fn overfetch(page: &PageRequest) -> i64 {
    page.effective_limit() as i64 + 1
}

/// Where a page starts: after this id (the nil UUID sorts first).
pub(crate) fn after(page: &PageRequest) -> Uuid {
    page.after.unwrap_or(Uuid::nil())
}

/// A page from rows fetched with [`overfetch`].
pub(crate) fn page<T>(items: Vec<T>, request: &PageRequest, id: impl Fn(&T) -> Uuid) -> Page<T> {
    Page::from_overfetch(items, request, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_enums() {
        assert_eq!(name_of(&ota_core::update::UpdateState::Queued), "QUEUED");
        assert_eq!(name_of(&ota_core::PackageKind::Software), "SOFTWARE");
        let k: ota_core::PackageKind = parse_name("kind", "FIRMWARE").unwrap();
        assert_eq!(k, ota_core::PackageKind::Firmware);
        assert!(parse_name::<ota_core::PackageKind>("kind", "nope").is_err());
    }
}
