//! One notifier for the engine that hands each notice to every transport the server runs,
//! and says which devices this instance reaches.
//!
//! One instance (the memory store): every notice is delivered here. Several instances on one
//! PostgreSQL database (`across`): this instance reaches the devices connected to its MQTT
//! endpoint, waiting in an HTTP long-poll here, or known to its bridge; notices for other
//! devices stay in the outbox for the instance that reaches them (woken by the store's
//! `NOTIFY`, see `ota_transport_mqtt::delivery`).

use ota_core::notifier::{Notice, Notifier, NotifyError};
use ota_core::DeviceId;
use ota_transport_http::HttpNotifier;
use ota_transport_mqtt::bridge::BridgeNotifier;
use ota_transport_mqtt::delivery::ReachesDevices;
use ota_transport_mqtt::endpoint::MqttNotifier;
use std::collections::BTreeSet;
use std::sync::Arc;

/// A transport's notifier.
#[derive(Clone, Debug)]
pub enum Transport {
    /// HTTP long-polls.
    Http(HttpNotifier),
    /// Devices connected to the MQTT endpoint.
    Mqtt(MqttNotifier),
    /// Devices on the broker of the MQTT bridge.
    Bridge(BridgeNotifier),
}

impl Transport {
    fn name(&self) -> &'static str {
        match self {
            Self::Http(_) => "http",
            Self::Mqtt(_) => "mqtt",
            Self::Bridge(_) => "bridge",
        }
    }

    fn reaches(&self, device: DeviceId) -> bool {
        match self {
            Self::Http(http) => http.waiters(device) > 0,
            Self::Mqtt(mqtt) => mqtt.registry().is_connected(device),
            Self::Bridge(bridge) => bridge.reaches(device),
        }
    }

    fn reachable(&self) -> Vec<DeviceId> {
        match self {
            Self::Http(http) => http.waiting_device_ids(),
            Self::Mqtt(mqtt) => mqtt.registry().connected_devices(),
            Self::Bridge(bridge) => bridge.reachable_devices().unwrap_or_default(),
        }
    }

    async fn notify(&self, notice: &Notice) -> Result<(), NotifyError> {
        match self {
            Self::Http(http) => http.notify(notice).await,
            Self::Mqtt(mqtt) => mqtt.notify(notice).await,
            Self::Bridge(bridge) => bridge.notify(notice).await,
        }
    }
}

/// Hands every notice to each transport that can take it. A notice fails when one of them
/// failed: it stays in the outbox and is delivered again later (at least once; devices see
/// the same attributes again). The bridge is skipped for a device it does not know (named
/// by token, a device that has not published through it yet): that device reads its
/// attributes when it asks.
#[derive(Clone, Debug)]
pub struct FanOut {
    transports: Arc<Vec<Transport>>,
    across: bool,
}

impl FanOut {
    /// Over `transports`; `across`: other instances share the store.
    pub fn new(transports: Vec<Transport>, across: bool) -> Self {
        Self {
            transports: Arc::new(transports),
            across,
        }
    }
}

#[ota_core::async_trait]
impl Notifier for FanOut {
    async fn notify(&self, notice: &Notice) -> Result<(), NotifyError> {
        let device = notice.device_id();
        let mut failures = Vec::new();
        for transport in self.transports.iter() {
            if matches!(transport, Transport::Bridge(_)) && !transport.reaches(device) {
                continue;
            }
            if let Err(e) = transport.notify(notice).await {
                failures.push(format!("{}: {}", transport.name(), e.message));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(NotifyError {
                message: failures.join("; "),
            })
        }
    }

    fn reachable_devices(&self) -> Option<Vec<DeviceId>> {
        if !self.across {
            return None;
        }
        let devices: BTreeSet<DeviceId> = self
            .transports
            .iter()
            .flat_map(Transport::reachable)
            .collect();
        Some(devices.into_iter().collect())
    }
}

impl ReachesDevices for FanOut {
    fn reaches(&self, device: DeviceId) -> bool {
        !self.across || self.transports.iter().any(|t| t.reaches(device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_core::{PackageKind, TenantId};

    fn withdrawal(device: DeviceId) -> Notice {
        Notice::Withdrawal {
            tenant_id: TenantId::new(),
            device_id: device,
            kind: PackageKind::Firmware,
            keys: vec!["fw_title".into()],
        }
    }

    #[tokio::test]
    async fn one_instance_reaches_every_device_several_reach_their_own() {
        let mqtt = MqttNotifier::new(1).across_instances();
        let http = HttpNotifier::new();
        let transports = vec![Transport::Http(http), Transport::Mqtt(mqtt.clone())];
        let device = DeviceId::new();

        let single = FanOut::new(transports.clone(), false);
        assert_eq!(single.reachable_devices(), None);
        assert!(single.reaches(device));
        single.notify(&withdrawal(device)).await.unwrap();

        let shared = FanOut::new(transports, true);
        assert_eq!(shared.reachable_devices(), Some(vec![]));
        assert!(!shared.reaches(device));
    }
}
