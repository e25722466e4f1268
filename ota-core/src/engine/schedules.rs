//! Scheduled events: at each occurrence of a recurrence, assign a package or start a
//! campaign. A tick runs what is due; missed occurrences run once (see
//! [`Recurrence::due`](crate::schedule::Recurrence::due)).

use super::tick::TickReport;
use super::{Ota, OtaError};
use crate::campaign::CampaignState;
use crate::ids::{ScheduleId, TenantId};
use crate::schedule::{Recurrence, ScheduledAction, ScheduledEvent};
use crate::store::{Page, PageRequest, StoreError};
use serde_json::json;

/// Events run per tick at most.
const DUE_BATCH: u32 = 100;

impl Ota {
    /// Creates a scheduled event after checking its recurrence and that its package or
    /// campaign exists (a campaign must be DRAFT).
    pub async fn create_schedule(
        &self,
        actor: &str,
        tenant: TenantId,
        name: &str,
        recurrence: Recurrence,
        action: ScheduledAction,
    ) -> Result<ScheduledEvent, OtaError> {
        self.check_schedule(tenant, name, &recurrence, &action)
            .await?;
        let now = self.now();
        let event = ScheduledEvent {
            id: ScheduleId::new(),
            tenant_id: tenant,
            name: name.trim().to_string(),
            next_run: recurrence.first(),
            recurrence,
            action,
            last_run: None,
            created_by: actor.to_string(),
            created_at: now,
            updated_at: now,
            revision: 0,
        };
        let entry = self.audit_entry(
            tenant,
            actor,
            "schedule.create",
            format!("schedule {}", event.id),
            json!({"name": event.name}),
        );
        self.store.create_schedule(&event, Some(&entry)).await?;
        Ok(event)
    }

    /// Replaces the name, recurrence and action of a scheduled event. Its next run is
    /// computed again from now.
    pub async fn edit_schedule(
        &self,
        actor: &str,
        tenant: TenantId,
        id: ScheduleId,
        name: &str,
        recurrence: Recurrence,
        action: ScheduledAction,
    ) -> Result<ScheduledEvent, OtaError> {
        self.check_schedule(tenant, name, &recurrence, &action)
            .await?;
        let current = self.store.get_schedule(tenant, id).await?;
        let now = self.now();
        let next_run = match recurrence.first() {
            Some(first) if first > now => Some(first),
            _ => recurrence.next_after(now),
        };
        let event = ScheduledEvent {
            name: name.trim().to_string(),
            recurrence,
            action,
            next_run,
            updated_at: now,
            revision: current.revision + 1,
            ..current.clone()
        };
        let entry = self.audit_entry(
            tenant,
            actor,
            "schedule.edit",
            format!("schedule {id}"),
            json!({"name": event.name}),
        );
        self.store
            .save_schedule(&event, current.revision, Some(&entry))
            .await?;
        Ok(event)
    }

    /// Deletes a scheduled event.
    pub async fn delete_schedule(
        &self,
        actor: &str,
        tenant: TenantId,
        id: ScheduleId,
    ) -> Result<(), OtaError> {
        let entry = self.audit_entry(
            tenant,
            actor,
            "schedule.delete",
            format!("schedule {id}"),
            json!({}),
        );
        Ok(self.store.delete_schedule(tenant, id, Some(&entry)).await?)
    }

    /// The tenant's scheduled events.
    pub async fn list_schedules(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<ScheduledEvent>, OtaError> {
        Ok(self.store.list_schedules(tenant, page).await?)
    }

    async fn check_schedule(
        &self,
        tenant: TenantId,
        name: &str,
        recurrence: &Recurrence,
        action: &ScheduledAction,
    ) -> Result<(), OtaError> {
        if name.trim().is_empty() || name.chars().count() > 255 {
            return Err(OtaError::InvalidRequest {
                message: "a scheduled event needs a name of 1 to 255 characters".into(),
            });
        }
        recurrence
            .validate()
            .map_err(|e| OtaError::InvalidRequest {
                message: e.to_string(),
            })?;
        match action {
            ScheduledAction::Assign { package_id, .. } => {
                self.store.get_package(tenant, *package_id).await?;
            }
            ScheduledAction::StartCampaign { campaign_id } => {
                let c = self.store.get_campaign(tenant, *campaign_id).await?;
                if c.state != CampaignState::Draft {
                    return Err(OtaError::NotAllowed {
                        action: "schedule the campaign's start",
                        reason: format!("the campaign is {}, not DRAFT", c.state),
                    });
                }
            }
        }
        Ok(())
    }

    /// Runs the scheduled events that are due. Each occurrence runs once, whichever engine
    /// gets it first (compare-and-set on the event). A run is audited by its action's own
    /// entry (actor `schedule <id>`, details `schedule`: the event and occurrence), written
    /// with the action; a run whose action failed by a `schedule.run` entry with the error.
    pub(super) async fn tick_schedules(&self, report: &mut TickReport) -> Result<(), OtaError> {
        let now = self.now();
        for event in self.store.due_schedules(now, DUE_BATCH).await? {
            let Some(occurrence) = event.recurrence.due(event.last_run, now) else {
                // Nothing to run (edited meanwhile): move next_run on.
                let next = ScheduledEvent {
                    next_run: event.recurrence.next_after(now),
                    revision: event.revision + 1,
                    ..event.clone()
                };
                match self.store.save_schedule(&next, event.revision, None).await {
                    Ok(()) | Err(StoreError::PreconditionFailed { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            let next = ScheduledEvent {
                last_run: Some(occurrence),
                next_run: event.recurrence.next_after(now),
                updated_at: now,
                revision: event.revision + 1,
                ..event.clone()
            };
            match self.store.save_schedule(&next, event.revision, None).await {
                Ok(()) => {}
                Err(StoreError::PreconditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
            let actor = format!("schedule {}", event.id);
            // The action's own entry (actor: the schedule) is written with the action and
            // tells which event and occurrence ran it: a process that dies before the action
            // leaves neither.
            let note = json!({"event": event.id, "occurrence": occurrence});
            let outcome = match &event.action {
                ScheduledAction::Assign { target, package_id } => self
                    .assign_noted(&actor, event.tenant_id, *target, *package_id, Some(&note))
                    .await
                    .map(|_| ()),
                ScheduledAction::StartCampaign { campaign_id } => self
                    .start_campaign_noted(&actor, event.tenant_id, *campaign_id, Some(&note))
                    .await
                    .map(|_| ()),
            };
            report.schedules_run += 1;
            if let Err(e) = outcome {
                // A failing action (package deleted, campaign already started) wrote nothing
                // of its own: its report is an entry alone. It does not stop the tick.
                self.audit(
                    event.tenant_id,
                    &actor,
                    "schedule.run",
                    format!("schedule {}", event.id),
                    json!({"occurrence": occurrence, "ok": false, "error": e.to_string()}),
                )
                .await?;
            }
        }
        Ok(())
    }
}
