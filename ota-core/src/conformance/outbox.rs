//! Notice outbox behaviours: releases written with their notices, claims with leases,
//! delivery, replacement of older notices, and giving back an instance's claims.

use super::fixtures::{at, Fixture};
use crate::clock::Timestamp;
use crate::device::Device;
use crate::ids::{DeviceId, NoticeId, UpdateId};
use crate::notifier::Notice;
use crate::package::{Package, PackageKind};
use crate::store::{
    ClaimRequest, NoticeClaim, NoticeLease, OutboxEntry, QueueScope, Release, Store, StoreError,
    Transition,
};
use crate::update::{apply, Outcome, Update, UpdateEvent, UpdatePolicy, UpdateState};
use chrono::Duration;
use std::collections::HashSet;
use std::sync::Arc;

async fn fleet(f: &Fixture, n: usize) -> (Vec<Device>, Package) {
    let p = f.profile("p").await;
    let devices = f.devices(&p, "d", n).await;
    let pkg = f.package(PackageKind::Firmware, "fw", "2.0");
    f.store.create_package(&pkg, None).await.expect("package");
    (devices, pkg)
}

fn update_notice(f: &Fixture, device: DeviceId, kind: PackageKind, version: &str) -> Notice {
    let mut attributes = serde_json::Map::new();
    attributes.insert("fw_version".into(), serde_json::Value::from(version));
    Notice::Update {
        tenant_id: f.tenant,
        device_id: device,
        kind,
        attributes,
    }
}

fn withdrawal(f: &Fixture, device: DeviceId, kind: PackageKind) -> Notice {
    Notice::Withdrawal {
        tenant_id: f.tenant,
        device_id: device,
        kind,
        keys: vec!["fw_title".into(), "fw_version".into()],
    }
}

fn claim(owner: &str, now: Timestamp, limit: u32, devices: &[Device]) -> NoticeClaim {
    NoticeClaim {
        now,
        limit,
        owner: owner.to_string(),
        lease: Duration::seconds(30),
        devices: Some(devices.iter().map(|d| d.id).collect()),
    }
}

fn lease(owner: &str, until: Timestamp) -> NoticeLease {
    NoticeLease {
        owner: owner.to_string(),
        until,
    }
}

/// The release (QUEUED -> INITIATED) of `u` at `now` with its notice.
fn release_of(f: &Fixture, u: &Update, now: Timestamp, held: Option<NoticeLease>) -> Release {
    match apply(u, &UpdateEvent::Dispatched, now, &UpdatePolicy::default()) {
        Outcome::Applied { update, history } => Release {
            transition: Transition {
                expected_revision: u.revision,
                update,
                history,
            },
            notice: OutboxEntry::new(update_notice(f, u.device_id, u.kind, "2.0"), now),
            lease: held,
        },
        other => panic!("a queued update is released, got {other:?}"),
    }
}

fn ids(entries: &[OutboxEntry]) -> HashSet<NoticeId> {
    entries.iter().map(|e| e.id).collect()
}

/// A release and its notice are stored together or not at all: applied releases are
/// INITIATED with their history and their notices wait in the outbox, exactly as written;
/// a stale release (another writer came first) and a release of an unknown update or of
/// another tenant's update write neither. One answer per release, in order.
pub async fn releases_write_their_notices_with_them(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let other = Fixture::new(store.clone());
    let (devices, pkg) = fleet(&f, 12).await;
    let updates: Vec<Update> = devices.iter().map(|d| f.update(d, &pkg, at(0))).collect();
    store.create_updates(&updates).await.expect("create");
    let (other_devices, other_pkg) = fleet(&other, 1).await;
    let foreign = other.update(&other_devices[0], &other_pkg, at(0));
    store
        .create_updates(std::slice::from_ref(&foreign))
        .await
        .expect("create");
    let now = at(10);
    // Updates 8..10 move on first (a stale revision for the releases below).
    for u in &updates[8..10] {
        let r = release_of(&f, u, at(5), None);
        let t = &r.transition;
        store
            .transition(&t.update, t.expected_revision, &t.history)
            .await
            .expect("first writer");
    }
    let mut releases: Vec<Release> = updates[..10]
        .iter()
        .map(|u| release_of(&f, u, now, None))
        .collect();
    let mut unknown = updates[10].clone();
    unknown.id = UpdateId::new();
    releases.push(release_of(&f, &unknown, now, None));
    // Another tenant's update, as seen from this tenant.
    let mut spoofed = release_of(&other, &foreign, now, None);
    spoofed.transition.update.tenant_id = f.tenant;
    spoofed.transition.history.tenant_id = f.tenant;
    releases.push(spoofed);

    let answers = store.release_with_notices(&releases).await;
    assert_eq!(answers.len(), releases.len(), "one answer per release");
    for (i, a) in answers.iter().enumerate() {
        match i {
            0..=7 => assert!(a.is_ok(), "release {i}: {a:?}"),
            8 | 9 => assert!(
                matches!(a, Err(StoreError::PreconditionFailed { .. })),
                "stale release {i}: {a:?}"
            ),
            _ => assert!(
                matches!(a, Err(e) if e.is_not_found()),
                "unknown release {i}: {a:?}"
            ),
        }
    }
    for u in &updates[..8] {
        let stored = store.get_update(f.tenant, u.id).await.expect("get");
        assert_eq!(stored.state, UpdateState::Initiated);
        let history = store.update_history(f.tenant, u.id).await.expect("history");
        assert_eq!(history.len(), 1, "one history entry per release");
    }
    let foreign_now = store
        .get_update(other.tenant, foreign.id)
        .await
        .expect("get");
    assert_eq!(
        foreign_now.state,
        UpdateState::Queued,
        "another tenant's update"
    );
    assert_eq!(
        store
            .count_undelivered(Some(f.tenant))
            .await
            .expect("count"),
        8,
        "one notice per applied release"
    );
    assert_eq!(
        store
            .count_undelivered(Some(other.tenant))
            .await
            .expect("count"),
        0
    );
    let claimed = store
        .claim_notices(&claim("a", now, 100, &devices))
        .await
        .expect("claim");
    let expected: Vec<OutboxEntry> = releases[..8].iter().map(|r| r.notice.clone()).collect();
    let mut got = claimed.clone();
    got.sort_by_key(|e| e.id);
    let mut want = expected;
    want.sort_by_key(|e| e.id);
    assert_eq!(got, want, "the notices come back as written");
    // Delivered notices leave the outbox; unknown ids are ignored.
    let mut delivered: Vec<NoticeId> = claimed.iter().map(|e| e.id).collect();
    delivered.push(NoticeId::new());
    store.mark_delivered(&delivered).await.expect("delivered");
    assert_eq!(
        store
            .count_undelivered(Some(f.tenant))
            .await
            .expect("count"),
        0
    );
    let again = store
        .claim_notices(&claim("a", at(1_000), 100, &devices))
        .await
        .expect("claim");
    assert!(again.is_empty(), "delivered notices are gone");
}

/// Notice claims hold for their lease: nobody else gets a held notice (a notice written
/// leased to its writer included) until the lease lapses; then anyone does. Claims take the
/// oldest first, at most `limit`, and only notices of the devices asked for.
pub async fn notice_claims_lease_and_lapse(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let (devices, _) = fleet(&f, 6).await;
    let t = at(100);
    let mut entries = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        let e = OutboxEntry::new(
            update_notice(&f, d.id, PackageKind::Firmware, "2.0"),
            at(i as i64),
        );
        // The first two are held by their writer.
        let held = (i < 2).then(|| lease("writer", t + Duration::seconds(30)));
        store
            .enqueue_notice(&e, held.as_ref())
            .await
            .expect("enqueue");
        entries.push(e);
    }
    let a = store
        .claim_notices(&claim("a", t, 3, &devices))
        .await
        .expect("a");
    let want: Vec<NoticeId> = entries[2..5].iter().map(|e| e.id).collect();
    assert_eq!(
        a.iter().map(|e| e.id).collect::<Vec<_>>(),
        want,
        "oldest free first, at most the limit"
    );
    let b = store
        .claim_notices(&claim("b", t + Duration::seconds(29), 10, &devices))
        .await
        .expect("b");
    assert_eq!(
        ids(&b),
        HashSet::from([entries[5].id]),
        "held notices are not given out"
    );
    let only = store
        .claim_notices(&claim("c", t + Duration::seconds(31), 10, &devices[..1]))
        .await
        .expect("c");
    assert_eq!(
        ids(&only),
        HashSet::from([entries[0].id]),
        "only the devices asked for, once the lease lapsed"
    );
    let c = store
        .claim_notices(&claim("c", t + Duration::seconds(31), 10, &devices))
        .await
        .expect("c");
    assert_eq!(
        ids(&c),
        ids(&entries[1..5]),
        "lapsed leases are taken again (b's is still held)"
    );
    assert_eq!(
        store
            .count_undelivered(Some(f.tenant))
            .await
            .expect("count"),
        6
    );
}

/// Claimers at once never get the same notice; together they get every one.
pub async fn concurrent_notice_claimers_never_overlap(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let (devices, _) = fleet(&f, 60).await;
    let mut all = HashSet::new();
    for d in &devices {
        let e = OutboxEntry::new(update_notice(&f, d.id, PackageKind::Firmware, "2.0"), at(0));
        store.enqueue_notice(&e, None).await.expect("enqueue");
        all.insert(e.id);
    }
    let claims = (0..8).map(|i| {
        let store = store.clone();
        let request = claim(&format!("c{i}"), at(10), 10, &devices);
        async move { store.claim_notices(&request).await.expect("claim") }
    });
    let got = futures_util::future::join_all(claims).await;
    let mut seen = HashSet::new();
    for batch in &got {
        for e in batch {
            assert!(seen.insert(e.id), "notice {} claimed twice", e.id);
        }
    }
    assert_eq!(seen, all, "8 claimers of 10 take all 60");
}

/// A notice for a device and kind replaces every older undelivered one for the same device
/// and kind (claimed or not), so an old notice is never delivered after a newer one; other
/// kinds and devices keep theirs. A release's notice replaces too.
pub async fn newer_notice_replaces_older_of_device_and_kind(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let (devices, pkg) = fleet(&f, 2).await;
    let (d0, d1) = (devices[0].id, devices[1].id);
    let fw = OutboxEntry::new(update_notice(&f, d0, PackageKind::Firmware, "1.0"), at(0));
    let sw = OutboxEntry::new(update_notice(&f, d0, PackageKind::Software, "1.0"), at(0));
    let other = OutboxEntry::new(update_notice(&f, d1, PackageKind::Firmware, "1.0"), at(0));
    for e in [&fw, &sw, &other] {
        store.enqueue_notice(e, None).await.expect("enqueue");
    }
    // The old firmware notice is in flight at another instance.
    let in_flight = store
        .claim_notices(&claim("x", at(1), 1, &devices[..1]))
        .await
        .expect("claim");
    assert_eq!(ids(&in_flight), HashSet::from([fw.id]));
    let gone = OutboxEntry::new(withdrawal(&f, d0, PackageKind::Firmware), at(2));
    store.enqueue_notice(&gone, None).await.expect("enqueue");
    let pending = store
        .claim_notices(&claim("a", at(100), 10, &devices))
        .await
        .expect("claim");
    assert_eq!(ids(&pending), HashSet::from([gone.id, sw.id, other.id]));
    store
        .mark_delivered(&pending.iter().map(|e| e.id).collect::<Vec<_>>())
        .await
        .expect("delivered");
    // A release replaces the withdrawal written before it.
    let stale = OutboxEntry::new(withdrawal(&f, d1, PackageKind::Firmware), at(3));
    store.enqueue_notice(&stale, None).await.expect("enqueue");
    let u = f.update(&devices[1], &pkg, at(0));
    store
        .create_updates(std::slice::from_ref(&u))
        .await
        .expect("create");
    let r = release_of(&f, &u, at(4), None);
    let answers = store.release_with_notices(std::slice::from_ref(&r)).await;
    assert!(answers[0].is_ok(), "{answers:?}");
    let pending = store
        .claim_notices(&claim("a", at(200), 10, &devices))
        .await
        .expect("claim");
    assert_eq!(ids(&pending), HashSet::from([r.notice.id]));
    assert_eq!(
        store
            .count_undelivered(Some(f.tenant))
            .await
            .expect("count"),
        1
    );
}

/// [`ClaimRecovery::release_claims_of`](crate::store::ClaimRecovery::release_claims_of)
/// gives back every claim of one owner, on updates and on notices, at once; other owners'
/// claims hold.
pub async fn an_instance_gives_back_its_claims(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let (devices, pkg) = fleet(&f, 4).await;
    let updates: Vec<Update> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| f.update(d, &pkg, at(i as i64)))
        .collect();
    store.create_updates(&updates).await.expect("create");
    let t = at(100);
    let update_claim = |owner: &str, limit| ClaimRequest {
        now: t,
        limit,
        owner: owner.to_string(),
        lease: Duration::seconds(30),
    };
    let mine: HashSet<UpdateId> = store
        .claim_queued(&update_claim("restarted", 2), QueueScope::Direct)
        .await
        .expect("claim")
        .iter()
        .map(|u| u.id)
        .collect();
    let theirs = store
        .claim_queued(&update_claim("other", 100), QueueScope::Direct)
        .await
        .expect("claim");
    assert!(theirs.iter().all(|u| !mine.contains(&u.id)));
    for (i, d) in devices.iter().enumerate() {
        let e = OutboxEntry::new(update_notice(&f, d.id, PackageKind::Firmware, "2.0"), at(0));
        let owner = if i < 3 { "restarted" } else { "other" };
        store
            .enqueue_notice(&e, Some(&lease(owner, t + Duration::seconds(30))))
            .await
            .expect("enqueue");
    }
    let n = store
        .release_claims_of("restarted")
        .await
        .expect("give back");
    assert!(
        n >= 5,
        "2 update claims and 3 notice claims given back, got {n}"
    );
    let again: HashSet<UpdateId> = store
        .claim_queued(&update_claim("restarted", 100), QueueScope::Direct)
        .await
        .expect("claim")
        .iter()
        .map(|u| u.id)
        .collect();
    assert!(
        mine.is_subset(&again),
        "the given-back updates are free at once"
    );
    assert!(
        theirs.iter().all(|u| !again.contains(&u.id)),
        "another owner's update claims hold"
    );
    let notices = store
        .claim_notices(&claim("restarted", t, 100, &devices))
        .await
        .expect("claim");
    assert_eq!(
        notices.len(),
        3,
        "the given-back notices are free, the other's is held"
    );
    assert_eq!(
        store.release_claims_of("nobody").await.expect("give back"),
        0
    );
}
