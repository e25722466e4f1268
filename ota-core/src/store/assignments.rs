//! Assignments of packages to devices, groups and profiles.

use super::AuditOf;
use super::StoreError;
use crate::assignment::{Assignment, AssignmentTarget};
use crate::audit::AuditEntry;
use crate::device::Device;
use crate::ids::{PackageId, TenantId};
use crate::package::PackageKind;
use async_trait::async_trait;

/// Stores assignments: at most one per (tenant, kind, target).
///
/// Writes that are management actions take their audit entry: see
/// [audited writes](crate::store#audited-writes).
#[async_trait]
pub trait AssignmentStore: Send + Sync {
    /// Stores `assignment`, replacing the one of the same (tenant, kind, target), which is
    /// returned. [`StoreError::NotFound`] when its package does not exist in the tenant,
    /// checked atomically with the write (a package being deleted is either still there and
    /// then refuses the delete, or gone and then refuses this).
    async fn put_assignment(
        &self,
        assignment: &Assignment,
        audit: Option<&AuditEntry>,
    ) -> Result<Option<Assignment>, StoreError>;
    /// Removes the assignment of (tenant, kind, target), returning it; `audit` builds the
    /// entry from the removed assignment (none is written when there was none).
    async fn remove_assignment(
        &self,
        tenant: TenantId,
        kind: PackageKind,
        target: AssignmentTarget,
        audit: Option<AuditOf<'_, Assignment>>,
    ) -> Result<Option<Assignment>, StoreError>;
    /// The assignment of (tenant, kind, target).
    async fn get_assignment(
        &self,
        tenant: TenantId,
        kind: PackageKind,
        target: AssignmentTarget,
    ) -> Result<Option<Assignment>, StoreError>;
    /// Every assignment of the tenant (of one kind, or all).
    async fn list_assignments(
        &self,
        tenant: TenantId,
        kind: Option<PackageKind>,
    ) -> Result<Vec<Assignment>, StoreError>;
    /// The assignments of `kind` that concern `device`: to it, to one of its groups, to its
    /// profile.
    async fn assignments_for_device(
        &self,
        device: &Device,
        kind: PackageKind,
    ) -> Result<Vec<Assignment>, StoreError>;
    /// The assignments of `package`.
    async fn assignments_of_package(
        &self,
        tenant: TenantId,
        package: PackageId,
    ) -> Result<Vec<Assignment>, StoreError>;
}
