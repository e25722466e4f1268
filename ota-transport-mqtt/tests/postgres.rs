//! End to end on PostgreSQL: the endpoint over the PostgreSQL store, and two bridge
//! instances (two engines on one database) where the device's update is released by the
//! instance that did not assign it.

mod support;

use ota_core::store::NoticeOutbox;
use ota_core::store::Store;
use ota_core::UpdateState;
use ota_store_postgres::PgStore;
use ota_transport_mqtt::delivery::OutboxDelivery;
use ota_transport_mqtt::endpoint::{EndpointConfig, MqttNotifier};
use std::sync::Arc;
use support::bridged::{bridged, device, subscribe_device, until_served, RunningBridge};
use support::broker::Mosquitto;
use support::device::{DeviceOptions, Protocol, TestDevice};
use support::flow::{self, Topics};
use support::{Fleet, RunningEndpoint};

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn endpoint_on_postgres_updates_a_device() {
    let store: Arc<dyn Store> = Arc::new(ota_store_postgres::testing::fresh_store().await);
    let notifier = MqttNotifier::default();
    let fleet = Fleet::over(store, Arc::new(notifier.clone()), None).await;
    let endpoint =
        RunningEndpoint::start(fleet.ota.clone(), &notifier, EndpointConfig::default()).await;
    let record = fleet.device("d1").await;
    let (package, content) = fleet.package("2.0.0", MIB).await;
    let t = Topics::endpoint();
    let (mut dev, _) =
        TestDevice::connect(endpoint.port, DeviceOptions::new(Protocol::V5, "token-d1"))
            .await
            .expect("connected");
    flow::subscribe_like_thingsboard(&mut dev, &t).await;
    fleet.assign(&record, &package).await;
    fleet.tick().await;
    let notice = dev.expect_json(&t.attributes()).await;
    assert_eq!(flow::request_attributes(&mut dev, &t, "1").await, notice);
    let bytes = flow::update_through_updated(&mut dev, &t, &notice, 4096).await;
    assert_eq!(bytes, content);
    flow::barrier(&mut dev, &t).await;
    assert_eq!(fleet.state(&record).await, Some(UpdateState::Updated));
    endpoint.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bridge_instances_on_one_database_release_and_serve() {
    let db = ota_store_postgres::testing::fresh_database().await;
    let pg_a = PgStore::connect(db.options()).await.expect("store");
    let pg_b = PgStore::connect(db.options()).await.expect("store");
    let broker = Mosquitto::start(&["token-d1"]).await;
    let (a, bridge_a) = bridged(&broker, Arc::new(pg_a.clone()), None, "ota-a").await;
    let delivery_a = deliver_outbox(&a, &bridge_a, &pg_a);
    let record = a.device("d1").await;
    let (package, content) = a.package("2.0.0", 256 * 1024).await;
    let t = Topics::bridge("token-d1");
    let mut dev = device(&broker, Protocol::V311, "token-d1").await;
    subscribe_device(&mut dev, &t).await;
    // Only instance A has seen the device publish (B starts after), so only A knows its
    // token: the store keeps token digests only.
    until_served(&mut dev, &t).await;
    let (b, bridge_b) = bridged(&broker, Arc::new(pg_b.clone()), Some(&a), "ota-b").await;
    let delivery_b = deliver_outbox(&b, &bridge_b, &pg_b);

    // Instance A assigns; only instance B ticks, so B releases. B cannot name the device's
    // topic and leaves the notice in the outbox; A, woken by its NOTIFY, publishes it.
    a.assign(&record, &package).await;
    let report = b.ota.tick().await.expect("tick");
    assert_eq!(report.released, 1);
    assert_eq!(report.notify_failures, 0);
    assert_eq!(b.state(&record).await, Some(UpdateState::Initiated));
    let notice = dev.expect_json(&t.attributes()).await;
    assert_eq!(notice["fw_version"], "2.0.0");
    // Requests are shared between the instances: the device names the size every time.
    let bytes = flow::update_sized(&mut dev, &t, &notice, 16 * 1024, true).await;
    assert_eq!(bytes, content);
    // With two instances sharing the messages, wait for the final report by state.
    let mut state = None;
    for _ in 0..400 {
        state = a.state(&record).await;
        if state == Some(UpdateState::Updated) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(state, Some(UpdateState::Updated));
    assert_eq!(pg_a.count_undelivered(None).await.expect("count"), 0);
    for stop in [delivery_a, delivery_b] {
        stop.abort();
    }
    bridge_a.stop().await;
    bridge_b.stop().await;
}

/// Delivers outbox notices for the devices `bridge` knows when `store` announces them (no
/// periodic fallback: the wake-ups alone must do it).
fn deliver_outbox(
    fleet: &Fleet,
    bridge: &RunningBridge,
    store: &PgStore,
) -> tokio::task::JoinHandle<()> {
    let delivery = OutboxDelivery::new(fleet.ota.clone(), &bridge.notifier)
        .fallback_every(std::time::Duration::from_secs(3600));
    tokio::spawn(delivery.run(store.outbox_wakeups(), std::future::pending()))
}
