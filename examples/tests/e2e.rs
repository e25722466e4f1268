//! End to end: the `ota-server` binary on PostgreSQL (a schema of its own) and the `ota-sim`
//! binary with 1,000 devices over the MQTT endpoint and 200 over the device HTTP API, one
//! campaign in two waves, 5 % of attempts failing on purpose (checksum failures, stalls the
//! server must time out, dropped connections the devices resume from) and automatic
//! retries. The campaign statistics (management API) must equal the simulator's own tally
//! card by card, and every device's version on the server must be the one the simulated
//! device runs. The second test does the same with two server instances on one database and
//! a smaller fleet spread over both (notices released by one instance reach devices
//! connected to the other through the PostgreSQL outbox).

mod sim_support;

use serde_json::Value;
use sim_support::{assert_tally_matches, two_waves, Api};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// How long the whole run may take before the test gives up (a hang guard, not a timed
/// assertion: the run normally ends in a quarter of it, even on a loaded two-core machine).
const PATIENCE: Duration = Duration::from_secs(900);

/// The campaign's DOWNLOADING timeout. Not a hang guard: it is how the server catches the
/// injected stalls, so a device that stalls on both attempts makes the run last at least
/// twice this. It must also be far longer than a healthy download on a loaded machine (a
/// download the server timed out but the device finished turns into a retry the tally does
/// not expect): at 10 s a run under the load of parallel builds failed that way. A healthy
/// download (48 KiB in 7 chunks) takes well under a second on an idle machine.
const DOWNLOADING_TIMEOUT: Duration = Duration::from_secs(60);

struct Server {
    _child: Child,
    http: String,
    mqtt: String,
}

/// Starts `ota-server` on the test database and waits for its `listening` line.
async fn server(
    db: &ota_store_postgres::testing::TestDatabase,
    key: &str,
    instance: &str,
) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ota-server"))
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--mqtt-listen",
            "127.0.0.1:0",
        ])
        .args(["--database-url", &db.url, "--database-schema", &db.schema])
        .args(["--api-key", key, "--instance-id", instance])
        .args(["--tick-interval", "200ms", "--log", "warn"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start ota-server");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let listening = until_event(&mut lines, "listening").await;
    // Keep reading so that the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let address = |k: &str| listening[k].as_str().expect("address").to_string();
    Server {
        _child: child,
        http: format!("http://{}", address("http")),
        mqtt: address("mqtt"),
    }
}

/// Reads JSON lines until one with `"event": event`.
async fn until_event(lines: &mut Lines<BufReader<ChildStdout>>, event: &str) -> Value {
    let read = async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["event"] == event {
                    return v;
                }
            }
        }
        panic!("the process ended before printing {event:?}");
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .unwrap_or_else(|_| panic!("no {event:?} line in time"))
}

/// Runs the simulator over `servers` (devices spread over them), starts a two-wave campaign
/// once every device is connected, and checks the tally against the server at the end.
async fn fleet_over(servers: &[Server], key: &str, mqtt_devices: u64, http_devices: u64) {
    let devices = mqtt_devices + http_devices;
    let api = Api::new(&servers[0].http, key);
    let profile = api.profile("e2e").await;
    let package = api.upload("e2e-firmware", "2.0.0", 48 * 1024 + 77).await;
    let mut sim = Command::new(env!("CARGO_BIN_EXE_ota-sim"));
    sim.args([
        "--api",
        &servers[0].http,
        "--api-key",
        key,
        "--profile",
        "e2e",
    ])
    .args(["--mqtt-devices", &mqtt_devices.to_string()])
    .args(["--http-devices", &http_devices.to_string()])
    .args([
        "--checksum-failures",
        "2",
        "--stalls",
        "1.5",
        "--drops",
        "1.5",
    ])
    .args(["--seed", "16", "--chunk-size", "8192", "--reboot-ms", "200"])
    .args(["--long-poll-secs", "5", "--until-campaign", "rollout"])
    // A hang guard: an answer slower than this counts as a lost connection (the device
    // goes silent and the tallies differ), so it is far beyond a loaded machine's delays.
    .args(["--response-timeout-secs", "90"])
    .args([
        "--duration-secs",
        // The simulator's own guard, inside the test's.
        &(PATIENCE.as_secs() - 20).to_string(),
        "--json",
        "--per-device",
        "--no-progress",
    ]);
    for s in servers {
        sim.args(["--mqtt", &s.mqtt, "--http", &s.http]);
    }
    let mut child = sim
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start ota-sim");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let fleet = until_event(&mut lines, "devices").await;
    assert_eq!(fleet["mqtt"], mqtt_devices);
    assert_eq!(fleet["http"], http_devices);
    until_event(&mut lines, "connected").await;
    let campaign = api
        .campaign(
            "rollout",
            &package,
            &profile,
            two_waves(),
            2,
            DOWNLOADING_TIMEOUT,
        )
        .await;
    until_event(&mut lines, "campaign_ended").await;
    let summary = until_event(&mut lines, "summary").await;
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("ota-sim ends")
        .expect("ota-sim status");
    assert!(status.success(), "ota-sim: {status}");

    let c = api.get(&format!("/campaigns/{campaign}")).await;
    assert_eq!(c["state"], "FINISHED", "{c}");
    let first_wave = devices.div_ceil(5);
    assert_eq!(
        c["wave_sizes"],
        serde_json::json!([first_wave, devices - first_wave]),
        "{c}"
    );
    assert_eq!(summary["devices"], devices);
    assert_tally_matches(&api, &campaign, &summary).await;
    // The failures happened and were retried.
    let injected = &summary["injected"];
    for kind in ["checksum", "stall", "drop"] {
        assert!(injected[kind].as_u64().unwrap() > 0, "no {kind}: {summary}");
    }
    assert!(summary["attempts"].as_u64().unwrap() > devices, "{summary}");
    // With two attempts each and this seed, a few devices fail both (checksum or stall):
    // the failed card is compared too, not only the successful one.
    assert!(
        summary["cards"]["failed"].as_u64().unwrap() > 0,
        "{summary}"
    );
    let mut brief = summary.clone();
    brief.as_object_mut().map(|m| m.remove("devices_detail"));
    eprintln!("e2e summary: {brief}");
}

fn key() -> String {
    format!("e2e-{}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_mqtt_and_two_hundred_http_devices_through_one_server() {
    let db = ota_store_postgres::testing::fresh_database().await;
    let key = key();
    let server = server(&db, &key, "e2e-one").await;
    fleet_over(std::slice::from_ref(&server), &key, 1000, 200).await;
    drop(server);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_fleet_spread_over_two_server_instances_on_one_database() {
    let db = ota_store_postgres::testing::fresh_database().await;
    let key = key();
    let first = server(&db, &key, "e2e-a").await;
    let second = server(&db, &key, "e2e-b").await;
    // A smaller fleet: the point is the spread over two instances, and both tests run at
    // once on a small machine.
    fleet_over(&[first, second], &key, 400, 100).await;
    db.drop_schema().await;
}
