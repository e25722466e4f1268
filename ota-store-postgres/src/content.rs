//! Package content in [`CHUNK_SIZE`] `bytea` rows: written from a stream in one transaction,
//! read back one chunk per query for any byte range.

use crate::codec::to_json;
use crate::error::map;
use crate::{PgStore, CHUNK_SIZE};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use ota_core::checksum::{Checksum, ContentHasher};
use ota_core::store::{ByteRange, ByteStream, StoreError};
use ota_core::{Package, PackageId, PackageSource, TenantId};
use sqlx::{PgPool, Postgres, Row, Transaction};

async fn write_chunk(
    tx: &mut Transaction<'static, Postgres>,
    id: PackageId,
    seq: i32,
    data: &[u8],
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO ota_package_chunks (package_id, seq, data) VALUES ($1, $2, $3)")
        .bind(id.0)
        .bind(seq)
        .bind(data)
        .execute(&mut **tx)
        .await
        .map_err(map)?;
    Ok(())
}

/// Stores `package` and its content; see
/// [`PackageStore::create_package_with_content`](ota_core::store::PackageStore::create_package_with_content).
/// Everything happens in one transaction that is rolled back on any failure.
pub(crate) async fn upload(
    store: &PgStore,
    mut package: Package,
    expected: Option<Checksum>,
    max_size: Option<u64>,
    mut content: ByteStream,
) -> Result<Package, StoreError> {
    let mut tx = store.pool.begin().await.map_err(map)?;
    package.source = PackageSource::Stored;
    crate::packages::insert(&mut *tx, &package, Some(CHUNK_SIZE as i32)).await?;
    let mut hasher = ContentHasher::new(expected);
    let mut buffer = BytesMut::with_capacity(CHUNK_SIZE);
    let mut seq = 0i32;
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
                write_chunk(&mut tx, package.id, seq, &buffer).await?;
                buffer.clear();
                seq += 1;
            }
        }
    }
    if !buffer.is_empty() {
        write_chunk(&mut tx, package.id, seq, &buffer).await?;
    }
    let digest = hasher.finish()?;
    package.size = Some(digest.size);
    package.checksum = Some(digest.checksum);
    package.sha256 = Some(digest.sha256);
    sqlx::query("UPDATE ota_packages SET doc = $2 WHERE id = $1")
        .bind(package.id.0)
        .bind(to_json(&package)?)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    tx.commit().await.map_err(map)?;
    Ok(package)
}

/// Streams `range` of a package's content, one chunk query at a time.
pub(crate) async fn download(
    store: &PgStore,
    tenant: TenantId,
    id: PackageId,
    range: ByteRange,
) -> Result<ByteStream, StoreError> {
    let row = sqlx::query(
        "SELECT chunk_size, (doc->>'size')::bigint AS size FROM ota_packages
         WHERE id = $1 AND tenant_id = $2 AND upload_until IS NULL",
    )
    .bind(id.0)
    .bind(tenant.0)
    .fetch_optional(&store.pool)
    .await
    .map_err(map)?
    .ok_or_else(|| StoreError::not_found("package", id))?;
    let chunk_size: Option<i32> = row.try_get("chunk_size").map_err(map)?;
    let size: Option<i64> = row.try_get("size").map_err(map)?;
    let (Some(chunk_size), Some(size)) = (chunk_size, size) else {
        return Err(StoreError::not_found("package content", id));
    };
    let chunk = u64::try_from(chunk_size.max(1)).unwrap_or(1);
    let (start, end) = range.resolve(u64::try_from(size).unwrap_or(0))?;
    let reader = ChunkReader {
        pool: store.pool.clone(),
        id,
        chunk,
        at: start,
        end,
    };
    Ok(Box::pin(futures_util::stream::unfold(
        Some(reader),
        |reader| async move {
            let mut reader = reader?;
            if reader.at >= reader.end {
                return None;
            }
            match reader.next().await {
                Ok(bytes) => Some((Ok(bytes), Some(reader))),
                Err(e) => Some((Err(e), None)),
            }
        },
    )))
}

/// Where a download is.
struct ChunkReader {
    pool: PgPool,
    id: PackageId,
    chunk: u64,
    at: u64,
    end: u64,
}

impl ChunkReader {
    /// The bytes from `at` to the end of its chunk (or of the range).
    async fn next(&mut self) -> Result<Bytes, StoreError> {
        let seq = self.at / self.chunk;
        let offset = self.at % self.chunk;
        let len = (self.chunk - offset).min(self.end - self.at);
        let data: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT substring(data FROM $3 FOR $4) FROM ota_package_chunks
             WHERE package_id = $1 AND seq = $2",
        )
        .bind(self.id.0)
        .bind(i32::try_from(seq).unwrap_or(i32::MAX))
        .bind(i32::try_from(offset + 1).unwrap_or(i32::MAX))
        .bind(i32::try_from(len).unwrap_or(i32::MAX))
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        let data = data.ok_or_else(|| StoreError::not_found("package content", self.id))?;
        if data.len() as u64 != len {
            return Err(StoreError::Backend {
                message: format!(
                    "package {} chunk {seq} holds {} bytes where {len} were expected",
                    self.id,
                    data.len()
                ),
            });
        }
        self.at += len;
        Ok(Bytes::from(data))
    }
}
