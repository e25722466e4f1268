//! Devices by access token, looked up through the store and remembered briefly.

use crate::error::ApiError;
use ota_core::store::StoreError;
use ota_core::Device;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn key_of(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// Remembers the device of each token for a short time, so that a device downloading in many
/// chunks costs one store lookup per `ttl`, not one per request. Bounded: when full, expired
/// entries go first, then everything. Keyed by the token's SHA-256, like the stores: the
/// tokens themselves are not kept.
/// A token digest's device and when it was looked up.
type CachedDevices = HashMap<[u8; 32], (Arc<Device>, Instant)>;

#[derive(Debug)]
pub(crate) struct TokenCache {
    entries: Mutex<CachedDevices>,
    ttl: Duration,
    capacity: usize,
}

impl TokenCache {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
            capacity: capacity.max(1),
        }
    }

    fn cached(&self, token: &str, now: Instant) -> Option<Arc<Device>> {
        let key = key_of(token);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&key)
            .filter(|(_, at)| now.duration_since(*at) < self.ttl)
            .map(|(d, _)| d.clone())
    }

    fn remember(&self, token: &str, device: Arc<Device>, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let key = key_of(token);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, (_, at)| now.duration_since(*at) < self.ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (device, now));
    }

    /// The device of `token`: 401 for a token no device has, 503 when the store is down.
    pub(crate) async fn device(
        &self,
        store: &dyn ota_core::store::Store,
        token: &str,
    ) -> Result<Arc<Device>, ApiError> {
        let now = Instant::now();
        if let Some(device) = self.cached(token, now) {
            return Ok(device);
        }
        match store.device_by_token(token).await {
            Ok(device) => {
                let device = Arc::new(device);
                self.remember(token, device.clone(), now);
                Ok(device)
            }
            Err(StoreError::NotFound { .. }) => Err(ApiError::unauthorized(
                "unknown device access token; check the token in the URL",
            )),
            Err(e) => Err(e.into()),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_core::engine::{Ota, OtaConfig};
    use ota_core::notifier::RecordingNotifier;
    use ota_core::{ProfileId, SystemClock, TenantId};

    fn device(name: &str) -> Arc<Device> {
        let ota = Ota::new(
            Arc::new(ota_core::memory::MemoryStore::new()),
            Arc::new(RecordingNotifier::new()),
            Arc::new(SystemClock),
            OtaConfig::default(),
        );
        Arc::new(ota.new_device(
            TenantId::new(),
            name,
            ProfileId::new(),
            Default::default(),
            name,
        ))
    }

    #[test]
    fn entries_expire_and_the_cache_stays_bounded() {
        let cache = TokenCache::new(Duration::from_secs(5), 3);
        let t0 = Instant::now();
        for i in 0..10 {
            cache.remember(&format!("t{i}"), device("d"), t0);
            assert!(cache.len() <= 3);
        }
        cache.remember("a", device("a"), t0);
        assert!(cache.cached("a", t0 + Duration::from_secs(4)).is_some());
        assert!(cache.cached("a", t0 + Duration::from_secs(5)).is_none());
        // Expired entries make room before anything fresh is dropped.
        let later = t0 + Duration::from_secs(10);
        cache.remember("b", device("b"), later);
        cache.remember("c", device("c"), later);
        assert!(cache.cached("b", later).is_some());
        assert!(cache.cached("c", later).is_some());
    }
}
