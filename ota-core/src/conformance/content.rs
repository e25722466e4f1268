//! Package content behaviours.

use super::fixtures::{bytes_of, collect, stream_of, Fixture};
use crate::checksum::{checksum_of, ChecksumAlgorithm};
use crate::package::{PackageKind, PackageSource};
use crate::store::{ByteRange, ByteStream, Store, StoreError};
use bytes::Bytes;
use std::sync::Arc;

/// Content streamed in is verified, its size and checksums recorded, and read back whole or
/// by any byte range; ranges outside it are refused.
pub async fn content_round_trip_and_ranges(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let data = bytes_of(300_001, 7);
    let p = f.stored_package("fw", "1.0", &data).await;
    assert_eq!(p.size, Some(data.len() as u64));
    assert_eq!(
        p.checksum,
        Some(checksum_of(ChecksumAlgorithm::Sha256, &data))
    );
    assert_eq!(
        p.sha256.as_deref(),
        Some(checksum_of(ChecksumAlgorithm::Sha256, &data).value.as_str())
    );
    assert_eq!(store.get_package(f.tenant, p.id).await.expect("get"), p);

    let whole = collect(
        store
            .read_content(f.tenant, p.id, ByteRange::FULL)
            .await
            .expect("read"),
    )
    .await;
    assert_eq!(whole, data);
    let n = data.len() as u64;
    for (start, end) in [
        (0, 1),
        (1, 2),
        (999, 1001),
        (65_535, 200_000),
        (n - 1, n),
        (0, n),
    ] {
        let part = collect(
            store
                .read_content(f.tenant, p.id, ByteRange::new(start, end))
                .await
                .expect("range"),
        )
        .await;
        assert_eq!(
            part,
            &data[start as usize..end as usize],
            "range {start}..{end}"
        );
    }
    let tail = collect(
        store
            .read_content(f.tenant, p.id, ByteRange::from(n - 10))
            .await
            .expect("tail"),
    )
    .await;
    assert_eq!(tail, &data[data.len() - 10..]);
    let clamped = collect(
        store
            .read_content(f.tenant, p.id, ByteRange::new(n - 3, n + 100))
            .await
            .expect("end past the content is clamped"),
    )
    .await;
    assert_eq!(clamped, &data[data.len() - 3..]);
    for bad in [
        ByteRange::from(n),
        ByteRange::new(n + 5, n + 10),
        ByteRange::new(10, 5),
    ] {
        match store.read_content(f.tenant, p.id, bad).await {
            Err(StoreError::RangeNotSatisfiable { size, .. }) => assert_eq!(size, n),
            Err(other) => panic!("{bad:?}: expected RangeNotSatisfiable, got {other:?}"),
            Ok(_) => panic!("{bad:?}: expected RangeNotSatisfiable"),
        }
    }

    // An upload without a checksum gets SHA256; empty content is fine.
    let mut empty = f.package(PackageKind::Firmware, "empty", "1.0");
    empty.source = PackageSource::Stored;
    let empty = store
        .create_package_with_content(empty, None, None, stream_of(&[], 10), None)
        .await
        .expect("empty content");
    assert_eq!(empty.size, Some(0));
    assert_eq!(
        empty.checksum,
        Some(checksum_of(ChecksumAlgorithm::Sha256, b""))
    );
    let read = collect(
        store
            .read_content(f.tenant, empty.id, ByteRange::FULL)
            .await
            .expect("read"),
    )
    .await;
    assert!(read.is_empty());

    // Other algorithms verify too (CRC32 here), and the SHA-256 is still recorded.
    let mut crc = f.package(PackageKind::Firmware, "crc", "1.0");
    crc.source = PackageSource::Stored;
    let crc = store
        .create_package_with_content(
            crc,
            Some(checksum_of(ChecksumAlgorithm::Crc32, &data[..1000])),
            None,
            stream_of(&data[..1000], 7),
            None,
        )
        .await
        .expect("crc32 content");
    assert_eq!(
        crc.checksum.map(|c| c.algorithm),
        Some(ChecksumAlgorithm::Crc32)
    );
    assert_eq!(
        crc.sha256,
        Some(checksum_of(ChecksumAlgorithm::Sha256, &data[..1000]).value)
    );

    // A package without stored content has nothing to read.
    let external = f.package(PackageKind::Firmware, "ext", "1.0");
    store
        .create_package(&external, None)
        .await
        .expect("external");
    let err = store
        .read_content(f.tenant, external.id, ByteRange::FULL)
        .await
        .err();
    assert!(err.is_some_and(|e| e.is_not_found()));
}

/// A checksum mismatch, a size over the limit or a failing stream stores nothing: neither the
/// package nor its content, and the title and version stay free.
pub async fn content_mismatch_keeps_nothing(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let data = bytes_of(50_000, 3);
    let mut p = f.package(PackageKind::Firmware, "fw", "1.0");
    p.source = PackageSource::Stored;

    let wrong = checksum_of(ChecksumAlgorithm::Md5, b"something else");
    match store
        .create_package_with_content(
            p.clone(),
            Some(wrong.clone()),
            None,
            stream_of(&data, 4096),
            None,
        )
        .await
    {
        Err(StoreError::ChecksumMismatch(m)) => {
            assert_eq!(m.expected, wrong.value);
            assert_eq!(m.actual, checksum_of(ChecksumAlgorithm::Md5, &data).value);
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
    assert_nothing_kept(&f, &p).await;

    match store
        .create_package_with_content(p.clone(), None, Some(10_000), stream_of(&data, 4096), None)
        .await
    {
        Err(StoreError::TooLarge { limit }) => assert_eq!(limit, 10_000),
        other => panic!("expected too large, got {other:?}"),
    }
    assert_nothing_kept(&f, &p).await;

    let failing: ByteStream = Box::pin(futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"first chunk")),
        Err(StoreError::SourceFailed {
            message: "client went away".to_string(),
        }),
    ]));
    let err = store
        .create_package_with_content(p.clone(), None, None, failing, None)
        .await
        .expect_err("failing stream");
    assert!(matches!(err, StoreError::SourceFailed { .. }), "{err:?}");
    assert_nothing_kept(&f, &p).await;

    // And the same package then uploads fine.
    let ok = store
        .create_package_with_content(
            p.clone(),
            None,
            Some(data.len() as u64),
            stream_of(&data, 4096),
            None,
        )
        .await
        .expect("upload at exactly the limit");
    assert_eq!(ok.size, Some(data.len() as u64));
}

async fn assert_nothing_kept(f: &Fixture, p: &crate::package::Package) {
    let got = f.store.get_package(f.tenant, p.id).await.err();
    assert!(got.is_some_and(|e| e.is_not_found()), "metadata was kept");
    let found = f
        .store
        .find_package(f.tenant, p.kind, &p.title, &p.version)
        .await
        .expect("find");
    assert!(found.is_none(), "title and version were kept");
    let content = f
        .store
        .read_content(f.tenant, p.id, ByteRange::FULL)
        .await
        .err();
    assert!(
        content.is_some_and(|e| e.is_not_found()),
        "content was kept"
    );
}
