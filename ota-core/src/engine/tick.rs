//! Driving time: expiring timeouts, starting automatic retries and releasing queued updates
//! under the global pace.

use super::{Ota, OtaError};
use crate::ids::PackageId;
use crate::notifier::Notice;
use crate::pacing::PaceState;
use crate::package::Package;
use crate::store::{ClaimRequest, QueueScope, StoreError, UpdateFilter};
use crate::update::{EventSource, Outcome, Update, UpdateEvent, UpdateState};
use crate::wire;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

/// The store key of the global pace.
pub(super) const GLOBAL_PACE_KEY: &str = "global";

/// What one [`Ota::tick`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickReport {
    /// Updates failed because their state timed out.
    pub timed_out: u32,
    /// Failed updates that started a new attempt (automatic retry).
    pub retried: u32,
    /// Queued updates released to their devices (INITIATED and notified).
    pub released: u32,
    /// Notices the notifier could not hand over (the devices read them when they return).
    pub notify_failures: u32,
    /// Scheduled campaigns that started.
    pub campaigns_started: u32,
    /// Campaigns that ended (finished, or failed their error threshold).
    pub campaigns_ended: u32,
    /// Scheduled events that ran.
    pub schedules_run: u32,
}

impl TickReport {
    /// Adds the counts of `other`.
    fn absorb(&mut self, other: &TickReport) {
        self.timed_out += other.timed_out;
        self.retried += other.retried;
        self.released += other.released;
        self.notify_failures += other.notify_failures;
        self.campaigns_started += other.campaigns_started;
        self.campaigns_ended += other.campaigns_ended;
        self.schedules_run += other.schedules_run;
    }
}

impl Ota {
    fn claim_request(&self, limit: u32) -> ClaimRequest {
        ClaimRequest {
            now: self.now(),
            limit,
            owner: self.config.instance_id.clone(),
            lease: self.config.claim_lease,
        }
    }

    /// Does what is due at the clock's current time: fails updates whose state timed out,
    /// starts automatic retries, and releases queued updates as the global pace allows
    /// (notifying their devices). Safe to call from several engines sharing a store.
    pub async fn tick(&self) -> Result<TickReport, OtaError> {
        let mut report = TickReport::default();
        self.run_due(&mut report).await?;
        self.tick_schedules(&mut report).await?;
        self.tick_campaigns(&mut report).await?;
        self.release_direct(&mut report).await?;
        Ok(report)
    }

    async fn run_due(&self, report: &mut TickReport) -> Result<(), OtaError> {
        for _ in 0..self.config.max_batches_per_tick {
            let claimed = self
                .store
                .claim_due(&self.claim_request(self.config.claim_batch))
                .await?;
            let full = claimed.len() as u32 >= self.config.claim_batch;
            for update in &claimed {
                self.run_due_one(update, report).await?;
            }
            if !full {
                break;
            }
        }
        Ok(())
    }

    async fn run_due_one(&self, update: &Update, report: &mut TickReport) -> Result<(), OtaError> {
        let now = self.now();
        let event = if update.state == UpdateState::Failed {
            if update.retry_at.is_some_and(|t| t <= now) {
                if self.drop_refused_retry(update).await? {
                    return Ok(());
                }
                UpdateEvent::Retry {
                    source: EventSource::Retry,
                }
            } else {
                return self.release(update).await;
            }
        } else {
            UpdateEvent::CheckTimeout
        };
        match self.apply_once(update, &event).await? {
            Some(Outcome::Applied { update: next, .. }) => {
                if next.state == UpdateState::Queued {
                    report.retried += 1;
                } else if next.state == UpdateState::Failed {
                    report.timed_out += 1;
                }
            }
            Some(_) => self.release(update).await?,
            None => {}
        }
        Ok(())
    }

    pub(super) async fn release(&self, update: &Update) -> Result<(), OtaError> {
        self.store
            .release_claim(update.tenant_id, update.id, &self.config.instance_id)
            .await?;
        Ok(())
    }

    /// Reserves up to `wanted` release slots of the pace stored under `key`.
    pub(super) async fn reserve_slots(
        &self,
        key: &str,
        pacing: &crate::pacing::Pacing,
        wanted: u32,
        in_progress: u32,
    ) -> Result<u32, OtaError> {
        for _ in 0..=self.config.max_cas_retries {
            let now = self.now();
            let stored = self.store.get_pace(key).await?;
            let (mut state, version) = match stored {
                Some(v) => (v.state, Some(v.version)),
                None => (PaceState::default(), None),
            };
            let n = pacing.available(&state, now, in_progress).min(wanted);
            if n == 0 {
                return Ok(0);
            }
            pacing.commit(&mut state, now, n);
            match self.store.put_pace(key, version, &state).await {
                Ok(_) => return Ok(n),
                Err(StoreError::PreconditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(0)
    }

    pub(super) async fn in_progress_count(&self) -> Result<u32, OtaError> {
        let filter = UpdateFilter {
            states: UpdateState::ALL
                .into_iter()
                .filter(|s| s.is_in_progress())
                .collect(),
            ..UpdateFilter::default()
        };
        let n = self.store.count_updates(None, &filter).await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Releases queued direct updates as the global pace allows. Claims first (as many as
    /// the pace would allow now), then reserves exactly as many slots as were claimed, so
    /// that an empty queue never uses up the pace; claims beyond the reserved slots (another
    /// engine took them meanwhile) are given back.
    async fn release_direct(&self, report: &mut TickReport) -> Result<(), OtaError> {
        let pacing = &self.config.global_pacing;
        for _ in 0..self.config.max_batches_per_tick {
            let in_progress = self.in_progress_count().await?;
            let room = self
                .peek_slots(
                    GLOBAL_PACE_KEY,
                    pacing,
                    self.config.claim_batch,
                    in_progress,
                )
                .await?;
            if room == 0 {
                return Ok(());
            }
            let claimed = self
                .store
                .claim_queued(&self.claim_request(room), QueueScope::Direct)
                .await?;
            if claimed.is_empty() {
                return Ok(());
            }
            let wanted = u32::try_from(claimed.len()).unwrap_or(u32::MAX);
            let granted = self
                .reserve_slots(GLOBAL_PACE_KEY, pacing, wanted, in_progress)
                .await? as usize;
            self.dispatch_batch(&claimed, granted, report).await?;
            if granted < claimed.len() || claimed.len() < room as usize {
                return Ok(());
            }
        }
        Ok(())
    }

    /// How many slots of the pace under `key` are free now (up to `wanted`), without taking
    /// them.
    pub(super) async fn peek_slots(
        &self,
        key: &str,
        pacing: &crate::pacing::Pacing,
        wanted: u32,
        in_progress: u32,
    ) -> Result<u32, OtaError> {
        let state = self
            .store
            .get_pace(key)
            .await?
            .map(|v| v.state)
            .unwrap_or_default();
        Ok(pacing
            .available(&state, self.now(), in_progress)
            .min(wanted))
    }

    /// Dispatches the first `granted` of `claimed` (see [`Ota::dispatch`]), up to
    /// [`OtaConfig::concurrency`](super::OtaConfig::concurrency) at once, and gives the claims
    /// on the others back. Every update is handled even when one fails; the first error is
    /// returned after.
    pub(super) async fn dispatch_batch(
        &self,
        claimed: &[Update],
        granted: usize,
        report: &mut TickReport,
    ) -> Result<(), OtaError> {
        let granted = granted.min(claimed.len());
        // Each package is read once per batch.
        let mut packages: HashMap<PackageId, Option<Arc<Package>>> = HashMap::new();
        for u in &claimed[..granted] {
            if let Entry::Vacant(slot) = packages.entry(u.package_id) {
                match self.store.get_package(u.tenant_id, u.package_id).await {
                    Ok(p) => slot.insert(Some(Arc::new(p))),
                    Err(e) if e.is_not_found() => slot.insert(None),
                    Err(e) => return Err(e.into()),
                };
            }
        }
        let packages = &packages;
        let outcomes: Vec<Result<TickReport, OtaError>> =
            futures_util::stream::iter(claimed[..granted].iter())
                .map(|u| async move {
                    let mut one = TickReport::default();
                    let package = packages.get(&u.package_id).cloned().flatten();
                    self.dispatch(u, package.as_deref(), &mut one)
                        .await
                        .map(|()| one)
                })
                .buffer_unordered(self.config.concurrency.max(1))
                .collect()
                .await;
        let mut first_error = None;
        for outcome in outcomes {
            match outcome {
                Ok(one) => report.absorb(&one),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        for update in &claimed[granted..] {
            if let Err(e) = self.release(update).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Moves a claimed QUEUED update to INITIATED and notifies its device. The compare-and-set
    /// makes sure one attempt is notified once, whoever else tries. `package` is the update's
    /// package, `None` when it no longer exists (the update fails).
    async fn dispatch(
        &self,
        update: &Update,
        package: Option<&Package>,
        report: &mut TickReport,
    ) -> Result<(), OtaError> {
        let Some(package) = package else {
            let event = UpdateEvent::Fail {
                source: EventSource::Server,
                reason: format!("package {} no longer exists", update.package_id),
            };
            self.apply_once(update, &event).await?;
            return Ok(());
        };
        match self.apply_once(update, &UpdateEvent::Dispatched).await? {
            Some(Outcome::Applied { update: next, .. }) if next.state == UpdateState::Initiated => {
                report.released += 1;
                let notice = Notice::Update {
                    tenant_id: next.tenant_id,
                    device_id: next.device_id,
                    kind: next.kind,
                    attributes: wire::update_notice(package),
                };
                if self.notifier.notify(&notice).await.is_err() {
                    report.notify_failures += 1;
                }
            }
            Some(_) => self.release(update).await?,
            None => {}
        }
        Ok(())
    }
}
