//! Runs a device's message through the protocol and the engine: the part that both the
//! endpoint and the bridge share. The answers are in endpoint form (`v1/devices/me/...`).

use crate::content_cache::ContentCache;
use crate::protocol::replies::{self, Outgoing};
use crate::protocol::session::{DeviceSession, EngineCall, Routed};
use crate::protocol::ChunkRequest;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use ota_core::engine::{Ota, OtaError};
use ota_core::store::ByteRange;
use ota_core::{Device, PackageId, PackageKind};

/// What became of one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handled {
    /// Messages for the device.
    pub replies: Vec<Outgoing>,
    /// Set when the connection must be closed, with the reason.
    pub disconnect: Option<String>,
}

/// Handles device messages against an engine.
///
/// Chunks of packages up to 16 MiB are served from the package content kept in memory (at
/// most 64 MiB for all packages, shared by the clones of a handler): the whole content is read once, then each chunk is a slice
/// of it. Every chunk still checks with the store that the device's current update is the
/// package its request id downloads.
#[derive(Clone, Debug)]
pub struct DeviceHandler {
    ota: Ota,
    content: ContentCache,
}

impl DeviceHandler {
    /// A handler over `ota`.
    pub fn new(ota: Ota) -> Self {
        Self {
            ota,
            content: ContentCache::default(),
        }
    }

    /// The engine.
    pub fn ota(&self) -> &Ota {
        &self.ota
    }

    /// Handles a message `device` published on `topic` (endpoint form) at `now_ms`.
    pub async fn handle(
        &self,
        device: &Device,
        session: &mut DeviceSession,
        topic: &str,
        payload: &[u8],
        now_ms: u64,
    ) -> Handled {
        match session.route(topic, payload, now_ms) {
            Routed::Reply(out) => Handled {
                replies: vec![out],
                disconnect: None,
            },
            Routed::Disconnect { reason } => Handled {
                replies: Vec::new(),
                disconnect: Some(reason),
            },
            Routed::Call(call) => Handled {
                replies: self.call(device, session, call).await.into_iter().collect(),
                disconnect: None,
            },
        }
    }

    async fn call(
        &self,
        device: &Device,
        session: &mut DeviceSession,
        call: EngineCall,
    ) -> Option<Outgoing> {
        match call {
            EngineCall::Report { topic, payload } => {
                match self.ota.handle_payload(device, &payload).await {
                    Ok(_) => None,
                    Err(e) => {
                        log_engine_error(device, topic, &e);
                        Some(replies::general_error(topic, &device_message(&e)))
                    }
                }
            }
            EngineCall::SharedAttributes {
                request_id,
                keys,
                with_client,
            } => {
                let mut shared = serde_json::Map::new();
                for kind in PackageKind::ALL {
                    match self.ota.shared_attributes(device, kind).await {
                        Ok(attributes) => shared.extend(attributes),
                        Err(e) => {
                            log_engine_error(device, "attributes/request", &e);
                            return Some(replies::request_error(
                                crate::protocol::topic::attribute_response_topic(&request_id),
                                &device_message(&e),
                            ));
                        }
                    }
                }
                Some(replies::attribute_response(
                    &request_id,
                    &shared,
                    keys.as_deref(),
                    with_client,
                ))
            }
            EngineCall::Chunk(request) => Some(match self.chunk(device, session, &request).await {
                Ok(bytes) => replies::chunk_response(&request, bytes),
                Err(message) => replies::chunk_error(
                    request.kind,
                    &request.request_id,
                    &request.chunk.to_string(),
                    &message,
                ),
            }),
        }
    }

    /// The bytes of one chunk, or the error message for the device.
    async fn chunk(
        &self,
        device: &Device,
        session: &mut DeviceSession,
        request: &ChunkRequest,
    ) -> Result<Bytes, String> {
        let fail = |what: &str, e: ota_core::store::StoreError| {
            let e = OtaError::from(e);
            log_engine_error(device, what, &e);
            device_message(&e)
        };
        let (package, total, content) =
            match self.still_downloading(device, session, request).await? {
                Some((package, content)) => (package, content.len() as u64, Some(content)),
                None => {
                    let package = self
                        .ota
                        .authorize_download(device, request.kind, None, None)
                        .await
                        .map_err(|e| {
                            log_engine_error(device, "chunk request", &e);
                            device_message(&e)
                        })?;
                    session.bind_download(request.kind, &request.request_id, package.id)?;
                    let total = package.size.unwrap_or(0);
                    let content = self
                        .content
                        .load(
                            self.ota.store().as_ref(),
                            device.tenant_id,
                            package.id,
                            total,
                        )
                        .await
                        .map_err(|e| fail("chunk read", e))?
                        .filter(|c| c.len() as u64 == total);
                    (package.id, total, content)
                }
            };
        let (start, end) = request
            .range(total)
            .ok_or_else(|| "chunk offset is out of range".to_string())?;
        let max = u64::from(session.limits().max_chunk_size);
        if end - start > max {
            return Err(format!(
                "the whole {} is {total} bytes, more than the limit of {max} bytes per \
                 message: ask for chunks",
                request.kind
            ));
        }
        if start == end {
            return Ok(Bytes::new());
        }
        if let Some(content) = content {
            // In range: end <= total == content.len().
            return Ok(content.slice(start as usize..end as usize));
        }
        let mut stream = self
            .ota
            .store()
            .read_content(device.tenant_id, package, ByteRange::new(start, end))
            .await
            .map_err(|e| fail("chunk read", e))?;
        // A chunk the store gives in one piece is passed on as it is (no copy).
        let Some(first) = stream
            .next()
            .await
            .transpose()
            .map_err(|e| fail("chunk read", e))?
        else {
            return Ok(Bytes::new());
        };
        let Some(second) = stream
            .next()
            .await
            .transpose()
            .map_err(|e| fail("chunk read", e))?
        else {
            return Ok(first);
        };
        let mut bytes = BytesMut::with_capacity((end - start) as usize);
        bytes.extend_from_slice(&first);
        bytes.extend_from_slice(&second);
        while let Some(part) = stream.next().await {
            bytes.extend_from_slice(&part.map_err(|e| fail("chunk read", e))?);
        }
        Ok(bytes.freeze())
    }

    /// The package and kept content of a download that goes on: the request id is bound to
    /// a package whose content is kept, and the device's current update (one store read) is
    /// still that package. `None` when any of it is not so (the full check decides then).
    async fn still_downloading(
        &self,
        device: &Device,
        session: &DeviceSession,
        request: &ChunkRequest,
    ) -> Result<Option<(PackageId, Bytes)>, String> {
        let Some(package) = session.bound_package(request.kind, &request.request_id) else {
            return Ok(None);
        };
        let Some(content) = self.content.get(device.tenant_id, package) else {
            return Ok(None);
        };
        let latest = self
            .ota
            .store()
            .latest_update(device.tenant_id, device.id, request.kind)
            .await
            .map_err(|e| {
                let e = OtaError::from(e);
                log_engine_error(device, "chunk request", &e);
                device_message(&e)
            })?;
        Ok(latest
            .filter(|u| !u.state.is_terminal() && u.package_id == package)
            .map(|_| (package, content)))
    }
}

/// The text a device is told for an engine error: the error itself for what the device can
/// act on, a generic message for internal failures (logged separately).
pub fn device_message(error: &OtaError) -> String {
    match error {
        OtaError::Store(e) if !e.is_not_found() => {
            "the server could not handle the request; try again later".to_string()
        }
        other => other.to_string(),
    }
}

fn log_engine_error(device: &Device, what: &str, error: &OtaError) {
    match error {
        OtaError::Store(e) if !e.is_not_found() => {
            tracing::warn!(device = %device.id, what, error = %error, "engine call failed");
        }
        _ => tracing::debug!(device = %device.id, what, error = %error, "device request refused"),
    }
}
