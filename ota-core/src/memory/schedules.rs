//! [`ScheduleStore`] in memory.

use super::MemoryStore;
use crate::audit::AuditEntry;
use crate::clock::Timestamp;
use crate::ids::{ScheduleId, TenantId};
use crate::schedule::ScheduledEvent;
use crate::store::{Page, PageRequest, ScheduleStore, StoreError};
use async_trait::async_trait;

#[async_trait]
impl ScheduleStore for MemoryStore {
    async fn create_schedule(
        &self,
        event: &ScheduledEvent,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        self.audited(audit, |t| {
            if t.schedules.contains_key(&event.id) {
                return Err(StoreError::conflict(
                    "schedule",
                    format!("id {} exists", event.id),
                ));
            }
            t.schedules.insert(event.id, event.clone());
            Ok(())
        })
    }

    async fn get_schedule(
        &self,
        tenant: TenantId,
        id: ScheduleId,
    ) -> Result<ScheduledEvent, StoreError> {
        self.lock()
            .schedules
            .get(&id)
            .filter(|e| e.tenant_id == tenant)
            .cloned()
            .ok_or_else(|| StoreError::not_found("schedule", id))
    }

    async fn save_schedule(
        &self,
        event: &ScheduledEvent,
        expected_revision: u64,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        self.audited(audit, |t| {
            let stored = t
                .schedules
                .get_mut(&event.id)
                .filter(|e| e.tenant_id == event.tenant_id)
                .ok_or_else(|| StoreError::not_found("schedule", event.id))?;
            if stored.revision != expected_revision {
                return Err(StoreError::precondition(format!(
                    "schedule {} is at revision {}, not {expected_revision}",
                    event.id, stored.revision
                )));
            }
            *stored = event.clone();
            Ok(())
        })
    }

    async fn delete_schedule(
        &self,
        tenant: TenantId,
        id: ScheduleId,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        self.audited(audit, |t| match t.schedules.get(&id) {
            Some(e) if e.tenant_id == tenant => {
                t.schedules.remove(&id);
                Ok(())
            }
            _ => Err(StoreError::not_found("schedule", id)),
        })
    }

    async fn list_schedules(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<ScheduledEvent>, StoreError> {
        let t = self.lock();
        let mut items: Vec<ScheduledEvent> = t
            .schedules
            .values()
            .filter(|e| e.tenant_id == tenant && page.after.is_none_or(|a| e.id.0 > a))
            .cloned()
            .collect();
        items.sort_by_key(|e| e.id);
        items.truncate(page.effective_limit() + 1);
        Ok(Page::from_overfetch(items, &page, |e| e.id.0))
    }

    async fn due_schedules(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<ScheduledEvent>, StoreError> {
        let t = self.lock();
        let mut due: Vec<ScheduledEvent> = t
            .schedules
            .values()
            .filter(|e| e.next_run.is_some_and(|n| n <= now))
            .cloned()
            .collect();
        due.sort_by_key(|e| (e.next_run, e.id));
        due.truncate(limit as usize);
        Ok(due)
    }
}
