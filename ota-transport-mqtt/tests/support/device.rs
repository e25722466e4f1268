//! A test device: a rumqttc client (MQTT 5 or 3.1.1) whose event loop runs in its own task
//! and forwards what the device receives.
#![allow(dead_code)]

use bytes::Bytes;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How long a test waits for something that must happen before it calls it a failure.
pub const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    V5,
    V311,
}

/// What the device saw.
#[derive(Debug)]
pub enum Seen {
    Message { topic: String, payload: Bytes },
    SubAck,
    Closed(String),
}

/// The CONNACK, as the device read it.
#[derive(Clone, Debug, Default)]
pub struct Connected {
    pub session_present: bool,
    pub receive_max: Option<u16>,
    pub max_packet_size: Option<u32>,
}

enum Client {
    V5(rumqttc::v5::AsyncClient),
    V311(rumqttc::AsyncClient),
}

pub struct TestDevice {
    client: Client,
    seen: mpsc::UnboundedReceiver<Seen>,
    pending: VecDeque<Seen>,
    poller: JoinHandle<()>,
}

impl Drop for TestDevice {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

/// Connection options of a test device.
#[derive(Clone, Debug)]
pub struct DeviceOptions {
    pub protocol: Protocol,
    pub client_id: String,
    pub username: String,
    pub password: Option<String>,
    pub clean_start: bool,
    /// Keep polling (reconnect) after the connection fails.
    pub reconnect: bool,
    pub keep_alive_secs: u64,
    /// The Maximum Packet Size the device declares (MQTT 5).
    pub max_packet: u32,
}

impl DeviceOptions {
    pub fn new(protocol: Protocol, username: &str) -> Self {
        Self {
            protocol,
            client_id: format!("dev-{username}-{}", uuid::Uuid::now_v7().simple()),
            username: username.to_string(),
            password: None,
            clean_start: true,
            reconnect: false,
            keep_alive_secs: 30,
            max_packet: MAX_PACKET as u32,
        }
    }
}

const MAX_PACKET: usize = 2 * 1024 * 1024;

impl TestDevice {
    /// Connects; `Err` with the refusal (or failure) text when the server refuses.
    pub async fn connect(port: u16, options: DeviceOptions) -> Result<(Self, Connected), String> {
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let (connack_tx, connack_rx) = oneshot::channel::<Result<Connected, String>>();
        let reconnect = options.reconnect;
        let (client, poller) = match options.protocol {
            Protocol::V5 => {
                let mut o = rumqttc::v5::MqttOptions::new(&options.client_id, "127.0.0.1", port);
                o.set_keep_alive(Duration::from_secs(options.keep_alive_secs));
                o.set_clean_start(options.clean_start);
                o.set_max_packet_size(Some(options.max_packet));
                let mut network = rumqttc::NetworkOptions::new();
                network.set_tcp_nodelay(true);
                o.set_network_options(network);
                o.set_credentials(
                    options.username.clone(),
                    options.password.clone().unwrap_or_default(),
                );
                let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(o, 256);
                let poller = tokio::spawn(async move {
                    use rumqttc::v5::mqttbytes::v5::Packet;
                    use rumqttc::v5::Event;
                    let mut connack_tx = Some(connack_tx);
                    loop {
                        match eventloop.poll().await {
                            Ok(Event::Incoming(Packet::ConnAck(c))) => {
                                if let Some(tx) = connack_tx.take() {
                                    let _ = tx.send(Ok(Connected {
                                        session_present: c.session_present,
                                        receive_max: c
                                            .properties
                                            .as_ref()
                                            .and_then(|p| p.receive_max),
                                        max_packet_size: c
                                            .properties
                                            .as_ref()
                                            .and_then(|p| p.max_packet_size),
                                    }));
                                }
                            }
                            Ok(Event::Incoming(Packet::Publish(p))) => {
                                let _ = seen_tx.send(Seen::Message {
                                    topic: String::from_utf8_lossy(&p.topic).into_owned(),
                                    payload: p.payload,
                                });
                            }
                            Ok(Event::Incoming(Packet::SubAck(_))) => {
                                let _ = seen_tx.send(Seen::SubAck);
                            }
                            Ok(Event::Incoming(Packet::Disconnect(d))) => {
                                let _ = seen_tx.send(Seen::Closed(format!(
                                    "{:?} {:?}",
                                    d.reason_code,
                                    d.properties.and_then(|p| p.reason_string)
                                )));
                            }
                            Ok(_) => {}
                            Err(e) => {
                                if let Some(tx) = connack_tx.take() {
                                    let _ = tx.send(Err(e.to_string()));
                                    return;
                                }
                                let _ = seen_tx.send(Seen::Closed(e.to_string()));
                                if !reconnect {
                                    return;
                                }
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                });
                (Client::V5(client), poller)
            }
            Protocol::V311 => {
                let mut o = rumqttc::MqttOptions::new(&options.client_id, "127.0.0.1", port);
                o.set_keep_alive(Duration::from_secs(options.keep_alive_secs));
                o.set_clean_session(options.clean_start);
                o.set_max_packet_size(MAX_PACKET, MAX_PACKET);
                o.set_credentials(
                    options.username.clone(),
                    options.password.clone().unwrap_or_default(),
                );
                let (client, mut eventloop) = rumqttc::AsyncClient::new(o, 256);
                let mut network = rumqttc::NetworkOptions::new();
                network.set_tcp_nodelay(true);
                eventloop.set_network_options(network);
                let poller = tokio::spawn(async move {
                    use rumqttc::{Event, Packet};
                    let mut connack_tx = Some(connack_tx);
                    loop {
                        match eventloop.poll().await {
                            Ok(Event::Incoming(Packet::ConnAck(c))) => {
                                if let Some(tx) = connack_tx.take() {
                                    let _ = tx.send(Ok(Connected {
                                        session_present: c.session_present,
                                        ..Connected::default()
                                    }));
                                }
                            }
                            Ok(Event::Incoming(Packet::Publish(p))) => {
                                let _ = seen_tx.send(Seen::Message {
                                    topic: p.topic.clone(),
                                    payload: p.payload,
                                });
                            }
                            Ok(Event::Incoming(Packet::SubAck(_))) => {
                                let _ = seen_tx.send(Seen::SubAck);
                            }
                            Ok(_) => {}
                            Err(e) => {
                                if let Some(tx) = connack_tx.take() {
                                    let _ = tx.send(Err(e.to_string()));
                                    return;
                                }
                                let _ = seen_tx.send(Seen::Closed(e.to_string()));
                                if !reconnect {
                                    return;
                                }
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                });
                (Client::V311(client), poller)
            }
        };
        let connected = tokio::time::timeout(PATIENCE, connack_rx)
            .await
            .map_err(|_| "no CONNACK in time".to_string())?
            .map_err(|_| "event loop ended".to_string())??;
        Ok((
            Self {
                client,
                seen,
                pending: VecDeque::new(),
                poller,
            },
            connected,
        ))
    }

    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>, qos1: bool) {
        let payload: Vec<u8> = payload.into();
        match &self.client {
            Client::V5(c) => {
                let qos = if qos1 {
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce
                } else {
                    rumqttc::v5::mqttbytes::QoS::AtMostOnce
                };
                c.publish(topic, qos, false, payload)
                    .await
                    .expect("publish")
            }
            Client::V311(c) => {
                let qos = if qos1 {
                    rumqttc::QoS::AtLeastOnce
                } else {
                    rumqttc::QoS::AtMostOnce
                };
                c.publish(topic, qos, false, payload)
                    .await
                    .expect("publish")
            }
        }
    }

    /// Subscribes and waits for the SUBACK (messages seen meanwhile are kept).
    pub async fn subscribe(&mut self, filter: &str) {
        match &self.client {
            Client::V5(c) => c
                .subscribe(filter, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
                .await
                .expect("subscribe"),
            Client::V311(c) => c
                .subscribe(filter, rumqttc::QoS::AtLeastOnce)
                .await
                .expect("subscribe"),
        }
        loop {
            match self.receive().await {
                Seen::SubAck => break,
                Seen::Closed(why) => panic!("closed while subscribing: {why}"),
                other => self.pending.push_back(other),
            }
        }
    }

    async fn receive(&mut self) -> Seen {
        tokio::time::timeout(PATIENCE, self.seen.recv())
            .await
            .expect("nothing seen in time")
            .expect("device event loop ended")
    }

    async fn next_seen(&mut self) -> Seen {
        match self.pending.pop_front() {
            Some(seen) => seen,
            None => self.receive().await,
        }
    }

    /// The next message; panics when the connection closes first.
    pub async fn next_message(&mut self) -> (String, Bytes) {
        loop {
            match self.next_seen().await {
                Seen::Message { topic, payload } => return (topic, payload),
                Seen::SubAck => {}
                Seen::Closed(why) => panic!("connection closed: {why}"),
            }
        }
    }

    /// The next message, which must be on `topic`.
    pub async fn expect(&mut self, topic: &str) -> Bytes {
        let (t, payload) = self.next_message().await;
        assert_eq!(t, topic, "payload: {}", String::from_utf8_lossy(&payload));
        payload
    }

    /// The next message as JSON, which must be on `topic`.
    pub async fn expect_json(&mut self, topic: &str) -> serde_json::Value {
        let payload = self.expect(topic).await;
        serde_json::from_slice(&payload).expect("JSON payload")
    }

    /// Waits for the connection to close; returns why.
    pub async fn closed(&mut self) -> String {
        loop {
            if let Seen::Closed(why) = self.next_seen().await {
                return why;
            }
        }
    }

    pub async fn disconnect(&self) {
        match &self.client {
            Client::V5(c) => {
                let _ = c.disconnect().await;
            }
            Client::V311(c) => {
                let _ = c.disconnect().await;
            }
        }
    }

    /// Drops the connection without DISCONNECT (the event loop stops).
    pub fn kill(self) {
        self.poller.abort();
    }
}
