//! [`RetentionStore`] in memory: history is trimmed from each tenant's append-order queue,
//! audit from each tenant's id-ordered log. A batch holds the tables' lock for at most
//! `limit` entries.

use super::tables::Tables;
use super::MemoryStore;
use crate::clock::Timestamp;
use crate::ids::TenantId;
use crate::store::{RetainedLog, RetentionStore, StoreError};
use async_trait::async_trait;

#[async_trait]
impl RetentionStore for MemoryStore {
    async fn purge_log(
        &self,
        log: RetainedLog,
        tenant: TenantId,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let mut t = self.lock();
        Ok(match log {
            RetainedLog::History => purge_history(&mut t, tenant, before, limit),
            RetainedLog::Audit => purge_audit(&mut t, tenant, before, limit),
        })
    }

    async fn retention_tenants(
        &self,
        log: RetainedLog,
        after: Option<TenantId>,
        limit: u32,
    ) -> Result<Vec<TenantId>, StoreError> {
        let t = self.lock();
        let mut tenants: Vec<TenantId> = match log {
            RetainedLog::History => t
                .history_by_tenant
                .iter()
                .filter(|(_, q)| !q.is_empty())
                .map(|(k, _)| *k)
                .collect(),
            RetainedLog::Audit => t
                .audit
                .iter()
                .filter(|(_, l)| !l.is_empty())
                .map(|(k, _)| *k)
                .collect(),
        };
        tenants.retain(|k| after.is_none_or(|a| *k > a));
        tenants.sort_unstable();
        tenants.truncate(limit as usize);
        Ok(tenants)
    }
}

fn purge_history(t: &mut Tables, tenant: TenantId, before: Timestamp, limit: u32) -> u64 {
    let mut deleted = 0;
    while deleted < u64::from(limit) {
        let Some(queue) = t.history_by_tenant.get_mut(&tenant) else {
            break;
        };
        let Some(&seq) = queue.front() else {
            t.history_by_tenant.remove(&tenant);
            break;
        };
        if t.history.get(&seq).is_some_and(|e| e.at >= before) {
            break;
        }
        queue.pop_front();
        if queue.is_empty() {
            t.history_by_tenant.remove(&tenant);
        }
        if let Some(entry) = t.history.remove(&seq) {
            unindex(&mut t.history_by_update, entry.update_id, seq);
            unindex(&mut t.history_by_device, entry.device_id, seq);
        }
        deleted += 1;
    }
    deleted
}

/// Removes `seq` from the list of `key` (it is at the front: lists are in append order and
/// retention deletes the oldest first), dropping lists that become empty.
fn unindex<K: std::hash::Hash + Eq>(
    index: &mut super::tables::Map<K, Vec<usize>>,
    key: K,
    seq: usize,
) {
    if let Some(list) = index.get_mut(&key) {
        if let Some(pos) = list.iter().position(|s| *s == seq) {
            list.remove(pos);
        }
        if list.is_empty() {
            index.remove(&key);
        }
    }
}

fn purge_audit(t: &mut Tables, tenant: TenantId, before: Timestamp, limit: u32) -> u64 {
    let Some(log) = t.audit.get_mut(&tenant) else {
        return 0;
    };
    let mut deleted = 0;
    while deleted < u64::from(limit) {
        match log.first_key_value() {
            Some((_, e)) if e.at < before => {
                log.pop_first();
                deleted += 1;
            }
            _ => break,
        }
    }
    if log.is_empty() {
        t.audit.remove(&tenant);
    }
    deleted
}
