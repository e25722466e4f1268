//! Device profiles and device groups: create, get, list, rename, delete.

use super::error::{ApiResult, ErrorBody};
use super::extract::{AppState, Caller, CanAdmin, CanRead, Json, Path, Query};
use super::paging::{PageOf, PageParams};
use axum::extract::State;
use axum::http::StatusCode;
use ota_core::{DeviceGroup, DeviceProfile};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// A device profile or group.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NamedView {
    /// Id.
    pub id: Uuid,
    /// Name, unique in the tenant.
    pub name: String,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<DeviceProfile> for NamedView {
    fn from(p: DeviceProfile) -> Self {
        Self {
            id: p.id.0,
            name: p.name,
            created_at: p.created_at,
        }
    }
}

impl From<DeviceGroup> for NamedView {
    fn from(g: DeviceGroup) -> Self {
        Self {
            id: g.id.0,
            name: g.name,
            created_at: g.created_at,
        }
    }
}

/// A name for a new profile or group.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNamed {
    /// 1 to 255 characters, no control characters, unique in the tenant.
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
}

/// Create a device profile.
#[utoipa::path(post, path = "/profiles", tag = "profiles", request_body = NewNamed,
    responses(
        (status = 201, description = "Created", body = NamedView),
        (status = 400, description = "Bad name", body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody),
    ))]
async fn create_profile(
    State(state): State<AppState>,
    caller: Caller<CanAdmin>,
    Json(body): Json<NewNamed>,
) -> ApiResult<(StatusCode, Json<NamedView>)> {
    let p = state
        .ota
        .create_profile(caller.actor(), caller.tenant(), &body.name)
        .await?;
    Ok((StatusCode::CREATED, Json(p.into())))
}

/// List device profiles.
#[utoipa::path(get, path = "/profiles", tag = "profiles", params(PageParams),
    responses(
        (status = 200, description = "A page", body = PageOf<NamedView>),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
    ))]
async fn list_profiles(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<PageOf<NamedView>>> {
    let got = state
        .ota
        .store()
        .list_profiles(caller.tenant(), page.request()?)
        .await?;
    Ok(Json(PageOf::from_store(got, Into::into)))
}

/// One device profile.
#[utoipa::path(get, path = "/profiles/{id}", tag = "profiles",
    params(("id" = Uuid, Path, description = "Profile id")),
    responses(
        (status = 200, description = "The profile", body = NamedView),
        (status = 404, description = "Unknown", body = ErrorBody),
    ))]
async fn get_profile(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<NamedView>> {
    let p = state
        .ota
        .store()
        .get_profile(caller.tenant(), id.into())
        .await?;
    Ok(Json(p.into()))
}

/// Create a device group.
#[utoipa::path(post, path = "/groups", tag = "groups", request_body = NewNamed,
    responses(
        (status = 201, description = "Created", body = NamedView),
        (status = 400, description = "Bad name", body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody),
    ))]
async fn create_group(
    State(state): State<AppState>,
    caller: Caller<CanAdmin>,
    Json(body): Json<NewNamed>,
) -> ApiResult<(StatusCode, Json<NamedView>)> {
    let g = state
        .ota
        .create_group(caller.actor(), caller.tenant(), &body.name)
        .await?;
    Ok((StatusCode::CREATED, Json(g.into())))
}

/// List device groups.
#[utoipa::path(get, path = "/groups", tag = "groups", params(PageParams),
    responses(
        (status = 200, description = "A page", body = PageOf<NamedView>),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
    ))]
async fn list_groups(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<PageOf<NamedView>>> {
    let got = state
        .ota
        .store()
        .list_groups(caller.tenant(), page.request()?)
        .await?;
    Ok(Json(PageOf::from_store(got, Into::into)))
}

/// One device group.
#[utoipa::path(get, path = "/groups/{id}", tag = "groups",
    params(("id" = Uuid, Path, description = "Group id")),
    responses(
        (status = 200, description = "The group", body = NamedView),
        (status = 404, description = "Unknown", body = ErrorBody),
    ))]
async fn get_group(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<NamedView>> {
    let g = state
        .ota
        .store()
        .get_group(caller.tenant(), id.into())
        .await?;
    Ok(Json(g.into()))
}

/// Rename a device profile.
#[utoipa::path(patch, path = "/profiles/{id}", tag = "profiles", request_body = NewNamed,
    params(("id" = Uuid, Path, description = "Profile id")),
    responses(
        (status = 200, description = "The renamed profile", body = NamedView),
        (status = 400, description = "Bad name", body = ErrorBody),
        (status = 404, description = "Unknown", body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody),
    ))]
async fn rename_profile(
    State(state): State<AppState>,
    caller: Caller<CanAdmin>,
    Path(id): Path<Uuid>,
    Json(body): Json<NewNamed>,
) -> ApiResult<Json<NamedView>> {
    let p = state
        .ota
        .rename_profile(caller.actor(), caller.tenant(), id.into(), &body.name)
        .await?;
    Ok(Json(p.into()))
}

/// Delete a device profile; refused with 409 `in_use` (listing them) while devices have it
/// or assignments target it.
#[utoipa::path(delete, path = "/profiles/{id}", tag = "profiles",
    params(("id" = Uuid, Path, description = "Profile id")),
    responses(
        (status = 200, description = "The deleted profile", body = NamedView),
        (status = 404, description = "Unknown", body = ErrorBody),
        (status = 409, description = "In use; `details.uses` lists by what", body = ErrorBody),
    ))]
async fn delete_profile(
    State(state): State<AppState>,
    caller: Caller<CanAdmin>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<NamedView>> {
    let p = state
        .ota
        .delete_profile(caller.actor(), caller.tenant(), id.into())
        .await?;
    Ok(Json(p.into()))
}

/// Rename a device group.
#[utoipa::path(patch, path = "/groups/{id}", tag = "groups", request_body = NewNamed,
    params(("id" = Uuid, Path, description = "Group id")),
    responses(
        (status = 200, description = "The renamed group", body = NamedView),
        (status = 400, description = "Bad name", body = ErrorBody),
        (status = 404, description = "Unknown", body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody),
    ))]
async fn rename_group(
    State(state): State<AppState>,
    caller: Caller<CanAdmin>,
    Path(id): Path<Uuid>,
    Json(body): Json<NewNamed>,
) -> ApiResult<Json<NamedView>> {
    let g = state
        .ota
        .rename_group(caller.actor(), caller.tenant(), id.into(), &body.name)
        .await?;
    Ok(Json(g.into()))
}

/// Delete a device group; refused with 409 `in_use` (listing them) while it has members or
/// assignments target it.
#[utoipa::path(delete, path = "/groups/{id}", tag = "groups",
    params(("id" = Uuid, Path, description = "Group id")),
    responses(
        (status = 200, description = "The deleted group", body = NamedView),
        (status = 404, description = "Unknown", body = ErrorBody),
        (status = 409, description = "In use; `details.uses` lists by what", body = ErrorBody),
    ))]
async fn delete_group(
    State(state): State<AppState>,
    caller: Caller<CanAdmin>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<NamedView>> {
    let g = state
        .ota
        .delete_group(caller.actor(), caller.tenant(), id.into())
        .await?;
    Ok(Json(g.into()))
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_profile, list_profiles))
        .routes(routes!(get_profile, rename_profile, delete_profile))
        .routes(routes!(create_group, list_groups))
        .routes(routes!(get_group, rename_group, delete_group))
}
