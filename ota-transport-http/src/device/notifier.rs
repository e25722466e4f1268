//! The HTTP [`Notifier`]: notices wake the long-poll waiters of their device.
//!
//! Each device with at least one waiter has a slot holding a `tokio::sync::watch` channel of
//! its most recent notices (a few, capped); a waiter is a receiver and a timer, so thousands of
//! idle waiters cost memory only. A notice for a device with no waiter is dropped: the device
//! reads its current shared attributes (derived from the store) when it asks. The slot goes
//! away with its last waiter, so nothing grows.

use super::merged_notices::merge;
use async_trait::async_trait;
use ota_core::notifier::{Notice, Notifier, NotifyError};
use ota_core::DeviceId;
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Notices kept per device slot for waiters that are about to read them.
const RECENT: usize = 8;

#[derive(Debug, Default)]
struct Feed {
    /// Sequence number of the newest notice.
    seq: u64,
    /// The newest notices with their sequence numbers, oldest first.
    recent: VecDeque<(u64, Arc<Notice>)>,
    /// Set when waiters are released without a notice (shutdown).
    released: bool,
}

#[derive(Debug, Default)]
struct Registry {
    slots: Mutex<HashMap<DeviceId, watch::Sender<Feed>>>,
}

/// Delivers notices to the devices waiting on `GET /api/v1/{token}/attributes/updates`.
/// Cheap to clone; give one clone to the engine ([`ota_core::engine::Ota::new`]) and one to
/// [`super::DeviceApiOptions::new`].
#[derive(Clone, Debug, Default)]
pub struct HttpNotifier {
    registry: Arc<Registry>,
}

impl HttpNotifier {
    /// A notifier with no waiters.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many long-poll requests wait for `device` now.
    pub fn waiters(&self, device: DeviceId) -> usize {
        let slots = self.lock();
        slots.get(&device).map_or(0, |tx| tx.receiver_count())
    }

    /// How many devices have at least one waiter now.
    pub fn waiting_devices(&self) -> usize {
        self.lock().len()
    }

    /// The devices with at least one waiter now (the devices this instance can tell at once).
    pub fn waiting_device_ids(&self) -> Vec<DeviceId> {
        self.lock().keys().copied().collect()
    }

    /// Answers every waiting long-poll now (with an empty body, as at its timeout); for a
    /// graceful shutdown, which otherwise waits for them to time out.
    pub fn release_all(&self) {
        let slots = self.lock();
        for tx in slots.values() {
            tx.send_modify(|f| f.released = true);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceId, watch::Sender<Feed>>> {
        self.registry
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a waiter for `device`.
    pub(crate) fn subscribe(&self, device: DeviceId) -> Waiter {
        let mut slots = self.lock();
        let tx = slots
            .entry(device)
            .or_insert_with(|| watch::channel(Feed::default()).0);
        let mut rx = tx.subscribe();
        let seen = rx.borrow_and_update().seq;
        Waiter {
            notifier: self.clone(),
            device,
            rx: Some(rx),
            seen,
        }
    }

    fn deliver(&self, notice: &Notice) {
        let tx = self.lock().get(&notice.device_id()).cloned();
        if let Some(tx) = tx {
            let notice = Arc::new(notice.clone());
            tx.send_modify(|feed| {
                feed.seq += 1;
                feed.recent.push_back((feed.seq, notice));
                while feed.recent.len() > RECENT {
                    feed.recent.pop_front();
                }
            });
        }
    }
}

#[async_trait]
impl Notifier for HttpNotifier {
    async fn notify(&self, notice: &Notice) -> Result<(), NotifyError> {
        self.deliver(notice);
        Ok(())
    }
}

/// One long-poll request waiting for its device's notices. Leaving (by answer, timeout or a
/// dropped connection) removes the device's slot when it was the last waiter.
#[derive(Debug)]
pub(crate) struct Waiter {
    notifier: HttpNotifier,
    device: DeviceId,
    rx: Option<watch::Receiver<Feed>>,
    seen: u64,
}

impl Waiter {
    /// Waits up to `timeout` for notices; returns ThingsBoard's attribute update body
    /// (`{"fw_title": .., "deleted": [..]}`) merged from every notice since the waiter
    /// registered, or `None` at the timeout.
    pub(crate) async fn wait(mut self, timeout: Duration) -> Option<Map<String, Value>> {
        let rx = self.rx.as_mut()?;
        let seen = self.seen;
        let woke = tokio::time::timeout(timeout, async {
            loop {
                if rx.changed().await.is_err() {
                    return None;
                }
                let feed = rx.borrow_and_update();
                if feed.seq > seen {
                    return Some(merge(
                        feed.recent
                            .iter()
                            .filter(|(s, _)| *s > seen)
                            .map(|(_, n)| n.as_ref()),
                    ));
                }
                if feed.released {
                    return None;
                }
            }
        })
        .await;
        woke.ok().flatten()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut slots = self.notifier.lock();
        if slots
            .get(&self.device)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            slots.remove(&self.device);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_core::{PackageKind, TenantId};
    use serde_json::json;

    fn update(device: DeviceId, title: &str) -> Notice {
        let mut attributes = Map::new();
        attributes.insert("fw_title".into(), json!(title));
        attributes.insert("fw_version".into(), json!("1"));
        Notice::Update {
            tenant_id: TenantId::new(),
            device_id: device,
            kind: PackageKind::Firmware,
            attributes,
        }
    }

    fn withdrawal(device: DeviceId) -> Notice {
        Notice::Withdrawal {
            tenant_id: TenantId::new(),
            device_id: device,
            kind: PackageKind::Firmware,
            keys: vec!["fw_title".into(), "fw_version".into()],
        }
    }

    #[tokio::test]
    async fn a_notice_wakes_the_waiters_of_its_device_only() {
        let n = HttpNotifier::new();
        let (a, b) = (DeviceId::new(), DeviceId::new());
        let wa1 = n.subscribe(a);
        let wa2 = n.subscribe(a);
        let wb = n.subscribe(b);
        assert_eq!(n.waiters(a), 2);
        assert_eq!(n.waiting_devices(), 2);
        n.notify(&update(a, "x")).await.unwrap();
        let long = Duration::from_secs(3600);
        assert_eq!(wa1.wait(long).await.unwrap()["fw_title"], json!("x"));
        assert_eq!(wa2.wait(long).await.unwrap()["fw_title"], json!("x"));
        assert_eq!(n.waiters(a), 0);
        assert_eq!(wb.wait(Duration::from_millis(1)).await, None);
        assert_eq!(n.waiting_devices(), 0, "slots go with their last waiter");
    }

    #[tokio::test]
    async fn notices_without_waiters_leave_nothing_behind() {
        let n = HttpNotifier::new();
        for _ in 0..1000 {
            n.notify(&update(DeviceId::new(), "x")).await.unwrap();
        }
        assert_eq!(n.waiting_devices(), 0);
        // A waiter registered after a notice does not see it.
        let d = DeviceId::new();
        n.notify(&update(d, "old")).await.unwrap();
        let w = n.subscribe(d);
        assert_eq!(w.wait(Duration::from_millis(1)).await, None);
    }

    #[tokio::test]
    async fn notices_arriving_together_are_merged_latest_first() {
        let n = HttpNotifier::new();
        let d = DeviceId::new();
        let w = n.subscribe(d);
        n.notify(&update(d, "a")).await.unwrap();
        n.notify(&withdrawal(d)).await.unwrap();
        n.notify(&update(d, "b")).await.unwrap();
        let body = w.wait(Duration::from_secs(3600)).await.unwrap();
        assert_eq!(
            body,
            json!({"fw_title": "b", "fw_version": "1"})
                .as_object()
                .unwrap()
                .clone()
        );
        let w = n.subscribe(d);
        n.notify(&withdrawal(d)).await.unwrap();
        let body = w.wait(Duration::from_secs(3600)).await.unwrap();
        assert_eq!(
            Value::Object(body),
            json!({"deleted": ["fw_title", "fw_version"]})
        );
    }

    #[tokio::test]
    async fn release_all_answers_waiters_without_a_notice() {
        let n = HttpNotifier::new();
        let d = DeviceId::new();
        let w = n.subscribe(d);
        let task = tokio::spawn(w.wait(Duration::from_secs(3600)));
        while n.waiters(d) == 0 {
            tokio::task::yield_now().await;
        }
        n.release_all();
        assert_eq!(task.await.unwrap(), None);
        assert_eq!(n.waiting_devices(), 0);
    }

    #[tokio::test]
    async fn ten_thousand_waiters_wake_and_leave_nothing() {
        let n = HttpNotifier::new();
        let devices: Vec<DeviceId> = (0..1000).map(|_| DeviceId::new()).collect();
        let mut tasks = Vec::new();
        for d in &devices {
            for _ in 0..10 {
                let waiter = n.subscribe(*d);
                tasks.push(tokio::spawn(waiter.wait(Duration::from_secs(3600))));
            }
        }
        assert_eq!(n.waiting_devices(), 1000);
        assert!(devices.iter().all(|d| n.waiters(*d) == 10));
        for d in &devices {
            n.notify(&update(*d, "x")).await.unwrap();
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap()["fw_title"], json!("x"));
        }
        assert_eq!(n.waiting_devices(), 0);
    }
}
