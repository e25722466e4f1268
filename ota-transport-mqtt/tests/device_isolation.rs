//! Over MQTT, a device's access token reaches only that device: its own attributes, its own
//! package's content, its own update; a token that is almost right is refused at CONNECT.
//! Property test over fleets of devices with a package each, through real sockets.

mod support;

use ota_core::{Device, Package};
use ota_transport_mqtt::endpoint::{EndpointConfig, MqttNotifier};
use proptest::prelude::*;
use serde_json::json;
use std::sync::Arc;
use support::device::{DeviceOptions, Protocol, TestDevice};
use support::flow::{self, Topics};
use support::{Fleet, RunningEndpoint};

async fn tokens_reach_only_their_device(sizes: Vec<usize>, v5: bool) {
    let notifier = MqttNotifier::default();
    let fleet = Fleet::memory(Arc::new(notifier.clone())).await;
    let endpoint =
        RunningEndpoint::start(fleet.ota.clone(), &notifier, EndpointConfig::default()).await;
    let protocol = if v5 { Protocol::V5 } else { Protocol::V311 };
    let mut members: Vec<(Device, Package, Vec<u8>)> = Vec::new();
    for (i, len) in sizes.iter().enumerate() {
        let device = fleet.device(&format!("d{i}")).await;
        let (package, bytes) = fleet.package(&format!("1.{i}"), *len).await;
        fleet.assign(&device, &package).await;
        members.push((device, package, bytes));
    }
    fleet.tick().await;
    let t = Topics::endpoint();
    for (i, (device, package, bytes)) in members.iter().enumerate() {
        let token = format!("token-d{i}");
        let (mut dev, _) = TestDevice::connect(endpoint.port, DeviceOptions::new(protocol, &token))
            .await
            .expect("connected");
        flow::subscribe_like_thingsboard(&mut dev, &t).await;
        let shared = flow::request_attributes(&mut dev, &t, "1").await;
        assert_eq!(shared["fw_version"], package.version.as_str(), "device {i}");
        let mut got = Vec::new();
        flow::download_from(&mut dev, &t, "1", 1024, 0, &mut got).await;
        assert_eq!(&got, bytes, "device {i} downloaded another package");
        let before: Vec<_> = futures_state(&fleet, &members).await;
        flow::report(&dev, &t, json!({"fw_state": "DOWNLOADING"})).await;
        flow::barrier(&mut dev, &t).await;
        let after: Vec<_> = futures_state(&fleet, &members).await;
        for (j, (b, a)) in before.iter().zip(&after).enumerate() {
            if j != i {
                assert_eq!(a, b, "device {i}'s report moved device {j}");
            }
        }
        assert_eq!(after[i], Some(ota_core::UpdateState::Downloading));
        dev.disconnect().await;
        assert!(fleet.state(device).await.is_some());
        // Almost right is wrong.
        for wrong in [format!("{token}x"), token[..token.len() - 1].to_string()] {
            let refused = TestDevice::connect(endpoint.port, DeviceOptions::new(protocol, &wrong))
                .await
                .err()
                .expect("refused");
            assert!(refused.contains("NotAuthorized"), "{refused}");
        }
    }
    endpoint.stop().await;
}

async fn futures_state(
    fleet: &Fleet,
    members: &[(Device, Package, Vec<u8>)],
) -> Vec<Option<ota_core::UpdateState>> {
    let mut out = Vec::new();
    for (d, _, _) in members {
        out.push(fleet.state(d).await);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]
    #[test]
    fn a_device_token_reaches_only_its_device(
        sizes in proptest::collection::vec(1usize..5000, 2..5),
        v5 in any::<bool>(),
    ) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(tokens_reach_only_their_device(sizes, v5));
    }
}
