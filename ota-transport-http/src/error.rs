//! The HTTP error answer: a status, a JSON body `{"code": "...", "message": "..."}` for the
//! client, and a separate message for the log. Engine and store errors map here.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ota_core::engine::OtaError;
use ota_core::store::StoreError;
use serde::Serialize;

/// How long a client is asked to wait (`Retry-After`) when the store is unavailable.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

/// An error answer. `message` is for the client; `log` (when set) is what the server logs
/// and never sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status (always 4xx or 503).
    pub status: StatusCode,
    /// A stable machine-readable code (`unauthorized`, `not_found`, `bad_request`, ...).
    pub code: &'static str,
    /// What the client should know or fix.
    pub message: String,
    /// Seconds the client should wait before retrying (`Retry-After`), when set.
    pub retry_after: Option<u64>,
    /// Internal detail for the server log only.
    pub log: Option<String>,
    /// `Content-Range: bytes */{size}` for a 416 answer.
    pub unsatisfied_size: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    /// An error with `status`, `code` and a client `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            log: None,
            unsatisfied_size: None,
        }
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 413 `payload_too_large`.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds the limit of {limit} bytes"),
        )
    }

    /// 429 `rate_limited` with `Retry-After`.
    pub fn rate_limited(retry_after: u64, limit: &str) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many requests for this device (limit {limit}); retry after {retry_after} s"
            ),
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// 503 `unavailable` with `Retry-After`; `log` is the internal cause.
    pub fn unavailable(log: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the service is temporarily unavailable; retry later",
        );
        e.retry_after = Some(UNAVAILABLE_RETRY_AFTER_SECS);
        e.log = Some(log.into());
        e
    }

    /// 416 `range_not_satisfiable` for content of `size` bytes.
    pub fn range_not_satisfiable(size: u64, message: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            message,
        );
        e.unsatisfied_size = Some(size);
        e
    }

    /// Sets the internal log message.
    pub fn with_log(mut self, log: impl Into<String>) -> Self {
        self.log = Some(log.into());
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NotFound { .. } => Self::not_found(e.to_string()),
            StoreError::Conflict { .. } | StoreError::PreconditionFailed { .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            StoreError::ChecksumMismatch(_) | StoreError::SourceFailed { .. } => {
                Self::bad_request(e.to_string())
            }
            StoreError::TooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                e.to_string(),
            ),
            StoreError::RangeNotSatisfiable { size, .. } => {
                Self::range_not_satisfiable(*size, e.to_string())
            }
            // Unavailable, Backend and whatever a newer store reports: the client can only
            // wait; the cause goes to the log.
            _ => Self::unavailable(e.to_string()),
        }
    }
}

impl From<OtaError> for ApiError {
    fn from(e: OtaError) -> Self {
        match e {
            OtaError::Store(s) => s.into(),
            OtaError::Validation(_)
            | OtaError::InvalidRequest { .. }
            | OtaError::KindMismatch { .. }
            | OtaError::Incompatible { .. }
            | OtaError::InvalidCampaign(_)
            | OtaError::InvalidDeviceList(_)
            | OtaError::NotAssignedPackage { .. } => Self::bad_request(e.to_string()),
            OtaError::NothingAssigned { .. } | OtaError::NoUpdate { .. } => {
                Self::not_found(e.to_string())
            }
            OtaError::ExternalContent { .. } => {
                Self::new(StatusCode::NOT_FOUND, "external_content", e.to_string())
            }
            OtaError::PackageInUse { .. }
            | OtaError::NotAllowed { .. }
            | OtaError::IllegalTransition(_) => {
                Self::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            OtaError::Contention { .. } | OtaError::CampaignContention { .. } => {
                let mut err = Self::unavailable(e.to_string());
                err.message = e.to_string();
                err.retry_after = Some(1);
                err
            }
            other => Self::unavailable(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(log) = &self.log {
            if self.status.is_server_error() {
                tracing::warn!(status = %self.status, code = self.code, "{log}");
            } else {
                tracing::debug!(status = %self.status, code = self.code, "{log}");
            }
        }
        let body = serde_json::to_vec(&Body {
            code: self.code,
            message: &self.message,
        })
        .unwrap_or_else(|_| br#"{"code":"error","message":"error"}"#.to_vec());
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(size) = self.unsatisfied_size {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                headers.insert(header::CONTENT_RANGE, v);
            }
        }
        response
    }
}
