//! Engine behaviour over the memory store, with a manual clock: pacing, timeouts, retries,
//! latest assignment wins, operator cancel and retry, downloads, package deletion.

mod support;

use chrono::Duration;
use ota_core::engine::{OtaConfig, OtaError};
use ota_core::pacing::{Pacing, Rate};
use ota_core::store::{StoreError, UpdateStore};
use ota_core::update::{RetryPolicy, Timeouts, UpdatePolicy};
use ota_core::{AssignmentTarget, PackageKind, UpdateState};
use support::*;

fn paced(count: u32, per_ms: i64, max_in_progress: Option<u32>) -> OtaConfig {
    let mut pacing =
        Pacing::default().rate(Rate::new(count, Duration::milliseconds(per_ms)).unwrap());
    pacing.max_in_progress = max_in_progress;
    OtaConfig::default().global_pacing(pacing)
}

#[tokio::test]
async fn assignment_to_a_profile_queues_every_device_and_ticks_release_them_evenly() {
    let h = Harness::new(paced(100, 60_000, None));
    let p = h.profile("p1").await;
    let devices = h.devices(&p, "d", 5).await;
    let f1 = h.package("fw", "1.0").await;
    h.ota
        .assign(ACTOR, h.tenant, AssignmentTarget::Profile(p.id), f1.id)
        .await
        .unwrap();
    for d in &devices {
        assert_eq!(h.state_of(d).await, Some(UpdateState::Queued));
    }
    // 100 per minute is one every 600 ms.
    let mut released_at = Vec::new();
    for step in 0..40 {
        let report = h.ota.tick().await.unwrap();
        assert!(
            report.released <= 1,
            "step {step}: released {}",
            report.released
        );
        if report.released == 1 {
            released_at.push(step * 100);
        }
        h.advance_ms(100);
    }
    assert_eq!(released_at, vec![0, 600, 1200, 1800, 2400]);
    let notices = h.take_update_notices();
    assert_eq!(notices.len(), 5);
    for d in &devices {
        assert_eq!(h.state_of(d).await, Some(UpdateState::Initiated));
    }
}

#[tokio::test]
async fn the_concurrency_window_holds_releases_until_devices_finish() {
    let h = Harness::new(paced(1000, 1000, Some(2)));
    let p = h.profile("p1").await;
    let devices = h.devices(&p, "d", 5).await;
    let f1 = h.package("fw", "1.0").await;
    h.ota
        .assign(ACTOR, h.tenant, AssignmentTarget::Profile(p.id), f1.id)
        .await
        .unwrap();
    let mut total = 0;
    for _ in 0..20 {
        total += h.ota.tick().await.unwrap().released;
        h.advance_ms(100);
    }
    assert_eq!(total, 2, "at most two in progress");
    let first = h.take_update_notices();
    let done = first[0].device_id();
    h.ota
        .handle_report(h.tenant, done, &running("fw", "1.0"))
        .await
        .unwrap();
    let mut more = 0;
    for _ in 0..20 {
        more += h.ota.tick().await.unwrap().released;
        h.advance_ms(100);
    }
    assert_eq!(more, 1, "one finished, one more released");
    let states: Vec<_> =
        futures_util::future::join_all(devices.iter().map(|d| h.state_of(d))).await;
    assert_eq!(
        states
            .iter()
            .filter(|s| **s == Some(UpdateState::Updated))
            .count(),
        1
    );
    assert_eq!(
        states
            .iter()
            .filter(|s| **s == Some(UpdateState::Initiated))
            .count(),
        2
    );
    assert_eq!(
        states
            .iter()
            .filter(|s| **s == Some(UpdateState::Queued))
            .count(),
        2
    );
}

#[tokio::test]
async fn a_state_that_times_out_fails_with_the_state_named() {
    let config = OtaConfig::default().policy(
        UpdatePolicy::default()
            .timeouts(Timeouts::default().with(UpdateState::Initiated, Duration::minutes(10))),
    );
    let h = Harness::new(config);
    let p = h.profile("p1").await;
    let d = h.devices(&p, "d", 1).await.remove(0);
    let f1 = h.package("fw", "1.0").await;
    h.ota
        .assign(ACTOR, h.tenant, AssignmentTarget::Device(d.id), f1.id)
        .await
        .unwrap();
    assert_eq!(h.ota.tick().await.unwrap().released, 1);
    h.clock.advance(Duration::minutes(9));
    assert_eq!(h.ota.tick().await.unwrap().timed_out, 0);
    assert_eq!(h.state_of(&d).await, Some(UpdateState::Initiated));
    h.clock.advance(Duration::minutes(1));
    assert_eq!(h.ota.tick().await.unwrap().timed_out, 1);
    let u = h
        .store
        .latest_update(h.tenant, d.id, PackageKind::Firmware)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.state, UpdateState::Failed);
    assert!(
        u.error.as_deref().unwrap_or("").contains("INITIATED"),
        "{:?}",
        u.error
    );
}

#[tokio::test]
async fn failed_updates_retry_with_exponential_backoff_until_attempts_run_out() {
    let retry = RetryPolicy::attempts(3, Duration::minutes(1))
        .multiplier(2)
        .max_backoff(Duration::hours(1));
    let config = OtaConfig::default().policy(UpdatePolicy::default().retry(retry));
    let h = Harness::new(config);
    let p = h.profile("p1").await;
    let d = h.devices(&p, "d", 1).await.remove(0);
    let f1 = h.package("fw", "1.0").await;
    h.ota
        .assign(ACTOR, h.tenant, AssignmentTarget::Device(d.id), f1.id)
        .await
        .unwrap();

    let mut fail = report(Some(UpdateState::Failed));
    fail.error = Some("flash write error".into());
    let backoffs = [1, 2];
    assert_eq!(
        h.ota.tick().await.unwrap().released,
        1,
        "attempt 1 released"
    );
    for (i, minutes) in backoffs.iter().enumerate() {
        h.ota.handle_report(h.tenant, d.id, &fail).await.unwrap();
        h.clock
            .advance(Duration::minutes(*minutes) - Duration::seconds(1));
        assert_eq!(
            h.ota.tick().await.unwrap().retried,
            0,
            "not before the backoff"
        );
        h.clock.advance(Duration::seconds(1));
        let t = h.ota.tick().await.unwrap();
        assert_eq!(
            (t.retried, t.released),
            (1, 1),
            "retried after {minutes} min and released in the same tick"
        );
        let u = h
            .store
            .latest_update(h.tenant, d.id, PackageKind::Firmware)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (u.attempt as usize, u.state),
            (i + 2, UpdateState::Initiated)
        );
    }
    h.ota.handle_report(h.tenant, d.id, &fail).await.unwrap();
    h.clock.advance(Duration::hours(2));
    let t = h.ota.tick().await.unwrap();
    assert_eq!((t.retried, t.released), (0, 0), "attempts exhausted");
    let u = h
        .store
        .latest_update(h.tenant, d.id, PackageKind::Firmware)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((u.state, u.attempt), (UpdateState::Failed, 3));
    let history = h.store.update_history(h.tenant, u.id).await.unwrap();
    assert!(history.iter().any(|e| e.attempt == 1) && history.iter().any(|e| e.attempt == 3));
    assert_eq!(h.take_update_notices().len(), 3, "one notice per attempt");
}

#[tokio::test]
async fn the_latest_assignment_wins_and_cancels_the_older_unfinished_update() {
    let h = Harness::new(OtaConfig::default());
    let p = h.profile("p1").await;
    let devices = h.devices(&p, "d", 2).await;
    let (d1, d2) = (&devices[0], &devices[1]);
    let f1 = h.package("fw", "1.0").await;
    let f2 = h.package("fw", "2.0").await;
    h.ota
        .assign(ACTOR, h.tenant, AssignmentTarget::Profile(p.id), f1.id)
        .await
        .unwrap();
    h.ota.tick().await.unwrap();
    let first = h
        .store
        .latest_update(h.tenant, d1.id, PackageKind::Firmware)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.state, UpdateState::Initiated);
    h.ota
        .assign(ACTOR, h.tenant, AssignmentTarget::Device(d1.id), f2.id)
        .await
        .unwrap();
    let old = h.store.get_update(h.tenant, first.id).await.unwrap();
    assert_eq!(old.state, UpdateState::Canceled);
    let new = h
        .store
        .latest_update(h.tenant, d1.id, PackageKind::Firmware)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((new.package_id, new.state), (f2.id, UpdateState::Queued));
    let other = h
        .store
        .latest_update(h.tenant, d2.id, PackageKind::Firmware)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (other.package_id, other.state),
        (f1.id, UpdateState::Initiated)
    );
    // Removing the device assignment makes the profile's package effective again.
    h.ota
        .unassign(
            ACTOR,
            h.tenant,
            PackageKind::Firmware,
            AssignmentTarget::Device(d1.id),
        )
        .await
        .unwrap();
    let back = h
        .store
        .latest_update(h.tenant, d1.id, PackageKind::Firmware)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((back.package_id, back.state), (f1.id, UpdateState::Queued));
}

#[tokio::test]
async fn a_device_already_running_the_target_is_not_updated() {
    let h = Harness::new(OtaConfig::default());
    let p = h.profile("p1").await;
    let d = h.devices(&p, "d", 1).await.remove(0);
    h.ota
        .handle_report(h.tenant, d.id, &running("fw", "1.0"))
        .await
        .unwrap();
    let f1 = h.package("fw", "1.0").await;
    h.ota
        .assign(ACTOR, h.tenant, AssignmentTarget::Device(d.id), f1.id)
        .await
        .unwrap();
    assert_eq!(h.state_of(&d).await, None);
}

#[tokio::test]
async fn operators_cancel_and_retry_one_device() {
    let h = Harness::new(OtaConfig::default());
    let p = h.profile("p1").await;
    let d = h.devices(&p, "d", 1).await.remove(0);
    let f1 = h.package("fw", "1.0").await;
    h.ota
        .assign(ACTOR, h.tenant, AssignmentTarget::Device(d.id), f1.id)
        .await
        .unwrap();
    h.ota.tick().await.unwrap();
    let canceled = h
        .ota
        .cancel_update(ACTOR, h.tenant, d.id, PackageKind::Firmware, "bad batch")
        .await
        .unwrap();
    assert_eq!(canceled.state, UpdateState::Canceled);
    let withdrawn = h
        .notifier
        .notices()
        .into_iter()
        .filter(|n| matches!(n, ota_core::notifier::Notice::Withdrawal { .. }))
        .count();
    assert_eq!(withdrawn, 1);
    let again = h
        .ota
        .cancel_update(ACTOR, h.tenant, d.id, PackageKind::Firmware, "twice")
        .await;
    assert!(
        matches!(again, Err(OtaError::NotAllowed { .. })),
        "{again:?}"
    );
    let retried = h
        .ota
        .retry_update(ACTOR, h.tenant, d.id, PackageKind::Firmware)
        .await
        .unwrap();
    assert_eq!((retried.state, retried.attempt), (UpdateState::Queued, 2));
    assert_eq!(h.ota.tick().await.unwrap().released, 1);
    let audit = ota_core::store::AuditStore::list_audit(&*h.store, h.tenant, Default::default())
        .await
        .unwrap();
    let actions: Vec<_> = audit.items.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.contains(&"update.cancel") && actions.contains(&"update.retry"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn downloads_are_authorized_for_the_assigned_package_only() {
    let h = Harness::new(OtaConfig::default());
    let p = h.profile("p1").await;
    let d = h.devices(&p, "d", 1).await.remove(0);
    let none = h
        .ota
        .authorize_download(&d, PackageKind::Firmware, None, None)
        .await;
    assert!(
        matches!(none, Err(OtaError::NothingAssigned { .. })),
        "{none:?}"
    );
    let f1 = h.package("fw", "1.0").await;
    h.ota
        .assign(ACTOR, h.tenant, AssignmentTarget::Device(d.id), f1.id)
        .await
        .unwrap();
    let ok = h
        .ota
        .authorize_download(&d, PackageKind::Firmware, Some("fw"), Some("1.0"))
        .await
        .unwrap();
    assert_eq!(ok.id, f1.id);
    let changed = h
        .ota
        .authorize_download(&d, PackageKind::Firmware, Some("fw"), Some("0.9"))
        .await;
    assert!(
        matches!(changed, Err(OtaError::NotAssignedPackage { .. })),
        "{changed:?}"
    );
    let sw = h
        .ota
        .authorize_download(&d, PackageKind::Software, None, None)
        .await;
    assert!(matches!(sw, Err(OtaError::NothingAssigned { .. })));
}

#[tokio::test]
async fn a_package_in_use_cannot_be_deleted_and_the_error_says_where() {
    let h = Harness::new(OtaConfig::default());
    let p = h.profile("p1").await;
    let f1 = h.package("fw", "1.0").await;
    h.ota
        .assign(ACTOR, h.tenant, AssignmentTarget::Profile(p.id), f1.id)
        .await
        .unwrap();
    let err = h
        .ota
        .delete_package(ACTOR, h.tenant, f1.id)
        .await
        .unwrap_err();
    assert!(matches!(err, OtaError::PackageInUse { .. }));
    assert!(err.to_string().contains(&p.id.to_string()), "{err}");
    h.ota
        .unassign(
            ACTOR,
            h.tenant,
            PackageKind::Firmware,
            AssignmentTarget::Profile(p.id),
        )
        .await
        .unwrap();
    h.ota.delete_package(ACTOR, h.tenant, f1.id).await.unwrap();
    let gone = h.ota.package(h.tenant, f1.id).await;
    assert!(matches!(
        gone,
        Err(OtaError::Store(StoreError::NotFound { .. }))
    ));
}

#[tokio::test]
async fn an_upload_whose_checksum_does_not_match_keeps_nothing() {
    let h = Harness::new(OtaConfig::default());
    let mut new = ota_core::engine::NewPackage::new(h.tenant, PackageKind::Firmware, "fw", "1.0");
    new.checksum = Some(ota_core::checksum::checksum_of(
        ota_core::ChecksumAlgorithm::Md5,
        b"other bytes",
    ));
    let err = h
        .ota
        .upload_package(ACTOR, new, stream_of(b"these bytes".to_vec(), 3))
        .await
        .unwrap_err();
    assert!(
        matches!(err, OtaError::Store(StoreError::ChecksumMismatch(_))),
        "{err:?}"
    );
    let found = ota_core::store::PackageStore::find_package(
        &*h.store,
        h.tenant,
        PackageKind::Firmware,
        "fw",
        "1.0",
    )
    .await
    .unwrap();
    assert!(found.is_none());
    let bad_title =
        ota_core::engine::NewPackage::new(h.tenant, PackageKind::Firmware, "a/b", "1.0");
    let err = h
        .ota
        .upload_package(ACTOR, bad_title, stream_of(vec![1, 2, 3], 2))
        .await
        .unwrap_err();
    assert!(matches!(err, OtaError::Validation(_)), "{err:?}");
}
