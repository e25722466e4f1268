//! Connection loss: a PostgreSQL server of the test's own (a private cluster on a free port,
//! so that other tests keep their server) is stopped and started again under a connected
//! store. While it is down, calls fail with transient errors; once it is back, calls succeed
//! again with no manual step, and what was written before is still there.

use ota_core::store::{DeviceStore, PageRequest, StoreError};
use ota_core::Clock;
use ota_core::{DeviceProfile, ManualClock, ProfileId, TenantId};
use ota_store_postgres::testing::cluster::{PrivateCluster, INSTALL_HELP};
use ota_store_postgres::{PgStore, PgStoreOptions};
use std::time::Duration;

fn profile(tenant: TenantId, name: &str) -> DeviceProfile {
    DeviceProfile {
        id: ProfileId::new(),
        tenant_id: tenant,
        name: name.to_string(),
        created_at: ManualClock::at_epoch_2024().now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_transiently_while_the_server_restarts_then_succeed() {
    let cluster = PrivateCluster::start().expect(INSTALL_HELP);
    let mut options = PgStoreOptions::new(cluster.url()).max_connections(4);
    options.acquire_timeout = Duration::from_secs(2);
    let store = PgStore::connect(options)
        .await
        .expect("connect to the private cluster");
    let tenant = TenantId::new();
    let before = profile(tenant, "before");
    store.create_profile(&before, None).await.unwrap();
    // Keep pooled connections open across the restart.
    for _ in 0..4 {
        store.get_profile(tenant, before.id).await.unwrap();
    }

    cluster.stop_server();
    for _ in 0..3 {
        match store.get_profile(tenant, before.id).await {
            Err(e @ StoreError::Unavailable { .. }) => assert!(e.is_transient()),
            other => panic!("expected a transient error while the server is down, got {other:?}"),
        }
    }
    let refused = store.create_profile(&profile(tenant, "during"), None).await;
    assert!(
        matches!(&refused, Err(e) if e.is_transient()),
        "a write while the server is down: {refused:?}"
    );

    cluster.start_server();
    let mut attempts = 0;
    let got = loop {
        attempts += 1;
        match store.get_profile(tenant, before.id).await {
            Ok(p) => break p,
            Err(e) if e.is_transient() && attempts < 50 => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the store did not recover after {attempts} attempts: {e}"),
        }
    };
    assert_eq!(
        got, before,
        "what was written before the restart is still there"
    );
    let after = profile(tenant, "after");
    store.create_profile(&after, None).await.unwrap();
    let listed = store
        .list_profiles(tenant, PageRequest::first(10))
        .await
        .unwrap();
    let names: Vec<&str> = listed.items.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"before") && names.contains(&"after"));
    store.close().await;
}
