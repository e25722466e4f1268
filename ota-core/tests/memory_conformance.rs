//! The store conformance suite against the in-memory store.

use ota_core::memory::MemoryStore;

async fn fresh() -> MemoryStore {
    MemoryStore::new()
}

ota_core::store_conformance_tests!(fresh);
