//! Downloads through a real socket, on the memory store and on PostgreSQL: ThingsBoard's
//! chunked firmware download end to end, whole-file and resumable downloads, every checksum
//! algorithm, ranges and conditions, and what a device may not download.

mod support;

use ota_core::checksum::checksum_of;
use ota_core::{Checksum, ChecksumAlgorithm, Device, PackageKind, UpdateState};
use serde_json::Value;
use sha2::Digest;
use support::{content, json_error, Backend, Server};

/// What a ThingsBoard device reads before downloading.
struct Attributes {
    title: String,
    version: String,
    size: u64,
    checksum: String,
    algorithm: String,
}

async fn attributes(server: &Server, device: &Device, p: &str) -> Attributes {
    let keys = format!(
        "attributes?sharedKeys={p}_title,{p}_version,{p}_size,{p}_checksum,{p}_checksum_algorithm"
    );
    let r = server
        .client
        .get(server.url(&device.access_token, &keys))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let s = &body["shared"];
    Attributes {
        title: s[format!("{p}_title")].as_str().unwrap().to_string(),
        version: s[format!("{p}_version")].as_str().unwrap().to_string(),
        size: s[format!("{p}_size")].as_u64().unwrap(),
        checksum: s[format!("{p}_checksum")].as_str().unwrap().to_string(),
        algorithm: s[format!("{p}_checksum_algorithm")]
            .as_str()
            .unwrap()
            .to_string(),
    }
}

/// Verifies `bytes` as a device does; MD5, SHA256 and CRC32 with independent crates.
fn verify(algorithm: &str, expected: &str, bytes: &[u8]) {
    let algorithm: ChecksumAlgorithm = algorithm.parse().unwrap();
    let independent = match algorithm {
        ChecksumAlgorithm::Md5 => Some(hex(&md5::Md5::digest(bytes))),
        ChecksumAlgorithm::Sha256 => Some(hex(&sha2::Sha256::digest(bytes))),
        ChecksumAlgorithm::Sha512 => Some(hex(&sha2::Sha512::digest(bytes))),
        ChecksumAlgorithm::Crc32 => Some(hex(&crc32fast::hash(bytes).to_le_bytes())),
        _ => None,
    };
    if let Some(value) = independent {
        assert_eq!(value, expected, "{algorithm:?}");
    }
    assert_eq!(
        checksum_of(algorithm, bytes).value,
        expected,
        "{algorithm:?}"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn post(server: &Server, device: &Device, body: String) {
    let r = server
        .client
        .post(server.url(&device.access_token, "telemetry"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A ThingsBoard device's update: attributes, DOWNLOADING, chunks (or the whole file when
/// `chunk_size` is 0), checksum, DOWNLOADED/VERIFIED/UPDATING, then the new version.
async fn device_update(server: &Server, device: &Device, kind: PackageKind, chunk_size: u64) {
    let p = kind.prefix();
    let route = match kind {
        PackageKind::Firmware => "firmware",
        PackageKind::Software => "software",
    };
    let a = attributes(server, device, p).await;
    post(server, device, format!(r#"{{"{p}_state":"DOWNLOADING"}}"#)).await;
    let mut bytes = Vec::new();
    let mut chunk = 0;
    loop {
        let url = server.url(
            &device.access_token,
            &format!(
                "{route}?title={}&version={}&size={chunk_size}&chunk={chunk}",
                a.title, a.version
            ),
        );
        let r = server.client.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let piece = r.bytes().await.unwrap();
        bytes.extend_from_slice(&piece);
        if chunk_size == 0 || (piece.len() as u64) < chunk_size {
            break;
        }
        chunk += 1;
    }
    assert_eq!(bytes.len() as u64, a.size);
    verify(&a.algorithm, &a.checksum, &bytes);
    for state in ["DOWNLOADED", "VERIFIED", "UPDATING"] {
        post(server, device, format!(r#"{{"{p}_state":"{state}"}}"#)).await;
    }
    post(
        server,
        device,
        format!(
            r#"{{"current_{p}_title":"{}","current_{p}_version":"{}","{p}_state":"UPDATED"}}"#,
            a.title, a.version
        ),
    )
    .await;
    assert_eq!(server.state(device, kind).await, Some(UpdateState::Updated));
}

async fn devices_update_with_chunks_and_whole_files(backend: Backend) {
    let server = Server::start(backend).await;
    let bytes = content(100_000, 1);
    let fw = server
        .upload(PackageKind::Firmware, "fw", "1.0", bytes.clone(), None)
        .await;
    let sw = server
        .upload(
            PackageKind::Software,
            "app",
            "3.1",
            bytes[..777].to_vec(),
            None,
        )
        .await;
    // Chunks of 16 KiB (the last one short), chunks that divide the size evenly (the device
    // reads one empty chunk), and the whole file.
    for chunk_size in [16_384, 20_000, 0] {
        let device = server.device().await;
        server.assign(&device, &fw).await;
        server.assign(&device, &sw).await;
        device_update(&server, &device, PackageKind::Firmware, chunk_size).await;
        device_update(&server, &device, PackageKind::Software, chunk_size).await;
    }
    server.stop().await;
}

async fn every_checksum_algorithm_verifies(backend: Backend) {
    let server = Server::start(backend).await;
    let bytes = content(50_001, 2);
    for (i, algorithm) in ChecksumAlgorithm::ALL.into_iter().enumerate() {
        let value = checksum_of(algorithm, &bytes).value;
        let checksum = Checksum::new(algorithm, &value).unwrap();
        let package = server
            .upload(
                PackageKind::Firmware,
                "fw",
                &format!("1.{i}"),
                bytes.clone(),
                Some(checksum),
            )
            .await;
        let device = server.device().await;
        server.assign(&device, &package).await;
        let a = attributes(&server, &device, "fw").await;
        assert_eq!(a.algorithm, algorithm.name());
        device_update(&server, &device, PackageKind::Firmware, 8192).await;
    }
    server.stop().await;
}

async fn a_download_resumes_with_range_after_a_dropped_connection(backend: Backend) {
    let server = Server::start_with(backend, |o| o.content_cache_bytes(0)).await;
    let bytes = content(3 << 20, 3);
    let package = server
        .upload(PackageKind::Firmware, "big", "1", bytes.clone(), None)
        .await;
    let device = server.device().await;
    server.assign(&device, &package).await;
    let url = server.url(&device.access_token, "firmware/content");
    let mut first = server.client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", package.sha256.clone().unwrap()));
    let mut received = Vec::new();
    while received.len() < 100_000 {
        received.extend_from_slice(&first.chunk().await.unwrap().unwrap());
    }
    drop(first); // the connection drops mid-body
    let r = server
        .client
        .get(&url)
        .header("range", format!("bytes={}-", received.len()))
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!(
            "bytes {}-{}/{}",
            received.len(),
            bytes.len() - 1,
            bytes.len()
        )
        .as_str()
    );
    received.extend_from_slice(&r.bytes().await.unwrap());
    assert_eq!(received, bytes);
    server.stop().await;
}

/// Splits a `multipart/byteranges` body into (Content-Range, bytes) parts.
fn parts(body: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
    let delimiter = format!("\r\n--{boundary}");
    let text = body;
    let mut out = Vec::new();
    let mut at;
    let find = |from: usize, needle: &[u8]| {
        text[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let mut next = find(0, delimiter.as_bytes()).expect("first delimiter");
    assert_eq!(next, 0, "the body starts with the delimiter");
    loop {
        at = next + delimiter.len();
        if text[at..].starts_with(b"--") {
            break;
        }
        let header_end = find(at, b"\r\n\r\n").unwrap();
        let headers = std::str::from_utf8(&text[at..header_end]).unwrap();
        let range = headers
            .lines()
            .find_map(|l| l.strip_prefix("Content-Range: "))
            .unwrap()
            .to_string();
        next = find(header_end + 4, delimiter.as_bytes()).unwrap();
        out.push((range, text[header_end + 4..next].to_vec()));
    }
    assert_eq!(&text[at..], b"--\r\n");
    out
}

async fn ranges_conditions_and_head(backend: Backend) {
    let server = Server::start(backend).await;
    let bytes = content(10_000, 4);
    let package = server
        .upload(PackageKind::Firmware, "fw", "2.0", bytes.clone(), None)
        .await;
    let device = server.device().await;
    server.assign(&device, &package).await;
    let etag = format!("\"{}\"", package.sha256.clone().unwrap());
    for route in [
        "firmware",
        "firmware/content",
        "firmware?title=fw&version=2.0",
    ] {
        let url = server.url(&device.access_token, route);
        let get = |headers: &[(&str, &str)]| {
            let mut request = server.client.get(&url);
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            request.send()
        };
        // The whole content with its headers.
        let r = get(&[]).await.unwrap();
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        assert_eq!(h["accept-ranges"], "bytes");
        assert_eq!(h["etag"], etag.as_str());
        assert_eq!(h["content-type"], "application/x-firmware");
        assert_eq!(h["content-length"], "10000");
        assert_eq!(
            h["content-disposition"],
            "attachment; filename=\"fw-2.0.bin\"; filename*=UTF-8''fw-2.0.bin"
        );
        assert!(h.contains_key("last-modified"));
        assert_eq!(r.bytes().await.unwrap(), bytes);

        // Several ranges: multipart/byteranges.
        let r = get(&[("range", "bytes=0-9, 5000-5099, -5")]).await.unwrap();
        assert_eq!(r.status(), 206);
        let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
        let boundary = content_type
            .strip_prefix("multipart/byteranges; boundary=")
            .expect("multipart/byteranges")
            .to_string();
        let length: usize = r.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body = r.bytes().await.unwrap();
        assert_eq!(body.len(), length);
        let got = parts(&body, &boundary);
        let want = [
            ("bytes 0-9/10000", &bytes[0..10]),
            ("bytes 5000-5099/10000", &bytes[5000..5100]),
            ("bytes 9995-9999/10000", &bytes[9995..]),
        ];
        assert_eq!(got.len(), 3);
        for ((range, data), (want_range, want_data)) in got.iter().zip(want) {
            assert_eq!(range, want_range);
            assert_eq!(data.as_slice(), want_data);
        }

        // If-Range with a stale ETag: the whole body. With the current one: the range.
        let r = get(&[("range", "bytes=100-199"), ("if-range", "\"stale\"")])
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap(), bytes);
        let r = get(&[("range", "bytes=100-199"), ("if-range", &etag)])
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(r.headers()["content-range"], "bytes 100-199/10000");
        assert_eq!(r.bytes().await.unwrap(), &bytes[100..200]);

        // If-None-Match: 304 with the validators and no body.
        let r = get(&[("if-none-match", &etag)]).await.unwrap();
        assert_eq!(r.status(), 304);
        assert_eq!(r.headers()["etag"], etag.as_str());
        assert!(r.bytes().await.unwrap().is_empty());

        // Unsatisfiable: 416 with the size; a malformed Range is ignored.
        let r = get(&[("range", "bytes=10000-")]).await.unwrap();
        assert_eq!(r.headers()["content-range"], "bytes */10000");
        let (status, code, _) = json_error(r).await;
        assert_eq!((status, code.as_str()), (416, "range_not_satisfiable"));
        let r = get(&[("range", "lines=1-2")]).await.unwrap();
        assert_eq!(r.status(), 200);

        // HEAD: the same headers, no body.
        let r = server.client.head(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-length"], "10000");
        assert_eq!(r.headers()["etag"], etag.as_str());
        assert!(r.bytes().await.unwrap().is_empty());
        let r = server
            .client
            .head(&url)
            .header("range", "bytes=0-99")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(r.headers()["content-length"], "100");
    }
    server.stop().await;
}

async fn reassignment_mid_download_refuses_the_old_version(backend: Backend) {
    let server = Server::start(backend).await;
    let v1 = server
        .upload(PackageKind::Firmware, "fw", "1", content(5000, 5), None)
        .await;
    let v2 = server
        .upload(PackageKind::Firmware, "fw", "2", content(6000, 6), None)
        .await;
    let device = server.device().await;
    server.assign(&device, &v1).await;
    let chunk = |version: &'static str, n: u32| {
        server
            .client
            .get(server.url(
                &device.access_token,
                &format!("firmware?title=fw&version={version}&size=1024&chunk={n}"),
            ))
            .send()
    };
    assert_eq!(chunk("1", 0).await.unwrap().status(), 200);
    server.assign(&device, &v2).await;
    let (status, code, message) = json_error(chunk("1", 1).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (400, "bad_request"));
    assert!(message.contains("shared attributes"), "{message}");
    let r = chunk("2", 5).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 6000 - 5 * 1024);
    server.stop().await;
}

async fn a_device_downloads_only_its_own_package(backend: Backend) {
    let server = Server::start(backend).await;
    let mine = server
        .upload(PackageKind::Firmware, "fw-a", "1", content(100, 7), None)
        .await;
    let theirs = server
        .upload(PackageKind::Firmware, "fw-b", "1", content(100, 8), None)
        .await;
    let a = server.device().await;
    let b = server.device().await;
    let nothing = server.device().await;
    server.assign(&a, &mine).await;
    server.assign(&b, &theirs).await;
    let get = |device: &Device, query: &str| {
        server
            .client
            .get(server.url(&device.access_token, &format!("firmware{query}")))
            .send()
    };
    // Another device's package and a package that does not exist answer alike.
    let (s1, c1, m1) = json_error(get(&a, "?title=fw-b&version=1").await.unwrap()).await;
    let (s2, c2, m2) = json_error(get(&a, "?title=nope&version=9").await.unwrap()).await;
    assert_eq!((s1, c1.as_str()), (400, "bad_request"));
    assert_eq!((s2, c2.as_str()), (400, "bad_request"));
    assert_eq!(m1.replace("fw-b 1", "X"), m2.replace("nope 9", "X"));
    assert!(
        !m1.contains("fw-a"),
        "the answer does not reveal what is assigned: {m1}"
    );
    // Software is not assigned; nothing at all for the third device.
    let software = server
        .client
        .get(server.url(&a.access_token, "software"))
        .send()
        .await
        .unwrap();
    let (status, code, _) = json_error(software).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    let (status, _, _) = json_error(get(&nothing, "").await.unwrap()).await;
    assert_eq!(status, 404);
    // Its own package downloads.
    let r = get(&a, "?title=fw-a&version=1").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), content(100, 7));
    server.stop().await;
}

async fn malformed_queries_answer_400(backend: Backend) {
    let server = Server::start(backend).await;
    let package = server
        .upload(PackageKind::Firmware, "fw", "1", content(1000, 9), None)
        .await;
    let device = server.device().await;
    server.assign(&device, &package).await;
    for query in [
        "chunk=-1&size=10",
        "size=abc",
        "size=10&chunk=1.5",
        "size=99999999999999999999999",
        "size=10&chunk=18446744073709551616",
        "size=4294967296&chunk=4294967296",
        "timeout=x",
    ] {
        let route = if query.starts_with("timeout") {
            "attributes/updates"
        } else {
            "firmware"
        };
        let r = server
            .client
            .get(server.url(&device.access_token, &format!("{route}?{query}")))
            .send()
            .await
            .unwrap();
        let (status, code, _) = json_error(r).await;
        assert_eq!((status, code.as_str()), (400, "bad_request"), "{query}");
    }
    // A chunk past the end: 200 with an empty body; a huge chunk size: the whole file.
    for (query, len) in [
        ("size=100&chunk=10", 0),
        ("size=100&chunk=1000000", 0),
        ("size=18446744073709551615&chunk=0", 1000),
    ] {
        let r = server
            .client
            .get(server.url(&device.access_token, &format!("firmware?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{query}");
        assert_eq!(r.bytes().await.unwrap().len(), len, "{query}");
    }
    server.stop().await;
}

on_both_stores!(
    devices_update_with_chunks_and_whole_files,
    every_checksum_algorithm_verifies,
    a_download_resumes_with_range_after_a_dropped_connection,
    ranges_conditions_and_head,
    reassignment_mid_download_refuses_the_old_version,
    a_device_downloads_only_its_own_package,
    malformed_queries_answer_400,
);
