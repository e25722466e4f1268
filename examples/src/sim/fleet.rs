//! The fleet: devices created through the management API (CSV import, tokens made by the
//! server) or read from a file of existing ones, and the campaign look-up used to know when
//! to stop.

use serde::Deserialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

/// How a device talks to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The MQTT endpoint.
    Mqtt,
    /// The device HTTP API.
    Http,
}

impl Transport {
    /// `mqtt` or `http`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Mqtt => "mqtt",
            Transport::Http => "http",
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "mqtt" => Ok(Transport::Mqtt),
            "http" => Ok(Transport::Http),
            other => Err(format!("unknown transport {other:?}; use mqtt or http")),
        }
    }
}

/// One simulated device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimDevice {
    /// Name.
    pub name: String,
    /// Access token.
    pub token: String,
    /// How it talks.
    pub transport: Transport,
}

/// Reads `name,token,transport` lines (a header line `name,...` and blank lines are
/// skipped).
pub fn read_devices(text: &str) -> Result<Vec<SimDevice>, String> {
    let mut devices = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (i == 0 && line.starts_with("name,")) {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [name, token, transport] = fields[..] else {
            return Err(format!(
                "line {}: expected name,token,transport, got {line:?}",
                i + 1
            ));
        };
        if name.is_empty() || token.is_empty() {
            return Err(format!("line {}: empty name or token", i + 1));
        }
        devices.push(SimDevice {
            name: name.to_string(),
            token: token.to_string(),
            transport: Transport::parse(transport).map_err(|e| format!("line {}: {e}", i + 1))?,
        });
    }
    Ok(devices)
}

/// Writes devices in the form [`read_devices`] reads.
pub fn write_devices(path: &Path, devices: &[SimDevice]) -> std::io::Result<()> {
    let mut text = String::from("name,token,transport\n");
    for d in devices {
        let _ = writeln!(text, "{},{},{}", d.name, d.token, d.transport.name());
    }
    std::fs::write(path, text)
}

/// A management API client (bearer API key).
#[derive(Clone, Debug)]
pub struct Management {
    client: reqwest::Client,
    /// `{url}{prefix}`, e.g. `http://127.0.0.1:8080/api/ota/v1`.
    base: String,
    key: String,
}

#[derive(Deserialize)]
struct Page {
    items: Vec<Value>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct Imported {
    devices: Vec<ImportedDevice>,
}

#[derive(Deserialize)]
struct ImportedDevice {
    name: String,
    access_token: String,
}

/// Devices the CSV import takes per request.
const IMPORT_BATCH: usize = 1_000;

impl Management {
    /// A client of the API at `base` (the URL with the API prefix).
    pub fn new(client: reqwest::Client, base: &str, key: &str) -> Self {
        Self {
            client,
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
        }
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, String> {
        let response = request
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|e| format!("management API: {e}"))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("management API answered {status}: {body}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("management API: bad JSON: {e}"))
    }

    /// Every item of a list.
    async fn list(&self, path: &str) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let mut url = format!("{}{path}{sep}limit=1000", self.base);
            if let Some(c) = &cursor {
                let _ = write!(url, "&cursor={c}");
            }
            let value = self.call(self.client.get(url)).await?;
            let page: Page = serde_json::from_value(value).map_err(|e| e.to_string())?;
            items.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(items),
            }
        }
    }

    /// The id of the profile named `name`, created when missing.
    pub async fn ensure_profile(&self, name: &str) -> Result<String, String> {
        let found = self
            .list("/profiles")
            .await?
            .into_iter()
            .find(|p| p["name"] == name);
        let profile = match found {
            Some(p) => p,
            None => {
                let body = serde_json::json!({ "name": name });
                self.call(
                    self.client
                        .post(format!("{}/profiles", self.base))
                        .json(&body),
                )
                .await?
            }
        };
        profile["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| "the profile has no id".to_string())
    }

    /// Creates devices named `names` in `profile` (by name or id); the server makes their
    /// tokens.
    pub async fn create_devices(
        &self,
        names: &[String],
        profile: &str,
        transport: Transport,
    ) -> Result<Vec<SimDevice>, String> {
        let mut devices = Vec::with_capacity(names.len());
        for batch in names.chunks(IMPORT_BATCH) {
            let mut csv = String::from("name,profile\n");
            for name in batch {
                let _ = writeln!(csv, "{name},{profile}");
            }
            let request = self
                .client
                .post(format!("{}/devices/import", self.base))
                .header(reqwest::header::CONTENT_TYPE, "text/csv")
                .body(csv);
            let imported: Imported = serde_json::from_value(self.call(request).await?)
                .map_err(|e| format!("device import answer: {e}"))?;
            devices.extend(imported.devices.into_iter().map(|d| SimDevice {
                name: d.name,
                token: d.access_token,
                transport,
            }));
        }
        Ok(devices)
    }

    /// The state of the campaign with id or name `campaign` (`None`: no such campaign yet).
    pub async fn campaign_state(&self, campaign: &str) -> Result<Option<String>, String> {
        let all = self.list("/campaigns?include_archived=true").await?;
        Ok(all
            .into_iter()
            .find(|c| c["id"] == campaign || c["name"] == campaign)
            .and_then(|c| c["state"].as_str().map(str::to_string)))
    }
}

/// Whether a campaign in `state` has ended.
pub fn campaign_ended(state: &str) -> bool {
    matches!(state, "FINISHED" | "STOPPED" | "FAILED" | "ARCHIVED")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_files_round_trip() {
        let devices = vec![
            SimDevice {
                name: "a".into(),
                token: "t1".into(),
                transport: Transport::Mqtt,
            },
            SimDevice {
                name: "b".into(),
                token: "t2".into(),
                transport: Transport::Http,
            },
        ];
        let dir = std::env::temp_dir().join(format!("ota-sim-{}", std::process::id()));
        write_devices(&dir, &devices).unwrap();
        let text = std::fs::read_to_string(&dir).unwrap();
        let _ = std::fs::remove_file(&dir);
        assert_eq!(read_devices(&text).unwrap(), devices);
    }

    #[test]
    fn bad_lines_are_named() {
        let err = read_devices("name,token,transport\na,t,mqtt\nb,t\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        let err = read_devices("a,t,carrier-pigeon\n").unwrap_err();
        assert!(err.contains("carrier-pigeon"), "{err}");
    }
}
