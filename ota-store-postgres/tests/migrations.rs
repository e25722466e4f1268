//! Embedded migrations: applied once however many instances start together, a no-op when
//! run again, and a database migrated by a newer build is refused with a clear error. Rows
//! written before migration 0050 (bigint nanosecond times) read back with the same times.

use chrono::{DateTime, Utc};
use futures::future::join_all;
use ota_core::ids::ApiKeyId;
use ota_core::notifier::Notice;
use ota_core::store::{
    ApiKeyStore, DeviceStore, NoticeClaim, NoticeOutbox, StoreError, UpdateStore,
};
use ota_core::{
    DeviceId, GroupId, PackageId, PackageKind, ProfileId, TenantId, Timestamp, UpdateId,
    UpdateState,
};
use ota_store_postgres::testing::{fresh_database, TestDatabase};
use ota_store_postgres::{PgStore, PgStoreOptions, MIGRATIONS};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;

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
    // `user` is one name for every run of this test: dropped first, so that no earlier run
    // (or a build that knew other migrations) leaves its tables behind.
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .expect("connect");
    sqlx::query(r#"DROP SCHEMA IF EXISTS "user" CASCADE"#)
        .execute(&admin)
        .await
        .expect("drop schema user");
    admin.close().await;
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
        store.create_profile(&profile, None).await.unwrap();
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

/// A pool on `db`'s schema with the embedded migrations up to `version` applied, as a build
/// of that version left it.
async fn migrated_up_to(db: &TestDatabase, version: i32) -> sqlx::PgPool {
    let options = PgConnectOptions::from_str(&db.url)
        .unwrap()
        .options([("search_path", format!("\"{}\"", db.schema))]);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    sqlx::raw_sql(&format!(
        "CREATE SCHEMA \"{}\";
         CREATE TABLE ota_schema_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
         );",
        db.schema
    ))
    .execute(&pool)
    .await
    .unwrap();
    for (v, name, sql) in MIGRATIONS.iter().filter(|m| m.0 <= version) {
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO ota_schema_migrations (version, name) VALUES ($1, $2)")
            .bind(v)
            .bind(name)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool
}

/// The time a bigint of nanoseconds (the schema before 0050) stands for, truncated to its
/// microsecond.
fn from_nanos(ns: i64) -> Timestamp {
    DateTime::from_timestamp_micros(ns.div_euclid(1_000)).unwrap()
}

/// Nanosecond times of every kind the old schema held: sub-microsecond, before 1970 and
/// 2000, the ends of its range (where the old store saturated).
const OLD_TIMES: [i64; 8] = [
    1_704_067_200_123_456_789,
    0,
    -1,
    -1_000_000_000_000_000_001,
    946_684_799_999_999_999,
    1_000,
    i64::MAX,
    i64::MIN,
];

/// Rows written by the schema of migration 0040 (bigint nanosecond times) read back through
/// the store after migration 0050 with the same times, to the microsecond.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_written_before_0050_read_back_with_the_same_times() {
    let db = fresh_database().await;
    let old = migrated_up_to(&db, 40).await;
    let tenant = TenantId::new();
    let profile = ProfileId::new();
    let group = GroupId::new();
    let mut devices = Vec::new();
    for (i, ns) in OLD_TIMES.iter().enumerate() {
        if i == 0 {
            sqlx::query("INSERT INTO ota_profiles (id, tenant_id, name, created_at) VALUES ($1, $2, 'p', $3)")
                .bind(profile.0).bind(tenant.0).bind(ns).execute(&old).await.unwrap();
            sqlx::query(
                "INSERT INTO ota_groups (id, tenant_id, name, created_at) VALUES ($1, $2, 'g', $3)",
            )
            .bind(group.0)
            .bind(tenant.0)
            .bind(ns)
            .execute(&old)
            .await
            .unwrap();
        }
        let device = DeviceId::new();
        sqlx::query(
            "INSERT INTO ota_devices (id, tenant_id, name, profile_id, token_digest, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(device.0)
        .bind(tenant.0)
        .bind(format!("dev-{i}"))
        .bind(profile.0)
        .bind(format!("digest-{i}"))
        .bind(ns)
        .execute(&old)
        .await
        .unwrap();
        devices.push((device, *ns));
    }
    // Updates: each time column gets another of the times.
    let mut updates = Vec::new();
    for (i, (device, _)) in devices.iter().enumerate() {
        let t = |k: usize| OLD_TIMES[(i + k) % OLD_TIMES.len()];
        let id = UpdateId::new();
        sqlx::query(
            "INSERT INTO ota_updates (id, tenant_id, device_id, kind, package_id, target_title,
                target_version, campaign_id, wave, state, attempt, progress, error, created_at,
                state_changed_at, updated_at, retry_at, wake_at, revision, lease_owner, lease_until)
             VALUES ($1, $2, $3, 'FIRMWARE', $4, 'fw', '2.0', NULL, 0, 'DOWNLOADING', 1, 40,
                NULL, $5, $6, $7, $8, $9, 3, 'an instance', $10)",
        )
        .bind(id.0)
        .bind(tenant.0)
        .bind(device.0)
        .bind(PackageId::new().0)
        .bind(t(0))
        .bind(t(1))
        .bind(t(2))
        .bind(if i % 2 == 0 { Some(t(4)) } else { None })
        .bind(t(3))
        .bind(t(5))
        .execute(&old)
        .await
        .unwrap();
        updates.push((
            id,
            *device,
            [t(0), t(1), t(2), t(3), t(4), t(5)],
            i % 2 == 0,
        ));
    }
    let key_id = ApiKeyId::new();
    sqlx::query(
        "INSERT INTO ota_api_keys (id, tenant_id, name, role, digest, created_at, revoked_at)
         VALUES ($1, $2, 'k', 'operator', $3, $4, $5)",
    )
    .bind(key_id.0)
    .bind(tenant.0)
    .bind(&[7u8; 32][..])
    .bind(OLD_TIMES[3])
    .bind(OLD_TIMES[0])
    .execute(&old)
    .await
    .unwrap();
    let notice = Notice::Withdrawal {
        tenant_id: tenant,
        device_id: devices[0].0,
        kind: PackageKind::Firmware,
        keys: vec!["fw_title".into()],
    };
    let notice_id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO ota_outbox (id, tenant_id, device_id, kind, doc, created_at)
         VALUES ($1, $2, $3, 'FIRMWARE', $4, $5)",
    )
    .bind(notice_id)
    .bind(tenant.0)
    .bind(devices[0].0 .0)
    .bind(serde_json::to_value(&notice).unwrap())
    .bind(OLD_TIMES[4])
    .execute(&old)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO ota_schedules (id, tenant_id, next_run, revision, doc)
         VALUES ($1, $2, $3, 0, '{}'), ($4, $2, NULL, 0, '{}')",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(tenant.0)
    .bind(OLD_TIMES[0])
    .bind(uuid::Uuid::now_v7())
    .execute(&old)
    .await
    .unwrap();
    old.close().await;

    // The store migrates (0050) and reads the rows back.
    let store = PgStore::connect(db.options()).await.unwrap();
    assert_eq!(recorded(&store).await, embedded());
    let p = store.get_profile(tenant, profile).await.unwrap();
    assert_eq!(p.created_at, from_nanos(OLD_TIMES[0]));
    let g = store.get_group(tenant, group).await.unwrap();
    assert_eq!(g.created_at, from_nanos(OLD_TIMES[0]));
    for (device, ns) in &devices {
        let d = store.get_device(tenant, *device).await.unwrap();
        assert_eq!(d.created_at, from_nanos(*ns), "device created_at {ns}");
    }
    for (id, device, times, retry) in &updates {
        let u = store.get_update(tenant, *id).await.unwrap();
        assert_eq!(u.device_id, *device);
        assert_eq!(u.state, UpdateState::Downloading);
        assert_eq!(u.created_at, from_nanos(times[0]));
        assert_eq!(u.state_changed_at, from_nanos(times[1]));
        assert_eq!(u.updated_at, from_nanos(times[2]));
        assert_eq!(u.wake_at, Some(from_nanos(times[3])));
        assert_eq!(u.retry_at, retry.then(|| from_nanos(times[4])));
        let lease: DateTime<Utc> =
            sqlx::query_scalar("SELECT lease_until FROM ota_updates WHERE id = $1")
                .bind(id.0)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(lease, from_nanos(times[5]));
    }
    let key = store.get_api_key(tenant, key_id).await.unwrap();
    assert_eq!(key.created_at, from_nanos(OLD_TIMES[3]));
    assert_eq!(key.revoked_at, Some(from_nanos(OLD_TIMES[0])));
    let claimed = store
        .claim_notices(&NoticeClaim {
            now: from_nanos(OLD_TIMES[0]),
            limit: 10,
            owner: "reader".into(),
            lease: chrono::Duration::seconds(30),
            devices: None,
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id.0, notice_id);
    assert_eq!(claimed[0].notice, notice);
    assert_eq!(claimed[0].created_at, from_nanos(OLD_TIMES[4]));
    let next_runs: Vec<Option<DateTime<Utc>>> =
        sqlx::query_scalar("SELECT next_run FROM ota_schedules ORDER BY next_run NULLS LAST")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(next_runs, vec![Some(from_nanos(OLD_TIMES[0])), None]);
    // Psql shows the times as times: the column type says so.
    let types: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, data_type::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND column_name IN ('created_at', 'lease_until')",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(!types.is_empty());
    for (table, ty) in types {
        assert_eq!(ty, "timestamp with time zone", "{table}");
    }
    store.close().await;
    db.drop_schema().await;
}
