//! The PostgreSQL outbox announces what is written to it: a `NOTIFY` on
//! `PgStore::outbox_channel` carries the device ids of the notices written (at most 100 per
//! notification), so that the instance holding a device's connection delivers the notice
//! released by another instance.

// Core config structs are built from `Default` plus field assignment (they are becoming
// `#[non_exhaustive]`).
#![allow(clippy::field_reassign_with_default)]

mod common;

use common::*;
use ota_core::engine::{Ota, OtaConfig};
use ota_core::notifier::{Notice, Notifier, NotifyError};
use ota_core::store::NoticeOutbox;
use ota_core::{DeviceId, ManualClock, TenantId};
use ota_store_postgres::testing::fresh_database;
use ota_store_postgres::PgStore;
use sqlx::postgres::PgListener;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A transport that holds the connections of some devices only.
struct Holder {
    devices: Vec<DeviceId>,
    seen: Mutex<Vec<DeviceId>>,
}

#[async_trait::async_trait]
impl Notifier for Holder {
    async fn notify(&self, notice: &Notice) -> Result<(), NotifyError> {
        assert!(
            self.devices.contains(&notice.device_id()),
            "handed a notice for a device it does not hold"
        );
        self.seen.lock().unwrap().push(notice.device_id());
        Ok(())
    }

    fn reachable_devices(&self) -> Option<Vec<DeviceId>> {
        Some(self.devices.clone())
    }
}

fn config(instance: &str) -> OtaConfig {
    let mut c = OtaConfig::default();
    c.instance_id = instance.into();
    c
}

/// The device ids announced until `n` distinct ones arrived.
async fn announced(listener: &mut PgListener, n: usize) -> (BTreeSet<DeviceId>, usize) {
    let mut ids = BTreeSet::new();
    let mut notifications = 0;
    while ids.len() < n {
        let note = tokio::time::timeout(Duration::from_secs(60), listener.recv())
            .await
            .expect("an announcement within a minute")
            .expect("a notification");
        notifications += 1;
        let devices: Vec<&str> = note.payload().split(',').collect();
        assert!(devices.len() <= 100, "{} ids in one payload", devices.len());
        for d in devices {
            ids.insert(DeviceId(d.parse().expect("a device id")));
        }
    }
    (ids, notifications)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_released_by_one_instance_reaches_the_device_held_by_another() {
    const DEVICES: usize = 250;
    let db = fresh_database().await;
    let store = PgStore::connect(db.options()).await.unwrap();
    let channel = store.outbox_channel().await.unwrap();
    assert_eq!(channel, format!("ota_outbox:{}", db.schema));
    let mut listener = PgListener::connect_with(store.pool()).await.unwrap();
    listener.listen(&channel).await.unwrap();

    let clock = Arc::new(ManualClock::at_epoch_2024());
    // The releasing instance holds no device connection.
    let releaser_notifier = Arc::new(Holder {
        devices: Vec::new(),
        seen: Mutex::default(),
    });
    let releaser = Ota::new(
        Arc::new(store.clone()),
        releaser_notifier.clone(),
        clock.clone(),
        config("releaser"),
    );
    let tenant = TenantId::new();
    fleet(&releaser, tenant, DEVICES).await;
    let all: Vec<DeviceId> = store_devices(&store, tenant).await;
    assert_eq!(all.len(), DEVICES);
    let report = releaser.tick().await.unwrap();
    assert_eq!(report.released, DEVICES as u32);
    assert!(releaser_notifier.seen.lock().unwrap().is_empty());
    assert_eq!(
        store.count_undelivered(Some(tenant)).await.unwrap(),
        DEVICES as u64,
        "the notices wait for the instance holding the devices"
    );

    let (ids, notifications) = announced(&mut listener, DEVICES).await;
    assert_eq!(ids, all.iter().copied().collect::<BTreeSet<_>>());
    assert!(
        notifications >= 3,
        "250 ids come in notifications of at most 100"
    );

    // The holder of half the devices delivers theirs when told, and only theirs.
    let half: Vec<DeviceId> = all[..DEVICES / 2].to_vec();
    let holder = Arc::new(Holder {
        devices: half.clone(),
        seen: Mutex::default(),
    });
    let delivering = Ota::new(
        Arc::new(store.clone()),
        holder.clone(),
        clock.clone(),
        config("holder"),
    );
    let told: Vec<DeviceId> = ids.iter().copied().filter(|d| half.contains(d)).collect();
    let (delivered, failed) = delivering.deliver_notices_for(&told).await.unwrap();
    assert_eq!((delivered, failed), (half.len() as u32, 0));
    let mut seen = holder.seen.lock().unwrap().clone();
    seen.sort();
    let mut want = half.clone();
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(
        store.count_undelivered(Some(tenant)).await.unwrap(),
        (DEVICES - DEVICES / 2) as u64
    );
    // Its tick takes nothing it cannot deliver.
    let tick = delivering.tick().await.unwrap();
    assert_eq!((tick.redelivered, tick.notify_failures), (0, 0));
}

async fn store_devices(store: &PgStore, tenant: TenantId) -> Vec<DeviceId> {
    sqlx::query_scalar::<_, uuid::Uuid>(
        "SELECT device_id FROM ota_updates WHERE tenant_id = $1 ORDER BY device_id",
    )
    .bind(tenant.0)
    .fetch_all(store.pool())
    .await
    .unwrap()
    .into_iter()
    .map(DeviceId)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_is_announced_too() {
    let db = fresh_database().await;
    let store = PgStore::connect(db.options()).await.unwrap();
    let mut listener = PgListener::connect_with(store.pool()).await.unwrap();
    listener
        .listen(&store.outbox_channel().await.unwrap())
        .await
        .unwrap();
    let (_, notifier) = recorder();
    let ota = Ota::new(
        Arc::new(store.clone()),
        notifier,
        Arc::new(ManualClock::at_epoch_2024()),
        config("one"),
    );
    let tenant = TenantId::new();
    let (profile, package) = fleet_without_assignment(&ota, tenant, 1).await;
    let target = ota_core::AssignmentTarget::Profile(profile.id);
    ota.assign(ACTOR, tenant, target, package.id).await.unwrap();
    ota.tick().await.unwrap();
    let device = store_devices(&store, tenant).await[0];
    let (first, _) = announced(&mut listener, 1).await;
    assert_eq!(first, BTreeSet::from([device]));
    ota.unassign(ACTOR, tenant, package.kind, target)
        .await
        .unwrap();
    let (second, _) = announced(&mut listener, 1).await;
    assert_eq!(second, BTreeSet::from([device]));
    assert_eq!(
        store.count_undelivered(Some(tenant)).await.unwrap(),
        0,
        "delivered at once by the instance that reaches every device"
    );
}
