//! The management API's error: an HTTP status, a stable `code`, a `message` that tells the
//! client what to fix, and a separate text for the log that never reaches the client.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ota_core::engine::OtaError;
use ota_core::store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The JSON body of every error answer.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `not_found`, `invalid_json`, `checksum_mismatch`.
    pub code: String,
    /// What went wrong and what to fix, for a person.
    pub message: String,
    /// Structured details where a list helps (for example the bad rows of a CSV upload).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// An error answer of the management API.
#[derive(Debug, thiserror::Error)]
#[error("{status} {code}: {message}")]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code.
    pub code: &'static str,
    /// The message for the client.
    pub message: String,
    /// Structured details for the client.
    pub details: Option<serde_json::Value>,
    /// What is logged (internals the client does not see).
    pub log: Option<String>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u32>,
}

/// Seconds a client is asked to wait when the store is unavailable.
pub(crate) const RETRY_AFTER_SECONDS: u32 = 5;

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            log: None,
            retry_after: None,
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    fn unavailable(message: impl Into<String>, log: String, retry_after: u32) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        e.log = Some(log);
        e.retry_after = Some(retry_after);
        e
    }

    fn internal(log: String) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to handle the request; it has been logged",
        );
        e.log = Some(log);
        e
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        use StoreError as S;
        match &e {
            S::NotFound { .. } => Self::not_found(e.to_string()),
            S::Conflict { .. } => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            S::PreconditionFailed { .. } => Self::new(
                StatusCode::CONFLICT,
                "concurrent_change",
                format!("{e}; read the resource again and retry"),
            ),
            S::ChecksumMismatch(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "checksum_mismatch",
                format!("{e}; nothing was stored"),
            ),
            S::TooLarge { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
            }
            S::RangeNotSatisfiable { .. } => Self::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                e.to_string(),
            ),
            S::SourceFailed { .. } => Self::bad_request("upload_failed", e.to_string()),
            S::Unavailable { .. } => Self::unavailable(
                "the store is unavailable; retry later",
                e.to_string(),
                RETRY_AFTER_SECONDS,
            ),
            _ => Self::internal(e.to_string()),
        }
    }
}

impl From<OtaError> for ApiError {
    fn from(e: OtaError) -> Self {
        use OtaError as O;
        let message = e.to_string();
        match e {
            O::Store(s) => s.into(),
            O::Validation(_) => Self::bad_request("invalid_field", message),
            O::InvalidRequest { .. } => Self::bad_request("invalid_request", message),
            O::PackageInUse { uses, .. } => {
                Self::new(StatusCode::CONFLICT, "package_in_use", message)
                    .with_details(serde_json::json!({ "uses": uses }))
            }
            O::InUse { uses, .. } => Self::new(StatusCode::CONFLICT, "in_use", message)
                .with_details(serde_json::json!({ "uses": uses })),
            O::KindMismatch { .. } => Self::bad_request("kind_mismatch", message),
            O::Incompatible { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "incompatible", message)
            }
            O::NoUpdate { .. } => Self::new(StatusCode::CONFLICT, "no_update", message),
            O::NotAllowed { .. } => Self::new(StatusCode::CONFLICT, "not_allowed", message),
            O::NothingAssigned { .. } => Self::not_found(message),
            O::NotAssignedPackage { .. } => Self::bad_request("not_assigned", message),
            O::ExternalContent { .. } => {
                Self::new(StatusCode::CONFLICT, "external_content", message)
            }
            O::InvalidCampaign(_) => Self::bad_request("invalid_campaign", message),
            O::IllegalTransition(_) => {
                Self::new(StatusCode::CONFLICT, "illegal_transition", message)
            }
            O::InvalidDeviceList(_) => Self::bad_request("invalid_csv", message),
            O::CampaignContention { .. } | O::Contention { .. } => {
                Self::unavailable(message.clone(), message, 1)
            }
            _ => Self::internal(message),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with the header `Content-Type: application/json`",
            ),
            JsonRejection::JsonSyntaxError(e) => Self::bad_request(
                "invalid_json",
                format!("the body is not valid JSON: {}", e.body_text()),
            ),
            JsonRejection::JsonDataError(e) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("the JSON body does not fit: {}", e.body_text()),
            ),
            JsonRejection::BytesRejection(e) => Self::new(
                e.status(),
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    "too_large"
                } else {
                    "invalid_body"
                },
                e.body_text(),
            ),
            other => Self::bad_request("invalid_body", other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request("invalid_query", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::bad_request("invalid_path", format!("{}; ids are UUIDs", r.body_text()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self.log {
            Some(log) if self.status.is_server_error() => {
                tracing::error!(status = %self.status, code = self.code, "{log}")
            }
            Some(log) => tracing::warn!(status = %self.status, code = self.code, "{log}"),
            None => tracing::debug!(status = %self.status, code = self.code, "{}", self.message),
        }
        let body = ErrorBody {
            code: self.code.to_string(),
            message: self.message,
            details: self.details,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A result of a management handler.
pub type ApiResult<T> = Result<T, ApiError>;
