//! One transition written on its own (a lone caller, batching off, or a batch the server
//! refused as a whole), with the device's reported current version when it carries one.

use crate::codec::{db_time, db_time_opt, name_of, to_i64, to_json};
use crate::error::map;
use crate::transition_batch::{outcome_unknown, settle, Item};
use crate::updates::{conflict_message, i32_of, COUNT_TRANSITIONED, TRANSITION_ALONE};
use ota_core::store::StoreError;
use ota_core::update::{HistoryEntry, Update};
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::{PgPool, Postgres};

/// Applies one transition: the update row (if still at the expected revision), its history
/// entry, the campaign counters and the device's current version (when the item carries
/// one), in one statement. When the connection is lost with the statement sent, the outcome
/// is read back (see [`settle`]).
pub(crate) async fn transition_one(pool: &sqlx::PgPool, item: Item<'_>) -> Result<(), StoreError> {
    match transition_attempt(pool, item).await {
        Ok(answer) => answer,
        Err(e) => {
            let lost = map(e);
            settle(pool, &[item], &lost)
                .await
                .pop()
                .unwrap_or(Err(lost))
        }
    }
}

/// [`transition_one`] without the read-back: `Err` when the statement was sent and no answer
/// came back (it may or may not have been committed).
pub(crate) async fn transition_attempt(
    pool: &sqlx::PgPool,
    item: Item<'_>,
) -> Result<Result<(), StoreError>, sqlx::Error> {
    let (update, expected_revision, history) = (
        &item.transition.update,
        item.transition.expected_revision,
        &item.transition.history,
    );
    let (cur_fw, cur_title, cur_version) = item.current_columns();
    let sql = format!(
        "WITH {TRANSITION_ALONE},
         counted AS ({COUNT_TRANSITIONED}),
         cur AS (
            UPDATE ota_devices d SET
                fw_title = CASE WHEN $23::bool THEN $24::text ELSE d.fw_title END,
                fw_version = CASE WHEN $23::bool THEN $25::text ELSE d.fw_version END,
                sw_title = CASE WHEN $23::bool THEN d.sw_title ELSE $24::text END,
                sw_version = CASE WHEN $23::bool THEN d.sw_version ELSE $25::text END
            FROM upd
            WHERE $23::bool IS NOT NULL AND d.id = upd.device_id
              AND d.tenant_id = upd.tenant_id
              AND CASE WHEN $23::bool THEN (d.fw_title, d.fw_version)
                  ELSE (d.sw_title, d.sw_version) END
                  IS DISTINCT FROM ($24::text, $25::text)
         )
         SELECT count(*) FROM upd"
    );
    let history_doc = match to_json(history) {
        Ok(doc) => doc,
        Err(e) => return Ok(Err(e)),
    };
    let query = sqlx::query_scalar(&sql);
    let changed: i64 = match bind_transition(query, update, expected_revision, history, history_doc)
        .bind(cur_fw)
        .bind(cur_title)
        .bind(cur_version)
        .fetch_one(pool)
        .await
    {
        Ok(n) => n,
        Err(e) if outcome_unknown(&e) => return Err(e),
        Err(e) => return Ok(Err(conflict_message(e))),
    };
    if changed == 1 {
        return Ok(Ok(()));
    }
    Ok(Err(not_applied(pool, update, expected_revision).await))
}

/// Binds the parameters `$1`-`$22` of [`TRANSITION_ALONE`]: the update as it is to be written,
/// the revision the stored row must be at, and the update's history entry (`history_doc` is
/// `history` as JSON).
pub(crate) fn bind_transition<'q, O>(
    query: QueryScalar<'q, Postgres, O, PgArguments>,
    update: &'q Update,
    expected_revision: u64,
    history: &HistoryEntry,
    history_doc: serde_json::Value,
) -> QueryScalar<'q, Postgres, O, PgArguments> {
    query
        .bind(update.id.0)
        .bind(update.tenant_id.0)
        .bind(to_i64(expected_revision))
        .bind(update.device_id.0)
        .bind(name_of(&update.kind))
        .bind(update.package_id.0)
        .bind(&update.target.title)
        .bind(&update.target.version)
        .bind(update.campaign_id.map(|c| c.0))
        .bind(i32_of(update.wave))
        .bind(update.state.name())
        .bind(i32_of(update.attempt))
        .bind(update.progress.map(i16::from))
        .bind(&update.error)
        .bind(db_time(update.created_at))
        .bind(db_time(update.state_changed_at))
        .bind(db_time(update.updated_at))
        .bind(db_time_opt(update.retry_at))
        .bind(db_time_opt(update.wake_at))
        .bind(to_i64(update.revision))
        .bind(history.device_id.0)
        .bind(history_doc)
}

/// Why a [`TRANSITION_ALONE`] statement that ran did not apply to `update`: the stored row is
/// at another revision than `expected_revision`, or there is no such update (or reading it
/// failed).
pub(crate) async fn not_applied(
    pool: &PgPool,
    update: &Update,
    expected_revision: u64,
) -> StoreError {
    let stored: Result<Option<i64>, sqlx::Error> =
        sqlx::query_scalar("SELECT revision FROM ota_updates WHERE id = $1 AND tenant_id = $2")
            .bind(update.id.0)
            .bind(update.tenant_id.0)
            .fetch_optional(pool)
            .await;
    match stored {
        Err(e) => map(e),
        Ok(None) => StoreError::not_found("update", update.id),
        Ok(Some(r)) => StoreError::precondition(format!(
            "update {} is at revision {r}, not {expected_revision}",
            update.id
        )),
    }
}
