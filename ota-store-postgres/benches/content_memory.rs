//! Uploads and downloads a 2 GiB package through the PostgreSQL store and reports time and
//! the process's peak resident memory growth in each direction. Reference, same run:
//! producing and hashing the same bytes with no store.
//!
//! `cargo bench -p ota-store-postgres --bench content_memory`
//! (`OTA_BENCH_CONTENT_MIB` changes the size; `DATABASE_URL` the database).

use ota_store_postgres::testing::{content_round_trip, fresh_database};

const MIB: f64 = 1024.0 * 1024.0;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --benches` and test listers: nothing to do here.
        return;
    }
    let mib: u64 = std::env::var("OTA_BENCH_CONTENT_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let db = fresh_database().await;
        let store = ota_store_postgres::PgStore::connect(db.options())
            .await
            .expect("connect");
        let m = content_round_trip(&store, mib * 1024 * 1024).await;
        store.pool().close().await;
        db.drop_schema().await;
        let size = m.bytes as f64 / MIB;
        let growth = |g: Option<u64>| {
            g.map_or("unknown (no /proc)".to_string(), |g| {
                format!("{:.1} MiB", g as f64 / MIB)
            })
        };
        println!("content round trip of {size:.0} MiB through PostgreSQL");
        println!(
            "  reference (generate + hash, no store): {:.1} s, {:.0} MiB/s",
            m.reference_secs,
            size / m.reference_secs
        );
        println!(
            "  upload:   {:.1} s, {:.0} MiB/s, peak memory growth {}",
            m.upload_secs,
            size / m.upload_secs,
            growth(m.upload_growth)
        );
        println!(
            "  download: {:.1} s, {:.0} MiB/s, peak memory growth {}",
            m.download_secs,
            size / m.download_secs,
            growth(m.download_growth)
        );
    });
}
