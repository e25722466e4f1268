//! Scheduled events: at the occurrences of a recurrence in a time zone, assign a package or
//! start a campaign. Create, list, get, edit, delete.

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{AppState, Caller, CanOperate, CanRead, Json, Path, Query};
use super::paging::{PageOf, PageParams};
use axum::extract::State;
use axum::http::StatusCode;
use ota_core::schedule::{Recurrence, ScheduledAction, ScheduledEvent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// A scheduled event's definition.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    /// Name, 1 to 255 characters.
    pub name: String,
    /// When: `{"start":"2026-01-01T03:00:00","time_zone":"Europe/Berlin",
    /// "repeat":{"type":"weekly","days":["Mon","Thu"]},"until":null}`; `repeat.type` is
    /// `once`, `daily`, `weekly` (with `days`) or `every` (with `interval` in ms).
    #[schema(value_type = Object)]
    pub recurrence: serde_json::Value,
    /// What: `{"type":"assign","target":{"type":"group","id":"..."},"package_id":"..."}` or
    /// `{"type":"start_campaign","campaign_id":"..."}`.
    #[schema(value_type = Object)]
    pub action: serde_json::Value,
}

impl ScheduleBody {
    pub(super) fn parts(self) -> ApiResult<(String, Recurrence, ScheduledAction)> {
        let bad = |what: &str, e: serde_json::Error| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("field `{what}` does not fit: {e}"),
            )
        };
        let recurrence =
            serde_json::from_value(self.recurrence).map_err(|e| bad("recurrence", e))?;
        let action = serde_json::from_value(self.action).map_err(|e| bad("action", e))?;
        Ok((self.name, recurrence, action))
    }
}

/// A scheduled event as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// When.
    #[schema(value_type = Object)]
    pub recurrence: serde_json::Value,
    /// What.
    #[schema(value_type = Object)]
    pub action: serde_json::Value,
    /// The next occurrence; `null` when none is left.
    pub next_run: Option<chrono::DateTime<chrono::Utc>>,
    /// The last occurrence run.
    pub last_run: Option<chrono::DateTime<chrono::Utc>>,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<ScheduledEvent> for ScheduleView {
    fn from(e: ScheduledEvent) -> Self {
        Self {
            id: e.id.0,
            name: e.name,
            recurrence: serde_json::to_value(&e.recurrence).unwrap_or_default(),
            action: serde_json::to_value(&e.action).unwrap_or_default(),
            next_run: e.next_run,
            last_run: e.last_run,
            created_by: e.created_by,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// Create a scheduled event.
#[utoipa::path(post, path = "/schedules", tag = "schedules", request_body = ScheduleBody,
    responses(
        (status = 201, description = "Created", body = ScheduleView),
        (status = 400, description = "Invalid recurrence or action", body = ErrorBody),
        (status = 404, description = "Unknown package, target or campaign", body = ErrorBody),
        (status = 422, description = "A field does not fit", body = ErrorBody),
    ))]
async fn create_schedule(
    State(state): State<AppState>,
    caller: Caller<CanOperate>,
    Json(body): Json<ScheduleBody>,
) -> ApiResult<(StatusCode, Json<ScheduleView>)> {
    let (name, recurrence, action) = body.parts()?;
    let e = state
        .ota
        .create_schedule(caller.actor(), caller.tenant(), &name, recurrence, action)
        .await?;
    Ok((StatusCode::CREATED, Json(e.into())))
}

/// List scheduled events.
#[utoipa::path(get, path = "/schedules", tag = "schedules", params(PageParams),
    responses(
        (status = 200, description = "A page", body = PageOf<ScheduleView>),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
    ))]
async fn list_schedules(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<PageOf<ScheduleView>>> {
    let got = state
        .ota
        .list_schedules(caller.tenant(), page.request()?)
        .await?;
    Ok(Json(PageOf::from_store(got, Into::into)))
}

/// One scheduled event.
#[utoipa::path(get, path = "/schedules/{id}", tag = "schedules",
    params(("id" = Uuid, Path, description = "Event id")),
    responses(
        (status = 200, description = "The event", body = ScheduleView),
        (status = 404, description = "Unknown", body = ErrorBody),
    ))]
async fn get_schedule(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ScheduleView>> {
    let e = state
        .ota
        .store()
        .get_schedule(caller.tenant(), id.into())
        .await?;
    Ok(Json(e.into()))
}

/// Replace a scheduled event's name, recurrence and action.
#[utoipa::path(put, path = "/schedules/{id}", tag = "schedules", request_body = ScheduleBody,
    params(("id" = Uuid, Path, description = "Event id")),
    responses(
        (status = 200, description = "The event", body = ScheduleView),
        (status = 400, description = "Invalid recurrence or action", body = ErrorBody),
        (status = 404, description = "Unknown", body = ErrorBody),
    ))]
async fn edit_schedule(
    State(state): State<AppState>,
    caller: Caller<CanOperate>,
    Path(id): Path<Uuid>,
    Json(body): Json<ScheduleBody>,
) -> ApiResult<Json<ScheduleView>> {
    let (name, recurrence, action) = body.parts()?;
    let e = state
        .ota
        .edit_schedule(
            caller.actor(),
            caller.tenant(),
            id.into(),
            &name,
            recurrence,
            action,
        )
        .await?;
    Ok(Json(e.into()))
}

/// Delete a scheduled event.
#[utoipa::path(delete, path = "/schedules/{id}", tag = "schedules",
    params(("id" = Uuid, Path, description = "Event id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "Unknown", body = ErrorBody),
    ))]
async fn delete_schedule(
    State(state): State<AppState>,
    caller: Caller<CanOperate>,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state
        .ota
        .store()
        .get_schedule(caller.tenant(), id.into())
        .await?;
    state
        .ota
        .delete_schedule(caller.actor(), caller.tenant(), id.into())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_schedule, list_schedules))
        .routes(routes!(get_schedule, edit_schedule, delete_schedule))
}
