//! The OTA store on PostgreSQL: every store trait of [`ota_core::store`] with sqlx.
//!
//! - Migrations are embedded and applied by [`PgStore::connect`] (versioned, idempotent, safe
//!   when several instances start at once: they serialize on an advisory lock).
//! - Package content is kept in 1 MiB `bytea` chunks, written from a stream inside one
//!   transaction (nothing is kept when the checksum does not match) and read back chunk by
//!   chunk for any byte range, so a 2 GiB package never sits in memory.
//! - Claims use `FOR UPDATE SKIP LOCKED` with leases, and paces live in the database, so
//!   several engine instances over one database never notify the same attempt twice and
//!   share one pace.
//! - Campaign materialization is one `INSERT ... SELECT`; campaign counters change in the
//!   same statement as the transitions that move them. Transitions of concurrent callers are
//!   written together, one statement and one commit per batch
//!   ([`PgStoreOptions::write_batch`]).
//! - Errors map into [`StoreError`]: lost connections, restarts,
//!   serialization failures and deadlocks are
//!   [`Unavailable`](ota_core::store::StoreError::Unavailable) (transient); the pool reconnects
//!   by itself.
//!
//! ```no_run
//! # async fn run() -> Result<(), ota_core::store::StoreError> {
//! use ota_store_postgres::{PgStore, PgStoreOptions};
//! let store = PgStore::connect(PgStoreOptions::new("postgres://postgres@127.0.0.1:5432/test")).await?;
//! # let _ = store; Ok(()) }
//! ```
#![warn(missing_docs)]

mod assignments;
mod audit;
mod batcher;
mod campaigns;
mod codec;
mod content;
mod devices;
mod error;
mod latest_batch;
mod migrate;
mod pace;
mod packages;
mod schedules;
mod transition_batch;
mod updates;

#[cfg(feature = "testing")]
pub mod testing;

pub use migrate::MIGRATIONS;

use ota_core::store::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The size of the chunks package content is stored in.
pub const CHUNK_SIZE: usize = 1024 * 1024;

/// How to connect.
#[derive(Clone, Debug)]
pub struct PgStoreOptions {
    /// A `postgres://` URL.
    pub url: String,
    /// A schema to keep the tables in (created when missing); `None` uses the connection's
    /// default search path (usually `public`).
    pub schema: Option<String>,
    /// Most connections the pool opens (default 16).
    pub max_connections: u32,
    /// How long to wait for a free connection or for the server (default 10 s).
    pub acquire_timeout: Duration,
    /// Most update transitions (and latest-update reads) of concurrent callers put in one
    /// statement (default 256; 1 turns batching off). See [`PgStoreOptions::write_batch`].
    pub write_batch: usize,
}

impl PgStoreOptions {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: None,
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
            write_batch: DEFAULT_WRITE_BATCH,
        }
    }

    /// Keeps the tables in `schema`.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// At most `n` connections.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Writes up to `n` update transitions of concurrent callers in one statement and one
    /// commit (group commit), and reads up to `n` devices' latest updates in one query. Each
    /// caller still gets its own answer; a lone caller is not delayed. 1 turns this off.
    pub fn write_batch(mut self, n: usize) -> Self {
        self.write_batch = n.max(1);
        self
    }
}

/// The default of [`PgStoreOptions::write_batch`].
pub const DEFAULT_WRITE_BATCH: usize = 256;

/// Every store trait on PostgreSQL. Cheap to clone: clones share the pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    transitions: Arc<batcher::Batcher<transition_batch::TransitionJob>>,
    latest: Arc<batcher::Batcher<latest_batch::LatestJob>>,
}

/// Whether `name` is a plain SQL identifier (letters, digits, `_`, not starting with a digit).
fn valid_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

impl PgStore {
    /// Connects, creates the schema when one is named and missing, and applies the
    /// migrations that have not run yet.
    pub async fn connect(options: PgStoreOptions) -> Result<Self, StoreError> {
        let mut connect =
            PgConnectOptions::from_str(&options.url).map_err(|e| StoreError::Backend {
                message: format!("invalid PostgreSQL URL: {e}"),
            })?;
        if let Some(schema) = &options.schema {
            if !valid_identifier(schema) {
                return Err(StoreError::Backend {
                    message: format!(
                        "invalid schema name {schema:?}: use letters, digits and _ only"
                    ),
                });
            }
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect.clone())
                .await
                .map_err(error::map)?;
            migrate::create_schema(&pool, schema).await?;
            pool.close().await;
            // Quoted: unquoted, a keyword such as `user` would not parse and capitals
            // would fold to lower case.
            connect = connect.options([("search_path", migrate::quote_identifier(schema))]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(true)
            .connect_with(connect)
            .await
            .map_err(error::map)?;
        migrate::run(&pool).await?;
        Ok(Self::with_batch(pool, options.write_batch))
    }

    /// A store over an existing pool. The pool's connections must see the store's tables
    /// (run [`PgStore::migrate`] once). Transitions are batched as by default
    /// ([`DEFAULT_WRITE_BATCH`]).
    pub fn from_pool(pool: PgPool) -> Self {
        Self::with_batch(pool, DEFAULT_WRITE_BATCH)
    }

    fn with_batch(pool: PgPool, write_batch: usize) -> Self {
        Self {
            pool,
            transitions: Arc::new(batcher::Batcher::new(write_batch)),
            latest: Arc::new(batcher::Batcher::new(write_batch)),
        }
    }

    /// Applies the migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate::run(&self.pool).await
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
