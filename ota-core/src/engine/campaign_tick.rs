//! What a tick does for active campaigns: start at the start time, waves, error threshold,
//! finish, releases within maintenance windows and paces.

use super::tick::{TickReport, GLOBAL_PACE_KEY};
use super::{Ota, OtaError};
use crate::campaign::rollout::next_wave_due;
use crate::campaign::{Campaign, CampaignState, ThresholdAction};
use crate::store::{ClaimRequest, PageRequest, QueueScope, UpdateFilter};
use crate::update::UpdateState;

/// How a pause or failure by the error threshold is explained (the start of the campaign's
/// `state_reason`).
pub(super) const THRESHOLD_REASON: &str = "error threshold reached";

impl Ota {
    /// What a tick does for every active campaign.
    pub(super) async fn tick_campaigns(&self, report: &mut TickReport) -> Result<(), OtaError> {
        self.resume_campaign_endings(report).await?;
        for c in self.store.active_campaigns().await? {
            match self.tick_campaign(c, report).await {
                Ok(()) => {}
                // Another engine changed it meanwhile; the next tick looks again.
                Err(OtaError::CampaignContention { .. }) | Err(OtaError::IllegalTransition(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn tick_campaign(&self, c: Campaign, report: &mut TickReport) -> Result<(), OtaError> {
        let now = self.now();
        let (tenant, id) = (c.tenant_id, c.id);
        if c.state == CampaignState::Scheduled {
            if c.spec.start_at.is_none_or(|at| at <= now) {
                self.run_campaign(&c, None).await?;
                report.campaigns_started += 1;
            }
            return Ok(());
        }
        if c.spec.finish_at.is_some_and(|at| at <= now) {
            self.end_campaign(
                tenant,
                id,
                CampaignState::Finished,
                "the finish time came".into(),
                None,
            )
            .await?;
            report.campaigns_ended += 1;
            return Ok(());
        }
        let stats = self.store.campaign_stats(tenant, id).await?;
        if let Some(threshold) = &c.spec.error_threshold {
            if c.state == CampaignState::Running && threshold.decide(&stats.counts).is_some() {
                // Only final failures count: attempts waiting for an automatic retry do not.
                let pending = self.count_pending_retries(&c).await?;
                let baseline = c.threshold_baseline.as_ref();
                if let Some(action) = threshold.decide_final(&stats.counts, pending, baseline) {
                    let reason = format!(
                        "{THRESHOLD_REASON}: {} failed of {} finished",
                        stats.counts.failed() - pending,
                        stats.counts.finished() - pending
                    );
                    match action {
                        ThresholdAction::Pause => {
                            self.set_campaign_state(
                                tenant,
                                id,
                                CampaignState::Paused,
                                Some(reason),
                                None,
                            )
                            .await?;
                        }
                        ThresholdAction::Fail => {
                            self.end_campaign(tenant, id, CampaignState::Failed, reason, None)
                                .await?;
                            report.campaigns_ended += 1;
                        }
                    }
                    return Ok(());
                }
            }
        }
        let mut c = c;
        if !c.in_last_wave() {
            let released = stats.up_to_wave(c.current_wave as usize);
            if next_wave_due(
                &c.spec.waves,
                c.current_wave as usize,
                &released,
                c.wave_started_at,
                now,
            ) {
                let wave = c.current_wave;
                c = self
                    .change_campaign(tenant, id, None, |x| {
                        if x.current_wave == wave && !x.in_last_wave() {
                            x.current_wave += 1;
                            x.wave_started_at = Some(now);
                        }
                        Ok(())
                    })
                    .await?;
            }
        }
        // A dynamic campaign runs until its finish time or an operator's stop: devices that
        // join its target later are taken.
        let settled = stats.counts.not_started() == 0 && stats.counts.ongoing() == 0;
        if !c.spec.dynamic
            && c.in_last_wave()
            && settled
            && self.count_pending_retries(&c).await? == 0
        {
            self.set_campaign_state(
                tenant,
                id,
                CampaignState::Finished,
                Some("every device finished".into()),
                None,
            )
            .await?;
            report.campaigns_ended += 1;
            return Ok(());
        }
        if c.state == CampaignState::Running && self.inside_window(&c, now) {
            self.release_campaign(&c, stats.counts.ongoing(), report)
                .await?;
        }
        Ok(())
    }

    fn inside_window(&self, c: &Campaign, now: crate::clock::Timestamp) -> bool {
        c.spec.windows.is_empty() || c.spec.windows.iter().any(|w| w.contains(now))
    }

    /// How many FAILED updates of the campaign wait for an automatic retry.
    pub(super) async fn count_pending_retries(&self, c: &Campaign) -> Result<u64, OtaError> {
        if c.spec.policy.retry.max_attempts <= 1 {
            return Ok(0);
        }
        let filter = UpdateFilter {
            campaign_id: Some(c.id),
            states: vec![UpdateState::Failed],
            ..UpdateFilter::default()
        };
        let mut n = 0u64;
        let mut page = PageRequest::first(1_000);
        loop {
            let got = self.store.list_updates(c.tenant_id, &filter, page).await?;
            n += got.items.iter().filter(|u| u.retry_at.is_some()).count() as u64;
            match got.next {
                Some(next) => page = next,
                None => return Ok(n),
            }
        }
    }

    /// Releases queued updates of the campaign's released waves under its own pace and the
    /// global pace.
    async fn release_campaign(
        &self,
        c: &Campaign,
        campaign_in_progress: u64,
        report: &mut TickReport,
    ) -> Result<(), OtaError> {
        let key = c.pace_key();
        let own_in_progress = u32::try_from(campaign_in_progress).unwrap_or(u32::MAX);
        for _ in 0..self.config.max_batches_per_tick {
            let global_in_progress = self.in_progress_count(&self.config.global_pacing).await?;
            let room = self
                .peek_slots(
                    &key,
                    &c.spec.pacing,
                    self.config.claim_batch,
                    own_in_progress,
                )
                .await?
                .min(
                    self.peek_slots(
                        GLOBAL_PACE_KEY,
                        &self.config.global_pacing,
                        self.config.claim_batch,
                        global_in_progress,
                    )
                    .await?,
                );
            if room == 0 {
                return Ok(());
            }
            let request = ClaimRequest {
                now: self.now(),
                limit: room,
                owner: self.config.instance_id.clone(),
                lease: self.config.claim_lease,
            };
            let scope = QueueScope::Campaign {
                id: c.id,
                up_to_wave: c.current_wave,
            };
            if c.spec.pacing.rate.is_none() && self.config.global_pacing.rate.is_none() {
                // No pace to reserve between the claim and the release: both in one step
                // when the store can.
                let together = self
                    .claim_and_release(room, scope, &c.spec.policy, report)
                    .await?;
                if let Some(claimed) = together {
                    if claimed < room as usize {
                        return Ok(());
                    }
                    continue;
                }
            }
            let claimed = self.store.claim_queued(&request, scope).await?;
            if claimed.is_empty() {
                return Ok(());
            }
            let wanted = u32::try_from(claimed.len()).unwrap_or(u32::MAX);
            let own = self
                .reserve_slots(&key, &c.spec.pacing, wanted, own_in_progress)
                .await?;
            let granted = self
                .reserve_slots(
                    GLOBAL_PACE_KEY,
                    &self.config.global_pacing,
                    own,
                    global_in_progress,
                )
                .await? as usize;
            self.dispatch_batch(&claimed, granted, report).await?;
            if granted < claimed.len() || claimed.len() < room as usize {
                return Ok(());
            }
        }
        Ok(())
    }
}
