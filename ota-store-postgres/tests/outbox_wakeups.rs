//! `PgStore::outbox_wakeups`: the outbox's announcements as a stream that names the devices
//! that got notices, starts with "look at every device", and comes back by itself (with
//! "look at every device" again) when its connection is killed.

use futures::StreamExt;
use ota_core::notifier::Notice;
use ota_core::store::{NoticeOutbox, OutboxEntry};
use ota_core::{DeviceId, PackageKind, TenantId};
use ota_store_postgres::testing::fresh_database;
use ota_store_postgres::{OutboxWakeups, PgStore};
use std::collections::BTreeSet;
use std::time::Duration;

fn withdrawal(tenant: TenantId, device: DeviceId) -> OutboxEntry {
    OutboxEntry::new(
        Notice::Withdrawal {
            tenant_id: tenant,
            device_id: device,
            kind: PackageKind::Firmware,
            keys: vec!["fw_title".into()],
        },
        chrono::DateTime::UNIX_EPOCH,
    )
}

async fn next(wakeups: &mut OutboxWakeups) -> Option<Vec<DeviceId>> {
    tokio::time::timeout(Duration::from_secs(60), wakeups.next())
        .await
        .expect("a wake-up within a minute")
        .expect("the stream does not end")
}

/// Takes wake-ups until every device of `want` was named; returns whether a `None` came.
async fn until_named(wakeups: &mut OutboxWakeups, want: &[DeviceId]) -> bool {
    let mut named = BTreeSet::new();
    let mut unknown = false;
    while !want.iter().all(|d| named.contains(d)) {
        match next(wakeups).await {
            Some(devices) => named.extend(devices),
            None => unknown = true,
        }
    }
    unknown
}

/// The connections listening for this schema's outbox (their last statement is the
/// `LISTEN`), terminated when `kill`.
async fn listeners(store: &PgStore, schema: &str, kill: bool) -> u64 {
    let what = if kill {
        "pg_terminate_backend(pid)"
    } else {
        "true"
    };
    let found: Vec<bool> = sqlx::query_scalar(&format!(
        "SELECT {what} FROM pg_stat_activity
         WHERE state = 'idle' AND query LIKE 'LISTEN %' AND query LIKE '%' || $1 || '%'"
    ))
    .bind(schema)
    .fetch_all(store.pool())
    .await
    .unwrap();
    found.into_iter().filter(|k| *k).count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wakeups_name_the_devices_and_survive_a_killed_connection() {
    let db = fresh_database().await;
    let store = PgStore::connect(db.options()).await.unwrap();
    let tenant = TenantId::new();
    let mut wakeups = store.outbox_wakeups();
    // First: "look at every device", once listening.
    assert_eq!(next(&mut wakeups).await, None);

    let (d1, d2) = (DeviceId::new(), DeviceId::new());
    store
        .enqueue_notice(&withdrawal(tenant, d1), None)
        .await
        .unwrap();
    store
        .enqueue_notice(&withdrawal(tenant, d2), None)
        .await
        .unwrap();
    assert!(!until_named(&mut wakeups, &[d1, d2]).await);

    // The listener's connection dies: it comes back and says it may have missed some.
    let mut killed = 0;
    for _ in 0..100 {
        killed = listeners(&store, &db.schema, true).await;
        if killed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(killed, 1, "one listener connection for this schema");
    assert_eq!(next(&mut wakeups).await, None);
    // Listening again: new notices are named.
    let d3 = DeviceId::new();
    store
        .enqueue_notice(&withdrawal(tenant, d3), None)
        .await
        .unwrap();
    until_named(&mut wakeups, &[d3]).await;

    // Dropping the stream gives its connection back.
    drop(wakeups);
    let mut left = 1;
    for _ in 0..200 {
        left = listeners(&store, &db.schema, false).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "no listener left once the stream is dropped");
}
