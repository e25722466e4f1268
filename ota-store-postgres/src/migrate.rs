//! Embedded, versioned migrations, applied under an advisory lock.

use crate::error::map;
use ota_core::store::StoreError;
use sqlx::PgPool;

/// The migrations, in order: (version, name, SQL).
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (10, "outbox", include_str!("../migrations/0010_outbox.sql")),
    (
        20,
        "package_references",
        include_str!("../migrations/0020_package_references.sql"),
    ),
    (
        21,
        "token_digests",
        include_str!("../migrations/0021_token_digests.sql"),
    ),
    (
        30,
        "api_keys",
        include_str!("../migrations/0030_api_keys.sql"),
    ),
    (
        40,
        "retention",
        include_str!("../migrations/0040_retention.sql"),
    ),
    (
        50,
        "readable_schema",
        include_str!("../migrations/0050_readable_schema.sql"),
    ),
];

/// A key for `pg_advisory_xact_lock`, so that instances starting together apply each
/// migration once.
const LOCK_KEY: i64 = 0x6f74_615f_6d69_6772; // "ota_migr"

/// `name` quoted as an SQL identifier (`"name"`, inner quotes doubled), so that a keyword
/// (`user`) or a name with capitals means exactly that schema.
pub(crate) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates `schema` when it is missing. Under the migrations' lock: `CREATE SCHEMA IF NOT
/// EXISTS` run by two instances at once can fail on the catalog's unique index.
pub(crate) async fn create_schema(pool: &PgPool, schema: &str) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(map)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    sqlx::query(&format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        quote_identifier(schema)
    ))
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    tx.commit().await.map_err(map)
}

/// Applies the migrations that are not recorded in `ota_schema_migrations` yet, all in one
/// transaction (all or none). Refuses a database migrated by a newer build.
pub(crate) async fn run(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(map)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS ota_schema_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    let applied: Vec<i32> = sqlx::query_scalar("SELECT version FROM ota_schema_migrations")
        .fetch_all(&mut *tx)
        .await
        .map_err(map)?;
    if let Some(newest) = applied.iter().max() {
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if *newest > known {
            return Err(StoreError::Backend {
                message: format!(
                    "the database schema is at version {newest}, newer than this build knows ({known}); upgrade the library"
                ),
            });
        }
    }
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(map)?;
        sqlx::query("INSERT INTO ota_schema_migrations (version, name) VALUES ($1, $2)")
            .bind(version)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
    }
    tx.commit().await.map_err(map)?;
    Ok(())
}
