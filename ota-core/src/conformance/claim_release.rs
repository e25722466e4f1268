//! Claims released in the same step
//! ([`NoticeOutbox::claim_and_release`](crate::store::NoticeOutbox::claim_and_release)).

use super::fixtures::{at, Fixture};
use crate::clock::Timestamp;
use crate::ids::{PackageId, UpdateId};
use crate::notifier::Notice;
use crate::package::{Package, PackageKind};
use crate::store::{
    ClaimRequest, ClaimedReleases, NoticeLease, OutboxEntry, QueueScope, Release, Store, Transition,
};
use crate::update::{apply, Outcome, Update, UpdateEvent, UpdatePolicy, UpdateState};
use chrono::Duration;
use std::collections::HashSet;
use std::sync::Arc;

fn request(owner: &str, now: Timestamp, limit: u32) -> ClaimRequest {
    ClaimRequest {
        now,
        limit,
        owner: owner.to_string(),
        lease: Duration::seconds(30),
    }
}

/// The release of `u` at `now` with a notice about `package`, leased to `owner`.
fn release_of(u: &Update, package: &Package, now: Timestamp, owner: &str) -> Release {
    match apply(u, &UpdateEvent::Dispatched, now, &UpdatePolicy::default()) {
        Outcome::Applied { update, history } => {
            let mut attributes = serde_json::Map::new();
            attributes.insert("fw_version".into(), package.version.clone().into());
            Release {
                transition: Transition {
                    expected_revision: u.revision,
                    update,
                    history,
                },
                notice: OutboxEntry::new(
                    Notice::Update {
                        tenant_id: u.tenant_id,
                        device_id: u.device_id,
                        kind: u.kind,
                        attributes,
                    },
                    now,
                ),
                lease: Some(NoticeLease {
                    owner: owner.to_string(),
                    until: now + Duration::seconds(30),
                }),
            }
        }
        other => panic!("a queued update is released, got {other:?}"),
    }
}

/// Claims and releases together, or `None` when the store has no combined step.
async fn together(
    store: &Arc<dyn Store>,
    owner: &str,
    now: Timestamp,
    limit: u32,
) -> Option<ClaimedReleases> {
    let plan = |u: &Update, p: Option<&Package>| p.map(|p| release_of(u, p, now, owner));
    store
        .claim_and_release(&request(owner, now, limit), QueueScope::Direct, &plan)
        .await
        .map(|a| a.expect("claim and release"))
}

/// A claim released in the same step: concurrent claimers never take one update twice and
/// never one another claimer holds; the planned releases are written as
/// `release_with_notices` writes them (INITIATED, one history entry, the notice waiting in
/// the outbox) and hold no claim; the updates the plan leaves out (here: their package is
/// gone) stay QUEUED and claimed by the caller until the lease lapses. Claim order is kept.
/// Stores without the combined step answer `None` and write nothing.
pub async fn claims_released_together_never_overlap(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let p = f.profile("p").await;
    let devices = f.devices(&p, "d", 31).await;
    let pkg = f.package(PackageKind::Firmware, "fw", "2.0");
    store.create_package(&pkg, None).await.expect("package");
    let mut updates: Vec<Update> = devices[..30]
        .iter()
        .enumerate()
        .map(|(i, d)| f.update(d, &pkg, at(i as i64)))
        .collect();
    // An update whose package is gone (never stored): the plan leaves it out.
    let mut gone = f.package(PackageKind::Firmware, "fw", "3.0");
    gone.id = PackageId::new();
    let orphan = f.update(&devices[30], &gone, at(40));
    updates.push(orphan.clone());
    store.create_updates(&updates).await.expect("create");
    let t = at(100);
    // Another claimer holds the two oldest.
    let held: HashSet<UpdateId> = store
        .claim_queued(&request("x", t, 2), QueueScope::Direct)
        .await
        .expect("claim")
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(held, HashSet::from([updates[0].id, updates[1].id]));

    // One claimer first, to see the order: the oldest free ones.
    let Some(first) = together(&store, "c0", t, 3).await else {
        assert_eq!(
            store
                .count_undelivered(Some(f.tenant))
                .await
                .expect("count"),
            0
        );
        return;
    };
    assert!(first.left.is_empty());
    let order: Vec<UpdateId> = first
        .released
        .iter()
        .map(|r| r.transition.update.id)
        .collect();
    assert_eq!(order, vec![updates[2].id, updates[3].id, updates[4].id]);

    let claimers = (1..5).map(|i| {
        let store = store.clone();
        async move {
            together(&store, &format!("c{i}"), t, 8)
                .await
                .expect("combined")
        }
    });
    let mut all = vec![first];
    all.extend(futures_util::future::join_all(claimers).await);
    let mut seen = HashSet::new();
    let mut released = Vec::new();
    let mut left = Vec::new();
    for done in &all {
        for r in &done.released {
            assert!(seen.insert(r.transition.update.id), "claimed twice");
            released.push(r.clone());
        }
        for u in &done.left {
            assert!(seen.insert(u.id), "claimed twice");
            left.push(u.clone());
        }
    }
    let free: HashSet<UpdateId> = updates[2..].iter().map(|u| u.id).collect();
    assert_eq!(seen, free, "every free update once, none of the held ones");
    assert_eq!(left.len(), 1, "the update whose package is gone is left");
    assert_eq!(left[0].id, orphan.id);
    assert_eq!(left[0].state, UpdateState::Queued);

    for r in &released {
        let stored = store
            .get_update(f.tenant, r.transition.update.id)
            .await
            .expect("get");
        assert_eq!(stored, r.transition.update, "written as planned");
        assert_eq!(stored.state, UpdateState::Initiated);
        let history = store
            .update_history(f.tenant, stored.id)
            .await
            .expect("history");
        assert_eq!(history.len(), 1, "one history entry per release");
    }
    assert_eq!(
        store
            .count_undelivered(Some(f.tenant))
            .await
            .expect("count"),
        released.len() as u64,
        "one notice per release"
    );
    // Nothing is free now: the held two and the left one are claimed, the rest released.
    let none = store
        .claim_queued(
            &request("y", t + Duration::seconds(1), 100),
            QueueScope::Direct,
        )
        .await
        .expect("claim");
    assert!(none.is_empty(), "claimed: {none:?}");
    let lapsed: HashSet<UpdateId> = store
        .claim_queued(
            &request("y", t + Duration::seconds(31), 100),
            QueueScope::Direct,
        )
        .await
        .expect("claim")
        .iter()
        .map(|u| u.id)
        .collect();
    let mut want = held.clone();
    want.insert(orphan.id);
    assert_eq!(
        lapsed, want,
        "the left update's claim lapses like any claim"
    );
}
