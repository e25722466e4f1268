//! The PostgreSQL restart drill: `ota-server` on a private PostgreSQL cluster the test
//! starts (initdb + pg_ctl on a free port; skipped, saying so, when no PostgreSQL server
//! binaries are installed) runs a campaign over `ota-sim` MQTT devices; the test stops the
//! cluster mid-campaign.
//!
//! While it is down, the management API and the device HTTP API answer 503 with a
//! `Retry-After` header and a JSON body saying why (never 500, never a hang). When it is back
//! the engine goes on by itself: the campaign finishes, every update is settled, the
//! statistics equal a recount and every update's history is a path of the state machine.

mod drill_support;
mod sim_support;

use drill_support::campaign::{check_outcome, start_campaign, until_finished};
use drill_support::{env_number, sim_args, ServerSpec, Sim};
use ota_store_postgres::testing::cluster::{PrivateCluster, INSTALL_HELP};
use ota_store_postgres::testing::TestDatabase;
use serde_json::{json, Value};
use sim_support::Api;
use std::time::Duration;

/// A request that must be refused with 503 while the database is down.
async fn assert_unavailable(request: reqwest::RequestBuilder, what: &str) {
    let response = request
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: no answer while the database is down: {e}"));
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, 503, "{what} while the database is down: {body}");
    let seconds: Option<u64> = retry_after.as_deref().and_then(|s| s.parse().ok());
    assert!(
        seconds.is_some_and(|s| s > 0),
        "{what}: Retry-After {retry_after:?}"
    );
    let json: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{what}: the 503 body is not JSON ({e}): {body}"));
    assert!(
        json["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: no message in {json}"
    );
    eprintln!("{what}: 503, Retry-After {seconds:?}, {json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_mid_campaign_answers_503_and_loses_nothing() {
    let Some(cluster) = PrivateCluster::start() else {
        eprintln!("SKIPPED: {INSTALL_HELP}; the drill needs a cluster of its own");
        return;
    };
    let devices = env_number("OTA_DRILL_PG_DEVICES", 300);
    let db = TestDatabase {
        url: cluster.url(),
        schema: "drill".into(),
    };
    let key = format!("drill-pg-{}", std::process::id());
    let mut spec = ServerSpec::new(&db.url, &db.schema, &key, "drill-pg");
    let server = spec.start().await;
    let http = server.http.clone();
    let api = Api::new(&http, &key);
    let profile = api.profile("drill").await;
    let package = api.upload("drill-fw", "2.0.0", 40 * 1024 + 11).await;
    // A device outside the campaign, for the device API's answer.
    let bystanders = api.profile("bystanders").await;
    let token = format!("bystander-{}", std::process::id());
    api.post(
        "/devices",
        json!({"name": "bystander", "profile_id": bystanders, "access_token": token}),
    )
    .await;

    let mut args = sim_args(&http, &key, "drill", "drill");
    args.extend(["--mqtt".into(), server.mqtt.clone().expect("MQTT endpoint")]);
    args.extend(["--mqtt-devices".into(), devices.to_string()]);
    let mut sim = Sim::start(&args);
    let campaign = start_campaign(&api, &mut sim, &package, &profile, (devices / 8).max(10)).await;
    let started = campaign.at;

    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.stop_server();
    eprintln!("{:?}: PostgreSQL stopped", started.elapsed());
    let client = reqwest::Client::new();
    let stats = client
        .get(format!("{}/campaigns/{}/stats", api.base, campaign.id))
        .bearer_auth(&key);
    let attributes = client.get(format!(
        "{http}/api/v1/{token}/attributes?sharedKeys=fw_title,fw_version"
    ));
    let telemetry = client
        .post(format!("{http}/api/v1/{token}/telemetry"))
        .json(&json!({"current_fw_title": "x", "current_fw_version": "1"}));
    tokio::join!(
        assert_unavailable(stats, "management API (campaign statistics)"),
        assert_unavailable(attributes, "device API (attributes)"),
        assert_unavailable(telemetry, "device API (telemetry)"),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.start_server();
    eprintln!("{:?}: PostgreSQL started again", started.elapsed());

    let (_, summary) = until_finished(&api, sim, &campaign).await;
    // The device API answers again.
    let back = client
        .get(format!(
            "{http}/api/v1/{token}/attributes?sharedKeys=fw_title"
        ))
        .send()
        .await
        .expect("device API");
    assert_eq!(back.status().as_u16(), 200);

    // Every device the simulator saw on the new version is UPDATED on the server too: an
    // automatic retry that falls due while the device is recorded as running its target
    // completes the update (a report whose version was recorded but whose transition was
    // lost across the restart left such updates FAILED before).
    let findings = check_outcome(&db, &api, &campaign, devices, &summary).await;
    eprintln!(
        "drill (PostgreSQL restart): {devices} devices, {:?}, {} reconnects, {:.1} s",
        findings.by_state,
        summary["reconnects"],
        started.elapsed().as_secs_f64()
    );
    drop(server);
}
