//! Reports judged against the store's hint of a device's latest update (the row the store
//! last wrote) stay correct when another writer changed the row since: a cancel by another
//! engine on another store is seen, the report is not applied over it, and the history
//! records the report against the canceled update.

mod common;

use common::*;
use ota_core::engine::{Ota, OtaConfig, ReportOutcome};
use ota_core::store::{UpdateFilter, UpdateStore};
use ota_core::update::{HistoryOutcome, Outcome};
use ota_core::wire::DeviceReport;
use ota_core::{ManualClock, PackageKind, TenantId, UpdateState};
use ota_store_postgres::testing::fresh_database;
use ota_store_postgres::PgStore;
use std::sync::Arc;

fn report(state: UpdateState) -> DeviceReport {
    DeviceReport {
        kind: PackageKind::Firmware,
        ts: None,
        state: Some(state),
        current_title: None,
        current_version: None,
        error: None,
        progress: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_after_another_engine_canceled_is_judged_on_the_canceled_update() {
    let db = fresh_database().await;
    let store_a = PgStore::connect(db.options().max_connections(4))
        .await
        .unwrap();
    let store_b = PgStore::connect(db.options().max_connections(4))
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::at_epoch_2024());
    let (_, notifier_a) = recorder();
    let (_, notifier_b) = recorder();
    let a = Ota::new(
        Arc::new(store_a.clone()),
        notifier_a,
        clock.clone(),
        OtaConfig::default().instance_id("a"),
    );
    let b = Ota::new(
        Arc::new(store_b.clone()),
        notifier_b,
        clock.clone(),
        OtaConfig::default().instance_id("b"),
    );
    let tenant = TenantId::new();
    fleet(&a, tenant, 1).await;
    assert_eq!(a.tick().await.unwrap().released, 1);
    let device = store_a
        .list_updates(tenant, &UpdateFilter::default(), Default::default())
        .await
        .unwrap()
        .items[0]
        .device_id;
    // Through `a`: the store of `a` now holds the row it wrote as its hint.
    let first = a
        .handle_report(tenant, device, &report(UpdateState::Downloading))
        .await
        .unwrap();
    assert!(matches!(
        first,
        ReportOutcome::Update(Outcome::Applied { .. })
    ));
    // Another engine, on another store, cancels it.
    let canceled = b
        .cancel_update(ACTOR, tenant, device, PackageKind::Firmware, "test")
        .await
        .unwrap();
    assert_eq!(canceled.state, UpdateState::Canceled);
    // The next report through `a` must not be applied over the cancel.
    let next = a
        .handle_report(tenant, device, &report(UpdateState::Downloaded))
        .await
        .unwrap();
    let ReportOutcome::Update(outcome) = next else {
        panic!("the device has an update: {next:?}");
    };
    assert!(outcome.applied().is_none(), "{outcome:?}");
    assert_eq!(outcome.history().from, UpdateState::Canceled);
    assert_ne!(outcome.history().outcome, HistoryOutcome::Applied);
    let stored = store_a
        .latest_update(tenant, device, PackageKind::Firmware)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, UpdateState::Canceled);
    assert_eq!(stored.revision, canceled.revision);
    let history = store_a.update_history(tenant, stored.id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.from, UpdateState::Canceled, "{history:?}");
    store_a.pool().close().await;
    store_b.pool().close().await;
    db.drop_schema().await;
}
