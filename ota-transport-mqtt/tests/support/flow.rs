//! The device side of an update, as a ThingsBoard device does it, for either mode's topics.
#![allow(dead_code)]

use super::device::TestDevice;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Where a device publishes and subscribes.
#[derive(Clone, Debug)]
pub struct Topics {
    /// `v1/devices/me` (endpoint) or `v1/devices/{id}` (bridge).
    pub v1: String,
    /// `v2` (endpoint) or `v1/devices/{id}/v2` (bridge).
    pub v2: String,
}

impl Topics {
    pub fn endpoint() -> Self {
        Self {
            v1: "v1/devices/me".into(),
            v2: "v2".into(),
        }
    }

    pub fn bridge(device_key: &str) -> Self {
        Self {
            v1: format!("v1/devices/{device_key}"),
            v2: format!("v1/devices/{device_key}/v2"),
        }
    }

    pub fn telemetry(&self) -> String {
        format!("{}/telemetry", self.v1)
    }
    pub fn attributes(&self) -> String {
        format!("{}/attributes", self.v1)
    }
    pub fn errors(&self) -> String {
        format!("{}/errors", self.v1)
    }
    pub fn attribute_request(&self, id: &str) -> String {
        format!("{}/attributes/request/{id}", self.v1)
    }
    pub fn attribute_response(&self, id: &str) -> String {
        format!("{}/attributes/response/{id}", self.v1)
    }
    pub fn rpc_request(&self, id: &str) -> String {
        format!("{}/rpc/request/{id}", self.v1)
    }
    pub fn rpc_response(&self, id: &str) -> String {
        format!("{}/rpc/response/{id}", self.v1)
    }
    pub fn chunk_request(&self, request_id: &str, chunk: u64) -> String {
        format!("{}/fw/request/{request_id}/chunk/{chunk}", self.v2)
    }
    pub fn chunk_response(&self, request_id: &str, chunk: u64) -> String {
        format!("{}/fw/response/{request_id}/chunk/{chunk}", self.v2)
    }
    pub fn chunk_error(&self) -> String {
        format!("{}/fw/error", self.v2)
    }
    /// What ThingsBoard's SDKs subscribe to for chunks (does not match the chunk topics).
    pub fn chunk_response_filter_tb(&self) -> String {
        format!("{}/fw/response/+", self.v2)
    }
}

/// Subscribes the way ThingsBoard devices do: attributes, `v2/fw/response/+` (which does
/// not match the chunk topics) and the error topic.
pub async fn subscribe_like_thingsboard(dev: &mut TestDevice, t: &Topics) {
    dev.subscribe(&t.attributes()).await;
    dev.subscribe(&t.chunk_response_filter_tb()).await;
    dev.subscribe(&t.chunk_error()).await;
}

pub async fn report(dev: &TestDevice, t: &Topics, values: Value) {
    dev.publish(&t.telemetry(), values.to_string(), true).await;
}

/// Downloads `total` bytes in chunks of `chunk_size` under `request_id`, starting at
/// `from_chunk`, until a short or empty chunk.
pub async fn download_from(
    dev: &mut TestDevice,
    t: &Topics,
    request_id: &str,
    chunk_size: usize,
    from_chunk: u64,
    into: &mut Vec<u8>,
) {
    download(dev, t, request_id, chunk_size, from_chunk, into, false).await
}

/// [`download_from`], with the size sent in every request when `repeat_size` (needed when
/// several server instances share the requests).
pub async fn download(
    dev: &mut TestDevice,
    t: &Topics,
    request_id: &str,
    chunk_size: usize,
    from_chunk: u64,
    into: &mut Vec<u8>,
    repeat_size: bool,
) {
    let mut chunk = from_chunk;
    loop {
        let payload = if chunk == from_chunk || repeat_size {
            chunk_size.to_string()
        } else {
            // After the first request, an empty payload: the size used before.
            String::new()
        };
        dev.publish(&t.chunk_request(request_id, chunk), payload, false)
            .await;
        let bytes = dev.expect(&t.chunk_response(request_id, chunk)).await;
        assert!(bytes.len() <= chunk_size);
        into.extend_from_slice(&bytes);
        if bytes.len() < chunk_size {
            return;
        }
        chunk += 1;
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the update attributes from a notice or attribute response and goes through every
/// state to UPDATED: DOWNLOADING, the chunked download with the checksum verified,
/// DOWNLOADED, VERIFIED, UPDATING, UPDATED with the new current version.
pub async fn update_through_updated(
    dev: &mut TestDevice,
    t: &Topics,
    attributes: &Value,
    chunk_size: usize,
) -> Vec<u8> {
    update_sized(dev, t, attributes, chunk_size, false).await
}

/// [`update_through_updated`], with the chunk size sent in every request when `repeat_size`.
pub async fn update_sized(
    dev: &mut TestDevice,
    t: &Topics,
    attributes: &Value,
    chunk_size: usize,
    repeat_size: bool,
) -> Vec<u8> {
    let title = attributes["fw_title"]
        .as_str()
        .expect("fw_title")
        .to_string();
    let version = attributes["fw_version"]
        .as_str()
        .expect("fw_version")
        .to_string();
    let size = attributes["fw_size"].as_u64().expect("fw_size") as usize;
    assert_eq!(attributes["fw_checksum_algorithm"], "SHA256");
    report(dev, t, json!({"fw_state": "DOWNLOADING"})).await;
    let mut bytes = Vec::with_capacity(size);
    download(dev, t, "1", chunk_size, 0, &mut bytes, repeat_size).await;
    assert_eq!(bytes.len(), size);
    assert_eq!(
        sha256_hex(&bytes),
        attributes["fw_checksum"].as_str().expect("fw_checksum")
    );
    report(dev, t, json!({"fw_state": "DOWNLOADED"})).await;
    report(dev, t, json!({"fw_state": "VERIFIED"})).await;
    report(dev, t, json!({"fw_state": "UPDATING"})).await;
    report(
        dev,
        t,
        json!({"fw_state": "UPDATED", "current_fw_title": title, "current_fw_version": version}),
    )
    .await;
    bytes
}

/// Asks for the firmware attributes and returns the `shared` object.
pub async fn request_attributes(dev: &mut TestDevice, t: &Topics, id: &str) -> Value {
    dev.publish(
        &t.attribute_request(id),
        json!({"sharedKeys": "fw_title,fw_version,fw_size,fw_checksum,fw_checksum_algorithm"})
            .to_string(),
        true,
    )
    .await;
    let answer = dev.expect_json(&t.attribute_response(id)).await;
    answer["shared"].clone()
}

/// Waits until the server handled everything the device sent before (messages of one
/// connection are handled in order): a `getSessionLimits` round trip.
pub async fn barrier(dev: &mut TestDevice, t: &Topics) -> Value {
    let id = format!("b{}", uuid::Uuid::now_v7().simple());
    dev.publish(
        &t.rpc_request(&id),
        json!({"method": "getSessionLimits", "params": {}}).to_string(),
        true,
    )
    .await;
    dev.expect_json(&t.rpc_response(&id)).await
}
