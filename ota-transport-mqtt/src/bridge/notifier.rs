//! The bridge's [`Notifier`]: publishes shared attribute changes to the device's own
//! attributes topic on the broker, which routes them to the device wherever it is connected.

use super::topics::BridgeTopics;
use super::DeviceKey;
use crate::protocol::replies;
use async_trait::async_trait;
use ota_core::notifier::{Notice, Notifier, NotifyError};
use ota_core::store::Store;
use ota_core::DeviceId;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::AsyncClient;
use std::sync::Arc;

/// The user property that marks the bridge's own publishes, so that a bridge receiving them
/// through its subscriptions (devices publish client attributes on the same topic) skips them.
pub const ORIGIN_PROPERTY: (&str, &str) = ("ota-origin", "server");

pub(crate) fn origin_properties() -> PublishProperties {
    PublishProperties {
        user_properties: vec![(ORIGIN_PROPERTY.0.to_string(), ORIGIN_PROPERTY.1.to_string())],
        ..PublishProperties::default()
    }
}

/// Publishes notices through the bridge's broker connection.
#[derive(Clone)]
pub struct BridgeNotifier {
    pub(crate) client: AsyncClient,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) topics: BridgeTopics,
    pub(crate) key: DeviceKey,
    pub(crate) tokens: super::KnownTokens,
}

impl std::fmt::Debug for BridgeNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeNotifier")
            .field("topics", &self.topics)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Notifier for BridgeNotifier {
    async fn notify(&self, notice: &Notice) -> Result<(), NotifyError> {
        let (tenant, device) = match notice {
            Notice::Update {
                tenant_id,
                device_id,
                ..
            }
            | Notice::Withdrawal {
                tenant_id,
                device_id,
                ..
            } => (*tenant_id, *device_id),
        };
        let device = self
            .store
            .get_device(tenant, device)
            .await
            .map_err(|e| NotifyError {
                message: format!("cannot read device {device}: {e}"),
            })?;
        let learned;
        let key = match self.key {
            DeviceKey::Token if device.access_token.is_empty() => {
                learned = self.tokens.get(device.id).ok_or_else(|| NotifyError {
                    message: format!(
                        "device {} has not published through this bridge yet, so its token \
                         (kept only as a digest by the store) is unknown here; the notice \
                         stays in the outbox",
                        device.id
                    ),
                })?;
                learned.as_str()
            }
            _ => self.key.of(&device),
        };
        let message = replies::notice(notice);
        let topic = self.topics.to_bridge(key, &message.topic);
        self.client
            .publish_with_properties(
                topic,
                QoS::AtLeastOnce,
                false,
                message.payload,
                origin_properties(),
            )
            .await
            .map_err(|e| NotifyError {
                message: format!("broker connection: {e}"),
            })
    }

    /// Named by token: the devices whose token this bridge learned (stores keep only
    /// digests). Named by name: every device.
    fn reachable_devices(&self) -> Option<Vec<DeviceId>> {
        (self.key == DeviceKey::Token).then(|| self.tokens.devices())
    }
}

impl crate::delivery::ReachesDevices for BridgeNotifier {
    fn reaches(&self, device: DeviceId) -> bool {
        self.key != DeviceKey::Token || self.tokens.knows(device)
    }
}
