//! The device HTTP API, compatible with ThingsBoard's device API (`/api/v1/{token}/...`), with
//! standard resumable downloads of package content.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /api/v1/{token}/attributes?sharedKeys=..&clientKeys=..` | `{"shared":{..}}`: the update attributes |
//! | `GET /api/v1/{token}/attributes/updates?timeout=MS` | long-poll for the next notice |
//! | `POST /api/v1/{token}/attributes`, `POST /api/v1/{token}/telemetry` | device reports |
//! | `GET /api/v1/{token}/firmware?title=&version=&size=&chunk=` (and `/software`) | ThingsBoard's chunked download |
//! | `GET|HEAD /api/v1/{token}/firmware/content` (and `/software/content`, and the routes above without `size`) | resumable download: `Range` (several ranges: `multipart/byteranges`), `If-Range`, strong `ETag` from the SHA256, `If-None-Match` |
//!
//! Every error is JSON `{"code": "...", "message": "..."}` with a 4xx status, or 503 with
//! `Retry-After` when the store is unavailable.

mod attributes;
mod auth;
mod content;
mod download;
mod merged_notices;
mod notifier;
mod options;
mod polled_notices;
pub(crate) mod query;
mod rate_limit;

pub use content::ContentCache;
pub use notifier::HttpNotifier;
pub use options::DeviceApiOptions;
pub use rate_limit::{Bandwidth, RateLimit, RateLimitError};

use crate::error::ApiError;
use auth::TokenCache;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use ota_core::engine::Ota;
use ota_core::Device;
use rate_limit::RateLimiter;
use std::sync::Arc;
use std::time::Instant;

/// What every handler shares.
pub(crate) struct DeviceApi {
    ota: Ota,
    options: DeviceApiOptions,
    tokens: TokenCache,
    limiter: Option<RateLimiter>,
    content: ContentCache,
    /// With [`DeviceApiOptions::deliver_notices_on_read`]: when each device's reads last
    /// looked into the outbox.
    polled: Option<polled_notices::PolledNotices>,
}

impl DeviceApi {
    fn new(ota: Ota, options: DeviceApiOptions) -> Self {
        Self {
            tokens: TokenCache::new(options.token_cache_ttl, options.token_cache_capacity),
            limiter: options.rate_limit.clone().map(RateLimiter::new),
            content: options.content_cache.clone(),
            polled: options
                .deliver_notices_on_read
                .then(|| polled_notices::PolledNotices::new(options.notice_look_every)),
            ota,
            options,
        }
    }

    /// The device of `token`, counted against its rate limit.
    async fn device(&self, token: &str) -> Result<Arc<Device>, ApiError> {
        let device = self.tokens.device(self.ota.store().as_ref(), token).await?;
        if let Some(limiter) = &self.limiter {
            if let Err(wait) = limiter.check(device.id, Instant::now()) {
                return Err(ApiError::rate_limited(wait, &limiter.limit().to_string()));
            }
        }
        Ok(device)
    }
}

/// The access token from the path.
pub(crate) struct Token(String);

impl<S: Send + Sync> FromRequestParts<S> for Token {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(token) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid access token in the path: {e}")))?;
        Ok(Self(token))
    }
}

async fn no_such_route() -> ApiError {
    ApiError::not_found(
        "no such device API route; see /api/v1/{token}/attributes, /telemetry, /firmware, /software",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this method is not allowed on this route",
    )
}

fn with_fallback(route: MethodRouter<Arc<DeviceApi>>) -> MethodRouter<Arc<DeviceApi>> {
    route.fallback(method_not_allowed)
}

/// The device API as a router to mount (or `merge`) into the embedder's server. `engine` must
/// have been built with `options.notifier` (or a notifier that forwards to it) for long-polls
/// to wake on notices.
pub fn device_router(engine: Ota, options: DeviceApiOptions) -> Router {
    let api = Arc::new(DeviceApi::new(engine, options));
    let router = Router::new()
        .route(
            "/api/v1/{token}/attributes",
            with_fallback(get(attributes::get).post(attributes::post)),
        )
        .route(
            "/api/v1/{token}/attributes/updates",
            with_fallback(get(attributes::updates)),
        )
        .route(
            "/api/v1/{token}/telemetry",
            with_fallback(post(attributes::telemetry)),
        )
        .route(
            "/api/v1/{token}/firmware",
            with_fallback(get(download::firmware)),
        )
        .route(
            "/api/v1/{token}/firmware/content",
            with_fallback(get(download::firmware)),
        )
        .route(
            "/api/v1/{token}/software",
            with_fallback(get(download::software)),
        )
        .route(
            "/api/v1/{token}/software/content",
            with_fallback(get(download::software)),
        )
        .route(
            "/api/v1/{token}/{*rest}",
            with_fallback(get(no_such_route).post(no_such_route)),
        )
        .with_state(api.clone());
    if api.polled.is_some() {
        router.layer(axum::middleware::from_fn_with_state(
            api,
            polled_notices::deliver_on_read,
        ))
    } else {
        router
    }
}
