//! The simulator against the library's routers and MQTT endpoint hosted in this process (a
//! memory store, the engine ticking every 100 ms): devices created through the management
//! API, a two-wave campaign, injected failures, and the simulator's tally compared with the
//! campaign statistics and each device's version on the server.

mod sim_support;

use ota_core::engine::{Ota, OtaConfig};
use ota_core::notifier::{Notice, Notifier, NotifyError};
use ota_core::{SystemClock, TenantId};
use ota_examples::sim::{self, cli::Args};
use ota_transport_http::management::{ApiKeys, Role};
use ota_transport_http::{
    device_router, management_router, DeviceApiOptions, HttpNotifier, ManagementOptions,
};
use ota_transport_mqtt::endpoint::{EndpointConfig, MqttEndpoint, MqttNotifier};
use serde_json::Value;
use sim_support::{assert_tally_matches, one_wave, two_waves, Api};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Hands each notice to the MQTT endpoint and to the HTTP long-polls.
struct Both(MqttNotifier, HttpNotifier);

#[ota_core::async_trait]
impl Notifier for Both {
    async fn notify(&self, notice: &Notice) -> Result<(), NotifyError> {
        self.0.notify(notice).await?;
        self.1.notify(notice).await
    }
}

struct InProcess {
    http: String,
    mqtt: String,
    key: String,
    stop: CancellationToken,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve() -> InProcess {
    let (mqtt_notifier, http_notifier) = (MqttNotifier::default(), HttpNotifier::new());
    let notifier = Arc::new(Both(mqtt_notifier.clone(), http_notifier.clone()));
    let ota = Ota::new(
        Arc::new(ota_core::memory::MemoryStore::new()),
        notifier,
        Arc::new(SystemClock),
        OtaConfig::default(),
    );
    let keys = ApiKeys::new();
    let key = keys.issue(TenantId::new(), "operator", Role::Admin);
    let app = management_router(ota.clone(), Arc::new(keys), ManagementOptions::default()).merge(
        device_router(ota.clone(), DeviceApiOptions::new(http_notifier)),
    );
    let stop = CancellationToken::new();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_addr = http.local_addr().unwrap();
    let s = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(http, app)
            .with_graceful_shutdown(async move { s.cancelled().await })
            .await;
    });
    let mqtt = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mqtt_addr = mqtt.local_addr().unwrap();
    let endpoint = MqttEndpoint::new(ota.clone(), &mqtt_notifier, EndpointConfig::default());
    let s = stop.clone();
    tokio::spawn(async move {
        let _ = endpoint
            .serve(mqtt, async move { s.cancelled().await })
            .await;
    });
    let s = stop.clone();
    tokio::spawn(async move {
        while !s.is_cancelled() {
            let _ = ota.tick().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    InProcess {
        http: format!("http://{http_addr}"),
        mqtt: mqtt_addr.to_string(),
        key,
        stop,
    }
}

fn args(server: &InProcess, extra: &[&str]) -> Args {
    let mut all = vec![
        "ota-sim".to_string(),
        "--api".into(),
        server.http.clone(),
        "--api-key".into(),
        server.key.clone(),
        "--mqtt".into(),
        server.mqtt.clone(),
        "--http".into(),
        server.http.clone(),
        "--json".into(),
        "--per-device".into(),
        "--no-progress".into(),
        "--profile".into(),
        "fleet".into(),
        "--chunk-size".into(),
        "4096".into(),
        "--reboot-ms".into(),
        "50".into(),
        "--long-poll-secs".into(),
        "2".into(),
        "--duration-secs".into(),
        "110".into(),
    ];
    all.extend(extra.iter().map(|s| s.to_string()));
    <Args as clap::Parser>::try_parse_from(all).expect("arguments")
}

/// Waits until `n` devices report a running version (the simulator's devices are up).
async fn wait_for_devices(api: &Api, n: usize) {
    for _ in 0..600 {
        let versions = api.versions().await;
        if versions.values().filter(|v| v.is_some()).count() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the simulated devices did not come up");
}

/// Runs the simulator against `server` with `extra` arguments, starting the campaign once
/// its `devices` are up; the summary as JSON.
async fn simulate(
    server: &InProcess,
    devices: usize,
    extra: &[&str],
    waves: Value,
    max_attempts: u32,
) -> (Api, String, Value) {
    let api = Api::new(&server.http, &server.key);
    let profile = api.profile("fleet").await;
    let package = api.upload("sim-firmware", "2.0.0", 40 * 1024 + 123).await;
    let mut all = extra.to_vec();
    all.extend(["--until-campaign", "rollout"]);
    let args = args(server, &all);
    let stop = CancellationToken::new();
    let run = tokio::spawn(sim::run(args, stop.clone()));
    wait_for_devices(&api, devices).await;
    let campaign = api
        .campaign(
            "rollout",
            &package,
            &profile,
            waves,
            max_attempts,
            // Stalls wait this out; a 40 KiB download takes far less even on a busy machine.
            Duration::from_secs(4),
        )
        .await;
    let summary = run.await.expect("simulator task").expect("simulator run");
    (api, campaign, serde_json::to_value(&summary).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_fleet_with_injected_failures_ends_as_the_server_counts_it() {
    let server = serve().await;
    let (api, campaign, summary) = simulate(
        &server,
        40,
        &[
            "--mqtt-devices",
            "30",
            "--http-devices",
            "10",
            "--checksum-failures",
            "10",
            "--stalls",
            "5",
            "--drops",
            "10",
            "--seed",
            "3",
        ],
        two_waves(),
        3,
    )
    .await;
    let c = api.get(&format!("/campaigns/{campaign}")).await;
    assert_eq!(c["state"], "FINISHED", "{c}");
    assert_tally_matches(&api, &campaign, &summary).await;
    // Failures were injected and retried: more attempts than devices.
    let injected = &summary["injected"];
    let sum: u64 = ["checksum", "stall", "drop"]
        .iter()
        .map(|k| injected[k].as_u64().unwrap())
        .sum();
    assert!(sum > 0, "{summary}");
    assert!(summary["attempts"].as_u64().unwrap() > 40, "{summary}");
    assert!(
        summary["cards"]["successful"].as_u64().unwrap() > 0,
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_whose_every_attempt_fails_end_failed_on_both_sides() {
    let server = serve().await;
    let (api, campaign, summary) = simulate(
        &server,
        6,
        &[
            "--mqtt-devices",
            "3",
            "--http-devices",
            "3",
            "--checksum-failures",
            "50",
            "--stalls",
            "50",
        ],
        one_wave(),
        2,
    )
    .await;
    assert_eq!(summary["cards"]["failed"], 6, "{summary}");
    assert_eq!(summary["attempts"], 12, "two attempts each: {summary}");
    assert_tally_matches(&api, &campaign, &summary).await;
    let versions = api.versions().await;
    assert!(
        versions.values().all(|v| v.as_deref() == Some("1.0.0")),
        "{versions:?}"
    );
}
