//! `/healthz` (the process answers) and `/readyz` (the store answers and the server is not
//! shutting down).

use super::store::Backend;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// What `/readyz` looks at.
#[derive(Clone)]
pub struct Readiness {
    /// The store.
    pub backend: Backend,
    /// Cancelled when shutdown starts.
    pub stopping: CancellationToken,
}

/// `GET /healthz`: 200 while the process serves.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when the store answers, 503 with `Retry-After` otherwise or while
/// shutting down.
pub async fn readyz(State(readiness): State<Readiness>) -> Response {
    let store = readiness.backend.name();
    if readiness.stopping.is_cancelled() {
        return unavailable("shutting_down", "the server is shutting down".into());
    }
    match readiness.backend.ready().await {
        Ok(()) => Json(json!({ "status": "ready", "store": store })).into_response(),
        Err(message) => unavailable("store_unavailable", message),
    }
}

fn unavailable(code: &str, message: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "5")],
        Json(json!({ "code": code, "message": message })),
    )
        .into_response()
}
