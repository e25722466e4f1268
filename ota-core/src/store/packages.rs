//! Package metadata and content.

use super::{AuditOf, ByteRange, ByteStream, Page, PageRequest, StoreError};
use crate::audit::AuditEntry;
use crate::checksum::Checksum;
use crate::ids::{PackageId, TenantId};
use crate::package::{Package, PackageKind};
use async_trait::async_trait;

/// Stores packages and their content.
///
/// Writes that are management actions take their audit entry: see
/// [audited writes](crate::store#audited-writes).
#[async_trait]
pub trait PackageStore: Send + Sync {
    /// Stores the metadata of a package whose bytes live elsewhere (an external URL).
    /// [`StoreError::Conflict`] when (tenant, kind, title, version) or the id exists.
    async fn create_package(
        &self,
        package: &Package,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError>;

    /// Stores a package and its content, read from `content` as it streams in. The checksum
    /// is verified while streaming (`expected`, or SHA256 computed when `None`); the stored
    /// package gets `size`, `checksum` and `sha256` from what was read. On a mismatch
    /// ([`StoreError::ChecksumMismatch`]), a size over `max_size` ([`StoreError::TooLarge`]),
    /// a failing stream or a conflict, nothing is kept: neither metadata nor content.
    async fn create_package_with_content(
        &self,
        package: Package,
        expected: Option<Checksum>,
        max_size: Option<u64>,
        content: ByteStream,
        audit: Option<AuditOf<'_, Package>>,
    ) -> Result<Package, StoreError>;

    /// The package `id` of `tenant`.
    async fn get_package(&self, tenant: TenantId, id: PackageId) -> Result<Package, StoreError>;

    /// The package with this title and version, if any.
    async fn find_package(
        &self,
        tenant: TenantId,
        kind: PackageKind,
        title: &str,
        version: &str,
    ) -> Result<Option<Package>, StoreError>;

    /// The tenant's packages (of one kind, or all), ordered by id.
    async fn list_packages(
        &self,
        tenant: TenantId,
        kind: Option<PackageKind>,
        page: PageRequest,
    ) -> Result<Page<Package>, StoreError>;

    /// Deletes a package and its content. [`StoreError::Conflict`] while an assignment
    /// refers to it, checked atomically with the delete (see
    /// [`AssignmentStore::put_assignment`](super::AssignmentStore::put_assignment)); other
    /// uses (unfinished updates, campaigns, scheduled events) are the engine's check.
    async fn delete_package(
        &self,
        tenant: TenantId,
        id: PackageId,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError>;

    /// Streams `range` of the package's stored content. [`StoreError::NotFound`] for an
    /// unknown package or one without stored content, [`StoreError::RangeNotSatisfiable`] for
    /// a range outside it (see [`ByteRange::resolve`]).
    async fn read_content(
        &self,
        tenant: TenantId,
        id: PackageId,
        range: ByteRange,
    ) -> Result<ByteStream, StoreError>;
}
