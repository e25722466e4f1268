//! Everything an embedding platform names in everyday code, in one import:
//!
//! ```
//! use ota_core::prelude::*;
//! ```
//!
//! It brings the engine ([`Ota`], [`OtaConfig`], [`OtaError`], [`NewPackage`]), the traits a
//! platform implements or calls ([`Notifier`], [`Store`], [`Clock`]), the reference pieces
//! ([`MemoryStore`], [`RecordingNotifier`], [`ManualClock`], [`SystemClock`]), content streams
//! ([`ByteStream`] with the constructors of [`ByteStreamExt`]), the domain records (devices,
//! packages, updates, campaigns and their ids), ThingsBoard's wire reports
//! ([`DeviceReport`], [`parse_reports`]), paging ([`Page`], [`PageRequest`]), and the
//! [`macro@async_trait`] attribute and [`Bytes`] type that implementations of the traits need.
//!
//! What is not here lives in its module ([`crate::store`] for the store's capability traits,
//! [`crate::update`] for the state machine, [`crate::campaign::rollout`] for the rollout
//! rules, ...). Time types come from [`chrono`], re-exported at the crate root
//! together with [`bytes`] and [`futures_util`], so that
//! a platform needs no extra dependency to call or implement anything in this crate.

pub use crate::assignment::{Assignment, AssignmentLevel, AssignmentTarget};
pub use crate::campaign::{
    Campaign, CampaignSpec, CampaignState, CampaignStats, CampaignTarget, ErrorThreshold,
    StateCounts, ThresholdAction, Wave, WaveAdvance, WaveSize,
};
pub use crate::checksum::{Checksum, ChecksumAlgorithm};
pub use crate::clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use crate::device::{CurrentVersions, Device, DeviceGroup, DeviceProfile};
pub use crate::engine::{
    LatestUpdates, NewPackage, Ota, OtaConfig, OtaError, ReportOutcome, Result, TickReport,
    UpdateHistory,
};
pub use crate::ids::{
    AssignmentId, CampaignId, DeviceId, GroupId, PackageId, ProfileId, ScheduleId, TenantId,
    UpdateId,
};
#[cfg(feature = "memory")]
pub use crate::memory::MemoryStore;
pub use crate::notifier::{Notice, Notifier, NotifyError, RecordingNotifier};
pub use crate::pacing::{Pacing, Rate};
pub use crate::package::{Compatibility, Package, PackageKind, PackageSource, TitleVersion};
pub use crate::store::{
    ByteRange, ByteStream, ByteStreamExt, Page, PageRequest, Store, StoreError,
};
pub use crate::update::{HistoryEntry, Update, UpdatePolicy, UpdateState};
pub use crate::wire::{parse_reports, DeviceReport};
pub use async_trait::async_trait;
pub use bytes::Bytes;
