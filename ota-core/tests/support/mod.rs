//! Shared test harness: an engine over the memory store with a manual clock and a recording
//! notifier.
#![allow(dead_code)]

use bytes::Bytes;
use chrono::Duration;
use ota_core::campaign::{
    Campaign, CampaignSpec, CampaignState, CampaignTarget, ErrorThreshold, ThresholdAction,
};
use ota_core::engine::{NewPackage, Ota, OtaConfig};
use ota_core::notifier::{Notice, RecordingNotifier};
use ota_core::store::ByteStream;
use ota_core::wire::DeviceReport;
use ota_core::{
    AssignmentTarget, Device, DeviceProfile, ManualClock, Package, PackageKind, TenantId, Update,
    UpdateState,
};
use std::collections::BTreeSet;
use std::sync::Arc;

pub struct Harness {
    pub ota: Ota,
    pub store: Arc<ota_core::memory::MemoryStore>,
    pub clock: Arc<ManualClock>,
    pub notifier: Arc<RecordingNotifier>,
    pub tenant: TenantId,
}

pub const ACTOR: &str = "tester";

pub fn stream_of(bytes: Vec<u8>, chunk: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, ota_core::store::StoreError>> = bytes
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures_util::stream::iter(chunks))
}

impl Harness {
    pub fn new(config: OtaConfig) -> Self {
        let store = Arc::new(ota_core::memory::MemoryStore::new());
        let clock = Arc::new(ManualClock::at_epoch_2024());
        let notifier = Arc::new(RecordingNotifier::new());
        let ota = Ota::new(store.clone(), notifier.clone(), clock.clone(), config);
        Self {
            ota,
            store,
            clock,
            notifier,
            tenant: TenantId::new(),
        }
    }

    pub fn advance_ms(&self, ms: i64) {
        self.clock.advance(Duration::milliseconds(ms));
    }

    pub async fn profile(&self, name: &str) -> DeviceProfile {
        self.ota
            .create_profile(ACTOR, self.tenant, name)
            .await
            .unwrap()
    }

    pub async fn devices(&self, profile: &DeviceProfile, prefix: &str, n: usize) -> Vec<Device> {
        let devices: Vec<Device> = (0..n)
            .map(|i| {
                self.ota.new_device(
                    self.tenant,
                    &format!("{prefix}-{i}"),
                    profile.id,
                    BTreeSet::new(),
                    &format!("token-{prefix}-{i}"),
                )
            })
            .collect();
        self.ota.create_devices(ACTOR, &devices).await.unwrap();
        devices
    }

    pub async fn package(&self, title: &str, version: &str) -> Package {
        let new = NewPackage::new(self.tenant, PackageKind::Firmware, title, version);
        let content = format!("{title}-{version}-content").into_bytes();
        self.ota
            .upload_package(ACTOR, new, stream_of(content, 7))
            .await
            .unwrap()
    }

    /// The latest firmware update of `device`, if any.
    pub async fn latest_update(&self, device: &Device) -> Option<Update> {
        ota_core::store::UpdateStore::latest_update(
            &*self.store,
            self.tenant,
            device.id,
            PackageKind::Firmware,
        )
        .await
        .unwrap()
    }

    pub async fn state_of(&self, device: &Device) -> Option<UpdateState> {
        self.latest_update(device).await.map(|u| u.state)
    }

    /// The latest firmware update of `device`, which must have one.
    pub async fn latest(&self, device: &Device) -> Update {
        self.latest_update(device).await.expect("an update")
    }

    /// A profile "p", `n` devices in it ("d-0", "d-1", ...) and a package fw `version`.
    pub async fn fleet(&self, n: usize, version: &str) -> (DeviceProfile, Vec<Device>, Package) {
        let p = self.profile("p").await;
        let devices = self.devices(&p, "d", n).await;
        let pkg = self.package("fw", version).await;
        (p, devices, pkg)
    }

    /// A profile "p" and one device ("d-0") in it.
    pub async fn one_device(&self) -> (DeviceProfile, Device) {
        let p = self.profile("p").await;
        let d = self.devices(&p, "d", 1).await.remove(0);
        (p, d)
    }

    /// One device of a profile "p" whose update to fw `version` was sent: the package is
    /// assigned to the device and a tick released it.
    pub async fn one_sent(&self, version: &str) -> (Device, Package) {
        let (_, d) = self.one_device().await;
        let pkg = self.package("fw", version).await;
        self.assign_device(&d, &pkg).await;
        self.ota.tick().await.unwrap();
        (d, pkg)
    }

    /// Assigns `pkg` to `device` alone.
    pub async fn assign_device(&self, device: &Device, pkg: &Package) {
        self.ota
            .assign(
                ACTOR,
                self.tenant,
                AssignmentTarget::Device(device.id),
                pkg.id,
            )
            .await
            .unwrap();
    }

    /// Unassigns the firmware of `device` alone.
    pub async fn unassign_device(&self, device: &Device) {
        self.ota
            .unassign(
                ACTOR,
                self.tenant,
                PackageKind::Firmware,
                AssignmentTarget::Device(device.id),
            )
            .await
            .unwrap();
    }

    /// Creates the campaign of `spec` (a draft).
    pub async fn draft(&self, spec: CampaignSpec) -> Campaign {
        self.ota
            .create_campaign(ACTOR, self.tenant, spec)
            .await
            .unwrap()
    }

    /// Creates the campaign of `spec` and starts it.
    pub async fn started(&self, spec: CampaignSpec) -> Campaign {
        let c = self.draft(spec).await;
        self.ota
            .start_campaign(ACTOR, self.tenant, c.id)
            .await
            .unwrap()
    }

    /// The state campaign `c` is in now.
    pub async fn campaign_state(&self, c: &Campaign) -> CampaignState {
        self.ota.campaign(self.tenant, c.id).await.unwrap().state
    }

    /// `device` reports its firmware update FAILED ("flash error").
    pub async fn fail(&self, device: &Device) {
        let mut r = report(Some(UpdateState::Failed));
        r.error = Some("flash error".into());
        self.ota
            .handle_report(self.tenant, device.id, &r)
            .await
            .unwrap();
    }

    /// `device` reports that it runs fw `version`.
    pub async fn runs(&self, device: &Device, version: &str) {
        self.ota
            .handle_report(self.tenant, device.id, &running("fw", version))
            .await
            .unwrap();
    }

    pub fn take_update_notices(&self) -> Vec<Notice> {
        self.notifier
            .take()
            .into_iter()
            .filter(|n| matches!(n, Notice::Update { .. }))
            .collect()
    }
}

pub fn report(state: Option<UpdateState>) -> DeviceReport {
    DeviceReport {
        kind: PackageKind::Firmware,
        ts: None,
        state,
        current_title: None,
        current_version: None,
        error: None,
        progress: None,
    }
}

pub fn running(title: &str, version: &str) -> DeviceReport {
    DeviceReport {
        current_title: Some(title.to_string()),
        current_version: Some(version.to_string()),
        ..report(None)
    }
}

/// A campaign named "rollout" of `pkg` over the devices of profile `p` (any group, any
/// version).
pub fn by_profile(p: &DeviceProfile, pkg: &Package) -> CampaignSpec {
    CampaignSpec::new(
        "rollout",
        pkg.id,
        CampaignTarget::Selection {
            profile: Some(p.id),
            groups: BTreeSet::new(),
            source_versions: BTreeSet::new(),
        },
    )
}

/// An error threshold of half the finished devices (from the first), taking `action`.
pub fn half_failed(action: ThresholdAction) -> Option<ErrorThreshold> {
    Some(ErrorThreshold {
        percent: 50.0,
        min_finished: 1,
        action,
    })
}
