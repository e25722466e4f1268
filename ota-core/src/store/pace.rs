//! Pacing state shared by every engine instance that uses the store.

use super::StoreError;
use crate::pacing::PaceState;
use async_trait::async_trait;

/// A pace's state with the version a compare-and-set needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionedPace {
    /// The state.
    pub state: PaceState,
    /// Bumped by every write.
    pub version: u64,
}

/// Stores pacing states under a key (`global`, `campaign:<id>`), so that a pace holds across
/// engine instances.
#[async_trait]
pub trait PaceStore: Send + Sync {
    /// The state under `key`, if any was written.
    async fn get_pace(&self, key: &str) -> Result<Option<VersionedPace>, StoreError>;
    /// Writes `state` under `key` if its version is still `expected_version` (`None`: the key
    /// must not exist yet); returns the new version. [`StoreError::PreconditionFailed`] when
    /// another writer came first.
    async fn put_pace(
        &self,
        key: &str,
        expected_version: Option<u64>,
        state: &PaceState,
    ) -> Result<u64, StoreError>;
}
