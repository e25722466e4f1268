//! The audit entries of an operator's update actions and of scheduled runs, as the engine
//! writes them with their action: a cancel and a retry name their update, a campaign's retry
//! of its failed devices logs each retried device, a scheduled run is told by its action's
//! own entry, and a refused action or a failed run writes no action entry.

mod support;

use chrono::Duration;
use ota_core::audit::AuditEntry;
use ota_core::engine::{OtaConfig, OtaError};
use ota_core::schedule::{Recurrence, Repeat, ScheduledAction};
use ota_core::store::{AuditStore, PageRequest, UpdateStore, MAX_PAGE_SIZE};
use ota_core::update::{EventSource, HistoryOutcome};
use ota_core::{AssignmentTarget, Clock, PackageKind};
use serde_json::json;
use support::*;

async fn log(h: &Harness) -> Vec<AuditEntry> {
    h.store
        .list_audit(h.tenant, PageRequest::first(MAX_PAGE_SIZE))
        .await
        .unwrap()
        .items
}

fn entries<'a>(log: &'a [AuditEntry], action: &str) -> Vec<&'a AuditEntry> {
    log.iter().filter(|e| e.action == action).collect()
}

#[tokio::test]
async fn a_cancel_and_a_retry_are_logged_with_their_update() {
    let h = Harness::new(OtaConfig::default());
    let (d, _) = h.one_sent("2.0").await;
    let canceled = h
        .ota
        .cancel_update(ACTOR, h.tenant, d.id, PackageKind::Firmware, "bad batch")
        .await
        .unwrap();
    let refused = h
        .ota
        .cancel_update(ACTOR, h.tenant, d.id, PackageKind::Firmware, "twice")
        .await;
    assert!(
        matches!(refused, Err(OtaError::NotAllowed { .. })),
        "{refused:?}"
    );
    let retried = h
        .ota
        .retry_update(ACTOR, h.tenant, d.id, PackageKind::Firmware)
        .await
        .unwrap();
    assert_eq!(retried.attempt, 2);

    let log = log(&h).await;
    let cancels = entries(&log, "update.cancel");
    assert_eq!(cancels.len(), 1, "the refused cancel is not logged");
    assert_eq!(cancels[0].target, format!("device {}", d.id));
    assert_eq!(cancels[0].details["update"], json!(canceled.id));
    assert_eq!(cancels[0].details["reason"], json!("bad batch"));
    let retries = entries(&log, "update.retry");
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0].details["update"], json!(retried.id));
    assert_eq!(retries[0].details["attempt"], json!(2));
    // The history holds the same operator actions, and the refused cancel as rejected.
    let history = h.store.update_history(h.tenant, canceled.id).await.unwrap();
    let operator: Vec<(&str, HistoryOutcome)> = history
        .iter()
        .filter(|e| e.source == EventSource::Operator)
        .map(|e| (e.event.as_str(), e.outcome))
        .collect();
    assert_eq!(
        operator,
        vec![
            ("cancel", HistoryOutcome::Applied),
            ("cancel", HistoryOutcome::Rejected),
            ("retry", HistoryOutcome::Applied),
        ]
    );
}

#[tokio::test]
async fn retrying_a_campaigns_failed_devices_logs_each_retry() {
    let h = Harness::new(OtaConfig::default());
    let (p, devices, pkg) = h.fleet(3, "2.0").await;
    let c = h.started(by_profile(&p, &pkg)).await;
    assert_eq!(h.ota.tick().await.unwrap().released, 3);
    for d in &devices[..2] {
        h.fail(d).await;
    }
    let retried = h
        .ota
        .retry_failed_in_campaign(ACTOR, h.tenant, c.id)
        .await
        .unwrap();
    assert_eq!(retried, 2);
    let log = log(&h).await;
    let logged = entries(&log, "campaign.retry_failed");
    assert_eq!(logged.len(), 2, "one entry per retried device");
    let mut logged_devices: Vec<_> = logged.iter().map(|e| e.details["device"].clone()).collect();
    logged_devices.sort_by_key(|v| v.to_string());
    let mut failed: Vec<_> = devices[..2].iter().map(|d| json!(d.id)).collect();
    failed.sort_by_key(|v| v.to_string());
    assert_eq!(logged_devices, failed);
    for e in &logged {
        assert_eq!(e.target, format!("campaign {}", c.id));
        assert_eq!(e.details["attempt"], json!(2));
    }

    // Nothing left to retry: one entry says so.
    let again = h
        .ota
        .retry_failed_in_campaign(ACTOR, h.tenant, c.id)
        .await
        .unwrap();
    assert_eq!(again, 0);
    let log = self::log(&h).await;
    let logged = entries(&log, "campaign.retry_failed");
    assert_eq!(logged.len(), 3);
    assert_eq!(logged[2].details, json!({"retried": 0}));
}

#[tokio::test]
async fn a_scheduled_run_is_logged_by_its_action_or_by_its_failure() {
    let h = Harness::new(OtaConfig::default());
    let (p, _, pkg) = h.fleet(1, "2.0").await;
    let c = h.draft(by_profile(&p, &pkg)).await;
    let when = (h.clock.now() + Duration::hours(1)).naive_utc();
    let once = Recurrence::new(when, "UTC", Repeat::Once, None).unwrap();
    let start = h
        .ota
        .create_schedule(
            ACTOR,
            h.tenant,
            "start",
            once.clone(),
            ScheduledAction::StartCampaign { campaign_id: c.id },
        )
        .await
        .unwrap();
    let assign = h
        .ota
        .create_schedule(
            ACTOR,
            h.tenant,
            "assign",
            once,
            ScheduledAction::Assign {
                target: AssignmentTarget::Profile(p.id),
                package_id: pkg.id,
            },
        )
        .await
        .unwrap();
    // Started by hand before its time: the scheduled start fails.
    h.ota.start_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    h.clock.advance(Duration::hours(1));
    assert_eq!(h.ota.tick().await.unwrap().schedules_run, 2);

    let log = log(&h).await;
    let occurrence = json!(h.clock.now());
    let starts = entries(&log, "campaign.start");
    assert_eq!(starts.len(), 1, "only the start by hand");
    assert_eq!(starts[0].actor, ACTOR);
    let runs = entries(&log, "schedule.run");
    assert_eq!(runs.len(), 1, "the failed run is reported");
    assert_eq!(runs[0].actor, format!("schedule {}", start.id));
    assert_eq!(runs[0].details["ok"], json!(false));
    assert_eq!(runs[0].details["occurrence"], occurrence);
    assert!(runs[0].details["error"]
        .as_str()
        .is_some_and(|e| !e.is_empty()));
    let assigned = entries(&log, "assignment.set");
    assert_eq!(assigned.len(), 1);
    assert_eq!(assigned[0].actor, format!("schedule {}", assign.id));
    assert_eq!(
        assigned[0].details["schedule"],
        json!({"event": assign.id, "occurrence": occurrence})
    );
    assert_eq!(
        assigned[0].details["version"],
        json!("2.0"),
        "the action's own details"
    );
}
