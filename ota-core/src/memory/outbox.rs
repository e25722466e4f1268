//! [`NoticeOutbox`] and [`ClaimRecovery`] in memory: the outbox lives under the same lock as
//! the updates, so a release and its notice are written in one step.

use super::tables::{Map, Tables};
use super::updates::{apply_transition, claim_queued_in};
use super::MemoryStore;
use crate::clock::Timestamp;
use crate::ids::{DeviceId, NoticeId, TenantId};
use crate::package::PackageKind;
use crate::store::{
    AuditedTransition, ClaimRecovery, ClaimRequest, ClaimedReleases, NoticeClaim, NoticeLease,
    NoticeOutbox, OutboxEntry, PlanRelease, QueueScope, Release, StoreError,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashSet};

/// An undelivered notice with its lease.
#[derive(Clone, Debug)]
struct Slot {
    entry: OutboxEntry,
    lease: Option<NoticeLease>,
}

/// The undelivered notices, in id (time) order, with the newest per device and kind.
#[derive(Default)]
pub(super) struct Outbox {
    notices: BTreeMap<NoticeId, Slot>,
    by_device: Map<(DeviceId, PackageKind), NoticeId>,
}

impl Outbox {
    /// Adds `entry`, dropping the older notice of its device and kind.
    fn put(&mut self, entry: &OutboxEntry, lease: Option<&NoticeLease>) {
        let key = (entry.notice.device_id(), entry.notice.kind());
        if let Some(old) = self.by_device.insert(key, entry.id) {
            self.notices.remove(&old);
        }
        self.notices.insert(
            entry.id,
            Slot {
                entry: entry.clone(),
                lease: lease.cloned(),
            },
        );
    }

    fn remove(&mut self, id: NoticeId) {
        if let Some(slot) = self.notices.remove(&id) {
            let key = (slot.entry.notice.device_id(), slot.entry.notice.kind());
            if self.by_device.get(&key) == Some(&id) {
                self.by_device.remove(&key);
            }
        }
    }
}

fn free(slot: &Slot, now: Timestamp) -> bool {
    slot.lease.as_ref().is_none_or(|l| l.until <= now)
}

fn release_one(t: &mut Tables, r: &Release) -> Result<(), StoreError> {
    let tr = &r.transition;
    apply_transition(t, &tr.update, tr.expected_revision, &tr.history)?;
    t.outbox.put(&r.notice, r.lease.as_ref());
    Ok(())
}

/// Writes an operator's transition with its notice (if any); the caller appends its audit
/// entry under the same lock ([`MemoryStore::audited`]).
pub(super) fn transition_noticed(t: &mut Tables, w: &AuditedTransition) -> Result<(), StoreError> {
    let tr = &w.transition;
    apply_transition(t, &tr.update, tr.expected_revision, &tr.history)?;
    if let Some(notice) = &w.notice {
        t.outbox.put(notice, w.lease.as_ref());
    }
    Ok(())
}

#[async_trait]
impl NoticeOutbox for MemoryStore {
    async fn release_with_notices(&self, releases: &[Release]) -> Vec<Result<(), StoreError>> {
        let mut t = self.lock();
        releases.iter().map(|r| release_one(&mut t, r)).collect()
    }

    async fn claim_and_release(
        &self,
        request: &ClaimRequest,
        scope: QueueScope,
        plan: &PlanRelease<'_>,
    ) -> Option<Result<ClaimedReleases, StoreError>> {
        let mut t = self.lock();
        let claimed = claim_queued_in(&mut t, request, scope);
        let mut done = ClaimedReleases::default();
        for u in claimed {
            let package = t
                .packages
                .get(&u.package_id)
                .filter(|p| p.tenant_id == u.tenant_id);
            let Some(release) = plan(&u, package) else {
                done.left.push(u);
                continue;
            };
            // Under the lock the claimed revision is the stored one: a release of the claimed
            // update applies; one about another update is the planner's error.
            if release.transition.update.id != u.id {
                done.left.push(u);
                continue;
            }
            match release_one(&mut t, &release) {
                Ok(()) => done.released.push(release),
                Err(_) => done.left.push(u),
            }
        }
        Some(Ok(done))
    }

    async fn enqueue_notice(
        &self,
        entry: &OutboxEntry,
        lease: Option<&NoticeLease>,
    ) -> Result<(), StoreError> {
        self.lock().outbox.put(entry, lease);
        Ok(())
    }

    async fn claim_notices(&self, request: &NoticeClaim) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut t = self.lock();
        let devices: Option<HashSet<DeviceId>> = request
            .devices
            .as_ref()
            .map(|d| d.iter().copied().collect());
        let until = request
            .now
            .checked_add_signed(request.lease)
            .unwrap_or(request.now);
        let mut claimed = Vec::new();
        for slot in t.outbox.notices.values_mut() {
            if claimed.len() >= request.limit as usize {
                break;
            }
            let wanted = devices
                .as_ref()
                .is_none_or(|d| d.contains(&slot.entry.notice.device_id()));
            if wanted && free(slot, request.now) {
                slot.lease = Some(NoticeLease {
                    owner: request.owner.clone(),
                    until,
                });
                claimed.push(slot.entry.clone());
            }
        }
        Ok(claimed)
    }

    async fn mark_delivered(&self, ids: &[NoticeId]) -> Result<(), StoreError> {
        let mut t = self.lock();
        for id in ids {
            t.outbox.remove(*id);
        }
        Ok(())
    }

    async fn count_undelivered(&self, tenant: Option<TenantId>) -> Result<u64, StoreError> {
        let t = self.lock();
        Ok(t.outbox
            .notices
            .values()
            .filter(|s| tenant.is_none_or(|x| s.entry.tenant_id() == x))
            .count() as u64)
    }
}

#[async_trait]
impl ClaimRecovery for MemoryStore {
    async fn release_claims_of(&self, owner: &str) -> Result<u64, StoreError> {
        let mut t = self.lock();
        let mut n = 0;
        for slot in t.updates.values_mut() {
            if slot.lease.as_ref().is_some_and(|(o, _)| o == owner) {
                slot.lease = None;
                n += 1;
            }
        }
        for slot in t.outbox.notices.values_mut() {
            if slot.lease.as_ref().is_some_and(|l| l.owner == owner) {
                slot.lease = None;
                n += 1;
            }
        }
        Ok(n)
    }
}
