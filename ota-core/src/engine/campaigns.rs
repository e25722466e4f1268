//! Campaigns: definition, device lists and lifecycle actions. What a tick does for them is
//! in [`super::campaign_tick`].

use super::{Ota, OtaError};
use crate::campaign::device_list::{self, SkippedRow};
use crate::campaign::{Campaign, CampaignSpec, CampaignState, CampaignStats};
use crate::device::Device;
use crate::ids::{CampaignId, DeviceId, TenantId};
use crate::store::{PageRequest, StoreError, Transition, UpdateFilter};
use crate::update::{self, EventSource, Outcome, UpdateEvent, UpdateState};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Names looked up per store call while importing a device list.
const IMPORT_BATCH: usize = 10_000;

/// What importing a device list did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Devices now in the campaign's list.
    pub accepted: u64,
    /// Rows not taken, each with its reason.
    pub skipped: Vec<SkippedRow>,
}

impl Ota {
    /// Creates a DRAFT campaign after validating its definition.
    pub async fn create_campaign(
        &self,
        actor: &str,
        tenant: TenantId,
        spec: CampaignSpec,
    ) -> Result<Campaign, OtaError> {
        spec.validate(self.config.campaign_max_span)?;
        let package = self.store.get_package(tenant, spec.package_id).await?;
        let campaign = Campaign::new(tenant, package.kind, spec, actor, self.now());
        self.store.create_campaign(&campaign).await?;
        self.audit(
            tenant,
            actor,
            "campaign.create",
            format!("campaign {}", campaign.id),
            json!({"name": campaign.spec.name, "package": package.id}),
        )
        .await?;
        Ok(campaign)
    }

    /// The campaign `id`.
    pub async fn campaign(&self, tenant: TenantId, id: CampaignId) -> Result<Campaign, OtaError> {
        Ok(self.store.get_campaign(tenant, id).await?)
    }

    /// The campaign's statistics (counts per state and wave), read in constant time.
    pub async fn campaign_stats(
        &self,
        tenant: TenantId,
        id: CampaignId,
    ) -> Result<CampaignStats, OtaError> {
        Ok(self.store.campaign_stats(tenant, id).await?)
    }

    /// Replaces the definition of a DRAFT or SCHEDULED campaign.
    pub async fn edit_campaign(
        &self,
        actor: &str,
        tenant: TenantId,
        id: CampaignId,
        spec: CampaignSpec,
    ) -> Result<Campaign, OtaError> {
        spec.validate(self.config.campaign_max_span)?;
        let package = self.store.get_package(tenant, spec.package_id).await?;
        let updated = self
            .change_campaign(tenant, id, |c| {
                if !c.state.is_editable() {
                    return Err(OtaError::NotAllowed {
                        action: "edit the campaign",
                        reason: format!(
                            "it is {}; only DRAFT and SCHEDULED campaigns can be edited",
                            c.state
                        ),
                    });
                }
                c.kind = package.kind;
                c.spec = spec.clone();
                Ok(())
            })
            .await?;
        self.audit(
            tenant,
            actor,
            "campaign.edit",
            format!("campaign {id}"),
            json!({"name": updated.spec.name}),
        )
        .await?;
        Ok(updated)
    }

    /// Copies any campaign into a new DRAFT (with the device list of an explicit target).
    pub async fn copy_campaign(
        &self,
        actor: &str,
        tenant: TenantId,
        id: CampaignId,
        name: Option<String>,
    ) -> Result<Campaign, OtaError> {
        let source = self.store.get_campaign(tenant, id).await?;
        let mut spec = source.spec.clone();
        spec.name = name.unwrap_or_else(|| format!("Copy of {}", source.spec.name));
        let copy = self.create_campaign(actor, tenant, spec).await?;
        if matches!(
            source.spec.target,
            crate::campaign::CampaignTarget::DeviceList
        ) {
            let mut ids = Vec::new();
            let mut page = PageRequest::first(crate::store::MAX_PAGE_SIZE);
            // The source's list is not listable directly: its updates (once started) or its
            // stored list are the same devices; the stored list is copied by re-reading the
            // devices that were materialized, or nothing for a draft without updates.
            loop {
                let filter = UpdateFilter {
                    campaign_id: Some(source.id),
                    ..UpdateFilter::default()
                };
                let got = self.store.list_updates(tenant, &filter, page).await?;
                ids.extend(got.items.iter().map(|u| u.device_id));
                match got.next {
                    Some(next) => page = next,
                    None => break,
                }
            }
            if !ids.is_empty() {
                self.store
                    .set_campaign_devices(tenant, copy.id, &ids)
                    .await?;
            }
        }
        Ok(copy)
    }

    /// Sets the device list of an editable campaign with an explicit target from CSV
    /// (header `DeviceName`). Unknown names and devices whose profile the package does not
    /// support are skipped, each with its reason. There is no fixed limit on rows.
    pub async fn import_campaign_devices(
        &self,
        actor: &str,
        tenant: TenantId,
        id: CampaignId,
        csv: &[u8],
    ) -> Result<ImportReport, OtaError> {
        let campaign = self.store.get_campaign(tenant, id).await?;
        if !campaign.state.is_editable() {
            return Err(OtaError::NotAllowed {
                action: "import devices",
                reason: format!("the campaign is {}", campaign.state),
            });
        }
        if !matches!(
            campaign.spec.target,
            crate::campaign::CampaignTarget::DeviceList
        ) {
            return Err(OtaError::InvalidRequest {
                message: "the campaign's target is a selection, not a device list".into(),
            });
        }
        let package = self
            .store
            .get_package(tenant, campaign.spec.package_id)
            .await?;
        let list = device_list::parse(csv)?;
        let mut report = ImportReport {
            accepted: 0,
            skipped: list.skipped,
        };
        let mut accepted: Vec<DeviceId> = Vec::with_capacity(list.names.len());
        for batch in list.names.chunks(IMPORT_BATCH) {
            let names: Vec<String> = batch.iter().map(|(_, n)| n.clone()).collect();
            let found = self.store.find_devices_by_name(tenant, &names).await?;
            let by_name: std::collections::HashMap<&str, &Device> =
                found.iter().map(|d| (d.name.as_str(), d)).collect();
            for (line, name) in batch {
                match by_name.get(name.as_str()) {
                    None => report.skipped.push(SkippedRow {
                        line: *line,
                        name: name.clone(),
                        reason: "no device with this name".into(),
                    }),
                    Some(d) if !package.compatibility.allows(d.profile_id) => {
                        report.skipped.push(SkippedRow {
                            line: *line,
                            name: name.clone(),
                            reason: "the package is not compatible with the device's profile"
                                .into(),
                        })
                    }
                    Some(d) => accepted.push(d.id),
                }
            }
        }
        report.skipped.sort_by_key(|r| r.line);
        self.store
            .set_campaign_devices(tenant, id, &accepted)
            .await?;
        report.accepted = accepted.len() as u64;
        self.audit(
            tenant,
            actor,
            "campaign.import_devices",
            format!("campaign {id}"),
            json!({"accepted": report.accepted, "skipped": report.skipped.len()}),
        )
        .await?;
        Ok(report)
    }

    /// Starts a DRAFT campaign: SCHEDULED when its start time is in the future, else
    /// RUNNING at once (its updates are created then).
    pub async fn start_campaign(
        &self,
        actor: &str,
        tenant: TenantId,
        id: CampaignId,
    ) -> Result<Campaign, OtaError> {
        let campaign = self.store.get_campaign(tenant, id).await?;
        campaign.spec.validate(self.config.campaign_max_span)?;
        let now = self.now();
        let result = match campaign.spec.start_at {
            Some(at) if at > now => {
                self.set_campaign_state(tenant, id, CampaignState::Scheduled, None)
                    .await?
            }
            _ => self.run_campaign(&campaign).await?,
        };
        self.audit(
            tenant,
            actor,
            "campaign.start",
            format!("campaign {id}"),
            json!({"state": result.state}),
        )
        .await?;
        Ok(result)
    }

    /// Pauses a RUNNING campaign: nothing more is released; notified devices go on.
    pub async fn pause_campaign(
        &self,
        actor: &str,
        tenant: TenantId,
        id: CampaignId,
    ) -> Result<Campaign, OtaError> {
        let c = self
            .set_campaign_state(tenant, id, CampaignState::Paused, None)
            .await?;
        self.audit(
            tenant,
            actor,
            "campaign.pause",
            format!("campaign {id}"),
            json!({}),
        )
        .await?;
        Ok(c)
    }

    /// Resumes a PAUSED campaign.
    pub async fn resume_campaign(
        &self,
        actor: &str,
        tenant: TenantId,
        id: CampaignId,
    ) -> Result<Campaign, OtaError> {
        let c = self
            .set_campaign_state(tenant, id, CampaignState::Running, None)
            .await?;
        self.audit(
            tenant,
            actor,
            "campaign.resume",
            format!("campaign {id}"),
            json!({}),
        )
        .await?;
        Ok(c)
    }

    /// Stops a campaign: pending and ongoing device updates are canceled (and pending
    /// automatic retries dropped); history is kept.
    pub async fn stop_campaign(
        &self,
        actor: &str,
        tenant: TenantId,
        id: CampaignId,
    ) -> Result<Campaign, OtaError> {
        let c = self
            .set_campaign_state(
                tenant,
                id,
                CampaignState::Stopped,
                Some("stopped by an operator".into()),
            )
            .await?;
        let canceled = self
            .cancel_campaign_updates(&c, "the campaign was stopped", true)
            .await?;
        self.audit(
            tenant,
            actor,
            "campaign.stop",
            format!("campaign {id}"),
            json!({"canceled": canceled}),
        )
        .await?;
        Ok(c)
    }

    /// Archives an ended campaign (hidden from default listings, kept in full).
    pub async fn archive_campaign(
        &self,
        actor: &str,
        tenant: TenantId,
        id: CampaignId,
    ) -> Result<Campaign, OtaError> {
        let c = self
            .set_campaign_state(tenant, id, CampaignState::Archived, None)
            .await?;
        self.audit(
            tenant,
            actor,
            "campaign.archive",
            format!("campaign {id}"),
            json!({}),
        )
        .await?;
        Ok(c)
    }

    /// Starts the next wave now (operator action).
    pub async fn advance_campaign_wave(
        &self,
        actor: &str,
        tenant: TenantId,
        id: CampaignId,
    ) -> Result<Campaign, OtaError> {
        let now = self.now();
        let c = self
            .change_campaign(tenant, id, |c| {
                if !matches!(c.state, CampaignState::Running | CampaignState::Paused) {
                    return Err(OtaError::NotAllowed {
                        action: "start the next wave",
                        reason: format!("the campaign is {}", c.state),
                    });
                }
                if c.in_last_wave() {
                    return Err(OtaError::NotAllowed {
                        action: "start the next wave",
                        reason: "the last wave is already running".into(),
                    });
                }
                c.current_wave += 1;
                c.wave_started_at = Some(now);
                Ok(())
            })
            .await?;
        self.audit(
            tenant,
            actor,
            "campaign.advance_wave",
            format!("campaign {id}"),
            json!({"wave": c.current_wave}),
        )
        .await?;
        Ok(c)
    }

    /// Retries every failed device of a campaign (a new attempt each). Returns how many.
    pub async fn retry_failed_in_campaign(
        &self,
        actor: &str,
        tenant: TenantId,
        id: CampaignId,
    ) -> Result<u64, OtaError> {
        let c = self.store.get_campaign(tenant, id).await?;
        if !matches!(c.state, CampaignState::Running | CampaignState::Paused) {
            return Err(OtaError::NotAllowed {
                action: "retry failed devices",
                reason: format!("the campaign is {}", c.state),
            });
        }
        let filter = UpdateFilter {
            campaign_id: Some(id),
            states: vec![UpdateState::Failed],
            ..UpdateFilter::default()
        };
        let event = UpdateEvent::Retry {
            source: EventSource::Operator,
        };
        let mut retried = 0u64;
        let mut page = PageRequest::first(1_000);
        loop {
            let got = self.store.list_updates(tenant, &filter, page).await?;
            for u in &got.items {
                if self.drive(tenant, u.id, &event).await?.applied().is_some() {
                    retried += 1;
                }
            }
            match got.next {
                Some(next) => page = next,
                None => break,
            }
        }
        self.audit(
            tenant,
            actor,
            "campaign.retry_failed",
            format!("campaign {id}"),
            json!({"retried": retried}),
        )
        .await?;
        Ok(retried)
    }

    /// Offers `devices` (of one tenant) to the running dynamic campaigns of their tenant: they
    /// were created or joined a profile or group.
    pub(super) async fn join_dynamic_campaigns(&self, devices: &[Device]) -> Result<(), OtaError> {
        let Some(tenant) = devices.first().map(|d| d.tenant_id) else {
            return Ok(());
        };
        for c in self.store.active_campaigns().await? {
            if c.tenant_id != tenant
                || !c.spec.dynamic
                || !matches!(c.state, CampaignState::Running | CampaignState::Paused)
            {
                continue;
            }
            let package = match self.store.get_package(c.tenant_id, c.spec.package_id).await {
                Ok(p) => p,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            for device in devices {
                self.store
                    .join_campaign(&c, &package, device, self.now())
                    .await?;
            }
        }
        Ok(())
    }

    /// Materializes a campaign's updates and makes it RUNNING.
    pub(super) async fn run_campaign(&self, campaign: &Campaign) -> Result<Campaign, OtaError> {
        campaign.state.check_transition(CampaignState::Running)?;
        let package = self
            .store
            .get_package(campaign.tenant_id, campaign.spec.package_id)
            .await?;
        let now = self.now();
        let done = self
            .store
            .materialize_campaign(campaign, &package, now)
            .await?;
        self.change_campaign(campaign.tenant_id, campaign.id, |c| {
            c.state.check_transition(CampaignState::Running)?;
            c.state = CampaignState::Running;
            c.started_at = Some(now);
            c.current_wave = 0;
            c.wave_started_at = Some(now);
            c.wave_sizes = done.wave_sizes.clone();
            c.skipped = done.skipped.clone();
            Ok(())
        })
        .await
    }

    /// Moves a campaign to `to` if its lifecycle allows it.
    pub(super) async fn set_campaign_state(
        &self,
        tenant: TenantId,
        id: CampaignId,
        to: CampaignState,
        reason: Option<String>,
    ) -> Result<Campaign, OtaError> {
        let now = self.now();
        self.change_campaign(tenant, id, |c| {
            c.state.check_transition(to)?;
            c.state = to;
            c.state_reason = reason.clone();
            if to.is_ended() && c.ended_at.is_none() {
                c.ended_at = Some(now);
            }
            Ok(())
        })
        .await
    }

    /// Reads, changes and writes a campaign by compare-and-set, again when another writer came
    /// first.
    pub(super) async fn change_campaign(
        &self,
        tenant: TenantId,
        id: CampaignId,
        mut change: impl FnMut(&mut Campaign) -> Result<(), OtaError>,
    ) -> Result<Campaign, OtaError> {
        for _ in 0..=self.config.max_cas_retries {
            let current = self.store.get_campaign(tenant, id).await?;
            let mut next = current.clone();
            change(&mut next)?;
            next.revision = current.revision + 1;
            next.updated_at = self.now();
            match self.store.save_campaign(&next, current.revision).await {
                Ok(()) => return Ok(next),
                Err(StoreError::PreconditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OtaError::CampaignContention { campaign: id })
    }

    /// Cancels the campaign's unfinished updates (QUEUED only, or every unfinished one) and,
    /// with `all`, the pending automatic retries of failed ones. Returns how many changed.
    pub(super) async fn cancel_campaign_updates(
        &self,
        c: &Campaign,
        reason: &str,
        all: bool,
    ) -> Result<u64, OtaError> {
        let states: Vec<UpdateState> = if all {
            UpdateState::ALL
                .into_iter()
                .filter(|s| !s.is_terminal() || *s == UpdateState::Failed)
                .collect()
        } else {
            vec![UpdateState::Queued]
        };
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
        let mut page = PageRequest::first(1_000);
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
            for (t, answer) in batch.iter().zip(self.store.transition_many(&batch).await) {
                match answer {
                    Ok(()) => n += 1,
                    // Changed meanwhile (a report came in): decide again on what is stored.
                    Err(StoreError::PreconditionFailed { .. }) => {
                        if self
                            .drive(c.tenant_id, t.update.id, &event)
                            .await?
                            .applied()
                            .is_some()
                        {
                            n += 1;
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            match got.next {
                Some(next) => page = next,
                None => break,
            }
        }
        Ok(n)
    }
}
