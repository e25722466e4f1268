//! The real `ota-server` binary on the in-memory store: start, health, readiness, metrics,
//! the printed admin key on the management API, a device over HTTP, configured keys.

mod server_support;

use server_support::{device_with_firmware, metrics, sample, wait_for_attributes, Api, Server};

#[tokio::test]
async fn starts_on_memory_and_answers_health_readiness_metrics_and_the_home_page() {
    let server = Server::start(&[]);
    assert!(server.mqtt.is_some(), "the MQTT endpoint runs by default");
    assert!(
        server.stderr().contains("nothing is persisted"),
        "the start says nothing is kept:\n{}",
        server.stderr()
    );
    let listening = server.start_lines.last().unwrap();
    assert_eq!(listening["store"], "memory");
    assert_eq!(listening["management"], "/api/ota/v1");

    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(
        (ready["status"].as_str(), ready["store"].as_str()),
        (Some("ready"), Some("memory"))
    );

    let home = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(home.status(), 200);
    let page = home.text().await.unwrap();
    assert!(page.contains("<title>OTA dashboard</title>"), "{page}");
    assert!(
        page.contains("/api/ota/v1"),
        "the dashboard is told the API prefix: {page}"
    );

    let text = metrics(&server).await;
    assert_eq!(
        sample(&text, r#"ota_updates{state="QUEUED"}"#),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "ota_mqtt_connected_devices"),
        Some(0.0),
        "{text}"
    );
    assert!(text.contains("ota_store_call_seconds"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");

    let (status, lines, stderr) = server.stop();
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    assert_eq!(lines.last().unwrap()["event"], "stopped", "{lines:?}");
}

#[tokio::test]
async fn the_printed_admin_key_works_and_a_device_gets_its_attributes_over_http() {
    let server = Server::start(&[]);
    let key = server.admin_key.clone().expect("an admin key is printed");
    assert_eq!(server.start_lines[0]["event"], "admin_key");
    assert_eq!(server.start_lines[0]["role"], "admin");

    // Without a key, or with a wrong one: 401.
    let anonymous = reqwest::get(server.url("/api/ota/v1/profiles"))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let (status, _) = Api::new(&server, "ota_not-a-key").get("/profiles").await;
    assert_eq!(status, 401);

    let api = Api::new(&server, &key);
    let (status, _) = api.get("/profiles").await;
    assert_eq!(status, 200);
    let (title, version) = device_with_firmware(&api, "device-token-1", 5000).await;

    // The background tick releases the update; the device reads it over HTTP.
    let shared = wait_for_attributes(&server, "device-token-1").await;
    assert_eq!(shared["fw_title"], title.as_str());
    assert_eq!(shared["fw_version"], version.as_str());
    assert_eq!(shared["fw_size"], 5000);

    // It downloads the package; the bytes are counted.
    let url = server.url(&format!(
        "/api/v1/device-token-1/firmware?title={title}&version={version}"
    ));
    let content = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    assert_eq!(content.len(), 5000);
    let text = metrics(&server).await;
    assert_eq!(
        sample(&text, r#"ota_bytes_served_total{transport="http"}"#),
        Some(5000.0),
        "{text}"
    );
    assert_eq!(sample(&text, "ota_releases_total"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, r#"ota_update_transitions_total{state="INITIATED"}"#),
        Some(1.0),
        "{text}"
    );

    // It reports; the report is counted.
    let report = serde_json::json!({"fw_state": "DOWNLOADING"});
    let posted = reqwest::Client::new()
        .post(server.url("/api/v1/device-token-1/telemetry"))
        .json(&report)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let text = metrics(&server).await;
    assert_eq!(
        sample(&text, "ota_device_reports_total"),
        Some(1.0),
        "{text}"
    );

    let (status, _, stderr) = server.stop();
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
}

#[tokio::test]
async fn a_configured_key_is_used_and_no_key_is_made() {
    let server = Server::start(&["--api-key", "my-secret-key", "--no-mqtt-endpoint"]);
    assert!(server.admin_key.is_none());
    assert!(server.mqtt.is_none());
    assert_eq!(server.start_lines.len(), 1, "{:?}", server.start_lines);
    let (status, _) = Api::new(&server, "my-secret-key").get("/profiles").await;
    assert_eq!(status, 200);
    let (status, _, _) = server.stop();
    assert!(status.success());
}

#[test]
fn bad_flags_are_refused_with_a_message() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ota-server"))
        .args(["--pace", "fast"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("COUNT/PERIOD"));
    assert!(out.stdout.is_empty());
}
