//! [`PaceStore`] in memory.

use super::MemoryStore;
use crate::pacing::PaceState;
use crate::store::{PaceStore, StoreError, VersionedPace};
use async_trait::async_trait;

#[async_trait]
impl PaceStore for MemoryStore {
    async fn get_pace(&self, key: &str) -> Result<Option<VersionedPace>, StoreError> {
        Ok(self.lock().paces.get(key).cloned())
    }

    async fn put_pace(
        &self,
        key: &str,
        expected_version: Option<u64>,
        state: &PaceState,
    ) -> Result<u64, StoreError> {
        let mut t = self.lock();
        let current = t.paces.get(key).map(|p| p.version);
        if current != expected_version {
            return Err(StoreError::precondition(format!(
                "pace {key:?} is at version {current:?}, not {expected_version:?}"
            )));
        }
        let version = current.map_or(1, |v| v + 1);
        t.paces.insert(
            key.to_string(),
            VersionedPace {
                state: state.clone(),
                version,
            },
        );
        Ok(version)
    }
}
