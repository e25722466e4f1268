//! Shared setup of the multi-engine tests: a fleet on one profile with a package assigned,
//! and the device side (a report of the new version as installed).
#![allow(dead_code)]

use bytes::Bytes;
use ota_core::engine::{NewPackage, Ota, OtaConfig};
use ota_core::notifier::{Notice, Notifier, NotifyError};
use ota_core::pacing::{Pacing, Rate};
use ota_core::update::HistoryEntry;
use ota_core::wire::DeviceReport;
use ota_core::{
    AssignmentTarget, DeviceId, DeviceProfile, Package, PackageKind, TenantId, UpdateState,
};
use ota_store_postgres::PgStore;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

pub const ACTOR: &str = "tester";

/// An engine configuration with a global pace of `per_second` releases per second.
pub fn paced_config(instance: &str, per_second: u32) -> OtaConfig {
    OtaConfig::default().instance_id(instance).global_pacing(
        Pacing::default().rate(Rate::new(per_second, chrono::Duration::seconds(1)).unwrap()),
    )
}

/// Creates `n` devices on one profile, a firmware package `fw 2.0` and assigns it to the
/// profile: `n` QUEUED updates.
pub async fn fleet(ota: &Ota, tenant: TenantId, n: usize) {
    let (profile, package) = fleet_without_assignment(ota, tenant, n).await;
    ota.assign(
        ACTOR,
        tenant,
        AssignmentTarget::Profile(profile.id),
        package.id,
    )
    .await
    .unwrap();
}

/// Creates `n` devices on one profile and a firmware package `fw 2.0`.
pub async fn fleet_without_assignment(
    ota: &Ota,
    tenant: TenantId,
    n: usize,
) -> (DeviceProfile, Package) {
    let profile = ota.create_profile(ACTOR, tenant, "fleet").await.unwrap();
    for start in (0..n).step_by(5_000) {
        let devices: Vec<_> = (start..(start + 5_000).min(n))
            .map(|i| {
                ota.new_device(
                    tenant,
                    &format!("dev-{i}"),
                    profile.id,
                    BTreeSet::new(),
                    &format!("token-{tenant}-{i}"),
                )
            })
            .collect();
        ota.create_devices(ACTOR, &devices).await.unwrap();
    }
    let content: ota_core::store::ByteStream = Box::pin(futures::stream::iter(vec![Ok(
        Bytes::from_static(b"firmware 2.0 image"),
    )]));
    let package = ota
        .upload_package(
            ACTOR,
            NewPackage::new(tenant, PackageKind::Firmware, "fw", "2.0"),
            content,
        )
        .await
        .unwrap();
    (profile, package)
}

/// What a device sends once it runs `fw 2.0`.
pub fn installed() -> DeviceReport {
    DeviceReport {
        kind: PackageKind::Firmware,
        ts: None,
        state: Some(UpdateState::Updated),
        current_title: Some("fw".into()),
        current_version: Some("2.0".into()),
        error: None,
        progress: None,
    }
}

/// The devices an engine notified of an update, in order.
#[derive(Default)]
pub struct DeviceNotices(pub Mutex<Vec<DeviceId>>);

#[async_trait::async_trait]
impl Notifier for DeviceNotices {
    async fn notify(&self, notice: &Notice) -> Result<(), NotifyError> {
        if let Notice::Update { device_id, .. } = notice {
            self.0.lock().unwrap().push(*device_id);
        }
        Ok(())
    }
}

impl DeviceNotices {
    pub fn take(&self) -> Vec<DeviceId> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// The times of every release (QUEUED -> INITIATED) in the tenant, sorted.
pub async fn release_times(store: &PgStore, tenant: TenantId) -> Vec<i64> {
    let docs: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT doc FROM ota_history WHERE tenant_id = $1")
            .bind(tenant.0)
            .fetch_all(store.pool())
            .await
            .unwrap();
    let mut times: Vec<i64> = docs
        .into_iter()
        .map(|d| serde_json::from_value::<HistoryEntry>(d).unwrap())
        .filter(|h| h.from == UpdateState::Queued && h.to == UpdateState::Initiated)
        .map(|h| h.at.timestamp_nanos_opt().unwrap())
        .collect();
    times.sort_unstable();
    times
}

/// The most releases found in any window of one second.
pub fn max_per_second(times: &[i64]) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi] - times[lo] >= 1_000_000_000 {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

/// An `Arc<dyn Notifier>` and the recorder behind it.
pub fn recorder() -> (Arc<DeviceNotices>, Arc<dyn Notifier>) {
    let r = Arc::new(DeviceNotices::default());
    (r.clone(), r)
}
