//! [`PackageStore`] in memory.

use super::tables::Tables;
use super::MemoryStore;
use crate::audit::AuditEntry;
use crate::checksum::{Checksum, ContentHasher};
use crate::ids::{PackageId, TenantId};
use crate::package::{Package, PackageKind};
use crate::store::{AuditOf, ByteRange, ByteStream, PackageStore, Page, PageRequest, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;

/// Largest chunk handed out when content is read back.
const READ_CHUNK: usize = 64 * 1024;

fn key(p: &Package) -> (TenantId, PackageKind, String, String) {
    (p.tenant_id, p.kind, p.title.clone(), p.version.clone())
}

fn check_new(t: &Tables, p: &Package) -> Result<(), StoreError> {
    if t.packages.contains_key(&p.id) {
        return Err(StoreError::conflict(
            "package",
            format!("id {} exists", p.id),
        ));
    }
    if t.package_keys.contains_key(&key(p)) {
        return Err(StoreError::conflict(
            "package",
            format!("{} {} {} exists", p.kind, p.title, p.version),
        ));
    }
    Ok(())
}

/// The conflict for deleting package `id` while `a` assigns it.
fn in_use(id: PackageId, a: &crate::assignment::Assignment) -> StoreError {
    StoreError::conflict(
        "package",
        format!("package {id} is assigned to {}", a.target),
    )
}

fn insert(t: &mut Tables, p: Package, content: Option<Vec<Bytes>>) {
    t.package_keys.insert(key(&p), p.id);
    t.tenant_packages
        .entry(p.tenant_id)
        .or_default()
        .insert(p.id);
    if let Some(chunks) = content {
        t.content.insert(p.id, chunks);
    }
    t.packages.insert(p.id, p);
}

#[async_trait]
impl PackageStore for MemoryStore {
    async fn create_package(
        &self,
        package: &Package,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        self.audited(audit, |t| {
            check_new(t, package)?;
            insert(t, package.clone(), None);
            Ok(())
        })
    }

    async fn create_package_with_content(
        &self,
        mut package: Package,
        expected: Option<Checksum>,
        max_size: Option<u64>,
        mut content: ByteStream,
        audit: Option<AuditOf<'_, Package>>,
    ) -> Result<Package, StoreError> {
        check_new(&self.lock(), &package)?;
        let mut hasher = ContentHasher::new(expected);
        let mut chunks = Vec::new();
        while let Some(chunk) = content.next().await {
            let chunk = chunk?;
            if chunk.is_empty() {
                continue;
            }
            hasher.update(&chunk);
            if let Some(limit) = max_size {
                if hasher.bytes_seen() > limit {
                    return Err(StoreError::TooLarge { limit });
                }
            }
            chunks.push(chunk);
        }
        let digest = hasher.finish()?;
        package.size = Some(digest.size);
        package.checksum = Some(digest.checksum);
        package.sha256 = Some(digest.sha256);
        package.source = crate::package::PackageSource::Stored;
        let entry = audit.map(|of| of(&package));
        self.audited(entry.as_ref(), |t| {
            check_new(t, &package)?;
            insert(t, package.clone(), Some(chunks));
            Ok(package)
        })
    }

    async fn get_package(&self, tenant: TenantId, id: PackageId) -> Result<Package, StoreError> {
        self.lock()
            .packages
            .get(&id)
            .filter(|p| p.tenant_id == tenant)
            .cloned()
            .ok_or_else(|| StoreError::not_found("package", id))
    }

    async fn find_package(
        &self,
        tenant: TenantId,
        kind: PackageKind,
        title: &str,
        version: &str,
    ) -> Result<Option<Package>, StoreError> {
        let t = self.lock();
        let id = t
            .package_keys
            .get(&(tenant, kind, title.to_string(), version.to_string()));
        Ok(id.and_then(|id| t.packages.get(id)).cloned())
    }

    async fn list_packages(
        &self,
        tenant: TenantId,
        kind: Option<PackageKind>,
        page: PageRequest,
    ) -> Result<Page<Package>, StoreError> {
        let t = self.lock();
        let Some(ids) = t.tenant_packages.get(&tenant) else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let start = page.after.map(PackageId::from_uuid);
        let items = ids
            .iter()
            .filter(|id| start.is_none_or(|s| **id > s))
            .filter_map(|id| t.packages.get(id))
            .filter(|p| kind.is_none_or(|k| p.kind == k))
            .take(page.effective_limit() + 1)
            .cloned()
            .collect();
        Ok(Page::from_overfetch(items, &page, |p| p.id.0))
    }

    async fn delete_package(
        &self,
        tenant: TenantId,
        id: PackageId,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        self.audited(audit, |t| {
            let p = t
                .packages
                .get(&id)
                .filter(|p| p.tenant_id == tenant)
                .cloned()
                .ok_or_else(|| StoreError::not_found("package", id))?;
            // Under the same lock as assignments: an assigned package is never deleted.
            if let Some(a) = t
                .assignments
                .values()
                .find(|a| a.tenant_id == tenant && a.package_id == id)
            {
                return Err(in_use(id, a));
            }
            t.packages.remove(&id);
            t.package_keys.remove(&key(&p));
            t.content.remove(&id);
            if let Some(ids) = t.tenant_packages.get_mut(&tenant) {
                ids.remove(&id);
            }
            Ok(())
        })
    }

    async fn read_content(
        &self,
        tenant: TenantId,
        id: PackageId,
        range: ByteRange,
    ) -> Result<ByteStream, StoreError> {
        let t = self.lock();
        t.packages
            .get(&id)
            .filter(|p| p.tenant_id == tenant)
            .ok_or_else(|| StoreError::not_found("package", id))?;
        let chunks = t
            .content
            .get(&id)
            .cloned()
            .ok_or_else(|| StoreError::not_found("package content", id))?;
        drop(t);
        let size: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        let (start, end) = range.resolve(size)?;
        let mut pieces = Vec::new();
        let mut offset = 0u64;
        for chunk in chunks {
            let len = chunk.len() as u64;
            let (from, to) = (start.max(offset), end.min(offset + len));
            if from < to {
                let slice = chunk.slice((from - offset) as usize..(to - offset) as usize);
                let mut at = 0;
                while at < slice.len() {
                    let next = (at + READ_CHUNK).min(slice.len());
                    pieces.push(Ok(slice.slice(at..next)));
                    at = next;
                }
            }
            offset += len;
        }
        Ok(Box::pin(futures_util::stream::iter(pieces)))
    }
}
