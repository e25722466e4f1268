//! Device, profile and group behaviours.

use super::fixtures::Fixture;
use crate::device::Device;
use crate::package::{PackageKind, TitleVersion};
use crate::store::{DeviceSelector, PageRequest, Store, StoreError};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Profiles, groups and devices are created and read back; names are unique per tenant,
/// access tokens everywhere; a batch with one bad device stores none; unknown profiles or
/// groups are refused.
pub async fn devices_crud_and_uniqueness(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let p = f.profile("sensors").await;
    let g = f.group("north").await;
    assert_eq!(store.get_profile(f.tenant, p.id).await.expect("profile"), p);
    assert_eq!(store.get_group(f.tenant, g.id).await.expect("group"), g);
    let dup_profile = crate::device::DeviceProfile {
        id: crate::ids::ProfileId::new(),
        ..p.clone()
    };
    assert!(matches!(
        store.create_profile(&dup_profile, None).await,
        Err(StoreError::Conflict { .. })
    ));
    let dup_group = crate::device::DeviceGroup {
        id: crate::ids::GroupId::new(),
        ..g.clone()
    };
    assert!(matches!(
        store.create_group(&dup_group, None).await,
        Err(StoreError::Conflict { .. })
    ));

    let d1 = f.device(&p, "d1", &[&g]);
    let d2 = f.device(&p, "d2", &[]);
    store
        .create_devices(&[d1.clone(), d2.clone()], None)
        .await
        .expect("devices");
    // Read back without the token (only its digest is stored).
    let stored = Device {
        access_token: String::new(),
        ..d1.clone()
    };
    assert_eq!(
        store.get_device(f.tenant, d1.id).await.expect("get"),
        stored
    );
    let by_token = store
        .device_by_token(&d2.access_token)
        .await
        .expect("by token");
    assert_eq!(by_token.id, d2.id);
    assert!(by_token.access_token.is_empty(), "tokens are not read back");
    assert!(store
        .device_by_token("no such token")
        .await
        .is_err_and(|e| e.is_not_found()));

    let mut names = store
        .find_devices_by_name(
            f.tenant,
            &["d2".into(), "nope".into(), "d1".into(), "d1".into()],
        )
        .await
        .expect("by name");
    names.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        names.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["d1", "d2"]
    );

    // Same name, same token, unknown profile or group: the whole batch is refused.
    let ok = f.device(&p, "d3", &[]);
    let same_name = f.device(&p, "d1", &[]);
    let err = store
        .create_devices(&[ok.clone(), same_name], None)
        .await
        .expect_err("name taken");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let name_taken = err.to_string();
    let mut same_token = f.device(&p, "d4", &[]);
    same_token.access_token = d1.access_token.clone();
    let err = store
        .create_devices(&[ok.clone(), same_token], None)
        .await
        .expect_err("token taken");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        name_taken,
        "a taken token is answered like a taken name"
    );
    // From another tenant: the same answer, which does not confirm that the token exists.
    let other = Fixture::new(store.clone());
    let other_profile = other.profile("sensors").await;
    let mut probe = other.device(&other_profile, "probe", &[]);
    probe.access_token = d1.access_token.clone();
    let err = store
        .create_devices(&[probe], None)
        .await
        .expect_err("token taken in another tenant");
    assert_eq!(err.to_string(), name_taken);
    assert!(!err.to_string().contains(&d1.access_token));
    let twice = f.device(&p, "d5", &[]);
    let mut twice_again = f.device(&p, "d5", &[]);
    twice_again.access_token.push('x');
    let err = store
        .create_devices(&[twice, twice_again], None)
        .await
        .expect_err("name twice in one batch");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let mut lost = f.device(&p, "d6", &[]);
    lost.profile_id = crate::ids::ProfileId::new();
    assert!(store
        .create_devices(&[lost], None)
        .await
        .is_err_and(|e| e.is_not_found()));
    let mut lost_group = f.device(&p, "d7", &[]);
    lost_group.groups.insert(crate::ids::GroupId::new());
    assert!(store
        .create_devices(&[lost_group], None)
        .await
        .is_err_and(|e| e.is_not_found()));
    assert!(
        store
            .get_device(f.tenant, ok.id)
            .await
            .is_err_and(|e| e.is_not_found()),
        "nothing of a refused batch is kept"
    );
    store
        .create_devices(&[ok], None)
        .await
        .expect("the good device alone");
    assert_eq!(
        store
            .count_devices(f.tenant, DeviceSelector::All)
            .await
            .expect("count"),
        3
    );

    store
        .set_current_version(
            f.tenant,
            d1.id,
            PackageKind::Firmware,
            Some(TitleVersion::new("fw", "1.0")),
        )
        .await
        .expect("current");
    let d1_now = store.get_device(f.tenant, d1.id).await.expect("get");
    assert_eq!(
        d1_now.current.get(PackageKind::Firmware),
        Some(&TitleVersion::new("fw", "1.0"))
    );
    assert_eq!(d1_now.current.get(PackageKind::Software), None);
}

/// Listings by tenant, profile and group walk every selected device once, in id order, and
/// counts agree.
pub async fn device_listing_pages_by_selector(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let p1 = f.profile("p1").await;
    let p2 = f.profile("p2").await;
    let g = f.group("g").await;
    let mut batch = Vec::new();
    for i in 0..230 {
        let profile = if i % 3 == 0 { &p2 } else { &p1 };
        let groups: Vec<_> = if i % 4 == 0 { vec![&g] } else { vec![] };
        batch.push(f.device(profile, &format!("dev{i}"), &groups));
    }
    store.create_devices(&batch, None).await.expect("devices");
    for (selector, expected) in [
        (DeviceSelector::All, batch.iter().collect::<Vec<_>>()),
        (
            DeviceSelector::Profile(p1.id),
            batch.iter().filter(|d| d.profile_id == p1.id).collect(),
        ),
        (
            DeviceSelector::Profile(p2.id),
            batch.iter().filter(|d| d.profile_id == p2.id).collect(),
        ),
        (
            DeviceSelector::Group(g.id),
            batch.iter().filter(|d| d.groups.contains(&g.id)).collect(),
        ),
    ] {
        let mut want: Vec<_> = expected.iter().map(|d| d.id).collect();
        want.sort();
        let mut seen = Vec::new();
        let mut page = PageRequest::first(50);
        loop {
            let got = store
                .list_devices(f.tenant, selector, page)
                .await
                .expect("list");
            assert!(got.items.len() <= 50);
            seen.extend(got.items.iter().map(|d| d.id));
            match got.next {
                Some(next) => page = next,
                None => break,
            }
        }
        assert_eq!(seen, want, "{selector:?}");
        let n = store
            .count_devices(f.tenant, selector)
            .await
            .expect("count");
        assert_eq!(n, want.len() as u64, "{selector:?}");
    }
}

/// Moving a device to another profile or other groups changes which listings select it.
pub async fn device_memberships_change(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let p1 = f.profile("p1").await;
    let p2 = f.profile("p2").await;
    let a = f.group("a").await;
    let b = f.group("b").await;
    let d = f.device(&p1, "d", &[&a]);
    store
        .create_devices(std::slice::from_ref(&d), None)
        .await
        .expect("device");

    let moved = store
        .set_device_profile(f.tenant, d.id, p2.id, None)
        .await
        .expect("move");
    assert_eq!(moved.profile_id, p2.id);
    assert_eq!(
        store
            .count_devices(f.tenant, DeviceSelector::Profile(p1.id))
            .await
            .expect("count"),
        0
    );
    assert_eq!(
        store
            .count_devices(f.tenant, DeviceSelector::Profile(p2.id))
            .await
            .expect("count"),
        1
    );

    let groups: BTreeSet<_> = [b.id].into_iter().collect();
    let regrouped = store
        .set_device_groups(f.tenant, d.id, &groups, None)
        .await
        .expect("groups");
    assert_eq!(regrouped.groups, groups);
    assert_eq!(
        store.get_device(f.tenant, d.id).await.expect("get").groups,
        groups
    );
    assert_eq!(
        store
            .count_devices(f.tenant, DeviceSelector::Group(a.id))
            .await
            .expect("count"),
        0
    );
    let in_b = store
        .list_devices(
            f.tenant,
            DeviceSelector::Group(b.id),
            PageRequest::first(10),
        )
        .await
        .expect("list");
    assert_eq!(
        in_b.items.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![d.id]
    );

    let unknown: BTreeSet<_> = [crate::ids::GroupId::new()].into_iter().collect();
    assert!(store
        .set_device_groups(f.tenant, d.id, &unknown, None)
        .await
        .is_err_and(|e| e.is_not_found()));
    assert_eq!(
        store.get_device(f.tenant, d.id).await.expect("get").groups,
        groups,
        "unchanged after a refused change"
    );
    let no_profile = crate::ids::ProfileId::new();
    assert!(store
        .set_device_profile(f.tenant, d.id, no_profile, None)
        .await
        .is_err_and(|e| e.is_not_found()));
}
