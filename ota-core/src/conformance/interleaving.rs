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

    /// Applies one step; refusals an operator may get (illegal transitions, nothing to
    /// retry, ...) are fine, any other error is not.
    async fn apply(&mut self, step: &Step) -> Result<(), OtaError> {
        let tenant = self.tenant;
        let kind = PackageKind::Firmware;
        let result = match step {
            Step::AssignDevice { device, pkg } => {
                let d = self.device(*device).id;
                self.ota
                    .assign(
                        ACTOR,
                        tenant,
                        AssignmentTarget::Device(d),
                        self.packages[*pkg].id,
                    )
                    .await
                    .map(drop)
            }
            Step::AssignGroup { group, pkg } => self
                .ota
                .assign(
                    ACTOR,
                    tenant,
                    AssignmentTarget::Group(self.groups[*group]),
                    self.packages[*pkg].id,
                )
                .await
                .map(drop),
            Step::AssignProfile { profile, pkg } => self
                .ota
                .assign(
                    ACTOR,
                    tenant,
                    AssignmentTarget::Profile(self.profiles[*profile]),
                    self.packages[*pkg].id,
                )
                .await
                .map(drop),
            Step::Unassign { target } => {
                let target = match target / 10 {
                    0 => AssignmentTarget::Device(self.device(target % 10).id),
                    1 => AssignmentTarget::Group(self.groups[target % 2]),
                    _ => AssignmentTarget::Profile(self.profiles[target % 2]),
                };
                self.ota
                    .unassign(ACTOR, tenant, kind, target)
                    .await
                    .map(drop)
            }
            Step::Report { device, state } => {
                let mut r = report(*state);
                if *state == UpdateState::Failed {
                    r.error = Some("flash error".into());
                }
                let d = self.device(*device).id;
                self.ota.handle_report(tenant, d, &r).await.map(drop)
            }
            Step::Running {
                device,
                version,
                updated,
            } => {
                let mut r = report(UpdateState::Updated);
                if !updated {
                    r.state = None;
                }
                r.current_title = Some(TITLE.into());
                r.current_version = Some(VERSIONS[*version].into());
                let d = self.device(*device).id;
                self.ota.handle_report(tenant, d, &r).await.map(drop)
            }
            Step::Retry { device } => {
                let d = self.device(*device).id;
                self.ota
                    .retry_update(ACTOR, tenant, d, kind)
                    .await
                    .map(drop)
            }
            Step::Cancel { device } => {
                let d = self.device(*device).id;
                self.ota
                    .cancel_update(ACTOR, tenant, d, kind, "operator")
                    .await
                    .map(drop)
            }
            Step::StartCampaign {
                pkg,
                by_group,
                dynamic,
            } => {
                let target = CampaignTarget::Selection {
                    profile: (!by_group).then_some(self.profiles[0]),
                    groups: if *by_group {
                        BTreeSet::from([self.groups[0]])
                    } else {
                        BTreeSet::new()
                    },
                    source_versions: BTreeSet::new(),
                };
                let mut spec = CampaignSpec::new("c", self.packages[*pkg].id, target);
                spec.dynamic = *dynamic;
                spec.policy = policy();
                match self.ota.create_campaign(ACTOR, tenant, spec).await {
                    Ok(c) => {
                        self.campaigns.push(c.id);
                        self.ota.start_campaign(ACTOR, tenant, c.id).await.map(drop)
                    }
                    Err(e) => Err(e),
                }
            }
            Step::StopCampaign { campaign } => match self.campaign(*campaign) {
                Some(id) => self.ota.stop_campaign(ACTOR, tenant, id).await.map(drop),
                None => Ok(()),
            },
            Step::RetryCampaign { campaign } => match self.campaign(*campaign) {
                Some(id) => self
                    .ota
                    .retry_failed_in_campaign(ACTOR, tenant, id)
                    .await
                    .map(drop),
                None => Ok(()),
            },
            Step::PauseResume { campaign } => match self.campaign(*campaign) {
                Some(id) => {
                    let c = self.ota.campaign(tenant, id).await?;
                    if c.state == CampaignState::Paused {
                        self.ota.resume_campaign(ACTOR, tenant, id).await.map(drop)
                    } else {
                        self.ota.pause_campaign(ACTOR, tenant, id).await.map(drop)
                    }
                }
                None => Ok(()),
            },
            Step::SetProfile { device, profile } => {
                let d = self.device(*device).id;
                self.ota
                    .set_device_profile(ACTOR, tenant, d, self.profiles[*profile])
                    .await
                    .map(drop)
            }
            Step::SetGroups { device, mask } => {
                let d = self.device(*device).id;
                let groups = (0..2)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| self.groups[i])
                    .collect();
                self.ota
                    .set_device_groups(ACTOR, tenant, d, groups)
                    .await
                    .map(drop)
            }
            Step::Tick { millis } => {
                self.clock.advance(Duration::milliseconds(*millis));
                self.ota.tick().await.map(drop)
            }
            Step::Restart => {
                let mut config = self.config.clone();
                config.instance_id = format!("{}-restarted", self.config.instance_id);
                self.config = config.clone();
                self.ota = Ota::new(
                    self.store.clone(),
                    self.notifier.clone(),
                    self.clock.clone(),
                    config,
                );
                Ok(())
            }
            Step::NewDevice => {
                if self.devices.len() < MAX_DEVICES {
                    self.new_device().await
                } else {
                    Ok(())
                }
            }
        };
        match result {
            Ok(())
            | Err(OtaError::NotAllowed { .. })
            | Err(OtaError::IllegalTransition(_))
            | Err(OtaError::NoUpdate { .. })
            | Err(OtaError::Incompatible { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn campaign(&self, i: usize) -> Option<CampaignId> {
        (!self.campaigns.is_empty()).then(|| self.campaigns[i % self.campaigns.len()])
    }

    async fn updates_of(&self, filter: &UpdateFilter) -> Result<Vec<Update>, String> {
        let mut all = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let got = self
                .store
                .list_updates(self.tenant, filter, page)
                .await
                .map_err(|e| e.to_string())?;
            all.extend(got.items);
            match got.next {
                Some(next) => page = next,
                None => return Ok(all),
            }
        }
    }

    /// Checks every invariant of the module documentation.
    async fn check(&mut self) -> Result<(), String> {
        let all = self.updates_of(&UpdateFilter::default()).await?;
        let notices = self.notifier.notices();
        let fresh: Vec<Notice> = notices[self.seen_notices..].to_vec();
        self.seen_notices = notices.len();
        for n in &fresh {
            self.last_notice.insert(n.device_id(), n.clone());
        }
        let mut campaigns: HashMap<CampaignId, Campaign> = HashMap::new();
        for id in &self.campaigns {
            let c = self
                .ota
                .campaign(self.tenant, *id)
                .await
                .map_err(|e| e.to_string())?;
            campaigns.insert(*id, c);
        }
        for d in &self.devices {
            let device = self
                .ota
                .device(self.tenant, d.id)
                .await
                .map_err(|e| e.to_string())?;
            let mine: Vec<&Update> = all.iter().filter(|u| u.device_id == d.id).collect();
            // 1. At most one live update.
            let live: Vec<&&Update> = mine.iter().filter(|u| !u.state.is_terminal()).collect();
            if live.len() > 1 {
                return Err(format!(
                    "device {} has {} live updates: {live:?}",
                    device.name,
                    live.len()
                ));
            }
            let latest = self
                .store
                .latest_update(self.tenant, d.id, PackageKind::Firmware)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(u) = live.first() {
                if latest.as_ref().map(|l| l.id) != Some(u.id) {
                    return Err(format!(
                        "the live update of {} is not its latest",
                        device.name
                    ));
                }
                self.check_live(&device, u, &campaigns).await?;
            }
            // 4. Notices.
            let last = self.last_notice.get(&d.id);
            for n in fresh.iter().filter(|n| n.device_id() == d.id) {
                if let Notice::Update { attributes, .. } = n {
                    let version = attributes.get("fw_version").and_then(|v| v.as_str());
                    let ok = latest.as_ref().is_some_and(|l| {
                        Some(l.target.version.as_str()) == version
                            && l.state != UpdateState::Canceled
                    });
                    if !ok {
                        return Err(format!(
                            "{} was told about fw {version:?} but its latest update is {latest:?}",
                            device.name
                        ));
                    }
                }
            }
            if let Some(l) = &latest {
                if l.state.is_in_progress() {
                    let told = matches!(last, Some(Notice::Update { attributes, .. })
                        if attributes.get("fw_version").and_then(|v| v.as_str()) == Some(l.target.version.as_str()));
                    if !told {
                        return Err(format!(
                            "{} is {} to fw {} but its last notice is {last:?}",
                            device.name, l.state, l.target.version
                        ));
                    }
                }
                if l.state == UpdateState::Canceled
                    && self.was_dispatched(l).await?
                    && !matches!(last, Some(Notice::Withdrawal { .. }))
                {
                    return Err(format!(
                        "{}'s notified update to fw {} was canceled without a withdrawal (last notice {last:?})",
                        device.name, l.target.version
                    ));
                }
            }
        }
        // 3. Statistics equal a recount.
        for (id, c) in &campaigns {
            let stats = self
                .ota
                .campaign_stats(self.tenant, *id)
                .await
                .map_err(|e| e.to_string())?;
            let mut recount: HashMap<(u32, UpdateState), u64> = HashMap::new();
            for u in all.iter().filter(|u| u.campaign_id == Some(*id)) {
                *recount.entry((u.wave, u.state)).or_default() += 1;
            }
            for (wave, counts) in stats.waves.iter().enumerate() {
                for (state, n) in counts.iter() {
                    let expected = recount.remove(&(wave as u32, state)).unwrap_or_default();
                    if n != expected {
                        return Err(format!(
                            "campaign {} ({}) counts {n} {state} in wave {wave}, recount {expected}",
                            id, c.state
                        ));
                    }
                }
            }
            if let Some(((wave, state), n)) = recount.into_iter().find(|(_, n)| *n > 0) {
                return Err(format!(
                    "campaign {id} has {n} {state} updates in wave {wave} that its statistics miss"
                ));
            }
        }
        Ok(())
    }

    /// 2. The live update's package is the right one.
    async fn check_live(
        &self,
        device: &Device,
        u: &Update,
        campaigns: &HashMap<CampaignId, Campaign>,
    ) -> Result<(), String> {
        let package = self
            .packages
            .iter()
            .find(|p| p.id == u.package_id)
            .ok_or("unknown package")?;
        if !package.compatibility.allows(device.profile_id) {
            return Err(format!(
                "{}'s live update to fw {} is not compatible with its profile",
                device.name, package.version
            ));
        }
        let effective = self
            .ota
            .effective_package(device, PackageKind::Firmware)
            .await
            .map_err(|e| e.to_string())?;
        match u.campaign_id {
            None => match &effective {
                Some((p, _)) if p.id == u.package_id => Ok(()),
                other => Err(format!(
                    "{}'s live update to fw {} is not its effective package {:?}",
                    device.name,
                    package.version,
                    other.as_ref().map(|(p, _)| &p.version)
                )),
            },
            Some(id) => {
                let c = campaigns.get(&id).ok_or("unknown campaign")?;
                if !matches!(c.state, CampaignState::Running | CampaignState::Paused) {
                    return Err(format!(
                        "{} holds a live update of a {} campaign",
                        device.name, c.state
                    ));
                }
                if c.spec.package_id != u.package_id {
                    return Err("a campaign update to another package".into());
                }
                if let Some((p, e)) = &effective {
                    if e.assigned_at > u.created_at && p.id != u.package_id {
                        return Err(format!(
                            "{}'s campaign update stands against a newer assignment of fw {}",
                            device.name, p.version
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    async fn was_dispatched(&self, u: &Update) -> Result<bool, String> {
        let history = self
            .store
            .update_history(self.tenant, u.id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(history
            .iter()
            .any(|e| e.event == "dispatch" && e.outcome == HistoryOutcome::Applied))
    }

    /// The current time of the run's clock.
    pub fn now(&self) -> crate::clock::Timestamp {
        self.clock.now()
    }
}

fn report(state: UpdateState) -> DeviceReport {
    DeviceReport {
        kind: PackageKind::Firmware,
        ts: None,
        state: Some(state),
        current_title: None,
        current_version: None,
        error: None,
        progress: None,
    }
}
