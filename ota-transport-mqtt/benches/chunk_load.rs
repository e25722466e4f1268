//! Load benchmark: DEVICES concurrent devices each download a PACKAGE_KIB package in CHUNK
//! byte chunks, one request in flight per device, QoS 1 both ways, TCP_NODELAY everywhere.
//!
//! - endpoint: the devices connect to the MQTT endpoint (memory store);
//! - bridge: the devices connect to a Mosquitto started here, the bridge serves them;
//! - relay (reference): the same devices and message sizes through the same Mosquitto,
//!   answered by a plain rumqttc responder instead of the library.
//!
//! Servers (endpoint, bridge, responder, Mosquitto) run as child processes pinned to core 0
//! (`taskset`), the load to core 1. Each mode runs RUNS times; the median run is reported
//! with p50/p99 chunk round trips. Environment: OTA_BENCH_DEVICES (1000),
//! OTA_BENCH_PACKAGE_KIB (256), OTA_BENCH_CHUNK (4096), OTA_BENCH_RUNS (3),
//! OTA_BENCH_MODES (endpoint,bridge,relay), OTA_BENCH_SERVER_THREADS (1: the servers written
//! in Rust run one tokio worker, on the one core they are pinned to, as Mosquitto runs one
//! thread).
//!
//! `cargo bench -p ota-transport-mqtt --bench chunk_load`

use bytes::Bytes;
use ota_core::engine::{NewPackage, Ota, OtaConfig};
use ota_core::{AssignmentTarget, ManualClock, PackageKind, TenantId};
use ota_transport_mqtt::bridge::{BridgeConfig, MqttBridge};
use ota_transport_mqtt::endpoint::{EndpointConfig, MqttEndpoint, MqttNotifier};
use ota_transport_mqtt::protocol::ProtocolLimits;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn token(i: usize) -> String {
    format!("bench-{i}")
}

fn network() -> rumqttc::NetworkOptions {
    let mut n = rumqttc::NetworkOptions::new();
    n.set_tcp_nodelay(true);
    n
}

fn options(id: &str, port: u16, user: Option<&str>) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(60));
    o.set_max_packet_size(Some(1024 * 1024));
    o.set_network_options(network());
    if let Some(user) = user {
        o.set_credentials(user, "");
    }
    o
}

fn limits() -> ProtocolLimits {
    let mut l = ProtocolLimits::default();
    l.messages_per_second = None;
    l
}

/// Server role: an engine over `store` with DEVICES devices, all assigned one package.
async fn engine(
    store: Arc<ota_core::memory::MemoryStore>,
    notifier: Arc<dyn ota_core::notifier::Notifier>,
) -> Ota {
    let devices = env("OTA_BENCH_DEVICES", 1000);
    let size = env("OTA_BENCH_PACKAGE_KIB", 256) * 1024;
    let ota = Ota::new(
        store,
        notifier,
        Arc::new(ManualClock::at_epoch_2024()),
        OtaConfig::default(),
    );
    let tenant = TenantId::new();
    let profile = ota
        .create_profile("bench", tenant, "p")
        .await
        .expect("profile");
    let list: Vec<_> = (0..devices)
        .map(|i| ota.new_device(tenant, &token(i), profile.id, BTreeSet::new(), &token(i)))
        .collect();
    ota.create_devices("bench", &list).await.expect("devices");
    let content: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let package = ota
        .upload_package(
            "bench",
            NewPackage::new(tenant, PackageKind::Firmware, "fw", "1"),
            Box::pin(futures_util::stream::iter([Ok::<
                _,
                ota_core::store::StoreError,
            >(Bytes::from(
                content,
            ))])),
        )
        .await
        .expect("package");
    ota.assign(
        "bench",
        tenant,
        AssignmentTarget::Profile(profile.id),
        package.id,
    )
    .await
    .expect("assign");
    ota.tick().await.expect("tick");
    ota
}

async fn serve_endpoint() {
    let notifier = MqttNotifier::default();
    let store = Arc::new(ota_core::memory::MemoryStore::new());
    let ota = engine(store, Arc::new(notifier.clone())).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    println!("READY {}", listener.local_addr().expect("addr").port());
    let mut config = EndpointConfig::default();
    config.limits = limits();
    MqttEndpoint::new(ota, &notifier, config)
        .serve(listener, std::future::pending())
        .await
        .expect("serve");
}

async fn serve_bridge(port: u16) {
    let mut config = BridgeConfig::new("127.0.0.1", port, "ota-bench-bridge");
    config.limits = limits();
    let store = Arc::new(ota_core::memory::MemoryStore::new());
    let (bridge, notifier) = MqttBridge::new(config, store.clone());
    let ota = engine(store, Arc::new(notifier)).await;
    println!("READY {port}");
    bridge.run(ota, std::future::pending()).await;
}

/// Reference server: a plain rumqttc client answering each request with CHUNK bytes,
/// publishing from a task other than the one polling.
async fn serve_relay(port: u16) {
    let chunk = env("OTA_BENCH_CHUNK", 4096);
    let (client, mut eventloop) = AsyncClient::new(options("bench-responder", port, None), 4096);
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let publisher = client.clone();
    tokio::spawn(async move {
        let payload = Bytes::from(vec![7u8; chunk]);
        while let Some(topic) = rx.recv().await {
            let _ = publisher
                .publish(topic, QoS::AtLeastOnce, false, payload.clone())
                .await;
        }
    });
    let mut ready = false;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let c = client.clone();
                tokio::spawn(async move {
                    let _ = c
                        .subscribe("relay/+/request/+/chunk/+", QoS::AtLeastOnce)
                        .await;
                });
            }
            Ok(Event::Incoming(Packet::SubAck(_))) if !ready => {
                ready = true;
                println!("READY {port}");
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let topic = String::from_utf8_lossy(&p.topic).replace("/request/", "/response/");
                let _ = tx.send(topic);
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("responder: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Starts `args` under `taskset -c 0` and waits for its READY line; returns the port.
fn spawn_pinned(program: &str, args: &[String]) -> (Child, Option<u16>) {
    let mut child = Command::new("taskset")
        .arg("-c")
        .arg("0")
        .arg(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("taskset");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let port = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("READY ").and_then(|p| p.trim().parse().ok()));
    std::thread::spawn(move || for _ in lines {});
    (child, port)
}

struct Mosquitto {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn mosquitto() -> Mosquitto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let dir = std::env::temp_dir().join(format!("ota-bench-mosquitto-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("mosquitto.conf");
    std::fs::write(
        &config,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             set_tcp_nodelay true\nmax_inflight_messages 100\nmax_queued_messages 100000\n\
             message_size_limit 1048576\nuser root\nmax_connections -1\n"
        ),
    )
    .expect("config");
    let child = Command::new("taskset")
        .args(["-c", "0", "mosquitto", "-c"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Mosquitto { child, port, dir }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Endpoint,
    Bridge,
    Relay,
}

impl Mode {
    fn request(self, device: &str, rid: &str, n: usize) -> String {
        match self {
            Mode::Endpoint => format!("v2/fw/request/{rid}/chunk/{n}"),
            Mode::Bridge => format!("v1/devices/{device}/v2/fw/request/{rid}/chunk/{n}"),
            Mode::Relay => format!("relay/{device}/request/{rid}/chunk/{n}"),
        }
    }
    fn response_filter(self, device: &str) -> Option<String> {
        match self {
            // Answers are addressed to the connection: no subscription needed.
            Mode::Endpoint => None,
            Mode::Bridge => Some(format!("v1/devices/{device}/v2/fw/response/+/chunk/+")),
            Mode::Relay => Some(format!("relay/{device}/response/+/chunk/+")),
        }
    }
}

struct RunResult {
    seconds: f64,
    chunks: usize,
    rtts_us: Vec<u64>,
}

/// One device: connect, subscribe, wait for the start, download every chunk one at a time.
async fn device(
    mode: Mode,
    port: u16,
    i: usize,
    chunks: usize,
    chunk: usize,
    ready: mpsc::Sender<()>,
    mut start: tokio::sync::watch::Receiver<bool>,
) -> Vec<u64> {
    let name = token(i);
    let user = (mode == Mode::Endpoint).then_some(name.as_str());
    let (client, mut eventloop) = AsyncClient::new(
        options(&format!("load-{i}-{}", std::process::id()), port, user),
        64,
    );
    let (msg_tx, mut msg_rx) = mpsc::unbounded_channel::<()>();
    let (sub_tx, mut sub_rx) = mpsc::unbounded_channel::<()>();
    let poller = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(_))) => {
                    let _ = msg_tx.send(());
                }
                Ok(Event::Incoming(Packet::SubAck(_) | Packet::ConnAck(_))) => {
                    let _ = sub_tx.send(());
                }
                Ok(_) => {}
                // Reconnects are rumqttc's: keep polling.
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    let _ = sub_rx.recv().await; // CONNACK
    if let Some(filter) = mode.response_filter(&name) {
        client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        let _ = sub_rx.recv().await;
    }
    let _ = ready.send(()).await;
    let _ = start.wait_for(|s| *s).await;
    let mut rtts = Vec::with_capacity(chunks);
    let size = chunk.to_string();
    for n in 0..chunks {
        let sent = Instant::now();
        client
            .publish(
                mode.request(&name, "1", n),
                QoS::AtLeastOnce,
                false,
                size.clone(),
            )
            .await
            .expect("publish");
        msg_rx.recv().await.expect("answer");
        rtts.push(sent.elapsed().as_micros() as u64);
    }
    let _ = client.disconnect().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    poller.abort();
    rtts
}

async fn run_load(mode: Mode, port: u16) -> RunResult {
    let devices = env("OTA_BENCH_DEVICES", 1000);
    let chunk = env("OTA_BENCH_CHUNK", 4096);
    let chunks = env("OTA_BENCH_PACKAGE_KIB", 256) * 1024 / chunk;
    let (ready_tx, mut ready_rx) = mpsc::channel(devices);
    let (start_tx, start_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::with_capacity(devices);
    for i in 0..devices {
        tasks.push(tokio::spawn(device(
            mode,
            port,
            i,
            chunks,
            chunk,
            ready_tx.clone(),
            start_rx.clone(),
        )));
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for _ in 0..devices {
        ready_rx.recv().await.expect("ready");
    }
    // Give the servers' subscriptions a moment to settle after the last SUBACK.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let _ = start_tx.send(true);
    let mut rtts_us = Vec::with_capacity(devices * chunks);
    for t in tasks {
        rtts_us.extend(t.await.expect("device"));
    }
    RunResult {
        seconds: started.elapsed().as_secs_f64(),
        chunks: devices * chunks,
        rtts_us,
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let serving = args.get(1).is_some_and(|a| a.starts_with("--serve-"));
    // A server pinned to one core runs one worker thread (OTA_BENCH_SERVER_THREADS): two
    // workers on one core only hand tasks to each other.
    let threads = env("OTA_BENCH_SERVER_THREADS", 1).max(1);
    let runtime = if serving && threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    } else if serving {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .expect("runtime")
    } else {
        tokio::runtime::Runtime::new().expect("runtime")
    };
    match args.get(1).map(String::as_str) {
        Some("--serve-endpoint") => return runtime.block_on(serve_endpoint()),
        Some("--serve-bridge") => {
            let port = args[2].parse().expect("port");
            return runtime.block_on(serve_bridge(port));
        }
        Some("--serve-relay") => {
            let port = args[2].parse().expect("port");
            return runtime.block_on(serve_relay(port));
        }
        _ => {}
    }
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --benches` and test listers (`--list`): nothing to do here.
        return;
    }
    // The load on core 1, servers on core 0.
    let _ = Command::new("taskset")
        .args(["-a", "-p", "-c", "1", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status();
    let exe = std::env::current_exe().expect("exe");
    let exe = exe.to_str().expect("path");
    let runs = env("OTA_BENCH_RUNS", 3).max(1);
    let modes = std::env::var("OTA_BENCH_MODES").unwrap_or_else(|_| "endpoint,bridge,relay".into());
    println!(
        "devices {}, package {} KiB, chunk {} B, runs {runs}",
        env("OTA_BENCH_DEVICES", 1000),
        env("OTA_BENCH_PACKAGE_KIB", 256),
        env("OTA_BENCH_CHUNK", 4096)
    );
    for mode in modes.split(',') {
        let mode = match mode.trim() {
            "endpoint" => Mode::Endpoint,
            "bridge" => Mode::Bridge,
            "relay" => Mode::Relay,
            other => panic!("unknown mode {other}"),
        };
        let mut results = Vec::new();
        for _ in 0..runs {
            let broker = (mode != Mode::Endpoint).then(mosquitto);
            let (mut server, port) = match mode {
                Mode::Endpoint => spawn_pinned(exe, &["--serve-endpoint".into()]),
                Mode::Bridge => spawn_pinned(
                    exe,
                    &[
                        "--serve-bridge".into(),
                        broker.as_ref().map(|b| b.port).unwrap_or(0).to_string(),
                    ],
                ),
                Mode::Relay => spawn_pinned(
                    exe,
                    &[
                        "--serve-relay".into(),
                        broker.as_ref().map(|b| b.port).unwrap_or(0).to_string(),
                    ],
                ),
            };
            let port = port.expect("server ready");
            let device_port = broker.as_ref().map(|b| b.port).unwrap_or(port);
            let mut result = runtime.block_on(run_load(mode, device_port));
            let _ = server.kill();
            let _ = server.wait();
            drop(broker);
            result.rtts_us.sort_unstable();
            println!(
                "{mode:?}: {:.2} s, {:.0} chunks/s, p50 {:.2} ms, p99 {:.2} ms",
                result.seconds,
                result.chunks as f64 / result.seconds,
                percentile(&result.rtts_us, 0.5),
                percentile(&result.rtts_us, 0.99)
            );
            results.push(result);
        }
        results.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        let median = &results[results.len() / 2];
        println!(
            "MEDIAN {mode:?}: {:.0} chunks/s, p50 {:.2} ms, p99 {:.2} ms",
            median.chunks as f64 / median.seconds,
            percentile(&median.rtts_us, 0.5),
            percentile(&median.rtts_us, 0.99)
        );
    }
}
