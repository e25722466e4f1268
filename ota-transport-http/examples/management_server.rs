//! The management API on its own, for trying it out and for API fuzzers (see
//! `scripts/schemathesis-management`): an engine over the memory store, one admin API key.
//!
//! ```text
//! OTA_ADMIN_KEY=secret cargo run -p ota-transport-http --example management_server -- 127.0.0.1:8080
//! curl -H 'Authorization: Bearer secret' http://127.0.0.1:8080/api/ota/v1/packages
//! ```
//!
//! `OTA_ADMIN_KEY` is the admin key (default: a random one, printed); the first argument is
//! the address to listen on (default `127.0.0.1:8080`). The engine ticks every 500 ms. Keys
//! that admins create over the API (`/api-keys`) are kept in the memory store
//! ([`StoredApiKeys`]); the configured admin key is not among them, so it cannot be revoked.

use axum::http::HeaderMap;
use ota_core::engine::{Ota, OtaConfig};
use ota_core::notifier::RecordingNotifier;
use ota_core::{SystemClock, TenantId};
use ota_transport_http::management::{
    ApiKeys, AuthError, Authenticator, Principal, Role, StoredApiKeys,
};
use ota_transport_http::{management_router, ManagementOptions};
use std::sync::Arc;
use std::time::Duration;

/// The configured key first, then the keys made over the API.
struct Either {
    fixed: Arc<ApiKeys>,
    stored: Arc<StoredApiKeys>,
}

#[ota_core::async_trait]
impl Authenticator for Either {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        match self.fixed.authenticate(headers).await {
            Err(AuthError::Invalid(_)) => self.stored.authenticate(headers).await,
            other => other,
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let store = Arc::new(ota_core::memory::MemoryStore::new());
    let stored = Arc::new(StoredApiKeys::new(store.clone(), Arc::new(SystemClock)));
    let ota = Ota::new(
        store,
        Arc::new(RecordingNotifier::new()),
        Arc::new(SystemClock),
        OtaConfig::default(),
    );
    let keys = Arc::new(ApiKeys::new());
    let tenant = TenantId::new();
    match std::env::var("OTA_ADMIN_KEY") {
        Ok(key) if !key.is_empty() => {
            keys.insert_hashed(ApiKeys::hash(&key), tenant, "admin", Role::Admin)
        }
        _ => println!("admin key: {}", keys.issue(tenant, "admin", Role::Admin)),
    }
    let ticker = ota.clone();
    let mut options = ManagementOptions::default();
    options.api_keys = Some(stored.clone());
    let prefix = options.prefix.clone();
    let auth = Arc::new(Either {
        fixed: keys,
        stored,
    });
    let router = management_router(ota, auth, options);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "management API on http://{}{prefix} (OpenAPI: {prefix}/openapi.json)",
        listener.local_addr()?
    );
    // Ticks in this task beside the server (the engine's tick future is not `Send`, so it
    // is not spawned).
    let ticking = async {
        loop {
            if let Err(e) = ticker.tick().await {
                eprintln!("tick failed: {e}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let serving = axum::serve(listener, router).with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    tokio::select! {
        served = serving => served?,
        () = ticking => {}
    }
    Ok(())
}
