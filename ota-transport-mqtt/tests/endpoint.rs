//! The endpoint through real sockets: rumqttc devices (MQTT 5 and 3.1.1) against the
//! endpoint over the memory store.

mod support;

use ota_core::UpdateState;
use ota_transport_mqtt::endpoint::{EndpointConfig, MqttNotifier};
use ota_transport_mqtt::protocol::ProtocolLimits;
use serde_json::json;
use std::sync::Arc;
use support::device::{DeviceOptions, Protocol, TestDevice};
use support::flow::{self, Topics};
use support::{Fleet, RunningEndpoint};

const MIB: usize = 1024 * 1024;

async fn setup(config: EndpointConfig) -> (Fleet, MqttNotifier, RunningEndpoint) {
    let notifier = MqttNotifier::default();
    let fleet = Fleet::memory(Arc::new(notifier.clone())).await;
    let endpoint = RunningEndpoint::start(fleet.ota.clone(), &notifier, config).await;
    (fleet, notifier, endpoint)
}

async fn connect(port: u16, protocol: Protocol, token: &str) -> TestDevice {
    TestDevice::connect(port, DeviceOptions::new(protocol, token))
        .await
        .expect("connected")
        .0
}

/// Notify, attribute request, 1 MiB downloaded in `chunk` byte chunks with the checksum
/// verified, every state through UPDATED.
async fn full_update(protocol: Protocol, chunk: usize) {
    let (fleet, notifier, endpoint) = setup(EndpointConfig::default()).await;
    let device = fleet.device("d1").await;
    let (package, content) = fleet.package("2.0.0", MIB).await;
    let t = Topics::endpoint();
    let mut dev = connect(endpoint.port, protocol, "token-d1").await;
    flow::subscribe_like_thingsboard(&mut dev, &t).await;
    // Nothing assigned yet: the attributes are empty.
    assert_eq!(flow::request_attributes(&mut dev, &t, "0").await, json!({}));

    fleet.assign(&device, &package).await;
    assert!(notifier.registry().is_connected(device.id));
    fleet.tick().await;
    assert_eq!(fleet.state(&device).await, Some(UpdateState::Initiated));
    let notice = dev.expect_json(&t.attributes()).await;
    assert_eq!(notice["fw_title"], "sensor-fw");
    assert_eq!(notice["fw_version"], "2.0.0");
    assert_eq!(notice["fw_size"], MIB as u64);
    let requested = flow::request_attributes(&mut dev, &t, "1").await;
    assert_eq!(requested, notice);

    let bytes = flow::update_through_updated(&mut dev, &t, &notice, chunk).await;
    assert_eq!(bytes, content);
    flow::barrier(&mut dev, &t).await;
    assert_eq!(fleet.state(&device).await, Some(UpdateState::Updated));
    let stored = fleet
        .ota
        .device(fleet.tenant, device.id)
        .await
        .expect("device");
    assert_eq!(
        stored.current.firmware.map(|c| c.version),
        Some("2.0.0".to_string())
    );
    endpoint.stop().await;
}

#[tokio::test]
async fn mqtt5_device_updates_with_4k_chunks() {
    full_update(Protocol::V5, 4096).await;
}

#[tokio::test]
async fn mqtt311_device_updates_with_64k_chunks() {
    full_update(Protocol::V311, 64 * 1024).await;
}

#[tokio::test]
async fn mqtt311_device_updates_with_4k_chunks() {
    full_update(Protocol::V311, 4096).await;
}

#[tokio::test]
async fn mqtt5_device_updates_with_64k_chunks() {
    full_update(Protocol::V5, 64 * 1024).await;
}

#[tokio::test]
async fn connack_carries_the_session_limits() {
    let mut config = EndpointConfig::default();
    config.limits = limits(32 * 1024, 16 * 1024, 20, Some(50));
    let (fleet, _notifier, endpoint) = setup(config).await;
    fleet.device("d1").await;
    let (mut dev, connack) =
        TestDevice::connect(endpoint.port, DeviceOptions::new(Protocol::V5, "token-d1"))
            .await
            .expect("connected");
    assert_eq!(connack.receive_max, Some(20));
    assert_eq!(connack.max_packet_size, Some(32 * 1024));
    let t = Topics::endpoint();
    let answer = flow::barrier(&mut dev, &t).await;
    assert_eq!(
        answer,
        json!({"maxPayloadSize": 32768, "maxInflightMessages": 20,
               "rateLimits": {"messages": "50:1", "telemetryMessages": "50:1",
                              "telemetryDataPoints": "50:1"}})
    );
    // Other methods get an error on the response topic.
    dev.publish(&t.rpc_request("9"), r#"{"method":"reboot"}"#, false)
        .await;
    let error = dev.expect_json(&t.rpc_response("9")).await;
    assert!(error["error"].as_str().unwrap().contains("reboot"));
}

fn limits(payload: u32, chunk: u32, inflight: u16, rate: Option<u32>) -> ProtocolLimits {
    let mut limits = ProtocolLimits::default();
    limits.max_payload_size = payload;
    limits.max_chunk_size = chunk;
    limits.max_inflight = inflight;
    limits.messages_per_second = rate;
    limits
}

#[tokio::test]
async fn unknown_and_missing_tokens_are_refused_as_not_authorized() {
    let (fleet, _notifier, endpoint) = setup(EndpointConfig::default()).await;
    fleet.device("d1").await;
    for protocol in [Protocol::V5, Protocol::V311] {
        for token in ["wrong-token", ""] {
            let refused = TestDevice::connect(endpoint.port, DeviceOptions::new(protocol, token))
                .await
                .err()
                .expect("refused");
            assert!(refused.contains("NotAuthorized"), "{protocol:?}: {refused}");
        }
    }
    // The right token still connects.
    connect(endpoint.port, Protocol::V311, "token-d1").await;
}

#[tokio::test]
async fn bad_input_gets_errors_and_the_connection_keeps_working() {
    let (fleet, _notifier, endpoint) = setup(EndpointConfig::default()).await;
    let device = fleet.device("d1").await;
    let t = Topics::endpoint();
    let mut dev = connect(endpoint.port, Protocol::V5, "token-d1").await;
    dev.subscribe(&t.errors()).await;
    dev.subscribe(&t.chunk_error()).await;

    // Unknown topic.
    dev.publish("v1/devices/me/nonsense", "{}", true).await;
    let error = dev.expect_json(&t.errors()).await;
    assert_eq!(error["topic"], "v1/devices/me/nonsense");
    // Malformed telemetry payloads.
    for bad in [
        "not json",
        r#"{"fw_state":"EXPLODED"}"#,
        "[1,2]",
        r#"{"fw_progress":300}"#,
    ] {
        dev.publish(&t.telemetry(), bad, true).await;
        let error = dev.expect_json(&t.errors()).await;
        assert_eq!(error["topic"], t.telemetry(), "{bad}");
        assert!(
            error["error"].as_str().unwrap().contains("invalid"),
            "{error}"
        );
    }
    // Malformed requests: answered on their response topics.
    dev.publish(&t.attribute_request("4"), "[]", false).await;
    assert!(dev.expect_json(&t.attribute_response("4")).await["error"].is_string());
    dev.publish(&t.rpc_request("5"), "nope", false).await;
    assert!(dev.expect_json(&t.rpc_response("5")).await["error"].is_string());
    // Chunk requests: bad size, bad index, nothing assigned.
    for (topic, payload, expected) in [
        (t.chunk_request("r", 0), "abc", "decimal"),
        ("v2/fw/request/r/chunk/x".to_string(), "10", "chunk index"),
        (
            t.chunk_request("r", 0),
            "1024",
            "no firmware package is assigned",
        ),
    ] {
        dev.publish(&topic, payload, false).await;
        let error = dev.expect(&t.chunk_error()).await;
        let text = String::from_utf8_lossy(&error);
        assert!(
            text.to_lowercase().contains(expected),
            "{topic} {payload}: {text}"
        );
    }
    // Still connected and served.
    flow::barrier(&mut dev, &t).await;
    assert_eq!(fleet.state(&device).await, None);
}

#[tokio::test]
async fn oversized_chunks_and_payloads_are_refused_with_errors() {
    let mut config = EndpointConfig::default();
    config.limits = limits(8 * 1024, 4096, 10, None);
    let (fleet, _notifier, endpoint) = setup(config).await;
    let device = fleet.device("d1").await;
    let (package, _) = fleet.package("2.0.0", 10_000).await;
    fleet.assign(&device, &package).await;
    fleet.tick().await;
    let t = Topics::endpoint();
    let mut dev = connect(endpoint.port, Protocol::V311, "token-d1").await;
    dev.subscribe(&t.chunk_error()).await;
    dev.subscribe(&t.errors()).await;
    dev.publish(&t.chunk_request("r", 0), "4097", false).await;
    let text = String::from_utf8(dev.expect(&t.chunk_error()).await.to_vec()).unwrap();
    assert!(text.contains("exceeds the limit of 4096"), "{text}");
    // The whole file (size 0) is larger than one message may be.
    dev.publish(&t.chunk_request("r2", 0), "0", false).await;
    let text = String::from_utf8(dev.expect(&t.chunk_error()).await.to_vec()).unwrap();
    assert!(text.contains("ask for chunks"), "{text}");
    // Within the limit it works.
    dev.publish(&t.chunk_request("r3", 2), "4096", false).await;
    assert_eq!(
        dev.expect(&t.chunk_response("r3", 2)).await.len(),
        10_000 - 8192
    );
    flow::barrier(&mut dev, &t).await;
}

#[tokio::test]
async fn a_chunk_larger_than_the_devices_maximum_packet_size_is_refused_with_an_error() {
    let (fleet, _notifier, endpoint) = setup(EndpointConfig::default()).await;
    let device = fleet.device("d1").await;
    let (package, content) = fleet.package("2.0.0", 10_000).await;
    fleet.assign(&device, &package).await;
    fleet.tick().await;
    let t = Topics::endpoint();
    let mut options = DeviceOptions::new(Protocol::V5, "token-d1");
    options.max_packet = 2048;
    let (mut dev, _) = TestDevice::connect(endpoint.port, options)
        .await
        .expect("connected");
    dev.subscribe(&t.chunk_error()).await;
    dev.publish(&t.chunk_request("r", 0), "4096", false).await;
    let text = String::from_utf8(dev.expect(&t.chunk_error()).await.to_vec()).unwrap();
    assert!(text.contains("Maximum Packet Size"), "{text}");
    // Smaller chunks fit.
    dev.publish(&t.chunk_request("s", 1), "1024", false).await;
    assert_eq!(
        dev.expect(&t.chunk_response("s", 1)).await[..],
        content[1024..2048]
    );
}

#[tokio::test]
async fn reassignment_mid_download_refuses_the_old_request_and_serves_a_new_one() {
    let (fleet, _notifier, endpoint) = setup(EndpointConfig::default()).await;
    let device = fleet.device("d1").await;
    let (first, first_content) = fleet.package("2.0.0", 20_000).await;
    let (second, second_content) = fleet.package("3.0.0", 30_000).await;
    fleet.assign(&device, &first).await;
    fleet.tick().await;
    let t = Topics::endpoint();
    let mut dev = connect(endpoint.port, Protocol::V5, "token-d1").await;
    flow::subscribe_like_thingsboard(&mut dev, &t).await;
    dev.publish(&t.chunk_request("a", 0), "4096", false).await;
    assert_eq!(
        dev.expect(&t.chunk_response("a", 0)).await[..],
        first_content[..4096]
    );

    fleet.assign(&device, &second).await;
    fleet.tick().await;
    // The replaced update's attributes are withdrawn first (a device never holds the notices
    // of two packages of one kind), then the new package is announced.
    let mut notice = dev.expect_json(&t.attributes()).await;
    if notice.get("deleted").is_some() {
        notice = dev.expect_json(&t.attributes()).await;
    }
    assert_eq!(notice["fw_version"], "3.0.0");
    // The old download is refused...
    dev.publish(&t.chunk_request("a", 1), "", false).await;
    let text = String::from_utf8(dev.expect(&t.chunk_error()).await.to_vec()).unwrap();
    assert!(text.contains("new request id"), "{text}");
    // ... and a new one gets the new package.
    let mut bytes = Vec::new();
    flow::download_from(&mut dev, &t, "b", 4096, 0, &mut bytes).await;
    assert_eq!(bytes, second_content);
}

#[tokio::test]
async fn a_dropped_connection_resumes_from_the_next_chunk() {
    let (fleet, _notifier, endpoint) = setup(EndpointConfig::default()).await;
    let device = fleet.device("d1").await;
    let (package, content) = fleet.package("2.0.0", 100_000).await;
    fleet.assign(&device, &package).await;
    fleet.tick().await;
    let t = Topics::endpoint();
    let mut dev = connect(endpoint.port, Protocol::V311, "token-d1").await;
    let mut bytes = Vec::new();
    for chunk in 0..5u64 {
        dev.publish(&t.chunk_request("7", chunk), "8192", false)
            .await;
        bytes.extend_from_slice(&dev.expect(&t.chunk_response("7", chunk)).await);
    }
    dev.kill();
    // A new connection goes on from chunk 5 with the same request id and size.
    let mut dev = connect(endpoint.port, Protocol::V311, "token-d1").await;
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
    assert_eq!(fleet.state(&device).await, Some(UpdateState::Updated));
}

#[tokio::test]
async fn a_second_connection_with_the_same_token_takes_over() {
    let (fleet, notifier, endpoint) = setup(EndpointConfig::default()).await;
    let device = fleet.device("d1").await;
    let t = Topics::endpoint();
    let mut first = connect(endpoint.port, Protocol::V5, "token-d1").await;
    first.subscribe(&t.attributes()).await;
    let mut second = connect(endpoint.port, Protocol::V5, "token-d1").await;
    let why = first.closed().await;
    assert!(why.contains("SessionTakenOver"), "{why}");
    second.subscribe(&t.attributes()).await;
    assert!(notifier.registry().is_connected(device.id));
    assert_eq!(notifier.registry().connected_count(), 1);
    let (package, _) = fleet.package("2.0.0", 1000).await;
    fleet.assign(&device, &package).await;
    fleet.tick().await;
    assert_eq!(
        second.expect_json(&t.attributes()).await["fw_version"],
        "2.0.0"
    );
}

#[tokio::test]
async fn unassigning_pushes_the_deletion() {
    let (fleet, _notifier, endpoint) = setup(EndpointConfig::default()).await;
    let device = fleet.device("d1").await;
    let (package, _) = fleet.package("2.0.0", 1000).await;
    let t = Topics::endpoint();
    let mut dev = connect(endpoint.port, Protocol::V311, "token-d1").await;
    dev.subscribe(&t.attributes()).await;
    fleet.assign(&device, &package).await;
    fleet.tick().await;
    assert_eq!(
        dev.expect_json(&t.attributes()).await["fw_version"],
        "2.0.0"
    );
    fleet
        .ota
        .unassign(
            support::ACTOR,
            fleet.tenant,
            ota_core::PackageKind::Firmware,
            ota_core::AssignmentTarget::Device(device.id),
        )
        .await
        .expect("unassign");
    let deleted = dev.expect_json(&t.attributes()).await;
    assert!(deleted["deleted"]
        .as_array()
        .unwrap()
        .contains(&json!("fw_title")));
}

#[tokio::test]
async fn a_device_over_its_rate_gets_errors_then_is_disconnected_for_telemetry() {
    let mut config = EndpointConfig::default();
    config.limits = limits(64 * 1024, 64 * 1024, 10, Some(3));
    let (fleet, _notifier, endpoint) = setup(config).await;
    fleet.device("d1").await;
    fleet.device("d2").await;
    let t = Topics::endpoint();
    let mut dev = connect(endpoint.port, Protocol::V5, "token-d1").await;
    let mut other = connect(endpoint.port, Protocol::V5, "token-d2").await;
    for i in 0..20 {
        dev.publish(
            &t.rpc_request(&i.to_string()),
            r#"{"method":"getSessionLimits"}"#,
            false,
        )
        .await;
    }
    let mut limited = 0;
    for i in 0..20 {
        let answer = dev.expect_json(&t.rpc_response(&i.to_string())).await;
        if answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("rate limit"))
        {
            limited += 1;
        }
    }
    assert!(limited >= 10, "{limited} of 20 limited");
    // Another device is not affected.
    flow::barrier(&mut other, &t).await;
    // Telemetry over the rate closes the connection.
    for _ in 0..20 {
        dev.publish(&t.telemetry(), "{}", false).await;
    }
    let why = dev.closed().await;
    assert!(why.contains("MessageRateTooHigh"), "{why}");
    flow::barrier(&mut other, &t).await;
}

#[tokio::test]
async fn connections_over_the_maximum_are_refused() {
    let mut config = EndpointConfig::default();
    config.max_connections = 2;
    let (fleet, _notifier, endpoint) = setup(config).await;
    for name in ["d1", "d2", "d3"] {
        fleet.device(name).await;
    }
    let a = connect(endpoint.port, Protocol::V5, "token-d1").await;
    let _b = connect(endpoint.port, Protocol::V311, "token-d2").await;
    let refused = TestDevice::connect(endpoint.port, DeviceOptions::new(Protocol::V5, "token-d3"))
        .await
        .err()
        .expect("refused");
    assert!(refused.contains("ServerBusy"), "{refused}");
    // A connection that ends frees its place.
    a.disconnect().await;
    drop(a);
    let mut connected = None;
    for _ in 0..100 {
        if let Ok((dev, _)) =
            TestDevice::connect(endpoint.port, DeviceOptions::new(Protocol::V5, "token-d3")).await
        {
            connected = Some(dev);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(connected.is_some(), "the freed place was not given");
}

#[tokio::test]
async fn an_unclean_session_keeps_its_subscriptions() {
    let (fleet, _notifier, endpoint) = setup(EndpointConfig::default()).await;
    let device = fleet.device("d1").await;
    let t = Topics::endpoint();
    let mut options = DeviceOptions::new(Protocol::V311, "token-d1");
    options.clean_start = false;
    let (mut dev, connack) = TestDevice::connect(endpoint.port, options.clone())
        .await
        .expect("connected");
    assert!(!connack.session_present);
    dev.subscribe(&t.attributes()).await;
    dev.disconnect().await;
    dev.closed().await;
    let (mut dev, connack) = TestDevice::connect(endpoint.port, options)
        .await
        .expect("connected");
    assert!(connack.session_present);
    // Without subscribing again, notices arrive.
    let (package, _) = fleet.package("2.0.0", 1000).await;
    fleet.assign(&device, &package).await;
    fleet.tick().await;
    assert_eq!(
        dev.expect_json(&t.attributes()).await["fw_version"],
        "2.0.0"
    );
}

#[tokio::test]
async fn shutdown_disconnects_devices() {
    let (fleet, _notifier, endpoint) = setup(EndpointConfig::default()).await;
    fleet.device("d1").await;
    let mut dev = connect(endpoint.port, Protocol::V5, "token-d1").await;
    flow::barrier(&mut dev, &Topics::endpoint()).await;
    endpoint.stop().await;
    let why = dev.closed().await;
    assert!(why.contains("ServerShuttingDown"), "{why}");
}
