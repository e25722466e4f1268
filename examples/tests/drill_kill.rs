//! The kill -9 drill: `ota-server` on PostgreSQL (a schema of its own) runs a campaign over
//! a fleet of `ota-sim` MQTT devices on its endpoint, and the test kills the server with
//! SIGKILL at random moments while the campaign runs, starting it again each time under
//! the same instance id on the same ports. The devices lose their connections, connect
//! again, resume their downloads and say again what they run.
//!
//! At the end (see `drill_support::checks`): every update settled and every device on the
//! new version, the statistics equal to a recount, every update's history a path of the
//! state machine, and no attempt's notice heard twice by its device unless a kill fell
//! between the attempt's dispatch and the second copy.
//!
//! The short form (CI) runs 1,000 devices and 3 kills; `OTA_DRILL_DEVICES`,
//! `OTA_DRILL_KILLS` and `OTA_DRILL_SEED` choose another (`scripts/drill` runs the long form,
//! 10,000 devices and 10 kills).

mod drill_support;
mod sim_support;

use drill_support::campaign::{check_outcome, start_campaign, until_finished};
use drill_support::checks::{check_notices, heard_by_device};
use drill_support::{env_number, sim_args, Random, ServerSpec, Sim};
use ota_core::DeviceId;
use sim_support::Api;
use std::collections::HashMap;

/// The campaign's state; a server still busy with its devices connecting again after a
/// restart may answer 503 (Retry-After) for a while: asked again.
async fn campaign_state(api: &Api, campaign: &str) -> String {
    let url = format!("{}/campaigns/{campaign}", api.base);
    let mut last = String::new();
    for _ in 0..120 {
        let answer = api.client.get(&url).bearer_auth(&api.key).send().await;
        match answer {
            Ok(r) if r.status().is_success() => {
                let c: serde_json::Value = r.json().await.expect("campaign JSON");
                return c["state"].as_str().unwrap_or_default().to_string();
            }
            Ok(r) => last = r.status().to_string(),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    panic!("the campaign's state could not be read: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_killed_at_random_moments_loses_no_attempt_and_sends_nothing_twice() {
    let devices = env_number("OTA_DRILL_DEVICES", 1_000);
    let kills = env_number("OTA_DRILL_KILLS", 3) as usize;
    let mut random = Random::from_env();
    let db = ota_store_postgres::testing::fresh_database().await;
    let key = format!("drill-{}", std::process::id());
    let mut spec = ServerSpec::new(&db.url, &db.schema, &key, "drill-kill");
    let mut server = spec.start().await;
    let http = server.http.clone();
    let mqtt = server.mqtt.clone().expect("MQTT endpoint");
    let api = Api::new(&http, &key);
    let profile = api.profile("drill").await;
    let package = api.upload("drill-fw", "2.0.0", 40 * 1024 + 11).await;

    let mut args = sim_args(&http, &key, "drill", "drill");
    args.extend(["--mqtt".into(), mqtt, "--mqtt-devices".into()]);
    args.push(devices.to_string());
    let mut sim = Sim::start(&args);
    // Releases spread over about four seconds per kill, so that the kills fall while
    // notices go out, devices download and report.
    let per_second = (devices / (4 * kills.max(1) as u64)).max(20);
    let campaign = start_campaign(&api, &mut sim, &package, &profile, per_second).await;
    let started = campaign.at;

    let mut kill_times = Vec::new();
    for n in 1..=kills {
        tokio::time::sleep(random.millis(500, 2_500)).await;
        let state = campaign_state(&api, &campaign.id).await;
        assert_eq!(state, "RUNNING", "kill {n} would come after the campaign");
        let gone = server.kill9().await;
        kill_times.push(gone);
        eprintln!("{:?}: kill {n} of {kills}", started.elapsed());
        tokio::time::sleep(random.millis(0, 1_000)).await;
        server = spec.start().await;
    }

    let (_, summary) = until_finished(&api, sim, &campaign).await;
    let findings = check_outcome(&db, &api, &campaign, devices, &summary).await;
    assert_eq!(
        findings.by_state.get("UPDATED").copied(),
        Some(devices),
        "every device updated: {:?}",
        findings.by_state
    );

    let ids: HashMap<String, DeviceId> = api
        .list("/devices")
        .await
        .into_iter()
        .map(|d| {
            let id: DeviceId = d["id"].as_str().expect("id").parse().expect("device id");
            (d["name"].as_str().expect("name").to_string(), id)
        })
        .collect();
    let heard = heard_by_device(&summary, &ids);
    let notices = check_notices(&findings.dispatches, &heard, &kill_times);
    let attempts: usize = findings.dispatches.values().map(Vec::len).sum();
    eprintln!(
        "drill: {devices} devices, {kills} kills, {attempts} attempts dispatched, {} history \
         entries; {} notices heard, {} attempts notified twice or more (after a kill), {} \
         attempts found by asking; {} reconnects; {:.1} s",
        findings.history_entries,
        notices.heard,
        notices.repeated,
        notices.unheard,
        summary["reconnects"],
        started.elapsed().as_secs_f64()
    );
    assert!(
        notices.problems.is_empty(),
        "{} notice problems; first: {:#?}",
        notices.problems.len(),
        &notices.problems[..notices.problems.len().min(10)]
    );
    drop(server);
    db.drop_schema().await;
}
