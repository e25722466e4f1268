//! A device on the MQTT endpoint, speaking ThingsBoard's device protocol (MQTT 5, the access
//! token as the CONNECT username): shared attributes on `v1/devices/me/attributes`,
//! attribute requests, `v2/fw/request/{id}/chunk/{n}` downloads, telemetry.

use super::device::{Fetch, Fetched, Heard, Link, LinkError};
use super::firmware::{Notice, Target, SHARED_KEYS};
use super::report::Tally;
use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
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
}

fn lost(e: impl std::fmt::Display) -> LinkError {
    LinkError::Lost(e.to_string())
}

impl MqttLink {
    /// A device with access token `token`, not connected yet.
    pub fn new(target: MqttTarget, name: &str, token: String, tally: Arc<Tally>) -> Self {
        Self {
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
        options.set_credentials(self.token.clone(), String::new());
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
        let poller = tokio::spawn(async move {
            loop {
                let seen = match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => Incoming::Connected,
                    Ok(Event::Incoming(Packet::SubAck(_))) => Incoming::Subscribed,
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        Incoming::Message(String::from_utf8_lossy(&p.topic).into_owned(), p.payload)
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
        .map(|f| Filter::new(f, QoS::AtLeastOnce));
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

    async fn reconnect(&mut self) -> Result<(), LinkError> {
        self.connection = None;
        let mut backoff = Duration::from_millis(100);
        for _ in 0..8 {
            match self.open().await {
                Ok(c) => {
                    self.connection = Some(c);
                    self.tally.reconnected();
                    return Ok(());
                }
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(3));
                }
            }
        }
        Err(lost("could not connect again"))
    }

    async fn connected(&mut self) -> Result<&mut Connection, LinkError> {
        if self.connection.is_none() {
            self.reconnect().await?;
        }
        self.connection
            .as_mut()
            .ok_or_else(|| lost("not connected"))
    }

    async fn publish(&mut self, topic: String, payload: Vec<u8>) -> Result<(), LinkError> {
        let c = self.connected().await?;
        c.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(lost)
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
            self.publish(
                format!("v2/fw/request/{request}/chunk/{chunk}"),
                chunk_size.to_string().into_bytes(),
            )
            .await?;
            let bytes = self
                .wait_for(&format!("v2/fw/response/{request}/chunk/{chunk}"))
                .await?;
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
}
