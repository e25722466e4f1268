//! The device API's attributes, telemetry and error answers, through a real socket, on the
//! memory store and on PostgreSQL.

mod support;

use ota_core::{PackageKind, UpdateState};
use serde_json::{json, Value};
use support::{json_error, Backend, Server};

async fn get_json(server: &Server, url: &str) -> Value {
    let response = server.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

async fn shared_attributes_follow_the_update(backend: Backend) {
    let server = Server::start(backend).await;
    let device = server.device().await;
    let token = &device.access_token;
    let url = server.url(token, "attributes?sharedKeys=fw_title,fw_version,fw_size");
    assert_eq!(get_json(&server, &url).await, json!({"shared": {}}));

    let package = server
        .upload(
            PackageKind::Firmware,
            "sensor-fw",
            "1.0.0",
            vec![7u8; 1234],
            None,
        )
        .await;
    server.assign(&device, &package).await;
    assert_eq!(
        get_json(&server, &url).await,
        json!({"shared": {"fw_title": "sensor-fw", "fw_version": "1.0.0", "fw_size": 1234}})
    );
    // Keys as repeated parameters, mixed with a comma list; unknown keys are left out.
    let url = server.url(
        token,
        "attributes?sharedKeys=fw_checksum_algorithm&sharedKeys=fw_title,nope",
    );
    assert_eq!(
        get_json(&server, &url).await,
        json!({"shared": {"fw_title": "sensor-fw", "fw_checksum_algorithm": "SHA256"}})
    );
    // No keys: every shared attribute, and the client attributes.
    let all = get_json(&server, &server.url(token, "attributes")).await;
    assert_eq!(
        all["shared"]["fw_checksum"],
        json!(package.sha256.clone().unwrap())
    );
    assert_eq!(all["client"], json!({}));
    // Software has nothing.
    let url = server.url(token, "attributes?sharedKeys=sw_title");
    assert_eq!(get_json(&server, &url).await, json!({"shared": {}}));
    server.stop().await;
}

async fn telemetry_and_attributes_drive_the_update(backend: Backend) {
    let server = Server::start(backend).await;
    let device = server.device().await;
    let token = &device.access_token;
    let package = server
        .upload(PackageKind::Firmware, "fw", "2.0", vec![1u8; 100], None)
        .await;
    server.assign(&device, &package).await;
    assert_eq!(
        server.state(&device, PackageKind::Firmware).await,
        Some(UpdateState::Initiated)
    );

    let post = |path: &'static str, body: &'static str| {
        server
            .client
            .post(server.url(token, path))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // An empty object is a connection check; null values are absent.
    assert_eq!(post("telemetry", "{}").await.unwrap().status(), 200);
    assert_eq!(post("attributes", "{}").await.unwrap().status(), 200);
    assert_eq!(
        post(
            "telemetry",
            r#"{"fw_state":null,"fw_error":null,"temperature":21}"#
        )
        .await
        .unwrap()
        .status(),
        200
    );
    assert_eq!(
        server.state(&device, PackageKind::Firmware).await,
        Some(UpdateState::Initiated)
    );

    let r = post(
        "telemetry",
        r#"{"fw_state":"DOWNLOADING","fw_progress":10}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        server.state(&device, PackageKind::Firmware).await,
        Some(UpdateState::Downloading)
    );
    let r = post(
        "telemetry",
        r#"[{"ts":1700000000000,"values":{"fw_state":"DOWNLOADED"}},{"ts":1700000000001,"values":{"fw_state":"VERIFIED"}}]"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        server.state(&device, PackageKind::Firmware).await,
        Some(UpdateState::Verified)
    );
    // Client attributes report the running version: the update completes.
    let r = post(
        "attributes",
        r#"{"current_fw_title":"fw","current_fw_version":"2.0"}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        server.state(&device, PackageKind::Firmware).await,
        Some(UpdateState::Updated)
    );
    let client = get_json(
        &server,
        &server.url(token, "attributes?clientKeys=current_fw_version"),
    )
    .await;
    assert_eq!(client["client"], json!({"current_fw_version": "2.0"}));
    server.stop().await;
}

async fn bad_bodies_answer_4xx_with_json(backend: Backend) {
    let server = Server::start_with(backend, |o| o.max_body_bytes(1024)).await;
    let device = server.device().await;
    let token = &device.access_token;
    for path in ["telemetry", "attributes"] {
        for body in [
            "not json",
            "",
            "[1,2]",
            "\"text\"",
            "{\"fw_state\":\"FLYING\"}",
            "{\"fw_progress\":101}",
            "{\"fw_state\":",
        ] {
            let r = server
                .client
                .post(server.url(token, path))
                .body(body)
                .send()
                .await
                .unwrap();
            let (status, code, _) = json_error(r).await;
            assert_eq!(
                (status, code.as_str()),
                (400, "bad_request"),
                "{path} {body:?}"
            );
        }
        let mut large = String::from("{\"k\":\"");
        large.push_str(&"x".repeat(2000));
        large.push_str("\"}");
        let r = server
            .client
            .post(server.url(token, path))
            .body(large)
            .send()
            .await
            .unwrap();
        let (status, code, message) = json_error(r).await;
        assert_eq!((status, code.as_str()), (413, "payload_too_large"));
        assert!(message.contains("1024"), "{message}");
        // Invalid UTF-8.
        let r = server
            .client
            .post(server.url(token, path))
            .body(vec![b'{', 0xff, 0xfe, b'}'])
            .send()
            .await
            .unwrap();
        assert_eq!(json_error(r).await.0, 400);
    }
    server.stop().await;
}

async fn unknown_tokens_routes_and_methods(backend: Backend) {
    let server = Server::start(backend).await;
    let device = server.device().await;
    for path in [
        "attributes",
        "attributes/updates?timeout=1",
        "firmware",
        "software",
    ] {
        let r = server
            .client
            .get(server.url("no-such-token", path))
            .send()
            .await
            .unwrap();
        let (status, code, _) = json_error(r).await;
        assert_eq!((status, code.as_str()), (401, "unauthorized"), "{path}");
    }
    let r = server
        .client
        .post(server.url("no-such-token", "telemetry"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(json_error(r).await.0, 401);
    let r = server
        .client
        .get(server.url(&device.access_token, "nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(json_error(r).await.0, 404);
    let r = server
        .client
        .delete(server.url(&device.access_token, "telemetry"))
        .send()
        .await
        .unwrap();
    assert_eq!(json_error(r).await.0, 405);
    let r = server
        .client
        .get(server.url(&device.access_token, "telemetry"))
        .send()
        .await
        .unwrap();
    assert_eq!(json_error(r).await.0, 405);
    server.stop().await;
}

on_both_stores!(
    shared_attributes_follow_the_update,
    telemetry_and_attributes_drive_the_update,
    bad_bodies_answer_4xx_with_json,
    unknown_tokens_routes_and_methods,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_is_down_answers_503_with_retry_after() {
    let server = Server::start(Backend::Postgres).await;
    let device = server.device().await;
    server.pg.as_ref().unwrap().close().await;
    for (method, path) in [
        ("GET", "attributes"),
        ("POST", "telemetry"),
        ("GET", "firmware"),
    ] {
        let request = match method {
            "GET" => server.client.get(server.url(&device.access_token, path)),
            _ => server
                .client
                .post(server.url(&device.access_token, path))
                .body("{}"),
        };
        let r = request.send().await.unwrap();
        let retry_after = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        let (status, code, message) = json_error(r).await;
        assert_eq!((status, code.as_str()), (503, "unavailable"), "{path}");
        assert!(retry_after.is_some_and(|s| s > 0));
        assert!(
            !message.contains("pool"),
            "internals are logged, not sent: {message}"
        );
    }
    server.stop().await;
}
