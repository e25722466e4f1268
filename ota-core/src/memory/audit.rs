//! [`AuditStore`] in memory.

use super::MemoryStore;
use crate::audit::AuditEntry;
use crate::ids::TenantId;
use crate::store::{AuditStore, Page, PageRequest, StoreError};
use async_trait::async_trait;
use std::ops::Bound;

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut t = self.lock();
        let log = t.audit.entry(entry.tenant_id).or_default();
        if log.contains_key(&entry.id) {
            return Err(StoreError::conflict(
                "audit entry",
                format!("id {} exists; the audit log is append only", entry.id),
            ));
        }
        log.insert(entry.id, entry.clone());
        Ok(())
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
