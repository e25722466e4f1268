//! Streaming keeps memory flat: uploading and downloading 256 MiB grows the process's
//! resident memory by far less than the content (the 2 GiB figure is measured by
//! `cargo bench -p ota-store-postgres --bench content_memory`). Alone in its test binary so
//! that nothing else shares the process.

use ota_store_postgres::testing::{content_round_trip, fresh_database, ResidentMemory};

const MIB: u64 = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_256_mib_up_and_down_grows_memory_by_less_than_64_mib() {
    assert!(
        ResidentMemory::read().is_some() && ResidentMemory::reset_peak(),
        "this test needs /proc/self/status and /proc/self/clear_refs (Linux)"
    );
    let db = fresh_database().await;
    let store = ota_store_postgres::PgStore::connect(db.options())
        .await
        .expect("connect");
    let m = content_round_trip(&store, 256 * MIB).await;
    let up = m.upload_growth.unwrap();
    let down = m.download_growth.unwrap();
    eprintln!(
        "upload: {:.1} s, peak growth {:.1} MiB; download: {:.1} s, peak growth {:.1} MiB",
        m.upload_secs,
        up as f64 / MIB as f64,
        m.download_secs,
        down as f64 / MIB as f64
    );
    store.pool().close().await;
    db.drop_schema().await;
    assert!(up < 64 * MIB, "upload grew memory by {up} bytes");
    assert!(down < 64 * MIB, "download grew memory by {down} bytes");
}
