//! [`PaceStore`] on PostgreSQL: one row per key, written by compare-and-set on its version.

use crate::codec::{from_json, to_i64, to_json, to_u64};
use crate::error::map;
use crate::PgStore;
use async_trait::async_trait;
use ota_core::pacing::PaceState;
use ota_core::store::{PaceStore, StoreError, VersionedPace};
use sqlx::Row;

#[async_trait]
impl PaceStore for PgStore {
    async fn get_pace(&self, key: &str) -> Result<Option<VersionedPace>, StoreError> {
        let row = sqlx::query("SELECT version, doc FROM ota_paces WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.map(|row| {
            Ok(VersionedPace {
                state: from_json("pace", row.try_get("doc").map_err(map)?)?,
                version: to_u64(row.try_get("version").map_err(map)?),
            })
        })
        .transpose()
    }

    async fn put_pace(
        &self,
        key: &str,
        expected_version: Option<u64>,
        state: &PaceState,
    ) -> Result<u64, StoreError> {
        let doc = to_json(state)?;
        let written: Option<i64> = match expected_version {
            None => sqlx::query_scalar(
                "INSERT INTO ota_paces (key, version, doc) VALUES ($1, 1, $2)
                 ON CONFLICT (key) DO NOTHING RETURNING version",
            )
            .bind(key)
            .bind(doc)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?,
            Some(v) => sqlx::query_scalar(
                "UPDATE ota_paces SET version = version + 1, doc = $3
                 WHERE key = $1 AND version = $2 RETURNING version",
            )
            .bind(key)
            .bind(to_i64(v))
            .bind(doc)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?,
        };
        written.map(to_u64).ok_or_else(|| {
            StoreError::precondition(format!(
                "pace {key:?} is not at version {expected_version:?}"
            ))
        })
    }
}
