//! Notices across instances in endpoint mode: two engines with their endpoints on one
//! PostgreSQL schema; devices connected to instance A; the release made by instance B's tick.
//! The notices travel through the outbox and its `NOTIFY` (`PgStore::outbox_wakeups` wired to
//! `OutboxDelivery`), and each device on A gets its notice once, through a real socket. A
//! device that connects to B later gets the notice waiting for it and its attributes by
//! request.

mod support;

use ota_core::store::NoticeOutbox;
use ota_core::{Device, UpdateState};
use ota_store_postgres::PgStore;
use ota_transport_mqtt::delivery::OutboxDelivery;
use ota_transport_mqtt::endpoint::{EndpointConfig, MqttNotifier};
use std::sync::Arc;
use std::time::Duration;
use support::device::{DeviceOptions, Protocol, TestDevice};
use support::flow::{self, Topics};
use support::{Fleet, RunningEndpoint};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One server instance: engine, endpoint and outbox delivery over its own store connection.
struct Instance {
    fleet: Fleet,
    endpoint: RunningEndpoint,
    store: PgStore,
    delivery: (oneshot::Sender<()>, JoinHandle<()>),
}

impl Instance {
    async fn start(store: PgStore, existing: Option<&Fleet>) -> Self {
        let notifier = MqttNotifier::default().across_instances();
        // Each engine has an instance id of its own (the default: a new UUID).
        let fleet = Fleet::over(
            Arc::new(store.clone()),
            Arc::new(notifier.clone()),
            existing.map(|f| (f.tenant, f.profile.clone())),
        )
        .await;
        let endpoint =
            RunningEndpoint::start(fleet.ota.clone(), &notifier, EndpointConfig::default()).await;
        // No periodic fallback within the test: the wake-ups alone must deliver.
        let delivery = OutboxDelivery::new(fleet.ota.clone(), &notifier)
            .fallback_every(Duration::from_secs(3600));
        let (stop, stopped) = oneshot::channel::<()>();
        let wakeups = store.outbox_wakeups();
        let task = tokio::spawn(delivery.run(wakeups, async {
            let _ = stopped.await;
        }));
        Self {
            fleet,
            endpoint,
            store,
            delivery: (stop, task),
        }
    }

    async fn stop(self) {
        let _ = self.delivery.0.send(());
        self.delivery.1.await.expect("delivery task");
        self.endpoint.stop().await;
    }
}

async fn connect(instance: &Instance, protocol: Protocol, device: &Device) -> TestDevice {
    let token = format!("token-{}", device.name);
    let (mut dev, _) =
        TestDevice::connect(instance.endpoint.port, DeviceOptions::new(protocol, &token))
            .await
            .expect("connected");
    flow::subscribe_like_thingsboard(&mut dev, &Topics::endpoint()).await;
    // Registered and subscribed once the endpoint answered.
    flow::barrier(&mut dev, &Topics::endpoint()).await;
    dev
}

async fn undelivered_becomes(store: &PgStore, tenant: ota_core::TenantId, n: u64) {
    let mut left = u64::MAX;
    for _ in 0..2400 {
        left = store.count_undelivered(Some(tenant)).await.expect("count");
        if left == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{left} notices undelivered, expected {n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_by_one_instance_reaches_devices_connected_to_the_other() {
    let db = ota_store_postgres::testing::fresh_database().await;
    let a = Instance::start(PgStore::connect(db.options()).await.expect("store"), None).await;
    let b = Instance::start(
        PgStore::connect(db.options()).await.expect("store"),
        Some(&a.fleet),
    )
    .await;
    let t = Topics::endpoint();
    let records = [
        a.fleet.device("d1").await,
        a.fleet.device("d2").await,
        a.fleet.device("d3").await,
    ];
    let later = a.fleet.device("d4").await;
    let mut devices = Vec::new();
    for (record, protocol) in records
        .iter()
        .zip([Protocol::V5, Protocol::V311, Protocol::V5])
    {
        devices.push(connect(&a, protocol, record).await);
    }
    let (package, content) = a.fleet.package("2.0.0", 256 * 1024).await;
    for record in records.iter().chain([&later]) {
        a.fleet.assign(record, &package).await;
    }

    // Instance B releases; it holds no connection, so the notices wait in the outbox.
    let report = b.fleet.ota.tick().await.expect("tick");
    assert_eq!(report.released, 4);
    let mut notices = Vec::new();
    for dev in &mut devices {
        let notice = dev.expect_json(&t.attributes()).await;
        assert_eq!(notice["fw_version"], "2.0.0");
        assert_eq!(notice["fw_size"], 256 * 1024);
        notices.push(notice);
    }
    // Only the notice of the device that is not connected is left ...
    undelivered_becomes(&a.store, a.fleet.tenant, 1).await;
    // ... and each device got its notice once: nothing else came before the barrier's
    // answer (a second delivery would have been sent before it).
    for dev in &mut devices {
        flow::barrier(dev, &t).await;
    }

    // A device on A updates from the notice the other instance released.
    let bytes = flow::update_through_updated(&mut devices[0], &t, &notices[0], 4096).await;
    assert_eq!(bytes, content);
    flow::barrier(&mut devices[0], &t).await;
    assert_eq!(a.fleet.state(&records[0]).await, Some(UpdateState::Updated));

    // A device connecting to B later gets the notice that waited for it, and its attributes
    // by request.
    let token = format!("token-{}", later.name);
    let (mut dev, _) =
        TestDevice::connect(b.endpoint.port, DeviceOptions::new(Protocol::V5, &token))
            .await
            .expect("connected");
    flow::subscribe_like_thingsboard(&mut dev, &t).await;
    let notice = dev.expect_json(&t.attributes()).await;
    assert_eq!(notice["fw_version"], "2.0.0");
    assert_eq!(flow::request_attributes(&mut dev, &t, "1").await, notice);
    undelivered_becomes(&b.store, a.fleet.tenant, 0).await;
    assert_eq!(b.fleet.state(&later).await, Some(UpdateState::Initiated));

    a.stop().await;
    b.stop().await;
}
