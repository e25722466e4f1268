//! A device on the MQTT endpoint, speaking ThingsBoard's device protocol (MQTT 5, the access
//! token as the CONNECT username): shared attributes on `v1/devices/me/attributes`,
//! attribute requests, `v2/fw/request/{id}/chunk/{n}` downloads, telemetry.
//!
//! Through a broker in front of a bridge ([`MqttTarget::bridge_root`]) the same messages
//! travel on device-scoped topics (`v1/devices/{token}/attributes`,
//! `v1/devices/{token}/v2/fw/request/..`) and the token is the password too, as a broker's
//! per-device ACL wants it. A lost connection is opened again for up to
//! [`MqttTarget::reconnect_for`]; a download resumes at the chunk it was waiting for.

use super::device::{Fetch, Fetched, Heard, Link, LinkError};
use super::firmware::{Notice, Target, SHARED_KEYS};
use super::report::Tally;
use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const ATTRIBUTES: &str = "v1/devices/me/attributes";
const TELEMETRY: &str = "v1/devices/me/telemetry";
const CHUNK_ERROR: &str = "v2/fw/error";
/// Largest packet the device accepts (chunks included).
const MAX_PACKET: u32 = 4 * 1024 * 1024;
/// Most unacknowledged publishes of one device.
const MAX_INFLIGHT: u16 = 16;
/// How many times one download resumes after a lost connection.
const MAX_RESUMES: u32 = 8;

/// Whether a shared-attributes push names an update to install.
fn is_update_notice(payload: &[u8]) -> bool {
    match serde_json::from_slice(payload) {
        Ok(Value::Object(m)) => matches!(Notice::read(&m), Ok(Notice::Update(_))),
        _ => false,
    }
}

enum Incoming {
    Connected,
    Subscribed,
    Message(String, Bytes),
    Closed(String),
}

struct Connection {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Incoming>,
    poller: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

/// Where and how MQTT devices connect.
#[derive(Clone, Debug)]
pub struct MqttTarget {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// How long to wait for any answer before calling the connection lost.
    pub response_timeout: Duration,
    /// MQTT keepalive.
    pub keep_alive: Duration,
    /// How long a device keeps trying to connect again after losing its connection.
    pub reconnect_for: Duration,
    /// Bridge mode: the root of device-scoped topics (`v1/devices`); `None` talks to an
    /// endpoint (`v1/devices/me/..`).
    pub bridge_root: Option<String>,
}

/// How a device's topics are spelled: endpoint form, or device-scoped under a bridge root.
#[derive(Clone, Debug)]
struct Topics {
    /// `{root}/{token}` in bridge mode.
    scope: Option<String>,
}

impl Topics {
    /// The topic to use on the wire for `endpoint` (`v1/devices/me/..` or `v2/..`).
    fn out(&self, endpoint: &str) -> String {
        let Some(scope) = &self.scope else {
            return endpoint.to_string();
        };
        match endpoint.strip_prefix("v1/devices/me/") {
            Some(tail) => format!("{scope}/{tail}"),
            None => format!("{scope}/{endpoint}"),
        }
    }

    /// The endpoint form of a topic that came in.
    fn back(&self, wire: String) -> String {
        let Some(scope) = &self.scope else {
            return wire;
        };
        match wire
            .strip_prefix(scope.as_str())
            .and_then(|t| t.strip_prefix('/'))
        {
            Some(v2) if v2.starts_with("v2/") => v2.to_string(),
            Some(tail) => format!("v1/devices/me/{tail}"),
            None => wire,
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// One device's MQTT connection (see the module docs).
pub struct MqttLink {
    target: MqttTarget,
    token: String,
    client_id: String,
    tally: Arc<Tally>,
    connection: Option<Connection>,
    pending: VecDeque<Map<String, Value>>,
    next_request: u64,
    topics: Topics,
    /// When each pushed update notice arrived (Unix milliseconds).
    heard: Arc<Mutex<Vec<u64>>>,
    /// Draws of the reconnect jitter.
    jitter: u64,
}

fn lost(e: impl std::fmt::Display) -> LinkError {
    LinkError::Lost(e.to_string())
}

impl MqttLink {
    /// A device with access token `token`, not connected yet.
    pub fn new(target: MqttTarget, name: &str, token: String, tally: Arc<Tally>) -> Self {
        let topics = Topics {
            scope: target
                .bridge_root
                .as_ref()
                .map(|root| format!("{}/{token}", root.trim_end_matches('/'))),
        };
        let jitter = name.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }) | 1;
        Self {
            topics,
            heard: Arc::new(Mutex::new(Vec::new())),
            jitter,
            target,
            token,
            client_id: format!("ota-sim-{name}"),
            tally,
            connection: None,
            pending: VecDeque::new(),
            next_request: 0,
        }
    }

    async fn open(&self) -> Result<Connection, LinkError> {
        let t = &self.target;
        let mut options = MqttOptions::new(&self.client_id, &t.host, t.port);
        options.set_keep_alive(t.keep_alive);
        options.set_clean_start(true);
        let password = match t.bridge_root {
            Some(_) => self.token.clone(),
            None => String::new(),
        };
        options.set_credentials(self.token.clone(), password);
        options.set_max_packet_size(Some(MAX_PACKET));
        // rumqttc sizes its in-flight table by the server's Receive Maximum (up to 65,535
        // slots per client): 10,000 devices took 22 GB and were OOM-killed. A device has a
        // few messages in flight at most.
        options.set_outgoing_inflight_upper_limit(MAX_INFLIGHT);
        let mut network = rumqttc::NetworkOptions::new();
        network.set_tcp_nodelay(true);
        network.set_connection_timeout(t.response_timeout.as_secs().max(1));
        options.set_network_options(network);
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (tx, rx) = mpsc::unbounded_channel();
        let (topics, heard) = (self.topics.clone(), self.heard.clone());
        let poller = tokio::spawn(async move {
            loop {
                let seen = match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => Incoming::Connected,
                    Ok(Event::Incoming(Packet::SubAck(_))) => Incoming::Subscribed,
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let topic = topics.back(String::from_utf8_lossy(&p.topic).into_owned());
                        if topic == ATTRIBUTES && is_update_notice(&p.payload) {
                            heard
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(unix_ms());
                        }
                        Incoming::Message(topic, p.payload)
                    }
                    Ok(Event::Incoming(Packet::Disconnect(d))) => {
                        Incoming::Closed(format!("disconnected by the server: {:?}", d.reason_code))
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        let _ = tx.send(Incoming::Closed(e.to_string()));
                        return;
                    }
                };
                if tx.send(seen).is_err() {
                    return;
                }
            }
        });
        let mut connection = Connection { client, rx, poller };
        let deadline = Instant::now() + t.response_timeout;
        match recv(&mut connection, deadline).await? {
            Incoming::Connected => {}
            Incoming::Closed(why) => return Err(LinkError::Lost(why)),
            _ => return Err(lost("no CONNACK first")),
        }
        let filters = [
            ATTRIBUTES,
            "v1/devices/me/attributes/response/+",
            "v2/fw/response/+/chunk/+",
            CHUNK_ERROR,
        ]
        .into_iter()
        .map(|f| Filter::new(self.topics.out(f), QoS::AtLeastOnce));
        connection
            .client
            .subscribe_many(filters)
            .await
            .map_err(lost)?;
        loop {
            match recv(&mut connection, deadline).await? {
                Incoming::Subscribed => return Ok(connection),
                Incoming::Closed(why) => return Err(LinkError::Lost(why)),
                _ => {}
            }
        }
    }

    /// Connects again, trying for up to [`MqttTarget::reconnect_for`] with a growing,
    /// jittered pause (a fleet that lost its server does not come back all at once).
    async fn reconnect(&mut self) -> Result<(), LinkError> {
        self.connection = None;
        let give_up = Instant::now() + self.target.reconnect_for;
        let mut backoff = Duration::from_millis(100);
        loop {
            let why = match self.open().await {
                Ok(c) => {
                    self.connection = Some(c);
                    self.tally.reconnected();
                    return Ok(());
                }
                Err(LinkError::Lost(why) | LinkError::Refused(why)) => why,
            };
            self.jitter ^= self.jitter << 13;
            self.jitter ^= self.jitter >> 7;
            self.jitter ^= self.jitter << 17;
            let pause = backoff / 2 + backoff.mul_f64((self.jitter % 1000) as f64 / 1000.0);
            if Instant::now() + pause > give_up {
                return Err(lost(format!("could not connect again: {why}")));
            }
            tokio::time::sleep(pause).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    async fn connected(&mut self) -> Result<&mut Connection, LinkError> {
        if self.connection.is_none() {
            self.reconnect().await?;
        }
        self.connection
            .as_mut()
            .ok_or_else(|| lost("not connected"))
    }

    /// Publishes on `topic` (endpoint form). When the connection's event loop is gone (the
    /// server or broker went away), connects again and publishes once more.
    async fn publish(&mut self, topic: String, payload: Vec<u8>) -> Result<(), LinkError> {
        let topic = self.topics.out(&topic);
        let mut why = String::new();
        for _ in 0..2 {
            let c = self.connected().await?;
            match c
                .client
                .publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone())
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) => {
                    why = e.to_string();
                    self.connection = None;
                }
            }
        }
        Err(lost(why))
    }

    /// The next message on `topic`; attribute pushes seen meanwhile are kept, stale
    /// answers dropped, an error on `v2/fw/error` is a refusal.
    async fn wait_for(&mut self, topic: &str) -> Result<Bytes, LinkError> {
        let deadline = Instant::now() + self.target.response_timeout;
        loop {
            let c = self
                .connection
                .as_mut()
                .ok_or_else(|| lost("not connected"))?;
            match recv(c, deadline).await {
                Ok(Incoming::Message(t, payload)) if t == topic => return Ok(payload),
                Ok(Incoming::Message(t, payload)) if t == ATTRIBUTES => {
                    if let Ok(Value::Object(m)) = serde_json::from_slice(&payload) {
                        self.pending.push_back(m);
                    }
                }
                Ok(Incoming::Message(t, payload)) if t == CHUNK_ERROR => {
                    return Err(LinkError::Refused(format!(
                        "the server refused the download: {}",
                        String::from_utf8_lossy(&payload)
                    )))
                }
                Ok(Incoming::Closed(why)) => {
                    self.connection = None;
                    return Err(LinkError::Lost(why));
                }
                Ok(_) => {}
                Err(e) => {
                    self.connection = None;
                    return Err(e);
                }
            }
        }
    }

    fn request_id(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }
}

async fn recv(c: &mut Connection, deadline: Instant) -> Result<Incoming, LinkError> {
    match tokio::time::timeout_at(deadline, c.rx.recv()).await {
        Ok(Some(seen)) => Ok(seen),
        Ok(None) => Err(lost("the connection ended")),
        Err(_) => Err(lost("no answer in time")),
    }
}

impl Link for MqttLink {
    async fn connect(&mut self) -> Result<(), LinkError> {
        let c = self.open().await?;
        self.connection = Some(c);
        Ok(())
    }

    async fn next(&mut self) -> Result<Heard, LinkError> {
        if let Some(m) = self.pending.pop_front() {
            return Ok(Heard::Notice(m));
        }
        loop {
            let Some(c) = self.connection.as_mut() else {
                self.reconnect().await?;
                return self.poll().await.map(Heard::Polled);
            };
            match c.rx.recv().await {
                Some(Incoming::Message(t, payload)) if t == ATTRIBUTES => {
                    if let Ok(Value::Object(m)) = serde_json::from_slice(&payload) {
                        return Ok(Heard::Notice(m));
                    }
                }
                Some(Incoming::Closed(_)) | None => self.connection = None,
                Some(_) => {}
            }
        }
    }

    async fn poll(&mut self) -> Result<Map<String, Value>, LinkError> {
        let id = self.request_id();
        let body = json!({ "sharedKeys": SHARED_KEYS }).to_string();
        self.publish(format!("{ATTRIBUTES}/request/{id}"), body.into_bytes())
            .await?;
        let answer = self
            .wait_for(&format!("{ATTRIBUTES}/response/{id}"))
            .await?;
        match serde_json::from_slice(&answer) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(LinkError::Refused(
                "the attribute answer is not a JSON object".into(),
            )),
        }
    }

    async fn report(&mut self, values: Value) -> Result<(), LinkError> {
        self.publish(TELEMETRY.to_string(), values.to_string().into_bytes())
            .await
    }

    async fn download(&mut self, target: &Target, fetch: Fetch) -> Result<Fetched, LinkError> {
        let request = self.request_id();
        let size = target.size.unwrap_or(u64::MAX);
        let chunk_size = if fetch.chunk_size == 0 {
            64 * 1024
        } else {
            fetch.chunk_size
        };
        let mut content = Vec::with_capacity(target.size.unwrap_or(0) as usize);
        let mut dropped = false;
        let mut chunk = 0u64;
        let mut resumes = 0;
        loop {
            let have = content.len() as u64;
            if have >= size {
                return Ok(Fetched::Complete(content));
            }
            if fetch.stop_after.is_some_and(|n| have >= n) {
                return Ok(Fetched::Stopped);
            }
            if !dropped && fetch.drop_after.is_some_and(|n| have >= n) {
                // The connection dies without a DISCONNECT; the device comes back and
                // resumes from the next chunk.
                dropped = true;
                self.connection = None;
                self.reconnect().await?;
            }
            // The chunk size is sent with every request: whichever connection (or server
            // instance) answers needs no memory of earlier requests.
            let asked = self
                .publish(
                    format!("v2/fw/request/{request}/chunk/{chunk}"),
                    chunk_size.to_string().into_bytes(),
                )
                .await;
            let answer = match asked {
                Ok(()) => {
                    self.wait_for(&format!("v2/fw/response/{request}/chunk/{chunk}"))
                        .await
                }
                Err(e) => Err(e),
            };
            let bytes = match answer {
                Ok(bytes) => bytes,
                // The server (or the broker) went away: connect again and ask for the same
                // chunk, a few times per download.
                Err(LinkError::Lost(_)) if resumes < MAX_RESUMES => {
                    resumes += 1;
                    self.reconnect().await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.tally.downloaded(bytes.len() as u64);
            content.extend_from_slice(&bytes);
            if bytes.len() < chunk_size {
                return Ok(Fetched::Complete(content));
            }
            chunk += 1;
        }
    }

    async fn reboot(&mut self, downtime: Duration) -> Result<(), LinkError> {
        if let Some(c) = self.connection.take() {
            let _ = c.client.disconnect().await;
            // Let the DISCONNECT go out before the event loop is dropped.
            let mut c = c;
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Some(seen) = c.rx.recv().await {
                    if matches!(seen, Incoming::Closed(_)) {
                        break;
                    }
                }
            })
            .await;
        }
        tokio::time::sleep(downtime).await;
        self.reconnect().await
    }

    fn forget_notices_about(&mut self, target: &Target) {
        self.pending.retain(|m| match Notice::read(m) {
            Ok(Notice::Update(t)) => t.title != target.title || t.version != target.version,
            _ => true,
        });
    }

    async fn close(&mut self) {
        if let Some(c) = self.connection.take() {
            let _ = c.client.try_disconnect();
        }
    }

    fn notices_heard(&self) -> Vec<u64> {
        self.heard.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
