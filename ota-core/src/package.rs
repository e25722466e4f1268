//! Packages: firmware or software images, their metadata and where their bytes live.

use crate::checksum::Checksum;
use crate::clock::Timestamp;
use crate::ids::{PackageId, ProfileId, TenantId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a package updates: the device's firmware or its software.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PackageKind {
    /// Firmware; wire prefix `fw`.
    Firmware,
    /// Software; wire prefix `sw`.
    Software,
}

impl PackageKind {
    /// Both kinds.
    pub const ALL: [PackageKind; 2] = [PackageKind::Firmware, PackageKind::Software];

    /// The wire prefix: `fw` or `sw`.
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::Firmware => "fw",
            Self::Software => "sw",
        }
    }

    /// The kind for a wire prefix (`fw`, `sw`), if it is one.
    pub fn from_prefix(prefix: &str) -> Option<Self> {
        match prefix {
            "fw" => Some(Self::Firmware),
            "sw" => Some(Self::Software),
            _ => None,
        }
    }
}

impl fmt::Display for PackageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Firmware => "FIRMWARE",
            Self::Software => "SOFTWARE",
        })
    }
}

/// The error for a package kind name that is neither firmware nor software.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown package kind {0:?}; expected FIRMWARE (fw) or SOFTWARE (sw)")]
pub struct UnknownKind(pub String);

impl FromStr for PackageKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "firmware" | "fw" => Ok(Self::Firmware),
            "software" | "sw" => Ok(Self::Software),
            _ => Err(UnknownKind(s.to_string())),
        }
    }
}

/// The device profiles a package can be installed on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "profiles")]
pub enum Compatibility {
    /// Any profile.
    AnyProfile,
    /// Only these profiles.
    Profiles(Vec<ProfileId>),
}

impl Compatibility {
    /// Whether a device of `profile` can install the package.
    pub fn allows(&self, profile: ProfileId) -> bool {
        match self {
            Self::AnyProfile => true,
            Self::Profiles(list) => list.contains(&profile),
        }
    }
}

/// Where a package's bytes are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum PackageSource {
    /// The content is stored by the library (in the store) and served by its transports.
    Stored,
    /// The content lives at an external URL that devices fetch themselves (`fw_url`).
    External {
        /// The URL devices download from.
        url: String,
    },
}

/// A package's title and version: what a device reports as its current one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TitleVersion {
    /// The title (for example `sensor-fw`).
    pub title: String,
    /// The version (for example `1.2.0`).
    pub version: String,
}

impl TitleVersion {
    /// A title and version.
    pub fn new(title: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            version: version.into(),
        }
    }
}

impl fmt::Display for TitleVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.title, self.version)
    }
}

/// A package's metadata. `(tenant_id, kind, title, version)` is unique.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// The package's id.
    pub id: PackageId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Firmware or software.
    pub kind: PackageKind,
    /// Title, validated by the configured [`crate::validation::ValidationRules`].
    pub title: String,
    /// Version, validated by the configured [`crate::validation::ValidationRules`].
    pub version: String,
    /// The profiles it can be installed on.
    pub compatibility: Compatibility,
    /// Stored content or an external URL.
    pub source: PackageSource,
    /// Content size in bytes; always set for stored content, optional for external URLs.
    pub size: Option<u64>,
    /// Checksum devices verify; always set for stored content, optional for external URLs.
    pub checksum: Option<Checksum>,
    /// SHA-256 of the stored content (lowercase hex), used as the HTTP `ETag`.
    pub sha256: Option<String>,
    /// MIME type of the content, e.g. `application/octet-stream`.
    pub content_type: Option<String>,
    /// File name offered in downloads (`Content-Disposition`).
    pub file_name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Optional tag pushed to devices as `fw_tag` / `sw_tag`.
    pub tag: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
}

impl Package {
    /// The package's title and version.
    pub fn title_version(&self) -> TitleVersion {
        TitleVersion::new(self.title.clone(), self.version.clone())
    }

    /// Whether the library stores (and serves) this package's bytes.
    pub fn is_stored(&self) -> bool {
        matches!(self.source, PackageSource::Stored)
    }

    /// The external URL, for packages whose bytes live elsewhere.
    pub fn url(&self) -> Option<&str> {
        match &self.source {
            PackageSource::External { url } => Some(url),
            PackageSource::Stored => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_wire_prefixes_and_parse() {
        assert_eq!(PackageKind::Firmware.prefix(), "fw");
        assert_eq!(PackageKind::Software.prefix(), "sw");
        assert_eq!(PackageKind::from_prefix("sw"), Some(PackageKind::Software));
        assert_eq!(PackageKind::from_prefix("xx"), None);
        assert_eq!("firmware".parse::<PackageKind>(), Ok(PackageKind::Firmware));
        assert_eq!("SW".parse::<PackageKind>(), Ok(PackageKind::Software));
        assert!("bios".parse::<PackageKind>().is_err());
    }

    #[test]
    fn compatibility_allows_listed_profiles_only() {
        let p1 = ProfileId::new();
        let p2 = ProfileId::new();
        assert!(Compatibility::AnyProfile.allows(p1));
        let only = Compatibility::Profiles(vec![p1]);
        assert!(only.allows(p1));
        assert!(!only.allows(p2));
    }
}
