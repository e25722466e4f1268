//! Test kit: the device API served on 127.0.0.1:0 over the memory store or PostgreSQL, with
//! helpers to create devices and packages and a real HTTP client.
#![allow(dead_code)]

use bytes::Bytes;
use ota_core::engine::{NewPackage, Ota, OtaConfig};
use ota_core::notifier::{Notice, Notifier, NotifyError};
use ota_core::store::{ByteStream, Store, StoreError};
use ota_core::{
    AssignmentTarget, Checksum, Device, DeviceProfile, Package, PackageKind, SystemClock, TenantId,
    UpdateState,
};
use ota_store_postgres::PgStore;
use ota_transport_http::{device_router, DeviceApiOptions, HttpNotifier, ServerLimits};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::oneshot;

pub const ACTOR: &str = "tester";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Postgres,
}

/// Runs `$case(Backend)` as two tests, `memory` and `postgres`, in a module named after it.
#[macro_export]
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn memory() {
                    super::$case(super::support::Backend::Memory).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$case(super::support::Backend::Postgres).await
                }
            }
        )*
    };
}

pub struct Server {
    pub base: String,
    pub ota: Ota,
    pub notifier: HttpNotifier,
    pub tenant: TenantId,
    pub profile: DeviceProfile,
    pub client: reqwest::Client,
    pub pg: Option<PgStore>,
    shutdown: Option<oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<()>>,
    devices: AtomicUsize,
}

pub fn stream_of(bytes: Vec<u8>, piece: usize) -> ByteStream {
    let pieces: Vec<Result<Bytes, StoreError>> = bytes
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(pieces))
}

/// `len` bytes that differ from run to run only by `seed`.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

impl Server {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |o| o).await
    }

    pub async fn start_with(
        backend: Backend,
        configure: impl FnOnce(DeviceApiOptions) -> DeviceApiOptions,
    ) -> Self {
        Self::start_limited(backend, configure, ServerLimits::default()).await
    }

    /// Served by [`ota_transport_http::serve`] within `limits`.
    pub async fn start_limited(
        backend: Backend,
        configure: impl FnOnce(DeviceApiOptions) -> DeviceApiOptions,
        limits: ServerLimits,
    ) -> Self {
        Self::start_full(backend, configure, limits, false).await
    }

    /// As one of several instances sharing the store: the engine's notifier reaches only
    /// the devices whose long-polls wait here; other notices stay in the outbox.
    pub async fn start_across(
        backend: Backend,
        configure: impl FnOnce(DeviceApiOptions) -> DeviceApiOptions,
    ) -> Self {
        Self::start_full(backend, configure, ServerLimits::default(), true).await
    }

    async fn start_full(
        backend: Backend,
        configure: impl FnOnce(DeviceApiOptions) -> DeviceApiOptions,
        limits: ServerLimits,
        across: bool,
    ) -> Self {
        let (store, pg): (Arc<dyn Store>, Option<PgStore>) = match backend {
            Backend::Memory => (Arc::new(ota_core::memory::MemoryStore::new()), None),
            Backend::Postgres => {
                let pg = ota_store_postgres::testing::fresh_store().await;
                (Arc::new(pg.clone()), Some(pg))
            }
        };
        let notifier = HttpNotifier::new();
        let engine_notifier: Arc<dyn Notifier> = if across {
            Arc::new(WaitersOnly(notifier.clone()))
        } else {
            Arc::new(notifier.clone())
        };
        let ota = Ota::new(
            store,
            engine_notifier,
            Arc::new(SystemClock),
            OtaConfig::default(),
        );
        let options = configure(DeviceApiOptions::new(notifier.clone()));
        let router = device_router(ota.clone(), options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            ota_transport_http::serve(listener, router, limits, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let tenant = TenantId::new();
        let profile = ota.create_profile(ACTOR, tenant, "sensors").await.unwrap();
        Self {
            base: format!("http://{addr}"),
            ota,
            notifier,
            tenant,
            profile,
            client: reqwest::Client::new(),
            pg,
            shutdown: Some(tx),
            serving: Some(serving),
            devices: AtomicUsize::new(0),
        }
    }

    /// Stops accepting, answers waiting long-polls and waits for open requests to finish.
    pub async fn stop(mut self) {
        self.notifier.release_all();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(serving) = self.serving.take() {
            serving.await.unwrap();
        }
    }

    pub fn url(&self, token: &str, path: &str) -> String {
        format!("{}/api/v1/{token}/{path}", self.base)
    }

    pub async fn device(&self) -> Device {
        let n = self.devices.fetch_add(1, Ordering::SeqCst);
        let token = format!("token-{}-{n}", uuid_like());
        let device = self.ota.new_device(
            self.tenant,
            &format!("device-{n}"),
            self.profile.id,
            BTreeSet::new(),
            &token,
        );
        self.ota
            .create_devices(ACTOR, std::slice::from_ref(&device))
            .await
            .unwrap();
        device
    }

    pub async fn upload(
        &self,
        kind: PackageKind,
        title: &str,
        version: &str,
        bytes: Vec<u8>,
        checksum: Option<Checksum>,
    ) -> Package {
        let mut new = NewPackage::new(self.tenant, kind, title, version);
        new.checksum = checksum;
        new.file_name = Some(format!("{title}-{version}.bin"));
        new.content_type = Some("application/x-firmware".to_string());
        self.ota
            .upload_package(ACTOR, new, stream_of(bytes, 1000))
            .await
            .unwrap()
    }

    /// Assigns `package` to `device` and releases the update (the device is notified).
    pub async fn assign(&self, device: &Device, package: &Package) {
        self.ota
            .assign(
                ACTOR,
                self.tenant,
                AssignmentTarget::Device(device.id),
                package.id,
            )
            .await
            .unwrap();
        self.ota.tick().await.unwrap();
    }

    pub async fn state(&self, device: &Device, kind: PackageKind) -> Option<UpdateState> {
        self.ota
            .store()
            .latest_update(self.tenant, device.id, kind)
            .await
            .unwrap()
            .map(|u| u.state)
    }

    /// Waits until `n` long-polls wait for `device` (no time limit: the test's own timeout
    /// catches a hang).
    pub async fn until_waiting(&self, device: &Device, n: usize) {
        while self.notifier.waiters(device.id) < n {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}

/// The HTTP notifier of one instance among several: it reaches the devices waiting here.
struct WaitersOnly(HttpNotifier);

#[ota_core::async_trait]
impl Notifier for WaitersOnly {
    async fn notify(&self, notice: &Notice) -> Result<(), NotifyError> {
        self.0.notify(notice).await
    }

    fn reachable_devices(&self) -> Option<Vec<ota_core::DeviceId>> {
        Some(self.0.waiting_device_ids())
    }
}

fn uuid_like() -> String {
    ota_core::DeviceId::new().to_string()
}

/// Status and parsed JSON body of an error answer; panics when the body is not the JSON error
/// shape.
pub async fn json_error(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap())
        .unwrap_or_else(|e| panic!("error body of a {status} is not JSON: {e}"));
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let code = body["code"].as_str().expect("code").to_string();
    let message = body["message"].as_str().expect("message").to_string();
    assert!(!message.is_empty());
    (status, code, message)
}
