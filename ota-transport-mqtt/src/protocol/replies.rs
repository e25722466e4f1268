//! Messages sent to a device: responses, errors and shared attribute notices.

use super::chunk::ChunkRequest;
use super::topic;
use bytes::Bytes;
use ota_core::notifier::Notice;
use ota_core::PackageKind;
use serde_json::{json, Map, Value};

/// A message for one device, with its topic in endpoint form (`v1/devices/me/...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The topic.
    pub topic: String,
    /// The payload.
    pub payload: Bytes,
}

impl Outgoing {
    /// A message with a JSON payload.
    pub fn json(topic: String, value: &Value) -> Self {
        Self {
            topic,
            payload: Bytes::from(value.to_string()),
        }
    }

    /// The payload as JSON, when it is JSON (for tests and logs).
    pub fn payload_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.payload).ok()
    }
}

/// `{"error": message}` on a response topic.
pub fn request_error(response_topic: String, message: &str) -> Outgoing {
    Outgoing::json(response_topic, &json!({ "error": message }))
}

/// `{"topic": offending, "error": message}` on [`topic::ERRORS`].
pub fn general_error(offending_topic: &str, message: &str) -> Outgoing {
    let shown: String = offending_topic.chars().take(256).collect();
    Outgoing::json(
        topic::ERRORS.to_string(),
        &json!({ "topic": shown, "error": message }),
    )
}

/// A chunk error on `v2/{fw|sw}/error`, as plain text naming the request.
pub fn chunk_error(kind: PackageKind, request_id: &str, chunk: &str, message: &str) -> Outgoing {
    let chunk: String = chunk.chars().take(32).collect();
    Outgoing {
        topic: topic::chunk_error_topic(kind),
        payload: Bytes::from(format!("request {request_id} chunk {chunk}: {message}")),
    }
}

/// The chunk's bytes on `v2/{fw|sw}/response/{requestId}/chunk/{chunk}`.
pub fn chunk_response(request: &ChunkRequest, bytes: Bytes) -> Outgoing {
    Outgoing {
        topic: topic::chunk_response_topic(request.kind, &request.request_id, request.chunk),
        payload: bytes,
    }
}

/// The answer to an attribute request: `{"shared":{...}}` with the requested keys present in
/// `shared` (all of them when `keys` is `None`), plus `"client":{}` when client keys were
/// asked for (the library keeps no client attributes).
pub fn attribute_response(
    request_id: &str,
    shared: &Map<String, Value>,
    keys: Option<&[String]>,
    with_client: bool,
) -> Outgoing {
    let selected: Map<String, Value> = match keys {
        None => shared.clone(),
        Some(keys) => keys
            .iter()
            .filter_map(|k| shared.get(k).map(|v| (k.clone(), v.clone())))
            .collect(),
    };
    let mut body = Map::new();
    if with_client {
        body.insert("client".into(), Value::Object(Map::new()));
    }
    body.insert("shared".into(), Value::Object(selected));
    Outgoing::json(
        topic::attribute_response_topic(request_id),
        &Value::Object(body),
    )
}

/// A shared attribute push (`{"fw_title":...}`) or deletion (`{"deleted":[...]}`) on
/// [`topic::ATTRIBUTES`].
pub fn notice(notice: &Notice) -> Outgoing {
    let value = match notice {
        Notice::Update { attributes, .. } => Value::Object(attributes.clone()),
        Notice::Withdrawal { keys, .. } => json!({ "deleted": keys }),
    };
    Outgoing::json(topic::ATTRIBUTES.to_string(), &value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_core::{DeviceId, TenantId};

    #[test]
    fn attribute_responses_select_keys() {
        let mut shared = Map::new();
        shared.insert("fw_title".into(), json!("t"));
        shared.insert("fw_version".into(), json!("1"));
        let all = attribute_response("3", &shared, None, false);
        assert_eq!(all.topic, "v1/devices/me/attributes/response/3");
        assert_eq!(
            all.payload_json(),
            Some(json!({"shared":{"fw_title":"t","fw_version":"1"}}))
        );
        let keys = vec!["fw_version".to_string(), "sw_title".to_string()];
        let some = attribute_response("3", &shared, Some(&keys), true);
        assert_eq!(
            some.payload_json(),
            Some(json!({"client":{},"shared":{"fw_version":"1"}}))
        );
    }

    #[test]
    fn notices() {
        let mut attributes = Map::new();
        attributes.insert("fw_title".into(), json!("t"));
        let update = Notice::Update {
            tenant_id: TenantId::new(),
            device_id: DeviceId::new(),
            kind: PackageKind::Firmware,
            attributes,
        };
        let out = notice(&update);
        assert_eq!(out.topic, topic::ATTRIBUTES);
        assert_eq!(out.payload_json(), Some(json!({"fw_title":"t"})));
        let withdrawal = Notice::Withdrawal {
            tenant_id: TenantId::new(),
            device_id: DeviceId::new(),
            kind: PackageKind::Software,
            keys: vec!["sw_title".into()],
        };
        assert_eq!(
            notice(&withdrawal).payload_json(),
            Some(json!({"deleted":["sw_title"]}))
        );
    }

    #[test]
    fn errors() {
        let e = chunk_error(PackageKind::Firmware, "r", "2", "too big");
        assert_eq!(e.topic, "v2/fw/error");
        assert_eq!(&e.payload[..], b"request r chunk 2: too big");
        let g = general_error("x/y", "unknown topic");
        assert_eq!(g.topic, topic::ERRORS);
        assert_eq!(
            g.payload_json(),
            Some(json!({"topic":"x/y","error":"unknown topic"}))
        );
        assert_eq!(
            request_error("t".into(), "bad").payload_json(),
            Some(json!({"error":"bad"}))
        );
    }
}
