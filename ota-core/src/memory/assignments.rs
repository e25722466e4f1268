//! [`AssignmentStore`] in memory.

use super::MemoryStore;
use crate::assignment::{Assignment, AssignmentTarget};
use crate::audit::AuditEntry;
use crate::device::Device;
use crate::ids::{PackageId, TenantId};
use crate::package::PackageKind;
use crate::store::AuditOf;
use crate::store::{AssignmentStore, StoreError};
use async_trait::async_trait;

#[async_trait]
impl AssignmentStore for MemoryStore {
    async fn put_assignment(
        &self,
        assignment: &Assignment,
        audit: Option<&AuditEntry>,
    ) -> Result<Option<Assignment>, StoreError> {
        let key = (assignment.tenant_id, assignment.kind, assignment.target);
        self.audited(audit, |t| {
            // Under the same lock as deletes: a package deleted before is never assigned.
            if t.packages
                .get(&assignment.package_id)
                .is_none_or(|p| p.tenant_id != assignment.tenant_id)
            {
                return Err(StoreError::not_found("package", assignment.package_id));
            }
            Ok(t.assignments.insert(key, assignment.clone()))
        })
    }

    async fn remove_assignment(
        &self,
        tenant: TenantId,
        kind: PackageKind,
        target: AssignmentTarget,
        audit: Option<AuditOf<'_, Assignment>>,
    ) -> Result<Option<Assignment>, StoreError> {
        let key = (tenant, kind, target);
        let mut t = self.lock();
        let Some(entry) = t.assignments.get(&key).map(|a| audit.map(|of| of(a))) else {
            return Ok(None);
        };
        if let Some(entry) = &entry {
            t.check_audit_id(entry)?;
        }
        let removed = t.assignments.remove(&key);
        if let Some(entry) = entry {
            t.insert_audit(entry);
        }
        Ok(removed)
    }

    async fn get_assignment(
        &self,
        tenant: TenantId,
        kind: PackageKind,
        target: AssignmentTarget,
    ) -> Result<Option<Assignment>, StoreError> {
        Ok(self
            .lock()
            .assignments
            .get(&(tenant, kind, target))
            .cloned())
    }

    async fn list_assignments(
        &self,
        tenant: TenantId,
        kind: Option<PackageKind>,
    ) -> Result<Vec<Assignment>, StoreError> {
        let mut list: Vec<Assignment> = self
            .lock()
            .assignments
            .values()
            .filter(|a| a.tenant_id == tenant && kind.is_none_or(|k| a.kind == k))
            .cloned()
            .collect();
        list.sort_by_key(|a| a.id);
        Ok(list)
    }

    async fn assignments_for_device(
        &self,
        device: &Device,
        kind: PackageKind,
    ) -> Result<Vec<Assignment>, StoreError> {
        let t = self.lock();
        let tenant = device.tenant_id;
        let targets = std::iter::once(AssignmentTarget::Device(device.id))
            .chain(device.groups.iter().map(|g| AssignmentTarget::Group(*g)))
            .chain(std::iter::once(AssignmentTarget::Profile(
                device.profile_id,
            )));
        Ok(targets
            .filter_map(|target| t.assignments.get(&(tenant, kind, target)).cloned())
            .collect())
    }

    async fn assignments_of_package(
        &self,
        tenant: TenantId,
        package: PackageId,
    ) -> Result<Vec<Assignment>, StoreError> {
        let mut list: Vec<Assignment> = self
            .lock()
            .assignments
            .values()
            .filter(|a| a.tenant_id == tenant && a.package_id == package)
            .cloned()
            .collect();
        list.sort_by_key(|a| a.id);
        Ok(list)
    }
}
