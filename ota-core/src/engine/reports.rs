//! What devices and operators do to one device's update: device reports, downloads, the
//! attributes a device reads, and operator cancel and retry.

use super::{Ota, OtaError};
use crate::device::Device;
use crate::ids::{DeviceId, TenantId};
use crate::notifier::Notice;
use crate::package::TitleVersion;
use crate::package::{Package, PackageKind};
use crate::store::{PageRequest, StoreError, UpdateFilter};
use crate::update::{
    self, EventSource, HistoryEntry, HistoryOutcome, Outcome, ReportedStatus, Update, UpdateEvent,
    UpdateState,
};
use crate::wire::{self, DeviceReport, IgnoredValue};
use serde_json::json;

/// What became of a device report.
// Short-lived and returned by value, like `Outcome` itself.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum ReportOutcome {
    /// The device has no update of this kind; only its current version was recorded.
    NoUpdate,
    /// The state machine's outcome, as stored.
    Update(Outcome),
}

impl Ota {
    /// Handles one report from a device (already parsed by [`wire::parse_telemetry`]):
    /// records its current version and applies the report to its latest update of that kind.
    ///
    /// A report naming only `current_fw_version` is recorded too, with the title the device
    /// is known to run (or, when unknown, the title of its latest update). A report that is
    /// about an earlier update the latest one replaced (`UPDATED` naming the replaced
    /// package's version as current) is recorded in the history and does not touch the latest
    /// update. A device without a live update that reports its current version is offered to
    /// the running dynamic campaigns (it may now be on one of their source versions).
    pub async fn handle_report(
        &self,
        tenant: TenantId,
        device_id: DeviceId,
        report: &DeviceReport,
    ) -> Result<ReportOutcome, OtaError> {
        // A report costs the transition alone when the store's hint holds (the device's
        // previous report was written by this store), with a completed update's current
        // version written in the same step; otherwise one read more. An unknown device fails
        // in `set_current_version` or below, when it turns out to have no update.
        let current = self.reported_current(tenant, device_id, report).await?;
        let reports_current = current.is_some();
        let event = UpdateEvent::Report(ReportedStatus {
            state: report.state,
            current: current.clone(),
            error: report.error.clone(),
            progress: report.progress,
        });
        // What the device runs, until recorded (with the transition, or on its own).
        let mut unrecorded = current;
        let mut attempts = 0;
        // First the store's hint (the update as it last wrote it: no round trip), good only
        // for a compare-and-set transition; anything else is decided on a fresh read.
        if let Some(hint) = self
            .store
            .latest_update_hint(tenant, device_id, report.kind)
            .await?
        {
            if let Some(outcome) = self.apply_hint(&hint, &event, &mut unrecorded).await? {
                return self
                    .after_report(
                        tenant,
                        device_id,
                        reports_current,
                        ReportOutcome::Update(outcome),
                    )
                    .await;
            }
        }
        if let Some(current) = unrecorded {
            self.store
                .set_current_version(tenant, device_id, report.kind, Some(current))
                .await?;
        }
        let outcome = loop {
            let Some(latest) = self
                .store
                .latest_update(tenant, device_id, report.kind)
                .await?
            else {
                if !reports_current {
                    self.store.get_device(tenant, device_id).await?;
                }
                break ReportOutcome::NoUpdate;
            };
            if let Some(outcome) = self.about_replaced(&latest, &event).await? {
                break ReportOutcome::Update(outcome);
            }
            if let Some(outcome) = self.apply_once(&latest, &event).await? {
                break ReportOutcome::Update(outcome);
            }
            attempts += 1;
            if attempts > self.config.max_cas_retries {
                return Err(OtaError::Contention { device: device_id });
            }
        };
        self.after_report(tenant, device_id, reports_current, outcome)
            .await
    }

    /// What follows a report: a device that reported its current version and is now idle is
    /// offered to the running dynamic campaigns.
    async fn after_report(
        &self,
        tenant: TenantId,
        device_id: DeviceId,
        reports_current: bool,
        outcome: ReportOutcome,
    ) -> Result<ReportOutcome, OtaError> {
        if reports_current {
            let idle = match &outcome {
                ReportOutcome::NoUpdate => true,
                ReportOutcome::Update(o) => o
                    .applied()
                    .map_or_else(|| o.history().to.is_terminal(), |u| u.is_settled()),
            };
            if idle {
                self.offer_to_dynamic_campaigns(tenant, device_id).await?;
            }
        }
        Ok(outcome)
    }

    /// Applies a report's `event` to the store's `hint` of the latest update when that gives
    /// a plain transition: `Some` once stored by compare-and-set. `None` for anything else (the
    /// event does not apply, the report may be about a replaced update, or the hint was
    /// stale), to be decided on a fresh read.
    async fn apply_hint(
        &self,
        hint: &Update,
        event: &UpdateEvent,
        unrecorded: &mut Option<TitleVersion>,
    ) -> Result<Option<Outcome>, OtaError> {
        if let UpdateEvent::Report(status) = event {
            let maybe_replaced = status.state == Some(UpdateState::Updated)
                && status.current.as_ref().is_some_and(|c| *c != hint.target)
                && hint.state.is_in_progress();
            if maybe_replaced {
                return Ok(None);
            }
        }
        let now = self.now();
        let policy = self.policy_for(hint).await?;
        let Outcome::Applied { update, history } = update::apply(hint, event, now, &policy) else {
            return Ok(None);
        };
        let mut next = update;
        next.wake_at = Self::wake_at(&next, now, &policy);
        // The device's current version in the same step as the transition when the store
        // can (one round trip), else first on its own.
        let combined = match unrecorded.as_ref() {
            Some(current) => {
                self.store
                    .transition_with_current(&next, hint.revision, &history, current)
                    .await
            }
            None => None,
        };
        let written = match combined {
            Some(answer) => {
                if answer.is_ok() {
                    *unrecorded = None;
                }
                answer
            }
            None => {
                if let Some(current) = unrecorded.take() {
                    self.store
                        .set_current_version(
                            hint.tenant_id,
                            hint.device_id,
                            hint.kind,
                            Some(current),
                        )
                        .await?;
                }
                self.store.transition(&next, hint.revision, &history).await
            }
        };
        match written {
            Ok(()) => Ok(Some(Outcome::Applied {
                update: next,
                history,
            })),
            Err(StoreError::PreconditionFailed { .. } | StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The title and version a report says the device runs: both when it names both; with
    /// only a version, the title the device is known to run, else its latest update's title.
    async fn reported_current(
        &self,
        tenant: TenantId,
        device_id: DeviceId,
        report: &DeviceReport,
    ) -> Result<Option<TitleVersion>, OtaError> {
        if let Some(both) = report.current() {
            return Ok(Some(both));
        }
        let Some(version) = &report.current_version else {
            return Ok(None);
        };
        let device = self.store.get_device(tenant, device_id).await?;
        let title = match device.current.get(report.kind) {
            Some(known) => known.title.clone(),
            None => self
                .store
                .latest_update(tenant, device_id, report.kind)
                .await?
                .map(|u| u.target.title)
                .unwrap_or_default(),
        };
        Ok(Some(TitleVersion::new(title, version.clone())))
    }

    /// When `event` reports `UPDATED` with a current version that is not `latest`'s target but
    /// the target of an earlier update of the device (one that `latest` replaced), the report
    /// is about that earlier update: it is recorded in `latest`'s history as ignored and the
    /// outcome returned. `None` when the report is judged against `latest`.
    async fn about_replaced(
        &self,
        latest: &Update,
        event: &UpdateEvent,
    ) -> Result<Option<Outcome>, OtaError> {
        let UpdateEvent::Report(status) = event else {
            return Ok(None);
        };
        let Some(running) = &status.current else {
            return Ok(None);
        };
        if status.state != Some(UpdateState::Updated)
            || *running == latest.target
            || !latest.state.is_in_progress()
        {
            return Ok(None);
        }
        let filter = UpdateFilter {
            device_id: Some(latest.device_id),
            kind: Some(latest.kind),
            ..UpdateFilter::default()
        };
        let mut page = PageRequest::first(100);
        let mut replaced = false;
        loop {
            let got = self
                .store
                .list_updates(latest.tenant_id, &filter, page)
                .await?;
            replaced |= got
                .items
                .iter()
                .any(|u| u.id != latest.id && u.target == *running);
            match got.next {
                Some(next) if !replaced => page = next,
                _ => break,
            }
        }
        if !replaced {
            return Ok(None);
        }
        let reason = format!(
            "about the replaced update to {running}, not this one (to {})",
            latest.target
        );
        let history = HistoryEntry {
            update_id: latest.id,
            tenant_id: latest.tenant_id,
            device_id: latest.device_id,
            kind: latest.kind,
            attempt: latest.attempt,
            at: self.now(),
            from: latest.state,
            to: latest.state,
            source: EventSource::Device,
            event: event.name().to_string(),
            message: Some(reason.clone()),
            outcome: HistoryOutcome::Ignored,
        };
        self.store.append_history(&history).await?;
        Ok(Some(Outcome::Ignored { reason, history }))
    }

    /// Handles a whole telemetry or attributes payload from a device. Values the payload
    /// could not give (see [`wire::parse_telemetry`]) are recorded in the history of the
    /// device's latest update of their kind; the rest of the payload is handled. A payload of
    /// which nothing could be taken because of malformed values (`{"fw_progress": 101}`) is
    /// answered with [`OtaError::InvalidRequest`] naming them; `IDLE` alone is not an error.
    pub async fn handle_payload(
        &self,
        device: &Device,
        payload: &[u8],
    ) -> Result<Vec<ReportOutcome>, OtaError> {
        let telemetry = wire::parse_telemetry(payload).map_err(|e| OtaError::InvalidRequest {
            message: e.to_string(),
        })?;
        for ignored in &telemetry.ignored {
            self.record_ignored(device, ignored).await?;
        }
        if telemetry.reports.is_empty() && telemetry.ignored.iter().any(|i| i.malformed) {
            // Nothing could be taken and something was wrong: a clear error for bad input
            // (recorded all the same).
            let problems: Vec<String> = telemetry.ignored.iter().map(|i| i.to_string()).collect();
            return Err(OtaError::InvalidRequest {
                message: problems.join("; "),
            });
        }
        let mut outcomes = Vec::with_capacity(telemetry.reports.len());
        for report in &telemetry.reports {
            outcomes.push(
                self.handle_report(device.tenant_id, device.id, report)
                    .await?,
            );
        }
        Ok(outcomes)
    }

    /// Records a payload value that was not taken in the history of the device's latest
    /// update of its kind (both kinds for a key of none, such as `ts`).
    async fn record_ignored(
        &self,
        device: &Device,
        ignored: &IgnoredValue,
    ) -> Result<(), OtaError> {
        let kinds: Vec<PackageKind> = match ignored.kind {
            Some(k) => vec![k],
            None => PackageKind::ALL.to_vec(),
        };
        for kind in kinds {
            let Some(latest) = self
                .store
                .latest_update(device.tenant_id, device.id, kind)
                .await?
            else {
                continue;
            };
            let entry = HistoryEntry {
                update_id: latest.id,
                tenant_id: latest.tenant_id,
                device_id: latest.device_id,
                kind,
                attempt: latest.attempt,
                at: self.now(),
                from: latest.state,
                to: latest.state,
                source: EventSource::Device,
                event: "report".to_string(),
                message: Some(ignored.to_string()),
                outcome: HistoryOutcome::Ignored,
            };
            self.store.append_history(&entry).await?;
        }
        Ok(())
    }

    /// The package a device may download for `kind`: the one of its unfinished update, or else
    /// its effective package. When the device names a title and version (ThingsBoard's
    /// `title=&version=`), they must match it.
    pub async fn authorize_download(
        &self,
        device: &Device,
        kind: PackageKind,
        title: Option<&str>,
        version: Option<&str>,
    ) -> Result<Package, OtaError> {
        let latest = self
            .store
            .latest_update(device.tenant_id, device.id, kind)
            .await?;
        let package = match latest.filter(|u| !u.state.is_terminal()) {
            Some(u) => {
                self.store
                    .get_package(device.tenant_id, u.package_id)
                    .await?
            }
            None => match self.effective_package(device, kind).await? {
                Some((p, _)) => p,
                None => {
                    return Err(OtaError::NothingAssigned {
                        device: device.id,
                        kind,
                    })
                }
            },
        };
        let title_matches = title.is_none_or(|t| t.is_empty() || t == package.title);
        let version_matches = version.is_none_or(|v| v.is_empty() || v == package.version);
        if !title_matches || !version_matches {
            return Err(OtaError::NotAssignedPackage {
                requested: format!("{} {}", title.unwrap_or(""), version.unwrap_or("")),
                assigned: format!("{} {}", package.title, package.version),
            });
        }
        if let Some(url) = package.url() {
            return Err(OtaError::ExternalContent {
                package: package.id,
                url: url.to_string(),
            });
        }
        Ok(package)
    }

    /// The update attributes a device reads for `kind` (`fw_title`, `fw_version`, ...): those
    /// of the package of its latest update once the device has been notified of it (not while
    /// it is queued, not after it was canceled).
    pub async fn shared_attributes(
        &self,
        device: &Device,
        kind: PackageKind,
    ) -> Result<serde_json::Map<String, serde_json::Value>, OtaError> {
        let latest = self
            .store
            .latest_update(device.tenant_id, device.id, kind)
            .await?;
        match latest {
            Some(u) if u.state != UpdateState::Queued && u.state != UpdateState::Canceled => {
                let package = self
                    .store
                    .get_package(device.tenant_id, u.package_id)
                    .await?;
                Ok(wire::update_notice(&package))
            }
            _ => Ok(serde_json::Map::new()),
        }
    }

    async fn latest_for(
        &self,
        tenant: TenantId,
        device: DeviceId,
        kind: PackageKind,
        action: &'static str,
    ) -> Result<Update, OtaError> {
        self.store.get_device(tenant, device).await?;
        self.store
            .latest_update(tenant, device, kind)
            .await?
            .ok_or(OtaError::NoUpdate {
                device,
                kind,
                action,
            })
    }

    fn require_applied(outcome: Outcome, action: &'static str) -> Result<Update, OtaError> {
        match outcome {
            Outcome::Applied { update, .. } => Ok(update),
            Outcome::Rejected { reason, .. } => Err(OtaError::NotAllowed {
                action,
                reason: reason.to_string(),
            }),
            Outcome::Ignored { reason, .. } => Err(OtaError::NotAllowed {
                action,
                reason: reason.to_string(),
            }),
        }
    }

    /// Cancels a device's unfinished update of `kind` (operator action); the device's update
    /// attributes are withdrawn: the withdrawal notice is written to the outbox together with
    /// the cancel (one atomic step), then delivered.
    pub async fn cancel_update(
        &self,
        actor: &str,
        tenant: TenantId,
        device: DeviceId,
        kind: PackageKind,
        reason: &str,
    ) -> Result<Update, OtaError> {
        let latest = self.latest_for(tenant, device, kind, "cancel").await?;
        let event = UpdateEvent::Cancel {
            source: EventSource::Operator,
            reason: format!("canceled by {actor}: {reason}"),
        };
        let notice = Notice::Withdrawal {
            tenant_id: tenant,
            device_id: device,
            kind,
            keys: wire::notice_keys(kind)
                .iter()
                .map(|k| k.to_string())
                .collect(),
        };
        let entry = |u: &Update| {
            self.audit_entry(
                tenant,
                actor,
                "update.cancel",
                format!("device {device}"),
                json!({"kind": kind, "update": u.id, "reason": reason}),
            )
        };
        let (outcome, to_deliver) = self
            .drive_audited(tenant, latest.id, &event, Some(notice), &entry)
            .await?;
        let canceled = Self::require_applied(outcome, "cancel")?;
        if let Some(entry) = to_deliver {
            // Stored already: a failed delivery is tried again once its lease lapses.
            let _ = self.deliver(vec![entry]).await;
        }
        Ok(canceled)
    }

    /// Starts a new attempt of a device's failed or canceled update of `kind` (operator
    /// action): back to QUEUED, released under pacing like any other.
    pub async fn retry_update(
        &self,
        actor: &str,
        tenant: TenantId,
        device: DeviceId,
        kind: PackageKind,
    ) -> Result<Update, OtaError> {
        let latest = self.latest_for(tenant, device, kind, "retry").await?;
        if latest.state.is_terminal() {
            if let Some(reason) = self.retry_refusal(&latest).await? {
                return Err(OtaError::NotAllowed {
                    action: "retry",
                    reason,
                });
            }
        }
        let event = UpdateEvent::Retry {
            source: EventSource::Operator,
        };
        let entry = |u: &Update| {
            self.audit_entry(
                tenant,
                actor,
                "update.retry",
                format!("device {device}"),
                json!({"kind": kind, "update": u.id, "attempt": u.attempt}),
            )
        };
        let (outcome, _) = self
            .drive_audited(tenant, latest.id, &event, None, &entry)
            .await?;
        Self::require_applied(outcome, "retry")
    }
}
