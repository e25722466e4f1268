//! The command line of `ota-sim`.

use super::failures::FailurePlan;
use clap::Parser;
use std::path::PathBuf;

/// `ota-sim`: a fleet of simulated devices that update their firmware like real ones.
///
/// Creates devices through the management API (or takes existing ones from a file),
/// connects them over the MQTT endpoint and the device HTTP API, and answers every update:
/// attributes, chunked download, checksum, every state, reboot, the new version. Failures
/// are injected on demand. Ends on Ctrl-C, after `--duration`, when `--until-campaign` has
/// ended or, with `--until-settled`, once every device is done and quiet.
#[derive(Clone, Debug, Parser)]
#[command(name = "ota-sim", version, about, long_about = None)]
pub struct Args {
    /// The server's HTTP address, for the management API (creating devices, watching a
    /// campaign): `http://127.0.0.1:8080`.
    #[arg(long, env = "OTA_API_URL")]
    pub api: Option<String>,

    /// API key of the management API (operator or admin role).
    #[arg(long, env = "OTA_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Where the management API lives on the server.
    #[arg(long, default_value = "/api/ota/v1")]
    pub api_prefix: String,

    /// MQTT endpoint `host:port`; repeat to spread MQTT devices over several servers.
    #[arg(long = "mqtt", value_name = "HOST:PORT")]
    pub mqtt: Vec<String>,

    /// Device HTTP API base URL (`http://127.0.0.1:8080`); repeat to spread HTTP devices.
    #[arg(long = "http", value_name = "URL")]
    pub http: Vec<String>,

    /// Devices to create that talk MQTT.
    #[arg(long, default_value_t = 0)]
    pub mqtt_devices: usize,

    /// Devices to create that talk HTTP.
    #[arg(long, default_value_t = 0)]
    pub http_devices: usize,

    /// Profile of the created devices (created when missing).
    #[arg(long, default_value = "sim")]
    pub profile: String,

    /// Names of created devices start with this (then `-m00001` or `-h00001`). Default:
    /// `sim-` and a tag of the run.
    #[arg(long)]
    pub name_prefix: Option<String>,

    /// Use existing devices instead of creating them: `name,token,transport` lines.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["mqtt_devices", "http_devices"])]
    pub devices_file: Option<PathBuf>,

    /// Write the created devices there (in the `--devices-file` form).
    #[arg(long, value_name = "FILE")]
    pub save_devices: Option<PathBuf>,

    /// Firmware title devices report running at start.
    #[arg(long, default_value = "sim-firmware")]
    pub initial_title: String,

    /// Firmware version devices report running at start.
    #[arg(long, default_value = "1.0.0")]
    pub initial_version: String,

    /// Bytes per chunk request (HTTP: 0 takes the whole file in one request).
    #[arg(long, default_value_t = 16 * 1024)]
    pub chunk_size: usize,

    /// Pause between two reported states, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub step_ms: u64,

    /// How long the simulated reboot takes, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub reboot_ms: u64,

    /// Percentage of attempts whose downloaded content fails its checksum.
    #[arg(long, default_value_t = 0.0)]
    pub checksum_failures: f64,

    /// Percentage of attempts that stall halfway (the server's timeout must catch them).
    #[arg(long, default_value_t = 0.0)]
    pub stalls: f64,

    /// Percentage of attempts whose connection drops halfway (the device resumes).
    #[arg(long, default_value_t = 0.0)]
    pub drops: f64,

    /// Seed of the failure draw (the same seed injects the same failures).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Devices started per second.
    #[arg(long, default_value_t = 500)]
    pub connect_rate: u32,

    /// Long-poll wait of HTTP devices, in seconds.
    #[arg(long, default_value_t = 20)]
    pub long_poll_secs: u64,

    /// How long a device waits for an answer before it calls the connection lost, seconds.
    #[arg(long, default_value_t = 15)]
    pub response_timeout_secs: u64,

    /// How long an MQTT device keeps trying to connect again after losing its connection
    /// (a server or broker restart), seconds.
    #[arg(long, default_value_t = 30)]
    pub reconnect_secs: u64,

    /// Bridge mode: MQTT devices talk to a broker in front of the server's bridge, on
    /// device-scoped topics under this root (`v1/devices`: `v1/devices/{token}/telemetry`),
    /// with the token as user name and password.
    #[arg(long, value_name = "ROOT")]
    pub bridge_root: Option<String>,

    /// Stop when this campaign (id or name) has ended (needs `--api`).
    #[arg(long, value_name = "CAMPAIGN")]
    pub until_campaign: Option<String>,

    /// Stop once every device is updated, failed or silent and nothing happened for
    /// `--idle-secs`.
    #[arg(long)]
    pub until_settled: bool,

    /// See `--until-settled`.
    #[arg(long, default_value_t = 10)]
    pub idle_secs: u64,

    /// Stop after this many seconds at the latest.
    #[arg(long)]
    pub duration_secs: Option<u64>,

    /// JSON lines on standard output (events, then the summary) instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Put every device's final status and version in the summary.
    #[arg(long)]
    pub per_device: bool,

    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

impl Args {
    /// The failure plan, checked.
    pub fn failures(&self) -> Result<FailurePlan, String> {
        let plan = FailurePlan {
            checksum_percent: self.checksum_failures,
            stall_percent: self.stalls,
            drop_percent: self.drops,
            seed: self.seed,
        };
        plan.validate()?;
        Ok(plan)
    }

    /// Checks what clap cannot: every transport in use has an address, and the API is
    /// given when it is needed.
    pub fn validate(&self) -> Result<(), String> {
        self.failures()?;
        let creating = self.devices_file.is_none();
        if creating && self.mqtt_devices + self.http_devices == 0 {
            return Err(
                "no devices: give --mqtt-devices and/or --http-devices, or --devices-file".into(),
            );
        }
        if (creating || self.until_campaign.is_some())
            && (self.api.is_none() || self.api_key.is_none())
        {
            return Err("creating devices and --until-campaign need --api and --api-key".into());
        }
        if self.mqtt_devices > 0 && self.mqtt.is_empty() {
            return Err("--mqtt-devices needs at least one --mqtt HOST:PORT".into());
        }
        if self.http_devices > 0 && self.http.is_empty() {
            return Err("--http-devices needs at least one --http URL".into());
        }
        if self.chunk_size > 16 * 1024 * 1024 {
            return Err("--chunk-size is over 16 MiB".into());
        }
        Ok(())
    }
}

/// Splits `host:port` (an `mqtt://` or `tcp://` prefix is allowed).
pub fn parse_host_port(text: &str) -> Result<(String, u16), String> {
    let rest = text
        .strip_prefix("mqtt://")
        .or_else(|| text.strip_prefix("tcp://"))
        .unwrap_or(text)
        .trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not HOST:PORT"))?;
    let port = port
        .parse()
        .map_err(|_| format!("{text:?}: {port:?} is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        assert_eq!(
            parse_host_port("127.0.0.1:1884").unwrap(),
            ("127.0.0.1".into(), 1884)
        );
        assert_eq!(parse_host_port("mqtt://h:1").unwrap(), ("h".into(), 1));
        assert_eq!(parse_host_port("[::1]:1884").unwrap(), ("::1".into(), 1884));
        assert!(parse_host_port("nohost").is_err());
        assert!(parse_host_port("h:port").is_err());
    }

    #[test]
    fn arguments_are_checked() {
        let args = |extra: &[&str]| {
            let mut all = vec!["ota-sim"];
            all.extend_from_slice(extra);
            Args::try_parse_from(all).map_err(|e| e.to_string())
        };
        let ok = args(&[
            "--api",
            "http://h",
            "--api-key",
            "k",
            "--mqtt",
            "h:1",
            "--mqtt-devices",
            "3",
        ]);
        assert!(ok.unwrap().validate().is_ok());
        let no_mqtt = args(&["--api", "http://h", "--api-key", "k", "--mqtt-devices", "3"]);
        assert!(no_mqtt.unwrap().validate().unwrap_err().contains("--mqtt"));
        let no_api = args(&["--mqtt", "h:1", "--mqtt-devices", "3"]);
        assert!(no_api.unwrap().validate().unwrap_err().contains("--api"));
        let bad = args(&[
            "--api",
            "http://h",
            "--api-key",
            "k",
            "--http",
            "http://h",
            "--http-devices",
            "1",
            "--stalls",
            "120",
        ]);
        assert!(bad.unwrap().validate().is_err());
        assert!(args(&["--devices-file", "f", "--mqtt-devices", "2"]).is_err());
    }
}
