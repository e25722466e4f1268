//! Builders of valid entities for the conformance behaviours.

use crate::checksum::{checksum_of, ChecksumAlgorithm};
use crate::clock::Timestamp;
use crate::device::{CurrentVersions, Device, DeviceGroup, DeviceProfile};
use crate::ids::{DeviceId, GroupId, PackageId, ProfileId, TenantId};
use crate::package::{Compatibility, Package, PackageKind, PackageSource, TitleVersion};
use crate::store::{ByteStream, Store};
use crate::update::Update;
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A tenant of its own in a store, with helpers that create valid entities in it.
pub struct Fixture {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// This fixture's tenant.
    pub tenant: TenantId,
}

/// A fixed time: 2024-01-01T00:00:00Z plus `secs` seconds.
pub fn at(secs: i64) -> Timestamp {
    Utc.timestamp_opt(1_704_067_200 + secs, 0)
        .single()
        .unwrap_or_default()
}

/// Deterministic pseudo-random bytes (xorshift64*).
pub fn bytes_of(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `data` as a stream of chunks of `chunk` bytes.
pub fn stream_of(data: &[u8], chunk: usize) -> ByteStream {
    let pieces: Vec<_> = data
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures_util::stream::iter(pieces))
}

/// Reads a whole content stream.
pub async fn collect(mut stream: ByteStream) -> Vec<u8> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("content chunk"));
    }
    out
}

impl Fixture {
    /// A fresh tenant in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            tenant: TenantId::new(),
        }
    }

    /// Package metadata (not stored) of this tenant.
    pub fn package(&self, kind: PackageKind, title: &str, version: &str) -> Package {
        Package {
            id: PackageId::new(),
            tenant_id: self.tenant,
            kind,
            title: title.to_string(),
            version: version.to_string(),
            compatibility: Compatibility::AnyProfile,
            source: PackageSource::External {
                url: format!("https://example.com/{title}/{version}.bin"),
            },
            size: None,
            checksum: None,
            sha256: None,
            content_type: Some("application/octet-stream".to_string()),
            file_name: Some(format!("{title}-{version}.bin")),
            description: None,
            tag: None,
            created_at: at(0),
            created_by: "conformance".to_string(),
        }
    }

    /// Stores a package with `data` as content.
    pub async fn stored_package(&self, title: &str, version: &str, data: &[u8]) -> Package {
        let mut p = self.package(PackageKind::Firmware, title, version);
        p.source = PackageSource::Stored;
        self.store
            .create_package_with_content(
                p,
                Some(checksum_of(ChecksumAlgorithm::Sha256, data)),
                None,
                stream_of(data, 1000),
                None,
            )
            .await
            .expect("stored package")
    }

    /// Stores a profile.
    pub async fn profile(&self, name: &str) -> DeviceProfile {
        let p = DeviceProfile {
            id: ProfileId::new(),
            tenant_id: self.tenant,
            name: name.to_string(),
            created_at: at(0),
        };
        self.store.create_profile(&p, None).await.expect("profile");
        p
    }

    /// Stores a group.
    pub async fn group(&self, name: &str) -> DeviceGroup {
        let g = DeviceGroup {
            id: GroupId::new(),
            tenant_id: self.tenant,
            name: name.to_string(),
            created_at: at(0),
        };
        self.store.create_group(&g, None).await.expect("group");
        g
    }

    /// A device (not stored) of this tenant.
    pub fn device(&self, profile: &DeviceProfile, name: &str, groups: &[&DeviceGroup]) -> Device {
        Device {
            id: DeviceId::new(),
            tenant_id: self.tenant,
            name: name.to_string(),
            profile_id: profile.id,
            groups: groups.iter().map(|g| g.id).collect::<BTreeSet<_>>(),
            access_token: format!("{}-{name}", self.tenant),
            current: CurrentVersions::default(),
            created_at: at(0),
        }
    }

    /// Stores `n` devices named `{prefix}{i}` in `profile`.
    pub async fn devices(&self, profile: &DeviceProfile, prefix: &str, n: usize) -> Vec<Device> {
        let devices: Vec<Device> = (0..n)
            .map(|i| self.device(profile, &format!("{prefix}{i}"), &[]))
            .collect();
        self.store
            .create_devices(&devices, None)
            .await
            .expect("devices");
        devices
    }

    /// A new QUEUED update (not stored) of `device` to `package`.
    pub fn update(&self, device: &Device, package: &Package, created: Timestamp) -> Update {
        Update::new(
            self.tenant,
            device.id,
            package.kind,
            package.id,
            TitleVersion::new(package.title.clone(), package.version.clone()),
            None,
            created,
        )
    }
}
