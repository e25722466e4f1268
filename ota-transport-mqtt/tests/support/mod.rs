//! Shared test harness: an engine with a store, devices and packages, the MQTT endpoint on a
//! free port, and the device side of an update.
#![allow(dead_code)]

pub mod bridged;
pub mod broker;
pub mod device;
pub mod flow;

use bytes::Bytes;
use ota_core::engine::{NewPackage, Ota, OtaConfig};
use ota_core::notifier::Notifier;
use ota_core::store::{ByteStream, Store};
use ota_core::{
    AssignmentTarget, Device, DeviceProfile, ManualClock, Package, PackageKind, TenantId,
    UpdateState,
};
#[cfg(feature = "endpoint")]
use ota_transport_mqtt::endpoint::{EndpointConfig, MqttEndpoint, MqttNotifier};
use std::collections::BTreeSet;
use std::sync::Arc;
#[cfg(feature = "endpoint")]
use tokio::sync::oneshot;
#[cfg(feature = "endpoint")]
use tokio::task::JoinHandle;

pub const ACTOR: &str = "tester";

pub struct Fleet {
    pub ota: Ota,
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    pub tenant: TenantId,
    pub profile: DeviceProfile,
}

impl Fleet {
    pub async fn memory(notifier: Arc<dyn Notifier>) -> Self {
        Self::over(
            Arc::new(ota_core::memory::MemoryStore::new()),
            notifier,
            None,
        )
        .await
    }

    /// An engine over `store`; `tenant` and profile are created unless given.
    pub async fn over(
        store: Arc<dyn Store>,
        notifier: Arc<dyn Notifier>,
        existing: Option<(TenantId, DeviceProfile)>,
    ) -> Self {
        let clock = Arc::new(ManualClock::at_epoch_2024());
        let ota = Ota::new(store.clone(), notifier, clock.clone(), OtaConfig::default());
        let (tenant, profile) = match existing {
            Some(e) => e,
            None => {
                let tenant = TenantId::new();
                let profile = ota
                    .create_profile(ACTOR, tenant, "sensors")
                    .await
                    .expect("profile");
                (tenant, profile)
            }
        };
        Self {
            ota,
            store,
            clock,
            tenant,
            profile,
        }
    }

    pub async fn device(&self, name: &str) -> Device {
        let device = self.ota.new_device(
            self.tenant,
            name,
            self.profile.id,
            BTreeSet::new(),
            &format!("token-{name}"),
        );
        self.ota
            .create_devices(ACTOR, std::slice::from_ref(&device))
            .await
            .expect("device");
        device
    }

    /// A firmware package with `len` bytes of deterministic content (SHA256 computed).
    pub async fn package(&self, version: &str, len: usize) -> (Package, Vec<u8>) {
        let content = content(len, version.len() as u64 + len as u64);
        let new = NewPackage::new(self.tenant, PackageKind::Firmware, "sensor-fw", version);
        let package = self
            .ota
            .upload_package(ACTOR, new, stream_of(content.clone(), 64 * 1024))
            .await
            .expect("package");
        (package, content)
    }

    pub async fn assign(&self, device: &Device, package: &Package) {
        self.ota
            .assign(
                ACTOR,
                self.tenant,
                AssignmentTarget::Device(device.id),
                package.id,
            )
            .await
            .expect("assign");
    }

    pub async fn tick(&self) {
        self.ota.tick().await.expect("tick");
    }

    pub async fn state(&self, device: &Device) -> Option<UpdateState> {
        self.store
            .latest_update(self.tenant, device.id, PackageKind::Firmware)
            .await
            .expect("latest update")
            .map(|u| u.state)
    }
}

pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

pub fn stream_of(bytes: Vec<u8>, chunk: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, ota_core::store::StoreError>> = bytes
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures_util::stream::iter(chunks))
}

/// A running endpoint on 127.0.0.1 with a free port.
#[cfg(feature = "endpoint")]
pub struct RunningEndpoint {
    pub port: u16,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

#[cfg(feature = "endpoint")]
impl RunningEndpoint {
    pub async fn start(ota: Ota, notifier: &MqttNotifier, config: EndpointConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (stop, stopped) = oneshot::channel::<()>();
        let endpoint = MqttEndpoint::new(ota, notifier, config);
        let task = tokio::spawn(async move {
            endpoint
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
                .expect("endpoint");
        });
        Self {
            port,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("endpoint task");
        }
    }
}

#[cfg(feature = "endpoint")]
impl Drop for RunningEndpoint {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
