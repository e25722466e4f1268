//! Renames, deletes and access-token changes of profiles, groups and devices.

use super::fixtures::{at, Fixture};
use crate::assignment::{Assignment, AssignmentTarget};
use crate::device::DEVICE_TAKEN;
use crate::ids::{AssignmentId, TenantId};
use crate::package::PackageKind;
use crate::store::{DeviceSelector, PageRequest, Store, StoreError};
use std::sync::Arc;

fn conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict { .. }))
}

fn not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound { .. }))
}

fn assignment(f: &Fixture, target: AssignmentTarget, package: crate::ids::PackageId) -> Assignment {
    Assignment {
        id: AssignmentId::new(),
        tenant_id: f.tenant,
        kind: PackageKind::Firmware,
        target,
        package_id: package,
        assigned_at: at(1),
        assigned_by: "conformance".to_string(),
    }
}

/// Profiles and groups are renamed (names stay unique in the tenant) and deleted only while
/// no device and no assignment uses them; other tenants' ids are not found.
pub async fn profiles_and_groups_rename_and_delete_unless_used(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let other = TenantId::new();
    let p = f.profile("p").await;
    let p2 = f.profile("p2").await;
    let g = f.group("g").await;
    let g2 = f.group("g2").await;

    let renamed = store
        .rename_profile(f.tenant, p.id, "p-new", None)
        .await
        .expect("rename");
    assert_eq!((renamed.id, renamed.name.as_str()), (p.id, "p-new"));
    assert_eq!(
        store.get_profile(f.tenant, p.id).await.expect("get").name,
        "p-new"
    );
    assert!(conflict(
        store.rename_profile(f.tenant, p.id, "p2", None).await
    ));
    assert!(not_found(
        store.rename_profile(other, p.id, "x", None).await
    ));
    store
        .rename_profile(f.tenant, p2.id, "p", None)
        .await
        .expect("the old name is free");
    store
        .rename_profile(f.tenant, p.id, "p-new", None)
        .await
        .expect("same name again");
    let rg = store
        .rename_group(f.tenant, g.id, "g-new", None)
        .await
        .expect("rename");
    assert_eq!(rg.name, "g-new");
    assert!(conflict(
        store.rename_group(f.tenant, g.id, "g2", None).await
    ));
    assert!(not_found(store.rename_group(other, g.id, "x", None).await));

    // In use by a device: refused; by an assignment: refused.
    let d = f.device(&p, "d", &[&g]);
    store
        .create_devices(std::slice::from_ref(&d), None)
        .await
        .expect("device");
    assert!(conflict(store.delete_profile(f.tenant, p.id, None).await));
    assert!(conflict(store.delete_group(f.tenant, g.id, None).await));
    let pkg = f.package(PackageKind::Firmware, "fw", "1");
    store.create_package(&pkg, None).await.expect("package");
    store
        .put_assignment(
            &assignment(&f, AssignmentTarget::Profile(p2.id), pkg.id),
            None,
        )
        .await
        .expect("assign");
    store
        .put_assignment(
            &assignment(&f, AssignmentTarget::Group(g2.id), pkg.id),
            None,
        )
        .await
        .expect("assign");
    assert!(conflict(store.delete_profile(f.tenant, p2.id, None).await));
    assert!(conflict(store.delete_group(f.tenant, g2.id, None).await));
    assert!(not_found(store.delete_profile(other, p.id, None).await));
    assert!(not_found(store.delete_group(other, g.id, None).await));

    // Once unused, deleted; gone from gets and lists, the name free again.
    store
        .remove_assignment(
            f.tenant,
            PackageKind::Firmware,
            AssignmentTarget::Group(g2.id),
            None,
        )
        .await
        .expect("unassign");
    let gone = store
        .delete_group(f.tenant, g2.id, None)
        .await
        .expect("delete group");
    assert_eq!(gone.id, g2.id);
    assert!(not_found(store.get_group(f.tenant, g2.id).await));
    let groups = store
        .list_groups(f.tenant, PageRequest::first(10))
        .await
        .expect("list");
    assert_eq!(
        groups.items.iter().map(|g| g.id).collect::<Vec<_>>(),
        [g.id]
    );
    f.group("g2").await;
    store
        .set_device_groups(f.tenant, d.id, &Default::default(), None)
        .await
        .expect("leave");
    store
        .delete_group(f.tenant, g.id, None)
        .await
        .expect("empty group");
    store
        .set_device_profile(f.tenant, d.id, p2.id, None)
        .await
        .expect("move");
    store
        .delete_profile(f.tenant, p.id, None)
        .await
        .expect("unused profile");
    assert!(not_found(store.get_profile(f.tenant, p.id).await));
    assert!(not_found(store.delete_profile(f.tenant, p.id, None).await));
}

/// Devices are renamed (names unique in the tenant), given a new access token (the old one
/// no longer finds them; another device's token is refused with the generic conflict) and
/// deleted with their memberships and the assignments made to them.
pub async fn devices_rename_delete_and_change_token(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let other = TenantId::new();
    let p = f.profile("p").await;
    let g = f.group("g").await;
    let d = f.device(&p, "d", &[&g]);
    let e = f.device(&p, "e", &[]);
    store
        .create_devices(&[d.clone(), e.clone()], None)
        .await
        .expect("devices");

    let renamed = store
        .rename_device(f.tenant, d.id, "d-new", None)
        .await
        .expect("rename");
    assert_eq!((renamed.name.as_str(), renamed.groups.len()), ("d-new", 1));
    assert!(conflict(
        store.rename_device(f.tenant, d.id, "e", None).await
    ));
    assert!(not_found(store.rename_device(other, d.id, "x", None).await));
    let names = store
        .find_devices_by_name(f.tenant, &["d-new".into(), "d".into()])
        .await
        .expect("find");
    assert_eq!(names.iter().map(|d| d.id).collect::<Vec<_>>(), [d.id]);

    let token = format!("{}-rotated", f.tenant);
    let changed = store
        .set_device_token(f.tenant, d.id, &token, None)
        .await
        .expect("token");
    assert!(
        changed.access_token.is_empty(),
        "stores keep only the digest"
    );
    assert_eq!(
        store.device_by_token(&token).await.expect("new token").id,
        d.id
    );
    assert!(not_found(store.device_by_token(&d.access_token).await));
    match store.set_device_token(f.tenant, e.id, &token, None).await {
        Err(StoreError::Conflict { message, .. }) => assert!(message.contains(DEVICE_TAKEN)),
        other => panic!("another device's token: {other:?}"),
    }
    assert_eq!(
        store.device_by_token(&e.access_token).await.expect("e").id,
        e.id
    );
    assert!(not_found(
        store.set_device_token(other, d.id, "x-1", None).await
    ));

    let pkg = f.package(PackageKind::Firmware, "fw", "1");
    store.create_package(&pkg, None).await.expect("package");
    store
        .put_assignment(
            &assignment(&f, AssignmentTarget::Device(d.id), pkg.id),
            None,
        )
        .await
        .expect("assign");
    assert!(not_found(store.delete_device(other, d.id, None).await));
    let gone = store
        .delete_device(f.tenant, d.id, None)
        .await
        .expect("delete");
    assert_eq!(gone.id, d.id);
    assert!(not_found(store.get_device(f.tenant, d.id).await));
    assert!(not_found(store.device_by_token(&token).await));
    let assigned = store
        .get_assignment(
            f.tenant,
            PackageKind::Firmware,
            AssignmentTarget::Device(d.id),
        )
        .await
        .expect("get assignment");
    assert_eq!(assigned, None);
    assert_eq!(
        store
            .count_devices(f.tenant, DeviceSelector::Group(g.id))
            .await
            .expect("count"),
        0
    );
    assert_eq!(
        store
            .count_devices(f.tenant, DeviceSelector::All)
            .await
            .expect("count"),
        1
    );
    // The name and the group are free again.
    store
        .delete_group(f.tenant, g.id, None)
        .await
        .expect("empty group");
    let again = f.device(&p, "d-new", &[]);
    store
        .create_devices(&[again], None)
        .await
        .expect("the name is free");
}
