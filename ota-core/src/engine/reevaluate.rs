//! Assignments, and what follows from them: re-evaluating devices' effective packages, queuing
//! new updates, canceling replaced ones (latest assignment wins) and withdrawing notices.

use super::{Ota, OtaError};
use crate::assignment::{Assignment, AssignmentTarget};
use crate::device::Device;
use crate::ids::{AssignmentId, PackageId, TenantId};
use crate::notifier::Notice;
use crate::package::{Package, PackageKind};
use crate::precedence;
use crate::store::{DeviceSelector, PageRequest};
use crate::update::{EventSource, Update, UpdateEvent};
use crate::wire;
use futures_util::StreamExt;
use serde_json::json;
use std::collections::HashMap;

/// Devices read per page while re-evaluating a group or profile.
const REEVALUATE_PAGE: u32 = 1_000;

impl Ota {
    /// Assigns `package` to `target` for the package's kind, replacing any earlier assignment
    /// of that target. Every device for which this level decides gets an update queued.
    pub async fn assign(
        &self,
        actor: &str,
        tenant: TenantId,
        target: AssignmentTarget,
        package_id: PackageId,
    ) -> Result<Assignment, OtaError> {
        self.assign_noted(actor, tenant, target, package_id, None)
            .await
    }

    /// [`Ota::assign`], with `note` added to its audit entry's details as `schedule` (the
    /// scheduled run that assigns).
    pub(super) async fn assign_noted(
        &self,
        actor: &str,
        tenant: TenantId,
        target: AssignmentTarget,
        package_id: PackageId,
        note: Option<&serde_json::Value>,
    ) -> Result<Assignment, OtaError> {
        let package = self.store.get_package(tenant, package_id).await?;
        match target {
            AssignmentTarget::Device(d) => {
                let device = self.store.get_device(tenant, d).await?;
                if !package.compatibility.allows(device.profile_id) {
                    return Err(OtaError::Incompatible {
                        package: package.id,
                        profile: device.profile_id,
                    });
                }
            }
            AssignmentTarget::Group(g) => {
                self.store.get_group(tenant, g).await?;
            }
            AssignmentTarget::Profile(p) => {
                self.store.get_profile(tenant, p).await?;
                if !package.compatibility.allows(p) {
                    return Err(OtaError::Incompatible {
                        package: package.id,
                        profile: p,
                    });
                }
            }
        }
        let assignment = Assignment {
            id: AssignmentId::new(),
            tenant_id: tenant,
            kind: package.kind,
            target,
            package_id,
            assigned_at: self.now(),
            assigned_by: actor.to_string(),
        };
        let entry = self.audit_entry(
            tenant,
            actor,
            "assignment.set",
            target.to_string(),
            Self::noted(
                json!({"kind": package.kind, "package": package_id,
                       "title": package.title, "version": package.version}),
                note,
            ),
        );
        self.store.put_assignment(&assignment, Some(&entry)).await?;
        self.reevaluate_target(tenant, target, package.kind).await?;
        Ok(assignment)
    }

    /// Removes the assignment of `kind` from `target`. Devices for which it decided fall back
    /// to the next level, or have their unfinished update canceled and the notice withdrawn.
    pub async fn unassign(
        &self,
        actor: &str,
        tenant: TenantId,
        kind: PackageKind,
        target: AssignmentTarget,
    ) -> Result<Option<Assignment>, OtaError> {
        let entry = |a: &Assignment| {
            self.audit_entry(
                tenant,
                actor,
                "assignment.remove",
                target.to_string(),
                json!({"kind": kind, "package": a.package_id}),
            )
        };
        let removed = self
            .store
            .remove_assignment(tenant, kind, target, Some(&entry))
            .await?;
        if removed.is_some() {
            self.reevaluate_target(tenant, target, kind).await?;
        }
        Ok(removed)
    }

    /// Re-evaluates every device that `target` covers, page by page.
    async fn reevaluate_target(
        &self,
        tenant: TenantId,
        target: AssignmentTarget,
        kind: PackageKind,
    ) -> Result<(), OtaError> {
        let selector = match target {
            AssignmentTarget::Device(d) => {
                let device = self.store.get_device(tenant, d).await?;
                return self.reevaluate(&device, kind).await;
            }
            AssignmentTarget::Group(g) => DeviceSelector::Group(g),
            AssignmentTarget::Profile(p) => DeviceSelector::Profile(p),
        };
        let mut page = PageRequest::first(REEVALUATE_PAGE);
        loop {
            let devices = self.store.list_devices(tenant, selector, page).await?;
            let next = devices.next;
            // Owned devices, not references: a closure over `&Device` makes the future's
            // `Send` unprovable for callers that need it (axum handlers, spawned tasks).
            let outcomes: Vec<Result<(), OtaError>> = futures_util::stream::iter(devices.items)
                .map(|device| async move { self.reevaluate(&device, kind).await })
                .buffer_unordered(self.config.concurrency.max(1))
                .collect()
                .await;
            outcomes.into_iter().collect::<Result<(), OtaError>>()?;
            match next {
                Some(next) => page = next,
                None => return Ok(()),
            }
        }
    }

    /// The package effective for `device` and `kind` now, with the assignment deciding it.
    pub async fn effective_package(
        &self,
        device: &Device,
        kind: PackageKind,
    ) -> Result<Option<(Package, precedence::Effective)>, OtaError> {
        let assignments = self.store.assignments_for_device(device, kind).await?;
        let mut packages: HashMap<PackageId, Package> = HashMap::new();
        for a in &assignments {
            if !packages.contains_key(&a.package_id) {
                match self.store.get_package(device.tenant_id, a.package_id).await {
                    Ok(p) => {
                        packages.insert(p.id, p);
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let effective = precedence::resolve(device, kind, &assignments, |pkg, profile| {
            packages
                .get(&pkg)
                .is_some_and(|p| p.kind == kind && p.compatibility.allows(profile))
        });
        Ok(effective.and_then(|e| packages.remove(&e.package_id).map(|p| (p, e))))
    }

    /// Brings one device's update of `kind` in line with its effective package: queues an
    /// update when the package changed (unless the device already runs it), cancels an
    /// unfinished update for another package (latest assignment wins), and withdraws the notice
    /// when nothing is assigned any more.
    pub(super) async fn reevaluate(
        &self,
        device: &Device,
        kind: PackageKind,
    ) -> Result<(), OtaError> {
        let effective = self.effective_package(device, kind).await?;
        let latest = self
            .store
            .latest_update(device.tenant_id, device.id, kind)
            .await?;
        // A campaign's update stands against every assignment older than it: re-evaluations
        // (a device moved, an older assignment) never undo or downgrade a campaign's work;
        // only a newer assignment replaces it.
        if let Some(u) = &latest {
            let newer_assignment = effective
                .as_ref()
                .is_some_and(|(_, e)| e.assigned_at > u.created_at);
            if u.campaign_id.is_some() && !newer_assignment {
                return self.recheck_campaign_update(device, u).await;
            }
        }
        let unfinished = latest.as_ref().filter(|u| !u.state.is_terminal());

        let Some((package, decided_by)) = effective else {
            if let Some(u) = unfinished {
                self.cancel_replaced(device, u, "no package is assigned any more")
                    .await?;
            } else if let Some(u) = latest.as_ref().filter(|u| u.retry_at.is_some()) {
                self.drop_retry(u, "no package is assigned any more")
                    .await?;
            }
            if latest.is_some() {
                self.withdraw(device, kind).await;
            }
            return Ok(());
        };

        if let Some(u) = unfinished {
            if u.package_id == package.id {
                return Ok(());
            }
            let reason = format!(
                "replaced by {} {} assigned at {} level",
                package.title, package.version, decided_by.level
            );
            self.cancel_replaced(device, u, &reason).await?;
        } else if let Some(u) = &latest {
            // A finished update for this package that is newer than the assignment deciding it
            // stands: it succeeded, or it failed/was canceled and retries are the operator's or
            // the retry policy's call, not a re-evaluation's.
            if u.package_id == package.id && u.created_at >= decided_by.assigned_at {
                return Ok(());
            }
            if u.retry_at.is_some() {
                // A new update takes its place: its pending retry must never start a second
                // live update.
                self.drop_retry(u, "replaced by a newer assignment").await?;
            }
        }

        if device.current.get(kind) == Some(&package.title_version()) {
            return Ok(());
        }
        let now = self.now();
        let mut update = Update::new(
            device.tenant_id,
            device.id,
            kind,
            package.id,
            package.title_version(),
            None,
            now,
        );
        // A QUEUED timeout applies from creation, like every other state's.
        update.wake_at = Self::wake_at(&update, now, &self.config.policy);
        self.store
            .create_updates(std::slice::from_ref(&update))
            .await?;
        Ok(())
    }

    /// A campaign's live update stands against older assignments, but it is checked again
    /// when its device changed: a package that is no longer compatible with the device's
    /// profile is never released (nor installed on); the update is canceled (counted as
    /// canceled, the device told when it had been notified) and a pending retry dropped.
    async fn recheck_campaign_update(&self, device: &Device, u: &Update) -> Result<(), OtaError> {
        if u.is_settled() {
            return Ok(());
        }
        let compatible = match self.store.get_package(u.tenant_id, u.package_id).await {
            Ok(p) => p.compatibility.allows(device.profile_id),
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if compatible {
            return Ok(());
        }
        let reason = crate::store::skip_reason::INCOMPATIBLE.to_string();
        if u.state.is_terminal() {
            self.drop_retry(u, &reason).await
        } else {
            self.cancel_replaced(device, u, &reason).await
        }
    }

    /// Cancels `update` (replaced, unassigned or no longer compatible); a device that was told
    /// about it gets the withdrawal notice.
    async fn cancel_replaced(
        &self,
        device: &Device,
        update: &Update,
        reason: &str,
    ) -> Result<(), OtaError> {
        let event = UpdateEvent::Cancel {
            source: EventSource::Server,
            reason: reason.to_string(),
        };
        let outcome = self.drive(update.tenant_id, update.id, &event).await?;
        if outcome.applied().is_some() && Self::was_told(&outcome.history().from, update.attempt) {
            self.withdraw(device, update.kind).await;
        }
        Ok(())
    }

    /// Whether a device may hold the notice of an update that was in `state` at `attempt`:
    /// it was released (in progress), or an earlier attempt was.
    pub(super) fn was_told(state: &crate::update::UpdateState, attempt: u32) -> bool {
        state.is_in_progress() || attempt > 1
    }

    /// Sends the deletion of the update attributes through the outbox; a device that cannot
    /// be told now reads its attributes when it comes back, so a failure here is not an
    /// error.
    pub(super) async fn withdraw(&self, device: &Device, kind: PackageKind) {
        let notice = Notice::Withdrawal {
            tenant_id: device.tenant_id,
            device_id: device.id,
            kind,
            keys: wire::notice_keys(kind)
                .iter()
                .map(|k| k.to_string())
                .collect(),
        };
        let _ = self.send_notice(notice).await;
    }
}
