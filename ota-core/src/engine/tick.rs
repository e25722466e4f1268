//! Driving time: expiring timeouts, starting automatic retries and releasing queued updates
//! under the global pace.

use super::release_together::ReleaseContext;
use super::{Ota, OtaError};
use crate::ids::{CampaignId, PackageId};
use crate::pacing::PaceState;
use crate::package::Package;
use crate::store::{ClaimRequest, QueueScope, StoreError, UpdateFilter};
use crate::update::{EventSource, Outcome, Update, UpdateEvent, UpdatePolicy, UpdateState};
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
    /// Notices the notifier could not hand over (they stay in the outbox and are tried
    /// again when their lease lapses).
    pub notify_failures: u32,
    /// Notices delivered from the outbox that were not delivered when written (a crash cut
    /// their delivery short, the transport failed, or another instance wrote them for a
    /// device this one reaches).
    pub redelivered: u32,
    /// Scheduled campaigns that started.
    pub campaigns_started: u32,
    /// Campaigns that ended (finished, or failed their error threshold).
    pub campaigns_ended: u32,
    /// Scheduled events that ran.
    pub schedules_run: u32,
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
    ///
    /// Notices are delivered through the store's outbox: each release is written together
    /// with its notice, and the tick ends by delivering what still waits there (notices of
    /// releases whose delivery was cut short by a crash, see [`Ota::deliver_notices`]). The
    /// first tick of an engine gives back the claims that an earlier process under the same
    /// [`OtaConfig::instance_id`](super::OtaConfig::instance_id) left behind, so a restarted
    /// engine takes its unfinished work again at once.
    pub async fn tick(&self) -> Result<TickReport, OtaError> {
        let mut report = TickReport::default();
        self.recover_own_claims().await?;
        self.run_due(&mut report).await?;
        self.tick_schedules(&mut report).await?;
        self.tick_campaigns(&mut report).await?;
        self.release_direct(&mut report).await?;
        let (delivered, failed) = self.deliver_notices().await?;
        report.redelivered += delivered;
        report.notify_failures += failed;
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
        let applied = match self.apply_once(update, &event).await {
            Ok(applied) => applied,
            // A retry that lost a race to a newer update of the device (another writer's new
            // assignment came after the retry was judged allowed): the device is busy with
            // that one. Skip it and go on; the next tick drops the retry.
            Err(OtaError::Store(StoreError::Conflict { .. }))
                if matches!(event, UpdateEvent::Retry { .. }) =>
            {
                return self.release(update).await;
            }
            Err(e) => return Err(e),
        };
        match applied {
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

    /// Reserves up to `wanted` release slots of the pace stored under `key`. A pace without
    /// a rate keeps no state worth a write (its window depends on `in_progress` alone), so
    /// its releases are not counted in the store (a ramp, which needs a rate, starts
    /// counting once a rate is set).
    pub(super) async fn reserve_slots(
        &self,
        key: &str,
        pacing: &crate::pacing::Pacing,
        wanted: u32,
        in_progress: u32,
    ) -> Result<u32, OtaError> {
        if pacing.rate.is_none() {
            // Without a rate nothing depends on the stored pace: no round trip.
            return Ok(pacing
                .available(&PaceState::default(), self.now(), in_progress)
                .min(wanted));
        }
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

    /// How many updates are in progress, counted only when `pacing` limits them (its
    /// decisions ignore the count otherwise; 0 then).
    pub(super) async fn in_progress_count(
        &self,
        pacing: &crate::pacing::Pacing,
    ) -> Result<u32, OtaError> {
        if pacing.max_in_progress.is_none() {
            return Ok(0);
        }
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
            let in_progress = self.in_progress_count(pacing).await?;
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
            if pacing.rate.is_none() {
                // No pace to reserve between the claim and the release: both in one step
                // when the store can.
                let policy = self.config.policy.clone();
                let together = self
                    .claim_and_release(room, QueueScope::Direct, &policy, report)
                    .await?;
                if let Some(claimed) = together {
                    if claimed < room as usize {
                        return Ok(());
                    }
                    continue;
                }
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
        // Without a rate nothing depends on the stored pace: no round trip.
        let state = match pacing.rate {
            None => PaceState::default(),
            Some(_) => self
                .store
                .get_pace(key)
                .await?
                .map(|v| v.state)
                .unwrap_or_default(),
        };
        Ok(pacing
            .available(&state, self.now(), in_progress)
            .min(wanted))
    }

    /// Releases the first `granted` of `claimed` and gives the claims on the others back.
    /// The releases (QUEUED -> INITIATED) are written in one store call together with their
    /// notices ([`crate::store::NoticeOutbox::release_with_notices`]); the compare-and-set
    /// makes sure one attempt is released once, whoever else tries. Then the notices this
    /// instance reaches are handed to the notifier and marked delivered. Every update is
    /// handled even when one fails; the first error is returned after.
    pub(super) async fn dispatch_batch(
        &self,
        claimed: &[Update],
        granted: usize,
        report: &mut TickReport,
    ) -> Result<(), OtaError> {
        let granted = granted.min(claimed.len());
        // Each package and policy is read once per batch.
        let mut packages: HashMap<PackageId, Option<Arc<Package>>> = HashMap::new();
        let mut policies: HashMap<Option<CampaignId>, Arc<UpdatePolicy>> = HashMap::new();
        for u in &claimed[..granted] {
            if let Entry::Vacant(slot) = packages.entry(u.package_id) {
                match self.store.get_package(u.tenant_id, u.package_id).await {
                    Ok(p) => slot.insert(Some(Arc::new(p))),
                    Err(e) if e.is_not_found() => slot.insert(None),
                    Err(e) => return Err(e.into()),
                };
            }
            if let Entry::Vacant(slot) = policies.entry(u.campaign_id) {
                slot.insert(self.policy_for(u).await?);
            }
        }
        let reach = self.reach();
        let lease = self.notice_lease();
        let context = ReleaseContext {
            now: self.now(),
            reach: &reach,
            lease: &lease,
        };
        let mut releases = Vec::new();
        let mut alone = Vec::new();
        for u in &claimed[..granted] {
            let package = packages.get(&u.package_id).cloned().flatten();
            let planned = policies
                .get(&u.campaign_id)
                .and_then(|policy| context.plan(u, package.as_deref(), policy));
            match planned {
                Some(release) => releases.push(release),
                None => alone.push(u),
            }
        }
        let mut first_error = None;
        let mut to_deliver = Vec::new();
        if !releases.is_empty() {
            let answers = self.store.release_with_notices(&releases).await;
            for (r, answer) in releases.into_iter().zip(answers) {
                match answer {
                    Ok(()) => {
                        report.released += 1;
                        if r.lease.is_some() {
                            to_deliver.push(r.notice);
                        }
                    }
                    // Another writer came first: the release is theirs.
                    Err(StoreError::PreconditionFailed { .. }) => {}
                    Err(e) => {
                        first_error.get_or_insert(e.into());
                    }
                }
            }
        }
        for u in alone {
            let package = packages.get(&u.package_id).cloned().flatten();
            if let Err(e) = self.dispatch_alone(u, package.as_deref()).await {
                first_error.get_or_insert(e);
            }
        }
        match self.deliver(to_deliver).await {
            Ok((_, failed)) => report.notify_failures += failed,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
        for update in &claimed[granted..] {
            if let Err(e) = self.release(update).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// A claimed update that is not released after all: its package no longer exists (it
    /// fails), or the state machine decided otherwise (recorded, claim given back).
    pub(super) async fn dispatch_alone(
        &self,
        update: &Update,
        package: Option<&Package>,
    ) -> Result<(), OtaError> {
        let event = match package {
            None => UpdateEvent::Fail {
                source: EventSource::Server,
                reason: format!("package {} no longer exists", update.package_id),
            },
            Some(_) => UpdateEvent::Dispatched,
        };
        match self.apply_once(update, &event).await? {
            Some(Outcome::Applied { .. }) | None => {}
            Some(_) => self.release(update).await?,
        }
        Ok(())
    }
}
