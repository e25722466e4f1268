//! The HTTP router: management API, device API, `/metrics`, `/healthz`, `/readyz`, and the
//! dashboard at `/`.

use super::config::Config;
use super::health::{self, Readiness};
use super::metrics::{self, Metrics, MetricsState};
use super::store::Backend;
use super::transports::Transports;
use crate::dashboard::{dashboard_router_with, DashboardOptions};
use axum::routing::get;
use axum::Router;
use ota_core::engine::Ota;
use ota_transport_http::management::{ManagementOptions, StoredApiKeys};
use ota_transport_http::{device_router, management_router, DeviceApiOptions};
use std::sync::Arc;

/// Everything the router is built from.
pub struct RouterParts<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// The engine.
    pub ota: Ota,
    /// The management API's keys (its authenticator, managed at `/api-keys`).
    pub keys: Arc<StoredApiKeys>,
    /// The transports (for the long-poll notifier and the live gauges).
    pub transports: &'a Transports,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// What `/readyz` checks.
    pub readiness: Readiness,
}

/// The server's HTTP router.
pub fn build(parts: RouterParts<'_>) -> Result<Router, String> {
    let RouterParts {
        config,
        ota,
        keys,
        transports,
        metrics,
        readiness,
    } = parts;
    let mut management = ManagementOptions::default();
    management.prefix = config.management_prefix.clone();
    management.max_upload_size = Some(config.max_upload_size);
    management.api_keys = Some(keys.clone());

    let rate_limit = config
        .device_rate_limit
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| format!("--device-rate-limit: {e}"))?;
    let mut device_options = DeviceApiOptions::new(transports.http.clone())
        .rate_limit(rate_limit)
        .token_cache_ttl(config.device_token_cache_ttl);
    if matches!(readiness.backend, Backend::Postgres(_)) {
        // Other instances may share the store: notices of devices that poll over HTTP are
        // delivered by their reads (see `DeviceApiOptions::deliver_notices_on_read`).
        device_options = device_options.deliver_notices_on_read(true);
    }
    let devices = device_router(ota.clone(), device_options).layer(
        axum::middleware::from_fn_with_state(metrics.clone(), metrics::count_bytes_served),
    );
    let http = transports.http.clone();
    let mqtt = transports.mqtt.as_ref().map(|m| m.registry().clone());
    let refresh = move |m: &Metrics| {
        m.http_waiting
            .set(i64::try_from(http.waiting_devices()).unwrap_or(i64::MAX));
        let connected = mqtt.as_ref().map_or(0, |r| r.connected_count());
        m.mqtt_connected
            .set(i64::try_from(connected).unwrap_or(i64::MAX));
    };
    let metrics_state = MetricsState {
        metrics,
        refresh: Arc::new(refresh),
    };

    Ok(Router::new()
        .route("/healthz", get(health::healthz))
        .merge(
            Router::new()
                .route("/readyz", get(health::readyz))
                .with_state(readiness),
        )
        .merge(
            Router::new()
                .route("/metrics", get(metrics::serve))
                .with_state(metrics_state),
        )
        .merge(dashboard(&config.management_prefix))
        .merge(devices)
        .merge(management_router(ota, keys, management)))
}

/// The dashboard at `/`, calling the management API under `management_prefix`.
fn dashboard(management_prefix: &str) -> Router {
    dashboard_router_with(&DashboardOptions {
        api_prefix: management_prefix.to_string(),
        ..DashboardOptions::default()
    })
}
