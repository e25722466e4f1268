//! What the reliability drills share: the `ota-server` binary started, killed with SIGKILL
//! and started again on the same ports; the `ota-sim` binary read event by event; the
//! drill's campaign; a reproducible random source. The campaign's run lives in [`campaign`],
//! the checks of its outcome in [`checks`].
#![allow(dead_code)] // each drill uses a part of it

pub mod broker;
pub mod campaign;
pub mod checks;

use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// How long a drill waits for one thing (a `listening` line, the end of a campaign) before
/// it gives up: a hang guard, not a timed assertion.
pub const PATIENCE: Duration = Duration::from_secs(600);

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// A number from the environment, or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A small xorshift generator: the drill's kill times, reproducible from the printed seed
/// (`OTA_DRILL_SEED` replays one).
pub struct Random(u64);

impl Random {
    /// Seeded from `OTA_DRILL_SEED` or the clock; the seed is printed.
    pub fn from_env() -> Self {
        let seed = env_number("OTA_DRILL_SEED", 0);
        let seed = if seed == 0 {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        } else {
            seed
        } | 1;
        eprintln!("drill seed {seed} (OTA_DRILL_SEED={seed} replays it)");
        Self(seed)
    }

    /// The next number.
    pub fn draw(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A duration between `from` and `to` milliseconds.
    pub fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.draw() % (to - from).max(1))
    }
}

/// How to start `ota-server`; after the first start its addresses are pinned so that a
/// restart comes back where the devices look for it.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// `--http-listen`.
    pub http_listen: String,
    /// `--mqtt-listen`; `None`: `--no-mqtt-endpoint`.
    pub mqtt_listen: Option<String>,
    /// Every other argument.
    pub args: Vec<String>,
}

/// A running `ota-server`.
pub struct Server {
    child: Child,
    /// `http://host:port`.
    pub http: String,
    /// `host:port` of the HTTP listener.
    pub http_addr: String,
    /// `host:port` of the MQTT endpoint, when it runs.
    pub mqtt: Option<String>,
}

impl ServerSpec {
    /// The server on PostgreSQL `url` (schema `schema`) with API key `key` and instance id
    /// `instance`, the MQTT endpoint on, ticking every 200 ms, logging warnings.
    pub fn new(url: &str, schema: &str, key: &str, instance: &str) -> Self {
        let args = [
            "--database-url",
            url,
            "--database-schema",
            schema,
            "--api-key",
            key,
            "--instance-id",
            instance,
            "--tick-interval",
            "200ms",
            "--log",
            "warn",
        ];
        Self {
            http_listen: "127.0.0.1:0".into(),
            mqtt_listen: Some("127.0.0.1:0".into()),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Starts the server and waits for its `listening` line; the first start pins the
    /// addresses it got. A restart whose port is briefly taken is tried again.
    pub async fn start(&mut self) -> Server {
        let mut last = String::new();
        for _ in 0..20 {
            match self.try_start().await {
                Ok(server) => {
                    self.http_listen = server.http_addr.clone();
                    if self.mqtt_listen.is_some() {
                        self.mqtt_listen = server.mqtt.clone();
                    }
                    return server;
                }
                Err(why) => {
                    last = why;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
        panic!("ota-server did not start: {last}");
    }

    async fn try_start(&self) -> Result<Server, String> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ota-server"));
        for (name, _) in std::env::vars() {
            if name.starts_with("OTA_") || name == "DATABASE_URL" {
                command.env_remove(name);
            }
        }
        command.args(["--http-listen", &self.http_listen]);
        match &self.mqtt_listen {
            Some(m) => command.args(["--mqtt-listen", m]),
            None => command.arg("--no-mqtt-endpoint"),
        };
        let mut child = command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let listening = tokio::time::timeout(PATIENCE, next_event(&mut lines, "listening"))
            .await
            .map_err(|_| "no listening line in time".to_string())?
            .ok_or_else(|| "the server ended before listening (port taken?)".to_string())?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http_addr = listening["http"]
            .as_str()
            .expect("http address")
            .to_string();
        Ok(Server {
            child,
            http: format!("http://{http_addr}"),
            http_addr,
            mqtt: listening["mqtt"].as_str().map(str::to_string),
        })
    }
}

impl Server {
    /// SIGKILL, reaped; the Unix milliseconds at which the process was gone.
    pub async fn kill9(mut self) -> u64 {
        self.child.start_kill().expect("SIGKILL the server");
        let _ = self.child.wait().await;
        unix_ms()
    }
}

/// Reads JSON lines until one with `"event": event`; `None` at the end of the output.
pub async fn next_event(lines: &mut Lines<BufReader<ChildStdout>>, event: &str) -> Option<Value> {
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if v["event"] == event {
                return Some(v);
            }
        }
    }
    None
}

/// A running `ota-sim` with `--json`.
pub struct Sim {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Sim {
    /// Starts `ota-sim` with `args`.
    pub fn start(args: &[String]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ota-sim"))
            .args(args)
            .args(["--json", "--per-device", "--no-progress"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start ota-sim");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Self { child, lines }
    }

    /// Waits for the line of `event`.
    pub async fn until(&mut self, event: &str) -> Value {
        tokio::time::timeout(PATIENCE, next_event(&mut self.lines, event))
            .await
            .unwrap_or_else(|_| panic!("ota-sim printed no {event:?} in time"))
            .unwrap_or_else(|| panic!("ota-sim ended before {event:?}"))
    }

    /// Waits for the summary and the exit.
    pub async fn summary(mut self) -> Value {
        let summary = self.until("summary").await;
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("ota-sim ends")
            .expect("ota-sim status");
        assert!(status.success(), "ota-sim: {status}");
        summary
    }
}

/// The drill's campaign over `profile`, one wave released at `per_second`, every
/// in-progress state timed out after `timeout` (a report lost with a connection cannot
/// leave a device hanging) and up to five attempts.
pub fn campaign_body(name: &str, package: &str, profile: &str, per_second: u64) -> Value {
    let timeout = 20_000;
    json!({
        "name": name,
        "package_id": package,
        "target": {"type": "selection", "profile": profile},
        "waves": [{"size": {"type": "rest"}}],
        "pacing": {"rate": {"count": per_second.max(1), "per_ms": 1000}},
        "policy": {
            "timeouts": {
                "INITIATED": timeout, "DOWNLOADING": timeout, "DOWNLOADED": timeout,
                "VERIFIED": timeout, "UPDATING": timeout
            },
            "retry": {"max_attempts": 5, "initial_backoff": 200,
                "multiplier": 2, "max_backoff": 2_000},
            "unanswered_attempts": 5
        }
    })
}

/// The simulator's arguments every drill shares: devices created in `profile` through the
/// management API at `http`, small chunks, a short reboot, until `campaign` has ended;
/// devices start at `OTA_DRILL_CONNECT_RATE` per second (2,000).
pub fn sim_args(http: &str, key: &str, profile: &str, campaign: &str) -> Vec<String> {
    let connect_rate = env_number("OTA_DRILL_CONNECT_RATE", 2000).to_string();
    [
        "--api",
        http,
        "--api-key",
        key,
        "--profile",
        profile,
        "--chunk-size",
        "8192",
        "--reboot-ms",
        "100",
        "--connect-rate",
        &connect_rate,
        "--reconnect-secs",
        "60",
        "--until-campaign",
        campaign,
        "--duration-secs",
        "580",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
