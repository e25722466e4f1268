//! Package repository operations: upload (streamed, verified), external packages, deletion.

use super::{Ota, OtaError, PackageUse};
use crate::checksum::Checksum;
use crate::ids::{PackageId, TenantId};
use crate::package::{Compatibility, Package, PackageKind, PackageSource};
use crate::store::{ByteStream, StoreError, UpdateFilter};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What an uploader says about a new package. Build it with [`NewPackage::new`] and the
/// setters (`NewPackage::new(..).description("..").tag("beta")`); new fields may be added
/// later (the struct is `#[non_exhaustive]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NewPackage {
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Firmware or software.
    pub kind: PackageKind,
    /// Title.
    pub title: String,
    /// Version.
    pub version: String,
    /// The profiles it can be installed on.
    pub compatibility: Compatibility,
    /// The checksum the content must have; `None`: SHA256 is computed. For an external
    /// package it is passed to devices as given.
    pub checksum: Option<Checksum>,
    /// For external packages: their size, passed to devices as given.
    pub size: Option<u64>,
    /// MIME type of the content.
    pub content_type: Option<String>,
    /// File name offered in downloads.
    pub file_name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Optional tag (`fw_tag`).
    pub tag: Option<String>,
}

impl NewPackage {
    /// A package of `kind` titled `title` at `version`, compatible with any profile.
    pub fn new(
        tenant_id: TenantId,
        kind: PackageKind,
        title: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        Self {
            tenant_id,
            kind,
            title: title.into(),
            version: version.into(),
            compatibility: Compatibility::AnyProfile,
            checksum: None,
            size: None,
            content_type: None,
            file_name: None,
            description: None,
            tag: None,
        }
    }
}

impl NewPackage {
    /// Sets the profiles it can be installed on.
    pub fn compatibility(mut self, compatibility: Compatibility) -> Self {
        self.compatibility = compatibility;
        self
    }

    /// The checksum the content must have (verified while it streams in).
    pub fn checksum(mut self, checksum: Checksum) -> Self {
        self.checksum = Some(checksum);
        self
    }

    /// For external packages: the size passed to devices.
    pub fn size(mut self, size: u64) -> Self {
        self.size = Some(size);
        self
    }

    /// Sets the MIME type of the content.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Sets the file name offered in downloads.
    pub fn file_name(mut self, file_name: impl Into<String>) -> Self {
        self.file_name = Some(file_name.into());
        self
    }

    /// Sets the free text.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the tag (`fw_tag`).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }
}

impl Ota {
    fn check_new_package(&self, new: &NewPackage) -> Result<(), OtaError> {
        let rules = &self.config.validation;
        rules.validate_title(&new.title)?;
        rules.validate_version(&new.version)?;
        if let Some(d) = &new.description {
            rules.validate_description(d)?;
        }
        if let Some(t) = &new.tag {
            rules.validate_tag(t)?;
        }
        Ok(())
    }

    fn package_from(&self, new: NewPackage, source: PackageSource, actor: &str) -> Package {
        Package {
            id: PackageId::new(),
            tenant_id: new.tenant_id,
            kind: new.kind,
            title: new.title,
            version: new.version,
            compatibility: new.compatibility,
            source,
            size: new.size,
            checksum: new.checksum,
            sha256: None,
            content_type: new.content_type,
            file_name: new.file_name,
            description: new.description,
            tag: new.tag,
            created_at: self.now(),
            created_by: actor.to_string(),
        }
    }

    /// Uploads a package whose content streams in from `content`. The checksum is verified
    /// while it streams (or SHA256 computed when none is given); on a mismatch, a size over
    /// the limit or a failing stream nothing is kept.
    pub async fn upload_package(
        &self,
        actor: &str,
        new: NewPackage,
        content: ByteStream,
    ) -> Result<Package, OtaError> {
        self.check_new_package(&new)?;
        let expected = new.checksum.clone();
        let mut package = self.package_from(new, PackageSource::Stored, actor);
        package.size = None;
        package.checksum = None;
        let entry = |stored: &Package| {
            self.audit_entry(
                stored.tenant_id,
                actor,
                "package.upload",
                format!("package {}", stored.id),
                json!({"title": stored.title, "version": stored.version, "kind": stored.kind,
                       "size": stored.size, "checksum": stored.checksum}),
            )
        };
        let stored = self
            .store
            .create_package_with_content(
                package,
                expected,
                self.config.max_package_size,
                content,
                Some(&entry),
            )
            .await?;
        Ok(stored)
    }

    /// Creates a package whose bytes live at an external URL (size and checksum optional).
    pub async fn create_external_package(
        &self,
        actor: &str,
        new: NewPackage,
        url: &str,
    ) -> Result<Package, OtaError> {
        self.check_new_package(&new)?;
        self.config.validation.validate_url(url)?;
        let package = self.package_from(
            new,
            PackageSource::External {
                url: url.to_string(),
            },
            actor,
        );
        let entry = self.audit_entry(
            package.tenant_id,
            actor,
            "package.create_external",
            format!("package {}", package.id),
            json!({"title": package.title, "version": package.version, "url": url}),
        );
        self.store.create_package(&package, Some(&entry)).await?;
        Ok(package)
    }

    /// The package `id` of `tenant`.
    pub async fn package(&self, tenant: TenantId, id: PackageId) -> Result<Package, OtaError> {
        Ok(self.store.get_package(tenant, id).await?)
    }

    /// Where a package is used: assignments and unfinished updates.
    pub async fn package_uses(
        &self,
        tenant: TenantId,
        id: PackageId,
    ) -> Result<Vec<PackageUse>, OtaError> {
        let mut uses: Vec<PackageUse> = self
            .store
            .assignments_of_package(tenant, id)
            .await?
            .into_iter()
            .map(|a| PackageUse {
                by: a.target.level().to_string(),
                id: match a.target {
                    crate::AssignmentTarget::Device(d) => d.to_string(),
                    crate::AssignmentTarget::Group(g) => g.to_string(),
                    crate::AssignmentTarget::Profile(p) => p.to_string(),
                },
            })
            .collect();
        let filter = UpdateFilter {
            states: crate::update::UpdateState::ALL
                .into_iter()
                .filter(|s| !s.is_terminal())
                .collect(),
            package_id: Some(id),
            ..UpdateFilter::default()
        };
        let updates = self
            .store
            .list_updates(tenant, &filter, crate::store::PageRequest::first(20))
            .await?;
        uses.extend(updates.items.iter().map(|u| PackageUse {
            by: "update of device".to_string(),
            id: u.device_id.to_string(),
        }));
        for c in self.store.active_campaigns().await? {
            if c.tenant_id == tenant && c.spec.package_id == id {
                uses.push(PackageUse {
                    by: format!("{} campaign", c.state),
                    id: c.id.to_string(),
                });
            }
        }
        let drafts = self
            .store
            .list_campaigns(
                tenant,
                &[crate::campaign::CampaignState::Draft],
                crate::store::PageRequest::first(crate::store::MAX_PAGE_SIZE),
            )
            .await?;
        uses.extend(
            drafts
                .items
                .iter()
                .filter(|c| c.spec.package_id == id)
                .map(|c| PackageUse {
                    by: "DRAFT campaign".to_string(),
                    id: c.id.to_string(),
                }),
        );
        let mut page = crate::store::PageRequest::first(crate::store::MAX_PAGE_SIZE);
        loop {
            let events = self.store.list_schedules(tenant, page).await?;
            uses.extend(
                events
                    .items
                    .iter()
                    .filter(|e| e.next_run.is_some())
                    .filter(|e| matches!(e.action, crate::schedule::ScheduledAction::Assign { package_id, .. } if package_id == id))
                    .map(|e| PackageUse {
                        by: "scheduled event".to_string(),
                        id: e.id.to_string(),
                    }),
            );
            match events.next {
                Some(next) => page = next,
                None => break,
            }
        }
        Ok(uses)
    }

    /// Deletes a package. Refused while it is assigned anywhere or an unfinished update uses
    /// it; the error lists where.
    pub async fn delete_package(
        &self,
        actor: &str,
        tenant: TenantId,
        id: PackageId,
    ) -> Result<(), OtaError> {
        let package = self.store.get_package(tenant, id).await?;
        let uses = self.package_uses(tenant, id).await?;
        if !uses.is_empty() {
            return Err(OtaError::PackageInUse { package: id, uses });
        }
        let entry = self.audit_entry(
            tenant,
            actor,
            "package.delete",
            format!("package {id}"),
            json!({"title": package.title, "version": package.version}),
        );
        match self.store.delete_package(tenant, id, Some(&entry)).await {
            Ok(()) => Ok(()),
            // Assigned meanwhile (the store checks atomically with the delete).
            Err(e @ StoreError::Conflict { .. }) => {
                let uses = self.package_uses(tenant, id).await?;
                if uses.is_empty() {
                    return Err(e.into());
                }
                Err(OtaError::PackageInUse { package: id, uses })
            }
            Err(e) => Err(e.into()),
        }
    }
}
