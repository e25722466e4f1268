//! Scheduled events.

use super::{Page, PageRequest, StoreError};
use crate::audit::AuditEntry;
use crate::clock::Timestamp;
use crate::ids::{ScheduleId, TenantId};
use crate::schedule::ScheduledEvent;
use async_trait::async_trait;

/// Stores scheduled events.
///
/// Writes that are management actions take their audit entry: see
/// [audited writes](crate::store#audited-writes).
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Stores a new event. [`StoreError::Conflict`] when the id exists.
    async fn create_schedule(
        &self,
        event: &ScheduledEvent,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError>;
    /// The event `id` of `tenant`.
    async fn get_schedule(
        &self,
        tenant: TenantId,
        id: ScheduleId,
    ) -> Result<ScheduledEvent, StoreError>;
    /// Writes `event` if the stored revision is still `expected_revision`;
    /// [`StoreError::PreconditionFailed`] otherwise.
    async fn save_schedule(
        &self,
        event: &ScheduledEvent,
        expected_revision: u64,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError>;
    /// Deletes the event `id`.
    async fn delete_schedule(
        &self,
        tenant: TenantId,
        id: ScheduleId,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError>;
    /// The tenant's events, ordered by id.
    async fn list_schedules(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<ScheduledEvent>, StoreError>;
    /// Events of every tenant whose `next_run` is at or before `now`, earliest first, at most
    /// `limit`.
    async fn due_schedules(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<ScheduledEvent>, StoreError>;
}
