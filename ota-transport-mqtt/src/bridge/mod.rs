//! Bridge mode: the library connects to an existing broker (Mosquitto, EMQX, HiveMQ, ...) as
//! an MQTT 5 client and serves devices through it, on device-scoped topics
//! ([`topics::BridgeTopics`]: `v1/devices/{device}/...` instead of `v1/devices/me/...`).
//!
//! Several server instances on one broker share the work through shared subscriptions
//! (`$share/{group}/...`): each device message is taken by one instance. Notices are
//! published by [`BridgeNotifier`] and routed by the broker to the device wherever it is
//! connected. After every CONNACK without a session the bridge subscribes again.
//!
//! What an instance remembers of a download (the chunk size of a request id, the package it
//! started on) stays in that instance: with several instances, devices send the chunk size
//! with every chunk request (ThingsBoard's SDKs do). A later chunk with an empty payload
//! that reaches an instance which did not see the request's start is answered with an error
//! on the error topic, never with a wrong chunk.
//!
//! The sample Mosquitto configuration in the crate (`mosquitto/`) keeps each device to its
//! own topics with `pattern readwrite v1/devices/%u/#`, the device's username being its key
//! (its access token or its name, [`DeviceKey`]).
//!
//! ```no_run
//! # async fn run(store: std::sync::Arc<dyn ota_core::store::Store>) {
//! use ota_transport_mqtt::bridge::{BridgeConfig, MqttBridge};
//! let mut config = BridgeConfig::new("127.0.0.1", 1883, "ota-server-1");
//! config.credentials = Some(("ota-bridge".into(), "secret".into()));
//! let (bridge, notifier) = MqttBridge::new(config, store.clone());
//! let ota = ota_core::engine::Ota::new(
//!     store,
//!     std::sync::Arc::new(notifier),
//!     std::sync::Arc::new(ota_core::SystemClock),
//!     ota_core::engine::OtaConfig::default(),
//! );
//! bridge.run(ota, async { let _ = tokio::signal::ctrl_c().await; }).await;
//! # }
//! ```

mod notifier;
pub mod topics;
mod worker;

pub use notifier::{BridgeNotifier, ORIGIN_PROPERTY};
pub use topics::BridgeTopics;

use crate::protocol::ProtocolLimits;
use ota_core::engine::Ota;
use ota_core::store::Store;
use ota_core::{Device, TenantId};
use rumqttc::v5::mqttbytes::v5::{Filter, Packet};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The access tokens this bridge has seen devices use, by device. Stores keep only a digest
/// of each token, so a bridge that names devices by token learns a device's token from the
/// topics the device publishes on. The devices it knows are the ones its notifier reaches
/// ([`ota_core::notifier::Notifier::reachable_devices`]): a notice for another device stays
/// in the outbox for an instance that knows it, or until the device publishes here.
#[derive(Clone, Debug, Default)]
pub(crate) struct KnownTokens(
    Arc<std::sync::Mutex<std::collections::HashMap<ota_core::DeviceId, String>>>,
);

impl KnownTokens {
    /// Remembers `token` for `device`; true when it was not known (a device the bridge can
    /// reach from now on).
    pub(crate) fn learn(&self, device: ota_core::DeviceId, token: &str) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&device) {
            Some(known) if known == token => false,
            _ => map.insert(device, token.to_string()).is_none(),
        }
    }

    pub(crate) fn knows(&self, device: ota_core::DeviceId) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&device)
    }

    pub(crate) fn devices(&self) -> Vec<ota_core::DeviceId> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    pub(crate) fn get(&self, device: ota_core::DeviceId) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&device)
            .cloned()
    }
}

/// How devices are named in their topics and broker usernames.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceKey {
    /// The access token (unique across tenants).
    Token,
    /// The device name, in one tenant.
    Name {
        /// The tenant the bridge serves.
        tenant: TenantId,
    },
}

impl DeviceKey {
    /// The key of `device`.
    pub fn of<'a>(&self, device: &'a Device) -> &'a str {
        match self {
            Self::Token => &device.access_token,
            Self::Name { .. } => &device.name,
        }
    }
}

/// How the bridge connects and serves.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BridgeConfig {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// This instance's client id (unique per instance).
    pub client_id: String,
    /// Username and password at the broker.
    pub credentials: Option<(String, String)>,
    /// The shared subscription group (`$share/{group}/...`); `None` subscribes plainly
    /// (one instance only). Default: `ota`.
    pub share_group: Option<String>,
    /// How devices are named in topics. Default: by access token.
    pub device_key: DeviceKey,
    /// Topic layout. Default: under `v1/devices`.
    pub topics: BridgeTopics,
    /// Per-device limits (applied by each instance to the messages it takes).
    pub limits: ProtocolLimits,
    /// Keep-alive with the broker. Default: 30 s.
    pub keep_alive: Duration,
    /// How long the broker keeps the bridge's session while it is away. Default: 1 hour.
    pub session_expiry: Duration,
    /// How many tasks handle device messages (a device always goes to the same one, so its
    /// messages are handled in order). Default: 8.
    pub workers: usize,
}

impl BridgeConfig {
    /// Connects to `host:port` as `client_id`, with defaults for the rest.
    pub fn new(host: &str, port: u16, client_id: &str) -> Self {
        Self {
            host: host.to_string(),
            port,
            client_id: client_id.to_string(),
            credentials: None,
            share_group: Some("ota".to_string()),
            device_key: DeviceKey::Token,
            topics: BridgeTopics::default(),
            limits: ProtocolLimits::default(),
            keep_alive: Duration::from_secs(30),
            session_expiry: Duration::from_secs(3600),
            workers: 8,
        }
    }
}

/// The bridge: a broker connection and the tasks that serve devices through it.
pub struct MqttBridge {
    config: BridgeConfig,
    client: AsyncClient,
    eventloop: EventLoop,
    store: Arc<dyn Store>,
    tokens: KnownTokens,
}

impl std::fmt::Debug for MqttBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttBridge")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MqttBridge {
    /// A bridge (not connected yet) and the notifier to create the engine with.
    pub fn new(config: BridgeConfig, store: Arc<dyn Store>) -> (Self, BridgeNotifier) {
        let mut options = MqttOptions::new(&config.client_id, &config.host, config.port);
        options.set_keep_alive(config.keep_alive);
        options.set_clean_start(false);
        let mut network = rumqttc::NetworkOptions::new();
        network.set_tcp_nodelay(true);
        options.set_network_options(network);
        options.set_session_expiry_interval(Some(
            u32::try_from(config.session_expiry.as_secs()).unwrap_or(u32::MAX),
        ));
        options.set_max_packet_size(Some(config.limits.max_payload_size.saturating_add(1024)));
        if let Some((user, password)) = &config.credentials {
            options.set_credentials(user.clone(), password.clone());
        }
        let (client, eventloop) = AsyncClient::new(options, 1024);
        let tokens = KnownTokens::default();
        let notifier = BridgeNotifier {
            client: client.clone(),
            store: store.clone(),
            topics: config.topics.clone(),
            key: config.device_key.clone(),
            tokens: tokens.clone(),
        };
        (
            Self {
                config,
                client,
                eventloop,
                store,
                tokens,
            },
            notifier,
        )
    }

    /// Serves devices through the broker until `shutdown` completes. Broker outages are
    /// waited out (reconnecting every second); the bridge subscribes again after every
    /// CONNACK without a session.
    pub async fn run(self, ota: Ota, shutdown: impl Future<Output = ()> + Send) {
        let Self {
            config,
            client,
            mut eventloop,
            store,
            tokens,
        } = self;
        let workers = config.workers.max(1);
        let mut senders = Vec::with_capacity(workers);
        let mut tasks = Vec::with_capacity(workers);
        // One handler for all workers: they share the package content it keeps.
        let handler = crate::handler::DeviceHandler::new(ota.clone());
        for _ in 0..workers {
            let (tx, rx) = mpsc::channel(256);
            senders.push(tx);
            tasks.push(tokio::spawn(worker::run(
                rx,
                worker::Context {
                    handler: handler.clone(),
                    store: store.clone(),
                    client: client.clone(),
                    config: config.clone(),
                    tokens: tokens.clone(),
                },
            )));
        }
        let filters: Vec<Filter> = config
            .topics
            .filters(config.share_group.as_deref())
            .into_iter()
            .map(|f| Filter::new(f, QoS::AtLeastOnce))
            .collect();
        tokio::pin!(shutdown);
        loop {
            let event = tokio::select! {
                _ = &mut shutdown => break,
                event = eventloop.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(connack))) => {
                    tracing::info!(
                        session_present = connack.session_present,
                        "bridge connected"
                    );
                    if !connack.session_present {
                        // Subscribing from this task could wait on the request queue that
                        // only this task drains: do it from another.
                        let client = client.clone();
                        let filters = filters.clone();
                        tokio::spawn(async move {
                            if let Err(e) = client.subscribe_many(filters).await {
                                tracing::warn!(error = %e, "bridge could not subscribe");
                            }
                        });
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    if worker::is_own(&publish) {
                        continue;
                    }
                    let Ok(topic) = std::str::from_utf8(&publish.topic) else {
                        continue;
                    };
                    let Some((key, _)) = config.topics.to_endpoint(topic) else {
                        continue;
                    };
                    let index = worker::shard(key, workers);
                    if senders[index].send(publish).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "bridge connection failed; retrying");
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        drop(senders);
        let _ = client.try_disconnect();
        // Let the disconnect go out.
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while eventloop.poll().await.is_ok() {}
        })
        .await;
        for task in tasks {
            task.abort();
        }
    }
}
