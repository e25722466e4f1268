//! [`MemoryStore`]: the reference store, every trait of [`crate::store`] in memory.
//!
//! It is correct under concurrent use (one lock over the tables; no `.await` while it is
//! held) and fast enough for fleets of a million devices in tests and benchmarks. Nothing
//! survives the process. Content is kept as the chunks it arrived in, so memory grows with
//! the packages uploaded.

mod api_keys;
mod assignments;
mod audit;
mod campaigns;
mod device_edits;
mod devices;
mod outbox;
mod pace;
mod packages;
mod retention;
mod schedules;
mod tables;
mod updates;

use std::sync::{Arc, Mutex, MutexGuard};
use tables::Tables;

/// Every store trait in memory. Cheap to clone: clones share the same tables.
#[derive(Clone, Default)]
pub struct MemoryStore {
    tables: Arc<Mutex<Tables>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tables, locked. A panic while the lock was held (a bug) does not make the store
    /// unusable: the tables are only changed after every check passed.
    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
