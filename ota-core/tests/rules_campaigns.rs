//! Rules 3, 4, 5 and 6 of the update rules under interference (incompatible is never sent,
//! lifecycle, devices told when their update ends early, dynamic campaigns keep running) and
//! resumable campaign endings (issue 11, item 2).

// Config structs are built from `Default` plus field assignment: they are becoming
// `#[non_exhaustive]`, which forbids struct literals outside ota-core.
#![allow(clippy::field_reassign_with_default)]

mod support;

use chrono::Duration;
use ota_core::campaign::{
    Campaign, CampaignError, CampaignSpec, CampaignState, CampaignTarget, ThresholdAction,
};
use ota_core::engine::{NewPackage, OtaConfig, OtaError};
use ota_core::notifier::Notice;
use ota_core::store::{CampaignStore, UpdateFilter, UpdateStore};
use ota_core::{Compatibility, Device, PackageKind, UpdateState};
use std::collections::BTreeSet;
use support::*;

fn withdrawals_to(h: &Harness, device: &Device) -> usize {
    h.notifier
        .notices()
        .iter()
        .filter(|n| matches!(n, Notice::Withdrawal { device_id, .. } if *device_id == device.id))
        .count()
}

// Rule 3.

#[tokio::test]
async fn a_campaign_update_waiting_for_release_is_canceled_when_its_device_becomes_incompatible() {
    let h = Harness::new(OtaConfig::default());
    let p1 = h.profile("p1").await;
    let p2 = h.profile("p2").await;
    let d = h.devices(&p1, "d", 1).await.remove(0);
    let mut new = NewPackage::new(h.tenant, PackageKind::Firmware, "fw", "3.0");
    new.compatibility = Compatibility::Profiles(vec![p1.id]);
    let pkg = h
        .ota
        .upload_package(ACTOR, new, stream_of(b"content".to_vec(), 3))
        .await
        .unwrap();
    let c = h.started(by_profile(&p1, &pkg)).await;
    h.ota.pause_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    h.ota
        .set_device_profile(ACTOR, h.tenant, d.id, p2.id)
        .await
        .unwrap();
    let u = h.latest(&d).await;
    assert_eq!(u.state, UpdateState::Canceled);
    assert!(u.error.unwrap().contains("incompatible"));
    h.ota.resume_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    assert_eq!(h.ota.tick().await.unwrap().released, 0);
    assert!(h.take_update_notices().is_empty());
    let stats = h.ota.campaign_stats(h.tenant, c.id).await.unwrap();
    assert_eq!(stats.counts.canceled(), 1);
}

// Rule 4.

#[tokio::test]
async fn resume_applies_only_to_a_paused_campaign() {
    let h = Harness::new(OtaConfig::default());
    let (p, _, pkg) = h.fleet(1, "3.0").await;
    let draft = h.draft(by_profile(&p, &pkg)).await;
    let err = h
        .ota
        .resume_campaign(ACTOR, h.tenant, draft.id)
        .await
        .unwrap_err();
    assert!(matches!(err, OtaError::IllegalTransition(_)), "{err}");
    assert!(err.to_string().contains("DRAFT"), "{err}");
    assert_eq!(h.campaign_state(&draft).await, CampaignState::Draft);
    let mut spec = by_profile(&p, &pkg);
    spec.start_at = Some(h.ota.now() + Duration::hours(1));
    let scheduled = h.started(spec).await;
    assert_eq!(scheduled.state, CampaignState::Scheduled);
    let err = h
        .ota
        .resume_campaign(ACTOR, h.tenant, scheduled.id)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SCHEDULED"), "{err}");
}

#[tokio::test]
async fn after_a_threshold_pause_a_resumed_campaign_counts_failures_since_the_resume() {
    let h = Harness::new(OtaConfig::default());
    let (p, devices, pkg) = h.fleet(4, "3.0").await;
    let mut spec = by_profile(&p, &pkg);
    spec.error_threshold = half_failed(ThresholdAction::Pause);
    let c = h.started(spec).await;
    h.ota.tick().await.unwrap();
    h.fail(&devices[0]).await;
    h.ota.tick().await.unwrap();
    assert_eq!(h.campaign_state(&c).await, CampaignState::Paused);
    h.ota.resume_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    h.ota.tick().await.unwrap();
    assert_eq!(
        h.campaign_state(&c).await,
        CampaignState::Running,
        "the failure before the resume no longer counts"
    );
    h.runs(&devices[1], "3.0").await;
    h.ota.tick().await.unwrap();
    assert_eq!(h.campaign_state(&c).await, CampaignState::Running);
    h.fail(&devices[2]).await;
    h.ota.tick().await.unwrap();
    let c = h.ota.campaign(h.tenant, c.id).await.unwrap();
    assert_eq!(c.state, CampaignState::Paused, "1 of 2 since the resume");
}

#[tokio::test]
async fn the_span_is_checked_when_a_campaign_is_started_by_hand() {
    let h = Harness::new(OtaConfig::default());
    let (p, _, pkg) = h.fleet(1, "3.0").await;
    let mut spec = by_profile(&p, &pkg);
    spec.finish_at = Some(h.ota.now() + Duration::days(200));
    let c = h.draft(spec).await;
    let err = h
        .ota
        .start_campaign(ACTOR, h.tenant, c.id)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            OtaError::InvalidCampaign(CampaignError::SpanTooLong { .. })
        ),
        "{err}"
    );
    assert_eq!(h.campaign_state(&c).await, CampaignState::Draft);
}

#[tokio::test]
async fn copying_a_campaign_with_a_device_list_copies_the_list() {
    let h = Harness::new(OtaConfig::default());
    let (_, _, pkg) = h.fleet(3, "3.0").await;
    let spec = CampaignSpec::new("listed", pkg.id, CampaignTarget::DeviceList);
    let c = h.draft(spec).await;
    h.ota
        .import_campaign_devices(ACTOR, h.tenant, c.id, b"DeviceName\nd-0\nd-2\n")
        .await
        .unwrap();
    let copy = h
        .ota
        .copy_campaign(ACTOR, h.tenant, c.id, None)
        .await
        .unwrap();
    assert_eq!(
        h.store
            .count_campaign_devices(h.tenant, copy.id)
            .await
            .unwrap(),
        2
    );
    let copy = h
        .ota
        .start_campaign(ACTOR, h.tenant, copy.id)
        .await
        .unwrap();
    assert_eq!(copy.wave_sizes, vec![2]);
}

// Rule 5.

#[tokio::test]
async fn stopping_a_campaign_withdraws_the_notice_of_devices_in_progress() {
    let h = Harness::new(OtaConfig::default());
    let (p, d) = h.one_device().await;
    let pkg = h.package("fw", "3.0").await;
    let c = h.started(by_profile(&p, &pkg)).await;
    h.ota.tick().await.unwrap();
    h.ota.stop_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    assert_eq!(h.latest(&d).await.state, UpdateState::Canceled);
    assert_eq!(withdrawals_to(&h, &d), 1);
}

#[tokio::test]
async fn the_finish_time_withdraws_the_notice_of_devices_in_progress() {
    let h = Harness::new(OtaConfig::default());
    let (p, d) = h.one_device().await;
    let pkg = h.package("fw", "3.0").await;
    let mut spec = by_profile(&p, &pkg);
    // Before the default INITIATED timeout (one hour), which would fail the attempt first.
    spec.finish_at = Some(h.ota.now() + Duration::minutes(50));
    let c = h.started(spec).await;
    h.ota.tick().await.unwrap();
    h.advance_ms(55 * 60_000);
    h.ota.tick().await.unwrap();
    assert_eq!(h.campaign_state(&c).await, CampaignState::Finished);
    assert_eq!(h.latest(&d).await.state, UpdateState::Canceled);
    assert_eq!(withdrawals_to(&h, &d), 1);
}

#[tokio::test]
async fn replacing_an_update_in_flight_by_the_version_the_device_runs_withdraws_the_notice() {
    let h = Harness::new(OtaConfig::default());
    let (_, d) = h.one_device().await;
    let a = h.package("fw", "2.0").await;
    let b = h.package("fw", "1.0").await;
    h.runs(&d, "1.0").await;
    h.assign_device(&d, &a).await;
    h.ota.tick().await.unwrap();
    assert_eq!(h.latest(&d).await.state, UpdateState::Initiated);
    h.advance_ms(1_000);
    h.assign_device(&d, &b).await;
    assert_eq!(h.latest(&d).await.state, UpdateState::Canceled);
    assert_eq!(withdrawals_to(&h, &d), 1);
}

// Rule 6.

#[tokio::test]
async fn a_dynamic_campaign_keeps_running_and_takes_devices_that_join_later() {
    let h = Harness::new(OtaConfig::default());
    let p = h.profile("p").await;
    let first = h.devices(&p, "a", 1).await.remove(0);
    let pkg = h.package("fw", "3.0").await;
    let mut spec = by_profile(&p, &pkg);
    spec.dynamic = true;
    let c = h.started(spec).await;
    h.ota.tick().await.unwrap();
    h.runs(&first, "3.0").await;
    h.ota.tick().await.unwrap();
    assert_eq!(
        h.campaign_state(&c).await,
        CampaignState::Running,
        "the devices known so far are done, but more may join"
    );
    let late = h.devices(&p, "b", 1).await.remove(0);
    let u = h.latest(&late).await;
    assert_eq!(u.campaign_id, Some(c.id));
    h.ota.tick().await.unwrap();
    assert_eq!(h.latest(&late).await.state, UpdateState::Initiated);
}

#[tokio::test]
async fn a_dynamic_campaign_takes_a_device_that_reports_a_targeted_source_version_later() {
    let h = Harness::new(OtaConfig::default());
    let (p, d) = h.one_device().await;
    let pkg = h.package("fw", "3.0").await;
    let mut spec = by_profile(&p, &pkg);
    spec.dynamic = true;
    spec.target = CampaignTarget::Selection {
        profile: Some(p.id),
        groups: BTreeSet::new(),
        source_versions: BTreeSet::from(["1.0".to_string()]),
    };
    let c = h.started(spec).await;
    assert!(h
        .store
        .latest_update(h.tenant, d.id, PackageKind::Firmware)
        .await
        .unwrap()
        .is_none());
    h.runs(&d, "1.0").await;
    let u = h.latest(&d).await;
    assert_eq!(u.campaign_id, Some(c.id));
}

// Issue 11, item 2: ending a campaign is resumable.

/// A running campaign over `n` devices, one of them notified: then the process "dies" right
/// after saving the STOPPED state, before canceling anything.
async fn stopped_half_way(n: usize) -> (Harness, Vec<Device>, Campaign) {
    let mut config = OtaConfig::default();
    let mut pacing = ota_core::pacing::Pacing::default();
    pacing.max_in_progress = Some(1);
    config.global_pacing = pacing;
    let h = Harness::new(config);
    let p = h.profile("p").await;
    let devices = h.devices(&p, "d", n).await;
    let pkg = h.package("fw", "3.0").await;
    let c = h.started(by_profile(&p, &pkg)).await;
    h.ota.tick().await.unwrap();
    let mut stopped = h.ota.campaign(h.tenant, c.id).await.unwrap();
    let revision = stopped.revision;
    stopped.state = CampaignState::Stopped;
    stopped.revision += 1;
    h.store
        .save_campaign(&stopped, revision, None)
        .await
        .unwrap();
    (h, devices, stopped)
}

async fn live_under(h: &Harness, c: &Campaign) -> u64 {
    let filter = UpdateFilter {
        campaign_id: Some(c.id),
        states: UpdateState::ALL
            .into_iter()
            .filter(|s| !s.is_terminal())
            .collect(),
        ..UpdateFilter::default()
    };
    h.store
        .count_updates(Some(h.tenant), &filter)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_tick_finishes_canceling_a_campaign_that_ended_half_way() {
    let (h, devices, c) = stopped_half_way(5).await;
    assert_eq!(live_under(&h, &c).await, 5);
    h.ota.tick().await.unwrap();
    assert_eq!(live_under(&h, &c).await, 0);
    let withdrawn: usize = devices.iter().map(|d| withdrawals_to(&h, d)).sum();
    assert_eq!(withdrawn, 1, "the one device that was told");
    // Idempotent: nothing more to do, nothing more sent.
    let before = h.notifier.notices().len();
    h.ota.tick().await.unwrap();
    assert_eq!(h.notifier.notices().len(), before);
    // The devices are free for a new campaign.
    let pkg = h.package("fw", "4.0").await;
    let p = h
        .ota
        .device(h.tenant, devices[0].id)
        .await
        .unwrap()
        .profile_id;
    let spec = CampaignSpec::new(
        "next",
        pkg.id,
        CampaignTarget::Selection {
            profile: Some(p),
            groups: BTreeSet::new(),
            source_versions: BTreeSet::new(),
        },
    );
    let next = h.started(spec).await;
    assert!(next.skipped.is_empty(), "{:?}", next.skipped);
}

#[tokio::test]
async fn a_second_stop_finishes_the_canceling_instead_of_being_refused() {
    let (h, _devices, c) = stopped_half_way(3).await;
    let again = h.ota.stop_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    assert_eq!(again.state, CampaignState::Stopped);
    assert_eq!(live_under(&h, &c).await, 0);
}
