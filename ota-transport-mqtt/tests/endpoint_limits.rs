//! The endpoint's limits against idle and flooding clients, with small configured limits:
//! a TCP connection that never sends CONNECT is closed after `connect_timeout`, connections
//! over `max_connections + max_refusing` are closed at once, and devices keep being served.
//! Timeouts in the tests are only hang guards.

mod support;

use ota_transport_mqtt::endpoint::{EndpointConfig, MqttNotifier};
use std::sync::Arc;
use std::time::Duration;
use support::device::{DeviceOptions, Protocol, TestDevice};
use support::{Fleet, RunningEndpoint};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const GUARD: Duration = Duration::from_secs(60);

/// Waits until the endpoint closes `stream` (end of stream or reset); what it sent before.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    tokio::time::timeout(GUARD, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the endpoint closes the connection");
    out
}

#[tokio::test]
async fn a_connection_that_never_sends_connect_is_closed_after_the_connect_timeout() {
    let mut config = EndpointConfig::default();
    config.connect_timeout = Duration::from_millis(200);
    let notifier = MqttNotifier::default();
    let fleet = Fleet::memory(Arc::new(notifier.clone())).await;
    fleet.device("d1").await;
    let endpoint = RunningEndpoint::start(fleet.ota.clone(), &notifier, config).await;
    let mut silent = TcpStream::connect(("127.0.0.1", endpoint.port))
        .await
        .unwrap();
    let sent = until_closed(&mut silent).await;
    assert!(
        sent.is_empty(),
        "nothing is answered to a silent client: {sent:?}"
    );
    // A device still connects.
    let (device, _) =
        TestDevice::connect(endpoint.port, DeviceOptions::new(Protocol::V5, "token-d1"))
            .await
            .expect("connected");
    device.disconnect().await;
    endpoint.stop().await;
}

#[tokio::test]
async fn a_flood_over_both_limits_is_closed_at_once_and_devices_are_still_served() {
    let mut config = EndpointConfig::default();
    config.max_connections = 2;
    config.max_refusing = 2;
    config.connect_timeout = Duration::from_secs(600);
    let notifier = MqttNotifier::default();
    let fleet = Fleet::memory(Arc::new(notifier.clone())).await;
    fleet.device("d1").await;
    let endpoint = RunningEndpoint::start(fleet.ota.clone(), &notifier, config).await;
    let addr = ("127.0.0.1", endpoint.port);
    // Two silent connections take the two places, two more the two refusal slots.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // Everything over that is closed at once, without waiting for CONNECT.
    for _ in 0..20 {
        let mut flood = TcpStream::connect(addr).await.unwrap();
        until_closed(&mut flood).await;
    }
    // The held connections go away: their places come back and a device is served.
    drop(held);
    let mut connected = None;
    tokio::time::timeout(GUARD, async {
        loop {
            let options = DeviceOptions::new(Protocol::V311, "token-d1");
            if let Ok((device, _)) = TestDevice::connect(endpoint.port, options).await {
                connected = Some(device);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a device connects once the flood is gone");
    connected.unwrap().disconnect().await;
    endpoint.stop().await;
}
