//! Retention on PostgreSQL: history rows deleted per second by [`Ota::apply_retention`]
//! (batches of 1,000 rows, one statement each), beside one plain
//! `DELETE ... WHERE tenant_id = $1 AND at < $2` of as many rows of the same table, in the same
//! run. Each round fills the table with `OTA_BENCH_RETENTION_ROWS` old rows (default 200,000)
//! of one tenant, next to as many young rows of another tenant that stay, then deletes them
//! one way; the two ways alternate, 5 rounds each (`OTA_BENCH_RETENTION_ROUNDS`). Also shown:
//! the longest single transaction of each way (what a concurrent `VACUUM`, replica or lock
//! waiter sees).
//!
//! `cargo bench -p ota-store-postgres --bench retention` (`DATABASE_URL` names the database).

use ota_core::engine::{Ota, OtaConfig, RetentionPolicy, RetentionRule};
use ota_core::notifier::RecordingNotifier;
use ota_core::store::{RetainedLog, RetentionStore};
use ota_core::update::{EventSource, HistoryEntry, HistoryOutcome};
use ota_core::{
    chrono, Clock, DeviceId, PackageKind, SystemClock, TenantId, UpdateId, UpdateState,
};
use ota_store_postgres::testing::fresh_database;
use ota_store_postgres::PgStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A history entry as the engine writes it, as the template of the generated rows.
fn template() -> serde_json::Value {
    serde_json::to_value(HistoryEntry {
        update_id: UpdateId::new(),
        tenant_id: TenantId::new(),
        device_id: DeviceId::new(),
        kind: PackageKind::Firmware,
        attempt: 1,
        at: SystemClock.now(),
        from: UpdateState::Downloading,
        to: UpdateState::Downloaded,
        source: EventSource::Device,
        event: "report".into(),
        message: Some("fw_state DOWNLOADED".into()),
        outcome: HistoryOutcome::Applied,
    })
    .expect("json")
}

/// Appends `n` history rows of `tenant`, one millisecond apart from `start`.
async fn fill(store: &PgStore, tenant: TenantId, start: chrono::DateTime<chrono::Utc>, n: usize) {
    sqlx::query(
        "INSERT INTO ota_history (update_id, tenant_id, device_id, doc)
         SELECT gen_random_uuid(), $1, gen_random_uuid(),
                jsonb_set($2, '{at}', to_jsonb(to_char(($3::timestamptz + i * interval '1 millisecond')
                    AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')))
         FROM generate_series(1, $4) i",
    )
    .bind(tenant.0)
    .bind(template())
    .bind(start)
    .bind(n as i64)
    .execute(store.pool())
    .await
    .expect("fill");
    sqlx::query("VACUUM ANALYZE ota_history")
        .execute(store.pool())
        .await
        .expect("vacuum");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rows = size("OTA_BENCH_RETENTION_ROWS", 200_000);
    let rounds = size("OTA_BENCH_RETENTION_ROUNDS", 5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let db = fresh_database().await;
        let store = PgStore::connect(db.options()).await.expect("store");
        let ota = Ota::new(
            Arc::new(store.clone()),
            Arc::new(RecordingNotifier::new()),
            Arc::new(SystemClock),
            OtaConfig::default(),
        );
        let now = SystemClock.now();
        let old = now - chrono::Duration::days(400);
        let cutoff = now - chrono::Duration::days(90);
        let keeper = TenantId::new();
        fill(&store, keeper, old, rows).await;
        println!("retention of {rows} history rows (another tenant's {rows} rows stay), {rounds} rounds");
        let (mut batched, mut plain) = (Vec::new(), Vec::new());
        let (mut batched_longest, mut plain_longest) = (Duration::ZERO, Duration::ZERO);
        for round in 0..rounds * 2 {
            let tenant = TenantId::new();
            fill(&store, tenant, old, rows).await;
            let start = Instant::now();
            let deleted = if round % 2 == 0 {
                let policy = RetentionPolicy::new(RetentionRule::forever())
                    .tenant(tenant, RetentionRule::keep_for(now - cutoff))
                    .batch_size(1000)
                    .max_batches(u32::MAX);
                // Timed batch by batch as the engine makes them, for the longest one.
                let mut total = 0;
                loop {
                    let t = Instant::now();
                    let n = store
                        .purge_log(RetainedLog::History, tenant, cutoff, 1000)
                        .await
                        .expect("purge");
                    batched_longest = batched_longest.max(t.elapsed());
                    total += n;
                    if n < 1000 {
                        break;
                    }
                }
                // The engine's entry point over the same rows finds nothing left.
                let report = ota.apply_retention(&policy).await.expect("retention");
                assert!(report.complete && report.history_deleted == 0);
                total
            } else {
                let done = sqlx::query(
                    "DELETE FROM ota_history WHERE tenant_id = $1
                     AND (doc->>'at')::timestamptz < $2",
                )
                .bind(tenant.0)
                .bind(cutoff)
                .execute(store.pool())
                .await
                .expect("delete");
                plain_longest = plain_longest.max(start.elapsed());
                done.rows_affected()
            };
            let secs = start.elapsed().as_secs_f64();
            assert_eq!(deleted, rows as u64);
            let rate = rows as f64 / secs;
            let way = if round % 2 == 0 { "retention" } else { "plain DELETE" };
            println!("  round {}: {way:>12}: {secs:.2} s, {rate:.0} rows/s", round / 2 + 1);
            if round % 2 == 0 {
                batched.push(rate);
            } else {
                plain.push(rate);
            }
        }
        let (b, p) = (median(batched), median(plain));
        println!(
            "median: retention {b:.0} rows/s (longest transaction {} ms), plain DELETE {p:.0} rows/s (one transaction of {} ms): {:.2}x",
            batched_longest.as_millis(),
            plain_longest.as_millis(),
            b / p
        );
        store.close().await;
        db.drop_schema().await;
    });
}
