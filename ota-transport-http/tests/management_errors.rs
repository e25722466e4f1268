//! Bad input answers 4xx with `{"code","message"}` saying what to fix; nothing answers 500.

mod management_support;

use management_support::{id, memory_store, Server};
use ota_transport_http::ManagementOptions;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn malformed_and_misfitting_json_is_refused_with_what_to_fix() {
    let s = Server::memory().await;
    let admin = s.a.admin.clone();
    let raw = |body: &'static str| {
        s.req(Method::POST, &admin, "/profiles")
            .header("content-type", "application/json")
            .body(body)
    };
    s.send(raw("{\"name\": "))
        .await
        .expect_error(400, "invalid_json");
    let unknown = s.send(raw("{\"name\":\"p\",\"colour\":\"red\"}")).await;
    unknown.expect_error(422, "invalid_body");
    assert!(
        unknown.message().contains("colour"),
        "{}",
        unknown.message()
    );
    let missing = s.send(raw("{}")).await;
    missing.expect_error(422, "invalid_body");
    assert!(missing.message().contains("name"), "{}", missing.message());
    s.send(raw("{\"name\": 5}"))
        .await
        .expect_error(422, "invalid_body");
    s.send(
        s.req(Method::POST, &admin, "/profiles")
            .body("{\"name\":\"p\"}"),
    )
    .await
    .expect_error(415, "unsupported_media_type");
    s.post(&admin, "/profiles", json!({"name": ""}))
        .await
        .expect_error(400, "invalid_request");
    s.stop().await;
}

#[tokio::test]
async fn bad_paths_queries_and_routes_are_4xx_json() {
    let s = Server::memory().await;
    let admin = s.a.admin.clone();
    s.get(&admin, "/devices/not-a-uuid")
        .await
        .expect_error(400, "invalid_path");
    let unknown = uuid::Uuid::now_v7();
    s.get(&admin, &format!("/devices/{unknown}"))
        .await
        .expect_error(404, "not_found");
    s.get(&admin, &format!("/devices/{unknown}/updates/firmwear"))
        .await
        .expect_error(400, "invalid_kind");
    s.get(&admin, "/nothing-here")
        .await
        .expect_error(404, "not_found");
    s.send(s.req(Method::PATCH, &admin, "/packages"))
        .await
        .expect_error(405, "method_not_allowed");
    s.get(&admin, "/devices?cursor=bm9wZQ")
        .await
        .expect_error(400, "invalid_cursor");
    s.get(&admin, "/devices?limit=0")
        .await
        .expect_error(400, "invalid_limit");
    s.get(&admin, "/devices?limit=5000")
        .await
        .expect_error(400, "invalid_limit");
    s.get(&admin, "/devices?limit=ten")
        .await
        .expect_error(400, "invalid_query");
    s.get(&admin, "/packages?kind=hardware")
        .await
        .expect_error(400, "invalid_kind");
    s.get(&admin, "/campaigns?state=RUNNIN")
        .await
        .expect_error(400, "invalid_state");
    s.get(&admin, "/assignments?level=fleet")
        .await
        .expect_error(400, "invalid_level");
    let p = id(s
        .post(&admin, "/profiles", json!({"name": "p"}))
        .await
        .expect(201));
    let g = id(s
        .post(&admin, "/groups", json!({"name": "g"}))
        .await
        .expect(201));
    s.get(&admin, &format!("/devices?profile={p}&group={g}"))
        .await
        .expect_error(400, "invalid_query");
    s.stop().await;
}

#[tokio::test]
async fn uploads_are_checked_and_limited() {
    let options = {
        let mut o = ManagementOptions::default();
        o.max_upload_size = Some(1000);
        o.max_json_body = 2000;
        o
    };
    let s = Server::start(memory_store(), options).await;
    let admin = s.a.admin.clone();
    let up = |q: &str| format!("/packages?{q}");
    // Declared too large: refused before reading.
    s.post_bytes(
        &admin,
        &up("kind=fw&title=t&version=1"),
        "application/octet-stream",
        vec![0; 1001],
    )
    .await
    .expect_error(413, "too_large");
    // Streamed without a length: refused when the limit is passed.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![7u8; 100])).collect();
    let streamed = s
        .send(
            s.req(Method::POST, &admin, &up("kind=fw&title=t&version=1"))
                .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                    chunks,
                ))),
        )
        .await;
    streamed.expect_error(413, "too_large");
    assert!(
        s.all_pages(&admin, "/packages", 10).await.is_empty(),
        "nothing stored"
    );
    // Metadata errors.
    s.post_bytes(
        &admin,
        &up("kind=fw&title=t"),
        "application/octet-stream",
        vec![1],
    )
    .await
    .expect_error(400, "invalid_query");
    s.post_bytes(
        &admin,
        &up("kind=fw&title=t&version=1&colour=red"),
        "application/octet-stream",
        vec![1],
    )
    .await
    .expect_error(400, "invalid_query");
    s.post_bytes(
        &admin,
        &up("kind=fw&title=a/b&version=1"),
        "application/octet-stream",
        vec![1],
    )
    .await
    .expect_error(400, "invalid_field");
    s.post_bytes(
        &admin,
        &up("kind=fw&title=t&version=1&checksum_algorithm=SHA3&checksum=00"),
        "application/octet-stream",
        vec![1],
    )
    .await
    .expect_error(400, "invalid_checksum");
    s.post_bytes(
        &admin,
        &up("kind=fw&title=t&version=1&checksum_algorithm=MD5&checksum=xyz"),
        "application/octet-stream",
        vec![1],
    )
    .await
    .expect_error(400, "invalid_checksum");
    s.post_bytes(
        &admin,
        &up("kind=fw&title=t&version=1&checksum_algorithm=CRC32"),
        "application/octet-stream",
        vec![1],
    )
    .await
    .expect_error(400, "invalid_checksum");
    // A CRC32 that matches is accepted (little-endian hex of 0x...).
    let crc = crc32fast_le(b"hello");
    let ok = s
        .post_bytes(
            &admin,
            &up(&format!(
                "kind=fw&title=t&version=1&checksum_algorithm=CRC32&checksum={crc}"
            )),
            "application/octet-stream",
            b"hello".to_vec(),
        )
        .await;
    assert_eq!(ok.expect(201)["checksum"], crc.as_str());
    // An external package of the wrong kind assigned at a level.
    let ext = s
        .post(&admin, "/packages/external", json!({"kind": "sw", "title": "app", "version": "1", "url": "https://example.com/app.bin"}))
        .await;
    let ext = id(ext.expect(201));
    s.get(&admin, &format!("/packages/{ext}/content"))
        .await
        .expect_error(409, "external_content");
    let p = id(s
        .post(&admin, "/profiles", json!({"name": "p"}))
        .await
        .expect(201));
    s.put(
        &admin,
        &format!("/profiles/{p}/assignments/fw"),
        json!({"package_id": ext}),
    )
    .await
    .expect_error(400, "kind_mismatch");
    // A JSON body over the limit.
    let big = "x".repeat(3000);
    s.post(&admin, "/groups", json!({"name": big}))
        .await
        .expect_error(413, "too_large");
    s.stop().await;
}

fn crc32fast_le(bytes: &[u8]) -> String {
    ota_core::checksum::checksum_of(ota_core::ChecksumAlgorithm::Crc32, bytes).value
}

#[tokio::test]
async fn bad_csv_rows_are_listed_with_line_numbers_and_nothing_is_created() {
    let s = Server::memory().await;
    let admin = s.a.admin.clone();
    s.post(&admin, "/profiles", json!({"name": "sensor"}))
        .await
        .expect(201);
    let csv = "name,profile,groups\nok-1,sensor,\n,sensor,\nok-2,nosuch,\nok-1,sensor,\nok-3,sensor,ghosts\n";
    let bad = s
        .post_bytes(&admin, "/devices/import", "text/csv", csv.into())
        .await;
    bad.expect_error(400, "invalid_csv");
    let lines: Vec<u64> = bad.body["details"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4, 5, 6]);
    assert!(bad.message().contains("line 4"), "{}", bad.message());
    assert!(s.all_pages(&admin, "/devices", 10).await.is_empty());
    s.post_bytes(
        &admin,
        "/devices/import",
        "text/csv",
        b"device,type\nx,y\n".to_vec(),
    )
    .await
    .expect_error(400, "invalid_csv");
    s.post_bytes(
        &admin,
        "/devices/import",
        "text/csv",
        b"name,profile\n".to_vec(),
    )
    .await
    .expect_error(400, "invalid_csv");
    s.post_bytes(
        &admin,
        "/devices/import",
        "text/csv",
        b"name,profile\na,sensor,extra\n".to_vec(),
    )
    .await
    .expect_error(400, "invalid_csv");
    // A name already taken: nothing of the file is created.
    s.post_bytes(
        &admin,
        "/devices/import",
        "text/csv",
        b"name,profile\nfirst,sensor\n".to_vec(),
    )
    .await
    .expect(201);
    s.post_bytes(
        &admin,
        "/devices/import",
        "text/csv",
        b"name,profile\nsecond,sensor\nfirst,sensor\n".to_vec(),
    )
    .await
    .expect_error(409, "conflict");
    assert_eq!(s.all_pages(&admin, "/devices", 10).await.len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn campaign_and_schedule_definitions_are_checked() {
    let s = Server::memory().await;
    let op = s.a.operator.clone();
    let pkg = id(s.upload(&s.a.admin, "fw", "1", b"x").await.expect(201));
    let base = json!({"name": "c", "package_id": pkg, "target": {"type": "selection"}});
    let none = s.post(&op, "/campaigns", base.clone()).await;
    none.expect_error(400, "invalid_campaign");
    assert!(none.message().contains("profile"), "{}", none.message());
    let mut bad_waves = base.clone();
    bad_waves["target"] = json!({"type": "device_list"});
    bad_waves["waves"] = json!([{"size": 5}]);
    let w = s.post(&op, "/campaigns", bad_waves).await;
    w.expect_error(422, "invalid_body");
    assert!(w.message().contains("waves"), "{}", w.message());
    let mut bad_target = base.clone();
    bad_target["target"] = json!({"type": "everyone"});
    s.post(&op, "/campaigns", bad_target)
        .await
        .expect_error(422, "invalid_body");
    let mut unknown_pkg = base.clone();
    unknown_pkg["package_id"] = json!(uuid::Uuid::now_v7());
    unknown_pkg["target"] = json!({"type": "device_list"});
    s.post(&op, "/campaigns", unknown_pkg)
        .await
        .expect_error(404, "not_found");
    let mut ok = base.clone();
    ok["target"] = json!({"type": "device_list"});
    let c = id(s.post(&op, "/campaigns", ok).await.expect(201));
    s.post(&op, &format!("/campaigns/{c}/pause"), json!({}))
        .await
        .expect_error(409, "illegal_transition");
    s.post(
        &op,
        &format!("/campaigns/{c}/schedule"),
        json!({"start_at": "2001-01-01T00:00:00Z"}),
    )
    .await
    .expect_error(400, "invalid_start");
    s.put_bytes(
        &op,
        &format!("/campaigns/{c}/devices"),
        "text/csv",
        b"Name\nx\n".to_vec(),
    )
    .await
    .expect_error(400, "invalid_csv");
    s.get(&op, &format!("/campaigns/{c}/devices?state=DONE"))
        .await
        .expect_error(400, "invalid_state");
    s.get(&op, &format!("/campaigns/{c}/devices?status=great"))
        .await
        .expect_error(400, "invalid_status");
    s.get(
        &op,
        &format!("/campaigns/{c}/devices?status=failed&state=FAILED"),
    )
    .await
    .expect_error(400, "invalid_query");
    let event = json!({
        "name": "e",
        "recurrence": {"start": "2030-01-01T03:00:00", "time_zone": "Mars/Olympus", "repeat": {"type": "once"}, "until": null},
        "action": {"type": "start_campaign", "campaign_id": c},
    });
    let tz = s.post(&op, "/schedules", event).await;
    assert!(tz.status.is_client_error(), "{:?}", tz.body);
    assert!(tz.message().contains("Mars/Olympus"), "{}", tz.message());
    s.stop().await;
}
