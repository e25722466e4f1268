//! What the dashboard's browser tests host in-process: an engine on the memory store, the
//! management API with an API key, the device HTTP API and the dashboard on one port, a
//! background tick, and devices simulated through the engine.
#![allow(dead_code)]

pub mod browser;

use ota_core::engine::{Ota, OtaConfig};
use ota_core::{Device, PackageKind, SystemClock, TenantId, UpdateState};
use ota_transport_http::management::{ApiKeys, Role};
use ota_transport_http::{
    device_router, management_router, DeviceApiOptions, HttpNotifier, ManagementOptions,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub struct Host {
    pub base: String,
    pub ota: Ota,
    pub tenant: TenantId,
    pub admin_key: String,
    server: tokio::task::JoinHandle<()>,
    ticker: tokio::task::JoinHandle<()>,
}

impl Host {
    pub async fn start() -> Self {
        let notifier = HttpNotifier::new();
        let ota = Ota::new(
            Arc::new(ota_core::memory::MemoryStore::new()),
            Arc::new(notifier.clone()),
            Arc::new(SystemClock),
            OtaConfig::default(),
        );
        let keys = Arc::new(ApiKeys::new());
        let tenant = TenantId::new();
        let admin_key = keys.issue(tenant, "dashboard-admin", Role::Admin);
        let app = ota_examples::dashboard::dashboard_router()
            .merge(management_router(
                ota.clone(),
                keys,
                ManagementOptions::default(),
            ))
            .merge(device_router(ota.clone(), DeviceApiOptions::new(notifier)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let ticking = ota.clone();
        let ticker = tokio::spawn(async move {
            loop {
                let _ = ticking.tick().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self {
            base: format!("http://{addr}"),
            ota,
            tenant,
            admin_key,
            server,
            ticker,
        }
    }

    /// Devices `names` in a new profile `profile`, each reporting `current` firmware.
    pub async fn devices(
        &self,
        profile: &str,
        names: &[&str],
        current: (&str, &str),
    ) -> Vec<Device> {
        let p = self
            .ota
            .create_profile("test", self.tenant, profile)
            .await
            .unwrap();
        let devices: Vec<Device> = names
            .iter()
            .map(|n| {
                self.ota
                    .new_device(self.tenant, n, p.id, BTreeSet::new(), &format!("tok-{n}"))
            })
            .collect();
        let devices = self.ota.create_devices("test", &devices).await.unwrap();
        for d in &devices {
            let payload = format!(
                r#"{{"current_fw_title":"{}","current_fw_version":"{}"}}"#,
                current.0, current.1
            );
            self.report(d, &payload).await;
        }
        devices
    }

    /// A device's telemetry, handled as the device API would.
    pub async fn report(&self, device: &Device, payload: &str) {
        self.ota
            .handle_payload(device, payload.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{} reporting {payload}: {e}", device.name));
    }

    /// The state of a device's latest firmware update.
    pub async fn state(&self, device: &Device) -> Option<UpdateState> {
        self.ota
            .store()
            .latest_update(self.tenant, device.id, PackageKind::Firmware)
            .await
            .unwrap()
            .map(|u| u.state)
    }

    pub fn stop(self) {
        self.ticker.abort();
        self.server.abort();
    }
}
