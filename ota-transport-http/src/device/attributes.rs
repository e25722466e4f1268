//! Shared attributes, client attributes and telemetry: `GET`/`POST /api/v1/{token}/attributes`,
//! the long-poll `GET /api/v1/{token}/attributes/updates` and `POST /api/v1/{token}/telemetry`.

use super::query::Query;
use super::{DeviceApi, Token};
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use ota_core::PackageKind;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

fn json_response(value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `GET /api/v1/{token}/attributes?sharedKeys=..&clientKeys=..`: `{"shared":{..}}` with the
/// device's update attributes (all of them, or the keys asked for), and `"client"` with what
/// the device reported running when client keys are asked for (or no keys at all).
pub(crate) async fn get(
    State(api): State<Arc<DeviceApi>>,
    token: Token,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let device = api.device(&token.0).await?;
    let query = Query::parse(raw.as_deref());
    let shared_keys = query.list("sharedKeys");
    let client_keys = query.list("clientKeys");

    // Both kinds at once: one wait instead of two, and a store that coalesces concurrent
    // reads (PostgreSQL's) answers them with one statement under load.
    let kinds = PackageKind::ALL.map(|kind| api.ota.shared_attributes(&device, kind));
    let mut shared = Map::new();
    for attributes in futures_util::future::join_all(kinds).await {
        shared.extend(attributes?);
    }
    if let Some(keys) = &shared_keys {
        shared.retain(|k, _| keys.iter().any(|want| want == k));
    }
    let mut body = Map::new();
    body.insert("shared".into(), Value::Object(shared));
    if client_keys.is_some() || shared_keys.is_none() {
        // Read fresh: the device may have just reported a new version.
        let fresh = api
            .ota
            .store()
            .get_device(device.tenant_id, device.id)
            .await?;
        let mut client = Map::new();
        for kind in PackageKind::ALL {
            if let Some(current) = fresh.current.get(kind) {
                let p = kind.prefix();
                client.insert(format!("current_{p}_title"), current.title.clone().into());
                client.insert(
                    format!("current_{p}_version"),
                    current.version.clone().into(),
                );
            }
        }
        if let Some(keys) = &client_keys {
            client.retain(|k, _| keys.iter().any(|want| want == k));
        }
        body.insert("client".into(), Value::Object(client));
    }
    Ok(json_response(&Value::Object(body)))
}

/// `POST /api/v1/{token}/attributes`: client attributes; the OTA keys among them
/// (`current_fw_title`, `fw_state`, ...) go to the engine like telemetry.
pub(crate) async fn post(
    State(api): State<Arc<DeviceApi>>,
    token: Token,
    body: Body,
) -> Result<Response, ApiError> {
    report(api, token, body).await
}

/// `POST /api/v1/{token}/telemetry`: telemetry in any of ThingsBoard's JSON forms.
pub(crate) async fn telemetry(
    State(api): State<Arc<DeviceApi>>,
    token: Token,
    body: Body,
) -> Result<Response, ApiError> {
    report(api, token, body).await
}

async fn report(api: Arc<DeviceApi>, token: Token, body: Body) -> Result<Response, ApiError> {
    let device = api.device(&token.0).await?;
    let bytes = read_body(body, api.options.max_body_bytes).await?;
    api.ota.handle_payload(&device, &bytes).await?;
    Ok(StatusCode::OK.into_response())
}

/// The whole body, or 413 as soon as it grows past `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(piece) = stream.next().await {
        let piece = piece
            .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
        if bytes.len() + piece.len() > limit {
            return Err(ApiError::too_large(limit));
        }
        bytes.extend_from_slice(&piece);
    }
    Ok(bytes)
}

/// `GET /api/v1/{token}/attributes/updates?timeout=MS`: waits for the device's next notice
/// and answers its attributes (`{"fw_title":..}`, `{"deleted":[..]}`), or an empty 200 at the
/// timeout.
pub(crate) async fn updates(
    State(api): State<Arc<DeviceApi>>,
    token: Token,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let device = api.device(&token.0).await?;
    let query = Query::parse(raw.as_deref());
    let timeout = match query.u64("timeout")? {
        None | Some(0) => api.options.long_poll_default,
        Some(ms) => Duration::from_millis(ms).min(api.options.long_poll_max),
    };
    let waiter = api.options.notifier.subscribe(device.id);
    match waiter.wait(timeout).await {
        Some(update) => Ok(json_response(&Value::Object(update))),
        None => Ok(StatusCode::OK.into_response()),
    }
}
