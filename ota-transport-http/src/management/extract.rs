//! The router's shared state and the request extractors that answer every rejection as an
//! [`ApiError`]: the authenticated, authorized caller, JSON bodies, query strings and paths.

use super::auth::{Access, AuthError, Authenticator, Principal};
use super::error::{ApiError, RETRY_AFTER_SECONDS};
use super::ManagementOptions;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use ota_core::engine::Ota;
use std::marker::PhantomData;
use std::sync::Arc;

/// What every handler reaches.
#[derive(Clone)]
pub(crate) struct AppState {
    pub ota: Ota,
    pub auth: Arc<dyn Authenticator>,
    pub options: Arc<ManagementOptions>,
}

/// A route's access requirement, as a type.
pub(crate) trait Requirement: Send + Sync + 'static {
    const ACCESS: Access;
}

macro_rules! requirement {
    ($name:ident, $access:expr) => {
        pub(crate) struct $name;
        impl Requirement for $name {
            const ACCESS: Access = $access;
        }
    };
}
requirement!(CanRead, Access::Read);
requirement!(CanAssign, Access::Assign);
requirement!(CanOperate, Access::Operate);
requirement!(CanAdmin, Access::Admin);

/// The authenticated caller, checked against the route's requirement `R` before the body is
/// read: a missing or wrong key answers 401, a role without the access 403.
pub(crate) struct Caller<R: Requirement> {
    pub principal: Principal,
    _requirement: PhantomData<R>,
}

impl<R: Requirement> Caller<R> {
    pub fn tenant(&self) -> ota_core::TenantId {
        self.principal.tenant
    }

    pub fn actor(&self) -> &str {
        &self.principal.actor
    }
}

impl<R: Requirement> FromRequestParts<AppState> for Caller<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = state
            .auth
            .authenticate(&parts.headers)
            .await
            .map_err(|e| match e {
                AuthError::Unavailable(_) => {
                    let mut err = ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "authentication is unavailable; retry later",
                    );
                    err.log = Some(e.to_string());
                    err.retry_after = Some(RETRY_AFTER_SECONDS);
                    err
                }
                _ => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()),
            })?;
        if !principal.role.allows(R::ACCESS) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "the role {:?} of {} does not allow {:?} access, which this route needs",
                    principal.role,
                    principal.actor,
                    R::ACCESS
                ),
            ));
        }
        Ok(Self {
            principal,
            _requirement: PhantomData,
        })
    }
}

/// A JSON body; rejections answer `{"code","message"}`.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string; rejections answer `{"code","message"}`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct Query<T>(pub T);

/// Path parameters; rejections answer `{"code","message"}`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct Path<T>(pub T);

/// Reads a whole (small) body such as a CSV file, refusing more than `limit` bytes with 413.
pub(crate) async fn read_limited(
    body: axum::body::Body,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("upload_failed", format!("reading the body failed: {e}"))
        })?;
        if out.len() + chunk.len() > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body exceeds the limit of {limit} bytes"),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
