//! The topics of ThingsBoard's device MQTT API, in endpoint form (`v1/devices/me/...`,
//! `v2/fw/...`): parsing what a device publishes and naming what it is sent.

use ota_core::PackageKind;

/// Telemetry from the device.
pub const TELEMETRY: &str = "v1/devices/me/telemetry";
/// Client attributes from the device; shared attribute updates and deletions to it.
pub const ATTRIBUTES: &str = "v1/devices/me/attributes";
/// Errors about messages that have no response topic of their own (telemetry, client
/// attributes, unknown topics): `{"topic":"...","error":"..."}`. An extension of ours.
pub const ERRORS: &str = "v1/devices/me/errors";

/// Longest request id accepted in a topic (attribute, RPC and chunk requests).
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// What a topic a device published to means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InboundTopic<'a> {
    /// `v1/devices/me/telemetry`.
    Telemetry,
    /// `v1/devices/me/attributes` (client attributes).
    ClientAttributes,
    /// `v1/devices/me/attributes/request/{id}`.
    AttributeRequest {
        /// The request id, echoed in the response topic.
        id: &'a str,
    },
    /// `v1/devices/me/rpc/request/{id}` (client-side RPC).
    RpcRequest {
        /// The request id, echoed in the response topic.
        id: &'a str,
    },
    /// `v2/fw/request/{requestId}/chunk/{chunk}` or the same with `sw`.
    ChunkRequest {
        /// Firmware or software.
        kind: PackageKind,
        /// The device's download id.
        request_id: &'a str,
        /// The chunk index, as written (validated later so that the error goes to the right
        /// error topic).
        chunk: &'a str,
    },
    /// A malformed request topic of a known family: the error goes to `error_topic`.
    Malformed {
        /// Where the error is answered.
        error_topic: ErrorTopic,
        /// What is wrong.
        message: String,
    },
    /// Any other topic.
    Unknown,
}

/// Where an error about a request is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorTopic {
    /// [`ERRORS`].
    General,
    /// `v2/fw/error` or `v2/sw/error`.
    Chunk(PackageKind),
}

impl ErrorTopic {
    /// The topic name.
    pub fn topic(self) -> String {
        match self {
            Self::General => ERRORS.to_string(),
            Self::Chunk(kind) => chunk_error_topic(kind),
        }
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN && !id.contains(['+', '#'])
}

/// Parses a topic in endpoint form.
pub fn parse(topic: &str) -> InboundTopic<'_> {
    match topic {
        TELEMETRY => return InboundTopic::Telemetry,
        ATTRIBUTES => return InboundTopic::ClientAttributes,
        _ => {}
    }
    if let Some(id) = topic.strip_prefix("v1/devices/me/attributes/request/") {
        return if valid_id(id) && !id.contains('/') {
            InboundTopic::AttributeRequest { id }
        } else {
            malformed(ErrorTopic::General, "attribute request id", id)
        };
    }
    if let Some(id) = topic.strip_prefix("v1/devices/me/rpc/request/") {
        return if valid_id(id) && !id.contains('/') {
            InboundTopic::RpcRequest { id }
        } else {
            malformed(ErrorTopic::General, "RPC request id", id)
        };
    }
    for kind in PackageKind::ALL {
        let prefix = format!("v2/{}/request/", kind.prefix());
        if let Some(rest) = topic.strip_prefix(prefix.as_str()) {
            let mut parts = rest.split('/');
            return match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(request_id), Some("chunk"), Some(chunk), None) if valid_id(request_id) => {
                    InboundTopic::ChunkRequest {
                        kind,
                        request_id,
                        chunk,
                    }
                }
                _ => InboundTopic::Malformed {
                    error_topic: ErrorTopic::Chunk(kind),
                    message: format!(
                        "chunk requests are published to v2/{p}/request/{{requestId}}/chunk/{{chunk}}, not {topic}",
                        p = kind.prefix()
                    ),
                },
            };
        }
    }
    InboundTopic::Unknown
}

fn malformed<'a>(error_topic: ErrorTopic, what: &str, id: &str) -> InboundTopic<'a> {
    InboundTopic::Malformed {
        error_topic,
        message: format!(
            "invalid {what} {id:?}: 1 to {MAX_REQUEST_ID_LEN} characters without '/', '+' or '#'"
        ),
    }
}

/// `v1/devices/me/attributes/response/{id}`.
pub fn attribute_response_topic(id: &str) -> String {
    format!("v1/devices/me/attributes/response/{id}")
}

/// `v1/devices/me/rpc/response/{id}`.
pub fn rpc_response_topic(id: &str) -> String {
    format!("v1/devices/me/rpc/response/{id}")
}

/// `v2/{fw|sw}/response/{requestId}/chunk/{chunk}`.
pub fn chunk_response_topic(kind: PackageKind, request_id: &str, chunk: u64) -> String {
    format!("v2/{}/response/{request_id}/chunk/{chunk}", kind.prefix())
}

/// `v2/{fw|sw}/error`.
pub fn chunk_error_topic(kind: PackageKind) -> String {
    format!("v2/{}/error", kind.prefix())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_topics() {
        assert_eq!(parse(TELEMETRY), InboundTopic::Telemetry);
        assert_eq!(parse(ATTRIBUTES), InboundTopic::ClientAttributes);
        assert_eq!(
            parse("v1/devices/me/attributes/request/7"),
            InboundTopic::AttributeRequest { id: "7" }
        );
        assert_eq!(
            parse("v1/devices/me/rpc/request/abc"),
            InboundTopic::RpcRequest { id: "abc" }
        );
        assert_eq!(
            parse("v2/sw/request/r1/chunk/12"),
            InboundTopic::ChunkRequest {
                kind: PackageKind::Software,
                request_id: "r1",
                chunk: "12"
            }
        );
    }

    #[test]
    fn malformed_and_unknown_topics() {
        assert!(matches!(
            parse("v2/fw/request/r1/chunk"),
            InboundTopic::Malformed {
                error_topic: ErrorTopic::Chunk(PackageKind::Firmware),
                ..
            }
        ));
        assert!(matches!(
            parse("v2/fw/request//chunk/1"),
            InboundTopic::Malformed { .. }
        ));
        assert!(matches!(
            parse("v2/fw/request/a/chunk/1/x"),
            InboundTopic::Malformed { .. }
        ));
        assert!(matches!(
            parse("v1/devices/me/attributes/request/"),
            InboundTopic::Malformed {
                error_topic: ErrorTopic::General,
                ..
            }
        ));
        assert!(matches!(
            parse("v1/devices/me/rpc/request/a/b"),
            InboundTopic::Malformed { .. }
        ));
        let long = format!(
            "v1/devices/me/rpc/request/{}",
            "x".repeat(MAX_REQUEST_ID_LEN + 1)
        );
        assert!(matches!(parse(&long), InboundTopic::Malformed { .. }));
        for t in [
            "",
            "v1/devices/me",
            "v1/devices/other/telemetry",
            "v1/devices/me/telemetry/x",
            "v2/xx/request/1/chunk/1",
            "v2/fw/response/1/chunk/1",
        ] {
            assert_eq!(parse(t), InboundTopic::Unknown, "{t}");
        }
    }

    #[test]
    fn response_topics() {
        assert_eq!(
            chunk_response_topic(PackageKind::Firmware, "r", 3),
            "v2/fw/response/r/chunk/3"
        );
        assert_eq!(chunk_error_topic(PackageKind::Software), "v2/sw/error");
        assert_eq!(
            attribute_response_topic("5"),
            "v1/devices/me/attributes/response/5"
        );
        assert_eq!(rpc_response_topic("5"), "v1/devices/me/rpc/response/5");
        assert_eq!(ErrorTopic::General.topic(), ERRORS);
    }
}
