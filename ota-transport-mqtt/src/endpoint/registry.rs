//! The devices connected to this endpoint, and the [`Notifier`] that pushes shared attribute
//! changes to them.

use crate::protocol::replies::{self, Outgoing};
use async_trait::async_trait;
use ota_core::notifier::{Notice, Notifier, NotifyError};
use ota_core::DeviceId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};

/// A subscription a device holds: topic filter and granted QoS.
pub(crate) type Subscription = (String, u8);

/// How a connection is reached.
struct Entry {
    connection: u64,
    notices: mpsc::Sender<Outgoing>,
    kicked: Arc<Notify>,
}

/// Handed to a connection when it registers.
pub(crate) struct Registration {
    pub(crate) connection: u64,
    pub(crate) notices: mpsc::Receiver<Outgoing>,
    pub(crate) kicked: Arc<Notify>,
    /// The subscriptions of the device's previous session, when it asked to keep them.
    pub(crate) restored: Option<Vec<Subscription>>,
}

#[derive(Default)]
struct Tables {
    connected: HashMap<DeviceId, Entry>,
    /// Subscriptions of devices that connected without a clean start, kept for their next
    /// connection.
    sessions: HashMap<DeviceId, Vec<Subscription>>,
}

/// The connected devices. Shared by the endpoint and its [`MqttNotifier`].
#[derive(Default)]
pub struct Registry {
    tables: Mutex<Tables>,
    next: AtomicU64,
    queue: usize,
    /// Other instances share the store: notices for devices not connected here are left in
    /// the outbox for the instance that holds them.
    across_instances: AtomicBool,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("connected", &self.connected_count())
            .finish_non_exhaustive()
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many devices are connected.
    pub fn connected_count(&self) -> usize {
        self.lock().connected.len()
    }

    /// Whether `device` is connected here.
    pub fn is_connected(&self, device: DeviceId) -> bool {
        self.lock().connected.contains_key(&device)
    }

    /// The devices connected here.
    pub fn connected_devices(&self) -> Vec<DeviceId> {
        self.lock().connected.keys().copied().collect()
    }

    /// Whether notices for devices not connected here are left for other instances (see
    /// [`MqttNotifier::across_instances`]).
    pub fn is_across_instances(&self) -> bool {
        self.across_instances.load(Ordering::Relaxed)
    }

    /// Registers a connection of `device`, taking over from any earlier connection of it
    /// (which is told to close). `clean_start` drops the kept session.
    pub(crate) fn register(&self, device: DeviceId, clean_start: bool) -> Registration {
        let connection = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.queue.max(1));
        let kicked = Arc::new(Notify::new());
        let mut tables = self.lock();
        let restored = if clean_start {
            tables.sessions.remove(&device);
            None
        } else {
            tables.sessions.get(&device).cloned()
        };
        let previous = tables.connected.insert(
            device,
            Entry {
                connection,
                notices: tx,
                kicked: kicked.clone(),
            },
        );
        drop(tables);
        if let Some(previous) = previous {
            previous.kicked.notify_one();
        }
        Registration {
            connection,
            notices: rx,
            kicked,
            restored,
        }
    }

    /// Removes connection `connection` of `device` (unless a newer one took over), keeping
    /// its subscriptions for the next connection when `keep` is given.
    pub(crate) fn unregister(
        &self,
        device: DeviceId,
        connection: u64,
        keep: Option<Vec<Subscription>>,
    ) {
        let mut tables = self.lock();
        let current = tables
            .connected
            .get(&device)
            .is_some_and(|e| e.connection == connection);
        if current {
            tables.connected.remove(&device);
        }
        match keep {
            Some(subscriptions) => {
                tables.sessions.insert(device, subscriptions);
            }
            None if current => {
                tables.sessions.remove(&device);
            }
            None => {}
        }
    }

    /// Tells every connection to close (server shutdown is signalled separately; this is for
    /// tests and embedders that drop all devices).
    pub fn kick_all(&self) {
        for entry in self.lock().connected.values() {
            entry.kicked.notify_one();
        }
    }

    fn deliver(&self, device: DeviceId, message: Outgoing) -> Result<(), NotifyError> {
        let sender = match self.lock().connected.get(&device) {
            Some(entry) => entry.notices.clone(),
            // Not connected here: the device reads its attributes when it connects.
            None => return Ok(()),
        };
        match sender.try_send(message) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(NotifyError {
                message: format!("notice queue of device {device} is full"),
            }),
        }
    }
}

/// Pushes notices to devices connected to the endpoint it was created with (an attribute
/// update or deletion on `v1/devices/me/attributes`, for devices subscribed to it). A device
/// that is not connected is not an error: it asks for its attributes when it connects.
///
/// Create it first, give it to the engine, then give it to the endpoint.
#[derive(Clone, Debug)]
pub struct MqttNotifier {
    registry: Arc<Registry>,
}

impl MqttNotifier {
    /// A notifier with its own registry; each connection queues up to `queue` notices.
    pub fn new(queue: usize) -> Self {
        Self {
            registry: Arc::new(Registry {
                queue,
                ..Registry::default()
            }),
        }
    }

    /// The connected devices.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// For several server instances on one store (PostgreSQL) behind a load balancer: the
    /// notifier then reaches only the devices connected to this instance
    /// ([`Notifier::reachable_devices`]), so the engine leaves notices for other devices in
    /// the outbox, for the instance that holds their connection. That instance delivers them
    /// when woken ([`crate::delivery::OutboxDelivery`]), and the endpoint takes what waits
    /// for a device when it subscribes to its attributes topic. Without it (one instance), a
    /// notice for a device that is not connected is dropped: the device reads its attributes
    /// when it connects.
    pub fn across_instances(self) -> Self {
        self.registry
            .across_instances
            .store(true, Ordering::Relaxed);
        self
    }
}

impl crate::delivery::ReachesDevices for MqttNotifier {
    fn reaches(&self, device: DeviceId) -> bool {
        self.registry.is_connected(device)
    }
}

impl Default for MqttNotifier {
    fn default() -> Self {
        Self::new(64)
    }
}

#[async_trait]
impl Notifier for MqttNotifier {
    async fn notify(&self, notice: &Notice) -> Result<(), NotifyError> {
        self.registry
            .deliver(notice.device_id(), replies::notice(notice))
    }

    fn reachable_devices(&self) -> Option<Vec<DeviceId>> {
        self.registry
            .is_across_instances()
            .then(|| self.registry.connected_devices())
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
    async fn a_second_connection_takes_over_and_sessions_are_kept_on_request() {
        let notifier = MqttNotifier::new(2);
        let registry = notifier.registry().clone();
        let device = DeviceId::new();
        // Offline: nothing to do, no error.
        notifier.notify(&withdrawal(device)).await.unwrap();

        let mut first = registry.register(device, true);
        assert!(first.restored.is_none());
        notifier.notify(&withdrawal(device)).await.unwrap();
        assert_eq!(
            first.notices.recv().await.unwrap().payload_json().unwrap()["deleted"][0],
            "fw_title"
        );
        let mut second = registry.register(device, false);
        // The first is told to close; notices now go to the second.
        tokio::time::timeout(std::time::Duration::from_secs(5), first.kicked.notified())
            .await
            .unwrap();
        notifier.notify(&withdrawal(device)).await.unwrap();
        assert!(second.notices.recv().await.is_some());
        assert!(first.notices.try_recv().is_err());
        // The first leaving does not unregister the second.
        registry.unregister(device, first.connection, None);
        assert!(registry.is_connected(device));
        // A full queue is reported.
        notifier.notify(&withdrawal(device)).await.unwrap();
        notifier.notify(&withdrawal(device)).await.unwrap();
        assert!(notifier.notify(&withdrawal(device)).await.is_err());

        registry.unregister(
            device,
            second.connection,
            Some(vec![("v1/devices/me/attributes".into(), 1)]),
        );
        assert_eq!(registry.connected_count(), 0);
        let third = registry.register(device, false);
        assert_eq!(
            third.restored,
            Some(vec![("v1/devices/me/attributes".to_string(), 1)])
        );
        registry.unregister(device, third.connection, None);
        let fourth = registry.register(device, false);
        assert!(fourth.restored.is_none());
    }

    #[test]
    fn across_instances_the_notifier_reaches_the_connected_devices_only() {
        use crate::delivery::ReachesDevices;
        let (here, elsewhere) = (DeviceId::new(), DeviceId::new());
        let single = MqttNotifier::default();
        let _kept = single.registry().register(here, true);
        assert_eq!(single.reachable_devices(), None);

        let shared = MqttNotifier::default().across_instances();
        assert_eq!(shared.reachable_devices(), Some(Vec::new()));
        let registration = shared.registry().register(here, true);
        assert_eq!(shared.reachable_devices(), Some(vec![here]));
        assert!(shared.reaches(here) && !shared.reaches(elsewhere));
        shared
            .registry()
            .unregister(here, registration.connection, None);
        assert_eq!(shared.reachable_devices(), Some(Vec::new()));
    }
}
