//! API keys: create (the key shown once), list, get, revoke. Admin only; served when
//! [`ManagementOptions::api_keys`](super::ManagementOptions::api_keys) is set.

use super::auth::Role;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{AppState, Caller, CanAdmin, Json, Path, Query};
use super::paging::{PageOf, PageParams};
use super::stored_keys::{actor_of, StoredApiKeys};
use axum::extract::State;
use axum::http::StatusCode;
use ota_core::audit::AuditEntry;
use ota_core::ids::ApiKeyId;
use ota_core::store::ApiKeyRecord;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// An API key (never the key itself).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyView {
    /// Id.
    pub id: Uuid,
    /// Name, unique in the tenant; calls made with the key are audited as `api-key:<name>`.
    pub name: String,
    /// Role.
    pub role: Role,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was revoked; `null` while valid.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl TryFrom<ApiKeyRecord> for ApiKeyView {
    type Error = ApiError;

    fn try_from(k: ApiKeyRecord) -> Result<Self, ApiError> {
        let role = Role::from_name(&k.role).ok_or_else(|| {
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "a stored API key cannot be read",
            );
            e.log = Some(format!("api key {} has unknown role {:?}", k.id, k.role));
            e.retry_after = Some(super::error::RETRY_AFTER_SECONDS);
            e
        })?;
        Ok(Self {
            id: k.id.0,
            name: k.name,
            role,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        })
    }
}

/// A new API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// 1 to 255 characters, no control characters, unique among the tenant's keys.
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    /// What the key may do.
    pub role: Role,
}

/// A key just made: the key itself is in `secret`, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IssuedApiKey {
    /// The key's record.
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// The key, to send as `Authorization: Bearer <secret>`. Only its SHA-256 is stored: it
    /// cannot be read again.
    pub secret: String,
}

fn keys(state: &AppState) -> ApiResult<&Arc<StoredApiKeys>> {
    state.options.api_keys.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "this server does not manage API keys over the API (its keys come from its configuration)",
        )
    })
}

pub(super) fn check_name(name: &str) -> ApiResult<()> {
    let len = name.chars().count();
    if len == 0 || len > 255 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "name: use 1 to 255 characters and no control characters",
        ));
    }
    Ok(())
}

/// The audit entry of `action` on `key`, written by the key store with the action.
fn audit_entry(
    state: &AppState,
    caller: &Caller<CanAdmin>,
    action: &str,
    key: &ApiKeyRecord,
) -> AuditEntry {
    AuditEntry::new(
        caller.tenant(),
        caller.actor(),
        action,
        format!("api_key {}", key.id),
        state.ota.now(),
        serde_json::json!({ "name": key.name, "role": key.role, "actor": actor_of(&key.name) }),
    )
}

/// Create an API key; the key is in the answer, this once.
#[utoipa::path(post, path = "/api-keys", tag = "api-keys", request_body = NewApiKey,
    responses(
        (status = 201, description = "Created; `secret` is the key", body = IssuedApiKey),
        (status = 400, description = "Bad name", body = ErrorBody),
        (status = 404, description = "This server does not manage keys over the API", body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody),
    ))]
async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller<CanAdmin>,
    Json(body): Json<NewApiKey>,
) -> ApiResult<(StatusCode, Json<IssuedApiKey>)> {
    let keys = keys(&state)?;
    check_name(&body.name)?;
    let entry = |k: &ApiKeyRecord| audit_entry(&state, &caller, "api_key.create", k);
    let (record, secret) = keys
        .issue(caller.tenant(), &body.name, body.role, Some(&entry))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedApiKey {
            key: record.try_into()?,
            secret,
        }),
    ))
}

/// List the tenant's API keys, revoked ones included.
#[utoipa::path(get, path = "/api-keys", tag = "api-keys", params(PageParams),
    responses(
        (status = 200, description = "A page", body = PageOf<ApiKeyView>),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 404, description = "This server does not manage keys over the API", body = ErrorBody),
    ))]
async fn list_api_keys(
    State(state): State<AppState>,
    caller: Caller<CanAdmin>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<PageOf<ApiKeyView>>> {
    let got = keys(&state)?.list(caller.tenant(), page.request()?).await?;
    let next_cursor = got
        .next
        .and_then(|n| n.after)
        .map(super::paging::encode_cursor);
    let items = got
        .items
        .into_iter()
        .map(TryInto::try_into)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(PageOf { items, next_cursor }))
}

/// One API key.
#[utoipa::path(get, path = "/api-keys/{id}", tag = "api-keys",
    params(("id" = Uuid, Path, description = "API key id")),
    responses(
        (status = 200, description = "The key", body = ApiKeyView),
        (status = 404, description = "Unknown", body = ErrorBody),
    ))]
async fn get_api_key(
    State(state): State<AppState>,
    caller: Caller<CanAdmin>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ApiKeyView>> {
    let k = keys(&state)?.get(caller.tenant(), ApiKeyId(id)).await?;
    Ok(Json(k.try_into()?))
}

/// Revoke an API key: it is refused from now on and stays listed with `revoked_at`.
/// Revoking a revoked key changes nothing.
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api-keys",
    params(("id" = Uuid, Path, description = "API key id")),
    responses(
        (status = 200, description = "Revoked", body = ApiKeyView),
        (status = 404, description = "Unknown", body = ErrorBody),
    ))]
async fn revoke_api_key(
    State(state): State<AppState>,
    caller: Caller<CanAdmin>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ApiKeyView>> {
    let entry = |k: &ApiKeyRecord| audit_entry(&state, &caller, "api_key.revoke", k);
    let k = keys(&state)?
        .revoke(caller.tenant(), ApiKeyId(id), Some(&entry))
        .await?;
    Ok(Json(k.try_into()?))
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(get_api_key, revoke_api_key))
}
