//! Random interleavings of operator actions, device reports and ticks against the engine over
//! any store, with the invariants of the update rules checked after every step:
//!
//! 1. at most one live (non-terminal) update per (device, kind);
//! 2. a live update's package is compatible with its device's profile, and it is the device's
//!    effective package (an update of no campaign) or its campaign's package, the campaign
//!    running or paused and no assignment newer than the update deciding otherwise;
//! 3. every campaign's statistics equal a recount of its updates, per wave and state;
//! 4. every update notice sent names the device's live update, a device whose update is in
//!    progress was last told about that update, and a device whose notified update was
//!    canceled was last sent the withdrawal.
//!
//! [`Step`]s are decoded from plain numbers ([`Step::decode`]) so that a property test only
//! generates byte triples and shrinks them; [`Interleaving::run`] applies them.

use crate::assignment::AssignmentTarget;
use crate::campaign::{Campaign, CampaignSpec, CampaignState, CampaignTarget};
use crate::clock::{Clock, ManualClock};
use crate::device::Device;
use crate::engine::{NewPackage, Ota, OtaConfig, OtaError};
use crate::ids::{CampaignId, GroupId, ProfileId, TenantId};
use crate::notifier::{Notice, RecordingNotifier};
use crate::package::{Compatibility, Package, PackageKind};
use crate::store::{PageRequest, Store, StoreError, UpdateFilter};
use crate::update::{HistoryOutcome, RetryPolicy, Timeouts, Update, UpdatePolicy, UpdateState};
use crate::wire::DeviceReport;
use bytes::Bytes;
use chrono::Duration;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

mod apply;
mod invariants;

/// Devices the world starts with; [`Step::NewDevice`] adds up to [`MAX_DEVICES`].
const START_DEVICES: usize = 3;
/// The most devices a run makes.
const MAX_DEVICES: usize = 5;
/// Firmware versions of the packages: `4.0` is compatible with the first profile only.
const VERSIONS: [&str; 4] = ["1.0", "2.0", "3.0", "4.0"];
/// The title of every package.
const TITLE: &str = "fw";
const ACTOR: &str = "interleaving";

/// One action of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Assign package `pkg` to device `device`.
    AssignDevice {
        /// Device index.
        device: usize,
        /// Package index.
        pkg: usize,
    },
    /// Assign package `pkg` to group `group`.
    AssignGroup {
        /// Group index.
        group: usize,
        /// Package index.
        pkg: usize,
    },
    /// Assign package `pkg` to profile `profile`.
    AssignProfile {
        /// Profile index.
        profile: usize,
        /// Package index.
        pkg: usize,
    },
    /// Remove the assignment of a device (0..), a group (10..) or a profile (20..).
    Unassign {
        /// Target code.
        target: usize,
    },
    /// A device reports a state.
    Report {
        /// Device index.
        device: usize,
        /// The state.
        state: UpdateState,
    },
    /// A device reports the version it runs, with `UPDATED` or alone.
    Running {
        /// Device index.
        device: usize,
        /// Version index.
        version: usize,
        /// With `fw_state: UPDATED`.
        updated: bool,
    },
    /// An operator retries a device's update.
    Retry {
        /// Device index.
        device: usize,
    },
    /// An operator cancels a device's update.
    Cancel {
        /// Device index.
        device: usize,
    },
    /// A campaign to package `pkg` over profile 0 or group 0, dynamic or not, started now.
    StartCampaign {
        /// Package index.
        pkg: usize,
        /// Target group 0 rather than profile 0.
        by_group: bool,
        /// Dynamic.
        dynamic: bool,
    },
    /// Stop a campaign (by creation order).
    StopCampaign {
        /// Campaign index.
        campaign: usize,
    },
    /// Retry every failed device of a campaign.
    RetryCampaign {
        /// Campaign index.
        campaign: usize,
    },
    /// Pause or resume a campaign.
    PauseResume {
        /// Campaign index.
        campaign: usize,
    },
    /// Move a device to a profile.
    SetProfile {
        /// Device index.
        device: usize,
        /// Profile index.
        profile: usize,
    },
    /// Set a device's groups (bit mask over the groups).
    SetGroups {
        /// Device index.
        device: usize,
        /// Group bits.
        mask: u8,
    },
    /// Advance the clock by `millis` and tick.
    Tick {
        /// Milliseconds.
        millis: i64,
    },
    /// Create one more device (in profile 0).
    NewDevice,
    /// The engine restarts: a new engine instance over the same store (claims of the old one
    /// wait out their lease).
    Restart,
}

impl Step {
    /// The step that `(op, a, b)` stands for: any numbers give a step.
    pub fn decode(op: u8, a: u8, b: u8) -> Step {
        let (a, b) = (usize::from(a), usize::from(b));
        let device = a % MAX_DEVICES;
        let pkg = b % VERSIONS.len();
        match op % 18 {
            0 => Step::AssignDevice { device, pkg },
            1 => Step::AssignGroup { group: a % 2, pkg },
            2 => Step::AssignProfile {
                profile: a % 2,
                pkg,
            },
            3 => Step::Unassign {
                target: [0, 10, 20][b % 3] + a % MAX_DEVICES,
            },
            4 | 5 => Step::Report {
                device,
                state: [
                    UpdateState::Downloading,
                    UpdateState::Downloaded,
                    UpdateState::Verified,
                    UpdateState::Updating,
                    UpdateState::Updated,
                    UpdateState::Failed,
                ][b % 6],
            },
            6 => Step::Running {
                device,
                version: b % VERSIONS.len(),
                updated: b % 2 == 0,
            },
            7 => Step::Retry { device },
            8 => Step::Cancel { device },
            9 => Step::StartCampaign {
                pkg,
                by_group: a % 2 == 1,
                dynamic: a % 4 >= 2,
            },
            10 => Step::StopCampaign { campaign: a % 3 },
            11 => Step::RetryCampaign { campaign: a % 3 },
            12 => Step::PauseResume { campaign: a % 3 },
            13 => Step::SetProfile {
                device,
                profile: b % 2,
            },
            14 => Step::SetGroups {
                device,
                mask: (b % 4) as u8,
            },
            15 => Step::NewDevice,
            16 => Step::Restart,
            _ => Step::Tick {
                millis: [500, 6_000, 70_000][b % 3],
            },
        }
    }
}

/// A small fleet over one store, driven step by step.
pub struct Interleaving {
    ota: Ota,
    config: OtaConfig,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    notifier: Arc<RecordingNotifier>,
    tenant: TenantId,
    profiles: Vec<ProfileId>,
    groups: Vec<GroupId>,
    devices: Vec<Device>,
    packages: Vec<Package>,
    campaigns: Vec<CampaignId>,
    /// The last notice each device got.
    last_notice: HashMap<crate::ids::DeviceId, Notice>,
    seen_notices: usize,
}

fn policy() -> UpdatePolicy {
    UpdatePolicy::new(
        Timeouts::none()
            .with(UpdateState::Initiated, Duration::seconds(60))
            .with(UpdateState::Queued, Duration::seconds(200)),
        RetryPolicy::attempts(3, Duration::seconds(5)),
    )
}

impl Interleaving {
    /// A fleet of three devices in two profiles and two groups, with four packages, on
    /// `store` (fresh: the run makes its own tenant).
    pub async fn new(store: Arc<dyn Store>) -> Result<Self, OtaError> {
        let clock = Arc::new(ManualClock::at_epoch_2024());
        let notifier = Arc::new(RecordingNotifier::new());
        let mut config = OtaConfig {
            policy: policy(),
            ..OtaConfig::default()
        };
        config.global_pacing.max_in_progress = Some(3);
        let ota = Ota::new(
            store.clone(),
            notifier.clone(),
            clock.clone(),
            config.clone(),
        );
        let tenant = TenantId::new();
        let mut profiles = Vec::new();
        for name in ["p0", "p1"] {
            profiles.push(ota.create_profile(ACTOR, tenant, name).await?.id);
        }
        let mut groups = Vec::new();
        for name in ["g0", "g1"] {
            groups.push(ota.create_group(ACTOR, tenant, name).await?.id);
        }
        let mut packages = Vec::new();
        for version in VERSIONS {
            let mut new = NewPackage::new(tenant, PackageKind::Firmware, TITLE, version);
            if version == "4.0" {
                new.compatibility = Compatibility::Profiles(vec![profiles[0]]);
            }
            let content = format!("{TITLE}-{version}").into_bytes();
            let stream: crate::store::ByteStream =
                Box::pin(futures_util::stream::iter(vec![Ok::<Bytes, StoreError>(
                    Bytes::from(content),
                )]));
            packages.push(ota.upload_package(ACTOR, new, stream).await?);
        }
        let mut world = Self {
            ota,
            config,
            store,
            clock,
            notifier,
            tenant,
            profiles,
            groups,
            devices: Vec::new(),
            packages,
            campaigns: Vec::new(),
            last_notice: HashMap::new(),
            seen_notices: 0,
        };
        for _ in 0..START_DEVICES {
            world.new_device().await?;
        }
        Ok(world)
    }

    async fn new_device(&mut self) -> Result<(), OtaError> {
        let i = self.devices.len();
        let groups: BTreeSet<GroupId> = self.groups.iter().take(i % 3).copied().collect();
        let d = self.ota.new_device(
            self.tenant,
            &format!("d{i}"),
            self.profiles[0],
            groups,
            &format!("token-{}-{i}", self.tenant),
        );
        self.ota
            .create_devices(ACTOR, std::slice::from_ref(&d))
            .await?;
        self.devices.push(d);
        Ok(())
    }

    fn device(&self, i: usize) -> &Device {
        &self.devices[i % self.devices.len()]
    }

    /// Applies `steps` one by one, checking every invariant after each. `Err` describes the
    /// first broken invariant or unexpected error, with the steps so far.
    pub async fn run(mut self, steps: &[Step]) -> Result<(), String> {
        self.check()
            .await
            .map_err(|e| format!("before any step: {e}"))?;
        for (n, step) in steps.iter().enumerate() {
            let context = || format!("after step {n} {step:?} of {:?}", &steps[..=n]);
            self.apply(step)
                .await
                .map_err(|e| format!("{}: unexpected error {e:?}", context()))?;
            self.check()
                .await
                .map_err(|e| format!("{}: {e}", context()))?;
        }
        Ok(())
    }

    /// The current time of the run's clock.
    pub fn now(&self) -> crate::clock::Timestamp {
        self.clock.now()
    }
}
