//! Outbox notices of devices that poll over HTTP, delivered by the devices' own reads
//! (see [`DeviceApiOptions::deliver_notices_on_read`](super::DeviceApiOptions::deliver_notices_on_read)).
//!
//! An HTTP device has no connection a notice could be pushed to: it hears of an update
//! through a long-poll waiting when the notice is delivered, or through its next attribute
//! read, which answers the current attributes (newer than any notice written before the
//! read). When several instances share one store, an instance delivers only what it
//! reaches (its own waiting long-polls, its MQTT connections), so a notice written while its
//! device was between two requests is reached by nobody and would stay in the outbox for
//! good. With this option on, the device's requests are its delivery:
//!
//! - `GET /api/v1/{token}/attributes`: the notices waiting for the device when the request
//!   arrives are claimed before the attributes are read, and marked delivered once the
//!   answer (200) is built: it holds everything they announced.
//! - `GET /api/v1/{token}/attributes/updates` (a long-poll): notices waiting when it arrives
//!   answer it at once, merged as the long-poll merges the notices it hears, and are marked
//!   delivered; with none, the long-poll waits as usual.
//!
//! A device's reads look into the outbox at most once per configured period (a look costs
//! a statement; an idle device reads every long-poll period, while a notice left behind is
//! rare). A request that fails leaves its claimed notices to come back when their lease
//! lapses (at least once). Notices of MQTT devices are untouched unless the device reads its
//! attributes over HTTP, which supersedes them the same way.

use super::merged_notices::merge;
use super::DeviceApi;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ota_core::ids::NoticeId;
use ota_core::store::{NoticeClaim, OutboxEntry};
use ota_core::DeviceId;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long claimed notices stay with a request before others may take them again.
const LEASE_SECS: i64 = 30;
/// Notices claimed per request at most (a device has at most one per kind).
const CLAIM_LIMIT: u32 = 16;
/// Devices whose last look is remembered at most (the map is emptied when full).
const LOOKED_CAPACITY: usize = 200_000;

/// When each device's reads last looked into the outbox.
#[derive(Debug)]
pub(crate) struct PolledNotices {
    every: Duration,
    looked: Mutex<HashMap<DeviceId, Instant>>,
}

/// Which device request this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    /// `GET .../attributes`.
    Attributes,
    /// `GET .../attributes/updates`.
    LongPoll,
}

/// The token and kind of read of a device API request, when it is one of the two.
fn read_of(method: &Method, path: &str) -> Option<(String, Read)> {
    if method != Method::GET {
        return None;
    }
    let rest = path.strip_prefix("/api/v1/")?;
    let (token, what) = rest.split_once('/')?;
    let read = match what {
        "attributes" => Read::Attributes,
        "attributes/updates" => Read::LongPoll,
        _ => return None,
    };
    let token = percent_decode(token)?;
    (!token.is_empty()).then_some((token, read))
}

/// `%XX`-decodes a path segment; `None` when it is not valid UTF-8 or a `%` is malformed.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl PolledNotices {
    /// Looking at most once per `every` per device.
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            looked: Mutex::default(),
        }
    }

    /// Whether a read of `device` at `now` looks into the outbox.
    fn due(&self, device: DeviceId, now: Instant) -> bool {
        let mut looked = self.looked.lock().unwrap_or_else(|e| e.into_inner());
        if looked
            .get(&device)
            .is_some_and(|at| now.duration_since(*at) < self.every)
        {
            return false;
        }
        if looked.len() >= LOOKED_CAPACITY {
            looked.clear();
        }
        looked.insert(device, now);
        true
    }
}

impl DeviceApi {
    /// Claims what waits in the outbox for `device` (empty on a store failure: the
    /// request goes on as if nothing waited).
    async fn claim_notices(&self, device: DeviceId) -> Vec<OutboxEntry> {
        let claim = NoticeClaim {
            now: self.ota.now(),
            limit: CLAIM_LIMIT,
            owner: self.ota.config().instance_id.clone(),
            lease: ota_core::chrono::Duration::seconds(LEASE_SECS),
            devices: Some(vec![device]),
        };
        match self.ota.store().claim_notices(&claim).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::debug!(error = %e, "claiming a polling device's notices failed");
                Vec::new()
            }
        }
    }

    async fn notices_delivered(&self, entries: &[OutboxEntry]) {
        let ids: Vec<NoticeId> = entries.iter().map(|e| e.id).collect();
        if let Err(e) = self.ota.store().mark_delivered(&ids).await {
            // The lease lapses and the notices are delivered again: at least once.
            tracing::debug!(error = %e, "marking a polling device's notices delivered failed");
        }
    }
}

/// The middleware of the device router when the option is on (see the
/// [module](self) documentation).
pub(crate) async fn deliver_on_read(
    State(api): State<Arc<DeviceApi>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(polled) = &api.polled else {
        return next.run(request).await;
    };
    let Some((token, read)) = read_of(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    // Through the token cache the handler uses next (not counted against the rate limit);
    // an unknown token or a store failure is the handler's to answer.
    let Ok(device) = api.tokens.device(api.ota.store().as_ref(), &token).await else {
        return next.run(request).await;
    };
    if !polled.due(device.id, Instant::now()) {
        return next.run(request).await;
    }
    let claimed = api.claim_notices(device.id).await;
    if claimed.is_empty() {
        return next.run(request).await;
    }
    match read {
        Read::Attributes => {
            let response = next.run(request).await;
            if response.status() == StatusCode::OK {
                api.notices_delivered(&claimed).await;
            }
            response
        }
        Read::LongPoll => {
            let body = serde_json::to_vec(&Value::Object(merge(claimed.iter().map(|e| &e.notice))))
                .unwrap_or_default();
            api.notices_delivered(&claimed).await;
            let mut response = (StatusCode::OK, Body::from(body)).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_core::notifier::Notice;
    use ota_core::{PackageKind, TenantId};

    #[test]
    fn only_the_two_attribute_reads_are_taken() {
        let get = Method::GET;
        assert_eq!(
            read_of(&get, "/api/v1/abc/attributes"),
            Some(("abc".into(), Read::Attributes))
        );
        assert_eq!(
            read_of(&get, "/api/v1/a%2Fb/attributes/updates"),
            Some(("a/b".into(), Read::LongPoll))
        );
        assert_eq!(read_of(&Method::POST, "/api/v1/abc/attributes"), None);
        assert_eq!(read_of(&get, "/api/v1/abc/firmware"), None);
        assert_eq!(read_of(&get, "/api/v1//attributes"), None);
        assert_eq!(read_of(&get, "/api/v1/%zz/attributes"), None);
        assert_eq!(read_of(&get, "/api/v1/%C3/attributes"), None);
        assert_eq!(read_of(&get, "/api/ota/v1/devices"), None);
    }

    #[test]
    fn notices_merge_like_a_long_poll() {
        let (tenant_id, device_id) = (TenantId::new(), DeviceId::new());
        let update = |version: &str| Notice::Update {
            tenant_id,
            device_id,
            kind: PackageKind::Firmware,
            attributes: serde_json::json!({"fw_title": "t", "fw_version": version})
                .as_object()
                .cloned()
                .unwrap(),
        };
        let withdrawal = Notice::Withdrawal {
            tenant_id,
            device_id,
            kind: PackageKind::Software,
            keys: vec!["sw_title".into()],
        };
        let now = ota_core::chrono::Utc::now();
        let entries: Vec<OutboxEntry> = [update("1"), withdrawal, update("2")]
            .into_iter()
            .map(|n| OutboxEntry::new(n, now))
            .collect();
        assert_eq!(
            Value::Object(merge(entries.iter().map(|e| &e.notice))),
            serde_json::json!({"fw_title": "t", "fw_version": "2", "deleted": ["sw_title"]})
        );
    }

    #[test]
    fn a_device_looks_at_most_once_per_period() {
        let polled = PolledNotices::new(Duration::from_secs(30));
        let (a, b) = (DeviceId::new(), DeviceId::new());
        let t0 = Instant::now();
        assert!(polled.due(a, t0));
        assert!(!polled.due(a, t0 + Duration::from_secs(29)));
        assert!(polled.due(b, t0 + Duration::from_secs(29)));
        assert!(polled.due(a, t0 + Duration::from_secs(30)));
    }
}
