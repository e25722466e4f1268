//! The MQTT packets the endpoint reads and writes, for both protocol versions, through the
//! server crate's builders (no packet encoding here).

use bytes::Bytes;
use mqtt_endpoint_tokio::mqtt_ep;
use mqtt_ep::packet::{v3_1_1, v5_0, Packet, Property, Qos, ReasonString};
use mqtt_ep::result_code::{
    ConnectReasonCode, ConnectReturnCode, DisconnectReasonCode, SubackReasonCode, SubackReturnCode,
    UnsubackReasonCode,
};
use mqtt_ep::{ConnectionError, Version};

/// The server side of one connection.
pub(crate) type ServerEndpoint = mqtt_ep::Endpoint<mqtt_ep::role::Server>;

/// What a device sent, independent of the protocol version.
#[derive(Debug)]
pub(crate) enum Inbound {
    Connect {
        version: Version,
        username: Option<String>,
        clean_start: bool,
    },
    Publish {
        topic: String,
        payload: Bytes,
        qos: u8,
    },
    Subscribe {
        packet_id: u16,
        filters: Vec<(String, u8)>,
    },
    Unsubscribe {
        packet_id: u16,
        filters: Vec<String>,
    },
    Disconnect,
    /// Acknowledgements and pings, handled by the server crate.
    Other,
}

fn qos_number(qos: Qos) -> u8 {
    match qos {
        Qos::AtMostOnce => 0,
        Qos::AtLeastOnce => 1,
        Qos::ExactlyOnce => 2,
    }
}

/// Reads a packet.
pub(crate) fn classify(packet: Packet) -> Inbound {
    match packet {
        Packet::V5_0Connect(c) => Inbound::Connect {
            version: Version::V5_0,
            username: c.user_name().map(str::to_string),
            clean_start: c.clean_start(),
        },
        Packet::V3_1_1Connect(c) => Inbound::Connect {
            version: Version::V3_1_1,
            username: c.user_name().map(str::to_string),
            clean_start: c.clean_session(),
        },
        Packet::V5_0Publish(p) => Inbound::Publish {
            topic: p.topic_name().to_string(),
            payload: Bytes::copy_from_slice(p.payload().as_slice()),
            qos: qos_number(p.qos()),
        },
        Packet::V3_1_1Publish(p) => Inbound::Publish {
            topic: p.topic_name().to_string(),
            payload: Bytes::copy_from_slice(p.payload().as_slice()),
            qos: qos_number(p.qos()),
        },
        Packet::V5_0Subscribe(s) => Inbound::Subscribe {
            packet_id: s.packet_id(),
            filters: s
                .entries()
                .iter()
                .map(|e| (e.topic_filter().to_string(), qos_number(e.sub_opts().qos())))
                .collect(),
        },
        Packet::V3_1_1Subscribe(s) => Inbound::Subscribe {
            packet_id: s.packet_id(),
            filters: s
                .entries()
                .iter()
                .map(|e| (e.topic_filter().to_string(), qos_number(e.sub_opts().qos())))
                .collect(),
        },
        Packet::V5_0Unsubscribe(u) => Inbound::Unsubscribe {
            packet_id: u.packet_id(),
            filters: u.entries().iter().map(|e| e.as_str().to_string()).collect(),
        },
        Packet::V3_1_1Unsubscribe(u) => Inbound::Unsubscribe {
            packet_id: u.packet_id(),
            filters: u.entries().iter().map(|e| e.as_str().to_string()).collect(),
        },
        Packet::V5_0Disconnect(_) | Packet::V3_1_1Disconnect(_) => Inbound::Disconnect,
        _ => Inbound::Other,
    }
}

/// Why a connection is refused at CONNACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    NotAuthorized,
    ServerUnavailable,
    ServerBusy,
}

/// Sends the CONNACK: success (with `session_present`) or a refusal.
pub(crate) async fn connack(
    ep: &ServerEndpoint,
    version: Version,
    refusal: Option<Refusal>,
    session_present: bool,
) -> Result<(), ConnectionError> {
    if version == Version::V5_0 {
        let code = match refusal {
            None => ConnectReasonCode::Success,
            Some(Refusal::NotAuthorized) => ConnectReasonCode::NotAuthorized,
            Some(Refusal::ServerUnavailable) => ConnectReasonCode::ServerUnavailable,
            Some(Refusal::ServerBusy) => ConnectReasonCode::ServerBusy,
        };
        let packet = v5_0::Connack::builder()
            .session_present(session_present && refusal.is_none())
            .reason_code(code)
            .build()
            .map_err(ConnectionError::Mqtt)?;
        ep.send(packet).await
    } else {
        let code = match refusal {
            None => ConnectReturnCode::Accepted,
            Some(Refusal::NotAuthorized) => ConnectReturnCode::NotAuthorized,
            Some(Refusal::ServerUnavailable | Refusal::ServerBusy) => {
                ConnectReturnCode::ServerUnavailable
            }
        };
        let packet = v3_1_1::Connack::builder()
            .session_present(session_present && refusal.is_none())
            .return_code(code)
            .build()
            .map_err(ConnectionError::Mqtt)?;
        ep.send(packet).await
    }
}

/// Answers a SUBSCRIBE: each filter granted at most QoS 1, or refused (`None`).
pub(crate) async fn suback(
    ep: &ServerEndpoint,
    version: Version,
    packet_id: u16,
    granted: &[Option<u8>],
) -> Result<(), ConnectionError> {
    if version == Version::V5_0 {
        let codes = granted
            .iter()
            .map(|g| match g {
                Some(0) => SubackReasonCode::GrantedQos0,
                Some(_) => SubackReasonCode::GrantedQos1,
                None => SubackReasonCode::TopicFilterInvalid,
            })
            .collect();
        let packet = v5_0::Suback::builder()
            .packet_id(packet_id)
            .reason_codes(codes)
            .build()
            .map_err(ConnectionError::Mqtt)?;
        ep.send(packet).await
    } else {
        let codes = granted
            .iter()
            .map(|g| match g {
                Some(0) => SubackReturnCode::SuccessMaximumQos0,
                Some(_) => SubackReturnCode::SuccessMaximumQos1,
                None => SubackReturnCode::Failure,
            })
            .collect();
        let packet = v3_1_1::Suback::builder()
            .packet_id(packet_id)
            .return_codes(codes)
            .build()
            .map_err(ConnectionError::Mqtt)?;
        ep.send(packet).await
    }
}

/// Answers an UNSUBSCRIBE of `count` filters.
pub(crate) async fn unsuback(
    ep: &ServerEndpoint,
    version: Version,
    packet_id: u16,
    count: usize,
) -> Result<(), ConnectionError> {
    if version == Version::V5_0 {
        let packet = v5_0::Unsuback::builder()
            .packet_id(packet_id)
            .reason_codes(vec![UnsubackReasonCode::Success; count])
            .build()
            .map_err(ConnectionError::Mqtt)?;
        ep.send(packet).await
    } else {
        let packet = v3_1_1::Unsuback::builder()
            .packet_id(packet_id)
            .build()
            .map_err(ConnectionError::Mqtt)?;
        ep.send(packet).await
    }
}

/// Publishes to the device at QoS 0 or 1.
pub(crate) async fn publish(
    ep: &ServerEndpoint,
    version: Version,
    topic: &str,
    payload: &Bytes,
    qos: u8,
) -> Result<(), ConnectionError> {
    let qos = if qos == 0 {
        Qos::AtMostOnce
    } else {
        Qos::AtLeastOnce
    };
    let packet_id = if qos == Qos::AtLeastOnce {
        Some(ep.acquire_packet_id_when_available().await?)
    } else {
        None
    };
    // Copied once, into the packet's shared buffer.
    let data: &[u8] = payload.as_ref();
    if version == Version::V5_0 {
        let mut builder = v5_0::Publish::builder()
            .topic_name(topic)
            .map_err(ConnectionError::Mqtt)?
            .qos(qos)
            .payload(data);
        if let Some(id) = packet_id {
            builder = builder.packet_id(id);
        }
        let packet = builder.build().map_err(ConnectionError::Mqtt)?;
        let result = ep.send(packet).await;
        release_on_error(ep, packet_id, result).await
    } else {
        let mut builder = v3_1_1::Publish::builder()
            .topic_name(topic)
            .map_err(ConnectionError::Mqtt)?
            .qos(qos)
            .payload(data);
        if let Some(id) = packet_id {
            builder = builder.packet_id(id);
        }
        let packet = builder.build().map_err(ConnectionError::Mqtt)?;
        let result = ep.send(packet).await;
        release_on_error(ep, packet_id, result).await
    }
}

async fn release_on_error(
    ep: &ServerEndpoint,
    packet_id: Option<u16>,
    result: Result<(), ConnectionError>,
) -> Result<(), ConnectionError> {
    if result.is_err() {
        if let Some(id) = packet_id {
            let _ = ep.release_packet_id(id).await;
        }
    }
    result
}

/// Why the server closes a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Closing {
    SessionTakenOver,
    ServerShuttingDown,
    RateTooHigh,
}

/// Tells an MQTT 5 device why it is disconnected (MQTT 3.1.1 has no server DISCONNECT: the
/// connection is just closed).
pub(crate) async fn disconnect(ep: &ServerEndpoint, version: Version, why: Closing, text: &str) {
    if version != Version::V5_0 {
        return;
    }
    let code = match why {
        Closing::SessionTakenOver => DisconnectReasonCode::SessionTakenOver,
        Closing::ServerShuttingDown => DisconnectReasonCode::ServerShuttingDown,
        Closing::RateTooHigh => DisconnectReasonCode::MessageRateTooHigh,
    };
    let mut builder = v5_0::Disconnect::builder().reason_code(code);
    if let Ok(reason) = ReasonString::new(text) {
        builder = builder.props(vec![Property::ReasonString(reason)]);
    }
    if let Ok(packet) = builder.build() {
        let _ = ep.send(packet).await;
    }
}
