//! The server's configuration: command-line flags, each with an environment variable.

use clap::Parser;
use ota_core::engine::{RetentionPolicy, RetentionRule};
use ota_core::pacing::{Pacing, Rate};
use ota_core::TenantId;
use std::net::SocketAddr;
use std::time::Duration;

/// The tenant the server's API keys act in unless `--tenant` says otherwise.
pub const DEFAULT_TENANT: &str = "00000000-0000-0000-0000-000000000001";

/// `ota-server`: the OTA library as a server (management API, device HTTP API, MQTT).
#[derive(Clone, Debug, Parser)]
#[command(name = "ota-server", version, about, long_about = None)]
pub struct Config {
    /// Address of the HTTP listener (management API, device API, /metrics, /healthz,
    /// /readyz, the dashboard at /). Port 0 picks a free port.
    #[arg(long, env = "OTA_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
    pub http_listen: SocketAddr,

    /// Address of the MQTT endpoint devices connect to (MQTT 3.1.1 and 5). Port 0 picks a
    /// free port. The default leaves 1883 to a broker running beside the server.
    #[arg(long, env = "OTA_MQTT_LISTEN", default_value = "127.0.0.1:1884")]
    pub mqtt_listen: SocketAddr,

    /// Serve no MQTT endpoint (devices use HTTP or the bridge).
    #[arg(long, env = "OTA_NO_MQTT_ENDPOINT")]
    pub no_mqtt_endpoint: bool,

    /// Also serve devices through this broker: `mqtt://[user[:password]@]host[:port]`.
    #[arg(long, env = "OTA_MQTT_BRIDGE_URL")]
    pub mqtt_bridge_url: Option<String>,

    /// The bridge's MQTT client id (unique per instance). Default: `ota-server-<instance id>`.
    #[arg(long, env = "OTA_MQTT_BRIDGE_CLIENT_ID")]
    pub mqtt_bridge_client_id: Option<String>,

    /// The bridge's shared subscription group (`$share/<group>/...`); empty: plain
    /// subscriptions (one instance only).
    #[arg(long, env = "OTA_MQTT_BRIDGE_SHARE_GROUP", default_value = "ota")]
    pub mqtt_bridge_share_group: String,

    /// PostgreSQL URL (`postgres://user@host:port/db`). Unset: an in-memory store that
    /// keeps nothing when the server stops.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// PostgreSQL schema to keep the tables in (created when missing). Default: the
    /// connection's search path (usually `public`).
    #[arg(long, env = "OTA_DATABASE_SCHEMA")]
    pub database_schema: Option<String>,

    /// Most PostgreSQL connections.
    #[arg(long, env = "OTA_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// This instance's id, the owner of its claims: unique among the instances sharing a
    /// database and stable across restarts (a restarted instance then takes its unfinished
    /// work back at once). Default: a fresh id per start.
    #[arg(long, env = "OTA_INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// How often the engine ticks (releases, timeouts, retries, schedules): `500ms`, `1s`.
    #[arg(long, env = "OTA_TICK_INTERVAL", default_value = "500ms", value_parser = parse_duration)]
    pub tick_interval: Duration,

    /// Global release pace across campaigns and instances: `COUNT/PERIOD` (`100/1m`,
    /// `10/1s`). Default: unlimited.
    #[arg(long, env = "OTA_PACE", value_parser = parse_rate)]
    pub pace: Option<Rate>,

    /// Most devices updating at once, across campaigns and instances. Default: unlimited.
    #[arg(long, env = "OTA_MAX_IN_PROGRESS")]
    pub max_in_progress: Option<u32>,

    /// The tenant of the server's API keys.
    #[arg(long, env = "OTA_TENANT", default_value = DEFAULT_TENANT)]
    pub tenant: TenantId,

    /// An admin API key to accept (repeat the flag, or separate with commas in the
    /// variable); `sha256:<hex>` gives a key by its SHA-256 only. With none configured and
    /// none stored, the server makes one and prints it once.
    #[arg(long = "api-key", env = "OTA_API_KEY", value_delimiter = ',')]
    pub api_keys: Vec<String>,

    /// Where the management API lives.
    #[arg(long, env = "OTA_MANAGEMENT_PREFIX", default_value = "/api/ota/v1")]
    pub management_prefix: String,

    /// Largest package upload in bytes.
    #[arg(long, env = "OTA_MAX_UPLOAD_SIZE", default_value_t = 4 * 1024 * 1024 * 1024)]
    pub max_upload_size: u64,

    /// Per-device request rate limit of the device HTTP API, ThingsBoard's syntax
    /// (`capacity:seconds` pairs, `20:1,600:60`). Default: none.
    #[arg(long, env = "OTA_DEVICE_RATE_LIMIT")]
    pub device_rate_limit: Option<String>,

    /// How long the device HTTP API remembers the device of an access token. Longer saves a
    /// store lookup per request (an idle device comes back every long-poll period); the
    /// price is that a rotated token or a deleted device keeps working on this instance up
    /// to this long. `0s`: every request looks its token up.
    #[arg(long, env = "OTA_DEVICE_TOKEN_CACHE_TTL", default_value = "60s", value_parser = parse_duration)]
    pub device_token_cache_ttl: Duration,

    /// How long package records read from the store are remembered (they never change; a
    /// package deleted through this instance is forgotten at once, one deleted through
    /// another instance sharing the database is answered up to this long). `0s`: not at all.
    #[arg(long, env = "OTA_PACKAGE_CACHE_TTL", default_value = "60s", value_parser = parse_duration)]
    pub package_cache_ttl: Duration,

    /// Most HTTP connections at once; more are answered 503 and closed.
    #[arg(long, env = "OTA_HTTP_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub http_max_connections: usize,

    /// How long an HTTP client may take to send a request's headers (then it is
    /// disconnected); also how long an idle kept-alive connection stays open.
    #[arg(long, env = "OTA_HTTP_HEADER_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub http_header_timeout: Duration,

    /// Longest pause while an HTTP request body arrives (then 408 and the connection is
    /// closed).
    #[arg(long, env = "OTA_HTTP_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub http_body_timeout: Duration,

    /// Most MQTT connections at once.
    #[arg(long, env = "OTA_MQTT_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub mqtt_max_connections: usize,

    /// How long a new MQTT connection may take to send CONNECT (then it is closed).
    #[arg(long, env = "OTA_MQTT_CONNECT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub mqtt_connect_timeout: Duration,

    /// Largest MQTT payload a device may send, in bytes.
    #[arg(long, env = "OTA_MQTT_MAX_PAYLOAD", default_value_t = 64 * 1024)]
    pub mqtt_max_payload: u32,

    /// Largest chunk a device may ask for over MQTT, in bytes.
    #[arg(long, env = "OTA_MQTT_MAX_CHUNK", default_value_t = 64 * 1024)]
    pub mqtt_max_chunk: u32,

    /// Messages per second one MQTT device may send (0: unlimited).
    #[arg(long, env = "OTA_MQTT_MESSAGES_PER_SECOND", default_value_t = 1000)]
    pub mqtt_messages_per_second: u32,

    /// How long shutdown waits for requests and connections in flight.
    #[arg(long, env = "OTA_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// How often the updates-per-state gauges of /metrics are counted from the store.
    #[arg(long, env = "OTA_METRICS_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub metrics_interval: Duration,

    /// Deletes update history entries older than this (`90d`, `12h`), in bounded batches
    /// every `--retention-interval`. Default: kept forever.
    #[arg(long, env = "OTA_HISTORY_RETENTION", value_parser = parse_duration)]
    pub history_retention: Option<Duration>,

    /// Deletes audit entries older than this (`365d`), like `--history-retention`. Default:
    /// kept forever.
    #[arg(long, env = "OTA_AUDIT_RETENTION", value_parser = parse_duration)]
    pub audit_retention: Option<Duration>,

    /// How often retention runs, when `--history-retention` or `--audit-retention` is set.
    #[arg(long, env = "OTA_RETENTION_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub retention_interval: Duration,

    /// Logs as JSON lines (on standard error).
    #[arg(long, env = "OTA_LOG_JSON")]
    pub log_json: bool,

    /// Log filter (`info`, `debug`, `ota_examples=debug,info`).
    #[arg(long, env = "OTA_LOG", default_value = "info")]
    pub log: String,
}

impl Config {
    /// The retention policy of `--history-retention` and `--audit-retention` (the same for
    /// every tenant); `None` when both logs are kept forever.
    pub fn retention(&self) -> Option<RetentionPolicy> {
        if self.history_retention.is_none() && self.audit_retention.is_none() {
            return None;
        }
        // Longer than chrono can hold is forever.
        let age =
            |d: Option<Duration>| d.and_then(|d| ota_core::chrono::Duration::from_std(d).ok());
        Some(RetentionPolicy::new(RetentionRule::new(
            age(self.history_retention),
            age(self.audit_retention),
        )))
    }

    /// The global pace of the engine.
    pub fn pacing(&self) -> Pacing {
        let mut pacing = Pacing::default();
        if let Some(rate) = self.pace {
            pacing = pacing.rate(rate);
        }
        if let Some(n) = self.max_in_progress {
            pacing = pacing.max_in_progress(n);
        }
        pacing
    }
}

/// A duration as `250ms`, `10s`, `5m`, `1h`, `30d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms, 10s, 5m or 1h"))?;
    let millis = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}: use ms, s, m, h or d"
            ))
        }
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// A pace as `COUNT/PERIOD`: `100/1m` is 100 releases a minute, evenly spaced.
pub fn parse_rate(text: &str) -> Result<Rate, String> {
    let (count, per) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not a pace such as 100/1m (COUNT/PERIOD)"))?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("the count of {text:?} is not a whole number"))?;
    let per = parse_duration(per)?;
    let per = ota_core::chrono::Duration::from_std(per).map_err(|e| e.to_string())?;
    Rate::new(count, per).map_err(|e| e.to_string())
}

/// Where the bridge connects: host, port and credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or address.
    pub host: String,
    /// Port (default 1883).
    pub port: u16,
    /// User name and password.
    pub credentials: Option<(String, String)>,
}

/// Parses `mqtt://[user[:password]@]host[:port]`.
pub fn parse_broker_url(url: &str) -> Result<BrokerUrl, String> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(|| {
            format!("{url:?} is not an mqtt:// URL (mqtt://[user[:password]@]host[:port])")
        })?;
    let rest = rest.trim_end_matches('/');
    let (credentials, address) = match rest.rsplit_once('@') {
        Some((user_info, address)) => {
            let (user, password) = user_info.split_once(':').unwrap_or((user_info, ""));
            (Some((user.to_string(), password.to_string())), address)
        }
        None => (None, rest),
    };
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse()
                .map_err(|_| format!("the port of {url:?} is not a number from 1 to 65535"))?,
        ),
        None => (address, 1883),
    };
    if host.is_empty() {
        return Err(format!("{url:?} names no host"));
    }
    Ok(BrokerUrl {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_paces_parse_or_say_why_not() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert!(parse_duration("2 weeks").unwrap_err().contains("unit"));
        assert!(parse_duration("fast").is_err());
        let rate = parse_rate("100/1m").unwrap();
        assert_eq!(rate.count(), 100);
        assert_eq!(rate.per(), ota_core::chrono::Duration::minutes(1));
        assert!(parse_rate("0/1s").is_err());
        assert!(parse_rate("100").unwrap_err().contains("COUNT/PERIOD"));
    }

    #[test]
    fn retention_is_off_unless_asked_for() {
        let off = Config::parse_from(["ota-server"]);
        assert_eq!(off.retention(), None);
        let on = Config::parse_from(["ota-server", "--audit-retention", "30d"]);
        let policy = on.retention().expect("a policy");
        assert_eq!(policy.default.history, None);
        assert_eq!(
            policy.default.audit,
            Some(ota_core::chrono::Duration::days(30))
        );
    }

    #[test]
    fn broker_urls_parse_or_say_why_not() {
        let url = parse_broker_url("mqtt://ota:secret@broker.local:8883").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("broker.local", 8883));
        assert_eq!(url.credentials, Some(("ota".into(), "secret".into())));
        let url = parse_broker_url("mqtt://127.0.0.1").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.credentials),
            ("127.0.0.1", 1883, None)
        );
        assert!(parse_broker_url("http://x")
            .unwrap_err()
            .contains("mqtt://"));
        assert!(parse_broker_url("mqtt://x:port")
            .unwrap_err()
            .contains("port"));
        assert!(parse_broker_url("mqtt://").is_err());
    }

    #[test]
    fn the_defaults_need_no_flag() {
        let config = Config::try_parse_from(["ota-server"]).unwrap();
        assert!(config.database_url.is_none() || std::env::var("DATABASE_URL").is_ok());
        assert_eq!(config.tenant.to_string(), DEFAULT_TENANT);
        assert_eq!(config.tick_interval, Duration::from_millis(500));
        assert_eq!(config.device_token_cache_ttl, Duration::from_secs(60));
        let config = Config::try_parse_from(["ota-server", "--api-key", "a,b", "--api-key", "c"]);
        assert_eq!(config.unwrap().api_keys, ["a", "b", "c"]);
    }
}
