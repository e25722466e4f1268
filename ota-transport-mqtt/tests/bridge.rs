//! Bridge mode through a Mosquitto the test starts with the crate's sample configuration:
//! rumqttc devices (MQTT 5 and 3.1.1) talk to the broker, the bridge serves them.

mod support;

use ota_core::store::{NoticeOutbox, Store};
use ota_core::UpdateState;
use serde_json::json;
use std::sync::Arc;
use support::bridged::{bridged, device, subscribe_device, until_served};
use support::broker::Mosquitto;
use support::device::Protocol;
use support::flow::{self, Topics};

const MIB: usize = 1024 * 1024;

async fn full_update(protocol: Protocol, chunk: usize) {
    let broker = Mosquitto::start(&["token-d1"]).await;
    let (fleet, bridge) = bridged(
        &broker,
        Arc::new(ota_core::memory::MemoryStore::new()),
        None,
        "ota-1",
    )
    .await;
    let device_record = fleet.device("d1").await;
    let (package, content) = fleet.package("2.0.0", MIB).await;
    let t = Topics::bridge("token-d1");
    let mut dev = device(&broker, protocol, "token-d1").await;
    subscribe_device(&mut dev, &t).await;
    until_served(&mut dev, &t).await;

    fleet.assign(&device_record, &package).await;
    fleet.tick().await;
    let notice = dev.expect_json(&t.attributes()).await;
    assert_eq!(notice["fw_version"], "2.0.0");
    assert_eq!(flow::request_attributes(&mut dev, &t, "1").await, notice);
    let bytes = flow::update_through_updated(&mut dev, &t, &notice, chunk).await;
    assert_eq!(bytes, content);
    flow::barrier(&mut dev, &t).await;
    assert_eq!(
        fleet.state(&device_record).await,
        Some(UpdateState::Updated)
    );
    bridge.stop().await;
}

#[tokio::test]
async fn mqtt5_device_updates_through_the_broker_with_4k_chunks() {
    full_update(Protocol::V5, 4096).await;
}

#[tokio::test]
async fn mqtt311_device_updates_through_the_broker_with_64k_chunks() {
    full_update(Protocol::V311, 64 * 1024).await;
}

#[tokio::test]
async fn the_acl_keeps_a_device_to_its_own_topics() {
    let broker = Mosquitto::start(&["token-a", "token-b"]).await;
    let (fleet, _bridge) = bridged(
        &broker,
        Arc::new(ota_core::memory::MemoryStore::new()),
        None,
        "ota-1",
    )
    .await;
    let _a = fleet.device("a").await;
    let b = fleet.device("b").await;
    let (package, _) = fleet.package("2.0.0", 10_000).await;
    let ta = Topics::bridge("token-a");
    let tb = Topics::bridge("token-b");
    let mut dev_a = device(&broker, Protocol::V5, "token-a").await;
    let mut dev_b = device(&broker, Protocol::V311, "token-b").await;
    subscribe_device(&mut dev_a, &ta).await;
    subscribe_device(&mut dev_b, &tb).await;
    // A tries to listen to B's topics: the broker refuses (the SUBACK carries the refusal).
    dev_a.subscribe("v1/devices/token-b/#").await;
    until_served(&mut dev_a, &ta).await;
    until_served(&mut dev_b, &tb).await;

    fleet.assign(&b, &package).await;
    fleet.tick().await;
    assert_eq!(
        dev_b.expect_json(&tb.attributes()).await["fw_version"],
        "2.0.0"
    );
    // A writes to B's topics: a false report and a chunk request in B's name.
    dev_a
        .publish(
            &tb.telemetry(),
            json!({"fw_state": "FAILED", "fw_error": "forged"}).to_string(),
            true,
        )
        .await;
    dev_a.publish(&tb.chunk_request("x", 0), "1024", true).await;
    // Everything A sent before is handled once A's own request is answered (one worker
    // per device key, messages of one client in order); B's update is untouched.
    flow::barrier(&mut dev_a, &ta).await;
    flow::barrier(&mut dev_b, &tb).await;
    assert_eq!(fleet.state(&b).await, Some(UpdateState::Initiated));
    // A saw nothing of B's: no notice, no chunk; B got no chunk it did not ask for.
    dev_a
        .publish(
            &ta.rpc_request("last"),
            r#"{"method":"getSessionLimits"}"#,
            true,
        )
        .await;
    let (topic, _) = dev_a.next_message().await;
    assert_eq!(topic, ta.rpc_response("last"), "A received {topic}");
    dev_b
        .publish(
            &tb.rpc_request("last"),
            r#"{"method":"getSessionLimits"}"#,
            true,
        )
        .await;
    let (topic, _) = dev_b.next_message().await;
    assert_eq!(topic, tb.rpc_response("last"), "B received {topic}");
}

#[tokio::test]
async fn devices_finish_after_a_broker_restart() {
    let mut broker = Mosquitto::start(&["token-d1"]).await;
    let (fleet, bridge) = bridged(
        &broker,
        Arc::new(ota_core::memory::MemoryStore::new()),
        None,
        "ota-1",
    )
    .await;
    let record = fleet.device("d1").await;
    let (package, content) = fleet.package("2.0.0", 200_000).await;
    let t = Topics::bridge("token-d1");
    let mut dev = device(&broker, Protocol::V5, "token-d1").await;
    subscribe_device(&mut dev, &t).await;
    until_served(&mut dev, &t).await;
    fleet.assign(&record, &package).await;
    fleet.tick().await;
    let notice = dev.expect_json(&t.attributes()).await;
    flow::report(&dev, &t, json!({"fw_state": "DOWNLOADING"})).await;
    let mut bytes = Vec::new();
    for chunk in 0..3u64 {
        dev.publish(&t.chunk_request("1", chunk), "16384", true)
            .await;
        bytes.extend_from_slice(&dev.expect(&t.chunk_response("1", chunk)).await);
    }

    broker.restart().await;
    dev.kill();
    // The broker lost every session: the device connects again and subscribes again; the
    // bridge must have subscribed again on its own.
    let mut dev = device(&broker, Protocol::V5, "token-d1").await;
    subscribe_device(&mut dev, &t).await;
    until_served(&mut dev, &t).await;
    flow::download_from(&mut dev, &t, "2", 16384, 3, &mut bytes).await;
    assert_eq!(bytes, content);
    assert_eq!(
        flow::sha256_hex(&bytes),
        notice["fw_checksum"].as_str().unwrap()
    );
    flow::report(
        &dev,
        &t,
        json!({"fw_state": "UPDATED", "current_fw_title": "sensor-fw", "current_fw_version": "2.0.0"}),
    )
    .await;
    flow::barrier(&mut dev, &t).await;
    assert_eq!(fleet.state(&record).await, Some(UpdateState::Updated));
    bridge.stop().await;
}

#[tokio::test]
async fn two_instances_take_each_device_message_once() {
    let broker = Mosquitto::start(&["token-d1"]).await;
    let store: Arc<dyn Store> = Arc::new(ota_core::memory::MemoryStore::new());
    let (fleet, first) = bridged(&broker, store.clone(), None, "ota-1").await;
    let (_fleet2, second) = bridged(&broker, store, Some(&fleet), "ota-2").await;
    fleet.device("d1").await;
    let t = Topics::bridge("token-d1");
    let mut dev = device(&broker, Protocol::V5, "token-d1").await;
    subscribe_device(&mut dev, &t).await;
    until_served(&mut dev, &t).await;
    // Let both instances subscribe, then count answers.
    for i in 0..50 {
        dev.publish(&t.attribute_request(&format!("q{i}")), "{}", true)
            .await;
    }
    let mut answered = std::collections::BTreeMap::new();
    for _ in 0..50 {
        let (topic, _) = dev.next_message().await;
        *answered.entry(topic).or_insert(0) += 1;
    }
    assert_eq!(answered.len(), 50, "{answered:?}");
    assert!(answered.values().all(|n| *n == 1));
    // No second answer follows.
    dev.publish(
        &t.rpc_request("end"),
        r#"{"method":"getSessionLimits"}"#,
        true,
    )
    .await;
    let (topic, _) = dev.next_message().await;
    assert_eq!(topic, t.rpc_response("end"));
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn reassignment_mid_download_through_the_broker_refuses_the_old_request() {
    let broker = Mosquitto::start(&["token-d1"]).await;
    let (fleet, bridge) = bridged(
        &broker,
        Arc::new(ota_core::memory::MemoryStore::new()),
        None,
        "ota-1",
    )
    .await;
    let record = fleet.device("d1").await;
    let (first, first_content) = fleet.package("2.0.0", 20_000).await;
    let (second, second_content) = fleet.package("3.0.0", 30_000).await;
    let t = Topics::bridge("token-d1");
    let mut dev = device(&broker, Protocol::V5, "token-d1").await;
    subscribe_device(&mut dev, &t).await;
    until_served(&mut dev, &t).await;
    fleet.assign(&record, &first).await;
    fleet.tick().await;
    assert_eq!(
        dev.expect_json(&t.attributes()).await["fw_version"],
        "2.0.0"
    );
    dev.publish(&t.chunk_request("a", 0), "4096", true).await;
    assert_eq!(
        dev.expect(&t.chunk_response("a", 0)).await[..],
        first_content[..4096]
    );

    fleet.assign(&record, &second).await;
    fleet.tick().await;
    let mut notice = dev.expect_json(&t.attributes()).await;
    if notice.get("deleted").is_some() {
        notice = dev.expect_json(&t.attributes()).await;
    }
    assert_eq!(notice["fw_version"], "3.0.0");
    // The old download is refused on the error topic ...
    dev.publish(&t.chunk_request("a", 1), "4096", true).await;
    let text = String::from_utf8(dev.expect(&t.chunk_error()).await.to_vec()).unwrap();
    assert!(text.contains("new request id"), "{text}");
    // ... and a new one gets the new package.
    let mut bytes = Vec::new();
    flow::download_from(&mut dev, &t, "b", 4096, 0, &mut bytes).await;
    assert_eq!(bytes, second_content);
    bridge.stop().await;
}

#[tokio::test]
async fn a_device_dropped_mid_download_resumes_from_the_next_chunk() {
    let broker = Mosquitto::start(&["token-d1"]).await;
    let (fleet, bridge) = bridged(
        &broker,
        Arc::new(ota_core::memory::MemoryStore::new()),
        None,
        "ota-1",
    )
    .await;
    let record = fleet.device("d1").await;
    let (package, content) = fleet.package("2.0.0", 100_000).await;
    let t = Topics::bridge("token-d1");
    let mut dev = device(&broker, Protocol::V311, "token-d1").await;
    subscribe_device(&mut dev, &t).await;
    until_served(&mut dev, &t).await;
    fleet.assign(&record, &package).await;
    fleet.tick().await;
    assert_eq!(
        dev.expect_json(&t.attributes()).await["fw_version"],
        "2.0.0"
    );
    let mut bytes = Vec::new();
    for chunk in 0..5u64 {
        dev.publish(&t.chunk_request("7", chunk), "8192", true)
            .await;
        bytes.extend_from_slice(&dev.expect(&t.chunk_response("7", chunk)).await);
    }
    // The device's connection drops without DISCONNECT; it comes back and goes on from
    // chunk 5 under the same request id.
    dev.kill();
    let mut dev = device(&broker, Protocol::V311, "token-d1").await;
    subscribe_device(&mut dev, &t).await;
    flow::download_from(&mut dev, &t, "7", 8192, 5, &mut bytes).await;
    assert_eq!(bytes, content);
    flow::report(
        &dev,
        &t,
        json!({"fw_state": "UPDATED", "current_fw_title": "sensor-fw",
        "current_fw_version": "2.0.0"}),
    )
    .await;
    flow::barrier(&mut dev, &t).await;
    assert_eq!(fleet.state(&record).await, Some(UpdateState::Updated));
    bridge.stop().await;
}

#[tokio::test]
async fn a_notice_waits_until_the_bridge_has_seen_the_device() {
    let broker = Mosquitto::start(&["token-d0", "token-d1"]).await;
    let store = Arc::new(ota_core::memory::MemoryStore::new());
    let (fleet, bridge) = bridged(&broker, store.clone(), None, "ota-1").await;
    let record = fleet.device("d1").await;
    fleet.device("d0").await;
    let (package, _) = fleet.package("2.0.0", 10_000).await;
    // Another device shows that the bridge is subscribed.
    let t0 = Topics::bridge("token-d0");
    let mut other = device(&broker, Protocol::V5, "token-d0").await;
    subscribe_device(&mut other, &t0).await;
    until_served(&mut other, &t0).await;

    // Released before d1 ever published: the store keeps only its token's digest, so the
    // bridge cannot name its topic; the notice waits in the outbox (not a failure).
    fleet.assign(&record, &package).await;
    let report = fleet.ota.tick().await.expect("tick");
    assert_eq!((report.released, report.notify_failures), (1, 0));
    assert_eq!(store.count_undelivered(None).await.expect("count"), 1);

    // Its first message teaches the bridge its token: the waiting notice follows.
    let t = Topics::bridge("token-d1");
    let mut dev = device(&broker, Protocol::V5, "token-d1").await;
    subscribe_device(&mut dev, &t).await;
    flow::report(&dev, &t, json!({"temperature": 21.5})).await;
    let notice = dev.expect_json(&t.attributes()).await;
    assert_eq!(notice["fw_version"], "2.0.0");
    // Marked delivered once handed over (just after the publish).
    let mut left = 1;
    for _ in 0..400 {
        left = store.count_undelivered(None).await.expect("count");
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(left, 0);
    bridge.stop().await;
}
