//! Package records remembered by the server's store wrapper ([`super::metered`]).
//!
//! A package record never changes once stored: it is created whole (with its content) and
//! deleted whole. Yet every download request, MQTT chunk request and attribute read of a
//! device with a live update reads it again (10,000 devices downloading 4 chunks each read
//! the same row 40,000 times). The wrapper answers `get_package` from here and forgets a
//! package when it is deleted through it. Another instance sharing the database may delete
//! a package this one still remembers: the record is then answered for at most the time to
//! live, and anything reading its content finds none (the engine refuses to delete a
//! package that unfinished updates or assignments use, so a device in a campaign never
//! meets that case).

use ota_core::ids::{PackageId, TenantId};
use ota_core::Package;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Each remembered package, with when it was read.
type Remembered = HashMap<(TenantId, PackageId), (Package, Instant)>;

/// Remembered packages with when each was read; bounded.
#[derive(Debug)]
pub struct PackageCache {
    entries: Mutex<Remembered>,
    ttl: Duration,
    capacity: usize,
}

impl PackageCache {
    /// Remembers up to `capacity` packages for `ttl` each (a zero `ttl` remembers none).
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: Mutex::default(),
            ttl,
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Remembered> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The package `id` of `tenant` when it was read less than the time to live before `now`.
    pub fn get(&self, tenant: TenantId, id: PackageId, now: Instant) -> Option<Package> {
        self.lock()
            .get(&(tenant, id))
            .filter(|(_, at)| now.saturating_duration_since(*at) < self.ttl)
            .map(|(p, _)| p.clone())
    }

    /// Remembers `package`, read at `now`. When full, expired entries go first, then all.
    pub fn remember(&self, package: &Package, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let key = (package.tenant_id, package.id);
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, (_, at)| now.saturating_duration_since(*at) < self.ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (package.clone(), now));
    }

    /// Forgets the package `id` of `tenant` (it is being deleted).
    pub fn forget(&self, tenant: TenantId, id: PackageId) {
        self.lock().remove(&(tenant, id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::metered::MeteredStore;
    use crate::server::metrics::Metrics;
    use bytes::Bytes;
    use ota_core::engine::{NewPackage, Ota, OtaConfig};
    use ota_core::notifier::RecordingNotifier;
    use ota_core::store::Store;
    use ota_core::{PackageKind, SystemClock};
    use std::sync::Arc;

    fn engine(store: Arc<dyn Store>) -> Ota {
        Ota::new(
            store,
            Arc::new(RecordingNotifier::new()),
            Arc::new(SystemClock),
            OtaConfig::default(),
        )
    }

    async fn upload(ota: &Ota, tenant: TenantId, version: &str) -> Package {
        let new = NewPackage::new(tenant, PackageKind::Firmware, "fw", version);
        let content = futures_util::stream::iter([Ok(Bytes::from_static(b"firmware"))]);
        ota.upload_package("tester", new, Box::pin(content))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn entries_expire_are_forgotten_and_stay_bounded() {
        let ota = engine(Arc::new(ota_core::memory::MemoryStore::new()));
        let tenant = TenantId::new();
        let (a, b, c) = (
            upload(&ota, tenant, "1").await,
            upload(&ota, tenant, "2").await,
            upload(&ota, tenant, "3").await,
        );
        let cache = PackageCache::new(Duration::from_secs(5), 2);
        let t0 = Instant::now();
        cache.remember(&a, t0);
        assert_eq!(
            cache.get(tenant, a.id, t0 + Duration::from_secs(4)),
            Some(a.clone())
        );
        assert_eq!(cache.get(tenant, a.id, t0 + Duration::from_secs(5)), None);
        assert_eq!(
            cache.get(TenantId::new(), a.id, t0),
            None,
            "another tenant's"
        );
        cache.forget(tenant, a.id);
        assert_eq!(cache.get(tenant, a.id, t0), None);

        // Full: expired entries make room first, then everything goes.
        cache.remember(&a, t0);
        let later = t0 + Duration::from_secs(10);
        cache.remember(&b, later);
        cache.remember(&c, later);
        assert_eq!(cache.get(tenant, b.id, later), Some(b));
        assert_eq!(cache.get(tenant, c.id, later), Some(c.clone()));
        cache.remember(&a, later);
        assert_eq!(cache.get(tenant, a.id, later), Some(a));
        assert_eq!(cache.lock().len(), 1);

        let off = PackageCache::new(Duration::ZERO, 2);
        off.remember(&c, later);
        assert_eq!(off.get(tenant, c.id, later), None);
    }

    #[tokio::test]
    async fn the_server_store_forgets_a_package_it_deletes() {
        let memory = Arc::new(ota_core::memory::MemoryStore::new());
        let store: Arc<dyn Store> = Arc::new(MeteredStore::new(memory, Metrics::new()));
        let ota = engine(store.clone());
        let tenant = TenantId::new();
        let package = upload(&ota, tenant, "1").await;
        // Read twice (the second from the cache), then deleted through the same store.
        assert_eq!(
            store.get_package(tenant, package.id).await.unwrap(),
            package
        );
        assert_eq!(
            store.get_package(tenant, package.id).await.unwrap(),
            package
        );
        ota.delete_package("tester", tenant, package.id)
            .await
            .unwrap();
        let gone = store.get_package(tenant, package.id).await.unwrap_err();
        assert!(gone.is_not_found(), "{gone}");
    }
}
