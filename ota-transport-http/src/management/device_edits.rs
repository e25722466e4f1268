//! Deleting a device and setting its access token.

use super::devices::DeviceView;
use super::error::{ApiResult, ErrorBody};
use super::extract::{AppState, Caller, CanAdmin, CanOperate, Json, Path};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// A new access token for a device.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenChange {
    /// The token (1 to 255 characters, unique across devices); absent or `null`: a random
    /// one is generated (recommended).
    pub access_token: Option<String>,
}

/// A device with its new access token, shown this once (only its digest is stored).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeviceToken {
    /// The device.
    pub device: DeviceView,
    /// Its access token; the old one no longer works.
    pub access_token: String,
}

/// Delete a device: its unfinished updates are canceled, then it goes with its group
/// memberships and the assignments made to it. Its past updates stay readable by id.
#[utoipa::path(delete, path = "/devices/{id}", tag = "devices",
    params(("id" = Uuid, Path, description = "Device id")),
    responses(
        (status = 200, description = "The deleted device", body = DeviceView),
        (status = 404, description = "Unknown", body = ErrorBody),
    ))]
async fn delete_device(
    State(state): State<AppState>,
    caller: Caller<CanOperate>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<DeviceView>> {
    let d = state
        .ota
        .delete_device(caller.actor(), caller.tenant(), id.into())
        .await?;
    Ok(Json(d.into()))
}

/// Set or rotate a device's access token; the new token is in the answer, this once.
#[utoipa::path(put, path = "/devices/{id}/access-token", tag = "devices",
    request_body = TokenChange,
    params(("id" = Uuid, Path, description = "Device id")),
    responses(
        (status = 200, description = "The device and its new token", body = DeviceToken),
        (status = 400, description = "Bad token", body = ErrorBody),
        (status = 404, description = "Unknown", body = ErrorBody),
        (status = 409, description = "The token cannot be used", body = ErrorBody),
    ))]
async fn set_access_token(
    State(state): State<AppState>,
    caller: Caller<CanAdmin>,
    Path(id): Path<Uuid>,
    Json(body): Json<TokenChange>,
) -> ApiResult<Json<DeviceToken>> {
    let mut d = state
        .ota
        .set_device_token(
            caller.actor(),
            caller.tenant(),
            id.into(),
            body.access_token.as_deref(),
        )
        .await?;
    let access_token = std::mem::take(&mut d.access_token);
    Ok(Json(DeviceToken {
        device: d.into(),
        access_token,
    }))
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(delete_device))
        .routes(routes!(set_access_token))
}
