//! Operator queries on one device: latest update per kind and the paged update history.

mod support;

use ota_core::engine::{OtaConfig, MAX_HISTORY_PAGE};
use ota_core::store::PageRequest;
use ota_core::update::{EventSource, HistoryOutcome};
use ota_core::{AssignmentTarget, DeviceId, PackageKind, TenantId, UpdateId, UpdateState};
use support::*;

#[tokio::test]
async fn latest_updates_per_kind_follow_the_device_and_unknown_devices_are_not_found() {
    let h = Harness::new(OtaConfig::default());
    let p = h.profile("p").await;
    let d = h.devices(&p, "d", 1).await.remove(0);

    assert_eq!(
        h.ota
            .latest_update(h.tenant, d.id, PackageKind::Firmware)
            .await
            .unwrap(),
        None
    );
    let none = h.ota.latest_updates(h.tenant, d.id).await.unwrap();
    assert_eq!(
        (none.firmware.as_ref(), none.software.as_ref()),
        (None, None)
    );

    let f1 = h.package("fw", "1.0").await;
    h.ota
        .assign(ACTOR, h.tenant, AssignmentTarget::Device(d.id), f1.id)
        .await
        .unwrap();
    h.ota.tick().await.unwrap();
    h.ota
        .handle_report(h.tenant, d.id, &report(Some(UpdateState::Downloading)))
        .await
        .unwrap();
    let fw = h
        .ota
        .latest_update(h.tenant, d.id, PackageKind::Firmware)
        .await
        .unwrap()
        .expect("a firmware update");
    assert_eq!((fw.state, fw.package_id), (UpdateState::Downloading, f1.id));
    let both = h.ota.latest_updates(h.tenant, d.id).await.unwrap();
    assert_eq!(both.get(PackageKind::Firmware), Some(&fw));
    assert_eq!(both.get(PackageKind::Software), None);

    for (tenant, device) in [(h.tenant, DeviceId::new()), (TenantId::new(), d.id)] {
        let err = h
            .ota
            .latest_update(tenant, device, PackageKind::Software)
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(h
            .ota
            .latest_updates(tenant, device)
            .await
            .unwrap_err()
            .is_not_found());
        assert!(h
            .ota
            .device_update_history(tenant, device, None, PageRequest::first(10))
            .await
            .unwrap_err()
            .is_not_found());
        assert!(h
            .ota
            .recent_device_history(tenant, device, 10)
            .await
            .unwrap_err()
            .is_not_found());
    }
    assert!(h
        .ota
        .update_history(h.tenant, UpdateId::new())
        .await
        .unwrap_err()
        .is_not_found());
    assert!(h
        .ota
        .update_history(TenantId::new(), fw.id)
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn the_history_pages_through_every_update_oldest_first_with_every_event() {
    let h = Harness::new(OtaConfig::default());
    let p = h.profile("p").await;
    let d = h.devices(&p, "d", 1).await.remove(0);
    // Five successive assignments: each replaces the unfinished update before it.
    let mut packages = Vec::new();
    for v in 1..=5 {
        let pkg = h.package("fw", &format!("{v}.0")).await;
        h.ota
            .assign(ACTOR, h.tenant, AssignmentTarget::Device(d.id), pkg.id)
            .await
            .unwrap();
        h.ota.tick().await.unwrap();
        packages.push(pkg);
    }
    // A duplicate report is kept in history as ignored.
    for _ in 0..2 {
        h.ota
            .handle_report(h.tenant, d.id, &report(Some(UpdateState::Downloading)))
            .await
            .unwrap();
    }

    let mut seen = Vec::new();
    let mut page = PageRequest::first(2);
    let mut pages = 0;
    loop {
        let got = h
            .ota
            .device_update_history(h.tenant, d.id, Some(PackageKind::Firmware), page)
            .await
            .unwrap();
        assert!(got.items.len() <= 2);
        pages += 1;
        seen.extend(got.items);
        match got.next {
            Some(next) => page = next,
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let order: Vec<_> = seen.iter().map(|h| h.update.package_id).collect();
    assert_eq!(order, packages.iter().map(|p| p.id).collect::<Vec<_>>());
    for earlier in &seen[..4] {
        assert_eq!(earlier.update.state, UpdateState::Canceled);
        let states: Vec<_> = earlier.entries.iter().map(|e| e.to).collect();
        assert_eq!(
            states,
            [UpdateState::Initiated, UpdateState::Canceled],
            "released, then replaced"
        );
        assert!(earlier
            .entries
            .iter()
            .all(|e| e.update_id == earlier.update.id));
    }
    let last = &seen[4];
    assert_eq!(last.update.state, UpdateState::Downloading);
    let outcomes: Vec<_> = last.entries.iter().map(|e| (e.to, e.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            (UpdateState::Initiated, HistoryOutcome::Applied),
            (UpdateState::Downloading, HistoryOutcome::Applied),
            (UpdateState::Downloading, HistoryOutcome::Ignored),
        ]
    );
    assert_eq!(last.entries[1].source, EventSource::Device);
    assert_eq!(
        h.ota
            .update_history(h.tenant, last.update.id)
            .await
            .unwrap(),
        last.entries
    );

    // Software narrows to nothing; a huge page is clamped.
    let sw = h
        .ota
        .device_update_history(
            h.tenant,
            d.id,
            Some(PackageKind::Software),
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert!(sw.items.is_empty() && sw.next.is_none());
    let all = h
        .ota
        .device_update_history(h.tenant, d.id, None, PageRequest::first(u32::MAX))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 5);
    assert!(all.items.len() <= MAX_HISTORY_PAGE as usize);

    let recent = h
        .ota
        .recent_device_history(h.tenant, d.id, 3)
        .await
        .unwrap();
    assert_eq!(recent.len(), 3);
    assert!(
        recent.windows(2).all(|w| w[0].at >= w[1].at),
        "newest first"
    );
    assert_eq!(recent[0].outcome, HistoryOutcome::Ignored);
}
