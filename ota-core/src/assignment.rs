//! Assignments of packages to a device, a group or a profile.

use crate::clock::Timestamp;
use crate::ids::{AssignmentId, DeviceId, GroupId, PackageId, ProfileId, TenantId};
use crate::package::PackageKind;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The level an assignment is made at, in precedence order (device first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AssignmentLevel {
    /// Assigned to one device: always wins when compatible.
    Device,
    /// Assigned to a group the device belongs to.
    Group,
    /// Assigned to the device's profile.
    Profile,
}

impl fmt::Display for AssignmentLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Device => "device",
            Self::Group => "group",
            Self::Profile => "profile",
        })
    }
}

/// What an assignment is made to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "id")]
pub enum AssignmentTarget {
    /// One device.
    Device(DeviceId),
    /// Every device of a group.
    Group(GroupId),
    /// Every device of a profile.
    Profile(ProfileId),
}

impl AssignmentTarget {
    /// The level of this target.
    pub const fn level(&self) -> AssignmentLevel {
        match self {
            Self::Device(_) => AssignmentLevel::Device,
            Self::Group(_) => AssignmentLevel::Group,
            Self::Profile(_) => AssignmentLevel::Profile,
        }
    }
}

impl fmt::Display for AssignmentTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Device(id) => write!(f, "device {id}"),
            Self::Group(id) => write!(f, "group {id}"),
            Self::Profile(id) => write!(f, "profile {id}"),
        }
    }
}

/// A package assigned to a target for one kind. There is at most one assignment per
/// (tenant, kind, target): assigning again replaces it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The assignment's id.
    pub id: AssignmentId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Firmware or software.
    pub kind: PackageKind,
    /// Device, group or profile.
    pub target: AssignmentTarget,
    /// The package assigned.
    pub package_id: PackageId,
    /// When it was made; among groups, the most recent assignment wins.
    pub assigned_at: Timestamp,
    /// Who made it.
    pub assigned_by: String,
}
