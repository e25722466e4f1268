//! The device transports: the HTTP long-poll notifier, the MQTT endpoint and the MQTT bridge,
//! and the one notifier the engine is built with.

use super::config::{parse_broker_url, Config};
use super::notify::{FanOut, Transport};
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
    /// The engine's notifier over all of them.
    pub fan_out: FanOut,
}

impl Transports {
    /// The transports `config` asks for; the bridge works on `store`. `across`: other
    /// instances may share the store (PostgreSQL), so notices for devices this instance does
    /// not reach are left to the others.
    pub fn new(
        config: &Config,
        store: &Arc<dyn Store>,
        instance: &str,
        across: bool,
    ) -> Result<Self, String> {
        let http = HttpNotifier::new();
        let mut transports = vec![Transport::Http(http.clone())];
        let mqtt = (!config.no_mqtt_endpoint).then(|| {
            let mqtt = MqttNotifier::default();
            if across {
                mqtt.across_instances()
            } else {
                mqtt
            }
        });
        if let Some(mqtt) = &mqtt {
            transports.push(Transport::Mqtt(mqtt.clone()));
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
                transports.push(Transport::Bridge(notifier));
                tracing::info!(host = %broker.host, port = broker.port, %client_id, "MQTT bridge configured");
                Some(bridge)
            }
        };
        Ok(Self {
            http,
            mqtt,
            bridge,
            fan_out: FanOut::new(transports, across),
        })
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
    endpoint.connect_timeout = config.mqtt_connect_timeout;
    endpoint.shutdown_grace = config.shutdown_grace;
    endpoint
}
