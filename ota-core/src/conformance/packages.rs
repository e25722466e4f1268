//! Package metadata behaviours.

use super::fixtures::Fixture;
use crate::package::PackageKind;
use crate::store::{PageRequest, Store, StoreError};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Packages are created, read, found by title and version, and deleted; (tenant, kind,
/// title, version) is unique, the same title and version of the other kind is not a clash.
pub async fn packages_crud_and_uniqueness(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let p = f.package(PackageKind::Firmware, "fw", "1.0");
    store.create_package(&p).await.expect("create");
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
        .create_package(&clash)
        .await
        .expect_err("duplicate title and version");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let again = store.create_package(&p).await.expect_err("duplicate id");
    assert!(matches!(again, StoreError::Conflict { .. }), "{again:?}");

    let software = f.package(PackageKind::Software, "fw", "1.0");
    store.create_package(&software).await.expect("other kind");

    store.delete_package(f.tenant, p.id).await.expect("delete");
    let gone = store
        .get_package(f.tenant, p.id)
        .await
        .expect_err("deleted");
    assert!(gone.is_not_found(), "{gone:?}");
    let twice = store
        .delete_package(f.tenant, p.id)
        .await
        .expect_err("deleted twice");
    assert!(twice.is_not_found(), "{twice:?}");
    // The key is free again.
    store
        .create_package(&clash)
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
        store.create_package(&p).await.expect("create");
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
