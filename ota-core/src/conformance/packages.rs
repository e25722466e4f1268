//! Package metadata behaviours.

use super::fixtures::{at, Fixture};
use crate::assignment::{Assignment, AssignmentTarget};
use crate::ids::AssignmentId;
use crate::package::PackageKind;
use crate::store::{PageRequest, Store, StoreError};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Packages are created, read, found by title and version, and deleted; (tenant, kind,
/// title, version) is unique, the same title and version of the other kind is not a clash.
pub async fn packages_crud_and_uniqueness(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let p = f.package(PackageKind::Firmware, "fw", "1.0");
    store.create_package(&p, None).await.expect("create");
    assert_eq!(store.get_package(f.tenant, p.id).await.expect("get"), p);
    let found = store
        .find_package(f.tenant, PackageKind::Firmware, "fw", "1.0")
        .await
        .expect("find");
    assert_eq!(found.as_ref().map(|p| p.id), Some(p.id));
    assert_eq!(
        store
            .find_package(f.tenant, PackageKind::Firmware, "fw", "9.9")
            .await
            .expect("find"),
        None
    );

    let clash = f.package(PackageKind::Firmware, "fw", "1.0");
    let err = store
        .create_package(&clash, None)
        .await
        .expect_err("duplicate title and version");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let again = store
        .create_package(&p, None)
        .await
        .expect_err("duplicate id");
    assert!(matches!(again, StoreError::Conflict { .. }), "{again:?}");

    let software = f.package(PackageKind::Software, "fw", "1.0");
    store
        .create_package(&software, None)
        .await
        .expect("other kind");

    store
        .delete_package(f.tenant, p.id, None)
        .await
        .expect("delete");
    let gone = store
        .get_package(f.tenant, p.id)
        .await
        .expect_err("deleted");
    assert!(gone.is_not_found(), "{gone:?}");
    let twice = store
        .delete_package(f.tenant, p.id, None)
        .await
        .expect_err("deleted twice");
    assert!(twice.is_not_found(), "{twice:?}");
    // The key is free again.
    store
        .create_package(&clash, None)
        .await
        .expect("recreate after delete");
}

/// Listings walk every package once, in id order, page by page, and filter by kind.
pub async fn package_listing_pages(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let mut ids = BTreeSet::new();
    for i in 0..25 {
        let kind = if i % 5 == 0 {
            PackageKind::Software
        } else {
            PackageKind::Firmware
        };
        let p = f.package(kind, "pkg", &format!("1.{i}"));
        store.create_package(&p, None).await.expect("create");
        ids.insert(p.id);
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(7);
    loop {
        let got = store
            .list_packages(f.tenant, None, page)
            .await
            .expect("list");
        assert!(got.items.len() <= 7);
        seen.extend(got.items.iter().map(|p| p.id));
        match got.next {
            Some(next) => page = next,
            None => break,
        }
    }
    assert_eq!(
        seen,
        ids.iter().copied().collect::<Vec<_>>(),
        "every package once, in id order"
    );
    let software = store
        .list_packages(
            f.tenant,
            Some(PackageKind::Software),
            PageRequest::first(100),
        )
        .await
        .expect("list software");
    assert_eq!(software.items.len(), 5);
    assert!(software.next.is_none());
    assert!(software
        .items
        .iter()
        .all(|p| p.kind == PackageKind::Software));
}

/// Deleting a package and assigning it at the same time: exactly one of the two wins. A
/// package is never deleted while assigned, and no assignment points at a deleted package
/// (40 concurrent pairs, each on its own package and device).
pub async fn package_delete_and_assign_are_atomic(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let profile = f.profile("p").await;
    let devices = f.devices(&profile, "d", 40).await;
    let mut packages = Vec::new();
    for i in 0..devices.len() {
        let p = f.package(PackageKind::Firmware, "fw", &format!("1.{i}"));
        store.create_package(&p, None).await.expect("package");
        packages.push(p);
    }
    // Each pair is driven by one future: delete and assign, started together.
    let pairs = devices
        .iter()
        .zip(&packages)
        .enumerate()
        .map(|(i, (d, p))| {
            let store = store.clone();
            let assignment = Assignment {
                id: AssignmentId::new(),
                tenant_id: f.tenant,
                kind: PackageKind::Firmware,
                target: AssignmentTarget::Device(d.id),
                package_id: p.id,
                assigned_at: at(i as i64),
                assigned_by: "conformance".to_string(),
            };
            async move {
                let (tenant, id) = (p.tenant_id, p.id);
                let delete = store.delete_package(tenant, id, None);
                let assign = store.put_assignment(&assignment, None);
                // Alternate which one is polled first.
                if i % 2 == 0 {
                    let (d, a) = futures_util::future::join(delete, assign).await;
                    (d, a.map(|_| ()))
                } else {
                    let (a, d) = futures_util::future::join(assign, delete).await;
                    (d, a.map(|_| ()))
                }
            }
        });
    let outcomes = futures_util::future::join_all(pairs).await;
    for ((d, p), (deleted, assigned)) in devices.iter().zip(&packages).zip(outcomes) {
        let stored = store
            .get_assignment(
                f.tenant,
                PackageKind::Firmware,
                AssignmentTarget::Device(d.id),
            )
            .await
            .expect("get assignment");
        let exists = match store.get_package(f.tenant, p.id).await {
            Ok(_) => true,
            Err(e) if e.is_not_found() => false,
            Err(e) => panic!("get package: {e:?}"),
        };
        match (&deleted, &assigned) {
            (Ok(()), Err(e)) => {
                assert!(e.is_not_found(), "assigning a deleted package: {e:?}");
                assert!(!exists && stored.is_none(), "deleted, so not assigned");
            }
            (Err(e), Ok(())) => {
                assert!(
                    matches!(e, StoreError::Conflict { .. }),
                    "deleting an assigned package: {e:?}"
                );
                assert!(exists, "assigned, so not deleted");
                assert_eq!(stored.map(|a| a.package_id), Some(p.id));
            }
            other => panic!("exactly one of delete and assign must succeed: {other:?}"),
        }
    }
    // And once unassigned, the package can be deleted.
    for (d, p) in devices.iter().zip(&packages) {
        if store
            .remove_assignment(
                f.tenant,
                PackageKind::Firmware,
                AssignmentTarget::Device(d.id),
                None,
            )
            .await
            .expect("remove")
            .is_some()
        {
            store
                .delete_package(f.tenant, p.id, None)
                .await
                .expect("delete once unassigned");
        }
    }
}
