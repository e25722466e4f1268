//! Whether a retry may start a new attempt: a retry (automatic, operator or campaign) never
//! leaves a device with two live updates of one kind, never brings back a package that is no
//! longer the device's, and never re-installs what the device already runs: an automatic
//! retry of an update whose device is recorded as running its target completes it instead.

use super::{Ota, OtaError};
use crate::campaign::CampaignState;
use crate::device::Device;
use crate::update::{EventSource, ReportedStatus, Update, UpdateEvent};

/// Why a retry may not start a new attempt.
enum Refusal {
    /// The device is recorded as running the update's target.
    RunsTarget(String),
    /// Anything else.
    Other(String),
}

impl Refusal {
    fn reason(self) -> String {
        match self {
            Self::RunsTarget(r) | Self::Other(r) => r,
        }
    }
}

impl Ota {
    /// Why `failed` may not start a new attempt now, or `None` when it may. Checked before
    /// every retry:
    ///
    /// - it is still the device's latest update of its kind (no newer update replaced it);
    /// - the device does not already run its target;
    /// - its package still exists and is compatible with the device's profile;
    /// - a campaign's update: the campaign is RUNNING or PAUSED and no assignment newer than
    ///   the update makes another package effective;
    /// - an update of no campaign: its package is still the device's effective package.
    pub(super) async fn retry_refusal(&self, failed: &Update) -> Result<Option<String>, OtaError> {
        Ok(self.refusal(failed).await?.map(Refusal::reason))
    }

    /// [`retry_refusal`](Self::retry_refusal), saying whether the device runs the target.
    async fn refusal(&self, failed: &Update) -> Result<Option<Refusal>, OtaError> {
        let (tenant, kind) = (failed.tenant_id, failed.kind);
        let latest = self
            .store
            .latest_update(tenant, failed.device_id, kind)
            .await?;
        if latest.as_ref().is_some_and(|l| l.id != failed.id) {
            return Ok(Some(Refusal::Other(
                "a newer update of this device replaced it".into(),
            )));
        }
        let device = self.store.get_device(tenant, failed.device_id).await?;
        if device.current.get(kind) == Some(&failed.target) {
            return Ok(Some(Refusal::RunsTarget(format!(
                "the device already runs {}; nothing to retry",
                failed.target
            ))));
        }
        self.other_refusal(failed, &device)
            .await
            .map(|r| r.map(Refusal::Other))
    }

    /// Why `failed` may not start a new attempt for a reason other than a newer update or
    /// what `device` runs.
    async fn other_refusal(
        &self,
        failed: &Update,
        device: &Device,
    ) -> Result<Option<String>, OtaError> {
        let (tenant, kind) = (failed.tenant_id, failed.kind);
        let package = match self.store.get_package(tenant, failed.package_id).await {
            Ok(p) => p,
            Err(e) if e.is_not_found() => {
                return Ok(Some(format!(
                    "package {} no longer exists",
                    failed.package_id
                )))
            }
            Err(e) => return Err(e.into()),
        };
        if !package.compatibility.allows(device.profile_id) {
            return Ok(Some(
                "the package is not compatible with the device's profile".into(),
            ));
        }
        let effective = self.effective_package(device, kind).await?;
        match failed.campaign_id {
            Some(id) => match self.store.get_campaign(tenant, id).await {
                Ok(c) if matches!(c.state, CampaignState::Running | CampaignState::Paused) => {
                    match effective {
                        // A newer assignment of another package replaced the campaign's work.
                        Some((p, e))
                            if e.assigned_at > failed.created_at && p.id != failed.package_id =>
                        {
                            Ok(Some(format!(
                                "a newer assignment of {} {} replaced it",
                                p.title, p.version
                            )))
                        }
                        _ => Ok(None),
                    }
                }
                Ok(c) => Ok(Some(format!("the campaign is {}", c.state))),
                Err(e) if e.is_not_found() => Ok(Some("the campaign no longer exists".into())),
                Err(e) => Err(e.into()),
            },
            None => match effective {
                Some((p, _)) if p.id == failed.package_id => Ok(None),
                Some((p, _)) => Ok(Some(format!(
                    "the device's effective package is now {} {}",
                    p.title, p.version
                ))),
                None => Ok(Some("no package is assigned to the device any more".into())),
            },
        }
    }

    /// Drops the pending automatic retry of `failed` (due now) when it may not run; `true`
    /// when it was dropped.
    ///
    /// A device recorded as running the target completes the update instead (as when it
    /// reports so after the failure): its report was recorded but its update's transition was
    /// not (the store failed between the two writes, or the reply was lost), the update then
    /// timed out, and the device, told nothing new, will not say it again.
    pub(super) async fn drop_refused_retry(&self, failed: &Update) -> Result<bool, OtaError> {
        let event = match self.refusal(failed).await? {
            None => return Ok(false),
            Some(Refusal::RunsTarget(_)) => UpdateEvent::Report(ReportedStatus {
                current: Some(failed.target.clone()),
                ..ReportedStatus::default()
            }),
            Some(Refusal::Other(reason)) => UpdateEvent::Cancel {
                source: EventSource::Retry,
                reason,
            },
        };
        if self.apply_once(failed, &event).await?.is_none() {
            // Changed meanwhile: the claim is given back and the next tick decides again.
            self.release(failed).await?;
        }
        Ok(true)
    }
}
