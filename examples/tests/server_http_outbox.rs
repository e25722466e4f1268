//! The real `ota-server` on PostgreSQL, where other instances may share the store, so each
//! instance delivers only the notices of devices it reaches: the notice of a device that
//! polls over HTTP leaves the outbox when the device reads its attributes or long-polls
//! (it used to stay there for good), while the notice of an offline MQTT device stays until
//! the device connects and is then pushed to it (at least once).

mod server_support;

use ota_core::store::NoticeOutbox;
use ota_store_postgres::PgStore;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use server_support::{Api, Server};
use std::time::Duration;

/// Waits (bounded: a hang guard) until the outbox holds `n` notices.
async fn until_outbox(store: &PgStore, n: u64) {
    let mut last = 0;
    for _ in 0..1200 {
        last = store.count_undelivered(None).await.expect("count");
        if last == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the outbox holds {last} notices, not {n}");
}

/// A device named after `token`, with that access token; its id.
async fn device(api: &Api, profile: &Value, token: &str) -> String {
    let body = json!({"name": token, "profile_id": profile["id"], "access_token": token});
    let (status, device) = api.post("/devices", body).await;
    assert_eq!(status, 201, "{device}");
    device["device"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn http_devices_take_their_notices_by_reading_mqtt_devices_keep_theirs() {
    let db = ota_store_postgres::testing::fresh_database().await;
    let server = Server::start(&["--database-url", &db.url, "--database-schema", &db.schema]);
    let store = PgStore::connect(db.options()).await.expect("store");
    let api = Api::new(&server, server.admin_key.as_deref().unwrap());

    let (status, profile) = api.post("/profiles", json!({"name": "mixed"})).await;
    assert_eq!(status, 201, "{profile}");
    let package = api.upload("mixed-fw", "2.0", vec![7u8; 4096]).await;
    let mut ids = Vec::new();
    for token in ["http-reader", "http-poller", "mqtt-offline"] {
        ids.push(device(&api, &profile, token).await);
    }
    // Nobody is connected or polling: the tick releases the three updates and their
    // notices wait in the outbox.
    for id in &ids {
        let body = json!({ "package_id": package });
        let (status, body) = api
            .put(&format!("/devices/{id}/assignments/fw"), body)
            .await;
        assert_eq!(status, 200, "{body}");
    }
    until_outbox(&store, 3).await;

    // An attribute read answers the update and takes the device's notice with it.
    let read = reqwest::get(server.url("/api/v1/http-reader/attributes?sharedKeys=fw_title"))
        .await
        .expect("attributes");
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["shared"]["fw_title"], "mixed-fw", "{read}");
    assert_eq!(store.count_undelivered(None).await.unwrap(), 2);

    // A long-poll is answered with the notice that waited for it.
    let poll = reqwest::get(server.url("/api/v1/http-poller/attributes/updates?timeout=60000"))
        .await
        .expect("long-poll");
    assert_eq!(poll.status(), 200);
    let poll: Value = poll.json().await.unwrap();
    assert_eq!(poll["fw_title"], "mixed-fw", "{poll}");
    assert_eq!(poll["fw_version"], "2.0", "{poll}");
    until_outbox(&store, 1).await;

    // A read by a device that has no notice waiting changes nothing; neither do the ticks
    // meanwhile: the MQTT device's notice stays for it.
    let again = reqwest::get(server.url("/api/v1/http-reader/attributes"))
        .await
        .expect("attributes");
    assert_eq!(again.status(), 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.count_undelivered(None).await.unwrap(), 1);

    // The MQTT device connects and subscribes: the waiting notice is pushed to it.
    let (host, port) = server.mqtt.as_deref().unwrap().rsplit_once(':').unwrap();
    let mut options = MqttOptions::new("mqtt-offline", host, port.parse().unwrap());
    options.set_credentials("mqtt-offline", "");
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 10);
    client
        .subscribe("v1/devices/me/attributes", QoS::AtLeastOnce)
        .await
        .unwrap();
    let pushed = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            match events.poll().await.expect("connected") {
                Event::Incoming(Packet::Publish(p)) if p.topic == "v1/devices/me/attributes" => {
                    break serde_json::from_slice::<Value>(&p.payload).unwrap()
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the waiting notice is pushed");
    assert_eq!(pushed["fw_title"], "mixed-fw", "{pushed}");
    until_outbox(&store, 0).await;

    let (status, _, stderr) = server.stop();
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    store.close().await;
    db.drop_schema().await;
}
