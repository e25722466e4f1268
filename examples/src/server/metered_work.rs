//! [`MeteredStore`] for the traits of the work itself: updates, campaigns, schedules, the
//! notice outbox, claim recovery and retention.

use super::metered::{timed, MeteredStore, Unavailable};
use ota_core::audit::AuditEntry;
use ota_core::campaign::{Campaign, CampaignState, CampaignStats};
use ota_core::ids::{CampaignId, DeviceId, ScheduleId, TenantId, UpdateId};
use ota_core::schedule::ScheduledEvent;
use ota_core::store::{
    AuditedTransition, CampaignStore, ClaimRecovery, ClaimRequest, ClaimedReleases, Materialized,
    NoticeClaim, NoticeId, NoticeLease, NoticeOutbox, OutboxEntry, Page, PageRequest, PlanRelease,
    QueueScope, Release, RetainedLog, RetentionStore, ScheduleStore, StoreError, Transition,
    UpdateFilter, UpdateStore,
};
use ota_core::update::HistoryEntry;
use ota_core::{Device, Package, PackageKind, Timestamp, TitleVersion, Update};
use std::time::Instant;

#[ota_core::async_trait]
impl UpdateStore for MeteredStore {
    async fn create_updates(&self, updates: &[Update]) -> Result<(), StoreError> {
        timed!(self, "create_updates", self.inner.create_updates(updates))
    }

    async fn transition(
        &self,
        update: &Update,
        expected_revision: u64,
        history: &HistoryEntry,
    ) -> Result<(), StoreError> {
        let answer = timed!(
            self,
            "transition",
            self.inner.transition(update, expected_revision, history)
        );
        if answer.is_ok() {
            self.count_history(history);
        }
        answer
    }

    async fn transition_with_current(
        &self,
        update: &Update,
        expected_revision: u64,
        history: &HistoryEntry,
        current: &TitleVersion,
    ) -> Option<Result<(), StoreError>> {
        let answer = timed!(
            self,
            "transition_with_current",
            self.inner
                .transition_with_current(update, expected_revision, history, current)
        );
        if matches!(answer, Some(Ok(()))) {
            self.count_history(history);
        }
        answer
    }

    async fn transition_audited(
        &self,
        write: &AuditedTransition,
    ) -> Option<Result<(), StoreError>> {
        let answer = timed!(
            self,
            "transition_audited",
            self.inner.transition_audited(write)
        );
        if matches!(answer, Some(Ok(()))) {
            self.count_history(&write.transition.history);
        }
        answer
    }

    async fn transition_many(&self, batch: &[Transition]) -> Vec<Result<(), StoreError>> {
        let answers = timed!(self, "transition_many", self.inner.transition_many(batch));
        for (t, answer) in batch.iter().zip(&answers) {
            if answer.is_ok() {
                self.count_history(&t.history);
            }
        }
        answers
    }

    async fn append_history(&self, entry: &HistoryEntry) -> Result<(), StoreError> {
        let answer = timed!(self, "append_history", self.inner.append_history(entry));
        if answer.is_ok() {
            self.count_history(entry);
        }
        answer
    }

    async fn get_update(&self, tenant: TenantId, id: UpdateId) -> Result<Update, StoreError> {
        timed!(self, "get_update", self.inner.get_update(tenant, id))
    }

    async fn latest_update(
        &self,
        tenant: TenantId,
        device: DeviceId,
        kind: PackageKind,
    ) -> Result<Option<Update>, StoreError> {
        timed!(
            self,
            "latest_update",
            self.inner.latest_update(tenant, device, kind)
        )
    }

    async fn latest_update_hint(
        &self,
        tenant: TenantId,
        device: DeviceId,
        kind: PackageKind,
    ) -> Result<Option<Update>, StoreError> {
        timed!(
            self,
            "latest_update_hint",
            self.inner.latest_update_hint(tenant, device, kind)
        )
    }

    async fn list_updates(
        &self,
        tenant: TenantId,
        filter: &UpdateFilter,
        page: PageRequest,
    ) -> Result<Page<Update>, StoreError> {
        timed!(
            self,
            "list_updates",
            self.inner.list_updates(tenant, filter, page)
        )
    }

    async fn count_updates(
        &self,
        tenant: Option<TenantId>,
        filter: &UpdateFilter,
    ) -> Result<u64, StoreError> {
        timed!(
            self,
            "count_updates",
            self.inner.count_updates(tenant, filter)
        )
    }

    async fn claim_queued(
        &self,
        request: &ClaimRequest,
        scope: QueueScope,
    ) -> Result<Vec<Update>, StoreError> {
        timed!(
            self,
            "claim_queued",
            self.inner.claim_queued(request, scope)
        )
    }

    async fn claim_due(&self, request: &ClaimRequest) -> Result<Vec<Update>, StoreError> {
        timed!(self, "claim_due", self.inner.claim_due(request))
    }

    async fn release_claim(
        &self,
        tenant: TenantId,
        id: UpdateId,
        owner: &str,
    ) -> Result<(), StoreError> {
        timed!(
            self,
            "release_claim",
            self.inner.release_claim(tenant, id, owner)
        )
    }

    async fn update_history(
        &self,
        tenant: TenantId,
        id: UpdateId,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        timed!(
            self,
            "update_history",
            self.inner.update_history(tenant, id)
        )
    }

    async fn device_history(
        &self,
        tenant: TenantId,
        device: DeviceId,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        timed!(
            self,
            "device_history",
            self.inner.device_history(tenant, device, limit)
        )
    }
}

#[ota_core::async_trait]
impl CampaignStore for MeteredStore {
    async fn create_campaign(
        &self,
        campaign: &Campaign,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        timed!(
            self,
            "create_campaign",
            self.inner.create_campaign(campaign, audit)
        )
    }

    async fn get_campaign(&self, tenant: TenantId, id: CampaignId) -> Result<Campaign, StoreError> {
        timed!(self, "get_campaign", self.inner.get_campaign(tenant, id))
    }

    async fn save_campaign(
        &self,
        campaign: &Campaign,
        expected_revision: u64,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        timed!(
            self,
            "save_campaign",
            self.inner.save_campaign(campaign, expected_revision, audit)
        )
    }

    async fn list_campaigns(
        &self,
        tenant: TenantId,
        states: &[CampaignState],
        page: PageRequest,
    ) -> Result<Page<Campaign>, StoreError> {
        timed!(
            self,
            "list_campaigns",
            self.inner.list_campaigns(tenant, states, page)
        )
    }

    async fn active_campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        timed!(self, "active_campaigns", self.inner.active_campaigns())
    }

    async fn ended_campaigns_with_live_updates(&self) -> Result<Vec<Campaign>, StoreError> {
        timed!(
            self,
            "ended_campaigns_with_live_updates",
            self.inner.ended_campaigns_with_live_updates()
        )
    }

    async fn copy_campaign_devices(
        &self,
        tenant: TenantId,
        from: CampaignId,
        to: CampaignId,
    ) -> Result<u64, StoreError> {
        timed!(
            self,
            "copy_campaign_devices",
            self.inner.copy_campaign_devices(tenant, from, to)
        )
    }

    async fn set_campaign_devices(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        devices: &[DeviceId],
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        timed!(
            self,
            "set_campaign_devices",
            self.inner
                .set_campaign_devices(tenant, campaign, devices, audit)
        )
    }

    async fn count_campaign_devices(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
    ) -> Result<u64, StoreError> {
        timed!(
            self,
            "count_campaign_devices",
            self.inner.count_campaign_devices(tenant, campaign)
        )
    }

    async fn materialize_campaign(
        &self,
        campaign: &Campaign,
        package: &Package,
        now: Timestamp,
    ) -> Result<Materialized, StoreError> {
        timed!(
            self,
            "materialize_campaign",
            self.inner.materialize_campaign(campaign, package, now)
        )
    }

    async fn join_campaign(
        &self,
        campaign: &Campaign,
        package: &Package,
        device: &Device,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        timed!(
            self,
            "join_campaign",
            self.inner.join_campaign(campaign, package, device, now)
        )
    }

    async fn campaign_stats(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
    ) -> Result<CampaignStats, StoreError> {
        timed!(
            self,
            "campaign_stats",
            self.inner.campaign_stats(tenant, campaign)
        )
    }
}

#[ota_core::async_trait]
impl ScheduleStore for MeteredStore {
    async fn create_schedule(
        &self,
        event: &ScheduledEvent,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        timed!(
            self,
            "create_schedule",
            self.inner.create_schedule(event, audit)
        )
    }

    async fn get_schedule(
        &self,
        tenant: TenantId,
        id: ScheduleId,
    ) -> Result<ScheduledEvent, StoreError> {
        timed!(self, "get_schedule", self.inner.get_schedule(tenant, id))
    }

    async fn save_schedule(
        &self,
        event: &ScheduledEvent,
        expected_revision: u64,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        timed!(
            self,
            "save_schedule",
            self.inner.save_schedule(event, expected_revision, audit)
        )
    }

    async fn delete_schedule(
        &self,
        tenant: TenantId,
        id: ScheduleId,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        timed!(
            self,
            "delete_schedule",
            self.inner.delete_schedule(tenant, id, audit)
        )
    }

    async fn list_schedules(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<ScheduledEvent>, StoreError> {
        timed!(
            self,
            "list_schedules",
            self.inner.list_schedules(tenant, page)
        )
    }

    async fn due_schedules(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<ScheduledEvent>, StoreError> {
        timed!(self, "due_schedules", self.inner.due_schedules(now, limit))
    }
}

#[ota_core::async_trait]
impl NoticeOutbox for MeteredStore {
    async fn release_with_notices(&self, releases: &[Release]) -> Vec<Result<(), StoreError>> {
        let answers = timed!(
            self,
            "release_with_notices",
            self.inner.release_with_notices(releases)
        );
        for (release, answer) in releases.iter().zip(&answers) {
            if answer.is_ok() {
                self.metrics.releases.inc();
                self.count_history(&release.transition.history);
            }
        }
        answers
    }

    async fn claim_and_release(
        &self,
        request: &ClaimRequest,
        scope: QueueScope,
        plan: &PlanRelease<'_>,
    ) -> Option<Result<ClaimedReleases, StoreError>> {
        let answer = timed!(
            self,
            "claim_and_release",
            self.inner.claim_and_release(request, scope, plan)
        );
        if let Some(Ok(claimed)) = &answer {
            for release in &claimed.released {
                self.metrics.releases.inc();
                self.count_history(&release.transition.history);
            }
        }
        answer
    }

    async fn enqueue_notice(
        &self,
        entry: &OutboxEntry,
        lease: Option<&NoticeLease>,
    ) -> Result<(), StoreError> {
        timed!(
            self,
            "enqueue_notice",
            self.inner.enqueue_notice(entry, lease)
        )
    }

    async fn claim_notices(&self, request: &NoticeClaim) -> Result<Vec<OutboxEntry>, StoreError> {
        timed!(self, "claim_notices", self.inner.claim_notices(request))
    }

    async fn mark_delivered(&self, ids: &[NoticeId]) -> Result<(), StoreError> {
        timed!(self, "mark_delivered", self.inner.mark_delivered(ids))
    }

    async fn count_undelivered(&self, tenant: Option<TenantId>) -> Result<u64, StoreError> {
        timed!(
            self,
            "count_undelivered",
            self.inner.count_undelivered(tenant)
        )
    }
}

#[ota_core::async_trait]
impl ClaimRecovery for MeteredStore {
    async fn release_claims_of(&self, owner: &str) -> Result<u64, StoreError> {
        timed!(
            self,
            "release_claims_of",
            self.inner.release_claims_of(owner)
        )
    }
}

#[ota_core::async_trait]
impl RetentionStore for MeteredStore {
    async fn purge_log(
        &self,
        log: RetainedLog,
        tenant: TenantId,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        timed!(
            self,
            "purge_log",
            self.inner.purge_log(log, tenant, before, limit)
        )
    }

    async fn retention_tenants(
        &self,
        log: RetainedLog,
        after: Option<TenantId>,
        limit: u32,
    ) -> Result<Vec<TenantId>, StoreError> {
        timed!(
            self,
            "retention_tenants",
            self.inner.retention_tenants(log, after, limit)
        )
    }
}
