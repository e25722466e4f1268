//! Coalescing of concurrent calls ("group commit"): callers queue a job carrying its own
//! reply channel; a few worker tasks take whatever has queued up (up to a batch size) and run
//! it as one statement. A lone caller goes straight through; under load, many round trips and
//! commits become a few.
//!
//! Workers run on the runtime of the first caller. When that runtime has ended (or there is
//! none), [`Batcher::submit`] hands the job back and the caller runs it on its own.

use sqlx::PgPool;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Worker tasks per batcher, hence batched statements in flight at once.
const WORKERS: usize = 4;
/// Jobs waiting for a worker before callers wait to queue.
const QUEUE: usize = 4096;

/// A job that can be run together with others of its kind.
pub(crate) trait BatchJob: Send + Sized + 'static {
    /// Runs `jobs` (at least one) and answers each through its own reply channel.
    fn run(pool: PgPool, jobs: Vec<Self>) -> impl Future<Output = ()> + Send;
}

/// The queue to the workers of one kind of job.
pub(crate) struct Batcher<J> {
    max_batch: usize,
    sender: Mutex<Option<mpsc::Sender<J>>>,
}

impl<J> std::fmt::Debug for Batcher<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("max_batch", &self.max_batch)
            .finish_non_exhaustive()
    }
}

impl<J: BatchJob> Batcher<J> {
    /// Up to `max_batch` jobs per statement; 0 or 1 turns batching off.
    pub(crate) fn new(max_batch: usize) -> Self {
        Self {
            max_batch,
            sender: Mutex::new(None),
        }
    }

    /// The queue, starting workers on the current runtime when there are none.
    fn queue(&self, pool: &PgPool) -> Option<mpsc::Sender<J>> {
        let mut sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = sender.as_ref().filter(|s| !s.is_closed()) {
            return Some(s.clone());
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let workers = std::env::var("OTA_PG_BATCH_WORKERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(WORKERS);
        for _ in 0..workers {
            runtime.spawn(work(pool.clone(), rx.clone(), self.max_batch));
        }
        *sender = Some(tx.clone());
        Some(tx)
    }

    /// Queues `job`; gives it back when batching is off or no worker can take it, for the
    /// caller to run on its own.
    pub(crate) async fn submit(&self, pool: &PgPool, job: J) -> Result<(), J> {
        if self.max_batch <= 1 {
            return Err(job);
        }
        let Some(queue) = self.queue(pool) else {
            return Err(job);
        };
        queue
            .send(job)
            .await
            .map_err(|mpsc::error::SendError(job)| job)
    }
}

/// A worker: takes what has queued (up to `max`) and runs it, until the queue closes.
async fn work<J: BatchJob>(
    pool: PgPool,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<J>>>,
    max: usize,
) {
    loop {
        let jobs = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            let mut jobs = vec![first];
            while jobs.len() < max {
                match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            jobs
        };
        J::run(pool.clone(), jobs).await;
    }
}

/// The answer a caller gets when the worker holding its job went away without answering.
pub(crate) fn lost_answer(what: &str) -> ota_core::store::StoreError {
    ota_core::store::StoreError::Unavailable {
        message: format!(
            "the batch writer stopped before answering (runtime shutting down); {what}"
        ),
    }
}
