//! The broker restart drill: `ota-server` in bridge mode (no MQTT endpoint of its own) on a
//! Mosquitto the test starts with the sample configuration of ota-transport-mqtt (per-device
//! ACLs; each device's access token is its user name and password), and `ota-sim` devices on
//! that broker with device-scoped topics. Mid-campaign the broker is killed and started
//! again on the same port: every session and queued message is gone. The bridge and the
//! devices connect again by themselves; every device finishes (no update left in progress),
//! the statistics equal a recount and every history is a path of the state machine.

mod drill_support;
mod sim_support;

use drill_support::broker::{Broker, BRIDGE_PASSWORD, BRIDGE_USER};
use drill_support::campaign::{check_outcome, start_campaign, until_finished};
use drill_support::{env_number, sim_args, ServerSpec, Sim};
use sim_support::Api;
use std::fmt::Write as _;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_campaign_leaves_no_device_stuck() {
    let devices = env_number("OTA_DRILL_BROKER_DEVICES", 300);
    let db = ota_store_postgres::testing::fresh_database().await;
    let key = format!("drill-broker-{}", std::process::id());

    // The fleet first: the broker's password file needs the devices' tokens. A server
    // without MQTT creates them.
    let mut setup = ServerSpec::new(&db.url, &db.schema, &key, "drill-broker");
    setup.mqtt_listen = None;
    let server = setup.start().await;
    let api = Api::new(&server.http, &key);
    let profile = api.profile("drill").await;
    let package = api.upload("drill-fw", "2.0.0", 40 * 1024 + 11).await;
    let mut csv = String::from("name,profile\n");
    for i in 1..=devices {
        let _ = writeln!(csv, "drill-b{i:05},drill");
    }
    let imported = api
        .send(
            api.client
                .post(format!("{}/devices/import", api.base))
                .header("content-type", "text/csv")
                .body(csv),
        )
        .await;
    let mut tokens = Vec::new();
    let mut file = String::from("name,token,transport\n");
    for d in imported["devices"].as_array().expect("imported devices") {
        let (name, token) = (
            d["name"].as_str().unwrap(),
            d["access_token"].as_str().unwrap(),
        );
        let _ = writeln!(file, "{name},{token},mqtt");
        tokens.push(token.to_string());
    }
    assert_eq!(tokens.len() as u64, devices);
    let devices_file =
        std::env::temp_dir().join(format!("ota-drill-broker-{}.csv", std::process::id()));
    std::fs::write(&devices_file, file).expect("devices file");
    drop(server);

    let mut broker = Broker::start(&tokens).await;
    let mut spec = ServerSpec::new(&db.url, &db.schema, &key, "drill-broker");
    spec.mqtt_listen = None;
    spec.args.extend([
        "--mqtt-bridge-url".to_string(),
        format!(
            "mqtt://{BRIDGE_USER}:{BRIDGE_PASSWORD}@127.0.0.1:{}",
            broker.port
        ),
    ]);
    let server = spec.start().await;
    let http = server.http.clone();
    let api = Api::new(&http, &key);

    let mut args = sim_args(&http, &key, "drill", "drill");
    args.extend([
        "--devices-file".to_string(),
        devices_file.display().to_string(),
        "--mqtt".to_string(),
        format!("127.0.0.1:{}", broker.port),
        "--bridge-root".to_string(),
        "v1/devices".to_string(),
    ]);
    let mut sim = Sim::start(&args);
    let campaign = start_campaign(&api, &mut sim, &package, &profile, (devices / 8).max(10)).await;
    let started = campaign.at;

    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.restart(Duration::from_secs(2)).await;
    eprintln!("{:?}: broker restarted", started.elapsed());

    let (_, summary) = until_finished(&api, sim, &campaign).await;
    let findings = check_outcome(&db, &api, &campaign, devices, &summary).await;
    eprintln!(
        "drill (broker restart): {devices} devices, {:?}, {} reconnects, {:.1} s",
        findings.by_state,
        summary["reconnects"],
        started.elapsed().as_secs_f64()
    );
    drop(server);
    let _ = std::fs::remove_file(&devices_file);
    db.drop_schema().await;
}
