//! Ending a campaign, resumably: the new state (STOPPED, FINISHED at the finish time, FAILED
//! at the error threshold) is saved first, then the campaign's unfinished updates and pending
//! automatic retries are canceled a page at a time, and devices that were told about their
//! update get the withdrawal notice. When a process dies or a store call fails half-way, the
//! tick finds ended campaigns that still hold unfinished updates and finishes the job; doing
//! it twice changes nothing.

use super::tick::TickReport;
use super::{Ota, OtaError};
use crate::campaign::{Campaign, CampaignState};
use crate::ids::{CampaignId, DeviceId, TenantId};
use crate::notifier::Notice;
use crate::package::PackageKind;
use crate::store::{PageRequest, StoreError, Transition, UpdateFilter};
use crate::update::{self, EventSource, Outcome, UpdateEvent, UpdateState};
use crate::wire;

/// Updates canceled per page while ending a campaign.
const END_PAGE: u32 = 1_000;

impl Ota {
    /// Saves `to` (an ended state) with `reason`, then cancels what the campaign still holds.
    pub(super) async fn end_campaign(
        &self,
        tenant: TenantId,
        id: CampaignId,
        to: CampaignState,
        reason: String,
        audit: super::campaigns::CampaignAudit<'_>,
    ) -> Result<Campaign, OtaError> {
        let c = self
            .set_campaign_state(tenant, id, to, Some(reason), audit)
            .await?;
        self.finish_ending(&c).await?;
        Ok(c)
    }

    /// The tick's part: finishes the cancelling of every ended campaign that still holds
    /// unfinished updates.
    pub(super) async fn resume_campaign_endings(
        &self,
        report: &mut TickReport,
    ) -> Result<(), OtaError> {
        for c in self.store.ended_campaigns_with_live_updates().await? {
            let n = self.finish_ending(&c).await?;
            report.campaigns_ended += u32::from(n > 0);
        }
        Ok(())
    }

    /// Why the updates of the ended campaign `c` are canceled.
    fn ending_reason(c: &Campaign) -> &'static str {
        match c.state {
            CampaignState::Stopped => "the campaign was stopped",
            CampaignState::Failed => "the campaign failed its error threshold",
            _ => "the campaign ended",
        }
    }

    /// Cancels every unfinished update of the ended campaign `c` and drops its pending
    /// automatic retries; devices that had been told about their update get the withdrawal
    /// notice. Idempotent. Returns how many updates changed.
    pub(super) async fn finish_ending(&self, c: &Campaign) -> Result<u64, OtaError> {
        let reason = match (c.state, c.state_reason.as_deref()) {
            (CampaignState::Finished, Some(r)) if r.contains("finish time") => {
                "the campaign's finish time came"
            }
            _ => Self::ending_reason(c),
        };
        let states: Vec<UpdateState> = UpdateState::ALL
            .into_iter()
            .filter(|s| !s.is_terminal() || *s == UpdateState::Failed)
            .collect();
        let filter = UpdateFilter {
            campaign_id: Some(c.id),
            states,
            ..UpdateFilter::default()
        };
        let event = UpdateEvent::Cancel {
            source: EventSource::Campaign,
            reason: reason.to_string(),
        };
        let policy = &c.spec.policy;
        let mut n = 0u64;
        let mut page = PageRequest::first(END_PAGE);
        loop {
            let got = self.store.list_updates(c.tenant_id, &filter, page).await?;
            // Decided here, by the state machine, and written a page at a time.
            let now = self.now();
            let mut batch = Vec::with_capacity(got.items.len());
            for u in &got.items {
                if u.state == UpdateState::Failed && u.retry_at.is_none() {
                    continue;
                }
                match update::apply(u, &event, now, policy) {
                    Outcome::Applied {
                        mut update,
                        history,
                    } => {
                        update.wake_at = Self::wake_at(&update, now, policy);
                        batch.push(Transition {
                            update,
                            expected_revision: u.revision,
                            history,
                        });
                    }
                    Outcome::Ignored { history, .. } | Outcome::Rejected { history, .. } => {
                        self.store.append_history(&history).await?;
                    }
                }
            }
            let mut told: Vec<(DeviceId, PackageKind)> = Vec::new();
            for (t, answer) in batch.iter().zip(self.store.transition_many(&batch).await) {
                let told_before = Self::was_told(&t.history.from, t.update.attempt)
                    && t.history.from != UpdateState::Failed;
                match answer {
                    Ok(()) => {
                        n += 1;
                        if told_before {
                            told.push((t.update.device_id, t.update.kind));
                        }
                    }
                    // Changed meanwhile (a report came in): decide again on what is stored.
                    Err(StoreError::PreconditionFailed { .. }) => {
                        let outcome = self.drive(c.tenant_id, t.update.id, &event).await?;
                        if outcome.applied().is_some() {
                            n += 1;
                            let from = outcome.history().from;
                            if Self::was_told(&from, t.update.attempt)
                                && from != UpdateState::Failed
                            {
                                told.push((t.update.device_id, t.update.kind));
                            }
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            for (device, kind) in told {
                self.withdraw_from(c.tenant_id, device, kind).await;
            }
            match got.next {
                Some(next) => page = next,
                None => break,
            }
        }
        Ok(n)
    }

    /// Sends the deletion of the update attributes of `kind` to a device; a failure is not an
    /// error (the device reads its attributes when it comes back).
    pub(super) async fn withdraw_from(
        &self,
        tenant: TenantId,
        device: DeviceId,
        kind: PackageKind,
    ) {
        let notice = Notice::Withdrawal {
            tenant_id: tenant,
            device_id: device,
            kind,
            keys: wire::deletion_notice(kind),
        };
        let _ = self.notifier.notify(&notice).await;
    }
}
