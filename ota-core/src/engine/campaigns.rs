//! Campaigns: definition, device lists and lifecycle actions. What a tick does for them is
//! in [`super::campaign_tick`].

use super::{Ota, OtaError};
use crate::audit::AuditEntry;
use crate::campaign::device_list::{self, SkippedRow};
use crate::campaign::{Campaign, CampaignError, CampaignSpec, CampaignState, CampaignStats};
use crate::device::Device;
use crate::ids::{CampaignId, DeviceId, TenantId};
use crate::store::{PageRequest, StoreError, UpdateFilter};
use crate::update::{EventSource, Update, UpdateEvent, UpdateState};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Builds the audit entry of a campaign action from the campaign as it is saved (`None`: the
/// engine's own changes, which are not audited).
pub(super) type CampaignAudit<'a> = Option<&'a (dyn Fn(&Campaign) -> AuditEntry + Send + Sync)>;

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
        let entry = self.audit_entry(
            tenant,
            actor,
            "campaign.create",
            format!("campaign {}", campaign.id),
            json!({"name": campaign.spec.name, "package": package.id}),
        );
        self.store.create_campaign(&campaign, Some(&entry)).await?;
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
        let entry = |c: &Campaign| {
            self.audit_entry(
                tenant,
                actor,
                "campaign.edit",
                format!("campaign {id}"),
                json!({"name": c.spec.name}),
            )
        };
        let updated = self
            .change_campaign(tenant, id, Some(&entry), |c| {
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
            self.store
                .copy_campaign_devices(tenant, source.id, copy.id)
                .await?;
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
        report.accepted = accepted.len() as u64;
        let entry = self.audit_entry(
            tenant,
            actor,
            "campaign.import_devices",
            format!("campaign {id}"),
            json!({"accepted": report.accepted, "skipped": report.skipped.len()}),
        );
        self.store
            .set_campaign_devices(tenant, id, &accepted, Some(&entry))
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
        self.start_campaign_noted(actor, tenant, id, None).await
    }

    /// [`Ota::start_campaign`], with `note` added to its audit entry's details as `schedule`
    /// (the scheduled run that starts it).
    pub(super) async fn start_campaign_noted(
        &self,
        actor: &str,
        tenant: TenantId,
        id: CampaignId,
        note: Option<&serde_json::Value>,
    ) -> Result<Campaign, OtaError> {
        let campaign = self.store.get_campaign(tenant, id).await?;
        campaign.spec.validate(self.config.campaign_max_span)?;
        let now = self.now();
        // Started by hand (no start time, or one already past): the span counts from now.
        if campaign.spec.start_at.is_none_or(|at| at <= now) {
            if let Some(finish) = campaign.spec.finish_at {
                if finish <= now {
                    return Err(CampaignError::FinishBeforeStart { start: now, finish }.into());
                }
                if finish - now > self.config.campaign_max_span {
                    return Err(CampaignError::SpanTooLong {
                        span_days: (finish - now).num_days(),
                        max_days: self.config.campaign_max_span.num_days(),
                    }
                    .into());
                }
            }
        }
        let entry = |c: &Campaign| {
            self.audit_entry(
                tenant,
                actor,
                "campaign.start",
                format!("campaign {id}"),
                Self::noted(json!({"state": c.state}), note),
            )
        };
        let result = match campaign.spec.start_at {
            Some(at) if at > now => {
                self.set_campaign_state(tenant, id, CampaignState::Scheduled, None, Some(&entry))
                    .await?
            }
            _ => self.run_campaign(&campaign, Some(&entry)).await?,
        };
        Ok(result)
    }

    /// Pauses a RUNNING campaign: nothing more is released; notified devices go on.
    pub async fn pause_campaign(
        &self,
        actor: &str,
        tenant: TenantId,
        id: CampaignId,
    ) -> Result<Campaign, OtaError> {
        let entry = |_: &Campaign| {
            self.audit_entry(
                tenant,
                actor,
                "campaign.pause",
                format!("campaign {id}"),
                json!({}),
            )
        };
        let c = self
            .set_campaign_state(tenant, id, CampaignState::Paused, None, Some(&entry))
            .await?;
        Ok(c)
    }

    /// Resumes a PAUSED campaign (any other state answers with the illegal-transition error
    /// naming it). After a pause by the error threshold, the threshold counts only devices
    /// that finish after the resume: the campaign runs on until new failures cross it again.
    pub async fn resume_campaign(
        &self,
        actor: &str,
        tenant: TenantId,
        id: CampaignId,
    ) -> Result<Campaign, OtaError> {
        let current = self.store.get_campaign(tenant, id).await?;
        if current.state != CampaignState::Paused {
            return Err(crate::campaign::IllegalTransition {
                from: current.state,
                to: CampaignState::Running,
            }
            .into());
        }
        let by_threshold = current
            .state_reason
            .as_deref()
            .is_some_and(|r| r.starts_with(super::campaign_tick::THRESHOLD_REASON));
        let baseline = if by_threshold {
            let stats = self.store.campaign_stats(tenant, id).await?;
            let pending = self.count_pending_retries(&current).await?;
            Some(crate::campaign::ThresholdBaseline {
                failed: stats.counts.failed().saturating_sub(pending),
                successful: stats.counts.successful(),
            })
        } else {
            current.threshold_baseline
        };
        let entry = |_: &Campaign| {
            self.audit_entry(
                tenant,
                actor,
                "campaign.resume",
                format!("campaign {id}"),
                json!({}),
            )
        };
        let c = self
            .change_campaign(tenant, id, Some(&entry), |c| {
                if c.state != CampaignState::Paused {
                    return Err(crate::campaign::IllegalTransition {
                        from: c.state,
                        to: CampaignState::Running,
                    }
                    .into());
                }
                c.state = CampaignState::Running;
                c.state_reason = None;
                c.threshold_baseline = baseline;
                Ok(())
            })
            .await?;
        Ok(c)
    }

    /// Stops a campaign: pending and ongoing device updates are canceled (and pending
    /// automatic retries dropped); notified devices get the withdrawal notice; history is
    /// kept. The new state is saved first, then updates are canceled a page at a time; a
    /// crash half-way is finished by the next tick. Stopping a STOPPED campaign again is
    /// allowed and finishes any cancelling left over; other ended campaigns answer with the
    /// illegal-transition error (after finishing their own cancelling).
    pub async fn stop_campaign(
        &self,
        actor: &str,
        tenant: TenantId,
        id: CampaignId,
    ) -> Result<Campaign, OtaError> {
        let current = self.store.get_campaign(tenant, id).await?;
        let entry = |_: &Campaign| {
            self.audit_entry(
                tenant,
                actor,
                "campaign.stop",
                format!("campaign {id}"),
                json!({}),
            )
        };
        let c = if current.state.is_ended() {
            self.finish_ending(&current).await?;
            current
                .state
                .check_transition(CampaignState::Stopped)
                .or_else(|e| {
                    if current.state == CampaignState::Stopped {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
            // Stopped before: this stop only finished its cancelling (each cancel is in the
            // updates' history); the entry has no write of its own to go with.
            self.store.append_audit(&entry(&current)).await?;
            current
        } else {
            self.end_campaign(
                tenant,
                id,
                CampaignState::Stopped,
                "stopped by an operator".into(),
                Some(&entry),
            )
            .await?
        };
        Ok(c)
    }

    /// Archives an ended campaign (hidden from default listings, kept in full).
    pub async fn archive_campaign(
        &self,
        actor: &str,
        tenant: TenantId,
        id: CampaignId,
    ) -> Result<Campaign, OtaError> {
        let entry = |_: &Campaign| {
            self.audit_entry(
                tenant,
                actor,
                "campaign.archive",
                format!("campaign {id}"),
                json!({}),
            )
        };
        let c = self
            .set_campaign_state(tenant, id, CampaignState::Archived, None, Some(&entry))
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
        let entry = |c: &Campaign| {
            self.audit_entry(
                tenant,
                actor,
                "campaign.advance_wave",
                format!("campaign {id}"),
                json!({"wave": c.current_wave}),
            )
        };
        let c = self
            .change_campaign(tenant, id, Some(&entry), |c| {
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
        Ok(c)
    }

    /// Retries every failed device of a campaign (a new attempt each). Returns how many.
    /// Each retry is audited as `campaign.retry_failed` (details: the device, update and new
    /// attempt), written with it; when none was retried, one entry says so (`retried: 0`).
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
        // Each retry is written with its own entry: a process that dies half-way leaves the
        // devices it retried logged, and no other.
        let entry = |u: &Update| {
            self.audit_entry(
                tenant,
                actor,
                "campaign.retry_failed",
                format!("campaign {id}"),
                json!({"device": u.device_id, "kind": u.kind, "update": u.id,
                       "attempt": u.attempt}),
            )
        };
        let mut retried = 0u64;
        let mut page = PageRequest::first(1_000);
        loop {
            let got = self.store.list_updates(tenant, &filter, page).await?;
            for u in &got.items {
                if self.retry_refusal(u).await?.is_some() {
                    continue;
                }
                let (outcome, _) = self
                    .drive_audited(tenant, u.id, &event, None, &entry)
                    .await?;
                if outcome.applied().is_some() {
                    retried += 1;
                }
            }
            match got.next {
                Some(next) => page = next,
                None => break,
            }
        }
        if retried == 0 {
            // Nothing was written: the entry of the action has no write to go with.
            self.audit(
                tenant,
                actor,
                "campaign.retry_failed",
                format!("campaign {id}"),
                json!({"retried": 0}),
            )
            .await?;
        }
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

    /// Offers a device that reported its current version and holds no live update to the
    /// running dynamic campaigns of its tenant (it may now run one of their source versions).
    pub(super) async fn offer_to_dynamic_campaigns(
        &self,
        tenant: TenantId,
        device: DeviceId,
    ) -> Result<(), OtaError> {
        let dynamic = self.store.active_campaigns().await?.into_iter().any(|c| {
            c.tenant_id == tenant
                && c.spec.dynamic
                && matches!(c.state, CampaignState::Running | CampaignState::Paused)
        });
        if dynamic {
            let device = self.store.get_device(tenant, device).await?;
            self.join_dynamic_campaigns(std::slice::from_ref(&device))
                .await?;
        }
        Ok(())
    }

    /// Materializes a campaign's updates and makes it RUNNING.
    pub(super) async fn run_campaign(
        &self,
        campaign: &Campaign,
        audit: CampaignAudit<'_>,
    ) -> Result<Campaign, OtaError> {
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
        self.change_campaign(campaign.tenant_id, campaign.id, audit, |c| {
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
        audit: CampaignAudit<'_>,
    ) -> Result<Campaign, OtaError> {
        let now = self.now();
        self.change_campaign(tenant, id, audit, |c| {
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
    /// first; `audit` builds the entry written with the campaign (from the campaign as saved).
    pub(super) async fn change_campaign(
        &self,
        tenant: TenantId,
        id: CampaignId,
        audit: CampaignAudit<'_>,
        mut change: impl FnMut(&mut Campaign) -> Result<(), OtaError>,
    ) -> Result<Campaign, OtaError> {
        for _ in 0..=self.config.max_cas_retries {
            let current = self.store.get_campaign(tenant, id).await?;
            let mut next = current.clone();
            change(&mut next)?;
            next.revision = current.revision + 1;
            next.updated_at = self.now();
            let entry = audit.map(|of| of(&next));
            match self
                .store
                .save_campaign(&next, current.revision, entry.as_ref())
                .await
            {
                Ok(()) => return Ok(next),
                Err(StoreError::PreconditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OtaError::CampaignContention { campaign: id })
    }
}
