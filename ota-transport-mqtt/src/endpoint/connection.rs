//! One device connection: CONNECT and authentication, then the device's messages, notices
//! and the end of the connection. The connection's task does all of it (one task per
//! device): it reads and parses the device's packets, calls the engine, and writes the
//! answers, see [`super::link`].

use super::link::Link;
use super::packets::{self, Closing, Inbound, Refusal};
use super::registry::Subscription;
use super::Shared;
use crate::protocol::{topic, DeviceSession, Outgoing};
use mqtt::connection::ConnectionOptions;
use mqtt::packet::Packet;
use mqtt::result_code::MqttError;
use mqtt::Version;
use mqtt_protocol_core::mqtt;
use ota_core::Device;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit};

/// Most QoS 1 messages waiting for room in the device's in-flight window; a device that
/// leaves more unacknowledged is disconnected.
const MAX_WAITING: usize = 1024;

/// Runs one connection to its end.
pub(crate) async fn run(
    stream: TcpStream,
    shared: Arc<Shared>,
    permit: Option<OwnedSemaphorePermit>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let limits = &shared.config.limits;
    let options = ConnectionOptions::new()
        .maximum_packet_size_recv(limits.max_payload_size)
        .receive_maximum(limits.max_inflight.max(1));
    let mut link = Link::new(stream, options);
    let grace = shared.config.shutdown_grace;
    let first = tokio::time::timeout(shared.config.connect_timeout, first_packet(&mut link)).await;
    let (version, username, clean_start) = match first.ok().flatten().map(packets::classify) {
        Some(Inbound::Connect {
            version,
            username,
            clean_start,
        }) => (version, username, clean_start),
        _ => {
            link.close(grace).await;
            return;
        }
    };
    if permit.is_none() {
        tracing::warn!("connection refused: the endpoint is at its maximum of connections");
        refuse(link, version, Refusal::ServerBusy, grace).await;
        return;
    }
    let device = match username.as_deref() {
        Some(token) if !token.is_empty() => {
            let Some(slot) = shared.lookups.enter().await else {
                // A reconnect storm: the look-ups in flight are at their bound.
                tracing::debug!("connection refused: CONNECT look-ups are at their maximum");
                refuse(link, version, Refusal::ServerBusy, grace).await;
                return;
            };
            let found = shared.handler.ota().store().device_by_token(token).await;
            drop(slot);
            match found {
                Ok(device) => device,
                Err(e) if e.is_not_found() => {
                    refuse(link, version, Refusal::NotAuthorized, grace).await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "device lookup failed at CONNECT");
                    refuse(link, version, Refusal::ServerUnavailable, grace).await;
                    return;
                }
            }
        }
        _ => {
            refuse(link, version, Refusal::NotAuthorized, grace).await;
            return;
        }
    };
    let registration = shared.registry.register(device.id, clean_start);
    let session_present = registration.restored.is_some();
    let accepted = packets::connack(version, None, session_present).and_then(|p| link.send(p));
    if accepted.is_err() {
        shared
            .registry
            .unregister(device.id, registration.connection, None);
        link.close(grace).await;
        return;
    }
    tracing::debug!(device = %device.id, ?version, "device connected");

    let mut connection = Connection {
        link,
        version,
        session: DeviceSession::new(limits.clone(), shared.now_ms()),
        subscriptions: registration.restored.clone().unwrap_or_default(),
        waiting: VecDeque::new(),
        shared: shared.clone(),
        device,
    };
    if connection.subscribes_to_notices() {
        connection.take_waiting_notices().await;
    }
    let mut notices = registration.notices;
    let kicked = registration.kicked.clone();
    let mut clean_end = false;
    'connection: loop {
        while let Some(packet) = connection.link.take_received() {
            match connection.on_packet(packet).await {
                Flow::Continue => {}
                Flow::Disconnected => {
                    clean_end = true;
                    break 'connection;
                }
                Flow::Close(why, reason) => {
                    tracing::info!(device = %connection.device.id, reason, "closing connection");
                    connection.disconnect(why, &reason);
                    break 'connection;
                }
            }
        }
        if connection.link.take_released() {
            connection.send_waiting();
        }
        if connection.waiting.len() > MAX_WAITING {
            let reason = format!(
                "more than {MAX_WAITING} messages wait for the device to acknowledge earlier ones"
            );
            tracing::info!(device = %connection.device.id, reason, "closing connection");
            connection.disconnect(Closing::QuotaExceeded, &reason);
            break;
        }
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                connection.disconnect(Closing::ServerShuttingDown, "server shutting down");
                break;
            }
            _ = kicked.notified() => {
                connection.disconnect(Closing::SessionTakenOver,
                    "another connection with the same access token took over");
                break;
            }
            Some(notice) = notices.recv() => connection.deliver_notice(notice),
            io = connection.link.io() => {
                if let Err(e) = io {
                    tracing::debug!(device = %connection.device.id, error = %e, "connection ended");
                    break;
                }
            }
        }
    }
    let keep = (!clean_start).then(|| connection.subscriptions.clone());
    shared
        .registry
        .unregister(connection.device.id, registration.connection, keep);
    let device = connection.device.id;
    connection.link.close(grace).await;
    tracing::debug!(%device, clean_end, "device disconnected");
    drop(permit);
}

/// The first packet of the connection (CONNECT, when the device follows the protocol).
async fn first_packet(link: &mut Link) -> Option<Packet> {
    loop {
        if let Some(packet) = link.take_received() {
            return Some(packet);
        }
        if link.io().await.is_err() {
            return None;
        }
    }
}

async fn refuse(mut link: Link, version: Version, refusal: Refusal, grace: Duration) {
    if let Ok(packet) = packets::connack(version, Some(refusal), false) {
        let _ = link.send(packet);
    }
    link.close(grace).await;
}

enum Flow {
    Continue,
    Disconnected,
    Close(Closing, String),
}

struct Connection {
    link: Link,
    version: Version,
    session: DeviceSession,
    subscriptions: Vec<Subscription>,
    /// QoS 1 messages waiting for room in the device's in-flight window, in order.
    waiting: VecDeque<Outgoing>,
    shared: Arc<Shared>,
    device: Device,
}

impl Connection {
    async fn on_packet(&mut self, packet: Packet) -> Flow {
        if let Some((topic, payload, qos)) = packets::publish_parts(&packet) {
            let now = self.shared.now_ms();
            let handled = self
                .shared
                .handler
                .handle(&self.device, &mut self.session, topic, payload, now)
                .await;
            for reply in handled.replies {
                self.send(reply, qos.min(1));
            }
            return match handled.disconnect {
                Some(reason) => Flow::Close(Closing::RateTooHigh, reason),
                None => Flow::Continue,
            };
        }
        match packets::classify(packet) {
            Inbound::Subscribe { packet_id, filters } => {
                let before = self.subscribes_to_notices();
                let mut granted = Vec::with_capacity(filters.len());
                for (filter, qos) in filters {
                    if valid_filter(&filter) {
                        let qos = qos.min(1);
                        self.subscriptions.retain(|(f, _)| *f != filter);
                        if self.subscriptions.len() < MAX_SUBSCRIPTIONS {
                            self.subscriptions.push((filter, qos));
                            granted.push(Some(qos));
                        } else {
                            granted.push(None);
                        }
                    } else {
                        granted.push(None);
                    }
                }
                self.send_packet(packets::suback(self.version, packet_id, &granted));
                if !before && self.subscribes_to_notices() {
                    self.take_waiting_notices().await;
                }
                Flow::Continue
            }
            Inbound::Unsubscribe { packet_id, filters } => {
                self.subscriptions.retain(|(f, _)| !filters.contains(f));
                self.send_packet(packets::unsuback(self.version, packet_id, filters.len()));
                Flow::Continue
            }
            Inbound::Disconnect => Flow::Disconnected,
            Inbound::Publish | Inbound::Connect { .. } | Inbound::Other => Flow::Continue,
        }
    }

    fn send_packet(&mut self, packet: Result<Packet, MqttError>) {
        if let Err(e) = packet.and_then(|p| self.link.send(p)) {
            tracing::debug!(device = %self.device.id, error = ?e, "answer not sent");
        }
    }

    /// Queues the MQTT 5 DISCONNECT telling the device why it is closed (MQTT 3.1.1: the
    /// connection is just closed).
    fn disconnect(&mut self, why: Closing, reason: &str) {
        if let Some(packet) = packets::disconnect(self.version, why, reason) {
            let _ = self.link.send(packet);
        }
    }

    /// The QoS at which notices reach the device, `None` when it does not subscribe to them.
    fn notice_qos(&self) -> Option<u8> {
        self.subscriptions
            .iter()
            .filter(|(filter, _)| rumqttc::matches(topic::ATTRIBUTES, filter))
            .map(|(_, qos)| *qos)
            .max()
    }

    fn subscribes_to_notices(&self) -> bool {
        self.notice_qos().is_some()
    }

    /// With other instances on the store, takes the notices that wait in the outbox for this
    /// device (released by another instance, or while it was away): they come through the
    /// registry like any notice.
    async fn take_waiting_notices(&self) {
        if !self.shared.registry.is_across_instances() {
            return;
        }
        let device = self.device.id;
        if let Err(e) = self
            .shared
            .handler
            .ota()
            .deliver_notices_for(&[device])
            .await
        {
            tracing::warn!(%device, error = %e, "waiting notices not taken; retried later");
        }
    }

    /// Sends a notice when the device subscribes to its topic, at the subscription's QoS.
    fn deliver_notice(&mut self, notice: Outgoing) {
        if let Some(qos) = self.notice_qos() {
            self.send(notice, qos);
        }
    }

    /// Sends a message to the device, or queues it (QoS 1) until the device's in-flight
    /// window has room. A message the device's limits refuse (MQTT 5 Maximum Packet Size) is
    /// not sent: a chunk is answered with an error on the error topic instead, anything else
    /// is logged.
    fn send(&mut self, message: Outgoing, qos: u8) {
        if qos == 0 {
            self.send_now(message, None);
        } else if !self.waiting.is_empty() {
            self.waiting.push_back(message);
        } else if let Err(message) = self.send_one_qos1(message) {
            self.waiting.push_back(message);
        }
    }

    /// Sends queued QoS 1 messages while the device's window has room.
    fn send_waiting(&mut self) {
        while let Some(message) = self.waiting.pop_front() {
            if let Err(message) = self.send_one_qos1(message) {
                self.waiting.push_front(message);
                return;
            }
        }
    }

    /// Sends one QoS 1 message; gives it back when the window is full.
    fn send_one_qos1(&mut self, message: Outgoing) -> Result<(), Outgoing> {
        if !self.link.has_send_room() {
            return Err(message);
        }
        let Some(id) = self.link.acquire_packet_id() else {
            return Err(message);
        };
        self.send_now(message, Some(id));
        Ok(())
    }

    fn send_now(&mut self, message: Outgoing, packet_id: Option<u16>) {
        let sent = packets::publish(self.version, &message.topic, &message.payload, packet_id)
            .and_then(|p| self.link.send(p));
        let Err(e) = sent else {
            return;
        };
        if let Some(id) = packet_id {
            self.link.release_packet_id(id);
        }
        tracing::info!(device = %self.device.id, topic = %message.topic, error = ?e,
            "message not sent");
        if let Some(error) = refused_chunk_error(&message) {
            let packet_id = match packet_id {
                Some(_) => match self.link.acquire_packet_id() {
                    Some(id) => Some(id),
                    None => return,
                },
                None => None,
            };
            let sent = packets::publish(self.version, &error.topic, &error.payload, packet_id)
                .and_then(|p| self.link.send(p));
            if let (Err(_), Some(id)) = (sent, packet_id) {
                self.link.release_packet_id(id);
            }
        }
    }
}

/// The error for a chunk the connection refused to carry (larger than the device's Maximum
/// Packet Size): `None` for messages that are not chunks.
fn refused_chunk_error(message: &Outgoing) -> Option<Outgoing> {
    let kind = ota_core::PackageKind::ALL.into_iter().find(|k| {
        message
            .topic
            .starts_with(&format!("v2/{}/response/", k.prefix()))
    })?;
    let mut parts = message.topic.split('/').skip(3);
    let (request_id, chunk) = (parts.next()?, parts.nth(1)?);
    Some(crate::protocol::replies::chunk_error(
        kind,
        request_id,
        chunk,
        &format!(
            "the chunk of {} bytes is larger than this connection's Maximum Packet Size: ask \
             for smaller chunks",
            message.payload.len()
        ),
    ))
}

/// Most subscriptions one connection holds.
const MAX_SUBSCRIPTIONS: usize = 32;

fn valid_filter(filter: &str) -> bool {
    !filter.is_empty() && filter.len() <= 1024 && rumqttc::valid_filter(filter)
}
