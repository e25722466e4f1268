//! Transitions written together: when the batched statement fails as a whole (here: one
//! transition would give a device a second unfinished update), every transition is written
//! on its own and gets its own answer. And with batching off, the same answers.

use futures::future::join_all;
use ota_core::conformance::Fixture;
use ota_core::store::{Store, StoreError, UpdateFilter};
use ota_core::update::{
    apply, EventSource, HistoryEntry, Outcome, Update, UpdateEvent, UpdatePolicy,
};
use ota_core::{Clock, ManualClock, PackageKind, UpdateState};
use ota_store_postgres::testing::fresh_database;
use ota_store_postgres::PgStore;
use std::sync::Arc;

fn applied(u: &Update, event: UpdateEvent, clock: &ManualClock) -> (Update, HistoryEntry) {
    match apply(u, &event, clock.now(), &UpdatePolicy::default()) {
        Outcome::Applied { update, history } => (update, history),
        other => panic!("{event:?} does not apply to {:?}: {other:?}", u.state),
    }
}

async fn one_conflict_among_many(write_batch: usize) {
    let db = fresh_database().await;
    let store: Arc<dyn Store> = Arc::new(
        PgStore::connect(db.options().write_batch(write_batch).max_connections(8))
            .await
            .unwrap(),
    );
    let clock = ManualClock::at_epoch_2024();
    let f = Fixture::new(store.clone());
    let profile = f.profile("p").await;
    let devices = f.devices(&profile, "d", 30).await;
    let old = f.package(PackageKind::Firmware, "fw", "1.0");
    let new = f.package(PackageKind::Firmware, "fw", "2.0");
    store.create_package(&old, None).await.unwrap();
    store.create_package(&new, None).await.unwrap();

    // Device 0: a failed update, then a queued one. Retrying the failed one would give it two
    // unfinished updates.
    let failed = f.update(&devices[0], &old, clock.now());
    store
        .create_updates(std::slice::from_ref(&failed))
        .await
        .unwrap();
    let (failed_now, h) = applied(
        &failed,
        UpdateEvent::Fail {
            source: EventSource::Server,
            reason: "gone".into(),
        },
        &clock,
    );
    store
        .transition(&failed_now, failed.revision, &h)
        .await
        .unwrap();
    let queued = f.update(&devices[0], &new, clock.now());
    store
        .create_updates(std::slice::from_ref(&queued))
        .await
        .unwrap();
    // Devices 1..30: queued updates to dispatch.
    let others: Vec<Update> = devices[1..]
        .iter()
        .map(|d| f.update(d, &new, clock.now()))
        .collect();
    store.create_updates(&others).await.unwrap();

    clock.advance(chrono::Duration::seconds(1));
    let mut calls = vec![applied(
        &failed_now,
        UpdateEvent::Retry {
            source: EventSource::Operator,
        },
        &clock,
    )];
    let expected_revisions: Vec<u64> = std::iter::once(failed_now.revision)
        .chain(others.iter().map(|u| u.revision))
        .collect();
    calls.extend(
        others
            .iter()
            .map(|u| applied(u, UpdateEvent::Dispatched, &clock)),
    );
    let answers = join_all(calls.iter().zip(&expected_revisions).map(|((u, h), rev)| {
        let store = store.clone();
        async move { store.transition(u, *rev, h).await }
    }))
    .await;

    assert!(
        matches!(answers[0], Err(StoreError::Conflict { .. })),
        "the retry conflicts: {:?}",
        answers[0]
    );
    for (i, answer) in answers.iter().enumerate().skip(1) {
        assert!(answer.is_ok(), "transition {i}: {answer:?}");
    }
    assert_eq!(
        store.get_update(f.tenant, failed.id).await.unwrap(),
        failed_now,
        "the conflicting transition changed nothing"
    );
    assert_eq!(
        store
            .update_history(f.tenant, failed.id)
            .await
            .unwrap()
            .len(),
        1,
        "and wrote no history"
    );
    assert_eq!(
        store
            .count_updates(
                Some(f.tenant),
                &UpdateFilter::in_state(UpdateState::Initiated)
            )
            .await
            .unwrap(),
        others.len() as u64
    );
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_batch_is_written_one_by_one_with_each_answer() {
    one_conflict_among_many(ota_store_postgres::DEFAULT_WRITE_BATCH).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_batching_off_the_answers_are_the_same() {
    one_conflict_among_many(1).await;
}

/// Current versions of concurrent callers are written together, each with its own answer:
/// an unknown device is not found, firmware and software of one device both land, and a
/// repeated version changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_current_versions_each_get_their_own_answer() {
    use ota_core::{DeviceId, TitleVersion};
    let db = fresh_database().await;
    let store: Arc<dyn Store> = Arc::new(
        PgStore::connect(db.options().max_connections(8))
            .await
            .unwrap(),
    );
    let f = Fixture::new(store.clone());
    let profile = f.profile("p").await;
    let devices = f.devices(&profile, "d", 40).await;
    let unknown = DeviceId::new();
    let mut calls: Vec<(DeviceId, PackageKind, TitleVersion)> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            (
                d.id,
                PackageKind::Firmware,
                TitleVersion::new("fw", format!("{i}")),
            )
        })
        .collect();
    calls.extend(
        devices
            .iter()
            .take(10)
            .map(|d| (d.id, PackageKind::Software, TitleVersion::new("sw", "9"))),
    );
    calls.push((unknown, PackageKind::Firmware, TitleVersion::new("fw", "1")));
    let answers = join_all(calls.iter().map(|(d, kind, tv)| {
        let store = store.clone();
        async move {
            store
                .set_current_version(f.tenant, *d, *kind, Some(tv.clone()))
                .await
        }
    }))
    .await;
    for ((d, _, _), answer) in calls.iter().zip(&answers) {
        if *d == unknown {
            assert!(
                answer.as_ref().is_err_and(|e| e.is_not_found()),
                "{answer:?}"
            );
        } else {
            assert!(answer.is_ok(), "{d}: {answer:?}");
        }
    }
    for (i, d) in devices.iter().enumerate() {
        let now = store.get_device(f.tenant, d.id).await.unwrap();
        assert_eq!(
            now.current.get(PackageKind::Firmware),
            Some(&TitleVersion::new("fw", format!("{i}")))
        );
        let sw = (i < 10).then(|| TitleVersion::new("sw", "9"));
        assert_eq!(now.current.get(PackageKind::Software), sw.as_ref());
    }
    // Another tenant's device is unknown here.
    let other = Fixture::new(store.clone());
    let err = store
        .set_current_version(other.tenant, devices[0].id, PackageKind::Firmware, None)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    db.drop_schema().await;
}
