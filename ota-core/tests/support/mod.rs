//! Shared test harness: an engine over the memory store with a manual clock and a recording
//! notifier.
#![allow(dead_code)]

use bytes::Bytes;
use chrono::Duration;
use ota_core::engine::{NewPackage, Ota, OtaConfig};
use ota_core::notifier::{Notice, RecordingNotifier};
use ota_core::store::ByteStream;
use ota_core::wire::DeviceReport;
use ota_core::{Device, DeviceProfile, ManualClock, Package, PackageKind, TenantId, UpdateState};
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

    pub async fn state_of(&self, device: &Device) -> Option<UpdateState> {
        ota_core::store::UpdateStore::latest_update(
            &*self.store,
            self.tenant,
            device.id,
            PackageKind::Firmware,
        )
        .await
        .unwrap()
        .map(|u| u.state)
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
