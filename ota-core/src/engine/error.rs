//! The engine's error type.

use crate::ids::{DeviceId, PackageId, ProfileId};
use crate::package::PackageKind;
use crate::store::StoreError;
use crate::validation::ValidationError;

/// Where a package is still used, which keeps it from being deleted.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackageUse {
    /// What uses it: `device`, `group`, `profile`, `update`, `campaign`, `schedule`.
    pub by: String,
    /// The user's id.
    pub id: String,
}

impl std::fmt::Display for PackageUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.by, self.id)
    }
}

fn list_uses(uses: &[PackageUse]) -> String {
    const SHOWN: usize = 10;
    let mut text: Vec<String> = uses.iter().take(SHOWN).map(|u| u.to_string()).collect();
    if uses.len() > SHOWN {
        text.push(format!("and {} more", uses.len() - SHOWN));
    }
    text.join(", ")
}

/// An engine operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtaError {
    /// The store failed; its kind says whether retrying may help.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A field is invalid.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The request is malformed in a way no field rule covers.
    #[error("invalid request: {message}")]
    InvalidRequest {
        /// What is wrong.
        message: String,
    },
    /// The package cannot be deleted while it is used.
    #[error("package {package} is in use by {}", list_uses(.uses))]
    PackageInUse {
        /// The package.
        package: PackageId,
        /// Where it is used.
        uses: Vec<PackageUse>,
    },
    /// The package is of the other kind than the operation names.
    #[error("package {package} is {actual}, not {expected}")]
    KindMismatch {
        /// The package.
        package: PackageId,
        /// The kind asked for.
        expected: PackageKind,
        /// The package's kind.
        actual: PackageKind,
    },
    /// The package cannot be installed on the device's profile.
    #[error("package {package} is not compatible with profile {profile}")]
    Incompatible {
        /// The package.
        package: PackageId,
        /// The profile.
        profile: ProfileId,
    },
    /// The device has no update of this kind to act on.
    #[error("device {device} has no {kind} update to {action}")]
    NoUpdate {
        /// The device.
        device: DeviceId,
        /// The kind.
        kind: PackageKind,
        /// What was asked (cancel, retry).
        action: &'static str,
    },
    /// The update's state does not allow the operation.
    #[error("cannot {action}: {reason}")]
    NotAllowed {
        /// What was asked.
        action: &'static str,
        /// Why not (names the current state).
        reason: String,
    },
    /// Nothing is assigned to the device for this kind (HTTP 404).
    #[error("no {kind} package is assigned to device {device}")]
    NothingAssigned {
        /// The device.
        device: DeviceId,
        /// The kind.
        kind: PackageKind,
    },
    /// The title or version asked for is not the package assigned (it changed mid-download;
    /// HTTP 400).
    #[error("requested {requested} but the package assigned to the device is {assigned}")]
    NotAssignedPackage {
        /// What the device asked for.
        requested: String,
        /// What is assigned.
        assigned: String,
    },
    /// The package's bytes are not served by this library (it has an external URL).
    #[error("package {package} is served from its external URL {url}")]
    ExternalContent {
        /// The package.
        package: PackageId,
        /// Where devices fetch it.
        url: String,
    },
    /// A campaign definition is not valid.
    #[error(transparent)]
    InvalidCampaign(#[from] crate::campaign::CampaignError),
    /// A campaign lifecycle step its state does not allow.
    #[error(transparent)]
    IllegalTransition(#[from] crate::campaign::IllegalTransition),
    /// A device list could not be read.
    #[error(transparent)]
    InvalidDeviceList(#[from] crate::campaign::device_list::DeviceListError),
    /// Another writer kept changing the same campaign; the operation gave up.
    #[error("campaign {campaign} changed concurrently too often; try again")]
    CampaignContention {
        /// The campaign.
        campaign: crate::ids::CampaignId,
    },
    /// Too many concurrent writers changed the same update; the operation gave up.
    #[error("update of device {device} changed concurrently too often; try again")]
    Contention {
        /// The device.
        device: DeviceId,
    },
}

impl OtaError {
    /// Whether the error means "not found" (of any entity).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_not_found())
            || matches!(self, Self::NothingAssigned { .. })
    }
}
