//! Delivering notices through the store's outbox ([`crate::store::NoticeOutbox`]): a notice
//! is stored before the notifier sees it and removed only once the notifier took it, so a
//! process that dies in between loses no notice; it is delivered again once its lease lapses
//! (or at once by the restarted engine of the same instance id, see [`Ota::tick`]).

use super::{Ota, OtaError};
use crate::ids::DeviceId;
use crate::notifier::Notice;
use crate::store::{NoticeClaim, NoticeLease, OutboxEntry};
use futures_util::StreamExt;
use std::collections::HashSet;

/// The devices the notifier reaches from this instance (`None`: every device).
pub(super) struct Reach(Option<HashSet<DeviceId>>);

impl Reach {
    pub(super) fn contains(&self, device: DeviceId) -> bool {
        self.0.as_ref().is_none_or(|d| d.contains(&device))
    }
}

impl Ota {
    /// A lease on notices for this instance, from now.
    pub(super) fn notice_lease(&self) -> NoticeLease {
        let now = self.now();
        NoticeLease {
            owner: self.config.instance_id.clone(),
            until: now
                .checked_add_signed(self.config.claim_lease)
                .unwrap_or(now),
        }
    }

    pub(super) fn reach(&self) -> Reach {
        Reach(
            self.notifier
                .reachable_devices()
                .map(|d| d.into_iter().collect()),
        )
    }

    /// Writes `notice` to the outbox and, when this instance reaches its device, delivers it
    /// at once. Errors are the store's: a notice that could not be handed to the notifier
    /// stays in the outbox and is tried again later.
    pub(super) async fn send_notice(&self, notice: Notice) -> Result<(), OtaError> {
        let entry = OutboxEntry::new(notice, self.now());
        let lease = self
            .reach()
            .contains(entry.notice.device_id())
            .then(|| self.notice_lease());
        self.store.enqueue_notice(&entry, lease.as_ref()).await?;
        if lease.is_some() {
            self.deliver(vec![entry]).await?;
        }
        Ok(())
    }

    /// Hands `entries` (held by this instance) to the notifier, up to
    /// [`OtaConfig::concurrency`](super::OtaConfig::concurrency) at once, and marks the
    /// delivered ones. Returns (delivered, failed); a failed one stays in the outbox under
    /// this instance's lease and is tried again when the lease lapses.
    pub(super) async fn deliver(&self, entries: Vec<OutboxEntry>) -> Result<(u32, u32), OtaError> {
        if entries.is_empty() {
            return Ok((0, 0));
        }
        let results: Vec<_> = futures_util::stream::iter(entries)
            .map(|e| async move { (e.id, self.notifier.notify(&e.notice).await.is_ok()) })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        let delivered: Vec<_> = results.iter().filter(|r| r.1).map(|r| r.0).collect();
        let failed = results.len() - delivered.len();
        self.store.mark_delivered(&delivered).await?;
        Ok((
            u32::try_from(delivered.len()).unwrap_or(u32::MAX),
            u32::try_from(failed).unwrap_or(u32::MAX),
        ))
    }

    /// Delivers what waits in the outbox for the devices this instance reaches (see
    /// [`crate::notifier::Notifier::reachable_devices`]): notices whose delivery was cut
    /// short by a crash or a failed transport, and notices written by other instances for
    /// devices connected here. [`Ota::tick`] calls it; returns (delivered, failed).
    pub async fn deliver_notices(&self) -> Result<(u32, u32), OtaError> {
        let devices = self.notifier.reachable_devices();
        self.deliver_claimed(devices).await
    }

    /// Delivers what waits in the outbox for `devices` (a subset of those this instance
    /// reaches). For an instance told that notices were written for devices connected to it
    /// (the PostgreSQL store's `NOTIFY`). Returns (delivered, failed).
    pub async fn deliver_notices_for(&self, devices: &[DeviceId]) -> Result<(u32, u32), OtaError> {
        if devices.is_empty() {
            return Ok((0, 0));
        }
        self.deliver_claimed(Some(devices.to_vec())).await
    }

    async fn deliver_claimed(
        &self,
        devices: Option<Vec<DeviceId>>,
    ) -> Result<(u32, u32), OtaError> {
        let (mut delivered, mut failed) = (0, 0);
        for _ in 0..self.config.max_batches_per_tick {
            let claim = NoticeClaim {
                now: self.now(),
                limit: self.config.claim_batch,
                owner: self.config.instance_id.clone(),
                lease: self.config.claim_lease,
                devices: devices.clone(),
            };
            let claimed = self.store.claim_notices(&claim).await?;
            let full = claimed.len() as u32 >= self.config.claim_batch;
            let (d, f) = self.deliver(claimed).await?;
            delivered += d;
            failed += f;
            if !full {
                break;
            }
        }
        Ok((delivered, failed))
    }

    /// Gives back, once per engine, the claims an earlier process under this instance id
    /// left behind (it died: the work is taken again at once instead of when the leases
    /// lapse). Called at the start of every tick; does something only the first time.
    pub(super) async fn recover_own_claims(&self) -> Result<(), OtaError> {
        use std::sync::atomic::Ordering;
        if self.claims_recovered.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if let Err(e) = self.store.release_claims_of(&self.config.instance_id).await {
            self.claims_recovered.store(false, Ordering::Release);
            return Err(e.into());
        }
        Ok(())
    }
}
