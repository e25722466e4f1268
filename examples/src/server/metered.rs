//! A store that measures the store it wraps: the latency of every call, applied transitions
//! by state, releases, device reports and content bytes read (see [`super::metrics`]).
//! Every call goes through unchanged, except `get_package`, answered from the
//! [`PackageCache`] when it can. The update, campaign, schedule and outbox traits are in
//! `metered_work.rs`.

use super::metrics::{state_label, Metrics};
use super::package_cache::PackageCache;
use futures_util::StreamExt;
use ota_core::audit::AuditEntry;
use ota_core::checksum::Checksum;
use ota_core::device::{Device, DeviceGroup, DeviceProfile};
use ota_core::ids::{DeviceId, GroupId, PackageId, ProfileId, TenantId};
use ota_core::pacing::PaceState;
use ota_core::store::{
    AssignmentStore, AuditOf, AuditStore, ByteRange, ByteStream, DeviceSelector, DeviceStore,
    PaceStore, PackageStore, Page, PageRequest, Store, StoreError, VersionedPace,
};
use ota_core::update::{EventSource, HistoryEntry};
use ota_core::{Assignment, AssignmentTarget, Package, PackageKind, TitleVersion};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a package record is remembered by default (see [`PackageCache`]).
pub const PACKAGE_TTL: Duration = Duration::from_secs(60);
/// Package records remembered at most.
const PACKAGE_CAPACITY: usize = 1024;

/// Wraps a store and records what passes through it in [`Metrics`].
#[derive(Clone)]
pub struct MeteredStore {
    pub(super) inner: Arc<dyn Store>,
    pub(super) metrics: Arc<Metrics>,
    packages: Arc<PackageCache>,
}

impl MeteredStore {
    /// Measures `inner` into `metrics`.
    pub fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Self {
            inner,
            metrics,
            packages: Arc::new(PackageCache::new(PACKAGE_TTL, PACKAGE_CAPACITY)),
        }
    }

    /// Remembers package records for `ttl` instead of [`PACKAGE_TTL`] (zero: not at all).
    pub fn package_ttl(mut self, ttl: Duration) -> Self {
        self.packages = Arc::new(PackageCache::new(ttl, PACKAGE_CAPACITY));
        self
    }

    /// Counts an applied transition (or an ignored report) described by `history`.
    pub(super) fn count_history(&self, history: &HistoryEntry) {
        if history.source == EventSource::Device {
            self.metrics.reports.inc();
        }
        if history.from != history.to {
            self.metrics
                .transitions
                .get_or_create(&state_label(history.to))
                .inc();
        }
    }
}

/// Whether a store answer is a transient failure.
pub(super) trait Unavailable {
    fn unavailable(&self) -> bool;
}

impl<T> Unavailable for Result<T, StoreError> {
    fn unavailable(&self) -> bool {
        self.as_ref().is_err_and(StoreError::is_transient)
    }
}

impl<T> Unavailable for Option<Result<T, StoreError>> {
    fn unavailable(&self) -> bool {
        self.as_ref().is_some_and(Unavailable::unavailable)
    }
}

impl<T> Unavailable for Vec<Result<T, StoreError>> {
    fn unavailable(&self) -> bool {
        self.iter().any(Unavailable::unavailable)
    }
}

/// Awaits `$call`, recording its latency under `$op`.
macro_rules! timed {
    ($self:ident, $op:literal, $call:expr) => {{
        let started = Instant::now();
        let answer = $call.await;
        $self
            .metrics
            .store_call($op, started.elapsed(), answer.unavailable());
        answer
    }};
}
pub(super) use timed;

#[ota_core::async_trait]
impl PackageStore for MeteredStore {
    async fn create_package(
        &self,
        package: &Package,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        timed!(
            self,
            "create_package",
            self.inner.create_package(package, audit)
        )
    }

    async fn create_package_with_content(
        &self,
        package: Package,
        expected: Option<Checksum>,
        max_size: Option<u64>,
        content: ByteStream,
        audit: Option<AuditOf<'_, Package>>,
    ) -> Result<Package, StoreError> {
        timed!(
            self,
            "create_package_with_content",
            self.inner
                .create_package_with_content(package, expected, max_size, content, audit)
        )
    }

    async fn get_package(&self, tenant: TenantId, id: PackageId) -> Result<Package, StoreError> {
        if let Some(package) = self.packages.get(tenant, id, Instant::now()) {
            return Ok(package);
        }
        let read_at = Instant::now();
        let package = timed!(self, "get_package", self.inner.get_package(tenant, id))?;
        self.packages.remember(&package, read_at);
        Ok(package)
    }

    async fn find_package(
        &self,
        tenant: TenantId,
        kind: PackageKind,
        title: &str,
        version: &str,
    ) -> Result<Option<Package>, StoreError> {
        timed!(
            self,
            "find_package",
            self.inner.find_package(tenant, kind, title, version)
        )
    }

    async fn list_packages(
        &self,
        tenant: TenantId,
        kind: Option<PackageKind>,
        page: PageRequest,
    ) -> Result<Page<Package>, StoreError> {
        timed!(
            self,
            "list_packages",
            self.inner.list_packages(tenant, kind, page)
        )
    }

    async fn delete_package(
        &self,
        tenant: TenantId,
        id: PackageId,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        self.packages.forget(tenant, id);
        let deleted = timed!(
            self,
            "delete_package",
            self.inner.delete_package(tenant, id, audit)
        );
        // Again: a read during the delete may have remembered it.
        self.packages.forget(tenant, id);
        deleted
    }

    async fn read_content(
        &self,
        tenant: TenantId,
        id: PackageId,
        range: ByteRange,
    ) -> Result<ByteStream, StoreError> {
        let stream = timed!(
            self,
            "read_content",
            self.inner.read_content(tenant, id, range)
        )?;
        let metrics = self.metrics.clone();
        Ok(Box::pin(stream.map(move |chunk| {
            if let Ok(bytes) = &chunk {
                metrics.content_read.inc_by(bytes.len() as u64);
            }
            chunk
        })))
    }
}

#[ota_core::async_trait]
impl DeviceStore for MeteredStore {
    async fn create_profile(
        &self,
        profile: &DeviceProfile,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        timed!(
            self,
            "create_profile",
            self.inner.create_profile(profile, audit)
        )
    }

    async fn get_profile(
        &self,
        tenant: TenantId,
        id: ProfileId,
    ) -> Result<DeviceProfile, StoreError> {
        timed!(self, "get_profile", self.inner.get_profile(tenant, id))
    }

    async fn list_profiles(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<DeviceProfile>, StoreError> {
        timed!(
            self,
            "list_profiles",
            self.inner.list_profiles(tenant, page)
        )
    }

    async fn create_group(
        &self,
        group: &DeviceGroup,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        timed!(self, "create_group", self.inner.create_group(group, audit))
    }

    async fn get_group(&self, tenant: TenantId, id: GroupId) -> Result<DeviceGroup, StoreError> {
        timed!(self, "get_group", self.inner.get_group(tenant, id))
    }

    async fn list_groups(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<DeviceGroup>, StoreError> {
        timed!(self, "list_groups", self.inner.list_groups(tenant, page))
    }

    async fn create_devices(
        &self,
        devices: &[Device],
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        timed!(
            self,
            "create_devices",
            self.inner.create_devices(devices, audit)
        )
    }

    async fn get_device(&self, tenant: TenantId, id: DeviceId) -> Result<Device, StoreError> {
        timed!(self, "get_device", self.inner.get_device(tenant, id))
    }

    async fn find_devices_by_name(
        &self,
        tenant: TenantId,
        names: &[String],
    ) -> Result<Vec<Device>, StoreError> {
        timed!(
            self,
            "find_devices_by_name",
            self.inner.find_devices_by_name(tenant, names)
        )
    }

    async fn device_by_token(&self, token: &str) -> Result<Device, StoreError> {
        timed!(self, "device_by_token", self.inner.device_by_token(token))
    }

    async fn list_devices(
        &self,
        tenant: TenantId,
        selector: DeviceSelector,
        page: PageRequest,
    ) -> Result<Page<Device>, StoreError> {
        timed!(
            self,
            "list_devices",
            self.inner.list_devices(tenant, selector, page)
        )
    }

    async fn count_devices(
        &self,
        tenant: TenantId,
        selector: DeviceSelector,
    ) -> Result<u64, StoreError> {
        timed!(
            self,
            "count_devices",
            self.inner.count_devices(tenant, selector)
        )
    }

    async fn set_device_profile(
        &self,
        tenant: TenantId,
        id: DeviceId,
        profile: ProfileId,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        timed!(
            self,
            "set_device_profile",
            self.inner.set_device_profile(tenant, id, profile, audit)
        )
    }

    async fn set_device_groups(
        &self,
        tenant: TenantId,
        id: DeviceId,
        groups: &BTreeSet<GroupId>,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        timed!(
            self,
            "set_device_groups",
            self.inner.set_device_groups(tenant, id, groups, audit)
        )
    }

    async fn set_current_version(
        &self,
        tenant: TenantId,
        id: DeviceId,
        kind: PackageKind,
        current: Option<TitleVersion>,
    ) -> Result<(), StoreError> {
        timed!(
            self,
            "set_current_version",
            self.inner.set_current_version(tenant, id, kind, current)
        )
    }

    async fn rename_profile(
        &self,
        tenant: TenantId,
        id: ProfileId,
        name: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<DeviceProfile, StoreError> {
        timed!(
            self,
            "rename_profile",
            self.inner.rename_profile(tenant, id, name, audit)
        )
    }

    async fn delete_profile(
        &self,
        tenant: TenantId,
        id: ProfileId,
        audit: Option<&AuditEntry>,
    ) -> Result<DeviceProfile, StoreError> {
        timed!(
            self,
            "delete_profile",
            self.inner.delete_profile(tenant, id, audit)
        )
    }

    async fn rename_group(
        &self,
        tenant: TenantId,
        id: GroupId,
        name: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<DeviceGroup, StoreError> {
        timed!(
            self,
            "rename_group",
            self.inner.rename_group(tenant, id, name, audit)
        )
    }

    async fn delete_group(
        &self,
        tenant: TenantId,
        id: GroupId,
        audit: Option<&AuditEntry>,
    ) -> Result<DeviceGroup, StoreError> {
        timed!(
            self,
            "delete_group",
            self.inner.delete_group(tenant, id, audit)
        )
    }

    async fn rename_device(
        &self,
        tenant: TenantId,
        id: DeviceId,
        name: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        timed!(
            self,
            "rename_device",
            self.inner.rename_device(tenant, id, name, audit)
        )
    }

    async fn delete_device(
        &self,
        tenant: TenantId,
        id: DeviceId,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        timed!(
            self,
            "delete_device",
            self.inner.delete_device(tenant, id, audit)
        )
    }

    async fn set_device_token(
        &self,
        tenant: TenantId,
        id: DeviceId,
        token: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<Device, StoreError> {
        timed!(
            self,
            "set_device_token",
            self.inner.set_device_token(tenant, id, token, audit)
        )
    }
}

#[ota_core::async_trait]
impl AssignmentStore for MeteredStore {
    async fn put_assignment(
        &self,
        assignment: &Assignment,
        audit: Option<&AuditEntry>,
    ) -> Result<Option<Assignment>, StoreError> {
        timed!(
            self,
            "put_assignment",
            self.inner.put_assignment(assignment, audit)
        )
    }

    async fn remove_assignment(
        &self,
        tenant: TenantId,
        kind: PackageKind,
        target: AssignmentTarget,
        audit: Option<AuditOf<'_, Assignment>>,
    ) -> Result<Option<Assignment>, StoreError> {
        timed!(
            self,
            "remove_assignment",
            self.inner.remove_assignment(tenant, kind, target, audit)
        )
    }

    async fn get_assignment(
        &self,
        tenant: TenantId,
        kind: PackageKind,
        target: AssignmentTarget,
    ) -> Result<Option<Assignment>, StoreError> {
        timed!(
            self,
            "get_assignment",
            self.inner.get_assignment(tenant, kind, target)
        )
    }

    async fn list_assignments(
        &self,
        tenant: TenantId,
        kind: Option<PackageKind>,
    ) -> Result<Vec<Assignment>, StoreError> {
        timed!(
            self,
            "list_assignments",
            self.inner.list_assignments(tenant, kind)
        )
    }

    async fn assignments_for_device(
        &self,
        device: &Device,
        kind: PackageKind,
    ) -> Result<Vec<Assignment>, StoreError> {
        timed!(
            self,
            "assignments_for_device",
            self.inner.assignments_for_device(device, kind)
        )
    }

    async fn assignments_of_package(
        &self,
        tenant: TenantId,
        package: PackageId,
    ) -> Result<Vec<Assignment>, StoreError> {
        timed!(
            self,
            "assignments_of_package",
            self.inner.assignments_of_package(tenant, package)
        )
    }
}

#[ota_core::async_trait]
impl AuditStore for MeteredStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        timed!(self, "append_audit", self.inner.append_audit(entry))
    }

    async fn list_audit(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>, StoreError> {
        timed!(self, "list_audit", self.inner.list_audit(tenant, page))
    }
}

#[ota_core::async_trait]
impl PaceStore for MeteredStore {
    async fn get_pace(&self, key: &str) -> Result<Option<VersionedPace>, StoreError> {
        timed!(self, "get_pace", self.inner.get_pace(key))
    }

    async fn put_pace(
        &self,
        key: &str,
        expected_version: Option<u64>,
        state: &PaceState,
    ) -> Result<u64, StoreError> {
        timed!(
            self,
            "put_pace",
            self.inner.put_pace(key, expected_version, state)
        )
    }
}
