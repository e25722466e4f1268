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
    /// A profile or group cannot be deleted while devices or assignments use it.
    #[error("{what} is in use by {}; remove those first", list_uses(.uses))]
    InUse {
        /// What was to be deleted, e.g. `profile 0190...`.
        what: String,
        /// What uses it (`device`, `assignment`), the first ones of each.
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

/// The result of engine operations: `Result<T, OtaError>` unless another error is named.
pub type Result<T, E = OtaError> = std::result::Result<T, E>;

impl OtaError {
    /// Whether the error means "not found" (of any entity).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_not_found())
            || matches!(self, Self::NothingAssigned { .. })
    }

    /// Whether making the same call again (after a short backoff) may succeed: the store was
    /// unavailable ([`StoreError::Unavailable`]), a compare-and-set lost a race to another
    /// writer ([`StoreError::PreconditionFailed`]), or concurrent writers kept changing the
    /// same update or campaign ([`OtaError::Contention`], [`OtaError::CampaignContention`]).
    /// Every other error says something about the request or the data, and repeats until
    /// they change. HTTP maps transient errors to 503 (with `Retry-After`), MQTT to an error
    /// the device may retry.
    ///
    /// ```
    /// use ota_core::prelude::*;
    /// # fn op() -> ota_core::Result<()> { Ok(()) }
    /// let mut tries = 0;
    /// let done = loop {
    ///     match op() {
    ///         Err(e) if e.is_transient() && tries < 3 => tries += 1, // back off, then again
    ///         other => break other,
    ///     }
    /// };
    /// # done.unwrap();
    /// ```
    pub fn is_transient(&self) -> bool {
        // Exhaustive on purpose: a new variant must decide whether it is transient.
        match self {
            Self::Store(e) => {
                e.is_transient() || matches!(e, StoreError::PreconditionFailed { .. })
            }
            Self::Contention { .. } | Self::CampaignContention { .. } => true,
            Self::Validation(_)
            | Self::InvalidRequest { .. }
            | Self::InUse { .. }
            | Self::PackageInUse { .. }
            | Self::KindMismatch { .. }
            | Self::Incompatible { .. }
            | Self::NoUpdate { .. }
            | Self::NotAllowed { .. }
            | Self::NothingAssigned { .. }
            | Self::NotAssignedPackage { .. }
            | Self::ExternalContent { .. }
            | Self::InvalidCampaign(_)
            | Self::IllegalTransition(_)
            | Self::InvalidDeviceList(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::device_list::DeviceListError;
    use crate::campaign::{CampaignError, CampaignState};
    use crate::ids::CampaignId;

    fn all_kinds() -> Vec<(OtaError, bool)> {
        let device = DeviceId::new();
        let package = PackageId::new();
        let kind = PackageKind::Firmware;
        let store = |e: StoreError| OtaError::Store(e);
        vec![
            (
                store(StoreError::Unavailable {
                    message: "down".into(),
                }),
                true,
            ),
            (store(StoreError::precondition("revision 3 is now 4")), true),
            (OtaError::Contention { device }, true),
            (
                OtaError::CampaignContention {
                    campaign: CampaignId::new(),
                },
                true,
            ),
            (store(StoreError::not_found("device", device)), false),
            (store(StoreError::conflict("package", "same title")), false),
            (
                store(StoreError::Backend {
                    message: "syntax".into(),
                }),
                false,
            ),
            (store(StoreError::TooLarge { limit: 1 }), false),
            (
                store(StoreError::RangeNotSatisfiable {
                    start: 9,
                    end: 10,
                    size: 1,
                }),
                false,
            ),
            (
                store(StoreError::SourceFailed {
                    message: "client left".into(),
                }),
                false,
            ),
            (
                OtaError::Validation(
                    crate::validation::ValidationRules::default()
                        .validate_title("")
                        .unwrap_err(),
                ),
                false,
            ),
            (
                OtaError::InvalidRequest {
                    message: "bad".into(),
                },
                false,
            ),
            (
                OtaError::PackageInUse {
                    package,
                    uses: vec![],
                },
                false,
            ),
            (
                OtaError::KindMismatch {
                    package,
                    expected: kind,
                    actual: PackageKind::Software,
                },
                false,
            ),
            (
                OtaError::Incompatible {
                    package,
                    profile: ProfileId::new(),
                },
                false,
            ),
            (
                OtaError::NoUpdate {
                    device,
                    kind,
                    action: "retry",
                },
                false,
            ),
            (
                OtaError::NotAllowed {
                    action: "retry",
                    reason: "UPDATED".into(),
                },
                false,
            ),
            (OtaError::NothingAssigned { device, kind }, false),
            (
                OtaError::NotAssignedPackage {
                    requested: "a 1".into(),
                    assigned: "a 2".into(),
                },
                false,
            ),
            (
                OtaError::ExternalContent {
                    package,
                    url: "https://x".into(),
                },
                false,
            ),
            (
                OtaError::InvalidCampaign(CampaignError::InvalidName {
                    reason: "empty".into(),
                }),
                false,
            ),
            (
                OtaError::IllegalTransition(
                    CampaignState::Draft
                        .check_transition(CampaignState::Paused)
                        .unwrap_err(),
                ),
                false,
            ),
            (OtaError::InvalidDeviceList(DeviceListError::NotUtf8), false),
        ]
    }

    #[test]
    fn transient_errors_are_exactly_the_retryable_ones() {
        for (error, transient) in all_kinds() {
            assert_eq!(error.is_transient(), transient, "{error:?}");
        }
    }

    #[test]
    fn the_result_alias_defaults_to_ota_error() {
        fn fails() -> Result<u8> {
            Err(OtaError::InvalidRequest {
                message: "x".into(),
            })
        }
        fn other() -> Result<u8, std::fmt::Error> {
            Err(std::fmt::Error)
        }
        assert!(fails().is_err() && other().is_err());
    }
}
