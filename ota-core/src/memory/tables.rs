//! The tables behind [`super::MemoryStore`], with the indexes its queries need.

use crate::assignment::{Assignment, AssignmentTarget};
use crate::audit::AuditEntry;
use crate::campaign::{Campaign, StateCounts};
use crate::clock::Timestamp;
use crate::device::{Device, DeviceGroup, DeviceProfile};
use crate::ids::{CampaignId, DeviceId, GroupId, PackageId, ProfileId, TenantId, UpdateId};
use crate::package::{Package, PackageKind};
use crate::store::{StoreError, VersionedPace};
use crate::update::{HistoryEntry, Update, UpdateState};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The hash tables of the memory store: foldhash, seeded per table from a per-process random
/// seed. Much faster than SipHash on the 16-byte ids that key most tables.
pub(super) type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use uuid::Uuid;

/// A stored update with its claim.
#[derive(Clone, Debug)]
pub(super) struct UpdateSlot {
    pub update: Update,
    /// Holder and expiry of the claim, if any.
    pub lease: Option<(String, Timestamp)>,
}

impl UpdateSlot {
    /// Whether anyone (the claimer included) holds an unexpired claim at `now`.
    pub fn is_leased(&self, now: Timestamp) -> bool {
        matches!(&self.lease, Some((_, until)) if *until > now)
    }
}

/// The key of the queue an update waits in while QUEUED.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum QueueKey {
    Direct,
    Campaign(CampaignId),
}

impl QueueKey {
    pub fn of(update: &Update) -> Self {
        update.campaign_id.map_or(Self::Direct, Self::Campaign)
    }
}

#[derive(Default)]
pub(super) struct Tables {
    // Packages.
    pub packages: Map<PackageId, Package>,
    pub package_keys: Map<(TenantId, PackageKind, String, String), PackageId>,
    pub tenant_packages: Map<TenantId, BTreeSet<PackageId>>,
    pub content: Map<PackageId, Vec<Bytes>>,
    // Profiles and groups.
    pub profiles: Map<ProfileId, DeviceProfile>,
    pub tenant_profiles: Map<TenantId, BTreeMap<ProfileId, ()>>,
    pub profile_names: Map<(TenantId, String), ProfileId>,
    pub groups: Map<GroupId, DeviceGroup>,
    pub tenant_groups: Map<TenantId, BTreeMap<GroupId, ()>>,
    pub group_names: Map<(TenantId, String), GroupId>,
    // Devices.
    pub devices: Map<DeviceId, Device>,
    pub tenant_devices: Map<TenantId, BTreeSet<DeviceId>>,
    pub device_names: Map<(TenantId, String), DeviceId>,
    pub tokens: Map<String, DeviceId>,
    pub profile_members: Map<ProfileId, BTreeSet<DeviceId>>,
    pub group_members: Map<GroupId, BTreeSet<DeviceId>>,
    // Assignments.
    pub assignments: Map<(TenantId, PackageKind, AssignmentTarget), Assignment>,
    // Updates.
    pub updates: BTreeMap<UpdateId, UpdateSlot>,
    pub tenant_updates: Map<TenantId, BTreeSet<UpdateId>>,
    pub latest: BTreeMap<(DeviceId, PackageKind), UpdateId>,
    pub queues: Map<QueueKey, BTreeSet<(u32, Timestamp, UpdateId)>>,
    pub due: BTreeSet<(Timestamp, UpdateId)>,
    pub state_counts: Map<(TenantId, UpdateState), u64>,
    // History, keyed by a sequence number in append order (retention deletes from the head).
    pub history: Map<usize, HistoryEntry>,
    pub history_next: usize,
    pub history_by_update: Map<UpdateId, Vec<usize>>,
    pub history_by_device: Map<DeviceId, Vec<usize>>,
    pub history_by_tenant: Map<TenantId, std::collections::VecDeque<usize>>,
    // Campaigns.
    pub campaigns: Map<CampaignId, Campaign>,
    pub tenant_campaigns: Map<TenantId, BTreeSet<CampaignId>>,
    pub campaign_devices: Map<CampaignId, BTreeSet<DeviceId>>,
    pub campaign_members: Map<CampaignId, BTreeSet<DeviceId>>,
    pub campaign_counts: Map<CampaignId, Vec<StateCounts>>,
    // Scheduled events.
    pub schedules: Map<crate::ids::ScheduleId, crate::schedule::ScheduledEvent>,
    // Audit and paces.
    pub audit: Map<TenantId, BTreeMap<Uuid, AuditEntry>>,
    pub paces: Map<String, VersionedPace>,
    // The notice outbox.
    pub outbox: super::outbox::Outbox,
    // Management API keys.
    pub api_keys: super::api_keys::ApiKeys,
}

impl Tables {
    /// The device `id` of `tenant`.
    pub fn device(&self, tenant: TenantId, id: DeviceId) -> Result<&Device, StoreError> {
        self.devices
            .get(&id)
            .filter(|d| d.tenant_id == tenant)
            .ok_or_else(|| StoreError::not_found("device", id))
    }

    /// The update `id` of `tenant`.
    pub fn update(&self, tenant: TenantId, id: UpdateId) -> Result<&UpdateSlot, StoreError> {
        self.updates
            .get(&id)
            .filter(|s| s.update.tenant_id == tenant)
            .ok_or_else(|| StoreError::not_found("update", id))
    }

    /// Adds the indexes of `update` (a new or changed record).
    pub fn index_update(&mut self, update: &Update) {
        if update.state == UpdateState::Queued {
            self.queues
                .entry(QueueKey::of(update))
                .or_default()
                .insert((update.wave, update.state_changed_at, update.id));
        }
        if let Some(at) = update.wake_at {
            self.due.insert((at, update.id));
        }
        *self
            .state_counts
            .entry((update.tenant_id, update.state))
            .or_default() += 1;
        if let Some(c) = update.campaign_id {
            let waves = self.campaign_counts.entry(c).or_default();
            let wave = update.wave as usize;
            if waves.len() <= wave {
                waves.resize(wave + 1, StateCounts::default());
            }
            waves[wave].add(update.state, 1);
        }
    }

    /// Removes the indexes of `update` (the record as it was).
    pub fn unindex_update(&mut self, update: &Update) {
        if update.state == UpdateState::Queued {
            if let Some(q) = self.queues.get_mut(&QueueKey::of(update)) {
                q.remove(&(update.wave, update.state_changed_at, update.id));
            }
        }
        if let Some(at) = update.wake_at {
            self.due.remove(&(at, update.id));
        }
        if let Some(n) = self.state_counts.get_mut(&(update.tenant_id, update.state)) {
            *n = n.saturating_sub(1);
        }
        if let Some(c) = update.campaign_id {
            if let Some(w) = self
                .campaign_counts
                .get_mut(&c)
                .and_then(|w| w.get_mut(update.wave as usize))
            {
                w.remove(update.state, 1);
            }
        }
    }

    /// Appends a history entry with its indexes.
    pub fn push_history(&mut self, entry: HistoryEntry) {
        let at = self.history_next;
        self.history_next += 1;
        self.history_by_tenant
            .entry(entry.tenant_id)
            .or_default()
            .push_back(at);
        self.history_by_update
            .entry(entry.update_id)
            .or_default()
            .push(at);
        self.history_by_device
            .entry(entry.device_id)
            .or_default()
            .push(at);
        self.history.insert(at, entry);
    }
}
