//! The MQTT packets the endpoint reads and writes, for both protocol versions, through
//! `mqtt-protocol-core`'s builders (no packet encoding here).

use mqtt::packet::{v3_1_1, v5_0, Packet, Property, Qos, ReasonString};
use mqtt::result_code::{
    ConnectReasonCode, ConnectReturnCode, DisconnectReasonCode, MqttError, SubackReasonCode,
    SubackReturnCode, UnsubackReasonCode,
};
use mqtt::Version;
use mqtt_protocol_core::mqtt;

/// What a device sent, independent of the protocol version.
#[derive(Debug)]
pub(crate) enum Inbound {
    Connect {
        version: Version,
        username: Option<String>,
        clean_start: bool,
    },
    /// A PUBLISH (either version): read with [`publish_parts`], without copying.
    Publish,
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
        Packet::V5_0Publish(_) | Packet::V3_1_1Publish(_) => Inbound::Publish,
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

/// Topic, payload and QoS of a PUBLISH, borrowed from the packet.
pub(crate) fn publish_parts(packet: &Packet) -> Option<(&str, &[u8], u8)> {
    match packet {
        Packet::V5_0Publish(p) => {
            Some((p.topic_name(), p.payload().as_slice(), qos_number(p.qos())))
        }
        Packet::V3_1_1Publish(p) => {
            Some((p.topic_name(), p.payload().as_slice(), qos_number(p.qos())))
        }
        _ => None,
    }
}

/// Why a connection is refused at CONNACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    NotAuthorized,
    ServerUnavailable,
    ServerBusy,
}

/// The CONNACK: success (with `session_present`) or a refusal.
pub(crate) fn connack(
    version: Version,
    refusal: Option<Refusal>,
    session_present: bool,
) -> Result<Packet, MqttError> {
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
            .build()?;
        Ok(packet.into())
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
            .build()?;
        Ok(packet.into())
    }
}

/// The answer to a SUBSCRIBE: each filter granted at most QoS 1, or refused (`None`).
pub(crate) fn suback(
    version: Version,
    packet_id: u16,
    granted: &[Option<u8>],
) -> Result<Packet, MqttError> {
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
            .build()?;
        Ok(packet.into())
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
            .build()?;
        Ok(packet.into())
    }
}

/// The answer to an UNSUBSCRIBE of `count` filters.
pub(crate) fn unsuback(
    version: Version,
    packet_id: u16,
    count: usize,
) -> Result<Packet, MqttError> {
    if version == Version::V5_0 {
        let packet = v5_0::Unsuback::builder()
            .packet_id(packet_id)
            .reason_codes(vec![UnsubackReasonCode::Success; count])
            .build()?;
        Ok(packet.into())
    } else {
        let packet = v3_1_1::Unsuback::builder().packet_id(packet_id).build()?;
        Ok(packet.into())
    }
}

/// A PUBLISH to the device at QoS 0 or, with a packet id, QoS 1. The payload is copied once,
/// into the packet.
pub(crate) fn publish(
    version: Version,
    topic: &str,
    payload: &[u8],
    packet_id: Option<u16>,
) -> Result<Packet, MqttError> {
    let qos = if packet_id.is_some() {
        Qos::AtLeastOnce
    } else {
        Qos::AtMostOnce
    };
    if version == Version::V5_0 {
        let mut builder = v5_0::Publish::builder()
            .topic_name(topic)?
            .qos(qos)
            .payload(payload);
        if let Some(id) = packet_id {
            builder = builder.packet_id(id);
        }
        Ok(builder.build()?.into())
    } else {
        let mut builder = v3_1_1::Publish::builder()
            .topic_name(topic)?
            .qos(qos)
            .payload(payload);
        if let Some(id) = packet_id {
            builder = builder.packet_id(id);
        }
        Ok(builder.build()?.into())
    }
}

/// Why the server closes a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Closing {
    SessionTakenOver,
    ServerShuttingDown,
    RateTooHigh,
    /// The device leaves too many messages unacknowledged.
    QuotaExceeded,
}

/// The DISCONNECT that tells an MQTT 5 device why it is disconnected; `None` for MQTT 3.1.1,
/// which has no server DISCONNECT (the connection is just closed).
pub(crate) fn disconnect(version: Version, why: Closing, text: &str) -> Option<Packet> {
    if version != Version::V5_0 {
        return None;
    }
    let code = match why {
        Closing::SessionTakenOver => DisconnectReasonCode::SessionTakenOver,
        Closing::ServerShuttingDown => DisconnectReasonCode::ServerShuttingDown,
        Closing::RateTooHigh => DisconnectReasonCode::MessageRateTooHigh,
        Closing::QuotaExceeded => DisconnectReasonCode::QuotaExceeded,
    };
    let mut builder = v5_0::Disconnect::builder().reason_code(code);
    if let Ok(reason) = ReasonString::new(text) {
        builder = builder.props(vec![Property::ReasonString(reason)]);
    }
    builder.build().ok().map(Into::into)
}
