//! The test kit (feature `testing`): a fresh, empty store in a schema of its own, so that
//! tests run in parallel against one database and never see each other's rows.
//!
//! The database is `DATABASE_URL`, or `postgres://postgres@127.0.0.1:5432/test` when unset.
//! When it cannot be reached the call panics with instructions to start one: tests never
//! skip silently. Schemas are named `ota_t_<unix seconds>_<random>`; those older than two
//! hours are dropped when a new one is made.
//!
//! Tests that stop and start their database server use a [`cluster::PrivateCluster`] of
//! their own instead.

pub mod cluster;

use crate::{PgStore, PgStoreOptions};
use sqlx::postgres::PgPoolOptions;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The database tests use when `DATABASE_URL` is not set.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Test schemas older than this are dropped.
const STALE_AFTER: Duration = Duration::from_secs(2 * 3600);

/// The URL of the test database.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

/// Where a fresh store lives: its database URL and schema, for handing to another process.
#[derive(Clone, Debug)]
pub struct TestDatabase {
    /// The database URL.
    pub url: String,
    /// The schema holding the store's tables.
    pub schema: String,
}

impl TestDatabase {
    /// Options to connect another store (or process) to the same tables.
    pub fn options(&self) -> PgStoreOptions {
        PgStoreOptions::new(self.url.clone())
            .schema(self.schema.clone())
            .max_connections(4)
    }

    /// Drops the schema and everything in it (for tests that leave large data behind).
    /// Schemas left behind are dropped anyway once they are two hours old.
    pub async fn drop_schema(&self) {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("{}", unreachable_help(&self.url, &e)));
        sqlx::query(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            crate::migrate::quote_identifier(&self.schema)
        ))
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("cannot drop schema {}: {e}", self.schema));
        pool.close().await;
    }
}

fn unreachable_help(url: &str, error: &dyn std::fmt::Display) -> String {
    format!(
        "cannot reach the test database at {url}: {error}\n\
         Start PostgreSQL (on Debian: `pg_ctlcluster <version> main start`, or \
         `apt-get install -y postgresql` when it is missing; `scripts/services` does both), \
         make sure database `test` exists and user `postgres` may connect over TCP, \
         or set DATABASE_URL to a database you can use."
    )
}

/// Drops test schemas older than [`STALE_AFTER`]; failures are ignored (another test may
/// be dropping the same ones).
async fn drop_stale(pool: &sqlx::PgPool, now: u64) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'ota\\_t\\_%'",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    for name in names {
        let made: Option<u64> = name
            .strip_prefix("ota_t_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse().ok());
        if made.is_some_and(|m| m + STALE_AFTER.as_secs() < now) {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .execute(pool)
                .await;
        }
    }
}

/// A pool of one connection to `url`, or what to do to get one.
async fn reach(url: &str, timeout: Duration) -> Result<sqlx::PgPool, String> {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(timeout)
        .connect(url)
        .await
        .map_err(|e| unreachable_help(url, &e))
}

/// A new, empty schema in the test database. Panics with instructions when the database
/// cannot be reached.
pub async fn fresh_database() -> TestDatabase {
    let url = database_url();
    let pool = reach(&url, Duration::from_secs(10))
        .await
        .unwrap_or_else(|help| panic!("{help}"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    drop_stale(&pool, now).await;
    pool.close().await;
    let schema = format!("ota_t_{now}_{}", uuid::Uuid::now_v7().simple());
    TestDatabase { url, schema }
}

/// A fresh, empty store (migrated) in a schema of its own, with a small pool.
pub async fn fresh_store() -> PgStore {
    let db = fresh_database().await;
    PgStore::connect(db.options())
        .await
        .unwrap_or_else(|e| panic!("{}", unreachable_help(&db.url, &e)))
}

/// `len` bytes of deterministic, incompressible content (xorshift64* from `seed`), produced
/// piece by piece (`piece` bytes each) so that a test can stream gigabytes without holding
/// them.
pub fn generated_content(len: u64, piece: usize, seed: u64) -> ota_core::store::ByteStream {
    let piece = piece.max(8) as u64;
    let state = (0u64, seed | 1);
    Box::pin(futures_util::stream::unfold(
        state,
        move |(sent, mut x)| async move {
            if sent >= len {
                return None;
            }
            let n = piece.min(len - sent) as usize;
            let mut out = Vec::with_capacity(n + 8);
            while out.len() < n {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
            }
            out.truncate(n);
            Some((Ok(bytes::Bytes::from(out)), (sent + n as u64, x)))
        },
    ))
}

/// This process's resident memory, read from `/proc/self/status` (Linux).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResidentMemory {
    /// Resident set size now, in bytes (`VmRSS`).
    pub current: u64,
    /// The highest resident set size since the last [`ResidentMemory::reset_peak`], in bytes
    /// (`VmHWM`).
    pub peak: u64,
}

impl ResidentMemory {
    /// Reads the figures; `None` where `/proc/self/status` is not available.
    pub fn read() -> Option<Self> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let field = |name: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            let kib: u64 = line[name.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(kib * 1024)
        };
        Some(Self {
            current: field("VmRSS:")?,
            peak: field("VmHWM:")?,
        })
    }

    /// Resets the peak to the current figure (writes `5` to `/proc/self/clear_refs`); returns
    /// whether it could.
    pub fn reset_peak() -> bool {
        std::fs::write("/proc/self/clear_refs", "5").is_ok()
    }
}

/// What [`content_round_trip`] measured.
#[derive(Clone, Copy, Debug)]
pub struct ContentRoundTrip {
    /// Content size in bytes.
    pub bytes: u64,
    /// Seconds to upload (stream in, chunk, hash, commit).
    pub upload_secs: f64,
    /// Seconds to download the whole content and hash it.
    pub download_secs: f64,
    /// Seconds to produce and hash the same content with no store: the reference.
    pub reference_secs: f64,
    /// Peak resident memory growth during the upload, in bytes (`None` off Linux).
    pub upload_growth: Option<u64>,
    /// Peak resident memory growth during the download, in bytes (`None` off Linux).
    pub download_growth: Option<u64>,
}

/// Runs `f`, returning its output and how far the process's resident memory rose above what
/// it was before, at its peak.
async fn peak_growth<T>(f: impl std::future::Future<Output = T>) -> (T, Option<u64>) {
    let before = ResidentMemory::reset_peak()
        .then(ResidentMemory::read)
        .flatten();
    let out = f.await;
    let growth = before
        .and_then(|b| ResidentMemory::read().map(|after| after.peak.saturating_sub(b.current)));
    (out, growth)
}

/// Uploads `bytes` of generated content to `store` as a new package of a new tenant, reads
/// it back whole, and checks size and SHA-256 both ways. Measures time and peak memory growth
/// of each direction; panics on any failure or mismatch.
pub async fn content_round_trip(store: &PgStore, bytes: u64) -> ContentRoundTrip {
    use futures_util::StreamExt;
    use ota_core::checksum::ContentHasher;
    use ota_core::store::{ByteRange, PackageStore};
    use ota_core::{Compatibility, Package, PackageId, PackageKind, PackageSource, TenantId};
    use std::time::Instant;

    const PIECE: usize = 256 * 1024;
    const SEED: u64 = 0x0007_a5ee_d5ee_d000;

    let started = Instant::now();
    let mut reference = ContentHasher::new(None);
    let mut content = generated_content(bytes, PIECE, SEED);
    while let Some(piece) = content.next().await {
        reference.update(&piece.expect("generated content"));
    }
    let reference = reference.finish().expect("no expected checksum");
    let reference_secs = started.elapsed().as_secs_f64();

    let tenant = TenantId::new();
    let package = Package {
        id: PackageId::new(),
        tenant_id: tenant,
        kind: PackageKind::Firmware,
        title: "large".to_string(),
        version: format!("{bytes}"),
        compatibility: Compatibility::AnyProfile,
        source: PackageSource::Stored,
        size: None,
        checksum: None,
        sha256: None,
        content_type: Some("application/octet-stream".to_string()),
        file_name: None,
        description: None,
        tag: None,
        created_at: chrono::Utc::now(),
        created_by: "content_round_trip".to_string(),
    };
    let started = Instant::now();
    let (stored, upload_growth) = peak_growth(store.create_package_with_content(
        package,
        Some(reference.checksum.clone()),
        None,
        generated_content(bytes, PIECE, SEED),
        None,
    ))
    .await;
    let stored = stored.expect("upload");
    let upload_secs = started.elapsed().as_secs_f64();
    assert_eq!(stored.size, Some(bytes));
    assert_eq!(stored.sha256.as_deref(), Some(reference.sha256.as_str()));

    let started = Instant::now();
    let (read, download_growth) = peak_growth(async {
        let mut stream = store
            .read_content(tenant, stored.id, ByteRange::FULL)
            .await
            .expect("download");
        let mut hasher = ContentHasher::new(None);
        while let Some(piece) = stream.next().await {
            hasher.update(&piece.expect("content chunk"));
        }
        hasher.finish().expect("no expected checksum")
    })
    .await;
    let download_secs = started.elapsed().as_secs_f64();
    assert_eq!(read.size, bytes);
    assert_eq!(read.sha256, reference.sha256);
    ContentRoundTrip {
        bytes,
        upload_secs,
        download_secs,
        reference_secs,
        upload_growth,
        download_growth,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_database_fails_with_instructions() {
        // Port 1 on the loopback: nothing listens there.
        let help = reach(
            "postgres://postgres@127.0.0.1:1/test",
            Duration::from_secs(2),
        )
        .await
        .expect_err("nothing listens on port 1");
        assert!(help.contains("127.0.0.1:1/test"), "{help}");
        assert!(help.contains("pg_ctlcluster"), "{help}");
        assert!(help.contains("apt-get install -y postgresql"), "{help}");
        assert!(help.contains("DATABASE_URL"), "{help}");
    }
}
