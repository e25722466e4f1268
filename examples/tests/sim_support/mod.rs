//! What the simulator tests share: a management API client that plays the operator (upload,
//! campaign, statistics, devices) and the checks of a simulator summary against the server.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The operator's side of the management API.
#[derive(Clone, Debug)]
pub struct Api {
    pub client: reqwest::Client,
    /// `http://host:port/api/ota/v1`.
    pub base: String,
    pub key: String,
}

impl Api {
    pub fn new(http_base: &str, key: &str) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: format!("{}/api/ota/v1", http_base.trim_end_matches('/')),
            key: key.to_string(),
        }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Value {
        let response = request
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("request");
        let status = response.status();
        let body = response.text().await.expect("body");
        assert!(status.is_success(), "{status}: {body}");
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    pub async fn get(&self, path: &str) -> Value {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.send(self.client.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    /// Every item of a list.
    pub async fn list(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let mut url = format!("{path}{sep}limit=1000");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page = self.get(&url).await;
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return items,
            }
        }
    }

    pub async fn profile(&self, name: &str) -> String {
        let p = self.post("/profiles", json!({ "name": name })).await;
        p["id"].as_str().expect("profile id").to_string()
    }

    /// Uploads firmware `title`/`version` with `len` bytes; its id.
    pub async fn upload(&self, title: &str, version: &str, len: usize) -> String {
        let content: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
        let url = format!(
            "{}/packages?kind=FIRMWARE&title={title}&version={version}",
            self.base
        );
        let p = self
            .send(
                self.client
                    .post(url)
                    .header("content-type", "application/octet-stream")
                    .body(content),
            )
            .await;
        p["id"].as_str().expect("package id").to_string()
    }

    /// A campaign over `profile` in `waves` (see [`two_waves`]), with a DOWNLOADING timeout
    /// and automatic retries; started. Its id.
    pub async fn campaign(
        &self,
        name: &str,
        package: &str,
        profile: &str,
        waves: Value,
        max_attempts: u32,
        downloading_timeout: Duration,
    ) -> String {
        let body = json!({
            "name": name,
            "package_id": package,
            "target": {"type": "selection", "profile": profile},
            "waves": waves,
            "policy": {
                "timeouts": {
                    "INITIATED": 30_000,
                    "DOWNLOADING": downloading_timeout.as_millis() as u64
                },
                "retry": {"max_attempts": max_attempts, "initial_backoff": 200,
                    "multiplier": 1, "max_backoff": 1_000},
                "unanswered_attempts": 5
            }
        });
        let c = self.post("/campaigns", body).await;
        let id = c["id"].as_str().expect("campaign id").to_string();
        self.post(&format!("/campaigns/{id}/start"), json!({}))
            .await;
        id
    }

    pub async fn stats(&self, campaign: &str) -> Value {
        self.get(&format!("/campaigns/{campaign}/stats")).await
    }

    /// Each device's firmware version as the server knows it, by name.
    pub async fn versions(&self) -> BTreeMap<String, Option<String>> {
        self.list("/devices")
            .await
            .into_iter()
            .map(|d| {
                let name = d["name"].as_str().unwrap_or_default().to_string();
                let version = d["current_firmware"]["version"]
                    .as_str()
                    .map(str::to_string);
                (name, version)
            })
            .collect()
    }
}

/// Two waves: 20 %, then the rest once half of the first is updated.
pub fn two_waves() -> Value {
    json!([
        {"size": {"type": "percent", "value": 20.0}},
        {"size": {"type": "rest"}, "advance": {"success_percent": 50.0}}
    ])
}

/// One wave of every device.
pub fn one_wave() -> Value {
    json!([{"size": {"type": "rest"}}])
}

/// Asserts that the simulator's summary (`--json --per-device`) equals the campaign's
/// statistics card by card, and that every device's version is the server's.
pub async fn assert_tally_matches(api: &Api, campaign: &str, summary: &Value) {
    let stats = api.stats(campaign).await;
    let total = &stats["total"];
    let cards = &summary["cards"];
    for card in ["successful", "failed", "ongoing", "not_started"] {
        assert_eq!(
            total[card], cards[card],
            "card {card}: server {total} vs simulator {cards}"
        );
    }
    assert_eq!(total["canceled"], 0, "{total}");
    assert_eq!(total["total"], summary["devices"], "{total}");
    let versions = api.versions().await;
    let devices = summary["devices_detail"]
        .as_array()
        .expect("per-device summary");
    assert_eq!(devices.len() as u64, summary["devices"].as_u64().unwrap());
    for d in devices {
        let name = d["name"].as_str().expect("name");
        let server = versions.get(name).cloned().flatten();
        assert_eq!(
            server.as_deref(),
            d["version"].as_str(),
            "device {name}: server version vs simulator {d}"
        );
    }
}
