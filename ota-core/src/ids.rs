//! Typed identifiers. Every id is a UUID v7 (time-ordered) wrapped in its own newtype so that a
//! device id can never be passed where a package id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered (UUID v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }
    };
}

id_type!(
    /// Identifies a tenant: every other entity belongs to exactly one.
    TenantId
);
id_type!(
    /// Identifies a device.
    DeviceId
);
id_type!(
    /// Identifies a device profile (a device type).
    ProfileId
);
id_type!(
    /// Identifies a device group.
    GroupId
);
id_type!(
    /// Identifies a package (firmware or software).
    PackageId
);
id_type!(
    /// Identifies an assignment of a package to a device, group or profile.
    AssignmentId
);
id_type!(
    /// Identifies the update of one device for one kind.
    UpdateId
);
id_type!(
    /// Identifies a campaign (rollout).
    CampaignId
);
id_type!(
    /// Identifies a scheduled event.
    ScheduleId
);
id_type!(
    /// Identifies a notice in the outbox (see [`crate::store::NoticeOutbox`]).
    NoticeId
);
id_type!(
    /// Identifies a management API key (see [`crate::store::ApiKeyStore`]).
    ApiKeyId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered_and_round_trip_as_text() {
        let a = DeviceId::new();
        let b = DeviceId::new();
        assert!(a < b, "v7 ids created later sort later");
        assert_eq!(a.as_uuid().get_version_num(), 7);
        let parsed: DeviceId = a.to_string().parse().unwrap();
        assert_eq!(parsed, a);
        assert!("not-a-uuid".parse::<DeviceId>().is_err());
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{a}\""));
    }
}
