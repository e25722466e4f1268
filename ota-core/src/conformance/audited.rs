//! Audited writes: a management action and its audit entry are written together, or neither
//! (see [audited writes](crate::store#audited-writes)).

use super::fixtures::{at, bytes_of, stream_of, Fixture};
use crate::assignment::{Assignment, AssignmentTarget};
use crate::audit::AuditEntry;
use crate::campaign::{Campaign, CampaignSpec, CampaignTarget};
use crate::checksum::{checksum_of, ChecksumAlgorithm};
use crate::ids::{AssignmentId, DeviceId, PackageId};
use crate::package::{Package, PackageKind, PackageSource};
use crate::store::{PageRequest, Store, StoreError};
use std::collections::BTreeSet;
use std::sync::Arc;
use uuid::Uuid;

/// A fresh entry of the fixture's tenant for `action`.
fn entry(f: &Fixture, action: &str) -> AuditEntry {
    AuditEntry::new(
        f.tenant,
        "conformance",
        action,
        "target",
        at(1),
        serde_json::json!({}),
    )
}

/// The ids of the tenant's audit entries, oldest first.
async fn logged(f: &Fixture) -> Vec<Uuid> {
    let mut ids = Vec::new();
    let mut page = PageRequest::first(crate::store::MAX_PAGE_SIZE);
    loop {
        let got = f
            .store
            .list_audit(f.tenant, page)
            .await
            .expect("list audit");
        ids.extend(got.items.iter().map(|e| e.id));
        match got.next {
            Some(next) => page = next,
            None => return ids,
        }
    }
}

fn assignment(f: &Fixture, package: &Package, target: AssignmentTarget) -> Assignment {
    Assignment {
        id: AssignmentId::new(),
        tenant_id: f.tenant,
        kind: package.kind,
        target,
        package_id: package.id,
        assigned_at: at(0),
        assigned_by: "conformance".into(),
    }
}

fn campaign(f: &Fixture, package: &Package) -> Campaign {
    let spec = CampaignSpec::new("audited", package.id, CampaignTarget::DeviceList);
    Campaign::new(f.tenant, package.kind, spec, "conformance", at(0))
}

/// Each management write given an entry writes it with the action: afterwards the action's
/// effect is there and so is its entry, one per action.
pub async fn actions_and_their_audit_entries_are_written_together(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let expected = std::cell::RefCell::new(Vec::new());
    let with = |action: &str| {
        let e = entry(&f, action);
        expected.borrow_mut().push(e.id);
        e
    };

    let mut profile = f.profile("p").await;
    profile.id = crate::ids::ProfileId::new();
    profile.name = "audited".into();
    store
        .create_profile(&profile, Some(&with("profile.create")))
        .await
        .expect("profile");
    let group = crate::device::DeviceGroup {
        id: crate::ids::GroupId::new(),
        tenant_id: f.tenant,
        name: "g".into(),
        created_at: at(0),
    };
    store
        .create_group(&group, Some(&with("group.create")))
        .await
        .expect("group");
    let device = f.device(&profile, "d", &[]);
    store
        .create_devices(std::slice::from_ref(&device), Some(&with("device.create")))
        .await
        .expect("devices");
    store
        .set_device_groups(
            f.tenant,
            device.id,
            &BTreeSet::from([group.id]),
            Some(&with("device.set_groups")),
        )
        .await
        .expect("groups");
    store
        .rename_device(f.tenant, device.id, "d2", Some(&with("device.rename")))
        .await
        .expect("rename");
    store
        .set_device_token(
            f.tenant,
            device.id,
            "tok-2",
            Some(&with("device.set_token")),
        )
        .await
        .expect("token");
    assert_eq!(
        store.device_by_token("tok-2").await.expect("by token").name,
        "d2"
    );

    let external = f.package(PackageKind::Firmware, "ext", "1");
    store
        .create_package(&external, Some(&with("package.create_external")))
        .await
        .expect("package");
    let data = bytes_of(3000, 7);
    let mut upload = f.package(PackageKind::Software, "up", "1");
    upload.source = PackageSource::Stored;
    let upload_entry = entry(&f, "package.upload");
    let upload_id = upload_entry.id;
    let of = move |p: &Package| {
        let mut e = upload_entry.clone();
        e.details = serde_json::json!({"size": p.size});
        e
    };
    let stored = store
        .create_package_with_content(
            upload,
            Some(checksum_of(ChecksumAlgorithm::Sha256, &data)),
            None,
            stream_of(&data, 700),
            Some(&of),
        )
        .await
        .expect("upload");
    expected.borrow_mut().push(upload_id);

    let target = AssignmentTarget::Device(device.id);
    store
        .put_assignment(
            &assignment(&f, &external, target),
            Some(&with("assignment.set")),
        )
        .await
        .expect("assign");
    let remove_entry = entry(&f, "assignment.remove");
    let remove_id = remove_entry.id;
    let removed_of = move |a: &Assignment| {
        let mut e = remove_entry.clone();
        e.details = serde_json::json!({"package": a.package_id});
        e
    };
    let removed = store
        .remove_assignment(f.tenant, PackageKind::Firmware, target, Some(&removed_of))
        .await
        .expect("unassign");
    assert!(removed.is_some());
    expected.borrow_mut().push(remove_id);

    let mut c = campaign(&f, &external);
    store
        .create_campaign(&c, Some(&with("campaign.create")))
        .await
        .expect("campaign");
    store
        .set_campaign_devices(
            f.tenant,
            c.id,
            &[device.id],
            Some(&with("campaign.import_devices")),
        )
        .await
        .expect("device list");
    c.spec.name = "renamed".into();
    c.revision += 1;
    store
        .save_campaign(&c, c.revision - 1, Some(&with("campaign.edit")))
        .await
        .expect("save");

    store
        .delete_device(f.tenant, device.id, Some(&with("device.delete")))
        .await
        .expect("delete device");
    store
        .delete_group(f.tenant, group.id, Some(&with("group.delete")))
        .await
        .expect("delete group");
    store
        .delete_package(f.tenant, stored.id, Some(&with("package.delete")))
        .await
        .expect("delete package");

    let logged = logged(&f).await;
    let mut want = expected.borrow().clone();
    want.sort();
    let mut got = logged.clone();
    got.sort();
    assert_eq!(got, want, "every action's entry, and no other");
    let entries = store
        .list_audit(f.tenant, PageRequest::first(100))
        .await
        .expect("list")
        .items;
    let upload_logged = entries.iter().find(|e| e.id == upload_id).expect("upload");
    assert_eq!(
        upload_logged.details["size"], 3000,
        "built from the stored package"
    );
    let remove_logged = entries.iter().find(|e| e.id == remove_id).expect("remove");
    assert_eq!(
        remove_logged.details["package"],
        serde_json::json!(external.id),
        "built from the removed assignment"
    );
    assert_eq!(
        store
            .get_campaign(f.tenant, c.id)
            .await
            .expect("campaign")
            .spec
            .name,
        "renamed"
    );
}

/// A management write that fails (not found, conflict, in use, a stale revision) writes no
/// audit entry.
pub async fn failed_actions_write_no_audit_entry(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let profile = f.profile("p").await;
    let device = f.devices(&profile, "d", 1).await.remove(0);
    let package = f.package(PackageKind::Firmware, "fw", "1");
    store.create_package(&package, None).await.expect("package");
    store
        .put_assignment(
            &assignment(&f, &package, AssignmentTarget::Profile(profile.id)),
            None,
        )
        .await
        .expect("assign");
    let c = campaign(&f, &package);
    store.create_campaign(&c, None).await.expect("campaign");

    // Conflict: the name is taken.
    let mut twin = profile.clone();
    twin.id = crate::ids::ProfileId::new();
    let e = store
        .create_profile(&twin, Some(&entry(&f, "profile.create")))
        .await
        .expect_err("name taken");
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    // In use: the profile has a device and an assignment; the package is assigned.
    let e = store
        .delete_profile(f.tenant, profile.id, Some(&entry(&f, "profile.delete")))
        .await
        .expect_err("in use");
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    let e = store
        .delete_package(f.tenant, package.id, Some(&entry(&f, "package.delete")))
        .await
        .expect_err("assigned");
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    // Not found.
    let e = store
        .rename_device(
            f.tenant,
            DeviceId::new(),
            "x",
            Some(&entry(&f, "device.rename")),
        )
        .await
        .expect_err("unknown device");
    assert!(e.is_not_found(), "{e:?}");
    let e = store
        .delete_package(
            f.tenant,
            PackageId::new(),
            Some(&entry(&f, "package.delete")),
        )
        .await
        .expect_err("unknown package");
    assert!(e.is_not_found(), "{e:?}");
    let mut orphan = assignment(&f, &package, AssignmentTarget::Device(device.id));
    orphan.package_id = PackageId::new();
    let e = store
        .put_assignment(&orphan, Some(&entry(&f, "assignment.set")))
        .await
        .expect_err("unknown package");
    assert!(e.is_not_found(), "{e:?}");
    // Nothing to remove: no entry either.
    let never = |_: &Assignment| entry(&f, "assignment.remove");
    let none = store
        .remove_assignment(
            f.tenant,
            PackageKind::Software,
            AssignmentTarget::Device(device.id),
            Some(&never),
        )
        .await
        .expect("remove nothing");
    assert!(none.is_none());
    // A stale revision.
    let mut stale = c.clone();
    stale.revision = c.revision + 2;
    let e = store
        .save_campaign(&stale, c.revision + 1, Some(&entry(&f, "campaign.edit")))
        .await
        .expect_err("stale");
    assert!(matches!(e, StoreError::PreconditionFailed { .. }), "{e:?}");
    // A failing upload (checksum mismatch).
    let data = bytes_of(2000, 3);
    let mut upload = f.package(PackageKind::Software, "bad", "1");
    upload.source = PackageSource::Stored;
    let of = |_: &Package| entry(&f, "package.upload");
    let e = store
        .create_package_with_content(
            upload,
            Some(checksum_of(ChecksumAlgorithm::Sha256, b"other")),
            None,
            stream_of(&data, 500),
            Some(&of),
        )
        .await
        .expect_err("mismatch");
    assert!(matches!(e, StoreError::ChecksumMismatch { .. }), "{e:?}");

    assert_eq!(
        logged(&f).await,
        Vec::<Uuid>::new(),
        "no entry for a failed action"
    );
}

/// An entry that cannot be written (its id is stored already) refuses its action: the store
/// is left as it was.
pub async fn a_refused_audit_entry_refuses_its_action(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let taken = entry(&f, "first");
    store.append_audit(&taken).await.expect("append");
    let mut reused = taken.clone();
    reused.action = "reused".into();
    let refused = |r: Result<(), StoreError>| match r {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("an entry reusing an id must refuse the action: {other:?}"),
    };

    let profile = f.profile("p").await;
    let mut other = profile.clone();
    other.id = crate::ids::ProfileId::new();
    other.name = "other".into();
    refused(store.create_profile(&other, Some(&reused)).await);
    assert!(store.get_profile(f.tenant, other.id).await.is_err());

    let device = f.devices(&profile, "d", 1).await.remove(0);
    refused(
        store
            .rename_device(f.tenant, device.id, "renamed", Some(&reused))
            .await
            .map(|_| ()),
    );
    refused(
        store
            .delete_device(f.tenant, device.id, Some(&reused))
            .await
            .map(|_| ()),
    );
    let kept = store.get_device(f.tenant, device.id).await.expect("kept");
    assert_eq!(kept.name, "d0");

    let package = f.package(PackageKind::Firmware, "fw", "1");
    refused(store.create_package(&package, Some(&reused)).await);
    assert!(store.get_package(f.tenant, package.id).await.is_err());
    store.create_package(&package, None).await.expect("package");
    let target = AssignmentTarget::Device(device.id);
    refused(
        store
            .put_assignment(&assignment(&f, &package, target), Some(&reused))
            .await
            .map(|_| ()),
    );
    assert!(store
        .get_assignment(f.tenant, package.kind, target)
        .await
        .expect("get")
        .is_none());
    store
        .put_assignment(&assignment(&f, &package, target), None)
        .await
        .expect("assign");
    let again = |_: &Assignment| reused.clone();
    refused(
        store
            .remove_assignment(f.tenant, package.kind, target, Some(&again))
            .await
            .map(|_| ()),
    );
    assert!(store
        .get_assignment(f.tenant, package.kind, target)
        .await
        .expect("get")
        .is_some());

    let data = bytes_of(1500, 9);
    let mut upload = f.package(PackageKind::Software, "up", "1");
    upload.source = PackageSource::Stored;
    let id = upload.id;
    refused(
        store
            .create_package_with_content(
                upload,
                Some(checksum_of(ChecksumAlgorithm::Sha256, &data)),
                None,
                stream_of(&data, 500),
                Some(&again_package(&reused)),
            )
            .await
            .map(|_| ()),
    );
    assert!(store.get_package(f.tenant, id).await.is_err());

    let c = campaign(&f, &package);
    store.create_campaign(&c, None).await.expect("campaign");
    let mut next = c.clone();
    next.spec.name = "changed".into();
    next.revision += 1;
    refused(store.save_campaign(&next, c.revision, Some(&reused)).await);
    assert_eq!(
        store
            .get_campaign(f.tenant, c.id)
            .await
            .expect("get")
            .revision,
        c.revision
    );

    assert_eq!(logged(&f).await, vec![taken.id], "only the first entry");
}

fn again_package(e: &AuditEntry) -> impl Fn(&Package) -> AuditEntry + Send + Sync + '_ {
    move |_| e.clone()
}
