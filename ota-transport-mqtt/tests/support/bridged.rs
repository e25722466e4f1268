//! A bridge of the test's own over a broker, and devices on that broker.
#![allow(dead_code)]

use super::broker::{Mosquitto, BRIDGE_PASSWORD, BRIDGE_USER};
use super::device::{DeviceOptions, Protocol, TestDevice};
use super::flow::Topics;
use super::Fleet;
use ota_core::store::Store;
use ota_transport_mqtt::bridge::{BridgeConfig, BridgeNotifier, MqttBridge};
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct RunningBridge {
    /// The notifier the engine was created with.
    pub notifier: BridgeNotifier,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningBridge {
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.task.await;
    }
}

/// An engine over `store` whose notices go through a bridge on `broker`.
pub async fn bridged(
    broker: &Mosquitto,
    store: Arc<dyn Store>,
    existing: Option<&Fleet>,
    instance: &str,
) -> (Fleet, RunningBridge) {
    let mut config = BridgeConfig::new("127.0.0.1", broker.port, instance);
    config.credentials = Some((BRIDGE_USER.into(), BRIDGE_PASSWORD.into()));
    config.workers = 2;
    let (bridge, notifier) = MqttBridge::new(config, store.clone());
    let fleet = Fleet::over(
        store,
        Arc::new(notifier.clone()),
        existing.map(|f| (f.tenant, f.profile.clone())),
    )
    .await;
    let (stop, stopped) = oneshot::channel::<()>();
    let ota = fleet.ota.clone();
    let task = tokio::spawn(async move {
        bridge
            .run(ota, async {
                let _ = stopped.await;
            })
            .await;
    });
    (
        fleet,
        RunningBridge {
            notifier,
            stop: Some(stop),
            task,
        },
    )
}

pub async fn device(broker: &Mosquitto, protocol: Protocol, key: &str) -> TestDevice {
    let mut options = DeviceOptions::new(protocol, key);
    options.password = Some(key.to_string());
    TestDevice::connect(broker.port, options)
        .await
        .expect("device connected")
        .0
}

/// What a device on a plain broker subscribes to: its answers and notices.
pub async fn subscribe_device(dev: &mut TestDevice, t: &Topics) {
    dev.subscribe(&t.attributes()).await;
    dev.subscribe(&format!("{}/attributes/response/+", t.v1))
        .await;
    dev.subscribe(&format!("{}/rpc/response/+", t.v1)).await;
    dev.subscribe(&t.errors()).await;
    dev.subscribe(&format!("{}/fw/response/+/chunk/+", t.v2))
        .await;
    dev.subscribe(&t.chunk_error()).await;
}

/// Waits until the bridge answers (it subscribes after connecting).
pub async fn until_served(dev: &mut TestDevice, t: &Topics) {
    for attempt in 0..200 {
        let id = format!("ready{attempt}");
        dev.publish(
            &t.rpc_request(&id),
            r#"{"method":"getSessionLimits"}"#,
            true,
        )
        .await;
        let answered = tokio::time::timeout(
            std::time::Duration::from_millis(250),
            dev.expect_json(&t.rpc_response(&id)),
        )
        .await;
        if answered.is_ok() {
            return;
        }
    }
    panic!("the bridge never answered");
}
