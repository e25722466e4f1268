//! [`UpdateStore`] in memory.

use super::tables::{QueueKey, Tables, UpdateSlot};
use super::MemoryStore;
use crate::ids::{DeviceId, TenantId, UpdateId};
use crate::package::PackageKind;
use crate::store::{
    AuditedTransition, ClaimRequest, Page, PageRequest, QueueScope, StoreError, UpdateFilter,
    UpdateStore,
};
use crate::update::{HistoryEntry, Update};
use async_trait::async_trait;
use std::collections::HashSet;
use std::ops::Bound;

/// Whether `device` already has an unfinished update of `kind`.
fn has_unfinished(t: &Tables, device: DeviceId, kind: PackageKind) -> bool {
    t.latest
        .get(&(device, kind))
        .and_then(|id| t.updates.get(id))
        .is_some_and(|s| !s.update.state.is_terminal())
}

/// Leases the slots `ids` to the claimer and returns their updates.
fn lease(t: &mut Tables, ids: Vec<UpdateId>, request: &ClaimRequest) -> Vec<Update> {
    let until = request
        .now
        .checked_add_signed(request.lease)
        .unwrap_or(request.now);
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(slot) = t.updates.get_mut(&id) {
            slot.lease = Some((request.owner.clone(), until));
            claimed.push(slot.update.clone());
        }
    }
    claimed
}

fn claimable<'a>(
    t: &'a Tables,
    ids: impl Iterator<Item = UpdateId> + 'a,
    request: &'a ClaimRequest,
) -> impl Iterator<Item = UpdateId> + 'a {
    ids.filter_map(move |id| t.updates.get(&id))
        .filter(move |slot| !slot.is_leased(request.now))
        .map(|slot| slot.update.id)
}

/// [`UpdateStore::claim_queued`] on locked tables.
pub(super) fn claim_queued_in(
    t: &mut Tables,
    request: &ClaimRequest,
    scope: QueueScope,
) -> Vec<Update> {
    let (key, up_to_wave) = match scope {
        QueueScope::Direct => (QueueKey::Direct, 0),
        QueueScope::Campaign { id, up_to_wave } => (QueueKey::Campaign(id), up_to_wave),
    };
    let ids: Vec<UpdateId> = match t.queues.get(&key) {
        Some(queue) => {
            let in_waves = queue
                .iter()
                .take_while(|(wave, _, _)| *wave <= up_to_wave)
                .map(|(_, _, id)| *id);
            claimable(t, in_waves, request)
                .take(request.limit as usize)
                .collect()
        }
        None => Vec::new(),
    };
    lease(t, ids, request)
}

/// Writes `update` if the stored revision is still `expected_revision`, with its history
/// entry, dropping any claim on it.
pub(super) fn apply_transition(
    t: &mut Tables,
    update: &Update,
    expected_revision: u64,
    history: &HistoryEntry,
) -> Result<(), StoreError> {
    let old = t.update(update.tenant_id, update.id)?.update.clone();
    if old.revision != expected_revision {
        return Err(StoreError::precondition(format!(
            "update {} is at revision {}, not {expected_revision}",
            update.id, old.revision
        )));
    }
    if old.state.is_terminal()
        && !update.state.is_terminal()
        && t.latest
            .get(&(update.device_id, update.kind))
            .is_some_and(|latest| *latest != update.id)
    {
        // A retry of an update that a newer one replaced would give the device two live
        // updates of one kind.
        return Err(StoreError::conflict(
            "update",
            format!(
                "device {} has a newer {} update; update {} cannot start again",
                update.device_id, update.kind, update.id
            ),
        ));
    }
    t.unindex_update(&old);
    t.index_update(update);
    if let Some(slot) = t.updates.get_mut(&update.id) {
        slot.update = update.clone();
        slot.lease = None;
    }
    t.push_history(history.clone());
    Ok(())
}

#[async_trait]
impl UpdateStore for MemoryStore {
    async fn create_updates(&self, updates: &[Update]) -> Result<(), StoreError> {
        let mut t = self.lock();
        let mut ids = HashSet::new();
        let mut devices = HashSet::new();
        for u in updates {
            if t.updates.contains_key(&u.id) || !ids.insert(u.id) {
                return Err(StoreError::conflict(
                    "update",
                    format!("id {} exists", u.id),
                ));
            }
            if !u.state.is_terminal()
                && (has_unfinished(&t, u.device_id, u.kind)
                    || !devices.insert((u.device_id, u.kind)))
            {
                return Err(StoreError::conflict(
                    "update",
                    format!(
                        "device {} already has an unfinished {} update",
                        u.device_id, u.kind
                    ),
                ));
            }
        }
        for u in updates {
            t.index_update(u);
            t.tenant_updates
                .entry(u.tenant_id)
                .or_default()
                .insert(u.id);
            t.latest.insert((u.device_id, u.kind), u.id);
            if let Some(c) = u.campaign_id {
                t.campaign_members.entry(c).or_default().insert(u.device_id);
            }
            t.updates.insert(
                u.id,
                UpdateSlot {
                    update: u.clone(),
                    lease: None,
                },
            );
        }
        Ok(())
    }

    async fn transition(
        &self,
        update: &Update,
        expected_revision: u64,
        history: &HistoryEntry,
    ) -> Result<(), StoreError> {
        apply_transition(&mut self.lock(), update, expected_revision, history)
    }

    async fn transition_audited(
        &self,
        write: &AuditedTransition,
    ) -> Option<Result<(), StoreError>> {
        Some(self.audited(Some(&write.audit), |t| {
            super::outbox::transition_noticed(t, write)
        }))
    }

    async fn append_history(&self, entry: &HistoryEntry) -> Result<(), StoreError> {
        let mut t = self.lock();
        t.update(entry.tenant_id, entry.update_id)?;
        t.push_history(entry.clone());
        Ok(())
    }

    async fn get_update(&self, tenant: TenantId, id: UpdateId) -> Result<Update, StoreError> {
        Ok(self.lock().update(tenant, id)?.update.clone())
    }

    async fn latest_update(
        &self,
        tenant: TenantId,
        device: DeviceId,
        kind: PackageKind,
    ) -> Result<Option<Update>, StoreError> {
        let t = self.lock();
        Ok(t.latest
            .get(&(device, kind))
            .and_then(|id| t.updates.get(id))
            .map(|s| &s.update)
            .filter(|u| u.tenant_id == tenant)
            .cloned())
    }

    async fn list_updates(
        &self,
        tenant: TenantId,
        filter: &UpdateFilter,
        page: PageRequest,
    ) -> Result<Page<Update>, StoreError> {
        let t = self.lock();
        let Some(ids) = t.tenant_updates.get(&tenant) else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let from = page.after.map_or(Bound::Unbounded, |a| {
            Bound::Excluded(UpdateId::from_uuid(a))
        });
        let items = ids
            .range((from, Bound::Unbounded))
            .filter_map(|id| t.updates.get(id))
            .map(|s| &s.update)
            .filter(|u| filter.matches(u))
            .take(page.effective_limit() + 1)
            .cloned()
            .collect();
        Ok(Page::from_overfetch(items, &page, |u| u.id.0))
    }

    async fn count_updates(
        &self,
        tenant: Option<TenantId>,
        filter: &UpdateFilter,
    ) -> Result<u64, StoreError> {
        let t = self.lock();
        let only_states = UpdateFilter {
            states: filter.states.clone(),
            ..UpdateFilter::default()
        };
        if *filter == only_states && !filter.states.is_empty() {
            let n = t
                .state_counts
                .iter()
                .filter(|((tn, s), _)| tenant.is_none_or(|x| x == *tn) && filter.states.contains(s))
                .map(|(_, n)| *n)
                .sum();
            return Ok(n);
        }
        let n = match tenant {
            Some(tenant) => t
                .tenant_updates
                .get(&tenant)
                .into_iter()
                .flatten()
                .filter_map(|id| t.updates.get(id))
                .filter(|s| filter.matches(&s.update))
                .count(),
            None => t
                .updates
                .values()
                .filter(|s| filter.matches(&s.update))
                .count(),
        };
        Ok(n as u64)
    }

    async fn claim_queued(
        &self,
        request: &ClaimRequest,
        scope: QueueScope,
    ) -> Result<Vec<Update>, StoreError> {
        Ok(claim_queued_in(&mut self.lock(), request, scope))
    }

    async fn claim_due(&self, request: &ClaimRequest) -> Result<Vec<Update>, StoreError> {
        let mut t = self.lock();
        let due = t
            .due
            .iter()
            .take_while(|(at, _)| *at <= request.now)
            .map(|(_, id)| *id);
        let ids: Vec<UpdateId> = claimable(&t, due, request)
            .take(request.limit as usize)
            .collect();
        Ok(lease(&mut t, ids, request))
    }

    async fn release_claim(
        &self,
        tenant: TenantId,
        id: UpdateId,
        owner: &str,
    ) -> Result<(), StoreError> {
        let mut t = self.lock();
        t.update(tenant, id)?;
        if let Some(slot) = t.updates.get_mut(&id) {
            if matches!(&slot.lease, Some((holder, _)) if holder == owner) {
                slot.lease = None;
            }
        }
        Ok(())
    }

    async fn update_history(
        &self,
        tenant: TenantId,
        id: UpdateId,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let t = self.lock();
        t.update(tenant, id)?;
        Ok(t.history_by_update
            .get(&id)
            .into_iter()
            .flatten()
            .map(|i| t.history[i].clone())
            .collect())
    }

    async fn device_history(
        &self,
        tenant: TenantId,
        device: DeviceId,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let t = self.lock();
        Ok(t.history_by_device
            .get(&device)
            .into_iter()
            .flat_map(|v| v.iter().rev())
            .map(|i| &t.history[i])
            .filter(|e| e.tenant_id == tenant)
            .take(limit as usize)
            .cloned()
            .collect())
    }
}
