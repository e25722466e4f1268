//! A device on the real `ota-server`'s MQTT endpoint: refused with a wrong token, counted
//! while connected, and told its update when it asks for its attributes.

mod server_support;

use rumqttc::{AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, QoS};
use server_support::{device_with_firmware, metrics, sample, wait_for_attributes, Api, Server};
use std::time::Duration;

fn options(server: &Server, token: &str) -> MqttOptions {
    let (host, port) = server.mqtt.as_deref().unwrap().rsplit_once(':').unwrap();
    let mut options = MqttOptions::new(format!("test-{token}"), host, port.parse().unwrap());
    options.set_credentials(token, "");
    options.set_keep_alive(Duration::from_secs(30));
    options
}

#[tokio::test]
async fn a_device_over_mqtt_gets_its_update_attributes() {
    let server = Server::start(&[]);
    let api = Api::new(&server, server.admin_key.as_deref().unwrap());
    device_with_firmware(&api, "mqtt-device", 2048).await;
    wait_for_attributes(&server, "mqtt-device").await; // released

    // A wrong token is refused at CONNACK.
    let (_, mut refused) = AsyncClient::new(options(&server, "no-such-token"), 10);
    let answer = loop {
        match refused.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => break Ok(ack.code),
            Ok(_) => continue,
            Err(e) => break Err(e.to_string()),
        }
    };
    assert!(
        !matches!(answer, Ok(ConnectReturnCode::Success)),
        "refused: {answer:?}"
    );

    let (client, mut events) = AsyncClient::new(options(&server, "mqtt-device"), 10);
    let request = client.clone();
    tokio::spawn(async move {
        request
            .publish(
                "v1/devices/me/attributes/request/1",
                QoS::AtLeastOnce,
                false,
                r#"{"sharedKeys":"fw_title,fw_version,fw_size"}"#,
            )
            .await
            .unwrap();
    });
    let response = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match events.poll().await.expect("connected") {
                Event::Incoming(Packet::Publish(p))
                    if p.topic == "v1/devices/me/attributes/response/1" =>
                {
                    break serde_json::from_slice::<serde_json::Value>(&p.payload).unwrap()
                }
                _ => {}
            }
        }
    })
    .await
    .expect("an attribute response");
    assert_eq!(response["shared"]["fw_title"], "sensor-fw", "{response}");
    assert_eq!(response["shared"]["fw_size"], 2048, "{response}");

    let text = metrics(&server).await;
    assert_eq!(
        sample(&text, "ota_mqtt_connected_devices"),
        Some(1.0),
        "{text}"
    );

    let (status, _, stderr) = server.stop();
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
}
