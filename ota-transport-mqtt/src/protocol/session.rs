//! One device's protocol session: routes what the device publishes to replies, engine calls
//! or a disconnect, without any I/O.

use super::chunk::{self, ChunkRequest, Downloads};
use super::limits::{ProtocolLimits, RateLimiter};
use super::replies::{self, Outgoing};
use super::topic::{self, ErrorTopic, InboundTopic};
use bytes::Bytes;
use ota_core::{PackageId, PackageKind};
use serde_json::Value;

/// An engine call a message asks for; the answer is built from the engine's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineCall {
    /// Telemetry or client attributes: `Ota::handle_payload`.
    Report {
        /// The topic it came on (named in an error answer).
        topic: &'static str,
        /// The JSON payload.
        payload: Bytes,
    },
    /// An attribute request: `Ota::shared_attributes` of both kinds, answered with
    /// [`replies::attribute_response`].
    SharedAttributes {
        /// The request id.
        request_id: String,
        /// The shared keys asked for (`None`: all).
        keys: Option<Vec<String>>,
        /// Whether client keys were asked for.
        with_client: bool,
    },
    /// A chunk request: `Ota::authorize_download`, [`DeviceSession::bind_download`], then the
    /// content range.
    Chunk(ChunkRequest),
}

/// What to do with one message from the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routed {
    /// Send this answer; nothing else to do.
    Reply(Outgoing),
    /// Make this engine call.
    Call(EngineCall),
    /// Close the connection (the device broke a limit where no answer can be given).
    Disconnect {
        /// Why, for the log and the MQTT 5 reason string.
        reason: String,
    },
}

/// The state of one device connection.
#[derive(Clone, Debug)]
pub struct DeviceSession {
    limits: ProtocolLimits,
    limiter: RateLimiter,
    downloads: Downloads,
}

impl DeviceSession {
    /// A new session at `now_ms` (milliseconds of a monotonic clock).
    pub fn new(limits: ProtocolLimits, now_ms: u64) -> Self {
        Self {
            limiter: RateLimiter::new(limits.messages_per_second, now_ms),
            limits,
            downloads: Downloads::default(),
        }
    }

    /// The session's limits.
    pub fn limits(&self) -> &ProtocolLimits {
        &self.limits
    }

    /// Binds a chunk request's id to the package being served; an error message when the id
    /// already downloads another package (the assignment changed mid-download).
    pub fn bind_download(
        &mut self,
        kind: PackageKind,
        request_id: &str,
        package: PackageId,
    ) -> Result<(), String> {
        self.downloads.bind(kind, request_id, package).map_err(|_| {
            format!(
                "the {kind} assigned to the device changed during this download; \
                 start again with a new request id"
            )
        })
    }

    /// The package a chunk request id downloads, once bound.
    pub fn bound_package(&self, kind: PackageKind, request_id: &str) -> Option<PackageId> {
        self.downloads.bound(kind, request_id)
    }

    /// Routes a message the device published on `topic` (endpoint form) at `now_ms`.
    pub fn route(&mut self, topic_name: &str, payload: &[u8], now_ms: u64) -> Routed {
        let parsed = topic::parse(topic_name);
        let admitted = self.limiter.admit(now_ms);
        let too_large = payload.len() as u64 > u64::from(self.limits.max_payload_size);
        let rate_message = || {
            format!(
                "rate limit exceeded: at most {} messages per second",
                self.limits.messages_per_second.unwrap_or(0)
            )
        };
        let size_message = || {
            format!(
                "payload of {} bytes exceeds the limit of {} bytes",
                payload.len(),
                self.limits.max_payload_size
            )
        };
        match parsed {
            InboundTopic::Telemetry | InboundTopic::ClientAttributes => {
                let name = if parsed == InboundTopic::Telemetry {
                    topic::TELEMETRY
                } else {
                    topic::ATTRIBUTES
                };
                if !admitted {
                    return Routed::Disconnect {
                        reason: rate_message(),
                    };
                }
                if too_large {
                    return Routed::Reply(replies::general_error(name, &size_message()));
                }
                Routed::Call(EngineCall::Report {
                    topic: name,
                    payload: Bytes::copy_from_slice(payload),
                })
            }
            InboundTopic::AttributeRequest { id } => {
                let response = topic::attribute_response_topic(id);
                if !admitted {
                    return Routed::Reply(replies::request_error(response, &rate_message()));
                }
                if too_large {
                    return Routed::Reply(replies::request_error(response, &size_message()));
                }
                match parse_attribute_request(payload) {
                    Ok((keys, with_client)) => Routed::Call(EngineCall::SharedAttributes {
                        request_id: id.to_string(),
                        keys,
                        with_client,
                    }),
                    Err(message) => Routed::Reply(replies::request_error(response, &message)),
                }
            }
            InboundTopic::RpcRequest { id } => {
                let response = topic::rpc_response_topic(id);
                if !admitted {
                    return Routed::Reply(replies::request_error(response, &rate_message()));
                }
                if too_large {
                    return Routed::Reply(replies::request_error(response, &size_message()));
                }
                Routed::Reply(self.rpc(response, payload))
            }
            InboundTopic::ChunkRequest {
                kind,
                request_id,
                chunk,
            } => {
                let error = |message: &str| {
                    Routed::Reply(replies::chunk_error(kind, request_id, chunk, message))
                };
                if !admitted {
                    return error(&rate_message());
                }
                if too_large {
                    return error(&size_message());
                }
                let index = match chunk::parse_index(chunk) {
                    Ok(i) => i,
                    Err(message) => return error(&message),
                };
                let given = match chunk::parse_size(payload, self.limits.max_chunk_size) {
                    Ok(size) => size,
                    Err(message) => return error(&message),
                };
                let Some(size) = self.downloads.resolve_size(kind, request_id, index, given) else {
                    return error(
                        "no chunk size is known for this request id: send the size with the request",
                    );
                };
                Routed::Call(EngineCall::Chunk(ChunkRequest {
                    kind,
                    request_id: request_id.to_string(),
                    chunk: index,
                    size,
                }))
            }
            InboundTopic::Malformed {
                error_topic,
                message,
            } => {
                if !admitted {
                    return Routed::Disconnect {
                        reason: rate_message(),
                    };
                }
                Routed::Reply(match error_topic {
                    ErrorTopic::General => replies::general_error(topic_name, &message),
                    ErrorTopic::Chunk(_) => Outgoing {
                        topic: error_topic.topic(),
                        payload: Bytes::from(message),
                    },
                })
            }
            InboundTopic::Unknown => {
                if !admitted {
                    return Routed::Disconnect {
                        reason: rate_message(),
                    };
                }
                Routed::Reply(replies::general_error(
                    topic_name,
                    "unknown topic: devices publish to v1/devices/me/telemetry, \
                     v1/devices/me/attributes, v1/devices/me/attributes/request/{id}, \
                     v1/devices/me/rpc/request/{id} and v2/{fw|sw}/request/{id}/chunk/{n}",
                ))
            }
        }
    }

    fn rpc(&self, response: String, payload: &[u8]) -> Outgoing {
        let request: Value = match serde_json::from_slice(payload) {
            Ok(v) => v,
            Err(e) => {
                return replies::request_error(
                    response,
                    &format!("RPC request must be a JSON object with a \"method\": {e}"),
                )
            }
        };
        match request.get("method").and_then(Value::as_str) {
            Some("getSessionLimits") => Outgoing::json(response, &self.limits.session_limits()),
            Some(other) => {
                let shown: String = other.chars().take(64).collect();
                replies::request_error(
                    response,
                    &format!("unsupported method {shown:?}: the server answers getSessionLimits"),
                )
            }
            None => replies::request_error(
                response,
                "RPC request must be a JSON object with a string \"method\"",
            ),
        }
    }
}

/// Parses `{"sharedKeys":"a,b","clientKeys":"c"}` (keys as a comma-separated string or an
/// array of strings; an empty payload or `{}` asks for every shared key).
fn parse_attribute_request(payload: &[u8]) -> Result<(Option<Vec<String>>, bool), String> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok((None, false));
    }
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| format!("attribute request must be a JSON object: {e}"))?;
    let Value::Object(object) = value else {
        return Err("attribute request must be a JSON object".to_string());
    };
    let keys = |name: &str| -> Result<Option<Vec<String>>, String> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(
                s.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_string)
                    .collect(),
            )),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("{name} must list strings"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(format!(
                "{name} must be a comma-separated string or an array of strings"
            )),
        }
    };
    let shared = keys("sharedKeys")?;
    let client = keys("clientKeys")?;
    Ok((shared, client.is_some()))
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
