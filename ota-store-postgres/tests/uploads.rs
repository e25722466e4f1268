//! Uploads hold no connection between chunks and no long transaction: slow uploads do not
//! starve other calls, a second upload of the same title and version is refused at once,
//! and what abandoned or dropped uploads wrote is removed.

use bytes::Bytes;
use futures::future::join_all;
use futures::StreamExt;
use ota_core::conformance::Fixture;
use ota_core::store::{ByteRange, ByteStream, PageRequest, Store, StoreError};
use ota_core::{Package, PackageKind};
use ota_store_postgres::testing::{fresh_database, TestDatabase};
use ota_store_postgres::{PgStore, CHUNK_SIZE};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

async fn collect(mut stream: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(piece) = stream.next().await {
        out.extend_from_slice(&piece.unwrap());
    }
    out
}

/// Content sent in two pieces: `first` at once (more than a chunk, so one chunk is written),
/// the rest when the gate opens.
fn gated(first: Bytes, rest: Bytes, gate: oneshot::Receiver<()>) -> ByteStream {
    let head = futures::stream::once(async move { Ok(first) });
    let tail = futures::stream::once(async move {
        gate.await.map_err(|_| StoreError::SourceFailed {
            message: "gate dropped".into(),
        })?;
        Ok(rest)
    });
    Box::pin(head.chain(tail))
}

fn content(seed: u8) -> (Bytes, Bytes) {
    let all: Vec<u8> = (0..CHUNK_SIZE * 3 / 2 + 1000)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let all = Bytes::from(all);
    (all.slice(..CHUNK_SIZE + 100), all.slice(CHUNK_SIZE + 100..))
}

async fn chunks_of(store: &PgStore, package: &Package) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM ota_package_chunks WHERE package_id = $1")
        .bind(package.id.0)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

async fn rows_of(store: &PgStore, package: &Package) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM ota_packages WHERE id = $1")
        .bind(package.id.0)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// Waits until `package` has its first chunk written (the upload is under way).
async fn first_chunk_written(store: &PgStore, package: &Package) {
    while chunks_of(store, package).await == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn store_with_pool(db: &TestDatabase, connections: u32) -> PgStore {
    let mut options = db.options().max_connections(connections);
    // A starved pool shows as an error after this, not as a hang.
    options.acquire_timeout = Duration::from_secs(5);
    PgStore::connect(options).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_slow_uploads_on_a_pool_of_four_do_not_starve_other_calls() {
    let db = fresh_database().await;
    let pg = store_with_pool(&db, 4).await;
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let f = Fixture::new(store.clone());
    let mut gates = Vec::new();
    let mut uploads = Vec::new();
    let mut packages = Vec::new();
    let mut expected = Vec::new();
    for i in 0..4u8 {
        let p = f.package(PackageKind::Firmware, "fw", &format!("1.{i}"));
        let (first, rest) = content(i);
        expected.push([first.clone(), rest.clone()].concat());
        let (open, gate) = oneshot::channel();
        gates.push(open);
        let store = store.clone();
        let package = p.clone();
        uploads.push(tokio::spawn(async move {
            store
                .create_package_with_content(package, None, None, gated(first, rest, gate), None)
                .await
        }));
        packages.push(p);
    }
    for p in &packages {
        first_chunk_written(&pg, p).await;
    }
    // Every upload is half-way. Other calls go through, many at once.
    let profile = f.profile("p").await;
    let calls = join_all((0..24).map(|i| {
        let store = store.clone();
        let tenant = f.tenant;
        async move {
            match i % 3 {
                0 => store.get_profile(tenant, profile.id).await.map(|_| ()),
                1 => store
                    .list_packages(tenant, None, PageRequest::first(10))
                    .await
                    .map(|page| assert!(page.items.is_empty(), "pending uploads are invisible")),
                _ => store
                    .find_package(tenant, PackageKind::Firmware, "fw", "1.0")
                    .await
                    .map(|found| assert!(found.is_none(), "a pending upload is invisible")),
            }
        }
    }))
    .await;
    for (i, call) in calls.into_iter().enumerate() {
        call.unwrap_or_else(|e| panic!("call {i} during the uploads: {e:?}"));
    }
    for gate in gates {
        gate.send(()).unwrap();
    }
    for ((upload, p), data) in uploads.into_iter().zip(&packages).zip(&expected) {
        let stored = upload.await.unwrap().expect("the upload completes");
        assert_eq!(stored.size, Some(data.len() as u64));
        let read = collect(
            store
                .read_content(f.tenant, p.id, ByteRange::FULL)
                .await
                .unwrap(),
        )
        .await;
        assert!(read == *data, "content of {} round-trips", p.version);
    }
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_upload_of_the_same_version_is_refused_without_waiting() {
    let db = fresh_database().await;
    let pg = store_with_pool(&db, 4).await;
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let f = Fixture::new(store.clone());
    let p = f.package(PackageKind::Firmware, "fw", "1.0");
    let (first, rest) = content(1);
    let (open, gate) = oneshot::channel();
    let upload = {
        let (store, p) = (store.clone(), p.clone());
        tokio::spawn(async move {
            store
                .create_package_with_content(p, None, None, gated(first, rest, gate), None)
                .await
        })
    };
    first_chunk_written(&pg, &p).await;
    let again = f.package(PackageKind::Firmware, "fw", "1.0");
    let (first2, rest2) = content(2);
    let second = tokio::time::timeout(
        Duration::from_secs(30),
        store.create_package_with_content(
            again.clone(),
            None,
            None,
            Box::pin(futures::stream::iter([Ok(first2), Ok(rest2)])),
            None,
        ),
    )
    .await
    .expect("the second upload must not wait for the first");
    assert!(
        matches!(&second, Err(StoreError::Conflict { .. })),
        "{second:?}"
    );
    assert_eq!(
        chunks_of(&pg, &again).await,
        0,
        "the refused upload kept nothing"
    );
    open.send(()).unwrap();
    upload.await.unwrap().expect("the first upload completes");
    db.drop_schema().await;
}

/// Makes every pending upload's lease lapse (as if its process died long ago).
async fn lapse_leases(store: &PgStore) {
    sqlx::query(
        "UPDATE ota_packages SET upload_until = clock_timestamp() - interval '1 second'
         WHERE upload_until IS NOT NULL",
    )
    .execute(store.pool())
    .await
    .unwrap();
}

/// Starts an upload, lets it write its first chunk, and forgets it without dropping it: its
/// process died mid-upload.
async fn abandon_upload(pg: &PgStore, store: &Arc<dyn Store>, p: &Package) {
    let (first, rest) = content(3);
    let (_open, gate) = oneshot::channel::<()>();
    let mut upload = Box::pin(store.create_package_with_content(
        p.clone(),
        None,
        None,
        gated(first, rest, gate),
        None,
    ));
    tokio::select! {
        done = &mut upload => panic!("the upload cannot finish: {done:?}"),
        () = first_chunk_written(pg, p) => {}
    }
    std::mem::forget(upload);
    std::mem::forget(_open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_uploads_are_cleaned_up() {
    let db = fresh_database().await;
    let pg = store_with_pool(&db, 4).await;
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let f = Fixture::new(store.clone());

    // Abandoned, then the same title and version uploaded again once its lease lapsed.
    let p = f.package(PackageKind::Firmware, "fw", "1.0");
    abandon_upload(&pg, &store, &p).await;
    assert!(store
        .get_package(f.tenant, p.id)
        .await
        .unwrap_err()
        .is_not_found());
    assert_eq!(
        pg.purge_abandoned_uploads().await.unwrap(),
        0,
        "still leased"
    );
    lapse_leases(&pg).await;
    let again = f.package(PackageKind::Firmware, "fw", "1.0");
    let (first, rest) = content(4);
    store
        .create_package_with_content(
            again.clone(),
            None,
            None,
            Box::pin(futures::stream::iter([Ok(first), Ok(rest)])),
            None,
        )
        .await
        .expect("the abandoned upload no longer holds the version");
    assert_eq!(rows_of(&pg, &p).await, 0);
    assert_eq!(chunks_of(&pg, &p).await, 0, "the abandoned chunks are gone");

    // Abandoned, and purged explicitly.
    let q = f.package(PackageKind::Firmware, "fw", "2.0");
    abandon_upload(&pg, &store, &q).await;
    lapse_leases(&pg).await;
    assert_eq!(pg.purge_abandoned_uploads().await.unwrap(), 1);
    assert_eq!(rows_of(&pg, &q).await, 0);
    assert_eq!(chunks_of(&pg, &q).await, 0);
    assert_eq!(
        chunks_of(&pg, &again).await,
        2,
        "the completed upload is kept"
    );
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_upload_leaves_no_package_and_no_chunk() {
    let db = fresh_database().await;
    let pg = store_with_pool(&db, 4).await;
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let f = Fixture::new(store.clone());
    let p = f.package(PackageKind::Firmware, "fw", "1.0");
    let (first, rest) = content(5);
    let (_open, gate) = oneshot::channel::<()>();
    let mut upload = Box::pin(store.create_package_with_content(
        p.clone(),
        None,
        None,
        gated(first, rest, gate),
        None,
    ));
    tokio::select! {
        done = &mut upload => panic!("the upload cannot finish: {done:?}"),
        () = first_chunk_written(&pg, &p) => {}
    }
    drop(upload);
    // Removed in the background; wait for it (bounded).
    for _ in 0..500 {
        if rows_of(&pg, &p).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rows_of(&pg, &p).await, 0, "the pending row is gone");
    assert_eq!(chunks_of(&pg, &p).await, 0, "its chunks are gone");
    db.drop_schema().await;
}
