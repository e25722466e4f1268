//! The test kit (feature `testing`): a fresh, empty store in a schema of its own, so that
//! tests run in parallel against one database and never see each other's rows.
//!
//! The database is `DATABASE_URL`, or `postgres://postgres@127.0.0.1:5432/test` when unset.
//! When it cannot be reached the call panics with instructions to start one: tests never
//! skip silently. Schemas are named `ota_t_<unix seconds>_<random>`; those older than two
//! hours are dropped when a new one is made.

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

/// A new, empty schema in the test database. Panics with instructions when the database
/// cannot be reached.
pub async fn fresh_database() -> TestDatabase {
    let url = database_url();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{}", unreachable_help(&url, &e)));
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
