//! Campaigns in the engine over the memory store: lifecycle, schedule, waves, thresholds,
//! stop and finish, device lists, pacing and dynamic targets.

mod support;

use chrono::Duration;
use ota_core::campaign::{
    CampaignSpec, CampaignState, CampaignTarget, ErrorThreshold, ThresholdAction, Wave,
    WaveAdvance, WaveSize,
};
use ota_core::engine::{OtaConfig, OtaError};
use ota_core::pacing::{Pacing, Rate};
use ota_core::store::{CampaignStore, DeviceStore, UpdateFilter, UpdateStore};
use ota_core::{Device, DeviceProfile, Package, PackageKind, UpdateState};
use std::collections::BTreeSet;
use support::*;

async fn setup(n: usize) -> (Harness, DeviceProfile, Vec<Device>, Package) {
    let h = Harness::new(OtaConfig::default());
    let p = h.profile("p").await;
    let devices = h.devices(&p, "d", n).await;
    let pkg = h.package("fw", "2.0").await;
    (h, p, devices, pkg)
}

async fn finish(h: &Harness, device: ota_core::DeviceId) {
    h.ota
        .handle_report(h.tenant, device, &running("fw", "2.0"))
        .await
        .unwrap();
}

async fn fail(h: &Harness, device: ota_core::DeviceId) {
    let mut r = report(Some(UpdateState::Failed));
    r.error = Some("flash error".into());
    h.ota.handle_report(h.tenant, device, &r).await.unwrap();
}

#[tokio::test]
async fn lifecycle_edits_only_drafts_and_names_the_state_of_illegal_steps() {
    let (h, p, _devices, pkg) = setup(3).await;
    let c = h.draft(by_profile(&p, &pkg)).await;
    assert_eq!(c.state, CampaignState::Draft);
    let mut spec = c.spec.clone();
    spec.description = Some("edited".into());
    let edited = h
        .ota
        .edit_campaign(ACTOR, h.tenant, c.id, spec.clone())
        .await
        .unwrap();
    assert_eq!(edited.spec.description.as_deref(), Some("edited"));

    let err = h
        .ota
        .pause_campaign(ACTOR, h.tenant, c.id)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "a DRAFT campaign cannot become PAUSED");
    let running_c = h.ota.start_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    assert_eq!(running_c.state, CampaignState::Running);
    assert!(matches!(
        h.ota.edit_campaign(ACTOR, h.tenant, c.id, spec).await,
        Err(OtaError::NotAllowed { .. })
    ));
    let err = h
        .ota
        .archive_campaign(ACTOR, h.tenant, c.id)
        .await
        .unwrap_err();
    assert!(matches!(err, OtaError::IllegalTransition(_)), "{err}");
    assert!(err.to_string().contains("RUNNING"));
    assert_eq!(
        h.ota
            .pause_campaign(ACTOR, h.tenant, c.id)
            .await
            .unwrap()
            .state,
        CampaignState::Paused
    );
    assert_eq!(
        h.ota.tick().await.unwrap().released,
        0,
        "a paused campaign releases nothing"
    );
    assert_eq!(
        h.ota
            .resume_campaign(ACTOR, h.tenant, c.id)
            .await
            .unwrap()
            .state,
        CampaignState::Running
    );
    assert_eq!(h.ota.tick().await.unwrap().released, 3);

    let copy = h
        .ota
        .copy_campaign(ACTOR, h.tenant, c.id, None)
        .await
        .unwrap();
    assert_eq!(
        (copy.state, copy.spec.name.as_str()),
        (CampaignState::Draft, "Copy of rollout")
    );
    assert_ne!(copy.id, c.id);
}

#[tokio::test]
async fn invalid_definitions_are_typed_errors() {
    let (h, p, _devices, pkg) = setup(1).await;
    let mut spec = by_profile(&p, &pkg);
    spec.name = "  ".into();
    assert!(matches!(
        h.ota.create_campaign(ACTOR, h.tenant, spec).await,
        Err(OtaError::InvalidCampaign(_))
    ));
    let mut spec = by_profile(&p, &pkg);
    let start = h.ota.now();
    spec.start_at = Some(start);
    spec.finish_at = Some(start + Duration::days(200));
    let err = h
        .ota
        .create_campaign(ACTOR, h.tenant, spec)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("200 days"), "{err}");
    let mut spec = by_profile(&p, &pkg);
    spec.waves = vec![Wave {
        size: WaveSize::Percent(150.0),
        advance: WaveAdvance::default(),
    }];
    assert!(err_text(h.ota.create_campaign(ACTOR, h.tenant, spec).await).contains("wave 0"));
    let mut spec = by_profile(&p, &pkg);
    spec.target = CampaignTarget::Selection {
        profile: None,
        groups: BTreeSet::new(),
        source_versions: BTreeSet::new(),
    };
    assert!(err_text(h.ota.create_campaign(ACTOR, h.tenant, spec).await).contains("target"));
    let mut spec = by_profile(&p, &pkg);
    spec.package_id = ota_core::PackageId::new();
    assert!(h
        .ota
        .create_campaign(ACTOR, h.tenant, spec)
        .await
        .unwrap_err()
        .is_not_found());
}

fn err_text<T: std::fmt::Debug>(r: Result<T, OtaError>) -> String {
    r.unwrap_err().to_string()
}

#[tokio::test]
async fn a_scheduled_campaign_starts_at_its_start_time() {
    let (h, p, _devices, pkg) = setup(4).await;
    let mut spec = by_profile(&p, &pkg);
    spec.start_at = Some(h.ota.now() + Duration::minutes(10));
    let c = h.draft(spec).await;
    let c = h.ota.start_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    assert_eq!(c.state, CampaignState::Scheduled);
    h.clock.advance(Duration::minutes(9));
    let t = h.ota.tick().await.unwrap();
    assert_eq!((t.campaigns_started, t.released), (0, 0));
    h.clock.advance(Duration::minutes(1));
    let t = h.ota.tick().await.unwrap();
    assert_eq!(t.campaigns_started, 1);
    let c = h.ota.campaign(h.tenant, c.id).await.unwrap();
    assert_eq!(c.state, CampaignState::Running);
    h.ota.tick().await.unwrap();
    let stats = h.ota.campaign_stats(h.tenant, c.id).await.unwrap();
    assert_eq!(stats.counts.ongoing(), 4);
}

#[tokio::test]
async fn waves_release_in_turn_on_success_and_the_campaign_finishes() {
    let (h, p, devices, pkg) = setup(10).await;
    let mut spec = by_profile(&p, &pkg);
    spec.waves = vec![
        Wave {
            size: WaveSize::Count(2),
            advance: WaveAdvance::default(),
        },
        Wave::after_success(WaveSize::Percent(30.0), 100.0),
        Wave {
            size: WaveSize::Rest,
            advance: WaveAdvance {
                success_percent: None,
                after: Some(Duration::hours(1)),
            },
        },
    ];
    let c = h.draft(spec).await;
    let c = h.ota.start_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    assert_eq!(c.wave_sizes, vec![2, 3, 5]);
    assert_eq!(h.ota.tick().await.unwrap().released, 2);
    assert_eq!(
        h.ota.tick().await.unwrap().released,
        0,
        "wave 0 holds the rest back"
    );
    let first: Vec<_> = h
        .take_update_notices()
        .iter()
        .map(|n| n.device_id())
        .collect();
    finish(&h, first[0]).await;
    assert_eq!(
        h.ota.tick().await.unwrap().released,
        0,
        "1 of 2 is not 100%"
    );
    finish(&h, first[1]).await;
    assert_eq!(
        h.ota.tick().await.unwrap().released,
        3,
        "wave 1 starts on success"
    );
    assert_eq!(
        h.ota.campaign(h.tenant, c.id).await.unwrap().current_wave,
        1
    );
    for n in h.take_update_notices() {
        finish(&h, n.device_id()).await;
    }
    assert_eq!(
        h.ota.tick().await.unwrap().released,
        0,
        "wave 2 waits an hour"
    );
    h.clock.advance(Duration::hours(1));
    assert_eq!(h.ota.tick().await.unwrap().released, 5);
    for n in h.take_update_notices() {
        finish(&h, n.device_id()).await;
    }
    let t = h.ota.tick().await.unwrap();
    assert_eq!(t.campaigns_ended, 1);
    let c = h.ota.campaign(h.tenant, c.id).await.unwrap();
    assert_eq!(c.state, CampaignState::Finished);
    let stats = h.ota.campaign_stats(h.tenant, c.id).await.unwrap();
    assert_eq!(
        (stats.counts.successful(), stats.counts.finished()),
        (10, 10)
    );
    assert_eq!(devices.len(), 10);
    assert_eq!(
        h.ota
            .archive_campaign(ACTOR, h.tenant, c.id)
            .await
            .unwrap()
            .state,
        CampaignState::Archived
    );
}

#[tokio::test]
async fn an_operator_can_start_the_next_wave() {
    let (h, p, _devices, pkg) = setup(4).await;
    let mut spec = by_profile(&p, &pkg);
    spec.waves = vec![
        Wave {
            size: WaveSize::Count(1),
            advance: WaveAdvance::default(),
        },
        Wave {
            size: WaveSize::Rest,
            advance: WaveAdvance::default(),
        },
    ];
    let c = h.draft(spec).await;
    h.ota.start_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    assert_eq!(h.ota.tick().await.unwrap().released, 1);
    h.clock.advance(Duration::days(30));
    assert_eq!(
        h.ota.tick().await.unwrap().released,
        0,
        "manual waves wait for the operator"
    );
    let c = h
        .ota
        .advance_campaign_wave(ACTOR, h.tenant, c.id)
        .await
        .unwrap();
    assert_eq!(c.current_wave, 1);
    assert_eq!(h.ota.tick().await.unwrap().released, 3);
    assert!(matches!(
        h.ota.advance_campaign_wave(ACTOR, h.tenant, c.id).await,
        Err(OtaError::NotAllowed { .. })
    ));
}

#[tokio::test]
async fn the_error_threshold_pauses_or_fails_the_campaign() {
    for action in [ThresholdAction::Pause, ThresholdAction::Fail] {
        let (h, p, _devices, pkg) = setup(6).await;
        let mut spec = by_profile(&p, &pkg);
        spec.error_threshold = Some(ErrorThreshold {
            percent: 50.0,
            min_finished: 3,
            action,
        });
        spec.waves = vec![
            Wave {
                size: WaveSize::Count(3),
                advance: WaveAdvance::default(),
            },
            Wave {
                size: WaveSize::Rest,
                advance: WaveAdvance::default(),
            },
        ];
        let c = h.draft(spec).await;
        h.ota.start_campaign(ACTOR, h.tenant, c.id).await.unwrap();
        h.ota.tick().await.unwrap();
        let notified: Vec<_> = h
            .take_update_notices()
            .iter()
            .map(|n| n.device_id())
            .collect();
        assert_eq!(notified.len(), 3);
        fail(&h, notified[0]).await;
        fail(&h, notified[1]).await;
        h.ota.tick().await.unwrap();
        assert_eq!(
            h.campaign_state(&c).await,
            CampaignState::Running,
            "2 finished < 3"
        );
        finish(&h, notified[2]).await;
        h.ota.tick().await.unwrap();
        let after = h.ota.campaign(h.tenant, c.id).await.unwrap();
        let expected = match action {
            ThresholdAction::Pause => CampaignState::Paused,
            ThresholdAction::Fail => CampaignState::Failed,
        };
        assert_eq!(after.state, expected);
        assert!(after
            .state_reason
            .unwrap()
            .contains("2 failed of 3 finished"));
        let stats = h.ota.campaign_stats(h.tenant, c.id).await.unwrap();
        if action == ThresholdAction::Fail {
            assert_eq!(stats.counts.not_started(), 0, "queued devices are canceled");
        }
    }
}

#[tokio::test]
async fn stop_cancels_pending_and_ongoing_updates_and_keeps_history() {
    let (h, p, devices, pkg) = setup(5).await;
    let mut spec = by_profile(&p, &pkg);
    spec.waves = vec![
        Wave {
            size: WaveSize::Count(2),
            advance: WaveAdvance::default(),
        },
        Wave {
            size: WaveSize::Rest,
            advance: WaveAdvance::default(),
        },
    ];
    let c = h.draft(spec).await;
    h.ota.start_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    h.ota.tick().await.unwrap();
    let notified: Vec<_> = h
        .take_update_notices()
        .iter()
        .map(|n| n.device_id())
        .collect();
    finish(&h, notified[0]).await;
    let c = h.ota.stop_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    assert_eq!(c.state, CampaignState::Stopped);
    let stats = h.ota.campaign_stats(h.tenant, c.id).await.unwrap();
    assert_eq!(
        (
            stats.counts.successful(),
            stats.counts.canceled(),
            stats.counts.ongoing(),
            stats.counts.not_started()
        ),
        (1, 4, 0, 0)
    );
    let u = h
        .store
        .latest_update(h.tenant, notified[1], PackageKind::Firmware)
        .await
        .unwrap()
        .unwrap();
    let history = h.store.update_history(h.tenant, u.id).await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.to).collect::<Vec<_>>(),
        vec![UpdateState::Initiated, UpdateState::Canceled]
    );
    assert_eq!(devices.len(), 5);
    assert_eq!(h.ota.tick().await.unwrap().released, 0);
}

#[tokio::test]
async fn at_finish_time_what_is_not_terminal_is_canceled() {
    let (h, p, _devices, pkg) = setup(3).await;
    let mut spec = by_profile(&p, &pkg);
    spec.start_at = Some(h.ota.now());
    // Before the default INITIATED timeout (one hour) fails the unanswered ones.
    spec.finish_at = Some(h.ota.now() + Duration::minutes(50));
    let c = h.draft(spec).await;
    h.ota.start_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    h.ota.tick().await.unwrap();
    let first = h.take_update_notices()[0].device_id();
    finish(&h, first).await;
    h.clock.advance(Duration::minutes(50));
    assert_eq!(h.ota.tick().await.unwrap().campaigns_ended, 1);
    let c = h.ota.campaign(h.tenant, c.id).await.unwrap();
    assert_eq!(c.state, CampaignState::Finished);
    let stats = h.ota.campaign_stats(h.tenant, c.id).await.unwrap();
    assert_eq!((stats.counts.successful(), stats.counts.canceled()), (1, 2));
}

#[tokio::test]
async fn csv_device_lists_report_unknown_and_incompatible_rows() {
    let (h, p, devices, _pkg) = setup(4).await;
    let other = h.profile("other").await;
    let outsider = h.devices(&other, "o", 1).await.remove(0);
    let mut new =
        ota_core::engine::NewPackage::new(h.tenant, PackageKind::Firmware, "only-p", "1.0");
    new.compatibility = ota_core::Compatibility::Profiles(vec![p.id]);
    let pkg = h
        .ota
        .upload_package(ACTOR, new, stream_of(b"bytes".to_vec(), 2))
        .await
        .unwrap();
    let spec = CampaignSpec::new("list", pkg.id, CampaignTarget::DeviceList);
    let c = h.draft(spec).await;
    let csv = format!(
        "DeviceName\n{}\nnobody\n{}\n{}\n",
        devices[0].name, outsider.name, devices[2].name
    );
    let report = h
        .ota
        .import_campaign_devices(ACTOR, h.tenant, c.id, csv.as_bytes())
        .await
        .unwrap();
    assert_eq!(report.accepted, 2);
    let skipped: Vec<_> = report
        .skipped
        .iter()
        .map(|s| (s.line, s.name.as_str()))
        .collect();
    assert_eq!(skipped, vec![(3, "nobody"), (4, outsider.name.as_str())]);
    assert!(report.skipped[1].reason.contains("compatible"));
    assert!(matches!(
        h.ota
            .import_campaign_devices(ACTOR, h.tenant, c.id, b"Name\nx")
            .await,
        Err(OtaError::InvalidDeviceList(_))
    ));
    h.ota.start_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    assert_eq!(h.ota.tick().await.unwrap().released, 2);
}

#[tokio::test]
async fn a_device_list_of_two_hundred_thousand_rows_imports() {
    let h = Harness::new(OtaConfig::default());
    let p = h.profile("p").await;
    const N: usize = 200_000;
    let devices: Vec<Device> = (0..N)
        .map(|i| {
            h.ota.new_device(
                h.tenant,
                &format!("dev-{i}"),
                p.id,
                BTreeSet::new(),
                &format!("tok-{i}"),
            )
        })
        .collect();
    // Straight into the store: this test is about the import, not device creation.
    h.store.create_devices(&devices, None).await.unwrap();
    let pkg = h.package("fw", "2.0").await;
    let c = h
        .ota
        .create_campaign(
            ACTOR,
            h.tenant,
            CampaignSpec::new("big", pkg.id, CampaignTarget::DeviceList),
        )
        .await
        .unwrap();
    let mut csv = String::with_capacity(N * 12);
    csv.push_str("DeviceName\n");
    for i in 0..N {
        csv.push_str(&format!("dev-{i}\n"));
    }
    csv.push_str("missing-device\n");
    let report = h
        .ota
        .import_campaign_devices(ACTOR, h.tenant, c.id, csv.as_bytes())
        .await
        .unwrap();
    assert_eq!(report.accepted, N as u64);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(
        h.store
            .count_campaign_devices(h.tenant, c.id)
            .await
            .unwrap(),
        N as u64
    );
}

#[tokio::test]
async fn campaign_pacing_holds_within_the_global_pace() {
    let config = OtaConfig::default().global_pacing(
        Pacing::default()
            .rate(Rate::new(2, Duration::seconds(1)).unwrap())
            .catch_up(Duration::zero()),
    );
    let h = Harness::new(config);
    let p = h.profile("p").await;
    h.devices(&p, "d", 20).await;
    let pkg = h.package("fw", "2.0").await;
    let mut spec = by_profile(&p, &pkg);
    spec.pacing = Pacing::default()
        .rate(Rate::new(10, Duration::seconds(1)).unwrap())
        .max_in_progress(5)
        .catch_up(Duration::zero());
    let c = h.draft(spec).await;
    h.ota.start_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    let mut per_second = Vec::new();
    for _ in 0..5 {
        let mut n = 0;
        for _ in 0..10 {
            n += h.ota.tick().await.unwrap().released;
            h.advance_ms(100);
        }
        per_second.push(n);
    }
    assert!(
        per_second.iter().all(|n| *n <= 2),
        "the global pace of 2/s holds: {per_second:?}"
    );
    let stats = h.ota.campaign_stats(h.tenant, c.id).await.unwrap();
    assert_eq!(
        stats.counts.ongoing(),
        5,
        "the campaign's window of 5 holds"
    );
}

#[tokio::test]
async fn dynamic_campaigns_take_devices_that_join_the_target() {
    let (h, p, _devices, pkg) = setup(2).await;
    let g = h.ota.create_group(ACTOR, h.tenant, "late").await.unwrap();
    let mut spec = by_profile(&p, &pkg);
    spec.target = CampaignTarget::Selection {
        profile: None,
        groups: [g.id].into_iter().collect(),
        source_versions: BTreeSet::new(),
    };
    spec.dynamic = true;
    let c = h.draft(spec).await;
    h.ota.start_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    assert_eq!(
        h.ota
            .campaign_stats(h.tenant, c.id)
            .await
            .unwrap()
            .counts
            .total(),
        0
    );
    let joined = h.devices(&p, "new", 1).await.remove(0);
    h.ota
        .set_device_groups(ACTOR, h.tenant, joined.id, [g.id].into_iter().collect())
        .await
        .unwrap();
    assert_eq!(
        h.ota
            .campaign_stats(h.tenant, c.id)
            .await
            .unwrap()
            .counts
            .total(),
        1
    );
    assert_eq!(h.ota.tick().await.unwrap().released, 1);
    assert_eq!(h.take_update_notices()[0].device_id(), joined.id);
}

#[tokio::test]
async fn campaign_timeouts_apply_and_failed_devices_are_retried() {
    let (h, p, _devices, pkg) = setup(4).await;
    let mut spec = by_profile(&p, &pkg);
    spec.policy.timeouts =
        ota_core::update::Timeouts::none().with(UpdateState::Initiated, Duration::minutes(5));
    // A second wave started by hand keeps the campaign running after the first one fails.
    spec.waves = vec![
        Wave {
            size: WaveSize::Count(3),
            advance: WaveAdvance::default(),
        },
        Wave {
            size: WaveSize::Rest,
            advance: WaveAdvance::default(),
        },
    ];
    let c = h.draft(spec).await;
    h.ota.start_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    assert_eq!(h.ota.tick().await.unwrap().released, 3);
    h.take_update_notices();
    h.clock.advance(Duration::minutes(5));
    assert_eq!(
        h.ota.tick().await.unwrap().timed_out,
        3,
        "the campaign's timeout applies"
    );
    let stats = h.ota.campaign_stats(h.tenant, c.id).await.unwrap();
    assert_eq!(stats.counts.failed(), 3);
    let failed = UpdateFilter {
        campaign_id: Some(c.id),
        states: vec![UpdateState::Failed],
        ..UpdateFilter::default()
    };
    assert_eq!(
        h.store
            .count_updates(Some(h.tenant), &failed)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        h.ota
            .retry_failed_in_campaign(ACTOR, h.tenant, c.id)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        h.ota.tick().await.unwrap().released,
        3,
        "retried attempts are released again"
    );
    let stats = h.ota.campaign_stats(h.tenant, c.id).await.unwrap();
    assert_eq!((stats.counts.failed(), stats.counts.ongoing()), (0, 3));
}

#[tokio::test]
async fn deleting_a_package_used_by_a_campaign_names_the_campaign() {
    let (h, p, _devices, pkg) = setup(1).await;
    let c = h.draft(by_profile(&p, &pkg)).await;
    let err = h
        .ota
        .delete_package(ACTOR, h.tenant, pkg.id)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&c.id.to_string()), "{err}");
}

#[tokio::test]
async fn devices_are_notified_only_inside_a_maintenance_window() {
    let (h, p, _devices, pkg) = setup(3).await;
    let mut spec = by_profile(&p, &pkg);
    spec.windows =
        vec![
            ota_core::window::MaintenanceWindow::new("0 3 * * *", Duration::hours(1), "UTC")
                .unwrap(),
        ];
    let c = h.draft(spec).await;
    h.ota.start_campaign(ACTOR, h.tenant, c.id).await.unwrap();
    assert_eq!(
        h.ota.tick().await.unwrap().released,
        0,
        "00:00 is outside 03:00-04:00"
    );
    h.clock.advance(Duration::hours(3));
    assert_eq!(h.ota.tick().await.unwrap().released, 3);
}
