//! Endpoint mode: devices connect to the library over MQTT 3.1.1 or 5 (one port), with their
//! access token as the CONNECT username.
//!
//! ```no_run
//! # async fn run(store: std::sync::Arc<dyn ota_core::store::Store>) -> Result<(), Box<dyn std::error::Error>> {
//! use ota_transport_mqtt::endpoint::{EndpointConfig, MqttEndpoint, MqttNotifier};
//! let notifier = MqttNotifier::default();
//! let ota = ota_core::engine::Ota::new(
//!     store,
//!     std::sync::Arc::new(notifier.clone()),
//!     std::sync::Arc::new(ota_core::SystemClock),
//!     ota_core::engine::OtaConfig::default(),
//! );
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:1883").await?;
//! MqttEndpoint::new(ota, &notifier, EndpointConfig::default())
//!     .serve(listener, async { let _ = tokio::signal::ctrl_c().await; })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Requests (attribute, RPC, chunk) are answered to the connection that asked, whatever its
//! subscriptions. Shared attribute changes go to connected devices subscribed to
//! `v1/devices/me/attributes`, through [`MqttNotifier`]. A second connection with the same
//! token takes over from the first. Limits ([`EndpointConfig`]) are answered with errors or a
//! disconnect of the device that broke them.
//!
//! Several instances behind a load balancer on one PostgreSQL store: create the notifier with
//! [`MqttNotifier::across_instances`] and run [`crate::delivery::OutboxDelivery`] on the
//! store's wake-ups, so that a notice released by one instance reaches a device connected to
//! another.

mod connection;
mod link;
mod lookups;
mod packets;
mod registry;

pub use registry::{MqttNotifier, Registry};

use crate::handler::DeviceHandler;
use crate::protocol::ProtocolLimits;
use ota_core::engine::Ota;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// How the endpoint behaves. `Default` gives values for a single server.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EndpointConfig {
    /// Per-device limits (payload, chunk, in-flight window, message rate).
    pub limits: ProtocolLimits,
    /// Most devices connected at once; more are refused at CONNACK (server busy / server
    /// unavailable). Default: 100,000.
    pub max_connections: usize,
    /// Most connections over `max_connections` held at once to be refused at CONNACK (with
    /// the MQTT reason, once they send CONNECT or after `connect_timeout`); more are closed
    /// at once, so that a connection flood costs at most `max_connections + max_refusing`
    /// sockets and tasks. Default: 1,000.
    pub max_refusing: usize,
    /// How long a new connection may take to send CONNECT; then it is closed. Default: 10 s.
    pub connect_timeout: Duration,
    /// Most CONNECT look-ups (the device found by its token in the store) in flight at once,
    /// so that a reconnect storm (a whole fleet connecting again after a restart) leaves the
    /// store's connection pool to the engine and the management API. Keep it below the
    /// pool's size. Default: 8.
    pub max_connect_lookups: usize,
    /// How long a CONNECT waits for a look-up slot; then it is refused as "server busy"
    /// (MQTT 3.1.1: "server unavailable"), and the device connects again after its back-off.
    /// Default: 2 s.
    pub connect_lookup_wait: Duration,
    /// How long shutdown waits for connections to close. Default: 5 s.
    pub shutdown_grace: Duration,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            limits: ProtocolLimits::default(),
            max_connections: 100_000,
            max_refusing: 1_000,
            connect_timeout: Duration::from_secs(10),
            max_connect_lookups: 8,
            connect_lookup_wait: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// The endpoint failed as a whole (connections failing one by one are not errors).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The listener failed.
    #[error("MQTT listener failed: {0}")]
    Listener(#[from] std::io::Error),
}

pub(crate) struct Shared {
    pub(crate) handler: DeviceHandler,
    pub(crate) registry: Arc<Registry>,
    pub(crate) config: EndpointConfig,
    /// The bound on CONNECT look-ups in flight.
    pub(crate) lookups: lookups::LookupGate,
    started: Instant,
}

impl Shared {
    /// Milliseconds since the endpoint started (the rate limiter's clock).
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The MQTT device endpoint.
pub struct MqttEndpoint {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MqttEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttEndpoint")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl MqttEndpoint {
    /// An endpoint over `ota`, delivering the notices of `notifier` (the one the engine was
    /// created with).
    pub fn new(ota: Ota, notifier: &MqttNotifier, config: EndpointConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                handler: DeviceHandler::new(ota),
                registry: notifier.registry().clone(),
                lookups: lookups::LookupGate::new(
                    config.max_connect_lookups,
                    config.connect_lookup_wait,
                ),
                config,
                started: Instant::now(),
            }),
        }
    }

    /// Accepts connections on `listener` until `shutdown` completes, then tells every device
    /// (MQTT 5: DISCONNECT "server shutting down") and waits up to the grace period.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), EndpointError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let permits = Arc::new(Semaphore::new(self.shared.config.max_connections));
        let refusals = Arc::new(Semaphore::new(self.shared.config.max_refusing));
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let permit = permits.clone().try_acquire_owned().ok();
                        let refusing = match permit {
                            Some(_) => None,
                            None => match refusals.clone().try_acquire_owned() {
                                Ok(r) => Some(r),
                                Err(_) => {
                                    // Over both limits: closed without a word.
                                    drop(stream);
                                    continue;
                                }
                            },
                        };
                        let run = connection::run(stream, self.shared.clone(), permit, stop_rx.clone());
                        tasks.spawn(async move {
                            run.await;
                            drop(refusing);
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        let _ = stop_tx.send(true);
        drop(listener);
        let grace = self.shared.config.shutdown_grace;
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tasks.abort_all();
        }
        Ok(())
    }
}
