//! Package content kept in memory while devices download it in chunks: one read of the whole
//! content from the store per package (however many devices ask at once), then every chunk
//! is a slice of it (no copy, no store call).
//!
//! A package's content never changes once uploaded (a new version is a new package), so an
//! entry stays valid as long as it is kept; whether a device may still download the package
//! is checked by the handler on every chunk, not here.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use ota_core::store::{ByteRange, Store, StoreError};
use ota_core::{PackageId, TenantId};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// Packages larger than this are not kept (their chunks are read from the store one by one).
pub const MAX_CACHED_PACKAGE: u64 = 16 * 1024 * 1024;
/// The most content kept at once (oldest packages are dropped first).
pub const MAX_CACHED_TOTAL: u64 = 64 * 1024 * 1024;

type Slot = Arc<OnceCell<Bytes>>;

struct Entry {
    tenant: TenantId,
    slot: Slot,
    /// Whether its bytes are in `Entries::total`.
    counted: bool,
}

#[derive(Default)]
struct Entries {
    slots: HashMap<PackageId, Entry>,
    /// Packages in the order they were added, for dropping the oldest.
    order: VecDeque<PackageId>,
    /// Bytes of the loaded entries.
    total: u64,
}

/// The cache. Cheap to clone (shared).
#[derive(Clone)]
pub(crate) struct ContentCache {
    entries: Arc<Mutex<Entries>>,
    max_package: u64,
    max_total: u64,
}

impl Default for ContentCache {
    fn default() -> Self {
        Self::with_limits(MAX_CACHED_PACKAGE, MAX_CACHED_TOTAL)
    }
}

impl std::fmt::Debug for ContentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentCache").finish_non_exhaustive()
    }
}

impl ContentCache {
    /// A cache keeping packages up to `max_package` bytes, `max_total` bytes in all.
    pub(crate) fn with_limits(max_package: u64, max_total: u64) -> Self {
        Self {
            entries: Arc::default(),
            max_package,
            max_total,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The content of `package` when it is loaded.
    pub(crate) fn get(&self, tenant: TenantId, package: PackageId) -> Option<Bytes> {
        let entries = self.lock();
        let entry = entries.slots.get(&package)?;
        (entry.tenant == tenant)
            .then(|| entry.slot.get().cloned())
            .flatten()
    }

    /// The content of `package` (`size` bytes), loaded from `store` by the first caller
    /// while the others wait for it. `Ok(None)` when the package is too large to keep.
    pub(crate) async fn load(
        &self,
        store: &dyn Store,
        tenant: TenantId,
        package: PackageId,
        size: u64,
    ) -> Result<Option<Bytes>, StoreError> {
        if size > self.max_package {
            return Ok(None);
        }
        let slot = {
            let mut entries = self.lock();
            match entries.slots.get(&package) {
                Some(entry) if entry.tenant == tenant => entry.slot.clone(),
                Some(_) => return Ok(None),
                None => {
                    let slot = Slot::default();
                    entries.slots.insert(
                        package,
                        Entry {
                            tenant,
                            slot: slot.clone(),
                            counted: false,
                        },
                    );
                    entries.order.push_back(package);
                    slot
                }
            }
        };
        let loaded = slot
            .get_or_try_init(|| read_all(store, tenant, package, size))
            .await;
        match loaded {
            Ok(bytes) => {
                let bytes = bytes.clone();
                self.account(package, &slot, bytes.len() as u64);
                Ok(Some(bytes))
            }
            Err(e) => {
                // Not kept: the next request tries again.
                let mut entries = self.lock();
                if entries
                    .slots
                    .get(&package)
                    .is_some_and(|entry| Arc::ptr_eq(&entry.slot, &slot))
                {
                    entries.slots.remove(&package);
                    entries.order.retain(|p| *p != package);
                }
                Err(e)
            }
        }
    }

    /// Counts a loaded entry once, then drops the oldest entries over the total.
    fn account(&self, package: PackageId, slot: &Slot, len: u64) {
        let mut entries = self.lock();
        match entries.slots.get_mut(&package) {
            Some(entry) if Arc::ptr_eq(&entry.slot, slot) && !entry.counted => {
                entry.counted = true;
            }
            _ => return,
        }
        entries.total += len;
        while entries.total > self.max_total {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            if let Some(entry) = entries.slots.remove(&oldest) {
                if entry.counted {
                    entries.total -= entry.slot.get().map_or(0, |b| b.len() as u64);
                }
            }
        }
    }
}

async fn read_all(
    store: &dyn Store,
    tenant: TenantId,
    package: PackageId,
    size: u64,
) -> Result<Bytes, StoreError> {
    let mut stream = store
        .read_content(tenant, package, ByteRange::new(0, size))
        .await?;
    let Some(first) = stream.next().await.transpose()? else {
        return Ok(Bytes::new());
    };
    let Some(second) = stream.next().await.transpose()? else {
        return Ok(first);
    };
    let mut all = BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
    all.extend_from_slice(&first);
    all.extend_from_slice(&second);
    while let Some(part) = stream.next().await {
        all.extend_from_slice(&part?);
    }
    Ok(all.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_core::engine::{NewPackage, Ota, OtaConfig};
    use ota_core::memory::MemoryStore;
    use ota_core::notifier::RecordingNotifier;
    use ota_core::{ManualClock, PackageKind};

    async fn package(ota: &Ota, tenant: TenantId, version: &str, len: usize) -> PackageId {
        let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        // Several pieces, as a store gives them.
        let pieces: Vec<Result<Bytes, StoreError>> = content
            .chunks(1000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        ota.upload_package(
            "t",
            NewPackage::new(tenant, PackageKind::Firmware, "fw", version),
            Box::pin(futures_util::stream::iter(pieces)),
        )
        .await
        .expect("upload")
        .id
    }

    #[tokio::test]
    async fn keeps_content_per_tenant_within_its_limits() {
        let store = Arc::new(MemoryStore::new());
        let ota = Ota::new(
            store.clone(),
            Arc::new(RecordingNotifier::default()),
            Arc::new(ManualClock::at_epoch_2024()),
            OtaConfig::default(),
        );
        let tenant = TenantId::new();
        let (a, b, c) = (
            package(&ota, tenant, "a", 4000).await,
            package(&ota, tenant, "b", 4000).await,
            package(&ota, tenant, "c", 9000).await,
        );
        let cache = ContentCache::with_limits(5000, 8000);
        assert_eq!(cache.get(tenant, a), None);
        let loaded = cache.load(store.as_ref(), tenant, a, 4000).await.unwrap();
        let loaded = loaded.expect("kept");
        assert_eq!(loaded.len(), 4000);
        assert!(loaded
            .iter()
            .enumerate()
            .all(|(i, b)| *b == (i % 251) as u8));
        assert_eq!(cache.get(tenant, a), Some(loaded.clone()));
        // Another tenant does not see it.
        assert_eq!(cache.get(TenantId::new(), a), None);
        // Too large to keep.
        assert_eq!(
            cache.load(store.as_ref(), tenant, c, 9000).await.unwrap(),
            None
        );
        // Over the total: the oldest goes.
        cache
            .load(store.as_ref(), tenant, b, 4000)
            .await
            .unwrap()
            .expect("kept");
        assert_eq!(cache.get(tenant, a), Some(loaded));
        let d = package(&ota, tenant, "d", 1000).await;
        cache
            .load(store.as_ref(), tenant, d, 1000)
            .await
            .unwrap()
            .expect("kept");
        assert_eq!(cache.get(tenant, a), None);
        assert!(cache.get(tenant, b).is_some() && cache.get(tenant, d).is_some());
        // A package that cannot be read is an error, and is tried again next time.
        let missing = PackageId::new();
        assert!(cache
            .load(store.as_ref(), tenant, missing, 10)
            .await
            .is_err());
        assert!(!cache.lock().slots.contains_key(&missing));
    }

    #[tokio::test]
    async fn concurrent_first_chunks_read_the_content_once() {
        let store = Arc::new(MemoryStore::new());
        let ota = Ota::new(
            store.clone(),
            Arc::new(RecordingNotifier::default()),
            Arc::new(ManualClock::at_epoch_2024()),
            OtaConfig::default(),
        );
        let tenant = TenantId::new();
        let a = package(&ota, tenant, "a", 3000).await;
        let cache = ContentCache::default();
        let loads = (0..20).map(|_| cache.load(store.as_ref(), tenant, a, 3000));
        let all = futures_util::future::join_all(loads).await;
        let first = all[0].as_ref().unwrap().clone().unwrap();
        for one in &all {
            // The same buffer, not a copy per caller.
            assert_eq!(
                one.as_ref().unwrap().as_ref().unwrap().as_ptr(),
                first.as_ptr()
            );
        }
        assert_eq!(cache.lock().total, 3000);
    }
}
