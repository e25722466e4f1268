//! The management REST API: what operators, dashboards and platform code call to manage
//! packages, devices, assignments, updates, campaigns and scheduled events.
//!
//! [`management_router`] builds an [`axum::Router`] under a versioned prefix
//! ([`ManagementOptions::prefix`], `/api/ota/v1` by default). Every route takes and gives
//! JSON (package content and CSV files excepted), lists page by keyset (`limit`, `cursor`),
//! callers authenticate through an [`Authenticator`] ([`StoredApiKeys`], keys kept in a
//! store, and [`ApiKeys`], keys in memory, are the ready ones) and are
//! checked against the route's [`Access`], and every error answers `{"code","message"}`
//! ([`ErrorBody`]). The OpenAPI 3.1 document, generated from the same handlers that serve
//! the routes, is served at `<prefix>/openapi.json` ([`openapi_document`]).
//!
//! Every action goes through the engine, which writes it to the audit log with the caller's
//! principal as the actor.

mod api_keys;
mod assignments;
mod audit_log;
pub mod auth;
mod campaign_actions;
mod campaigns;
mod common;
mod content;
mod device_edits;
mod devices;
pub mod error;
mod extract;
mod fleet;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fuzz_inputs;
mod openapi;
mod packages;
pub mod paging;
mod schedules;
pub mod stored_keys;
mod updates;

pub use auth::{Access, ApiKeys, AuthError, Authenticator, Principal, Role};
pub use error::{ApiError, ErrorBody};
pub use stored_keys::StoredApiKeys;

use axum::Router;
use extract::AppState;
use ota_core::engine::Ota;
use std::sync::Arc;

/// How the management API behaves. `Default` gives the values documented per field.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ManagementOptions {
    /// Where the API lives. Default: `/api/ota/v1`.
    pub prefix: String,
    /// Largest package upload in bytes (`None`: only the engine's own limit,
    /// `OtaConfig::max_package_size`). Default: `None`.
    pub max_upload_size: Option<u64>,
    /// Largest JSON body in bytes. Default: 1 MiB.
    pub max_json_body: usize,
    /// Largest CSV upload (devices, campaign device lists) in bytes. Default: 64 MiB.
    pub max_csv_body: usize,
    /// Most store items a filtered list (package search, audit filters) reads per request
    /// before it answers with what it found and a cursor to go on. Default: 20,000.
    pub max_scan: usize,
    /// The keys that admins manage over the API (`/api-keys`: create, list, revoke); usually
    /// the same [`StoredApiKeys`] that is the router's authenticator. `None`: those routes
    /// answer 404 (keys come from the platform's configuration). Default: `None`.
    pub api_keys: Option<Arc<StoredApiKeys>>,
}

impl Default for ManagementOptions {
    fn default() -> Self {
        Self {
            prefix: "/api/ota/v1".to_string(),
            max_upload_size: None,
            max_json_body: 1024 * 1024,
            max_csv_body: 64 * 1024 * 1024,
            max_scan: 20_000,
            api_keys: None,
        }
    }
}

/// The management API over `engine`, with callers authenticated by `auth`.
pub fn management_router(
    engine: Ota,
    auth: Arc<dyn Authenticator>,
    options: ManagementOptions,
) -> Router {
    let state = AppState {
        ota: engine,
        auth,
        options: Arc::new(options),
    };
    openapi::router(state)
}

/// The OpenAPI document of the management API as served under `options.prefix`.
pub fn openapi_document(options: &ManagementOptions) -> utoipa::openapi::OpenApi {
    openapi::document(&options.prefix)
}
