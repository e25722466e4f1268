//! One device connection: CONNECT and authentication, then the device's messages, notices
//! and the end of the connection.

use super::packets::{self, Closing, Inbound, Refusal, ServerEndpoint};
use super::registry::Subscription;
use super::Shared;
use crate::protocol::{topic, DeviceSession, Outgoing};
use mqtt_endpoint_tokio::mqtt_ep;
use mqtt_ep::{ConnectionError, Version};
use ota_core::Device;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};

/// Runs one connection to its end.
pub(crate) async fn run(
    stream: TcpStream,
    shared: Arc<Shared>,
    permit: Option<OwnedSemaphorePermit>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let limits = &shared.config.limits;
    let options = mqtt_ep::ConnectionOptions::new()
        .maximum_packet_size_recv(limits.max_payload_size)
        .receive_maximum(limits.max_inflight.max(1));
    let ep = Arc::new(ServerEndpoint::with_options(Version::Undetermined, options));
    let connect_ms = u64::try_from(shared.config.connect_timeout.as_millis()).unwrap_or(u64::MAX);
    let attach = mqtt_ep::ConnectionOption::builder()
        .connection_establish_timeout_ms(connect_ms.max(1))
        .queuing_receive_maximum(true)
        .build();
    let Ok(attach) = attach else {
        return;
    };
    let transport = mqtt_ep::transport::TcpTransport::from_stream(stream);
    if ep
        .attach_with_options(transport, mqtt_ep::Mode::Server, attach)
        .await
        .is_err()
    {
        return;
    }
    let first = tokio::time::timeout(shared.config.connect_timeout, ep.recv()).await;
    let (version, username, clean_start) = match first {
        Ok(Ok(packet)) => match packets::classify(packet) {
            Inbound::Connect {
                version,
                username,
                clean_start,
            } => (version, username, clean_start),
            _ => {
                let _ = ep.close().await;
                return;
            }
        },
        _ => {
            let _ = ep.close().await;
            return;
        }
    };
    if permit.is_none() {
        tracing::warn!("connection refused: the endpoint is at its maximum of connections");
        refuse(&ep, version, Refusal::ServerBusy).await;
        return;
    }
    let device = match username.as_deref() {
        Some(token) if !token.is_empty() => {
            match shared.handler.ota().store().device_by_token(token).await {
                Ok(device) => device,
                Err(e) if e.is_not_found() => {
                    refuse(&ep, version, Refusal::NotAuthorized).await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "device lookup failed at CONNECT");
                    refuse(&ep, version, Refusal::ServerUnavailable).await;
                    return;
                }
            }
        }
        _ => {
            refuse(&ep, version, Refusal::NotAuthorized).await;
            return;
        }
    };
    let registration = shared.registry.register(device.id, clean_start);
    let session_present = registration.restored.is_some();
    if packets::connack(&ep, version, None, session_present)
        .await
        .is_err()
    {
        shared
            .registry
            .unregister(device.id, registration.connection, None);
        let _ = ep.close().await;
        return;
    }
    tracing::debug!(device = %device.id, ?version, "device connected");

    let mut connection = Connection {
        ep: ep.clone(),
        version,
        session: DeviceSession::new(limits.clone(), shared.now_ms()),
        subscriptions: registration.restored.clone().unwrap_or_default(),
        shared: shared.clone(),
        device,
    };
    if connection.subscribes_to_notices() {
        connection.take_waiting_notices().await;
    }
    let (packets_tx, mut packets_rx) = mpsc::channel(16);
    let reader = tokio::spawn(read_packets(ep.clone(), packets_tx));
    let mut notices = registration.notices;
    let kicked = registration.kicked.clone();
    let mut clean_end = false;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                packets::disconnect(&ep, version, Closing::ServerShuttingDown, "server shutting down").await;
                break;
            }
            _ = kicked.notified() => {
                packets::disconnect(&ep, version, Closing::SessionTakenOver,
                    "another connection with the same access token took over").await;
                break;
            }
            Some(notice) = notices.recv() => {
                if connection.deliver_notice(notice).await.is_err() {
                    break;
                }
            }
            packet = packets_rx.recv() => {
                let Some(packet) = packet else { break };
                match connection.on_packet(packet).await {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Disconnected) => {
                        clean_end = true;
                        break;
                    }
                    Ok(Flow::Close(reason)) => {
                        tracing::info!(device = %connection.device.id, reason, "closing connection");
                        packets::disconnect(&ep, version, Closing::RateTooHigh, &reason).await;
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(device = %connection.device.id, error = ?e, "connection failed");
                        break;
                    }
                }
            }
        }
    }
    reader.abort();
    let keep = (!clean_start).then(|| connection.subscriptions.clone());
    shared
        .registry
        .unregister(connection.device.id, registration.connection, keep);
    let _ = ep.close().await;
    tracing::debug!(device = %connection.device.id, clean_end, "device disconnected");
    drop(permit);
}

async fn refuse(ep: &ServerEndpoint, version: Version, refusal: Refusal) {
    let _ = packets::connack(ep, version, Some(refusal), false).await;
    let _ = ep.close().await;
}

/// Reads packets into `tx` until the connection ends. Acknowledgements and pings are handled
/// by the server crate and not forwarded, so that they are read even while the connection's
/// task waits for the device's in-flight window.
async fn read_packets(ep: Arc<ServerEndpoint>, tx: mpsc::Sender<Inbound>) {
    loop {
        match ep.recv().await {
            Ok(packet) => {
                let inbound = packets::classify(packet);
                if matches!(inbound, Inbound::Other) {
                    continue;
                }
                let last = matches!(inbound, Inbound::Disconnect);
                if tx.send(inbound).await.is_err() || last {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

enum Flow {
    Continue,
    Disconnected,
    Close(String),
}

struct Connection {
    ep: Arc<ServerEndpoint>,
    version: Version,
    session: DeviceSession,
    subscriptions: Vec<Subscription>,
    shared: Arc<Shared>,
    device: Device,
}

impl Connection {
    async fn on_packet(&mut self, inbound: Inbound) -> Result<Flow, ConnectionError> {
        match inbound {
            Inbound::Publish {
                topic,
                payload,
                qos,
            } => {
                let now = self.shared.now_ms();
                let handled = self
                    .shared
                    .handler
                    .handle(&self.device, &mut self.session, &topic, &payload, now)
                    .await;
                for reply in &handled.replies {
                    self.send(reply, qos.min(1)).await?;
                }
                Ok(match handled.disconnect {
                    Some(reason) => Flow::Close(reason),
                    None => Flow::Continue,
                })
            }
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
                packets::suback(&self.ep, self.version, packet_id, &granted).await?;
                if !before && self.subscribes_to_notices() {
                    self.take_waiting_notices().await;
                }
                Ok(Flow::Continue)
            }
            Inbound::Unsubscribe { packet_id, filters } => {
                self.subscriptions.retain(|(f, _)| !filters.contains(f));
                packets::unsuback(&self.ep, self.version, packet_id, filters.len()).await?;
                Ok(Flow::Continue)
            }
            Inbound::Disconnect => Ok(Flow::Disconnected),
            Inbound::Connect { .. } | Inbound::Other => Ok(Flow::Continue),
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
    async fn deliver_notice(&mut self, notice: Outgoing) -> Result<(), ConnectionError> {
        match self.notice_qos() {
            Some(qos) => self.send(&notice, qos).await,
            None => Ok(()),
        }
    }

    /// Sends a message to the device. A message the device's limits refuse (MQTT 5 Maximum
    /// Packet Size) is not sent: a chunk is answered with an error on the error topic instead,
    /// anything else is logged. A failed connection is an error.
    async fn send(&self, message: &Outgoing, qos: u8) -> Result<(), ConnectionError> {
        match packets::publish(
            &self.ep,
            self.version,
            &message.topic,
            &message.payload,
            qos,
        )
        .await
        {
            Ok(()) => Ok(()),
            Err(ConnectionError::Mqtt(e)) => {
                tracing::info!(device = %self.device.id, topic = %message.topic, error = ?e,
                    "message not sent");
                if let Some(error) = refused_chunk_error(message) {
                    let sent =
                        packets::publish(&self.ep, self.version, &error.topic, &error.payload, qos)
                            .await;
                    if let Err(e @ ConnectionError::Transport(_)) = sent {
                        return Err(e);
                    }
                }
                Ok(())
            }
            Err(e) => Err(e),
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
