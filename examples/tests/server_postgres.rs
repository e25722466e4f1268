//! The real `ota-server` binary on PostgreSQL (a schema of its own): it starts, is ready,
//! serves a device, keeps what it was given across a restart, and stops cleanly.

mod server_support;

use server_support::{device_with_firmware, metrics, sample, wait_for_attributes, Api, Server};

#[tokio::test]
async fn starts_on_postgresql_serves_a_device_and_keeps_its_data_across_a_restart() {
    let db = ota_store_postgres::testing::fresh_database().await;
    let pg = ["--database-url", &db.url, "--database-schema", &db.schema];
    let mut args = pg.to_vec();
    args.extend(["--instance-id", "server-test-1"]);
    let server = Server::start(&args);
    let listening = server.start_lines.last().unwrap();
    assert_eq!(listening["store"], "postgres");
    assert_eq!(listening["instance_id"], "server-test-1");
    assert!(!server.stderr().contains("nothing is persisted"));

    let ready = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["store"], "postgres");

    let key = server.admin_key.clone().expect("a first start makes a key");
    let api = Api::new(&server, &key);
    device_with_firmware(&api, "pg-device", 3000).await;
    let shared = wait_for_attributes(&server, "pg-device").await;
    assert_eq!(shared["fw_size"], 3000);
    let text = metrics(&server).await;
    assert_eq!(sample(&text, "ota_releases_total"), Some(1.0), "{text}");
    // The release went through the store (claimed and released in one step, or released
    // after its claim when a pace is reserved in between).
    let releasing_calls: f64 = ["claim_and_release", "release_with_notices"]
        .iter()
        .filter_map(|op| {
            sample(
                &text,
                &format!(r#"ota_store_call_seconds_count{{op="{op}"}}"#),
            )
        })
        .sum();
    assert!(releasing_calls >= 1.0, "{text}");
    let (status, _, stderr) = server.stop();
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");

    // Restarted on the same schema: no new key (the stored one still works), and the
    // device and its update are still there.
    let mut args = pg.to_vec();
    args.extend(["--instance-id", "server-test-1"]);
    let server = Server::start(&args);
    assert!(server.admin_key.is_none(), "{:?}", server.start_lines);
    let shared = wait_for_attributes(&server, "pg-device").await;
    assert_eq!(shared["fw_title"], "sensor-fw");
    let api = Api::new(&server, &key);
    let (status, devices) = api.get("/devices").await;
    assert_eq!(status, 200);
    assert_eq!(devices["items"][0]["name"], "device-pg-device", "{devices}");
    // Admins manage keys over the API.
    let (status, keys) = api.get("/api-keys").await;
    assert_eq!(status, 200, "{keys}");
    assert_eq!(keys["items"].as_array().map(Vec::len), Some(1), "{keys}");
    let (status, _, stderr) = server.stop();
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    db.drop_schema().await;
}

#[test]
fn an_unreachable_database_stops_the_start_with_a_message() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ota-server"))
        .args([
            "--database-url",
            "postgres://postgres@127.0.0.1:1/none",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot open the PostgreSQL store"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no listening line");
}
