//! A device on the device HTTP API: `GET /api/v1/{token}/attributes`, the long-poll
//! `/attributes/updates`, `POST /telemetry`, and downloads in chunks
//! (`/firmware?title=&version=&size=&chunk=`) resumed with `Range` after a dropped connection.

use super::device::{Fetch, Fetched, Heard, Link, LinkError};
use super::firmware::{Target, SHARED_KEYS};
use super::report::Tally;
use reqwest::{header, Response, StatusCode};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Where and how HTTP devices talk.
#[derive(Clone, Debug)]
pub struct HttpTarget {
    /// Base URL of the device API (`http://host:port`).
    pub base: String,
    /// Long-poll wait.
    pub long_poll: Duration,
    /// How long to wait for an answer (long-polls get this on top of their wait).
    pub response_timeout: Duration,
}

/// One device's HTTP side (see the module docs).
pub struct HttpLink {
    client: reqwest::Client,
    target: HttpTarget,
    /// `{base}/api/v1/{token}`.
    root: String,
    tally: Arc<Tally>,
    /// The last long-poll failed: look at the attributes once it works again.
    was_down: bool,
}

fn lost(e: impl std::fmt::Display) -> LinkError {
    LinkError::Lost(e.to_string())
}

/// An error answer as a [`LinkError`]: 4xx are refusals, the rest losses.
async fn refused(response: Response) -> LinkError {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or(body);
    let text = format!("{status}: {message}");
    if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
        LinkError::Refused(text)
    } else {
        LinkError::Lost(text)
    }
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl HttpLink {
    /// A device with access token `token`; `client` is shared by the fleet.
    pub fn new(
        client: reqwest::Client,
        target: HttpTarget,
        token: &str,
        tally: Arc<Tally>,
    ) -> Self {
        let root = format!(
            "{}/api/v1/{}",
            target.base.trim_end_matches('/'),
            percent(token)
        );
        Self {
            client,
            target,
            root,
            tally,
            was_down: false,
        }
    }

    async fn get(&self, url: String, range_from: Option<u64>) -> Result<Response, LinkError> {
        let mut request = self.client.get(url).timeout(self.target.response_timeout);
        if let Some(from) = range_from {
            request = request.header(header::RANGE, format!("bytes={from}-"));
        }
        let response = request.send().await.map_err(lost)?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(refused(response).await)
        }
    }

    /// Reads `response`'s body into `content`; stops (dropping the connection) once
    /// `content` holds `drop_at` bytes. `Ok(true)` when the body ended.
    async fn read_body(
        &self,
        mut response: Response,
        content: &mut Vec<u8>,
        drop_at: Option<u64>,
    ) -> Result<bool, LinkError> {
        while let Some(piece) = response.chunk().await.map_err(lost)? {
            self.tally.downloaded(piece.len() as u64);
            content.extend_from_slice(&piece);
            if drop_at.is_some_and(|n| content.len() as u64 >= n) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn firmware_url(&self, target: &Target) -> String {
        format!(
            "{}/firmware?title={}&version={}",
            self.root,
            percent(&target.title),
            percent(&target.version)
        )
    }
}

impl Link for HttpLink {
    async fn connect(&mut self) -> Result<(), LinkError> {
        // No connection to make; an attribute read checks the token.
        self.poll().await.map(|_| ())
    }

    async fn next(&mut self) -> Result<Heard, LinkError> {
        if std::mem::take(&mut self.was_down) {
            return self.poll().await.map(Heard::Polled);
        }
        let url = format!(
            "{}/attributes/updates?timeout={}",
            self.root,
            self.target.long_poll.as_millis()
        );
        let response = self
            .client
            .get(url)
            .timeout(self.target.long_poll + self.target.response_timeout)
            .send()
            .await;
        let response = match response {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                self.was_down = true;
                return Err(refused(r).await);
            }
            Err(e) => {
                self.was_down = true;
                return Err(lost(e));
            }
        };
        let body = response.bytes().await.map_err(lost)?;
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) if !m.is_empty() => Ok(Heard::Notice(m)),
            // The wait ended with no notice: look, in case one came between two waits.
            _ => self.poll().await.map(Heard::Looked),
        }
    }

    async fn poll(&mut self) -> Result<Map<String, Value>, LinkError> {
        let url = format!("{}/attributes?sharedKeys={}", self.root, SHARED_KEYS);
        let response = self.get(url, None).await?;
        match response.json::<Value>().await.map_err(lost)? {
            Value::Object(m) => Ok(m),
            _ => Err(LinkError::Refused(
                "the attributes are not a JSON object".into(),
            )),
        }
    }

    async fn report(&mut self, values: Value) -> Result<(), LinkError> {
        let response = self
            .client
            .post(format!("{}/telemetry", self.root))
            .timeout(self.target.response_timeout)
            .json(&values)
            .send()
            .await
            .map_err(lost)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(refused(response).await)
        }
    }

    async fn download(&mut self, target: &Target, fetch: Fetch) -> Result<Fetched, LinkError> {
        let size = target.size.unwrap_or(u64::MAX);
        let mut content = Vec::with_capacity(target.size.unwrap_or(0) as usize);
        let chunk_size = fetch.chunk_size as u64;
        let mut chunk = 0u64;
        loop {
            let have = content.len() as u64;
            if have >= size {
                return Ok(Fetched::Complete(content));
            }
            if fetch.stop_after.is_some_and(|n| have >= n) {
                return Ok(Fetched::Stopped);
            }
            let url = format!(
                "{}&size={chunk_size}&chunk={chunk}",
                self.firmware_url(target)
            );
            let before = content.len();
            let response = self.get(url, None).await?;
            let cut_at = match (fetch.stop_after, fetch.drop_after) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if !self.read_body(response, &mut content, cut_at).await? {
                let have = content.len() as u64;
                if fetch.stop_after.is_some_and(|n| have >= n) {
                    return Ok(Fetched::Stopped);
                }
                if have >= size {
                    return Ok(Fetched::Complete(content));
                }
                // The connection dropped mid-body: resume the rest with a Range request.
                let response = self.get(self.firmware_url(target), Some(have)).await?;
                if response.status() != StatusCode::PARTIAL_CONTENT {
                    return Err(LinkError::Refused(format!(
                        "a Range request answered {} instead of 206",
                        response.status()
                    )));
                }
                self.read_body(response, &mut content, None).await?;
                return Ok(Fetched::Complete(content));
            }
            let got = (content.len() - before) as u64;
            if chunk_size == 0 || got < chunk_size {
                return Ok(Fetched::Complete(content));
            }
            chunk += 1;
        }
    }

    async fn reboot(&mut self, downtime: Duration) -> Result<(), LinkError> {
        tokio::time::sleep(downtime).await;
        Ok(())
    }

    fn forget_notices_about(&mut self, _target: &Target) {
        // Notices are not queued: a long-poll is made only while the device waits.
    }

    async fn close(&mut self) {}
}
