//! Scheduled events in the engine: assignments and campaign starts at their occurrences,
//! catch-up after downtime, edit and delete.

mod support;

use chrono::Duration;
use ota_core::campaign::{CampaignSpec, CampaignState, CampaignTarget};
use ota_core::engine::{OtaConfig, OtaError};
use ota_core::schedule::{Recurrence, Repeat, ScheduledAction};
use ota_core::store::{AssignmentStore, AuditStore, PageRequest};
use ota_core::{AssignmentTarget, Clock, PackageKind, UpdateState};
use std::collections::BTreeSet;
use support::*;

#[tokio::test]
async fn a_daily_assignment_runs_at_its_time_and_once_after_downtime() {
    let h = Harness::new(OtaConfig::default());
    let p = h.profile("p").await;
    let devices = h.devices(&p, "d", 2).await;
    let pkg = h.package("fw", "2.0").await;
    // The clock starts at 2024-01-01T00:00Z; the event is daily at 03:00 UTC.
    let start = (h.clock.now() + Duration::hours(3)).naive_utc();
    let recurrence = Recurrence::new(start, "UTC", Repeat::Daily, None).unwrap();
    let action = ScheduledAction::Assign {
        target: AssignmentTarget::Profile(p.id),
        package_id: pkg.id,
    };
    let event = h
        .ota
        .create_schedule(ACTOR, h.tenant, "nightly", recurrence, action)
        .await
        .unwrap();
    assert_eq!(event.next_run, Some(h.clock.now() + Duration::hours(3)));

    assert_eq!(h.ota.tick().await.unwrap().schedules_run, 0);
    assert!(h
        .store
        .get_assignment(
            h.tenant,
            PackageKind::Firmware,
            AssignmentTarget::Profile(p.id)
        )
        .await
        .unwrap()
        .is_none());
    h.clock.advance(Duration::hours(3));
    assert_eq!(h.ota.tick().await.unwrap().schedules_run, 1);
    assert!(h
        .store
        .get_assignment(
            h.tenant,
            PackageKind::Firmware,
            AssignmentTarget::Profile(p.id)
        )
        .await
        .unwrap()
        .is_some());
    for d in &devices {
        assert_eq!(
            h.state_of(d).await,
            Some(UpdateState::Initiated),
            "assigned and released in the same tick"
        );
    }
    assert_eq!(
        h.ota.tick().await.unwrap().schedules_run,
        0,
        "once per occurrence"
    );

    // Down for five days (until 01-06T05:00): the missed occurrences run once.
    h.clock.advance(Duration::days(5) + Duration::hours(2));
    assert_eq!(h.ota.tick().await.unwrap().schedules_run, 1);
    assert_eq!(h.ota.tick().await.unwrap().schedules_run, 0);
    let events = h
        .ota
        .list_schedules(h.tenant, PageRequest::first(10))
        .await
        .unwrap();
    let e = &events.items[0];
    assert_eq!(
        e.last_run,
        Some(h.clock.now() - Duration::hours(2)),
        "the latest missed occurrence"
    );
    assert_eq!(e.next_run, Some(h.clock.now() + Duration::hours(22)));
    let audit = h
        .store
        .list_audit(h.tenant, PageRequest::first(1000))
        .await
        .unwrap();
    // Each run is logged by its action's own entry, written with it, naming the event and
    // the occurrence that ran.
    let runs: Vec<_> = audit
        .items
        .iter()
        .filter(|a| a.action == "assignment.set")
        .collect();
    assert_eq!(runs.len(), 2);
    for run in &runs {
        assert_eq!(run.actor, format!("schedule {}", e.id));
        assert_eq!(run.details["schedule"]["event"], serde_json::json!(e.id));
    }
    assert_eq!(
        runs[1].details["schedule"]["occurrence"],
        serde_json::json!(e.last_run.unwrap()),
        "the latest missed occurrence"
    );
    assert!(
        !audit.items.iter().any(|a| a.action == "schedule.run"),
        "no run failed"
    );

    let err = h
        .ota
        .delete_package(ACTOR, h.tenant, pkg.id)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("scheduled event"), "{err}");
    h.ota.delete_schedule(ACTOR, h.tenant, e.id).await.unwrap();
    assert!(h
        .ota
        .list_schedules(h.tenant, PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test]
async fn a_one_shot_event_starts_a_campaign() {
    let h = Harness::new(OtaConfig::default());
    let p = h.profile("p").await;
    h.devices(&p, "d", 3).await;
    let pkg = h.package("fw", "2.0").await;
    let spec = CampaignSpec::new(
        "later",
        pkg.id,
        CampaignTarget::Selection {
            profile: Some(p.id),
            groups: BTreeSet::new(),
            source_versions: BTreeSet::new(),
        },
    );
    let c = h.ota.create_campaign(ACTOR, h.tenant, spec).await.unwrap();
    let when = (h.clock.now() + Duration::minutes(30)).naive_utc();
    let once = Recurrence::new(when, "Europe/Berlin", Repeat::Once, None).unwrap();
    let action = ScheduledAction::StartCampaign { campaign_id: c.id };
    let event = h
        .ota
        .create_schedule(ACTOR, h.tenant, "go", once.clone(), action.clone())
        .await
        .unwrap();
    // 00:30 local Berlin time is 23:30 UTC the day before, which has passed: it runs at once.
    assert_eq!(h.ota.tick().await.unwrap().schedules_run, 1);
    assert_eq!(
        h.ota.campaign(h.tenant, c.id).await.unwrap().state,
        CampaignState::Running
    );
    assert_eq!(
        h.ota.tick().await.unwrap().schedules_run,
        0,
        "a one-shot event runs once"
    );
    let after = h
        .ota
        .list_schedules(h.tenant, PageRequest::first(10))
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!((after.id, after.next_run), (event.id, None));

    // Scheduling the start of a campaign that is not a draft is refused.
    let err = h
        .ota
        .create_schedule(ACTOR, h.tenant, "again", once, action)
        .await
        .unwrap_err();
    assert!(matches!(err, OtaError::NotAllowed { .. }), "{err}");
}

#[tokio::test]
async fn bad_events_are_refused_and_edits_move_the_next_run() {
    let h = Harness::new(OtaConfig::default());
    let p = h.profile("p").await;
    let pkg = h.package("fw", "2.0").await;
    let start = h.clock.now().naive_utc();
    let daily = Recurrence::new(start, "UTC", Repeat::Daily, None).unwrap();
    let action = ScheduledAction::Assign {
        target: AssignmentTarget::Profile(p.id),
        package_id: pkg.id,
    };
    assert!(matches!(
        h.ota
            .create_schedule(ACTOR, h.tenant, " ", daily.clone(), action.clone())
            .await,
        Err(OtaError::InvalidRequest { .. })
    ));
    let missing = ScheduledAction::Assign {
        target: AssignmentTarget::Profile(p.id),
        package_id: ota_core::PackageId::new(),
    };
    assert!(h
        .ota
        .create_schedule(ACTOR, h.tenant, "x", daily.clone(), missing)
        .await
        .unwrap_err()
        .is_not_found());
    let e = h
        .ota
        .create_schedule(ACTOR, h.tenant, "x", daily, action.clone())
        .await
        .unwrap();
    h.clock.advance(Duration::hours(1));
    let every = Recurrence::new(
        start,
        "UTC",
        Repeat::Every {
            interval: Duration::hours(4),
        },
        None,
    )
    .unwrap();
    let edited = h
        .ota
        .edit_schedule(ACTOR, h.tenant, e.id, "every 4h", every, action)
        .await
        .unwrap();
    assert_eq!(edited.next_run, Some(h.clock.now() + Duration::hours(3)));
    assert_eq!(edited.name, "every 4h");
}
