//! Reads of the active campaigns from concurrent callers, coalesced (see
//! [`crate::batcher`]): every device that reports a completed update asks for them (is there
//! a dynamic campaign it could join?), so under load many callers share one query. Each
//! caller's answer comes from a query that started after it asked, as if it had run its own.

use crate::batcher::{lost_answer, BatchJob, Batcher};
use crate::campaigns::decode_all;
use crate::error::map;
use ota_core::campaign::Campaign;
use ota_core::store::StoreError;
use sqlx::PgPool;
use tokio::sync::oneshot;

/// One caller's read.
pub(crate) struct ActiveJob {
    reply: oneshot::Sender<Result<Vec<Campaign>, StoreError>>,
}

impl BatchJob for ActiveJob {
    async fn run(pool: PgPool, jobs: Vec<Self>) {
        match read(&pool).await {
            Ok(campaigns) => {
                for job in jobs {
                    let _ = job.reply.send(Ok(campaigns.clone()));
                }
            }
            // Each on its own, so that each gets its own answer.
            Err(_) => {
                for job in jobs {
                    let _ = job.reply.send(read(&pool).await);
                }
            }
        }
    }
}

/// The campaigns that are scheduled, running or paused, read together with other callers'.
pub(crate) async fn active(
    batcher: &Batcher<ActiveJob>,
    pool: &PgPool,
) -> Result<Vec<Campaign>, StoreError> {
    let (reply, answer) = oneshot::channel();
    if batcher.submit(pool, ActiveJob { reply }).await.is_err() {
        return read(pool).await;
    }
    answer
        .await
        .unwrap_or_else(|_| Err(lost_answer("the read did not complete")))
}

/// One read.
pub(crate) async fn read(pool: &PgPool) -> Result<Vec<Campaign>, StoreError> {
    let docs = sqlx::query_scalar(
        "SELECT doc FROM ota_campaigns WHERE state IN ('SCHEDULED', 'RUNNING', 'PAUSED')
         ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .map_err(map)?;
    decode_all(docs)
}
