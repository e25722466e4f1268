//! The audit log of management actions.

use super::{Page, PageRequest, StoreError};
use crate::audit::AuditEntry;
use crate::ids::TenantId;
use async_trait::async_trait;

/// Stores audit entries (append only).
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an entry. Entries are never replaced: one whose id is stored already is
    /// refused with [`StoreError::Conflict`].
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// The tenant's entries, oldest first (ordered by id, which is time-ordered).
    async fn list_audit(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>, StoreError>;
}
