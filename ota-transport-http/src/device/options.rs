//! What an embedder configures for the device API.

use super::content::ContentCache;
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
    /// How long a device looked up by its token is remembered. Default: 60 s.
    ///
    /// The trade-off: a device's requests cost one token lookup per `ttl` (an idle device
    /// comes back every long-poll period, 20-30 s with ThingsBoard's firmware, so a `ttl`
    /// shorter than that makes nearly every request a lookup), while a token that was
    /// rotated or a device that was deleted keeps working on this instance until its entry
    /// expires, at most `ttl` after its last lookup. Zero: no caching.
    pub token_cache_ttl: Duration,
    /// How many tokens are remembered at most. Default: 100,000.
    pub token_cache_capacity: usize,
    /// Per-device request rate limit (ThingsBoard's `capacity:seconds` pairs). Default: none.
    pub rate_limit: Option<RateLimit>,
    /// Long-poll wait when the request gives no `timeout` (or 0). Default: 30 s.
    pub long_poll_default: Duration,
    /// Longest long-poll wait; larger `timeout`s are cut to it. Default: 10 min.
    pub long_poll_max: Duration,
    /// The cache of hot package content (by SHA256). Default: a new cache of 256 MiB.
    pub content_cache: ContentCache,
    /// Most ranges one `Range` header may ask for. Default: 16.
    pub max_ranges: usize,
    /// Whether a device's attribute reads and long-polls deliver the outbox notices waiting
    /// for it. Default: off. Turn it on when several engine instances share one store and
    /// their notifiers reach only the devices they hold (see
    /// [`Notifier::reachable_devices`](ota_core::notifier::Notifier::reachable_devices)): a
    /// notice written while its polling device was between two requests is then reached by
    /// no instance, and without this it would stay in the outbox. A read that looks costs
    /// a statement (a claim on the outbox), at most once per [`Self::notice_look_every`] per
    /// device; a notice that waits is answered by the long-poll at once, or marked
    /// delivered by the attribute read that answers what it announced.
    pub deliver_notices_on_read: bool,
    /// With [`Self::deliver_notices_on_read`], how often a device's reads look into the
    /// outbox at most. Default: 30 s (a notice left behind is rare and waits this long at
    /// most after the device's previous look; a long-poll waiting meanwhile gets it from
    /// the engine).
    pub notice_look_every: Duration,
}

impl DeviceApiOptions {
    /// Defaults, with the `notifier` the engine was built with.
    pub fn new(notifier: HttpNotifier) -> Self {
        Self {
            notifier,
            max_body_bytes: 64 * 1024,
            token_cache_ttl: Duration::from_secs(60),
            token_cache_capacity: 100_000,
            rate_limit: None,
            long_poll_default: Duration::from_secs(30),
            long_poll_max: Duration::from_secs(600),
            content_cache: ContentCache::new(256 * 1024 * 1024),
            max_ranges: 16,
            deliver_notices_on_read: false,
            notice_look_every: Duration::from_secs(30),
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

    /// Sets [`Self::deliver_notices_on_read`].
    pub fn deliver_notices_on_read(mut self, on: bool) -> Self {
        self.deliver_notices_on_read = on;
        self
    }

    /// Uses a new content cache of `bytes` (0: no caching).
    pub fn content_cache_bytes(mut self, bytes: u64) -> Self {
        self.content_cache = ContentCache::new(bytes);
        self
    }

    /// Uses `cache` (shared with its other clones).
    pub fn content_cache(mut self, cache: ContentCache) -> Self {
        self.content_cache = cache;
        self
    }

    /// Sets [`Self::long_poll_default`] and [`Self::long_poll_max`].
    pub fn long_poll(mut self, default: Duration, max: Duration) -> Self {
        self.long_poll_default = default;
        self.long_poll_max = max.max(default);
        self
    }
}
