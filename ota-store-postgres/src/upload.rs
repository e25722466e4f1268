//! Uploads of package content without a long transaction.
//!
//! The package row is written first as *pending* (`upload_until` set: the upload's lease)
//! and stays invisible to every read until the content is complete and verified. Each
//! [`CHUNK_SIZE`] chunk is written in a statement (a transaction) of its own, which also
//! renews the lease, so an upload holds no connection between chunks and no open
//! transaction at all: other calls are not starved, VACUUM is not held back, and a second
//! upload of the same title and version is refused at once instead of waiting on the first.
//!
//! Chunk writes of all uploads together use at most a quarter of the pool
//! ([`UploadSlots`]). Nothing is kept of a failed upload: a checksum mismatch, a failing
//! stream or a size over the limit deletes the pending row (and its chunks, by cascade)
//! before answering; a dropped upload future deletes them from a spawned task; an upload
//! whose process died leaves a row whose lease lapses, and lapsed rows are removed when the
//! next upload starts or by [`PgStore::purge_abandoned_uploads`].

use crate::codec::to_json;
use crate::error::{conflict_as, map};
use crate::{PgStore, CHUNK_SIZE};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use ota_core::checksum::{Checksum, ContentHasher};
use ota_core::store::{AuditOf, ByteStream, StoreError};
use ota_core::{Package, PackageId, PackageSource};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long a pending upload stays reserved without a sign of life. Renewed by every chunk
/// written and, for a slow sender, at least every quarter of it.
pub const UPLOAD_LEASE: Duration = Duration::from_secs(300);

/// The share of the pool that chunk writes may use at once: a quarter, at least one.
#[derive(Clone, Debug)]
pub(crate) struct UploadSlots(Arc<Semaphore>);

impl UploadSlots {
    /// Slots for a pool of `max_connections`.
    pub(crate) fn new(max_connections: u32) -> Self {
        let n = (max_connections / 4).max(1) as usize;
        Self(Arc::new(Semaphore::new(n)))
    }
}

impl PgStore {
    /// Removes uploads whose lease lapsed (their process died mid-upload): the pending
    /// package rows and their chunks. Returns how many. Also done whenever an upload starts.
    pub async fn purge_abandoned_uploads(&self) -> Result<u64, StoreError> {
        purge(&self.pool).await
    }
}

async fn purge(pool: &PgPool) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "DELETE FROM ota_packages
         WHERE upload_until IS NOT NULL AND upload_until < clock_timestamp()",
    )
    .execute(pool)
    .await
    .map_err(map)?;
    Ok(done.rows_affected())
}

/// A pending package row: deleted (with its chunks) unless the upload completes.
struct Pending {
    pool: PgPool,
    id: PackageId,
    done: bool,
}

impl Pending {
    /// Deletes the pending row and its chunks now.
    async fn discard(mut self) {
        self.done = true;
        // A failure here leaves the row to lapse and be purged.
        let _ = discard(&self.pool, self.id).await;
    }
}

async fn discard(pool: &PgPool, id: PackageId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM ota_packages WHERE id = $1 AND upload_until IS NOT NULL")
        .bind(id.0)
        .execute(pool)
        .await
        .map(|_| ())
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // The upload future was dropped mid-way: delete what it wrote, in the background.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (pool, id) = (self.pool.clone(), self.id);
            runtime.spawn(async move {
                let _ = discard(&pool, id).await;
            });
        }
    }
}

fn lease_micros() -> i64 {
    i64::try_from(UPLOAD_LEASE.as_micros()).unwrap_or(i64::MAX)
}

fn abandoned(id: PackageId) -> StoreError {
    StoreError::Unavailable {
        message: format!(
            "the upload of package {id} was given up as abandoned (no sign of life for {} s); nothing was kept",
            UPLOAD_LEASE.as_secs()
        ),
    }
}

/// Writes chunk `seq` and renews the lease, in one statement; fails when the pending row is
/// gone (purged as abandoned).
async fn write_chunk(
    store: &PgStore,
    id: PackageId,
    seq: i32,
    data: &[u8],
) -> Result<(), StoreError> {
    let _slot = store
        .uploads
        .0
        .acquire()
        .await
        .map_err(|_| StoreError::Unavailable {
            message: "the store is closing".into(),
        })?;
    let done = sqlx::query(
        "WITH p AS (
            UPDATE ota_packages
            SET upload_until = clock_timestamp() + $4::float8 * interval '1 microsecond'
            WHERE id = $1 AND upload_until IS NOT NULL
            RETURNING id
         )
         INSERT INTO ota_package_chunks (package_id, seq, data) SELECT id, $2, $3 FROM p",
    )
    .bind(id.0)
    .bind(seq)
    .bind(data)
    .bind(lease_micros() as f64)
    .execute(&store.pool)
    .await
    .map_err(map)?;
    if done.rows_affected() == 0 {
        return Err(abandoned(id));
    }
    Ok(())
}

/// Renews the lease of a pending upload.
async fn renew(pool: &PgPool, id: PackageId) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE ota_packages SET upload_until = clock_timestamp() + $2::float8 * interval '1 microsecond'
         WHERE id = $1 AND upload_until IS NOT NULL",
    )
    .bind(id.0)
    .bind(lease_micros() as f64)
    .execute(pool)
    .await
    .map_err(map)?;
    if done.rows_affected() == 0 {
        return Err(abandoned(id));
    }
    Ok(())
}

/// Stores `package` and its content; see
/// [`PackageStore::create_package_with_content`](ota_core::store::PackageStore::create_package_with_content).
pub(crate) async fn upload(
    store: &PgStore,
    mut package: Package,
    expected: Option<Checksum>,
    max_size: Option<u64>,
    content: ByteStream,
    audit: Option<AuditOf<'_, Package>>,
) -> Result<Package, StoreError> {
    package.source = PackageSource::Stored;
    // An abandoned upload of the same title and version must not hold the key.
    purge(&store.pool).await?;
    sqlx::query(
        "INSERT INTO ota_packages (id, tenant_id, kind, title, version, chunk_size, doc, upload_until)
         VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp() + $8::float8 * interval '1 microsecond')",
    )
    .bind(package.id.0)
    .bind(package.tenant_id.0)
    .bind(crate::codec::name_of(&package.kind))
    .bind(&package.title)
    .bind(&package.version)
    .bind(CHUNK_SIZE as i32)
    .bind(to_json(&package)?)
    .bind(lease_micros() as f64)
    .execute(&store.pool)
    .await
    .map_err(conflict_as(
        "package",
        format!(
            "{} (or an upload of it is in progress)",
            crate::packages::duplicate(&package)
        ),
    ))?;
    let pending = Pending {
        pool: store.pool.clone(),
        id: package.id,
        done: false,
    };
    match stream_in(store, &mut package, expected, max_size, content).await {
        Ok(()) => {}
        Err(e) => {
            pending.discard().await;
            return Err(e);
        }
    }
    // Complete and verified: visible from now on, in one statement, committed with the
    // upload's audit entry.
    let entry = audit.map(|of| of(&package));
    let done = async {
        let mut tx = crate::audit::begin(&store.pool, entry.as_ref()).await?;
        let done = sqlx::query(
            "UPDATE ota_packages SET doc = $2, upload_until = NULL
             WHERE id = $1 AND upload_until IS NOT NULL",
        )
        .bind(package.id.0)
        .bind(to_json(&package)?)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        if done.rows_affected() == 1 {
            tx.commit().await.map_err(map)?;
        }
        Ok::<_, StoreError>(done.rows_affected())
    }
    .await;
    match done {
        Ok(1) => {
            let mut pending = pending;
            pending.done = true;
            Ok(package)
        }
        Ok(_) => Err(abandoned(package.id)),
        Err(e) => {
            pending.discard().await;
            Err(e)
        }
    }
}

/// Reads the content into chunks, verifying as it goes; sets size and checksums.
async fn stream_in(
    store: &PgStore,
    package: &mut Package,
    expected: Option<Checksum>,
    max_size: Option<u64>,
    mut content: ByteStream,
) -> Result<(), StoreError> {
    let mut hasher = ContentHasher::new(expected);
    let mut buffer = BytesMut::with_capacity(CHUNK_SIZE);
    let mut seq = 0i32;
    let mut renewed = Instant::now();
    while let Some(piece) = content.next().await {
        let mut piece: Bytes = piece?;
        hasher.update(&piece);
        if let Some(limit) = max_size {
            if hasher.bytes_seen() > limit {
                return Err(StoreError::TooLarge { limit });
            }
        }
        while !piece.is_empty() {
            let take = (CHUNK_SIZE - buffer.len()).min(piece.len());
            buffer.extend_from_slice(&piece.split_to(take));
            if buffer.len() == CHUNK_SIZE {
                write_chunk(store, package.id, seq, &buffer).await?;
                renewed = Instant::now();
                buffer.clear();
                seq += 1;
            }
        }
        // A slow sender: keep the lease alive between chunks.
        if renewed.elapsed() > UPLOAD_LEASE / 4 {
            renew(&store.pool, package.id).await?;
            renewed = Instant::now();
        }
    }
    if !buffer.is_empty() {
        write_chunk(store, package.id, seq, &buffer).await?;
    }
    let digest = hasher.finish()?;
    package.size = Some(digest.size);
    package.checksum = Some(digest.checksum);
    package.sha256 = Some(digest.sha256);
    Ok(())
}
