//! Embedded migrations: applied once however many instances start together, a no-op when
//! run again, and a database migrated by a newer build is refused with a clear error.

use futures::future::join_all;
use ota_core::store::DeviceStore;
use ota_core::store::StoreError;
use ota_store_postgres::testing::fresh_database;
use ota_store_postgres::{PgStore, PgStoreOptions, MIGRATIONS};

async fn recorded(store: &PgStore) -> Vec<(i32, String)> {
    sqlx::query_as("SELECT version, name FROM ota_schema_migrations ORDER BY version")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

fn embedded() -> Vec<(i32, String)> {
    MIGRATIONS
        .iter()
        .map(|(v, n, _)| (*v, n.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_apply_each_migration_once() {
    let db = fresh_database().await;
    let stores: Vec<PgStore> = join_all((0..6).map(|_| PgStore::connect(db.options())))
        .await
        .into_iter()
        .map(|s| s.expect("every instance connects"))
        .collect();
    assert_eq!(recorded(&stores[0]).await, embedded());
    // Again, on a migrated database: nothing to do, nothing changes.
    stores[1].migrate().await.unwrap();
    let again = PgStore::connect(db.options()).await.unwrap();
    assert_eq!(recorded(&again).await, embedded());
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_a_newer_build_is_refused() {
    let db = fresh_database().await;
    let store = PgStore::connect(db.options()).await.unwrap();
    let newest = MIGRATIONS.last().unwrap().0;
    sqlx::query("INSERT INTO ota_schema_migrations (version, name) VALUES ($1, 'from the future')")
        .bind(newest + 1)
        .execute(store.pool())
        .await
        .unwrap();
    let err = PgStore::connect(db.options())
        .await
        .expect_err("a newer schema");
    assert!(
        matches!(&err, StoreError::Backend { message } if message.contains("newer than this build")),
        "{err:?}"
    );
    db.drop_schema().await;
}

/// Schema names are quoted identifiers: a keyword works, and capitals are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_names_are_quoted_identifiers() {
    let db = fresh_database().await;
    let caps = format!("Caps_{}", db.schema);
    // `user` is shared by every run of this test; migrations are idempotent, so it is left.
    for schema in ["user".to_string(), caps.clone()] {
        let store = PgStore::connect(PgStoreOptions::new(db.url.clone()).schema(schema.clone()))
            .await
            .unwrap_or_else(|e| panic!("schema {schema:?}: {e}"));
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables
             WHERE table_schema = $1 AND table_name = 'ota_devices'",
        )
        .bind(&schema)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(tables, 1, "the tables live in {schema:?}");
        let tenant = ota_core::TenantId::new();
        let profile = ota_core::DeviceProfile {
            id: ota_core::ProfileId::new(),
            tenant_id: tenant,
            name: "p".into(),
            created_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        store.create_profile(&profile).await.unwrap();
        assert_eq!(
            store.get_profile(tenant, profile.id).await.unwrap(),
            profile
        );
        store.close().await;
    }
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA \"{caps}\" CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}
