//! An operator's transition written with its audit entry
//! ([`UpdateStore::transition_audited`]): one statement applies the transition (compare-and-set
//! on the revision, history, campaign counters, as [`crate::transition_alone`] does), writes
//! the notice when it carries one into `ota_outbox` (replacing older undelivered notices of
//! the device and kind, as [`crate::release`] does) and appends the audit entry, each only
//! from the row the update wrote: all commit together or not at all.
//!
//! [`UpdateStore::transition_audited`]: ota_core::store::UpdateStore::transition_audited

use crate::codec::{db_time, name_of, to_json};
use crate::error::map;
use crate::transition_alone::{bind_transition, not_applied};
use crate::transition_batch::outcome_unknown;
use crate::updates::{conflict_message, COUNT_TRANSITIONED, TRANSITION_ALONE};
use ota_core::store::{AuditedTransition, StoreError};
use sqlx::PgPool;

/// Writes `write` and answers: applied, stale revision ([`StoreError::PreconditionFailed`]),
/// unknown update ([`StoreError::NotFound`]), a taken entry id or a second unfinished update
/// ([`StoreError::Conflict`]). When the connection is lost with the statement sent, the
/// entry is looked up: it is stored if and only if the statement committed.
pub(crate) async fn write(pool: &PgPool, write: &AuditedTransition) -> Result<(), StoreError> {
    match statement(pool, write).await {
        Ok(1) => Ok(()),
        Ok(_) => Err(not_applied(
            pool,
            &write.transition.update,
            write.transition.expected_revision,
        )
        .await),
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
    let sql = format!(
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
    );
    bind_transition(
        sqlx::query_scalar(&sql),
        update,
        t.expected_revision,
        &t.history,
        history_doc,
    )
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
