//! The OTA store on PostgreSQL: every store trait of [`ota_core::store`] with sqlx.
//!
//! - Migrations are embedded and applied by [`PgStore::connect`] (versioned, idempotent, safe
//!   when several instances start at once: they serialize on an advisory lock).
//! - Package content is kept in 1 MiB `bytea` chunks, written from a stream one short
//!   transaction per chunk under a pending package row that becomes visible only when the
//!   content is complete and verified (nothing is kept otherwise; see [`UPLOAD_LEASE`]), and
//!   read back chunk by chunk for any byte range, so a 2 GiB package never sits in memory.
//! - Claims use `FOR UPDATE SKIP LOCKED` with leases, and paces live in the database, so
//!   several engine instances over one database never notify the same attempt twice and
//!   share one pace.
//! - Notices go through an outbox table written in the same statement as the release they
//!   announce, and each write is announced with `NOTIFY` on
//!   [`PgStore::outbox_channel`] (see [`ota_core::store::NoticeOutbox`]);
//!   [`PgStore::outbox_wakeups`] listens to it as a stream of wake-ups that reconnects by
//!   itself, for the instance holding a device's connection.
//! - Campaign materialization is one `INSERT ... SELECT`; campaign counters change in the
//!   same statement as the transitions that move them. Transitions of concurrent callers are
//!   written together, one statement and one commit per batch
//!   ([`PgStoreOptions::write_batch`]).
//! - Errors map into [`StoreError`]: lost connections, restarts,
//!   serialization failures and deadlocks are
//!   [`Unavailable`](ota_core::store::StoreError::Unavailable) (transient); the pool reconnects
//!   by itself.
//! - The schema reads well in psql: times are `timestamptz` (written truncated to the
//!   microsecond, so a time of whole microseconds, as `ota_core::SystemClock` gives, reads
//!   back exactly), states and kinds are their names, and every table and column has a
//!   comment. The crate's README has queries for operators.
//!
//! - Connecting checks the URL first (`postgres://` or `postgresql://`), then makes one
//!   connection within [`PgStoreOptions::connect_timeout`] (5 s by default); a failure names
//!   what was tried (user, host, port, database) and why it failed: connection refused, a host
//!   name that does not resolve, authentication, a missing database, no answer in time.
//!
//! ```no_run
//! # async fn run() -> Result<(), ota_core::store::StoreError> {
//! use ota_store_postgres::{PgStore, PgStoreOptions};
//! let options = PgStoreOptions::new("postgres://postgres@127.0.0.1:5432/test").schema("ota");
//! let store = PgStore::connect(options.clone()).await?;
//! // ... hand `std::sync::Arc::new(store.clone())` to the engine ...
//! store.close().await; // at shutdown: waits for the connections to close
//! // Removing the store's data for good (tests, tear-down): drop its schema.
//! PgStore::drop_schema(&options).await?;
//! # Ok(()) }
//! ```
//!
//! The pool is sqlx's [`PgPool`] ([`PgStore::pool`]); the crate re-exports [`sqlx`] so that
//! a platform can run its own queries on it without a dependency of its own.
//!
//! # Features
//!
// The module `testing` exists only with its feature: the link to it is written only then, so
// that the documentation builds with and without the feature.
#![cfg_attr(
    feature = "testing",
    doc = "- `testing`: the test kit ([`testing`]): a fresh store in a schema of its own per test."
)]
#![cfg_attr(
    not(feature = "testing"),
    doc = "- `testing`: the test kit (module `testing`): a fresh store in a schema of its own per test."
)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod active_batch;
mod api_keys;
mod assignments;
mod audit;
mod audited_transition;
mod batcher;
mod campaigns;
mod claim_release;
mod codec;
mod connect;
mod content;
mod current_batch;
mod device_edits;
mod devices;
mod error;
mod hints;
mod latest_batch;
mod migrate;
mod outbox;
mod outbox_listener;
mod pace;
mod packages;
mod release;
mod retention;
mod schedules;
mod time;
mod transition_alone;
mod transition_batch;
mod updates;
mod upload;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

/// The sqlx crate this store is built on (the type of [`PgStore::pool`]).
pub use sqlx;

pub use migrate::MIGRATIONS;
pub use outbox_listener::OutboxWakeups;
pub use upload::UPLOAD_LEASE;

use ota_core::store::StoreError;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::sync::Arc;
use std::time::Duration;

/// The size of the chunks package content is stored in.
pub const CHUNK_SIZE: usize = 1024 * 1024;

/// How to connect: [`PgStoreOptions::new`] with the URL, then the setters. Every default is
/// documented on its field. New fields may be added later (the struct is
/// `#[non_exhaustive]`).
#[derive(Clone, Debug)]
#[non_exhaustive]
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
    /// How long [`PgStore::connect`] waits for its first connection before it reports what
    /// it tried (default 5 s).
    pub connect_timeout: Duration,
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
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            write_batch: DEFAULT_WRITE_BATCH,
        }
    }

    /// Waits at most `timeout` for a free connection of the pool (at least 1 ms).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Waits at most `timeout` for the first connection (at least 1 ms).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
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

/// The default of [`PgStoreOptions::connect_timeout`]: 5 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default of [`PgStoreOptions::write_batch`].
pub const DEFAULT_WRITE_BATCH: usize = 256;

/// Every store trait on PostgreSQL. Cheap to clone: clones share the pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    transitions: Arc<batcher::Batcher<transition_batch::TransitionJob>>,
    latest: Arc<batcher::Batcher<latest_batch::LatestJob>>,
    current: Arc<batcher::Batcher<current_batch::CurrentJob>>,
    active: Arc<batcher::Batcher<active_batch::ActiveJob>>,
    hints: Arc<hints::Hints>,
    uploads: upload::UploadSlots,
}

/// The error for a schema name [`valid_identifier`] refuses.
pub(crate) fn invalid_schema(schema: &str) -> StoreError {
    StoreError::Backend {
        message: format!("invalid schema name {schema:?}: use letters, digits and _ only"),
    }
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
    ///
    /// Errors say what was tried and why it failed: a URL that is not `postgres://` or
    /// `postgresql://`, or an invalid schema name ([`StoreError::Backend`], before any
    /// connection); connection refused, no answer within
    /// [`connect_timeout`](PgStoreOptions::connect_timeout) or a server starting up
    /// ([`StoreError::Unavailable`]: retrying may help); a host name that does not resolve,
    /// failed authentication or a missing database ([`StoreError::Backend`]: fix the URL or
    /// the server).
    pub async fn connect(options: PgStoreOptions) -> Result<Self, StoreError> {
        let mut connect = connect::parse_url(&options.url)?;
        if let Some(schema) = &options.schema {
            if !valid_identifier(schema) {
                return Err(invalid_schema(schema));
            }
        }
        connect::probe(&connect, options.connect_timeout).await?;
        if let Some(schema) = &options.schema {
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
            uploads: upload::UploadSlots::new(pool.options().get_max_connections()),
            pool,
            transitions: Arc::new(batcher::Batcher::new(write_batch)),
            latest: Arc::new(batcher::Batcher::new(write_batch)),
            current: Arc::new(batcher::Batcher::new(write_batch)),
            active: Arc::new(batcher::Batcher::new(write_batch)),
            hints: Arc::default(),
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

    /// Closes every connection of the pool (shared by every clone of this store) and waits
    /// until they are closed. Calls made afterwards fail with
    /// [`StoreError::Unavailable`]. Call it at shutdown, after the engine's last call.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Drops the schema named in `options` with every table and row in it: the way to remove
    /// a store's data for good (tear-down, tests). Nothing else of the database is touched;
    /// a schema that does not exist is not an error. Refused when `options` names no schema
    /// (the tables then share the default schema with whatever else is there; drop them by
    /// hand). Close every store using the schema first.
    pub async fn drop_schema(options: &PgStoreOptions) -> Result<(), StoreError> {
        connect::drop_schema(options).await
    }
}
