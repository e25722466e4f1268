//! Package content in [`CHUNK_SIZE`] `bytea` rows, read back one chunk per query for any
//! byte range (written by [`crate::upload`]).

use crate::error::map;
use crate::PgStore;
use bytes::Bytes;
use ota_core::store::{ByteRange, ByteStream, StoreError};
use ota_core::{PackageId, TenantId};
use sqlx::{PgPool, Row};

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
