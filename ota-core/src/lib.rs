//! # ota-core
//!
//! The domain of over-the-air (OTA) updates for device fleets, as a library with no I/O.
//!
//! A **package** is a firmware or software image identified by (tenant, kind, title, version),
//! with a checksum that devices verify ([`checksum`]). Packages are **assigned** to a device, a
//! device group or a device profile; the **effective package** of a device is decided by
//! precedence (device, then the most recent compatible group assignment, then the profile) and
//! compatibility ([`precedence`]).
//!
//! When a device's effective package changes, an **update** is queued for it. The update moves
//! through ThingsBoard's states (QUEUED, INITIATED, DOWNLOADING, DOWNLOADED, VERIFIED, UPDATING,
//! UPDATED, FAILED, CANCELED) driven by server dispatches, device reports, operator actions and
//! timeouts; failed attempts can be retried with backoff ([`update`]).
//!
//! Devices speak ThingsBoard's wire vocabulary (`fw_state`, `current_fw_version`, shared
//! attributes `fw_title`, `fw_checksum`, ...), which [`wire`] parses and builds for every
//! transport.
//!
//! Time always comes from a [`clock::Clock`], so every rule is testable with a manual clock.
//! This crate depends on no runtime, database, HTTP or MQTT crate: stores and transports live
//! in their own crates and implement the traits defined here.
#![warn(missing_docs)]

pub mod assignment;
pub mod audit;
pub mod campaign;
pub mod checksum;
pub mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod device;
mod duration_serde;
pub mod engine;
pub mod ids;
#[cfg(feature = "memory")]
pub mod memory;
pub mod notifier;
pub mod pacing;
pub mod package;
pub mod precedence;
pub mod prelude;
pub mod schedule;
pub mod store;
pub mod update;
pub mod validation;
pub mod window;
pub mod wire;

pub use assignment::{Assignment, AssignmentLevel, AssignmentTarget};
pub use checksum::{Checksum, ChecksumAlgorithm};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use device::{CurrentVersions, Device, DeviceGroup, DeviceProfile};
pub use ids::{
    AssignmentId, CampaignId, DeviceId, GroupId, PackageId, ProfileId, ScheduleId, TenantId,
    UpdateId,
};
pub use package::{Compatibility, Package, PackageKind, PackageSource, TitleVersion};
pub use update::{Update, UpdateState};

pub use campaign::{CampaignSpec, CampaignTarget};
pub use engine::{NewPackage, Ota, OtaConfig, OtaError, Result};
#[cfg(feature = "memory")]
pub use memory::MemoryStore;
pub use notifier::{Notice, Notifier, NotifyError};
pub use store::{ByteStream, ByteStreamExt, Store, StoreError};

/// The attribute that implementations of this crate's async traits ([`Notifier`], the store
/// traits) put on their `impl` blocks: `#[ota_core::async_trait]`. Re-exported from the
/// `async-trait` crate so that no extra dependency is needed.
pub use async_trait::async_trait;
/// The `bytes` crate, whose [`Bytes`](bytes::Bytes) are the chunks of a [`ByteStream`].
pub use bytes;
/// The `chrono` crate: [`Timestamp`] is a `chrono::DateTime<Utc>`, durations (timeouts,
/// leases, [`ManualClock::advance`]) are `chrono::Duration`.
pub use chrono;
/// The `futures-util` crate (features `std`, `alloc`, `io`): `StreamExt` to read a
/// [`ByteStream`], `io::AsyncRead` for [`ByteStreamExt::from_reader`].
pub use futures_util;
