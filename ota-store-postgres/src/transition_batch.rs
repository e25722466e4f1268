//! Transitions from concurrent callers written together (see [`crate::batcher`]): the rows
//! of up to [`PgStoreOptions::write_batch`] callers go to the database in one statement and
//! one commit. Each caller gets exactly the answer it would get alone: applied, stale
//! revision ([`StoreError::PreconditionFailed`]) or unknown update ([`StoreError::NotFound`]).
//! When the batched statement fails as a whole (a unique index, a deadlock, a lost
//! connection), its transitions are written one by one, so that each gets its own error.
//!
//! [`PgStoreOptions::write_batch`]: crate::PgStoreOptions::write_batch

use crate::batcher::{lost_answer, BatchJob, Batcher};
use crate::codec::{to_i64, to_json};
use crate::error::map;
use crate::updates::{transition_one, UpdateColumns, COUNT_TRANSITIONED};
use ota_core::store::{StoreError, Transition};
use ota_core::update::{HistoryEntry, Update};
use sqlx::{PgPool, Row};
use std::collections::{HashMap, HashSet};
use tokio::sync::oneshot;
use uuid::Uuid;

/// One caller's transition.
pub(crate) struct TransitionJob {
    transition: Transition,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

impl BatchJob for TransitionJob {
    async fn run(pool: PgPool, jobs: Vec<Self>) {
        let (transitions, replies): (Vec<_>, Vec<_>) =
            jobs.into_iter().map(|j| (j.transition, j.reply)).unzip();
        let answers = write(&pool, &transitions).await;
        for (reply, answer) in replies.into_iter().zip(answers) {
            let _ = reply.send(answer);
        }
    }
}

/// Applies one transition, batched with whatever other callers are writing.
pub(crate) async fn transition(
    batcher: &Batcher<TransitionJob>,
    pool: &PgPool,
    update: &Update,
    expected: u64,
    history: &HistoryEntry,
) -> Result<(), StoreError> {
    let (reply, answer) = oneshot::channel();
    let job = TransitionJob {
        transition: Transition {
            update: update.clone(),
            expected_revision: expected,
            history: history.clone(),
        },
        reply,
    };
    if let Err(job) = batcher.submit(pool, job).await {
        let t = &job.transition;
        return transition_one(pool, &t.update, t.expected_revision, &t.history).await;
    }
    answer.await.unwrap_or_else(|_| {
        Err(lost_answer(
            "the transition may or may not have been written",
        ))
    })
}

async fn write_one(pool: &PgPool, t: &Transition) -> Result<(), StoreError> {
    transition_one(pool, &t.update, t.expected_revision, &t.history).await
}

/// Writes `transitions` (one statement for as many as can go together) and answers each, in
/// order.
pub(crate) async fn write(
    pool: &PgPool,
    transitions: &[Transition],
) -> Vec<Result<(), StoreError>> {
    let mut answers: Vec<Option<Result<(), StoreError>>> =
        (0..transitions.len()).map(|_| None).collect();
    // One transition per update in a statement; another one for the same update goes after.
    let mut seen = HashSet::new();
    let (mut batch, mut after) = (Vec::new(), Vec::new());
    for (i, t) in transitions.iter().enumerate() {
        if seen.insert(t.update.id) {
            batch.push(i);
        } else {
            after.push(i);
        }
    }
    let together: Vec<&Transition> = batch.iter().map(|i| &transitions[*i]).collect();
    let written = if together.len() > 1 {
        write_batch(pool, &together).await.ok()
    } else {
        None
    };
    match written {
        Some(applied) => {
            for (i, answer) in batch.iter().zip(explain(pool, &together, &applied).await) {
                answers[*i] = Some(answer);
            }
        }
        // Alone, or the batch failed as a whole: each on its own, with its own answer.
        None => {
            for i in &batch {
                answers[*i] = Some(write_one(pool, &transitions[*i]).await);
            }
        }
    }
    for i in after {
        answers[i] = Some(write_one(pool, &transitions[i]).await);
    }
    answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(lost_answer("a transition was left out"))))
        .collect()
}

/// The answers for a written batch: applied, or why not.
async fn explain(
    pool: &PgPool,
    batch: &[&Transition],
    applied: &HashSet<Uuid>,
) -> Vec<Result<(), StoreError>> {
    let missed: Vec<Uuid> = batch
        .iter()
        .map(|t| t.update.id.0)
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
        .map(|t| {
            let id = t.update.id;
            if applied.contains(&id.0) {
                Ok(())
            } else if let Some(e) = &lookup_error {
                // Not applied (stale or unknown), but which of the two could not be read.
                Err(StoreError::Unavailable {
                    message: format!("update {id} was not changed; reading why failed: {e}"),
                })
            } else {
                match stored.get(&id.0) {
                    Some((tenant, revision)) if *tenant == t.update.tenant_id.0 => {
                        Err(StoreError::precondition(format!(
                            "update {id} is at revision {revision}, not {}",
                            t.expected_revision
                        )))
                    }
                    _ => Err(StoreError::not_found("update", id)),
                }
            }
        })
        .collect()
}

/// One statement for the whole batch: rows locked in id order (so concurrent batches cannot
/// deadlock on them), updated where the revision is still the expected one, history and
/// campaign counters written for those. Returns the ids applied. Written so that the cached
/// generic plan, which cannot know the arrays' length, still finds rows through the primary
/// key (`id = ANY($1)`) and joins each input row once.
async fn write_batch(pool: &PgPool, batch: &[&Transition]) -> Result<HashSet<Uuid>, StoreError> {
    let mut c = UpdateColumns::default();
    let mut expected = Vec::with_capacity(batch.len());
    let mut history_device = Vec::with_capacity(batch.len());
    let mut docs = Vec::with_capacity(batch.len());
    for t in batch {
        c.push(&t.update);
        expected.push(to_i64(t.expected_revision));
        history_device.push(t.history.device_id.0);
        docs.push(to_json(&t.history)?.to_string());
    }
    let sql = format!(
        "WITH i AS (
            SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::uuid[],
                $6::text[], $7::text[], $8::uuid[], $9::int[], $10::text[], $11::int[],
                $12::smallint[], $13::text[], $14::bigint[], $15::bigint[], $16::bigint[],
                $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[], $21::uuid[],
                $22::text[])
            AS t(id, tenant_id, device_id, kind, package_id, target_title, target_version,
                campaign_id, wave, state, attempt, progress, error, created_at,
                state_changed_at, updated_at, retry_at, wake_at, revision, expected,
                history_device, doc)
         ),
         old AS (
            SELECT i.*, u.state AS old_state, u.wave AS old_wave FROM ota_updates u
            JOIN i ON u.id = i.id AND u.tenant_id = i.tenant_id
            WHERE u.id = ANY($1)
            ORDER BY u.id
            FOR UPDATE OF u
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
                u.wave AS new_wave, u.state AS new_state, o.history_device, o.doc
         ),
         hist AS (
            INSERT INTO ota_history (update_id, tenant_id, device_id, doc)
            SELECT id, tenant_id, history_device, doc::jsonb FROM upd
         ),
         counted AS ({COUNT_TRANSITIONED})
         SELECT id FROM upd"
    );
    let rows = c
        .bind(sqlx::query(&sql))
        .bind(&expected)
        .bind(&history_device)
        .bind(&docs)
        .fetch_all(pool)
        .await
        .map_err(map)?;
    rows.iter()
        .map(|row| row.try_get::<Uuid, _>("id").map_err(map))
        .collect()
}
