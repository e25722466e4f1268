//! The device transports: the HTTP long-poll notifier, the MQTT endpoint and the MQTT bridge,
//! and the one notifier the engine is built with.

use super::config::{parse_broker_url, Config};
use super::notify::FanOut;
use ota_core::notifier::Notifier;
use ota_core::store::Store;
use ota_transport_http::HttpNotifier;
use ota_transport_mqtt::bridge::{BridgeConfig, MqttBridge};
use ota_transport_mqtt::endpoint::{EndpointConfig, MqttNotifier};
use ota_transport_mqtt::protocol::ProtocolLimits;
use std::sync::Arc;

/// The transports' notifiers and what the endpoint and bridge need to start.
pub struct Transports {
    /// Wakes the device API's long-polls.
    pub http: HttpNotifier,
    /// Pushes notices to devices connected to the endpoint (`None`: no endpoint).
    pub mqtt: Option<MqttNotifier>,
    /// The bridge, not connected yet (`None`: no bridge).
    pub bridge: Option<MqttBridge>,
    notifiers: Vec<(&'static str, Arc<dyn Notifier>)>,
}

impl Transports {
    /// The transports `config` asks for; the bridge works on `store`.
    pub fn new(config: &Config, store: &Arc<dyn Store>, instance: &str) -> Result<Self, String> {
        let http = HttpNotifier::new();
        let mut notifiers: Vec<(&'static str, Arc<dyn Notifier>)> =
            vec![("http", Arc::new(http.clone()))];
        let mqtt = (!config.no_mqtt_endpoint).then(MqttNotifier::default);
        if let Some(mqtt) = &mqtt {
            notifiers.push(("mqtt", Arc::new(mqtt.clone())));
        }
        let bridge = match &config.mqtt_bridge_url {
            None => None,
            Some(url) => {
                let broker = parse_broker_url(url)?;
                let client_id = config
                    .mqtt_bridge_client_id
                    .clone()
                    .unwrap_or_else(|| format!("ota-server-{instance}"));
                let mut bridge_config = BridgeConfig::new(&broker.host, broker.port, &client_id);
                bridge_config.credentials = broker.credentials;
                bridge_config.share_group =
                    Some(config.mqtt_bridge_share_group.clone()).filter(|g| !g.is_empty());
                bridge_config.limits = limits(config);
                let (bridge, notifier) = MqttBridge::new(bridge_config, store.clone());
                notifiers.push(("bridge", Arc::new(notifier)));
                tracing::info!(host = %broker.host, port = broker.port, %client_id, "MQTT bridge configured");
                Some(bridge)
            }
        };
        Ok(Self {
            http,
            mqtt,
            bridge,
            notifiers,
        })
    }

    /// The notifier to build the engine with: every transport gets every notice.
    pub fn notifier(&self) -> FanOut {
        FanOut::new(self.notifiers.clone())
    }
}

/// The per-device MQTT limits of `config`.
pub fn limits(config: &Config) -> ProtocolLimits {
    let mut limits = ProtocolLimits::default();
    limits.max_payload_size = config.mqtt_max_payload;
    limits.max_chunk_size = config.mqtt_max_chunk;
    limits.messages_per_second = Some(config.mqtt_messages_per_second).filter(|n| *n > 0);
    limits
}

/// The MQTT endpoint's configuration from `config`.
pub fn endpoint_config(config: &Config) -> EndpointConfig {
    let mut endpoint = EndpointConfig::default();
    endpoint.limits = limits(config);
    endpoint.max_connections = config.mqtt_max_connections;
    endpoint.shutdown_grace = config.shutdown_grace;
    endpoint
}
