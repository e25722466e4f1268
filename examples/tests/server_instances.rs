//! Two real `ota-server` instances on one PostgreSQL schema: an update released by one
//! reaches a device connected to the other's MQTT endpoint (the notice crosses instances
//! through the store's outbox and `NOTIFY`).

mod server_support;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use server_support::{Api, Server};
use std::time::Duration;

#[tokio::test]
async fn a_notice_released_by_one_instance_reaches_a_device_on_the_other() {
    let db = ota_store_postgres::testing::fresh_database().await;
    let pg = ["--database-url", &db.url, "--database-schema", &db.schema];
    let mut args = pg.to_vec();
    args.extend(["--instance-id", "releasing"]);
    let releasing = Server::start(&args);
    let key = releasing
        .admin_key
        .clone()
        .expect("a key on the first start");
    // The other instance never ticks, so the release is the first one's.
    let mut args = pg.to_vec();
    args.extend(["--instance-id", "holding", "--tick-interval", "1h"]);
    let holding = Server::start(&args);
    assert!(holding.admin_key.is_none(), "the stored key is shared");

    let api = Api::new(&releasing, &key);
    let (status, profile) = api
        .post("/profiles", serde_json::json!({"name": "p"}))
        .await;
    assert_eq!(status, 201);
    let device = serde_json::json!({
        "name": "roaming", "profile_id": profile["id"], "access_token": "roaming-token"
    });
    let (status, device) = api.post("/devices", device).await;
    assert_eq!(status, 201);

    // The device connects to the holding instance and subscribes to its attributes.
    let (host, port) = holding.mqtt.as_deref().unwrap().rsplit_once(':').unwrap();
    let mut options = MqttOptions::new("roaming", host, port.parse().unwrap());
    options.set_credentials("roaming-token", "");
    let (client, mut events) = AsyncClient::new(options, 10);
    client
        .subscribe("v1/devices/me/attributes", QoS::AtLeastOnce)
        .await
        .unwrap();
    let pushed = tokio::time::timeout(Duration::from_secs(120), async {
        let mut assigned = false;
        loop {
            match events.poll().await.expect("connected") {
                Event::Incoming(Packet::SubAck(_)) if !assigned => {
                    // Subscribed: now the releasing instance gets a package to release.
                    assigned = true;
                    let package = api.upload("fw", "2.0", vec![3; 1000]).await;
                    let id = device["device"]["id"].as_str().unwrap();
                    let body = serde_json::json!({ "package_id": package });
                    let path = format!("/devices/{id}/assignments/fw");
                    assert_eq!(api.put(&path, body).await.0, 200);
                }
                Event::Incoming(Packet::Publish(p)) if p.topic == "v1/devices/me/attributes" => {
                    break serde_json::from_slice::<serde_json::Value>(&p.payload).unwrap();
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no notice crossed; holding:\n{}", holding.stderr()));
    assert_eq!(pushed["fw_title"], "fw", "{pushed}");
    assert_eq!(pushed["fw_version"], "2.0", "{pushed}");

    for server in [holding, releasing] {
        let (status, _, stderr) = server.stop();
        assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    }
    db.drop_schema().await;
}
