//! Assignment, audit, pace and tenant-isolation behaviours.

use super::fixtures::{at, Fixture};
use crate::assignment::{Assignment, AssignmentTarget};
use crate::audit::AuditEntry;
use crate::ids::AssignmentId;
use crate::pacing::PaceState;
use crate::package::PackageKind;
use crate::store::{ByteRange, DeviceSelector, PageRequest, Store, StoreError, UpdateFilter};
use std::sync::Arc;

fn assignment(
    f: &Fixture,
    kind: PackageKind,
    target: AssignmentTarget,
    package: crate::ids::PackageId,
    secs: i64,
) -> Assignment {
    Assignment {
        id: AssignmentId::new(),
        tenant_id: f.tenant,
        kind,
        target,
        package_id: package,
        assigned_at: at(secs),
        assigned_by: "conformance".to_string(),
    }
}

/// One assignment per (tenant, kind, target): assigning again replaces and returns the old
/// one; the assignments concerning a device are those of the device, its groups and its
/// profile; removal returns what was removed.
pub async fn assignments_replace_and_resolve_targets(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let p = f.profile("p").await;
    let g1 = f.group("g1").await;
    let g2 = f.group("g2").await;
    let other = f.group("other").await;
    let d = f.device(&p, "d", &[&g1, &g2]);
    store
        .create_devices(std::slice::from_ref(&d), None)
        .await
        .expect("device");
    let f1 = f.package(PackageKind::Firmware, "fw", "1");
    let f2 = f.package(PackageKind::Firmware, "fw", "2");
    let s1 = f.package(PackageKind::Software, "sw", "1");
    for pkg in [&f1, &f2, &s1] {
        store.create_package(pkg, None).await.expect("package");
    }

    let on_profile = assignment(
        &f,
        PackageKind::Firmware,
        AssignmentTarget::Profile(p.id),
        f1.id,
        1,
    );
    assert_eq!(
        store.put_assignment(&on_profile, None).await.expect("put"),
        None
    );
    let replaced = assignment(
        &f,
        PackageKind::Firmware,
        AssignmentTarget::Profile(p.id),
        f2.id,
        2,
    );
    assert_eq!(
        store
            .put_assignment(&replaced, None)
            .await
            .expect("replace"),
        Some(on_profile.clone())
    );
    let on_g1 = assignment(
        &f,
        PackageKind::Firmware,
        AssignmentTarget::Group(g1.id),
        f1.id,
        3,
    );
    let on_other = assignment(
        &f,
        PackageKind::Firmware,
        AssignmentTarget::Group(other.id),
        f1.id,
        4,
    );
    let on_device = assignment(
        &f,
        PackageKind::Firmware,
        AssignmentTarget::Device(d.id),
        f2.id,
        5,
    );
    let software = assignment(
        &f,
        PackageKind::Software,
        AssignmentTarget::Profile(p.id),
        s1.id,
        6,
    );
    for a in [&on_g1, &on_other, &on_device, &software] {
        store.put_assignment(a, None).await.expect("put");
    }

    let mut concerning = store
        .assignments_for_device(&d, PackageKind::Firmware)
        .await
        .expect("for device");
    concerning.sort_by_key(|a| a.id);
    let mut want = vec![replaced.clone(), on_g1.clone(), on_device.clone()];
    want.sort_by_key(|a| a.id);
    assert_eq!(concerning, want);
    let sw = store
        .assignments_for_device(&d, PackageKind::Software)
        .await
        .expect("software");
    assert_eq!(sw, vec![software.clone()]);

    assert_eq!(
        store
            .get_assignment(
                f.tenant,
                PackageKind::Firmware,
                AssignmentTarget::Device(d.id)
            )
            .await
            .expect("get"),
        Some(on_device.clone())
    );
    assert_eq!(
        store
            .list_assignments(f.tenant, None)
            .await
            .expect("all")
            .len(),
        5
    );
    assert_eq!(
        store
            .list_assignments(f.tenant, Some(PackageKind::Software))
            .await
            .expect("sw")
            .len(),
        1
    );
    let mut of_f1: Vec<_> = store
        .assignments_of_package(f.tenant, f1.id)
        .await
        .expect("of f1")
        .into_iter()
        .map(|a| a.id)
        .collect();
    of_f1.sort();
    let mut want_f1 = vec![on_g1.id, on_other.id];
    want_f1.sort();
    assert_eq!(of_f1, want_f1);

    let removed = store
        .remove_assignment(
            f.tenant,
            PackageKind::Firmware,
            AssignmentTarget::Device(d.id),
            None,
        )
        .await
        .expect("remove");
    assert_eq!(removed, Some(on_device));
    let again = store
        .remove_assignment(
            f.tenant,
            PackageKind::Firmware,
            AssignmentTarget::Device(d.id),
            None,
        )
        .await
        .expect("remove again");
    assert_eq!(again, None);
}

/// The audit log keeps every entry of a tenant, oldest first, page by page.
pub async fn audit_log_pages(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let mut ids = Vec::new();
    for i in 0..23 {
        let e = AuditEntry::new(
            f.tenant,
            "alice",
            "package.create",
            format!("package/{i}"),
            at(i),
            serde_json::json!({"i": i}),
        );
        store.append_audit(&e).await.expect("append");
        ids.push(e.id);
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(10);
    loop {
        let got = store.list_audit(f.tenant, page).await.expect("list");
        seen.extend(got.items.iter().map(|e| e.id));
        if let Some(first) = got.items.first() {
            assert_eq!(first.actor, "alice");
        }
        match got.next {
            Some(next) => page = next,
            None => break,
        }
    }
    assert_eq!(seen, ids);

    // Append only: an entry reusing an id is refused and replaces nothing.
    let first = store
        .list_audit(f.tenant, PageRequest::first(1))
        .await
        .expect("list")
        .items
        .remove(0);
    let mut forged = first.clone();
    forged.actor = "mallory".into();
    forged.action = "package.delete".into();
    let refused = store
        .append_audit(&forged)
        .await
        .expect_err("an entry reusing an id must be refused");
    assert!(
        matches!(refused, StoreError::Conflict { .. }),
        "{refused:?}"
    );
    let again = store
        .list_audit(f.tenant, PageRequest::first(1))
        .await
        .expect("list")
        .items
        .remove(0);
    assert_eq!(again, first, "the stored entry must be unchanged");
}

/// Pace states are written by compare-and-set: a writer holding an old version is refused.
pub async fn pace_compare_and_set(store: Arc<dyn Store>) {
    let key = format!("conformance:{}", uuid::Uuid::now_v7());
    assert_eq!(store.get_pace(&key).await.expect("get"), None);
    let s1 = PaceState::default();
    let v1 = store.put_pace(&key, None, &s1).await.expect("first write");
    let refused = store
        .put_pace(&key, None, &s1)
        .await
        .expect_err("must not exist yet");
    assert!(
        matches!(refused, StoreError::PreconditionFailed { .. }),
        "{refused:?}"
    );
    let stored = store.get_pace(&key).await.expect("get").expect("written");
    assert_eq!((stored.state, stored.version), (s1.clone(), v1));
    let v2 = store
        .put_pace(&key, Some(v1), &s1)
        .await
        .expect("second write");
    assert_ne!(v1, v2);
    let stale = store
        .put_pace(&key, Some(v1), &s1)
        .await
        .expect_err("stale version");
    assert!(
        matches!(stale, StoreError::PreconditionFailed { .. }),
        "{stale:?}"
    );
    assert_eq!(
        store.get_pace(&key).await.expect("get").map(|p| p.version),
        Some(v2)
    );
}

/// Another tenant's ids answer not found, and listings and counts never cross tenants.
pub async fn tenant_isolation(store: Arc<dyn Store>) {
    let mine = Fixture::new(store.clone());
    let theirs = Fixture::new(store.clone());
    let p = mine.profile("p").await;
    let g = mine.group("g").await;
    let d = mine.device(&p, "d", &[&g]);
    store
        .create_devices(std::slice::from_ref(&d), None)
        .await
        .expect("device");
    let pkg = mine.stored_package("fw", "1.0", b"content").await;
    let u = mine.update(&d, &pkg, at(0));
    store
        .create_updates(std::slice::from_ref(&u))
        .await
        .expect("update");

    let t = theirs.tenant;
    assert!(store
        .get_profile(t, p.id)
        .await
        .is_err_and(|e| e.is_not_found()));
    assert!(store
        .get_group(t, g.id)
        .await
        .is_err_and(|e| e.is_not_found()));
    assert!(store
        .get_device(t, d.id)
        .await
        .is_err_and(|e| e.is_not_found()));
    assert!(store
        .get_package(t, pkg.id)
        .await
        .is_err_and(|e| e.is_not_found()));
    assert!(store
        .read_content(t, pkg.id, ByteRange::FULL)
        .await
        .is_err_and(|e| e.is_not_found()));
    assert!(store
        .delete_package(t, pkg.id, None)
        .await
        .is_err_and(|e| e.is_not_found()));
    assert!(store
        .get_update(t, u.id)
        .await
        .is_err_and(|e| e.is_not_found()));
    assert!(store
        .update_history(t, u.id)
        .await
        .is_err_and(|e| e.is_not_found()));
    assert!(store
        .set_device_profile(t, d.id, p.id, None)
        .await
        .is_err_and(|e| e.is_not_found()));
    assert_eq!(
        store
            .latest_update(t, d.id, PackageKind::Firmware)
            .await
            .expect("latest"),
        None
    );
    assert_eq!(
        store
            .count_devices(t, DeviceSelector::All)
            .await
            .expect("count"),
        0
    );
    assert_eq!(
        store
            .count_devices(t, DeviceSelector::Profile(p.id))
            .await
            .expect("count"),
        0
    );
    assert_eq!(
        store
            .count_devices(t, DeviceSelector::Group(g.id))
            .await
            .expect("count"),
        0
    );
    assert!(store
        .list_devices(t, DeviceSelector::Profile(p.id), PageRequest::first(10))
        .await
        .expect("list")
        .items
        .is_empty());
    assert!(store
        .list_packages(t, None, PageRequest::first(10))
        .await
        .expect("list")
        .items
        .is_empty());
    assert!(store
        .list_profiles(t, PageRequest::first(10))
        .await
        .expect("list")
        .items
        .is_empty());
    assert!(store
        .list_groups(t, PageRequest::first(10))
        .await
        .expect("list")
        .items
        .is_empty());
    assert!(store
        .list_updates(t, &UpdateFilter::default(), PageRequest::first(10))
        .await
        .expect("list")
        .items
        .is_empty());
    assert_eq!(
        store
            .count_updates(Some(t), &UpdateFilter::default())
            .await
            .expect("count"),
        0
    );
    assert!(store
        .find_devices_by_name(t, &["d".to_string()])
        .await
        .expect("names")
        .is_empty());
    assert_eq!(
        store
            .find_package(t, PackageKind::Firmware, "fw", "1.0")
            .await
            .expect("find"),
        None
    );
    // The same names are free in the other tenant.
    let p_theirs = theirs.profile("p").await;
    let d_theirs = theirs.device(&p_theirs, "d", &[]);
    store
        .create_devices(&[d_theirs], None)
        .await
        .expect("same device name in another tenant");
    theirs.stored_package("fw", "1.0", b"content").await;
    // Still mine.
    assert_eq!(
        store.get_device(mine.tenant, d.id).await.expect("mine").id,
        d.id
    );
}

/// Scheduled events are stored, saved by compare-and-set, listed per tenant, found when due
/// (across tenants, earliest first) and deleted.
pub async fn schedules_crud_and_due(store: Arc<dyn Store>) {
    use crate::schedule::{Recurrence, Repeat, ScheduledAction, ScheduledEvent};
    let f = Fixture::new(store.clone());
    let pkg = f.package(PackageKind::Firmware, "fw", "1.0");
    store.create_package(&pkg, None).await.expect("package");
    let p = f.profile("p").await;
    let event = |secs: i64, name: &str| ScheduledEvent {
        id: crate::ids::ScheduleId::new(),
        tenant_id: f.tenant,
        name: name.to_string(),
        recurrence: Recurrence::new(at(secs).naive_utc(), "UTC", Repeat::Daily, None)
            .expect("recurrence"),
        action: ScheduledAction::Assign {
            target: AssignmentTarget::Profile(p.id),
            package_id: pkg.id,
        },
        last_run: None,
        next_run: Some(at(secs)),
        created_by: "conformance".into(),
        created_at: at(0),
        updated_at: at(0),
        revision: 0,
    };
    let late = event(500, "late");
    let early = event(100, "early");
    store.create_schedule(&late, None).await.expect("create");
    store.create_schedule(&early, None).await.expect("create");
    assert!(matches!(
        store.create_schedule(&late, None).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        store.get_schedule(f.tenant, late.id).await.expect("get"),
        late
    );

    let due: Vec<_> = store
        .due_schedules(at(1000), 100)
        .await
        .expect("due")
        .into_iter()
        .filter(|e| e.tenant_id == f.tenant)
        .map(|e| e.id)
        .collect();
    assert_eq!(due, vec![early.id, late.id], "earliest first");
    let due: Vec<_> = store
        .due_schedules(at(200), 100)
        .await
        .expect("due")
        .into_iter()
        .filter(|e| e.tenant_id == f.tenant)
        .map(|e| e.id)
        .collect();
    assert_eq!(due, vec![early.id]);

    let ran = ScheduledEvent {
        last_run: Some(at(100)),
        next_run: Some(at(86_500)),
        revision: 1,
        ..early.clone()
    };
    store.save_schedule(&ran, 0, None).await.expect("save");
    let stale = ScheduledEvent {
        name: "stale".into(),
        revision: 1,
        ..early.clone()
    };
    assert!(matches!(
        store.save_schedule(&stale, 0, None).await,
        Err(StoreError::PreconditionFailed { .. })
    ));
    assert_eq!(
        store.get_schedule(f.tenant, early.id).await.expect("get"),
        ran
    );
    let listed = store
        .list_schedules(f.tenant, PageRequest::first(1))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    let rest = store
        .list_schedules(f.tenant, listed.next.expect("a second page"))
        .await
        .expect("list");
    assert_eq!(rest.items.len(), 1);

    let theirs = crate::ids::TenantId::new();
    assert!(store
        .get_schedule(theirs, early.id)
        .await
        .is_err_and(|e| e.is_not_found()));
    assert!(store
        .delete_schedule(theirs, early.id, None)
        .await
        .is_err_and(|e| e.is_not_found()));
    assert!(store
        .list_schedules(theirs, PageRequest::first(10))
        .await
        .expect("list")
        .items
        .is_empty());
    store
        .delete_schedule(f.tenant, early.id, None)
        .await
        .expect("delete");
    assert!(store
        .get_schedule(f.tenant, early.id)
        .await
        .is_err_and(|e| e.is_not_found()));
}
