//! Updates: bulk creation, compare-and-set transitions, claims of due work with leases,
//! listings and counts, and the history of every event.

use super::{AuditedTransition, Page, PageRequest, StoreError};
use crate::clock::Timestamp;
use crate::ids::{CampaignId, DeviceId, PackageId, TenantId, UpdateId};
use crate::package::{PackageKind, TitleVersion};
use crate::update::{HistoryEntry, Update, UpdateState};
use async_trait::async_trait;
use chrono::Duration;
use serde::{Deserialize, Serialize};

/// Which updates a listing or count selects. Every field narrows the selection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateFilter {
    /// Only updates in one of these states (empty: any state).
    pub states: Vec<UpdateState>,
    /// Only updates of this campaign.
    pub campaign_id: Option<CampaignId>,
    /// Only updates of this device.
    pub device_id: Option<DeviceId>,
    /// Only updates of this kind.
    pub kind: Option<PackageKind>,
    /// Only updates to this package.
    pub package_id: Option<PackageId>,
}

impl UpdateFilter {
    /// Updates in `state`.
    pub fn in_state(state: UpdateState) -> Self {
        Self {
            states: vec![state],
            ..Self::default()
        }
    }

    /// Whether `update` is selected.
    pub fn matches(&self, update: &Update) -> bool {
        (self.states.is_empty() || self.states.contains(&update.state))
            && self
                .campaign_id
                .is_none_or(|c| update.campaign_id == Some(c))
            && self.device_id.is_none_or(|d| update.device_id == d)
            && self.kind.is_none_or(|k| update.kind == k)
            && self.package_id.is_none_or(|p| update.package_id == p)
    }
}

/// Which queued updates a claim takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueScope {
    /// Updates that belong to no campaign (made by assignments).
    Direct,
    /// Updates of one campaign in waves up to `up_to_wave`, by wave then oldest first.
    Campaign {
        /// The campaign.
        id: CampaignId,
        /// The last wave released so far.
        up_to_wave: u32,
    },
}

/// A request to claim work: up to `limit` updates, leased to `owner` until `now + lease`.
/// Updates under a lease that has not run out (whoever holds it, the claimer included) are
/// never returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRequest {
    /// The current time.
    pub now: Timestamp,
    /// At most this many.
    pub limit: u32,
    /// Who claims (an engine instance's id).
    pub owner: String,
    /// How long the claim holds.
    pub lease: Duration,
}

/// One compare-and-set write of [`UpdateStore::transition_many`].
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The record to write.
    pub update: Update,
    /// The revision the stored record must still have.
    pub expected_revision: u64,
    /// The history entry appended with it.
    pub history: HistoryEntry,
}

/// Stores updates and their history.
#[async_trait]
pub trait UpdateStore: Send + Sync {
    /// Stores new updates, all or none. [`StoreError::Conflict`] when an id exists or when a
    /// device would get a second unfinished (non-terminal) update of one kind.
    async fn create_updates(&self, updates: &[Update]) -> Result<(), StoreError>;

    /// Writes `update` if the stored revision is still `expected_revision`, appending
    /// `history` in the same atomic step and dropping any claim on it.
    /// [`StoreError::PreconditionFailed`] when another writer came first: nothing is written.
    async fn transition(
        &self,
        update: &Update,
        expected_revision: u64,
        history: &HistoryEntry,
    ) -> Result<(), StoreError>;

    /// [`UpdateStore::transition`] together with what the device reported it runs for the
    /// update's kind (what [`DeviceStore::set_current_version`] records for `update`'s
    /// device and kind), in one atomic step: a device's report of a completed update then
    /// costs one round trip instead of two. `Some(Ok(()))`: both were written.
    /// `Some(Err(..))`: the answer `transition` would give; the transition was not written and
    /// the version may or may not have been (the caller records it again, which is
    /// idempotent). `None` (the default): the store has no such combined write; the caller
    /// records the version with `set_current_version` and calls `transition`.
    ///
    /// [`DeviceStore::set_current_version`]: super::DeviceStore::set_current_version
    async fn transition_with_current(
        &self,
        update: &Update,
        expected_revision: u64,
        history: &HistoryEntry,
        current: &TitleVersion,
    ) -> Option<Result<(), StoreError>> {
        let _ = (update, expected_revision, history, current);
        None
    }

    /// Many [`UpdateStore::transition`]s, for large work (stopping a campaign of a million
    /// devices): one answer per transition, in order, each the answer `transition` would give
    /// alone. Not atomic as a whole. The default writes them one by one; stores override it
    /// with set-based writes.
    async fn transition_many(&self, batch: &[Transition]) -> Vec<Result<(), StoreError>> {
        let mut answers = Vec::with_capacity(batch.len());
        for t in batch {
            answers.push(
                self.transition(&t.update, t.expected_revision, &t.history)
                    .await,
            );
        }
        answers
    }

    /// An operator's transition of one update written with its audit entry and, when it
    /// carries one, the device's notice, in one atomic step (see
    /// [audited writes](super#audited-writes)): the transition exactly as
    /// [`UpdateStore::transition`] writes it, and the entry and notice only with it.
    /// `Some(Ok(()))`: all were written. `Some(Err(..))`: none was; the answer `transition`
    /// would give, or [`StoreError::Conflict`] when the entry's id is stored already (the
    /// audit log is append only). `None` (the default): the store has no such combined write;
    /// the caller writes the transition (with its notice), then appends the entry, and a
    /// process that dies in between loses the entry. Stores that wrap another store forward
    /// it.
    async fn transition_audited(
        &self,
        write: &AuditedTransition,
    ) -> Option<Result<(), StoreError>> {
        let _ = write;
        None
    }

    /// Appends an event that changed nothing (ignored or rejected) to the history.
    async fn append_history(&self, entry: &HistoryEntry) -> Result<(), StoreError>;

    /// The update `id`.
    async fn get_update(&self, tenant: TenantId, id: UpdateId) -> Result<Update, StoreError>;

    /// The most recent update of a device for a kind (in any state).
    async fn latest_update(
        &self,
        tenant: TenantId,
        device: DeviceId,
        kind: PackageKind,
    ) -> Result<Option<Update>, StoreError>;

    /// A hint of [`UpdateStore::latest_update`] that may cost no round trip: the update as
    /// this store last wrote it with [`UpdateStore::transition`] when it knows one, else the
    /// latest update as stored. It may be stale (another writer may have changed it since),
    /// so it is only good for computing a compare-and-set transition, which fails if it was;
    /// anything else must be decided on [`UpdateStore::latest_update`]. The default reads
    /// the latest update.
    async fn latest_update_hint(
        &self,
        tenant: TenantId,
        device: DeviceId,
        kind: PackageKind,
    ) -> Result<Option<Update>, StoreError> {
        self.latest_update(tenant, device, kind).await
    }

    /// Updates selected by `filter`, ordered by id.
    async fn list_updates(
        &self,
        tenant: TenantId,
        filter: &UpdateFilter,
        page: PageRequest,
    ) -> Result<Page<Update>, StoreError>;

    /// How many updates `filter` selects, in one tenant or (`None`) in all.
    async fn count_updates(
        &self,
        tenant: Option<TenantId>,
        filter: &UpdateFilter,
    ) -> Result<u64, StoreError>;

    /// Claims up to `limit` QUEUED updates of `scope`, oldest first, that nobody else holds.
    /// Two claimers never get the same update while a lease holds.
    async fn claim_queued(
        &self,
        request: &ClaimRequest,
        scope: QueueScope,
    ) -> Result<Vec<Update>, StoreError>;

    /// Claims up to `limit` updates whose `wake_at` is at or before `now` (a timeout to check
    /// or a retry to start), earliest first, that nobody else holds.
    async fn claim_due(&self, request: &ClaimRequest) -> Result<Vec<Update>, StoreError>;

    /// Gives back a claim that was not used, so that others may take the update at once.
    async fn release_claim(
        &self,
        tenant: TenantId,
        id: UpdateId,
        owner: &str,
    ) -> Result<(), StoreError>;

    /// The history of one update (every attempt), oldest first.
    async fn update_history(
        &self,
        tenant: TenantId,
        id: UpdateId,
    ) -> Result<Vec<HistoryEntry>, StoreError>;

    /// The most recent `limit` history entries of a device, newest first.
    async fn device_history(
        &self,
        tenant: TenantId,
        device: DeviceId,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, StoreError>;
}
