//! The schema reads well in psql: every table and column has a comment, times are
//! `timestamptz`, and state and kind columns accept exactly the names ota-core's enums
//! have.

use ota_core::campaign::CampaignState;
use ota_core::{PackageKind, UpdateState};
use ota_store_postgres::testing::fresh_store;
use ota_store_postgres::PgStore;
use std::collections::BTreeSet;

/// The names an enum's values are stored under.
fn names<T: serde::Serialize>(values: &[T]) -> BTreeSet<String> {
    values
        .iter()
        .map(|v| {
            serde_json::to_value(v)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// The quoted names a CHECK constraint lists.
async fn check_lists(store: &PgStore, constraint: &str) -> BTreeSet<String> {
    let def: String = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
         JOIN pg_namespace n ON n.oid = c.connamespace
         WHERE n.nspname = current_schema() AND c.conname = $1",
    )
    .bind(constraint)
    .fetch_one(store.pool())
    .await
    .unwrap_or_else(|e| panic!("constraint {constraint}: {e}"));
    def.split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_and_column_has_a_comment() {
    let store = fresh_store().await;
    let missing: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname || coalesce('.' || a.attname, '')
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
           AND (obj_description(c.oid, 'pg_class') IS NULL
                OR (a.attnum IS NOT NULL AND col_description(c.oid, a.attnum) IS NULL))
         ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(missing.is_empty(), "without a comment: {missing:?}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_are_timestamptz() {
    let store = fresh_store().await;
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text
         FROM information_schema.columns
         WHERE table_schema = current_schema()
           AND (column_name LIKE '%\\_at' OR column_name LIKE '%\\_until'
                OR column_name = 'next_run')",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(columns.len() >= 16, "{columns:?}");
    for (table, column, ty) in columns {
        assert_eq!(ty, "timestamp with time zone", "{table}.{column}");
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_and_kind_columns_accept_exactly_the_enum_names() {
    let store = fresh_store().await;
    let kinds = names(&PackageKind::ALL);
    let update_states = names(&UpdateState::ALL);
    let campaign_states = names(&CampaignState::ALL);
    for (constraint, expected) in [
        ("ota_packages_kind", &kinds),
        ("ota_assignments_kind", &kinds),
        ("ota_updates_kind", &kinds),
        ("ota_outbox_kind", &kinds),
        ("ota_updates_state", &update_states),
        ("ota_campaign_counts_state", &update_states),
        ("ota_campaigns_state", &campaign_states),
    ] {
        assert_eq!(
            &check_lists(&store, constraint).await,
            expected,
            "{constraint}"
        );
    }
    assert_eq!(
        check_lists(&store, "ota_assignments_target_type").await,
        ["device", "group", "profile"].map(String::from).into()
    );
    // A name outside the list is refused by the database.
    let refused = sqlx::query(
        "INSERT INTO ota_campaign_counts (campaign_id, wave, state, n)
         VALUES (gen_random_uuid(), 0, 'queued', 1)",
    )
    .execute(store.pool())
    .await
    .expect_err("a lowercase state");
    assert!(
        refused.to_string().contains("ota_campaign_counts_state"),
        "{refused}"
    );
    store.close().await;
}
