//! Devices, device profiles and device groups.

use crate::clock::Timestamp;
use crate::ids::{DeviceId, GroupId, ProfileId, TenantId};
use crate::package::{PackageKind, TitleVersion};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A device profile (a device type): every device has exactly one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceProfile {
    /// The profile's id.
    pub id: ProfileId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Name, unique within the tenant.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A device group: devices belong to any number of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceGroup {
    /// The group's id.
    pub id: GroupId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Name, unique within the tenant.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// What a device last reported as running, per kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentVersions {
    /// Current firmware (`current_fw_title` / `current_fw_version`).
    pub firmware: Option<TitleVersion>,
    /// Current software (`current_sw_title` / `current_sw_version`).
    pub software: Option<TitleVersion>,
}

impl CurrentVersions {
    /// The current title and version for `kind`.
    pub fn get(&self, kind: PackageKind) -> Option<&TitleVersion> {
        match kind {
            PackageKind::Firmware => self.firmware.as_ref(),
            PackageKind::Software => self.software.as_ref(),
        }
    }

    /// Sets the current title and version for `kind`.
    pub fn set(&mut self, kind: PackageKind, value: Option<TitleVersion>) {
        match kind {
            PackageKind::Firmware => self.firmware = value,
            PackageKind::Software => self.software = value,
        }
    }
}

/// A device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The device's id.
    pub id: DeviceId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Name, unique within the tenant (the `DeviceName` of CSV imports).
    pub name: String,
    /// Its profile.
    pub profile_id: ProfileId,
    /// The groups it belongs to.
    pub groups: BTreeSet<GroupId>,
    /// The credential the device protocols authenticate it with (unique across tenants).
    /// Known in plain text only on the record handed to
    /// [`Ota::create_devices`](crate::engine::Ota::create_devices) and on the records it
    /// returns (empty there: one is generated, see [`generate_token`]). Stores keep only its
    /// [`token_digest`], so a device read back from a store carries an empty string; a
    /// device is found by its token with
    /// [`DeviceStore::device_by_token`](crate::store::DeviceStore::device_by_token).
    pub access_token: String,
    /// What it last reported as running.
    pub current: CurrentVersions,
    /// When it was created.
    pub created_at: Timestamp,
}

/// The digest under which stores keep an access token (SHA-256 of its UTF-8 bytes, lowercase
/// hex). Tokens are high-entropy secrets looked up by equality, so an unsalted digest is what
/// lets a store find a device by token without keeping the token.
pub fn token_digest(token: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random access token: 32 lowercase hex characters carrying 122 random bits.
pub fn generate_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The conflict a store answers when a device's name or access token is taken. The same
/// words for both, so that creating a device does not tell whether a token exists (in
/// another tenant).
pub const DEVICE_TAKEN: &str =
    "a device with one of these names or access tokens exists (leave the token empty to have one generated)";

#[cfg(test)]
mod token_tests {
    use super::*;

    #[test]
    fn digests_are_sha256_hex() {
        assert_eq!(
            token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn generated_tokens_differ() {
        let a = generate_token();
        assert_eq!(a.len(), 32);
        assert_ne!(a, generate_token());
    }
}
