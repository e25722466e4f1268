//! Transitions from concurrent callers written together (see [`crate::batcher`]): the rows
//! of up to [`PgStoreOptions::write_batch`] callers go to the database in one statement and
//! one commit. Each caller gets exactly the answer it would get alone: applied, stale
//! revision ([`StoreError::PreconditionFailed`]) or unknown update ([`StoreError::NotFound`]).
//! When the server refuses the batched statement as a whole (a unique index, a deadlock), its
//! transitions are written one by one, so that each gets its own error. When the connection
//! is lost with the statement sent, the outcome is read back row by row (see `settle`): a
//! committed batch whose reply was lost is reported applied, never stale. A transition may
//! carry the device's reported current version, written in the same statement when the
//! transition applies ([`UpdateStore::transition_with_current`]).
//!
//! [`UpdateStore::transition_with_current`]: ota_core::store::UpdateStore::transition_with_current
//!
//! [`PgStoreOptions::write_batch`]: crate::PgStoreOptions::write_batch

use crate::batcher::{lost_answer, BatchJob, Batcher};
use crate::codec::{to_i64, to_json};
use crate::error::map;
use crate::transition_alone::{transition_attempt, transition_one};
use crate::updates::{decode_update, UpdateColumns, COUNT_TRANSITIONED, UPDATE_COLUMNS};
use ota_core::store::{StoreError, Transition};
use ota_core::update::{HistoryEntry, Update};
use ota_core::{PackageKind, TitleVersion};
use sqlx::{PgPool, Row};
use std::collections::{HashMap, HashSet};
use tokio::sync::oneshot;
use uuid::Uuid;

/// A transition to write, with what the device reported it runs for the update's kind
/// (recorded on the device in the same statement when the transition applies).
#[derive(Clone, Copy)]
pub(crate) struct Item<'a> {
    pub(crate) transition: &'a Transition,
    pub(crate) current: Option<&'a TitleVersion>,
}

impl<'a> Item<'a> {
    /// A transition without a current version.
    pub(crate) fn plain(transition: &'a Transition) -> Self {
        Self {
            transition,
            current: None,
        }
    }

    /// The current version as parameters: whether it is the firmware's (`None`: no
    /// current version to record), the title and the version.
    pub(crate) fn current_columns(&self) -> (Option<bool>, Option<String>, Option<String>) {
        match self.current {
            Some(c) => (
                Some(self.transition.update.kind == PackageKind::Firmware),
                Some(c.title.clone()),
                Some(c.version.clone()),
            ),
            None => (None, None, None),
        }
    }
}

/// One caller's transition.
pub(crate) struct TransitionJob {
    transition: Transition,
    current: Option<TitleVersion>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

impl BatchJob for TransitionJob {
    async fn run(pool: PgPool, jobs: Vec<Self>) {
        let items: Vec<Item<'_>> = jobs
            .iter()
            .map(|j| Item {
                transition: &j.transition,
                current: j.current.as_ref(),
            })
            .collect();
        let answers = write(&pool, &items).await;
        drop(items);
        for (job, answer) in jobs.into_iter().zip(answers) {
            let _ = job.reply.send(answer);
        }
    }
}

/// Applies one transition (and records `current` with it), batched with whatever other
/// callers are writing.
pub(crate) async fn transition(
    batcher: &Batcher<TransitionJob>,
    pool: &PgPool,
    update: &Update,
    expected: u64,
    history: &HistoryEntry,
    current: Option<&TitleVersion>,
) -> Result<(), StoreError> {
    let (reply, answer) = oneshot::channel();
    let job = TransitionJob {
        transition: Transition {
            update: update.clone(),
            expected_revision: expected,
            history: history.clone(),
        },
        current: current.cloned(),
        reply,
    };
    if let Err(job) = batcher.submit(pool, job).await {
        let item = Item {
            transition: &job.transition,
            current: job.current.as_ref(),
        };
        return transition_one(pool, item).await;
    }
    answer.await.unwrap_or_else(|_| {
        Err(lost_answer(
            "the transition may or may not have been written",
        ))
    })
}

/// Writes `items` (one statement for as many as can go together) and answers each, in
/// order.
pub(crate) async fn write(pool: &PgPool, items: &[Item<'_>]) -> Vec<Result<(), StoreError>> {
    let mut answers: Vec<Option<Result<(), StoreError>>> = (0..items.len()).map(|_| None).collect();
    // One transition per update in a statement, and one current version per device;
    // another one for the same update or device goes after.
    let mut seen = HashSet::new();
    let mut devices = HashSet::new();
    let (mut batch, mut after) = (Vec::new(), Vec::new());
    for (i, item) in items.iter().enumerate() {
        let update = &item.transition.update;
        if !seen.contains(&update.id)
            && (item.current.is_none() || !devices.contains(&update.device_id))
        {
            seen.insert(update.id);
            if item.current.is_some() {
                devices.insert(update.device_id);
            }
            batch.push(i);
        } else {
            after.push(i);
        }
    }
    // In id order: the rows are locked as the statement reaches them, so that concurrent
    // batches lock in one order (a deadlock would only make the batch go one by one).
    batch.sort_by_key(|i| items[*i].transition.update.id);
    let together: Vec<Item<'_>> = batch.iter().map(|i| items[*i]).collect();
    let written = if together.len() > 1 {
        Some(write_batch(pool, &together).await)
    } else {
        None
    };
    match written {
        Some(Ok(applied)) => {
            for (i, answer) in batch.iter().zip(explain(pool, &together, &applied).await) {
                answers[*i] = Some(answer);
            }
        }
        // The connection went away with the statement sent: it may have been committed.
        Some(Err(BatchFailure::Unknown(e))) => {
            for (i, answer) in batch.iter().zip(settle(pool, &together, &e).await) {
                answers[*i] = Some(answer);
            }
        }
        // Alone, or the server refused the batch as a whole (nothing of it was written):
        // each on its own, with its own answer.
        None | Some(Err(BatchFailure::Refused)) => {
            for i in &batch {
                answers[*i] = Some(transition_one(pool, items[*i]).await);
            }
        }
    }
    for i in after {
        answers[i] = Some(transition_one(pool, items[i]).await);
    }
    answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(lost_answer("a transition was left out"))))
        .collect()
}

/// Why a batched statement gave no answer.
enum BatchFailure {
    /// The server refused it (a constraint, a deadlock, ...): nothing of it was written.
    Refused,
    /// No answer came back (a lost connection): it may or may not have been committed.
    Unknown(StoreError),
}

/// Whether a statement that failed with `e` may have been committed all the same: the
/// server did not answer (the connection was lost with the statement sent). A database error
/// is the server's answer (the statement, its own transaction, was rolled back); a pool
/// error means it was never sent.
pub(crate) fn outcome_unknown(e: &sqlx::Error) -> bool {
    !matches!(
        e,
        sqlx::Error::Database(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Encode(_)
            | sqlx::Error::TypeNotFound { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::RowNotFound
    )
}

impl From<sqlx::Error> for BatchFailure {
    fn from(e: sqlx::Error) -> Self {
        if outcome_unknown(&e) {
            Self::Unknown(map(e))
        } else {
            Self::Refused
        }
    }
}

/// The answers for a batch whose outcome is unknown (the connection was lost after sending
/// it). The batch is one statement, so it was committed whole or not at all. Each row is
/// read again: a row that holds what the transition wrote was applied; a row still at the
/// expected revision was not written, and the transition is written on its own (a
/// compare-and-set, so it cannot apply twice); anything else cannot be told apart from
/// another writer's change and answers [`StoreError::Unavailable`], never a stale revision.
pub(crate) async fn settle(
    pool: &PgPool,
    batch: &[Item<'_>],
    lost: &StoreError,
) -> Vec<Result<(), StoreError>> {
    let ids: Vec<Uuid> = batch.iter().map(|i| i.transition.update.id.0).collect();
    match read_back(pool, &ids).await {
        Ok(stored) => {
            let mut answers = Vec::with_capacity(batch.len());
            for item in batch {
                let now = stored.get(&item.transition.update.id.0);
                answers.push(judge(pool, *item, now, lost).await);
            }
            answers
        }
        Err(e) => batch
            .iter()
            .map(|Item { transition: t, .. }| {
                Err(StoreError::Unavailable {
                    message: format!(
                        "update {}: the connection was lost while writing ({lost}) and reading the outcome failed ({e}); it may or may not have been applied",
                        t.update.id
                    ),
                })
            })
            .collect(),
    }
}

/// The rows `ids` as stored now. A read that fails for want of a connection is tried once
/// more (on another connection: the pool drops the one that failed).
async fn read_back(pool: &PgPool, ids: &[Uuid]) -> Result<HashMap<Uuid, Update>, StoreError> {
    let sql = format!("SELECT {UPDATE_COLUMNS} FROM ota_updates WHERE id = ANY($1)");
    let mut tries = 0;
    let rows = loop {
        match sqlx::query(&sql).bind(ids).fetch_all(pool).await {
            Ok(rows) => break rows,
            Err(e) if tries == 0 && outcome_unknown(&e) => tries += 1,
            Err(e) => return Err(map(e)),
        }
    };
    let mut stored = HashMap::new();
    for row in &rows {
        let u = decode_update(row)?;
        stored.insert(u.id.0, u);
    }
    Ok(stored)
}

/// The answer for `item`, whose statement's outcome is unknown, from the row as stored now
/// (`now`): applied when the row holds what the transition wrote (the statement committed,
/// with the current version it carried); written on its own when the row is still at the
/// expected revision; otherwise [`StoreError::Unavailable`] (another writer's change cannot be
/// told apart from ours followed by another), never a stale revision.
async fn judge(
    pool: &PgPool,
    item: Item<'_>,
    now: Option<&Update>,
    lost: &StoreError,
) -> Result<(), StoreError> {
    let t = item.transition;
    match now {
        Some(now) if now.tenant_id == t.update.tenant_id && *now == t.update => Ok(()),
        Some(now) if now.tenant_id == t.update.tenant_id && now.revision == t.expected_revision => {
            let again = transition_attempt(pool, item)
                .await
                .unwrap_or_else(|e| {
                    Err(StoreError::Unavailable {
                        message: format!(
                            "update {}: the connection was lost twice while writing ({lost}; {}); it may or may not have been applied",
                            t.update.id,
                            map(e)
                        ),
                    })
                });
            match again {
                // The lost statement may still have been running when the row was read and
                // committed since: ours only if the row now holds exactly what it wrote.
                Err(StoreError::PreconditionFailed { .. }) => {
                    match read_back(pool, &[t.update.id.0]).await {
                        Ok(again) if again.get(&t.update.id.0) == Some(&t.update) => Ok(()),
                        _ => Err(StoreError::Unavailable {
                            message: format!(
                                "update {}: the connection was lost while writing ({lost}) and it changed since; whether this transition was applied cannot be told",
                                t.update.id
                            ),
                        }),
                    }
                }
                other => other,
            }
        }
        Some(now) if now.tenant_id == t.update.tenant_id => Err(StoreError::Unavailable {
            message: format!(
                "update {}: the connection was lost while writing ({lost}); it is now at revision {}, so whether this transition was applied cannot be told",
                t.update.id, now.revision
            ),
        }),
        _ => Err(StoreError::not_found("update", t.update.id)),
    }
}

/// The answers for a written batch: applied, or why not.
async fn explain(
    pool: &PgPool,
    batch: &[Item<'_>],
    applied: &HashSet<Uuid>,
) -> Vec<Result<(), StoreError>> {
    let missed: Vec<Uuid> = batch
        .iter()
        .map(|i| i.transition.update.id.0)
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
        .map(|Item { transition: t, .. }| {
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

/// One statement for the whole batch (sorted by id by the caller, so that concurrent batches
/// lock rows in one order; without a separate `FOR UPDATE`, which cost a lock record per
/// row): rows updated where the revision is still the expected one (the old state and wave,
/// read from the statement's snapshot, are those of that revision), history and
/// campaign counters written for those, and the devices' current versions carried by the
/// applied ones. Returns the ids applied. Written so that the cached generic plan, which
/// cannot know the arrays' length, still finds rows through the primary keys
/// (`id = ANY(..)`) and joins each input row once.
async fn write_batch(pool: &PgPool, batch: &[Item<'_>]) -> Result<HashSet<Uuid>, BatchFailure> {
    let mut c = UpdateColumns::default();
    let mut expected = Vec::with_capacity(batch.len());
    let mut history_device = Vec::with_capacity(batch.len());
    let mut docs = Vec::with_capacity(batch.len());
    let mut cur_fw = Vec::with_capacity(batch.len());
    let mut cur_title = Vec::with_capacity(batch.len());
    let mut cur_version = Vec::with_capacity(batch.len());
    let mut cur_devices = Vec::new();
    for item in batch {
        let t = item.transition;
        c.push(&t.update);
        expected.push(to_i64(t.expected_revision));
        history_device.push(t.history.device_id.0);
        docs.push(
            to_json(&t.history)
                .map_err(|_| BatchFailure::Refused)?
                .to_string(),
        );
        let (fw, title, version) = item.current_columns();
        if fw.is_some() {
            cur_devices.push(t.update.device_id.0);
        }
        cur_fw.push(fw);
        cur_title.push(title);
        cur_version.push(version);
    }
    let sql = format!(
        "WITH i AS (
            SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::uuid[],
                $6::text[], $7::text[], $8::uuid[], $9::int[], $10::text[], $11::int[],
                $12::smallint[], $13::text[], $14::timestamptz[], $15::timestamptz[],
                $16::timestamptz[], $17::timestamptz[], $18::timestamptz[], $19::bigint[],
                $20::bigint[], $21::uuid[], $22::text[], $23::bool[], $24::text[], $25::text[])
            AS t(id, tenant_id, device_id, kind, package_id, target_title, target_version,
                campaign_id, wave, state, attempt, progress, error, created_at,
                state_changed_at, updated_at, retry_at, wake_at, revision, expected,
                history_device, doc, cur_fw, cur_title, cur_version)
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
            RETURNING u.id, u.tenant_id, u.device_id, u.campaign_id, o.old_wave, o.old_state,
                u.wave AS new_wave, u.state AS new_state, o.history_device, o.doc,
                o.cur_fw, o.cur_title, o.cur_version
         ),
         hist AS (
            INSERT INTO ota_history (update_id, tenant_id, device_id, doc)
            SELECT id, tenant_id, history_device, doc::jsonb FROM upd
         ),
         counted AS ({COUNT_TRANSITIONED}),
         cur AS ({SET_CURRENT})
         SELECT id FROM upd"
    );
    let rows = c
        .bind(sqlx::query(&sql))
        .bind(&expected)
        .bind(&history_device)
        .bind(&docs)
        .bind(&cur_fw)
        .bind(&cur_title)
        .bind(&cur_version)
        .bind(&cur_devices)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| row.try_get::<Uuid, _>("id").map_err(BatchFailure::from))
        .collect()
}

/// Records the current versions carried by the applied transitions (rows of the CTE `upd`
/// with columns tenant_id, device_id, cur_fw, cur_title, cur_version; `cur_fw` null when
/// none), the devices reached through their primary key (`$26`: the ids of the devices
/// with a current version); a device row is rewritten only when its version changes.
const SET_CURRENT: &str = "UPDATE ota_devices d SET
        fw_title = CASE WHEN c.cur_fw THEN c.cur_title ELSE d.fw_title END,
        fw_version = CASE WHEN c.cur_fw THEN c.cur_version ELSE d.fw_version END,
        sw_title = CASE WHEN c.cur_fw THEN d.sw_title ELSE c.cur_title END,
        sw_version = CASE WHEN c.cur_fw THEN d.sw_version ELSE c.cur_version END
    FROM upd c
    WHERE d.id = ANY($26::uuid[]) AND c.cur_fw IS NOT NULL
      AND d.id = c.device_id AND d.tenant_id = c.tenant_id
      AND CASE WHEN c.cur_fw THEN (d.fw_title, d.fw_version) ELSE (d.sw_title, d.sw_version) END
          IS DISTINCT FROM (c.cur_title, c.cur_version)";
