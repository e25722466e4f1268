//! An operator's transition written with its audit entry
//! ([`UpdateStore::transition_audited`]): one statement applies the transition (compare-and-set
//! on the revision, history, campaign counters, as [`crate::transition_alone`] does), writes
//! the notice when it carries one into `ota_outbox` (replacing older undelivered notices of
//! the device and kind, as [`crate::release`] does) and appends the audit entry, each only
//! from the row the update wrote: all commit together or not at all.
//!
//! [`UpdateStore::transition_audited`]: ota_core::store::UpdateStore::transition_audited

use crate::codec::{db_time, db_time_opt, name_of, to_i64, to_json};
use crate::error::map;
use crate::transition_batch::outcome_unknown;
use crate::updates::{conflict_message, i32_of, COUNT_TRANSITIONED, TRANSITION_ALONE};
use ota_core::store::{AuditedTransition, StoreError};
use sqlx::PgPool;

/// Writes `write` and answers: applied, stale revision ([`StoreError::PreconditionFailed`]),
/// unknown update ([`StoreError::NotFound`]), a taken entry id or a second unfinished update
/// ([`StoreError::Conflict`]). When the connection is lost with the statement sent, the
/// entry is looked up: it is stored if and only if the statement committed.
pub(crate) async fn write(pool: &PgPool, write: &AuditedTransition) -> Result<(), StoreError> {
    match statement(pool, write).await {
        Ok(1) => Ok(()),
        Ok(_) => why_not(pool, write).await,
        Err(e) if outcome_unknown(&e) => settle(pool, write, map(e)).await,
        Err(e) => Err(refused(e)),
    }
}

async fn statement(pool: &PgPool, write: &AuditedTransition) -> Result<i64, sqlx::Error> {
    let t = &write.transition;
    let update = &t.update;
    let notice = write.notice.as_ref();
    let lease = notice.and(write.lease.as_ref());
    let encode = |e: StoreError| sqlx::Error::Encode(e.to_string().into());
    let history_doc = to_json(&t.history).map_err(encode)?;
    let audit_doc = to_json(&write.audit).map_err(encode)?;
    let notice_doc = notice
        .map(|n| to_json(&n.notice))
        .transpose()
        .map_err(encode)?;
    sqlx::query_scalar(&format!(
        "WITH {TRANSITION_ALONE},
         counted AS ({COUNT_TRANSITIONED}),
         audited AS (
            INSERT INTO ota_audit (id, tenant_id, doc) SELECT $23, $24, $25 FROM upd
         ),
         superseded AS (
            DELETE FROM ota_outbox b USING upd
            WHERE $26::uuid IS NOT NULL AND b.device_id = $28 AND b.kind = $27::text
         ),
         noticed AS (
            INSERT INTO ota_outbox (id, tenant_id, device_id, kind, doc, created_at,
                lease_owner, lease_until)
            SELECT $26, $2, $28, $27, $29, $30, $31, $32 FROM upd WHERE $26::uuid IS NOT NULL
         )
         SELECT count(*) FROM upd"
    ))
    .bind(update.id.0)
    .bind(update.tenant_id.0)
    .bind(to_i64(t.expected_revision))
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
    .bind(t.history.device_id.0)
    .bind(history_doc)
    .bind(write.audit.id)
    .bind(write.audit.tenant_id.0)
    .bind(audit_doc)
    .bind(notice.map(|n| n.id.0))
    .bind(notice.map(|n| name_of(&n.notice.kind())))
    .bind(notice.map(|n| n.notice.device_id().0))
    .bind(notice_doc)
    .bind(notice.map(|n| db_time(n.created_at)))
    .bind(lease.map(|l| l.owner.clone()))
    .bind(lease.map(|l| db_time(l.until)))
    .fetch_one(pool)
    .await
}

/// The answer for a statement the server refused: a taken entry id, or what a transition
/// refused the same way would answer.
fn refused(e: sqlx::Error) -> StoreError {
    let taken =
        matches!(&e, sqlx::Error::Database(db) if db.constraint() == Some("ota_audit_pkey"));
    if taken {
        return StoreError::conflict("audit entry", "the id exists; the audit log is append only");
    }
    conflict_message(e)
}

/// Why a statement that ran wrote nothing: the stored revision differs, or there is no such
/// update.
async fn why_not(pool: &PgPool, write: &AuditedTransition) -> Result<(), StoreError> {
    let t = &write.transition;
    let stored: Option<i64> =
        sqlx::query_scalar("SELECT revision FROM ota_updates WHERE id = $1 AND tenant_id = $2")
            .bind(t.update.id.0)
            .bind(t.update.tenant_id.0)
            .fetch_optional(pool)
            .await
            .map_err(map)?;
    match stored {
        None => Err(StoreError::not_found("update", t.update.id)),
        Some(r) => Err(StoreError::precondition(format!(
            "update {} is at revision {r}, not {}",
            t.update.id, t.expected_revision
        ))),
    }
}

/// The answer for a statement whose reply was lost: applied when its entry is stored (it
/// commits with the transition and only with it), else `lost`.
async fn settle(
    pool: &PgPool,
    write: &AuditedTransition,
    lost: StoreError,
) -> Result<(), StoreError> {
    let stored: Result<bool, sqlx::Error> =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM ota_audit WHERE id = $1)")
            .bind(write.audit.id)
            .fetch_one(pool)
            .await;
    match stored {
        Ok(true) => Ok(()),
        Ok(false) => Err(lost),
        Err(e) => Err(StoreError::Unavailable {
            message: format!("{lost}; reading whether it was written failed: {}", map(e)),
        }),
    }
}
