//! `ota-sim`, the device fleet simulator: [`run`] takes the parsed [`cli::Args`] and drives
//! the fleet until it is told to stop.
//!
//! - [`cli`]: the command line.
//! - [`fleet`]: devices created through the management API or read from a file; the
//!   campaign look-up behind `--until-campaign`.
//! - [`device`]: what a device does with an update, whatever the transport.
//! - [`mqtt_device`], [`http_device`]: the two transports.
//! - [`firmware`]: notices and checksum verification.
//! - [`failures`]: failure injection.
//! - [`report`]: the tally, progress bars, the summary.

pub mod cli;
pub mod device;
pub mod failures;
pub mod firmware;
pub mod fleet;
pub mod http_device;
pub mod mqtt_device;
pub mod report;

use cli::{parse_host_port, Args};
use device::{DeviceConfig, DeviceIdentity};
use fleet::{campaign_ended, read_devices, write_devices, Management, SimDevice, Transport};
use http_device::{HttpLink, HttpTarget};
use mqtt_device::{MqttLink, MqttTarget};
use report::{Progress, Status, Summary, Tally};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Where the simulator says what happens: JSON lines on stdout, or text on stderr.
#[derive(Clone, Copy, Debug)]
struct Output {
    json: bool,
}

impl Output {
    fn event(&self, event: Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{event}");
        } else {
            eprintln!("{}", text());
        }
    }
}

fn run_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("sim-{:x}", (nanos as u64) ^ u64::from(std::process::id()))
}

async fn fleet_of(args: &Args, management: Option<&Management>) -> Result<Vec<SimDevice>, String> {
    if let Some(path) = &args.devices_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let devices = read_devices(&text)?;
        for d in &devices {
            let addresses = match d.transport {
                Transport::Mqtt => &args.mqtt,
                Transport::Http => &args.http,
            };
            if addresses.is_empty() {
                return Err(format!(
                    "device {} talks {} but no --{} address is given",
                    d.name,
                    d.transport.name(),
                    d.transport.name()
                ));
            }
        }
        return Ok(devices);
    }
    let management = management.ok_or("creating devices needs --api and --api-key")?;
    let prefix = args.name_prefix.clone().unwrap_or_else(run_tag);
    management.ensure_profile(&args.profile).await?;
    let names = |tag: &str, n: usize| -> Vec<String> {
        (1..=n).map(|i| format!("{prefix}-{tag}{i:05}")).collect()
    };
    let mut devices = management
        .create_devices(
            &names("m", args.mqtt_devices),
            &args.profile,
            Transport::Mqtt,
        )
        .await?;
    devices.extend(
        management
            .create_devices(
                &names("h", args.http_devices),
                &args.profile,
                Transport::Http,
            )
            .await?,
    );
    if let Some(path) = &args.save_devices {
        write_devices(path, &devices)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(devices)
}

/// Starts the devices at `--connect-rate`; the handles come back when all are started (or
/// `stop` came first).
fn start_devices(
    args: &Args,
    devices: Vec<SimDevice>,
    client: reqwest::Client,
    tally: Arc<Tally>,
    stop: CancellationToken,
) -> Result<JoinHandle<Vec<JoinHandle<()>>>, String> {
    let failures = args.failures()?;
    let config = Arc::new(DeviceConfig {
        initial_title: args.initial_title.clone(),
        initial_version: args.initial_version.clone(),
        chunk_size: args.chunk_size,
        step: Duration::from_millis(args.step_ms),
        reboot: Duration::from_millis(args.reboot_ms),
        failures,
    });
    let response_timeout = Duration::from_secs(args.response_timeout_secs.max(1));
    let mqtt: Vec<MqttTarget> = args
        .mqtt
        .iter()
        .map(|a| {
            parse_host_port(a).map(|(host, port)| MqttTarget {
                host,
                port,
                response_timeout,
                keep_alive: Duration::from_secs(60),
                reconnect_for: Duration::from_secs(args.reconnect_secs.max(1)),
                bridge_root: args.bridge_root.clone(),
            })
        })
        .collect::<Result<_, _>>()?;
    let http: Vec<HttpTarget> = args
        .http
        .iter()
        .map(|base| HttpTarget {
            base: base.clone(),
            long_poll: Duration::from_secs(args.long_poll_secs.max(1)),
            response_timeout,
        })
        .collect();
    let gap = Duration::from_secs(1) / args.connect_rate.max(1);
    Ok(tokio::spawn(async move {
        let mut handles = Vec::with_capacity(devices.len());
        let (mut m, mut h) = (0usize, 0usize);
        let mut ticker = tokio::time::interval(gap);
        for (index, d) in devices.into_iter().enumerate() {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let id = DeviceIdentity {
                index,
                name: d.name.clone(),
                transport: d.transport.name(),
            };
            let (config, tally, stop) = (config.clone(), tally.clone(), stop.clone());
            handles.push(match d.transport {
                Transport::Mqtt => {
                    let target = mqtt[m % mqtt.len()].clone();
                    m += 1;
                    let link = MqttLink::new(target, &d.name, d.token, tally.clone());
                    tokio::spawn(device::run(link, id, config, tally, stop))
                }
                Transport::Http => {
                    let target = http[h % http.len()].clone();
                    h += 1;
                    let link = HttpLink::new(client.clone(), target, &d.token, tally.clone());
                    tokio::spawn(device::run(link, id, config, tally, stop))
                }
            });
        }
        handles
    }))
}

/// Runs the simulator until `stop` (or a stop condition of `args`); the summary at the end.
pub async fn run(args: Args, stop: CancellationToken) -> Result<Summary, String> {
    args.validate()?;
    let out = Output { json: args.json };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(args.response_timeout_secs.max(1)))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let management = match (&args.api, &args.api_key) {
        (Some(api), Some(key)) => Some(Management::new(
            client.clone(),
            &format!("{}{}", api.trim_end_matches('/'), args.api_prefix),
            key,
        )),
        _ => None,
    };
    let devices = fleet_of(&args, management.as_ref()).await?;
    let count = |t: Transport| devices.iter().filter(|d| d.transport == t).count();
    let (mqtt, http) = (count(Transport::Mqtt), count(Transport::Http));
    out.event(
        json!({"event": "devices", "mqtt": mqtt, "http": http,
            "created": args.devices_file.is_none()}),
        || format!("{} devices ({mqtt} MQTT, {http} HTTP)", devices.len()),
    );

    let tally = Tally::new(devices.len());
    let progress = Progress::start(tally.clone(), !args.json && !args.no_progress);
    let device_stop = CancellationToken::new();
    let starter = start_devices(&args, devices, client, tally.clone(), device_stop.clone())?;
    let watch = watch(&args, &tally, management.as_ref(), &stop, out).await;
    device_stop.cancel();
    let handles = starter.await.unwrap_or_default();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        for h in handles {
            let _ = h.await;
        }
    })
    .await;
    progress.finish();
    watch?;
    Ok(tally.summary(args.per_device))
}

/// Waits for a stop condition; announces when every device is connected.
async fn watch(
    args: &Args,
    tally: &Tally,
    management: Option<&Management>,
    stop: &CancellationToken,
    out: Output,
) -> Result<(), String> {
    let started = Instant::now();
    let mut announced = false;
    let mut last_look = Instant::now() - Duration::from_secs(10);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        if !announced && tally.count(Status::Connecting) == 0 {
            announced = true;
            out.event(
                json!({"event": "connected", "secs": started.elapsed().as_secs_f64()}),
                || {
                    format!(
                        "every device connected in {:.1} s",
                        started.elapsed().as_secs_f64()
                    )
                },
            );
        }
        if args
            .duration_secs
            .is_some_and(|d| started.elapsed() >= Duration::from_secs(d))
        {
            return Ok(());
        }
        if args.until_settled
            && tally.all_settled()
            && tally.idle_for() >= Duration::from_secs(args.idle_secs)
        {
            return Ok(());
        }
        if let (Some(campaign), Some(m)) = (&args.until_campaign, management) {
            if last_look.elapsed() >= Duration::from_secs(1) {
                last_look = Instant::now();
                let state = m.campaign_state(campaign).await;
                if let Ok(Some(state)) = &state {
                    if campaign_ended(state) {
                        out.event(json!({"event": "campaign_ended", "state": state}), || {
                            format!("campaign {campaign} is {state}")
                        });
                        settle(tally).await;
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// After the campaign ended: gives devices that sent their last report a moment to note
/// it themselves (the server may read a report before its sender returns).
async fn settle(tally: &Tally) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let busy = [Status::Downloading, Status::Verifying, Status::Updating]
            .iter()
            .map(|s| tally.count(*s))
            .sum::<u64>();
        if busy == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Prints the summary: a table, or one JSON line with `--json`.
pub fn print_summary(args: &Args, summary: &Summary) {
    if args.json {
        let mut value = serde_json::to_value(summary).unwrap_or_default();
        if let Value::Object(m) = &mut value {
            m.insert("event".into(), "summary".into());
        }
        println!("{value}");
    } else {
        print!("{}", summary.table());
    }
}
