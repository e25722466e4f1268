//! The store the server runs on: in memory by default, PostgreSQL with `--database-url`;
//! and the readiness probe of `/readyz`.

use super::config::Config;
use ota_core::memory::MemoryStore;
use ota_core::store::{ApiKeyStore, Store};
use ota_store_postgres::{PgStore, PgStoreOptions};
use std::sync::Arc;
use std::time::Duration;

/// How long the readiness probe waits for the store.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The store behind the engine.
#[derive(Clone)]
pub enum Backend {
    /// In memory: nothing outlives the process.
    Memory,
    /// PostgreSQL.
    Postgres(PgStore),
}

impl Backend {
    /// `memory` or `postgres`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Whether the store answers (PostgreSQL: `SELECT 1` within a few seconds).
    pub async fn ready(&self) -> Result<(), String> {
        match self {
            Self::Memory => Ok(()),
            Self::Postgres(store) => {
                let probe = ota_store_postgres::sqlx::query("SELECT 1").execute(store.pool());
                match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("PostgreSQL does not answer: {e}")),
                    Err(_) => Err(format!(
                        "PostgreSQL gave no answer within {} s",
                        PROBE_TIMEOUT.as_secs()
                    )),
                }
            }
        }
    }

    /// Closes the store's connections (after the engine's last call).
    pub async fn close(&self) {
        if let Self::Postgres(store) = self {
            store.close().await;
        }
    }
}

/// The opened store: the engine's, the API keys' (the same tables), and what it is.
pub struct Opened {
    /// The store of the engine.
    pub store: Arc<dyn Store>,
    /// The store of the management API keys.
    pub api_keys: Arc<dyn ApiKeyStore>,
    /// What it is.
    pub backend: Backend,
}

/// Opens the store `config` names.
pub async fn open(config: &Config) -> Result<Opened, String> {
    let Some(url) = &config.database_url else {
        tracing::warn!(
            "in-memory store: nothing is persisted, every package, device and campaign is \
             lost when the server stops (use --database-url or DATABASE_URL for PostgreSQL)"
        );
        let memory = Arc::new(MemoryStore::new());
        return Ok(Opened {
            store: memory.clone(),
            api_keys: memory,
            backend: Backend::Memory,
        });
    };
    let mut options =
        PgStoreOptions::new(url.clone()).max_connections(config.database_max_connections);
    if let Some(schema) = &config.database_schema {
        options = options.schema(schema.clone());
    }
    let store = PgStore::connect(options)
        .await
        .map_err(|e| format!("cannot open the PostgreSQL store: {e}"))?;
    tracing::info!(
        schema = config.database_schema.as_deref().unwrap_or("(search path)"),
        "PostgreSQL store ready (migrations applied)"
    );
    Ok(Opened {
        store: Arc::new(store.clone()),
        api_keys: Arc::new(store.clone()),
        backend: Backend::Postgres(store),
    })
}
