//! Releases written with their notices ([`NoticeOutbox::release_with_notices`]): one
//! statement applies the transitions (compare-and-set on the revision, history, campaign
//! counters, as [`crate::transition_batch`] does) and writes the notice of each applied one
//! into `ota_outbox`, replacing older undelivered notices of the device and kind. A notice is
//! thus stored if and only if its release is.
//!
//! [`NoticeOutbox::release_with_notices`]: ota_core::store::NoticeOutbox::release_with_notices

use crate::codec::{db_time, name_of, to_i64, to_json, DbTime};
use crate::error::map;
use crate::updates::{UpdateColumns, COUNT_TRANSITIONED};
use ota_core::store::{Release, StoreError};
use sqlx::{PgPool, Row};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Releases per statement.
const PER_STATEMENT: usize = 1_000;

/// Writes `releases` and answers each, in order: applied, stale revision
/// ([`StoreError::PreconditionFailed`]) or unknown update ([`StoreError::NotFound`]).
pub(crate) async fn write(pool: &PgPool, releases: &[Release]) -> Vec<Result<(), StoreError>> {
    let mut answers = Vec::with_capacity(releases.len());
    for chunk in releases.chunks(PER_STATEMENT) {
        answers.extend(write_chunk(pool, chunk).await);
    }
    answers
}

async fn write_chunk(pool: &PgPool, releases: &[Release]) -> Vec<Result<(), StoreError>> {
    // One release per update in a statement; another one for the same update goes after.
    let mut seen = HashSet::new();
    let (mut together, mut after) = (Vec::new(), Vec::new());
    for (i, r) in releases.iter().enumerate() {
        if seen.insert(r.transition.update.id) {
            together.push(i);
        } else {
            after.push(i);
        }
    }
    // In id order: the rows are locked as the statement reaches them, so that concurrent
    // statements lock in one order.
    together.sort_by_key(|i| releases[*i].transition.update.id);
    let mut answers: Vec<Option<Result<(), StoreError>>> =
        (0..releases.len()).map(|_| None).collect();
    let batch: Vec<&Release> = together.iter().map(|i| &releases[*i]).collect();
    match statement(pool, &batch).await {
        Ok(applied) => {
            for (i, a) in together.iter().zip(explain(pool, &batch, &applied).await) {
                answers[*i] = Some(a);
            }
        }
        // The statement failed as a whole: each alone, with its own answer.
        Err(e) if batch.len() > 1 => {
            let _ = e;
            for i in &together {
                answers[*i] = Some(alone(pool, &releases[*i]).await);
            }
        }
        Err(e) => answers[together[0]] = Some(Err(e)),
    }
    for i in after {
        answers[i] = Some(alone(pool, &releases[i]).await);
    }
    answers
        .into_iter()
        .map(|a| {
            a.unwrap_or_else(|| {
                Err(StoreError::Unavailable {
                    message: "a release was left out".into(),
                })
            })
        })
        .collect()
}

async fn alone(pool: &PgPool, release: &Release) -> Result<(), StoreError> {
    let applied = statement(pool, &[release]).await?;
    explain(pool, &[release], &applied)
        .await
        .pop()
        .unwrap_or(Ok(()))
}

/// Why the releases not in `applied` were not written.
async fn explain(
    pool: &PgPool,
    batch: &[&Release],
    applied: &HashSet<Uuid>,
) -> Vec<Result<(), StoreError>> {
    let missed: Vec<Uuid> = batch
        .iter()
        .map(|r| r.transition.update.id.0)
        .filter(|id| !applied.contains(id))
        .collect();
    let mut stored: HashMap<Uuid, (Uuid, i64)> = HashMap::new();
    let mut lookup_error = None;
    if !missed.is_empty() {
        match sqlx::query_as::<_, (Uuid, Uuid, i64)>(
            "SELECT id, tenant_id, revision FROM ota_updates WHERE id = ANY($1)",
        )
        .bind(&missed)
        .fetch_all(pool)
        .await
        {
            Ok(rows) => stored.extend(rows.into_iter().map(|(id, t, r)| (id, (t, r)))),
            Err(e) => lookup_error = Some(map(e).to_string()),
        }
    }
    batch
        .iter()
        .map(|r| {
            let t = &r.transition;
            let id = t.update.id;
            if applied.contains(&id.0) {
                return Ok(());
            }
            if let Some(e) = &lookup_error {
                return Err(StoreError::Unavailable {
                    message: format!("update {id} was not released; reading why failed: {e}"),
                });
            }
            match stored.get(&id.0) {
                Some((tenant, revision)) if *tenant == t.update.tenant_id.0 => {
                    Err(StoreError::precondition(format!(
                        "update {id} is at revision {revision}, not {}",
                        t.expected_revision
                    )))
                }
                _ => Err(StoreError::not_found("update", id)),
            }
        })
        .collect()
}

/// The statement: the transitions of `batch` where the revision still matches, their history
/// and counters, and their notices. Returns the ids of the updates released. Without a
/// separate `FOR UPDATE` (a lock record and a WAL record per row): the old state and wave are
/// read from the statement's snapshot, and they are those of the expected revision whenever
/// the compare-and-set applies (revisions only grow, and the update re-checks the revision
/// on the row it locks), as in [`crate::transition_batch`].
pub(crate) async fn statement<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    batch: &[&Release],
) -> Result<HashSet<Uuid>, StoreError> {
    let mut c = UpdateColumns::default();
    let mut expected = Vec::with_capacity(batch.len());
    let mut history_device = Vec::with_capacity(batch.len());
    let mut docs = Vec::with_capacity(batch.len());
    let mut notice_id = Vec::with_capacity(batch.len());
    let mut notice_kind = Vec::with_capacity(batch.len());
    let mut notice_device = Vec::with_capacity(batch.len());
    let mut notice_doc = Vec::with_capacity(batch.len());
    let mut notice_at = Vec::with_capacity(batch.len());
    let mut lease_owner: Vec<Option<String>> = Vec::with_capacity(batch.len());
    let mut lease_until: Vec<Option<DbTime>> = Vec::with_capacity(batch.len());
    for r in batch {
        let t = &r.transition;
        c.push(&t.update);
        expected.push(to_i64(t.expected_revision));
        history_device.push(t.history.device_id.0);
        docs.push(to_json(&t.history)?.to_string());
        notice_id.push(r.notice.id.0);
        notice_kind.push(name_of(&r.notice.notice.kind()));
        notice_device.push(r.notice.notice.device_id().0);
        notice_doc.push(to_json(&r.notice.notice)?.to_string());
        notice_at.push(db_time(r.notice.created_at));
        lease_owner.push(r.lease.as_ref().map(|l| l.owner.clone()));
        lease_until.push(r.lease.as_ref().map(|l| db_time(l.until)));
    }
    let sql = format!(
        "WITH i AS (
            SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::uuid[],
                $6::text[], $7::text[], $8::uuid[], $9::int[], $10::text[], $11::int[],
                $12::smallint[], $13::text[], $14::timestamptz[], $15::timestamptz[], $16::timestamptz[],
                $17::timestamptz[], $18::timestamptz[], $19::bigint[], $20::bigint[], $21::uuid[],
                $22::text[], $23::uuid[], $24::text[], $25::uuid[], $26::text[],
                $27::timestamptz[], $28::text[], $29::timestamptz[])
            AS t(id, tenant_id, device_id, kind, package_id, target_title, target_version,
                campaign_id, wave, state, attempt, progress, error, created_at,
                state_changed_at, updated_at, retry_at, wake_at, revision, expected,
                history_device, doc, notice_id, notice_kind, notice_device, notice_doc,
                notice_at, lease_owner, lease_until)
         ),
         old AS (
            SELECT i.*, u.state AS old_state, u.wave AS old_wave FROM ota_updates u
            JOIN i ON u.id = i.id AND u.tenant_id = i.tenant_id
            WHERE u.id = ANY($1)
         ),
         upd AS (
            UPDATE ota_updates u SET
                device_id = o.device_id, kind = o.kind, package_id = o.package_id,
                target_title = o.target_title, target_version = o.target_version,
                campaign_id = o.campaign_id, wave = o.wave, state = o.state,
                attempt = o.attempt, progress = o.progress, error = o.error,
                created_at = o.created_at, state_changed_at = o.state_changed_at,
                updated_at = o.updated_at, retry_at = o.retry_at, wake_at = o.wake_at,
                revision = o.revision, lease_owner = NULL, lease_until = NULL
            FROM old o
            WHERE u.id = o.id AND u.revision = o.expected
            RETURNING u.id, u.tenant_id, u.campaign_id, o.old_wave, o.old_state,
                u.wave AS new_wave, u.state AS new_state, o.history_device, o.doc,
                o.notice_id, o.notice_kind, o.notice_device, o.notice_doc, o.notice_at,
                o.lease_owner AS notice_owner, o.lease_until AS notice_until
         ),
         hist AS (
            INSERT INTO ota_history (update_id, tenant_id, device_id, doc)
            SELECT id, tenant_id, history_device, doc::jsonb FROM upd
         ),
         counted AS ({COUNT_TRANSITIONED}),
         superseded AS (
            DELETE FROM ota_outbox b USING upd
            WHERE b.device_id = upd.notice_device AND b.kind = upd.notice_kind
         ),
         noticed AS (
            INSERT INTO ota_outbox (id, tenant_id, device_id, kind, doc, created_at,
                lease_owner, lease_until)
            SELECT notice_id, tenant_id, notice_device, notice_kind, notice_doc::jsonb,
                notice_at, notice_owner, notice_until
            FROM upd
         )
         SELECT id FROM upd"
    );
    let rows = c
        .bind(sqlx::query(&sql))
        .bind(&expected)
        .bind(&history_device)
        .bind(&docs)
        .bind(&notice_id)
        .bind(&notice_kind)
        .bind(&notice_device)
        .bind(&notice_doc)
        .bind(&notice_at)
        .bind(&lease_owner)
        .bind(&lease_until)
        .fetch_all(executor)
        .await
        .map_err(map)?;
    rows.iter()
        .map(|row| row.try_get::<Uuid, _>("id").map_err(map))
        .collect()
}
