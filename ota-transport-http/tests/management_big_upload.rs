//! A 1 GiB package uploads and downloads through the management API on PostgreSQL with
//! bounded memory: the process's resident memory grows by far less than the content. Alone in
//! its test binary so that nothing else shares the process. `OTA_BIG_UPLOAD_MIB` changes the
//! size (default 1024).

mod management_support;

use futures_util::{StreamExt, TryStreamExt};
use management_support::Server;
use ota_core::checksum::ContentHasher;
use ota_store_postgres::testing::{fresh_store, generated_content, ResidentMemory};
use ota_transport_http::ManagementOptions;
use std::sync::Arc;

const MIB: u64 = 1024 * 1024;
const PIECE: usize = 256 * 1024;
const SEED: u64 = 0x00b1_9b16_0000_0001;

fn size() -> u64 {
    std::env::var("OTA_BIG_UPLOAD_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
        * MIB
}

fn peak_since(before: ResidentMemory) -> u64 {
    ResidentMemory::read()
        .map(|after| after.peak.saturating_sub(before.current))
        .unwrap_or(u64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_gib_package_streams_up_and_down_with_bounded_memory() {
    assert!(
        ResidentMemory::read().is_some() && ResidentMemory::reset_peak(),
        "this test needs /proc/self/status and /proc/self/clear_refs (Linux)"
    );
    let bytes = size();
    let store = Arc::new(fresh_store().await);
    let s = Server::start(store.clone(), ManagementOptions::default()).await;
    let admin = s.a.admin.clone();

    let mut reference = ContentHasher::new(None);
    let mut content = generated_content(bytes, PIECE, SEED);
    while let Some(piece) = content.next().await {
        reference.update(&piece.unwrap());
    }
    let reference = reference.finish().unwrap();

    ResidentMemory::reset_peak();
    let before = ResidentMemory::read().unwrap();
    let body = generated_content(bytes, PIECE, SEED).map_err(std::io::Error::other);
    let up = s
        .send(
            s.req(
                reqwest::Method::POST,
                &admin,
                "/packages?kind=fw&title=big&version=1",
            )
            .header("content-length", bytes)
            .body(reqwest::Body::wrap_stream(body)),
        )
        .await;
    let up_growth = peak_since(before);
    let pkg = up.expect(201).clone();
    assert_eq!(pkg["size"], bytes);
    assert_eq!(pkg["sha256"], reference.sha256.as_str());

    ResidentMemory::reset_peak();
    let before = ResidentMemory::read().unwrap();
    let response = s
        .req(
            reqwest::Method::GET,
            &admin,
            &format!("/packages/{}/content", pkg["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut hasher = ContentHasher::new(None);
    let mut stream = response.bytes_stream();
    while let Some(piece) = stream.next().await {
        hasher.update(&piece.unwrap());
    }
    let down_growth = peak_since(before);
    let down = hasher.finish().unwrap();
    assert_eq!(
        (down.size, down.sha256.as_str()),
        (bytes, reference.sha256.as_str())
    );
    eprintln!(
        "{} MiB: upload peak growth {:.1} MiB, download peak growth {:.1} MiB",
        bytes / MIB,
        up_growth as f64 / MIB as f64,
        down_growth as f64 / MIB as f64
    );
    s.stop().await;
    store.close().await;
    assert!(
        up_growth < 64 * MIB,
        "upload grew memory by {up_growth} bytes"
    );
    assert!(
        down_growth < 64 * MIB,
        "download grew memory by {down_growth} bytes"
    );
}
