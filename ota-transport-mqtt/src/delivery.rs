//! Notices across server instances: delivering what waits in the store's notice outbox for
//! the devices this instance reaches, when told that notices were written (the PostgreSQL
//! store's `LISTEN`/`NOTIFY`, as a stream of wake-ups), on a periodic fallback, and (done by
//! the endpoint and the bridge themselves) when a device becomes reachable here.
//!
//! With several instances on one store, the instance that releases an update writes its
//! notice to the outbox; the instance holding the device's connection (endpoint mode) or
//! knowing its token (bridge mode, tokens being kept only as digests by the stores) takes it
//! from there, hands it to the device and marks it delivered. This module knows nothing of
//! the store: the wake-ups are any [`Stream`] of `Option<Vec<DeviceId>>`.
//!
//! ```no_run
//! # async fn run(store: ota_store_postgres::PgStore, ota: ota_core::engine::Ota) {
//! use ota_transport_mqtt::delivery::OutboxDelivery;
//! use ota_transport_mqtt::endpoint::MqttNotifier;
//! // The notifier the engine was created with, told that other instances share the store.
//! let notifier = MqttNotifier::default().across_instances();
//! let wakeups = store.outbox_wakeups();
//! tokio::spawn(
//!     OutboxDelivery::new(ota, &notifier)
//!         .run(wakeups, async { let _ = tokio::signal::ctrl_c().await; }),
//! );
//! # }
//! ```

use futures_util::{Stream, StreamExt};
use ota_core::engine::{Ota, OtaError};
use ota_core::DeviceId;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Which devices a transport reaches from this instance (the devices connected to this
/// endpoint; the devices whose token this bridge knows).
pub trait ReachesDevices: Send + Sync {
    /// Whether notices for `device` can be handed over from here.
    fn reaches(&self, device: DeviceId) -> bool;
}

/// Delivers outbox notices for the devices a transport reaches. See the [module](self)
/// documentation.
#[derive(Clone)]
pub struct OutboxDelivery {
    ota: Ota,
    reach: Arc<dyn ReachesDevices>,
    fallback: Duration,
}

impl std::fmt::Debug for OutboxDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxDelivery")
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

/// What one wake-up delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Notices handed to devices and marked delivered.
    pub delivered: u32,
    /// Notices the transport could not take (left in the outbox, tried again later).
    pub failed: u32,
}

impl OutboxDelivery {
    /// Delivery through `ota` (whose notifier is `transport`, or shares its reach) for the
    /// devices `transport` reaches. The periodic fallback runs every 5 s.
    pub fn new<T: ReachesDevices + Clone + 'static>(ota: Ota, transport: &T) -> Self {
        Self {
            ota,
            reach: Arc::new(transport.clone()),
            fallback: Duration::from_secs(5),
        }
    }

    /// Sets how often everything this instance reaches is looked at without a wake-up
    /// (announcements lost, leases lapsed). Default: 5 s.
    pub fn fallback_every(mut self, every: Duration) -> Self {
        self.fallback = every.max(Duration::from_millis(10));
        self
    }

    /// Delivers what waits for `devices` (those this instance reaches among them), or for
    /// every device it reaches (`None`).
    pub async fn wake(&self, devices: Option<&[DeviceId]>) -> Result<Delivered, OtaError> {
        let (delivered, failed) = match devices {
            None => self.ota.deliver_notices().await?,
            Some(devices) => {
                let here: Vec<DeviceId> = devices
                    .iter()
                    .copied()
                    .filter(|d| self.reach.reaches(*d))
                    .collect();
                self.ota.deliver_notices_for(&here).await?
            }
        };
        Ok(Delivered { delivered, failed })
    }

    /// Delivers on every wake-up of `wakeups` (`Some(devices)`: notices were written for
    /// these devices; `None`: for any device) and on the periodic fallback, until `shutdown`
    /// completes or the stream ends. Failures (the store unreachable) are logged and left to
    /// the next wake-up or the fallback.
    pub async fn run<S>(self, wakeups: S, shutdown: impl Future<Output = ()> + Send)
    where
        S: Stream<Item = Option<Vec<DeviceId>>> + Send,
    {
        tokio::pin!(shutdown);
        tokio::pin!(wakeups);
        let mut fallback = tokio::time::interval(self.fallback);
        fallback.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        fallback.reset();
        loop {
            let devices = tokio::select! {
                _ = &mut shutdown => return,
                _ = fallback.tick() => None,
                wake = wakeups.next() => match wake {
                    Some(devices) => devices,
                    None => return,
                },
            };
            match self.wake(devices.as_deref()).await {
                Ok(Delivered { delivered, failed }) => {
                    if delivered + failed > 0 {
                        tracing::debug!(delivered, failed, "outbox notices delivered");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "outbox delivery failed; retried later"),
            }
        }
    }
}
