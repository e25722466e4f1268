//! What an embedder configures for the device API.

use super::notifier::HttpNotifier;
use super::rate_limit::RateLimit;
use std::time::Duration;

/// Options of [`super::device_router`]. Build with [`DeviceApiOptions::new`] and change
/// fields or use the setters.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DeviceApiOptions {
    /// The notifier the engine was built with: its notices wake long-poll waiters.
    pub notifier: HttpNotifier,
    /// Largest telemetry or attributes body accepted, in bytes. Default: 64 KiB.
    pub max_body_bytes: usize,
    /// How long a device looked up by its token is remembered. Default: 5 s.
    pub token_cache_ttl: Duration,
    /// How many tokens are remembered at most. Default: 100,000.
    pub token_cache_capacity: usize,
    /// Per-device request rate limit (ThingsBoard's `capacity:seconds` pairs). Default: none.
    pub rate_limit: Option<RateLimit>,
    /// Long-poll wait when the request gives no `timeout` (or 0). Default: 30 s.
    pub long_poll_default: Duration,
    /// Longest long-poll wait; larger `timeout`s are cut to it. Default: 10 min.
    pub long_poll_max: Duration,
    /// Memory for caching package content by SHA256, in bytes (0: no cache). Default:
    /// 256 MiB.
    pub content_cache_bytes: u64,
    /// Most ranges one `Range` header may ask for. Default: 16.
    pub max_ranges: usize,
}

impl DeviceApiOptions {
    /// Defaults, with the `notifier` the engine was built with.
    pub fn new(notifier: HttpNotifier) -> Self {
        Self {
            notifier,
            max_body_bytes: 64 * 1024,
            token_cache_ttl: Duration::from_secs(5),
            token_cache_capacity: 100_000,
            rate_limit: None,
            long_poll_default: Duration::from_secs(30),
            long_poll_max: Duration::from_secs(600),
            content_cache_bytes: 256 * 1024 * 1024,
            max_ranges: 16,
        }
    }

    /// Sets [`Self::max_body_bytes`].
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Sets [`Self::rate_limit`].
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Sets [`Self::token_cache_ttl`].
    pub fn token_cache_ttl(mut self, ttl: Duration) -> Self {
        self.token_cache_ttl = ttl;
        self
    }

    /// Sets [`Self::content_cache_bytes`].
    pub fn content_cache_bytes(mut self, bytes: u64) -> Self {
        self.content_cache_bytes = bytes;
        self
    }

    /// Sets [`Self::long_poll_default`] and [`Self::long_poll_max`].
    pub fn long_poll(mut self, default: Duration, max: Duration) -> Self {
        self.long_poll_default = default;
        self.long_poll_max = max.max(default);
        self
    }
}
