//! [`AuditStore`] in memory.

use super::tables::Tables;
use super::MemoryStore;
use crate::audit::AuditEntry;
use crate::ids::TenantId;
use crate::store::{AuditStore, Page, PageRequest, StoreError};
use async_trait::async_trait;
use std::ops::Bound;

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.audited(Some(entry), |_| Ok(()))
    }

    async fn list_audit(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>, StoreError> {
        let t = self.lock();
        let Some(log) = t.audit.get(&tenant) else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let from = page.after.map_or(Bound::Unbounded, Bound::Excluded);
        let items = log
            .range((from, Bound::Unbounded))
            .map(|(_, e)| e.clone())
            .take(page.effective_limit() + 1)
            .collect();
        Ok(Page::from_overfetch(items, &page, |e| e.id))
    }
}

impl MemoryStore {
    /// Runs the write `action` on the locked tables and, when it succeeds, appends `audit`
    /// under the same lock: both or neither. The entry's id is checked before the action, so
    /// a refused entry leaves the tables untouched.
    pub(super) fn audited<T>(
        &self,
        audit: Option<&AuditEntry>,
        action: impl FnOnce(&mut Tables) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut t = self.lock();
        if let Some(entry) = audit {
            t.check_audit_id(entry)?;
        }
        let out = action(&mut t)?;
        if let Some(entry) = audit {
            t.insert_audit(entry.clone());
        }
        Ok(out)
    }
}

impl Tables {
    /// Appends `entry` (its id checked with [`Tables::check_audit_id`]).
    pub(super) fn insert_audit(&mut self, entry: AuditEntry) {
        self.audit
            .entry(entry.tenant_id)
            .or_default()
            .insert(entry.id, entry);
    }

    /// [`StoreError::Conflict`] when an entry with this id is stored.
    pub(super) fn check_audit_id(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        if self
            .audit
            .get(&entry.tenant_id)
            .is_some_and(|log| log.contains_key(&entry.id))
        {
            return Err(StoreError::conflict(
                "audit entry",
                format!("id {} exists; the audit log is append only", entry.id),
            ));
        }
        Ok(())
    }
}
