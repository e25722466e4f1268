//! The audit log of management actions.

use super::{Page, PageRequest, StoreError};
use crate::audit::AuditEntry;
use crate::ids::TenantId;
use async_trait::async_trait;

/// Builds the audit entry of a management action from what the store wrote, for a write
/// whose outcome the caller cannot know before (the size and checksum of an upload).
pub type AuditOf<'a, T> = &'a (dyn Fn(&T) -> AuditEntry + Send + Sync);

/// Stores audit entries (append only).
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an entry on its own. Entries are never replaced: one whose id is stored
    /// already is refused with [`StoreError::Conflict`]. The writes that are management
    /// actions take their entry with them instead (see
    /// [audited writes](crate::store#audited-writes)); this is for entries of actions that
    /// write nothing else.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// The tenant's entries, oldest first (ordered by id, which is time-ordered).
    async fn list_audit(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>, StoreError>;
}
