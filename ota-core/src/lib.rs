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
//!
//! # Quick start
//!
//! The engine, [`Ota`], is what a platform calls: it takes a [`Store`] (here the in-memory
//! [`MemoryStore`]; `ota-store-postgres` for a durable one), a [`Notifier`] (how devices are
//! told; a transport crate, or your own: see the trait's docs) and a [`Clock`]. One import
//! brings everything below: [`prelude`]. The same program, runnable on the memory store or
//! on PostgreSQL, is `examples/src/bin/embed.rs` in the repository
//! (`cargo run -p ota-examples --bin embed`).
//!
//! ```
//! use ota_core::prelude::*;
//! use std::{collections::BTreeSet, sync::Arc};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // Store, notifier, clock (SystemClock in production; a manual one makes this instant).
//! let notifier = Arc::new(RecordingNotifier::new());
//! let clock = Arc::new(ManualClock::at_epoch_2024());
//! let store = Arc::new(MemoryStore::new());
//! let ota = Ota::new(store, notifier.clone(), clock.clone(), OtaConfig::default());
//! let (tenant, me) = (TenantId::new(), "operator@example.com"); // `me`: for the audit log
//!
//! // A fleet: a profile, a canary group, ten devices (the first two are canaries).
//! let profile = ota.create_profile(me, tenant, "sensor-v2").await?;
//! let canary = ota.create_group(me, tenant, "canary").await?;
//! let devices: Vec<Device> = (0..10)
//!     .map(|i| {
//!         let groups = BTreeSet::from_iter((i < 2).then_some(canary.id));
//!         let (name, token) = (format!("sensor-{i}"), format!("token-{i}"));
//!         ota.new_device(tenant, &name, profile.id, groups, &token)
//!     })
//!     .collect();
//! ota.create_devices(me, &devices).await?;
//!
//! // Packages, streamed in and checksummed (SHA256 when the uploader gives none). Files and
//! // other readers: `ByteStream::from_reader`.
//! let new = |version| NewPackage::new(tenant, PackageKind::Firmware, "sensor-fw", version);
//! let fw11 = ota.upload_package(me, new("1.1"), ByteStream::from_vec(vec![1; 4096])).await?;
//! let fw12 = ota.upload_package(me, new("1.2"), ByteStream::from_vec(vec![2; 8192])).await?;
//! assert_eq!(fw12.size, Some(8192));
//!
//! // Assign 1.1 to the canary group: each canary gets a QUEUED update; a tick releases them
//! // under pacing (INITIATED) and the notifier tells the devices.
//! ota.assign(me, tenant, AssignmentTarget::Group(canary.id), fw11.id).await?;
//! assert_eq!(ota.tick().await?.released, 2);
//! assert_eq!(notifier.take().len(), 2);
//!
//! // Devices report in ThingsBoard's telemetry (any transport hands the payload over).
//! for device in &devices[..2] {
//!     ota.handle_payload(device, br#"{"fw_state":"DOWNLOADING","fw_progress":40}"#).await?;
//!     let done = br#"{"current_fw_title":"sensor-fw","current_fw_version":"1.1"}"#;
//!     ota.handle_payload(device, done).await?;
//! }
//! let latest = ota.latest_update(tenant, devices[0].id, PackageKind::Firmware).await?;
//! assert_eq!(latest.map(|u| u.state), Some(UpdateState::Updated));
//!
//! // A campaign: 1.2 to the whole profile in two waves, 20 % first, the rest once all of
//! // those are UPDATED.
//! let target = CampaignTarget::profile(profile.id);
//! let mut spec = CampaignSpec::new("sensor-fw 1.2", fw12.id, target);
//! spec.waves = vec![
//!     Wave::new(WaveSize::Percent(20.0)),
//!     Wave::after_success(WaveSize::Rest, 100.0),
//! ];
//! let campaign = ota.create_campaign(me, tenant, spec).await?.id;
//! ota.start_campaign(me, tenant, campaign).await?;
//! // Drive time (a platform calls `tick` every 100 ms to 1 s); every device told installs
//! // 1.2 and says so.
//! while ota.campaign(tenant, campaign).await?.state == CampaignState::Running {
//!     ota.tick().await?;
//!     for notice in notifier.take() {
//!         let device = ota.device(tenant, notice.device_id()).await?;
//!         let done = br#"{"current_fw_title":"sensor-fw","current_fw_version":"1.2"}"#;
//!         ota.handle_payload(&device, done).await?;
//!     }
//!     clock.advance(ota_core::chrono::Duration::seconds(1));
//! }
//! let stats = ota.campaign_stats(tenant, campaign).await?;
//! assert_eq!(ota.campaign(tenant, campaign).await?.state, CampaignState::Finished);
//! assert_eq!((stats.counts.successful(), stats.counts.failed()), (10, 0));
//! assert_eq!(stats.waves.len(), 2);
//!
//! // What operators ask: a device's history (every event of every update).
//! let history = ota.device_update_history(tenant, devices[0].id, None, PageRequest::first(10));
//! assert_eq!(history.await?.items.len(), 2); // 1.1 by assignment, 1.2 by the campaign
//! # Ok::<(), OtaError>(())
//! # }).unwrap();
//! ```
//!
//! Errors are [`OtaError`] (one enum for the engine; [`OtaError::is_transient`] says whether
//! the same call may succeed later, [`OtaError::is_not_found`] whether something named does
//! not exist) and [`Result`] is `Result<T, OtaError>`.
//!
//! # Names
//!
//! The engine is called `Ota`: it is short, it is the one entry point of the library (every
//! operation a platform performs is a method on it), and the crate paths say the rest
//! (`ota_core::Ota`, `ota_core::engine::Ota`).
//!
//! # Features
//!
//! - `memory` (default): the in-memory reference store, [`memory::MemoryStore`].
//! - `conformance`: the store conformance suite (`conformance`), the generic tests every
//!   store implementation must pass.
//!
//! The crates a platform needs to name in signatures are re-exported:
//! [`async_trait`](macro@async_trait) (to implement [`Notifier`] and the store traits),
//! [`bytes`], [`chrono`] and [`futures_util`].
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod assignment;
pub mod audit;
pub mod campaign;
pub mod checksum;
pub mod clock;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
pub mod device;
mod duration_serde;
pub mod engine;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
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
