//! Rules 1, 7, 8 and 9 of the update rules under interference: one live update per device and
//! kind whatever retries do, recovery, QUEUED timeouts of fresh work, and error thresholds
//! that count final failures only.

// Config structs are built from `Default` plus field assignment: they are becoming
// `#[non_exhaustive]`, which forbids struct literals outside ota-core.
#![allow(clippy::field_reassign_with_default)]

mod support;

use chrono::Duration;
use ota_core::campaign::{CampaignState, ThresholdAction};
use ota_core::engine::{OtaConfig, OtaError};
use ota_core::notifier::Notice;
use ota_core::pacing::Pacing;
use ota_core::store::{skip_reason, UpdateFilter, UpdateStore};
use ota_core::update::{RetryPolicy, UpdatePolicy};
use ota_core::{AssignmentTarget, Device, PackageKind, UpdateState};
use support::*;

fn retrying() -> UpdatePolicy {
    let mut policy = UpdatePolicy::default();
    policy.retry = RetryPolicy::attempts(3, Duration::seconds(10));
    policy
}

fn config_with_retries() -> OtaConfig {
    let mut config = OtaConfig::default();
    config.policy = retrying();
    config
}

async fn live_updates(h: &Harness, device: &Device) -> Vec<ota_core::Update> {
    let filter = UpdateFilter {
        device_id: Some(device.id),
        kind: Some(PackageKind::Firmware),
        ..UpdateFilter::default()
    };
    h.store
        .list_updates(h.tenant, &filter, ota_core::store::PageRequest::first(100))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|u| !u.state.is_terminal())
        .collect()
}

/// An operator's retry of `device`'s update, refused with an error that says `why`: the device
/// is left with no live update.
async fn refused_retry(h: &Harness, device: &Device, why: &str) -> OtaError {
    let err = h
        .ota
        .retry_update(ACTOR, h.tenant, device.id, PackageKind::Firmware)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(why), "{err}");
    assert!(live_updates(h, device).await.is_empty());
    err
}

#[tokio::test]
async fn an_automatic_retry_after_an_unassignment_is_dropped() {
    let h = Harness::new(config_with_retries());
    let (d, _) = h.one_sent("2.0").await;
    h.fail(&d).await;
    assert!(h.latest(&d).await.retry_at.is_some());
    h.unassign_device(&d).await;
    h.notifier.take();
    h.advance_ms(60_000);
    h.ota.tick().await.unwrap();
    let u = h.latest(&d).await;
    assert_eq!((u.state, u.retry_at), (UpdateState::Failed, None));
    assert!(h.take_update_notices().is_empty(), "nothing is assigned");
}

#[tokio::test]
async fn a_campaign_counts_a_device_with_a_pending_retry_as_busy() {
    let h = Harness::new(config_with_retries());
    let (p, d) = h.one_device().await;
    let a = h.package("fw", "2.0").await;
    let b = h.package("fw", "3.0").await;
    h.assign_device(&d, &a).await;
    h.ota.tick().await.unwrap();
    h.fail(&d).await;
    let c = h.started(by_profile(&p, &b)).await;
    assert_eq!(c.skipped, vec![(skip_reason::BUSY.to_string(), 1)]);
    for _ in 0..3 {
        h.advance_ms(30_000);
        h.ota.tick().await.unwrap();
        assert!(live_updates(&h, &d).await.len() <= 1);
    }
}

#[tokio::test]
async fn a_campaign_retry_never_revives_an_update_that_a_newer_assignment_replaced() {
    let h = Harness::new(OtaConfig::default());
    let (p, d) = h.one_device().await;
    let a = h.package("fw", "2.0").await;
    let b = h.package("fw", "3.0").await;
    let c = h.started(by_profile(&p, &b)).await;
    h.ota.tick().await.unwrap();
    h.fail(&d).await;
    h.advance_ms(1_000);
    h.assign_device(&d, &a).await;
    assert_eq!(h.latest(&d).await.target.version, "2.0");
    let retried = h
        .ota
        .retry_failed_in_campaign(ACTOR, h.tenant, c.id)
        .await
        .unwrap();
    assert_eq!(retried, 0);
    let live = live_updates(&h, &d).await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].target.version, "2.0");
}

#[tokio::test]
async fn an_operator_retry_after_an_unassignment_is_refused() {
    let h = Harness::new(OtaConfig::default());
    let (d, _) = h.one_sent("2.0").await;
    h.fail(&d).await;
    h.unassign_device(&d).await;
    let err = refused_retry(&h, &d, "no package is assigned").await;
    assert!(matches!(err, OtaError::NotAllowed { .. }), "{err}");
}

#[tokio::test]
async fn a_failed_update_completes_when_the_device_runs_the_target_after_all() {
    let h = Harness::new(OtaConfig::default());
    let (d, _) = h.one_sent("2.0").await;
    h.fail(&d).await;
    h.runs(&d, "2.0").await;
    let u = h.latest(&d).await;
    assert_eq!(u.state, UpdateState::Updated);
    let history = h.store.update_history(h.tenant, u.id).await.unwrap();
    assert!(
        history.iter().any(|e| e.to == UpdateState::Failed),
        "the failure stays in the history"
    );
}

#[tokio::test]
async fn an_operator_retry_of_a_device_that_runs_the_target_is_refused() {
    let h = Harness::new(OtaConfig::default());
    let (d, _) = h.one_sent("2.0").await;
    h.ota
        .cancel_update(ACTOR, h.tenant, d.id, PackageKind::Firmware, "not now")
        .await
        .unwrap();
    // The device installed it anyway.
    h.runs(&d, "2.0").await;
    refused_retry(&h, &d, "already runs fw 2.0").await;
}

#[tokio::test]
async fn a_queued_timeout_applies_to_fresh_updates() {
    let mut config = OtaConfig::default();
    config.policy.timeouts =
        ota_core::update::Timeouts::none().with(UpdateState::Queued, Duration::minutes(1));
    let mut pacing = Pacing::default();
    pacing.max_in_progress = Some(1);
    config.global_pacing = pacing;
    let h = Harness::new(config);
    let (p, devices, a) = h.fleet(2, "2.0").await;
    h.ota
        .assign(ACTOR, h.tenant, AssignmentTarget::Profile(p.id), a.id)
        .await
        .unwrap();
    h.ota.tick().await.unwrap();
    h.advance_ms(120_000);
    let report = h.ota.tick().await.unwrap();
    assert_eq!(report.timed_out, 1);
    let mut states = Vec::new();
    for d in &devices {
        let u = h.latest(d).await;
        states.push(u.state);
        if u.state == UpdateState::Failed {
            assert!(u.error.unwrap().contains("QUEUED"));
        }
    }
    states.sort();
    assert_eq!(states, vec![UpdateState::Initiated, UpdateState::Failed]);
}

#[tokio::test]
async fn a_campaign_queued_timeout_applies_to_fresh_updates() {
    let h = Harness::new(OtaConfig::default());
    let (p, d) = h.one_device().await;
    let b = h.package("fw", "3.0").await;
    let mut spec = by_profile(&p, &b);
    spec.policy.timeouts =
        ota_core::update::Timeouts::none().with(UpdateState::Queued, Duration::minutes(1));
    // A window that never opens in the test's time span keeps the update QUEUED.
    spec.windows =
        vec![
            ota_core::window::MaintenanceWindow::new("0 0 1 1 *", Duration::hours(1), "UTC")
                .unwrap(),
        ];
    let c = h.draft(spec).await;
    h.advance_ms(3_600_000);
    h.ota.start_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    h.ota.tick().await.unwrap();
    assert_eq!(h.latest(&d).await.state, UpdateState::Queued);
    h.advance_ms(120_000);
    h.ota.tick().await.unwrap();
    assert_eq!(h.latest(&d).await.state, UpdateState::Failed);
}

#[tokio::test]
async fn error_thresholds_count_only_failures_whose_retries_are_exhausted() {
    let h = Harness::new(OtaConfig::default());
    let (p, devices, b) = h.fleet(2, "3.0").await;
    let mut spec = by_profile(&p, &b);
    spec.policy = retrying();
    spec.error_threshold = half_failed(ThresholdAction::Fail);
    let c = h.started(spec).await;
    h.ota.tick().await.unwrap();
    h.fail(&devices[0]).await;
    h.ota.tick().await.unwrap();
    assert_eq!(
        h.campaign_state(&c).await,
        CampaignState::Running,
        "the failed attempt will be retried"
    );
    // Attempts 2 and 3 fail too: now it counts.
    for _ in 0..2 {
        h.advance_ms(60_000);
        h.ota.tick().await.unwrap();
        h.advance_ms(1);
        h.ota.tick().await.unwrap();
        h.fail(&devices[0]).await;
    }
    assert_eq!(h.latest(&devices[0]).await.attempt, 3);
    h.ota.tick().await.unwrap();
    let c = h.ota.campaign(h.tenant, c.id).await.unwrap();
    assert_eq!(c.state, CampaignState::Failed);
    // Ending FAILED cancels everything the campaign still held and tells the device.
    assert_eq!(h.latest(&devices[1]).await.state, UpdateState::Canceled);
    assert!(h.notifier.notices().iter().any(|n| matches!(
        n,
        Notice::Withdrawal { device_id, .. } if *device_id == devices[1].id
    )));
}

#[tokio::test]
async fn an_operator_retry_never_revives_a_campaign_update_that_a_newer_assignment_replaced() {
    let h = Harness::new(OtaConfig::default());
    let (p, d) = h.one_device().await;
    let a = h.package("fw", "4.0").await;
    let b = h.package("fw", "1.0").await;
    // The device runs 4.0; a campaign takes it to 1.0 and is replaced by a newer device
    // assignment of 4.0 (what it runs: no new update, the campaign update canceled).
    h.runs(&d, "4.0").await;
    h.started(by_profile(&p, &b)).await;
    h.ota.tick().await.unwrap();
    h.advance_ms(1_000);
    h.assign_device(&d, &a).await;
    assert_eq!(h.latest(&d).await.state, UpdateState::Canceled);
    refused_retry(&h, &d, "newer assignment").await;
}

#[tokio::test]
async fn a_retry_due_while_the_device_is_recorded_running_the_target_completes_it() {
    use ota_core::store::DeviceStore;
    let h = Harness::new(config_with_retries());
    let (d, _) = h.one_sent("2.0").await;
    // The device said it runs fw 2.0; the version was recorded but the transition of its
    // update was lost (the store failed between the two writes, as across a database
    // restart), and the attempt then failed. The device, told nothing new, says nothing more.
    h.store
        .set_current_version(
            h.tenant,
            d.id,
            PackageKind::Firmware,
            Some(ota_core::TitleVersion::new("fw", "2.0")),
        )
        .await
        .unwrap();
    h.fail(&d).await;
    assert_eq!(h.latest(&d).await.state, UpdateState::Failed);
    h.advance_ms(11_000);
    h.ota.tick().await.unwrap();
    let u = h.latest(&d).await;
    assert_eq!(u.state, UpdateState::Updated, "{u:?}");
    assert_eq!(u.attempt, 1, "no new attempt of what the device runs");
    assert!(u.retry_at.is_none() && u.error.is_none(), "{u:?}");
    let history = h.store.update_history(h.tenant, u.id).await.unwrap();
    let last = history.last().expect("history");
    assert_eq!(
        (last.from, last.to),
        (UpdateState::Failed, UpdateState::Updated)
    );
    assert!(live_updates(&h, &d).await.is_empty());
}
