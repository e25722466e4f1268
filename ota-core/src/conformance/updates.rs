//! Update, claim and history behaviours.

use super::fixtures::{at, Fixture};
use crate::clock::Timestamp;
use crate::device::Device;
use crate::package::{Package, PackageKind};
use crate::store::{
    ClaimRequest, PageRequest, QueueScope, Store, StoreError, Transition, UpdateFilter,
};
use crate::update::{apply, HistoryEntry, Outcome, Update, UpdateEvent, UpdatePolicy, UpdateState};
use chrono::Duration;
use std::collections::HashSet;
use std::sync::Arc;

/// Applies `event` at `now` and stores the outcome by compare-and-set.
async fn step(store: &Arc<dyn Store>, u: &Update, event: UpdateEvent, now: Timestamp) -> Update {
    match apply(u, &event, now, &UpdatePolicy::default()) {
        Outcome::Applied { update, history } => {
            store
                .transition(&update, u.revision, &history)
                .await
                .expect("transition");
            update
        }
        other => panic!(
            "expected {event:?} to apply to {:?}, got {other:?}",
            u.state
        ),
    }
}

async fn fleet(f: &Fixture, n: usize) -> (Vec<Device>, Package) {
    let p = f.profile("p").await;
    let devices = f.devices(&p, "d", n).await;
    let pkg = f.package(PackageKind::Firmware, "fw", "2.0");
    f.store.create_package(&pkg, None).await.expect("package");
    (devices, pkg)
}

fn claim(owner: &str, now: Timestamp, limit: u32) -> ClaimRequest {
    ClaimRequest {
        now,
        limit,
        owner: owner.to_string(),
        lease: Duration::seconds(30),
    }
}

/// Many transitions at once (as when a fleet reports together; a store may write them
/// together): each caller gets the answer it would get alone. Fresh ones apply, stale ones
/// fail their revision check, unknown updates and updates of another tenant are not found;
/// nothing else changes. Concurrent reads of latest updates agree with the writes.
pub async fn concurrent_transitions_each_get_their_own_answer(store: Arc<dyn Store>) {
    transitions_answered(store, false).await;
}

/// [`UpdateStore::transition_many`](crate::store::UpdateStore::transition_many) answers each
/// transition as [`concurrent_transitions_each_get_their_own_answer`] expects, in order; a
/// second transition of the same update in the batch is answered after the first.
pub async fn bulk_transitions_each_get_their_own_answer(store: Arc<dyn Store>) {
    transitions_answered(store, true).await;
}

async fn transitions_answered(store: Arc<dyn Store>, bulk: bool) {
    let f = Fixture::new(store.clone());
    let other = Fixture::new(store.clone());
    let (devices, pkg) = fleet(&f, 60).await;
    let stored: Vec<Update> = devices[..50]
        .iter()
        .map(|d| f.update(d, &pkg, at(0)))
        .collect();
    store.create_updates(&stored).await.expect("create");
    let (other_devices, other_pkg) = fleet(&other, 1).await;
    let foreign = other.update(&other_devices[0], &other_pkg, at(0));
    store
        .create_updates(std::slice::from_ref(&foreign))
        .await
        .expect("create");
    // Updates 40..50 move on first: writers still holding revision 0 are stale.
    let mut moved = Vec::new();
    for u in &stored[40..] {
        moved.push(step(&store, u, UpdateEvent::Dispatched, at(1)).await);
    }
    let dispatched =
        |u: &Update| match apply(u, &UpdateEvent::Dispatched, at(2), &UpdatePolicy::default()) {
            Outcome::Applied { update, history } => (update, history),
            other => panic!("dispatch applies to a queued update: {other:?}"),
        };
    let cancel = UpdateEvent::Cancel {
        source: crate::update::EventSource::Operator,
        reason: "late".into(),
    };
    let canceled = |u: &Update| match apply(u, &cancel, at(2), &UpdatePolicy::default()) {
        Outcome::Applied { update, history } => (update, history),
        other => panic!("cancel applies to a queued update: {other:?}"),
    };
    // (what to write, its expected revision, the answer expected)
    #[derive(Debug, PartialEq)]
    enum Expect {
        Applied,
        Stale,
        NotFound,
    }
    let mut calls = Vec::new();
    for u in &stored[..40] {
        calls.push((dispatched(u), u.revision, Expect::Applied));
    }
    for u in &stored[40..] {
        calls.push((canceled(u), u.revision, Expect::Stale));
    }
    for d in &devices[50..] {
        calls.push((dispatched(&f.update(d, &pkg, at(0))), 0, Expect::NotFound));
    }
    let mut misplaced = foreign.clone();
    misplaced.tenant_id = f.tenant;
    let (mut wrong_tenant, mut wrong_history) = dispatched(&misplaced);
    wrong_tenant.tenant_id = f.tenant;
    wrong_history.tenant_id = f.tenant;
    calls.push(((wrong_tenant, wrong_history), 0, Expect::NotFound));

    let answers = if bulk {
        // The first update twice: the second, from the same revision, is stale.
        calls.push((calls[0].0.clone(), calls[0].1, Expect::Stale));
        let batch: Vec<Transition> = calls
            .iter()
            .map(|((u, h), rev, _)| Transition {
                update: u.clone(),
                expected_revision: *rev,
                history: h.clone(),
            })
            .collect();
        store.transition_many(&batch).await
    } else {
        futures_util::future::join_all(calls.iter().map(|((u, h), rev, _)| {
            let store = store.clone();
            async move { store.transition(u, *rev, h).await }
        }))
        .await
    };
    assert_eq!(answers.len(), calls.len(), "one answer per transition");
    for (((u, _), _, expect), answer) in calls.iter().zip(&answers) {
        let got = match answer {
            Ok(()) => Expect::Applied,
            Err(StoreError::PreconditionFailed { .. }) => Expect::Stale,
            Err(StoreError::NotFound { .. }) => Expect::NotFound,
            Err(e) => panic!("transition of {}: unexpected {e:?}", u.id),
        };
        assert_eq!(&got, expect, "transition of update {}", u.id);
    }

    // What is stored is what was applied, with one history entry per applied transition.
    let reads = futures_util::future::join_all(devices.iter().map(|d| {
        let store = store.clone();
        async move {
            store
                .latest_update(f.tenant, d.id, PackageKind::Firmware)
                .await
        }
    }))
    .await;
    for (i, read) in reads.into_iter().enumerate() {
        let read = read.expect("latest update");
        match i {
            0..40 => assert_eq!(read, Some(calls[i].0 .0.clone())),
            40..50 => assert_eq!(read, Some(moved[i - 40].clone())),
            _ => assert_eq!(read, None),
        }
        if i < 50 {
            let history = store
                .update_history(f.tenant, stored[i].id)
                .await
                .expect("history");
            assert_eq!(history.len(), 1, "one entry for update {}", stored[i].id);
        }
    }
    assert_eq!(
        store
            .get_update(other.tenant, foreign.id)
            .await
            .expect("foreign update"),
        foreign,
        "another tenant's update is untouched"
    );
    assert_eq!(
        store
            .count_updates(
                Some(f.tenant),
                &UpdateFilter::in_state(UpdateState::Initiated)
            )
            .await
            .expect("count"),
        50
    );
}

/// Updates are created in bulk, all or none; a device never has two unfinished updates of
/// one kind, but may have one per kind, and a new one once the previous is finished.
pub async fn updates_create_and_refuse_second_unfinished(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let (devices, pkg) = fleet(&f, 3).await;
    let batch: Vec<Update> = devices.iter().map(|d| f.update(d, &pkg, at(1))).collect();
    store.create_updates(&batch).await.expect("bulk create");
    for u in &batch {
        assert_eq!(store.get_update(f.tenant, u.id).await.expect("get"), *u);
    }
    let latest = store
        .latest_update(f.tenant, devices[0].id, PackageKind::Firmware)
        .await
        .expect("latest");
    assert_eq!(latest.map(|u| u.id), Some(batch[0].id));
    assert_eq!(
        store
            .latest_update(f.tenant, devices[0].id, PackageKind::Software)
            .await
            .expect("latest"),
        None
    );

    let second = f.update(&devices[0], &pkg, at(2));
    let fresh_device = {
        let p = f.profile("q").await;
        f.devices(&p, "e", 1).await.remove(0)
    };
    let fine = f.update(&fresh_device, &pkg, at(2));
    let err = store
        .create_updates(&[fine.clone(), second.clone()])
        .await
        .expect_err("second unfinished");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(
        store
            .get_update(f.tenant, fine.id)
            .await
            .is_err_and(|e| e.is_not_found()),
        "all or none"
    );
    let dup = store
        .create_updates(std::slice::from_ref(&batch[1]))
        .await
        .expect_err("same id");
    assert!(matches!(dup, StoreError::Conflict { .. }), "{dup:?}");

    let mut software = f.update(&devices[0], &pkg, at(2));
    software.kind = PackageKind::Software;
    store
        .create_updates(&[software])
        .await
        .expect("one per kind");

    let canceled = step(
        &store,
        &batch[0],
        UpdateEvent::Cancel {
            source: crate::update::EventSource::Operator,
            reason: "test".into(),
        },
        at(3),
    )
    .await;
    assert_eq!(canceled.state, UpdateState::Canceled);
    store
        .create_updates(std::slice::from_ref(&second))
        .await
        .expect("new update once finished");
    let latest = store
        .latest_update(f.tenant, devices[0].id, PackageKind::Firmware)
        .await
        .expect("latest");
    assert_eq!(latest.map(|u| u.id), Some(second.id));
}

/// A transition written with an old revision is refused and changes nothing: neither the
/// update nor its history.
pub async fn transition_refuses_stale_writers(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let (devices, pkg) = fleet(&f, 1).await;
    let u = f.update(&devices[0], &pkg, at(0));
    store
        .create_updates(std::slice::from_ref(&u))
        .await
        .expect("create");
    let initiated = step(&store, &u, UpdateEvent::Dispatched, at(1)).await;

    // A second writer that read `u` (revision 0) loses.
    let Outcome::Applied {
        update: stale,
        history,
    } = apply(
        &u,
        &UpdateEvent::Cancel {
            source: crate::update::EventSource::Operator,
            reason: "late".into(),
        },
        at(2),
        &UpdatePolicy::default(),
    )
    else {
        panic!("cancel applies to a queued update");
    };
    let err = store
        .transition(&stale, u.revision, &history)
        .await
        .expect_err("stale");
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err:?}"
    );
    assert_eq!(
        store.get_update(f.tenant, u.id).await.expect("get"),
        initiated
    );
    assert_eq!(
        store
            .update_history(f.tenant, u.id)
            .await
            .expect("history")
            .len(),
        1
    );

    // Many concurrent writers from the same revision: exactly one wins.
    let writers = (0..16).map(|i| {
        let store = store.clone();
        let initiated = initiated.clone();
        async move {
            let event = UpdateEvent::Fail {
                source: crate::update::EventSource::Server,
                reason: format!("writer {i}"),
            };
            let Outcome::Applied { update, history } =
                apply(&initiated, &event, at(3), &UpdatePolicy::default())
            else {
                panic!("fail applies");
            };
            store
                .transition(&update, initiated.revision, &history)
                .await
        }
    });
    let results = futures_util::future::join_all(writers).await;
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{results:?}");
    assert!(results
        .iter()
        .all(|r| matches!(r, Ok(()) | Err(StoreError::PreconditionFailed { .. }))));
    let stored = store.get_update(f.tenant, u.id).await.expect("get");
    assert_eq!(
        (stored.state, stored.revision),
        (UpdateState::Failed, initiated.revision + 1)
    );
}

/// Many claimers at once never get the same queued update, and together they get each one
/// exactly once, oldest first.
pub async fn concurrent_claimers_never_overlap(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let (devices, pkg) = fleet(&f, 300).await;
    let batch: Vec<Update> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| f.update(d, &pkg, at(i as i64)))
        .collect();
    store.create_updates(&batch).await.expect("create");
    let now = at(10_000);
    let claimers = (0..12).map(|i| {
        let store = store.clone();
        async move {
            let mut mine = Vec::new();
            loop {
                let got = store
                    .claim_queued(&claim(&format!("engine-{i}"), now, 7), QueueScope::Direct)
                    .await
                    .expect("claim");
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|u| u.id));
            }
        }
    });
    let results = futures_util::future::join_all(claimers).await;
    let mut seen = HashSet::new();
    for id in results.iter().flatten() {
        assert!(seen.insert(*id), "update {id} claimed twice");
    }
    assert_eq!(seen.len(), batch.len(), "every queued update claimed once");

    // Oldest first: a single claimer after leases expire gets them in creation order.
    let later = at(20_000);
    let first = store
        .claim_queued(&claim("late", later, 5), QueueScope::Direct)
        .await
        .expect("claim");
    assert_eq!(
        first.iter().map(|u| u.id).collect::<Vec<_>>(),
        batch[..5].iter().map(|u| u.id).collect::<Vec<_>>()
    );
    // Campaign queues are separate from the direct queue.
    let other = store
        .claim_queued(
            &claim("late", later, 5),
            QueueScope::Campaign {
                id: crate::ids::CampaignId::new(),
                up_to_wave: 10,
            },
        )
        .await
        .expect("claim");
    assert!(other.is_empty());
}

/// A claim holds until its lease runs out or it is released; a transition drops it; updates
/// that left QUEUED are never claimed as queued.
pub async fn claims_lease_expire_and_release(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let (devices, pkg) = fleet(&f, 3).await;
    let batch: Vec<Update> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| f.update(d, &pkg, at(i as i64)))
        .collect();
    store.create_updates(&batch).await.expect("create");
    let t = at(100);
    let a = store
        .claim_queued(&claim("a", t, 10), QueueScope::Direct)
        .await
        .expect("a");
    assert_eq!(a.len(), 3);
    let b = store
        .claim_queued(
            &claim("b", t + Duration::seconds(29), 10),
            QueueScope::Direct,
        )
        .await
        .expect("b");
    assert!(b.is_empty(), "leases of a still hold");

    store
        .release_claim(f.tenant, batch[0].id, "a")
        .await
        .expect("release");
    store
        .release_claim(f.tenant, batch[1].id, "b")
        .await
        .expect("release by another owner is a no-op");
    let b = store
        .claim_queued(
            &claim("b", t + Duration::seconds(1), 10),
            QueueScope::Direct,
        )
        .await
        .expect("b");
    assert_eq!(
        b.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![batch[0].id]
    );

    // a dispatches batch[1]: it leaves QUEUED and is never claimed as queued again.
    step(
        &store,
        &batch[1],
        UpdateEvent::Dispatched,
        t + Duration::seconds(2),
    )
    .await;
    let after_expiry = store
        .claim_queued(
            &claim("c", t + Duration::seconds(31), 10),
            QueueScope::Direct,
        )
        .await
        .expect("c");
    let mut ids: Vec<_> = after_expiry.iter().map(|u| u.id).collect();
    ids.sort();
    let mut want = vec![batch[0].id, batch[2].id];
    want.sort();
    assert_eq!(
        ids, want,
        "expired leases are claimable again, dispatched ones are gone"
    );
}

/// Updates whose wake time has come are claimed earliest first, once while leased; a
/// transition that clears the wake time takes them out.
pub async fn due_claims_follow_wake_times(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let (devices, pkg) = fleet(&f, 4).await;
    let mut batch: Vec<Update> = devices.iter().map(|d| f.update(d, &pkg, at(0))).collect();
    // Wake times 40, 10, 30 s and none.
    for (u, wake) in batch.iter_mut().zip([Some(40), Some(10), Some(30), None]) {
        u.wake_at = wake.map(at);
    }
    store.create_updates(&batch).await.expect("create");
    let due = store.claim_due(&claim("a", at(35), 10)).await.expect("due");
    assert_eq!(
        due.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![batch[1].id, batch[2].id]
    );
    assert!(
        store
            .claim_due(&claim("b", at(36), 10))
            .await
            .expect("due")
            .is_empty(),
        "leased"
    );
    let later = store
        .claim_due(&claim("b", at(100), 10))
        .await
        .expect("due");
    assert_eq!(
        later.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![batch[1].id, batch[2].id, batch[0].id]
    );

    // Clearing the wake time (a transition) takes it out of the due set.
    let mut woken = batch[1].clone();
    let Outcome::Applied { update, history } = apply(
        &woken,
        &UpdateEvent::Dispatched,
        at(101),
        &UpdatePolicy::default(),
    ) else {
        panic!("dispatch applies");
    };
    woken = update;
    woken.wake_at = None;
    store
        .transition(&woken, batch[1].revision, &history)
        .await
        .expect("transition");
    let rest = store
        .claim_due(&claim("c", at(1000), 10))
        .await
        .expect("due");
    assert_eq!(
        rest.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![batch[2].id, batch[0].id]
    );
}

/// Listings by filter page through every selected update once; counts agree, per tenant and
/// across tenants.
pub async fn updates_list_and_count_by_state(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let (devices, pkg) = fleet(&f, 40).await;
    let batch: Vec<Update> = devices.iter().map(|d| f.update(d, &pkg, at(0))).collect();
    store.create_updates(&batch).await.expect("create");
    for u in batch.iter().take(15) {
        step(&store, u, UpdateEvent::Dispatched, at(1)).await;
    }
    let initiated = UpdateFilter::in_state(UpdateState::Initiated);
    let queued = UpdateFilter::in_state(UpdateState::Queued);
    assert_eq!(
        store
            .count_updates(Some(f.tenant), &initiated)
            .await
            .expect("count"),
        15
    );
    assert_eq!(
        store
            .count_updates(Some(f.tenant), &queued)
            .await
            .expect("count"),
        25
    );
    let both = UpdateFilter {
        states: vec![UpdateState::Queued, UpdateState::Initiated],
        ..UpdateFilter::default()
    };
    assert_eq!(
        store
            .count_updates(Some(f.tenant), &both)
            .await
            .expect("count"),
        40
    );
    let one_device = UpdateFilter {
        device_id: Some(devices[0].id),
        ..UpdateFilter::default()
    };
    assert_eq!(
        store
            .count_updates(Some(f.tenant), &one_device)
            .await
            .expect("count"),
        1
    );
    let by_package = UpdateFilter {
        package_id: Some(pkg.id),
        kind: Some(PackageKind::Firmware),
        ..UpdateFilter::default()
    };
    assert_eq!(
        store
            .count_updates(Some(f.tenant), &by_package)
            .await
            .expect("count"),
        40
    );
    assert!(
        store
            .count_updates(None, &initiated)
            .await
            .expect("count all tenants")
            >= 15
    );

    let mut seen = Vec::new();
    let mut page = PageRequest::first(4);
    loop {
        let got = store
            .list_updates(f.tenant, &queued, page)
            .await
            .expect("list");
        assert!(got.items.iter().all(|u| u.state == UpdateState::Queued));
        seen.extend(got.items.iter().map(|u| u.id));
        match got.next {
            Some(next) => page = next,
            None => break,
        }
    }
    let mut want: Vec<_> = batch.iter().skip(15).map(|u| u.id).collect();
    want.sort();
    assert_eq!(seen, want);
}

/// Every event is in the history of its update (oldest first, every attempt) and of its
/// device (newest first), ignored events included.
pub async fn history_per_update_and_device(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let (devices, pkg) = fleet(&f, 2).await;
    let u = f.update(&devices[0], &pkg, at(0));
    let other = f.update(&devices[1], &pkg, at(0));
    store
        .create_updates(&[u.clone(), other.clone()])
        .await
        .expect("create");
    let u1 = step(&store, &u, UpdateEvent::Dispatched, at(1)).await;
    let u2 = step(
        &store,
        &u1,
        UpdateEvent::Fail {
            source: crate::update::EventSource::Server,
            reason: "x".into(),
        },
        at(2),
    )
    .await;
    let u3 = step(
        &store,
        &u2,
        UpdateEvent::Retry {
            source: crate::update::EventSource::Operator,
        },
        at(3),
    )
    .await;
    assert_eq!(u3.attempt, 2);
    let ignored: HistoryEntry = apply(
        &u3,
        &UpdateEvent::CheckTimeout,
        at(4),
        &UpdatePolicy::default(),
    )
    .history()
    .clone();
    store.append_history(&ignored).await.expect("append");
    step(&store, &other, UpdateEvent::Dispatched, at(5)).await;

    let history = store.update_history(f.tenant, u.id).await.expect("history");
    let states: Vec<_> = history.iter().map(|h| (h.from, h.to, h.attempt)).collect();
    assert_eq!(
        states,
        vec![
            (UpdateState::Queued, UpdateState::Initiated, 1),
            (UpdateState::Initiated, UpdateState::Failed, 1),
            (UpdateState::Failed, UpdateState::Queued, 2),
            (UpdateState::Queued, UpdateState::Queued, 2),
        ]
    );
    assert_eq!(history[1].message.as_deref(), Some("x"));
    let recent = store
        .device_history(f.tenant, devices[0].id, 2)
        .await
        .expect("device history");
    assert_eq!(recent, vec![history[3].clone(), history[2].clone()]);
    assert!(
        store
            .device_history(f.tenant, devices[1].id, 10)
            .await
            .expect("other")
            .len()
            == 1
    );
}
