//! A device report's writes together: the transition and the device's current version
//! ([`crate::store::UpdateStore::transition_with_current`]).

use super::fixtures::{at, Fixture};
use crate::package::{PackageKind, TitleVersion};
use crate::store::{Store, StoreError};
use crate::update::{apply, EventSource, Outcome, UpdateEvent, UpdatePolicy};
use crate::TenantId;
use std::sync::Arc;

/// A store that writes a transition with the device's current version writes both when the
/// revision holds, and no transition when it does not (a stale revision, an unknown update,
/// another tenant's update); a store without the combined write answers `None` and writes
/// nothing.
pub async fn transition_with_current_writes_both_or_no_transition(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let p = f.profile("p").await;
    let devices = f.devices(&p, "d", 1).await;
    let device = &devices[0];
    let pkg = f.package(PackageKind::Firmware, "fw", "2.0");
    store.create_package(&pkg, None).await.expect("package");
    let u = f.update(device, &pkg, at(0));
    store
        .create_updates(std::slice::from_ref(&u))
        .await
        .expect("create");
    let Outcome::Applied {
        update: initiated,
        history,
    } = apply(
        &u,
        &UpdateEvent::Dispatched,
        at(1),
        &UpdatePolicy::default(),
    )
    else {
        panic!("a queued update is dispatched");
    };
    let Outcome::Applied {
        update: failed,
        history: failed_history,
    } = apply(
        &initiated,
        &UpdateEvent::Fail {
            source: EventSource::Server,
            reason: "test".into(),
        },
        at(2),
        &UpdatePolicy::default(),
    )
    else {
        panic!("an initiated update fails");
    };
    let running = TitleVersion::new("fw", "2.0");

    // Stale: the stored revision is not the expected one.
    let stale = store
        .transition_with_current(&failed, initiated.revision, &failed_history, &running)
        .await;
    match stale {
        None => {}
        Some(Err(StoreError::PreconditionFailed { .. })) => {}
        other => panic!("a stale combined write: {other:?}"),
    }
    assert_eq!(store.get_update(f.tenant, u.id).await.expect("get"), u);

    // Another tenant's update is not found, and nothing of it changes.
    let mut foreign = initiated.clone();
    foreign.tenant_id = TenantId::new();
    match store
        .transition_with_current(&foreign, u.revision, &history, &running)
        .await
    {
        None => {}
        Some(Err(StoreError::NotFound { .. })) => {}
        other => panic!("another tenant's update: {other:?}"),
    }
    assert_eq!(store.get_update(f.tenant, u.id).await.expect("get"), u);

    // Fresh: both are written.
    match store
        .transition_with_current(&initiated, u.revision, &history, &running)
        .await
    {
        None => {
            assert_eq!(store.get_update(f.tenant, u.id).await.expect("get"), u);
        }
        Some(answer) => {
            answer.expect("a fresh combined write");
            assert_eq!(
                store.get_update(f.tenant, u.id).await.expect("get"),
                initiated
            );
            let stored = store.get_device(f.tenant, device.id).await.expect("device");
            assert_eq!(stored.current.get(PackageKind::Firmware), Some(&running));
            assert_eq!(stored.current.get(PackageKind::Software), None);
            assert_eq!(
                store
                    .update_history(f.tenant, u.id)
                    .await
                    .expect("history")
                    .len(),
                1
            );
        }
    }
}
