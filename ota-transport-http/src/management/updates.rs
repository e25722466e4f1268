//! Updates: a device's latest update per kind, its updates and their history; cancel and
//! retry one device.

use super::common::{parse_kind, parse_opt_kind, parse_update_states};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{AppState, Caller, CanOperate, CanRead, Json, Path, Query};
use super::paging::{PageOf, PageParams};
use axum::extract::State;
use ota_core::store::UpdateFilter;
use ota_core::update::HistoryEntry;
use ota_core::Update;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// An update as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UpdateView {
    /// Id.
    pub id: Uuid,
    /// The device.
    pub device_id: Uuid,
    /// `FIRMWARE` or `SOFTWARE`.
    pub kind: String,
    /// The package.
    pub package_id: Uuid,
    /// Target title.
    pub target_title: String,
    /// Target version.
    pub target_version: String,
    /// The campaign it belongs to, if any.
    pub campaign_id: Option<Uuid>,
    /// Its wave in the campaign.
    pub wave: u32,
    /// `QUEUED`, `INITIATED`, `DOWNLOADING`, `DOWNLOADED`, `VERIFIED`, `UPDATING`, `UPDATED`,
    /// `FAILED` or `CANCELED`.
    pub state: String,
    /// Attempt number (from 1).
    pub attempt: u32,
    /// Progress percentage the device reported.
    pub progress: Option<u8>,
    /// Error text of a failure.
    pub error: Option<String>,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When its state last changed.
    pub state_changed_at: chrono::DateTime<chrono::Utc>,
    /// When an automatic retry is due.
    pub retry_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<Update> for UpdateView {
    fn from(u: Update) -> Self {
        Self {
            id: u.id.0,
            device_id: u.device_id.0,
            kind: u.kind.to_string(),
            package_id: u.package_id.0,
            target_title: u.target.title,
            target_version: u.target.version,
            campaign_id: u.campaign_id.map(|c| c.0),
            wave: u.wave,
            state: u.state.name().to_string(),
            attempt: u.attempt,
            progress: u.progress,
            error: u.error,
            created_at: u.created_at,
            state_changed_at: u.state_changed_at,
            retry_at: u.retry_at,
        }
    }
}

/// One event of an update's history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HistoryView {
    /// The update.
    pub update_id: Uuid,
    /// Attempt.
    pub attempt: u32,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// State before.
    pub from: String,
    /// State after.
    pub to: String,
    /// Who caused it: `device`, `server`, `operator`, `campaign`, `timeout`, `retry`.
    pub source: String,
    /// The event.
    pub event: String,
    /// Message (an error text, a reason).
    pub message: Option<String>,
    /// `applied`, `ignored` or `rejected`.
    pub outcome: String,
}

fn text_of<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

impl From<HistoryEntry> for HistoryView {
    fn from(h: HistoryEntry) -> Self {
        Self {
            update_id: h.update_id.0,
            attempt: h.attempt,
            at: h.at,
            from: h.from.name().to_string(),
            to: h.to.name().to_string(),
            source: text_of(&h.source),
            outcome: text_of(&h.outcome),
            event: h.event,
            message: h.message,
        }
    }
}

/// Filters of a device's updates.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeviceUpdateFilter {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only these states, comma-separated (`FAILED,CANCELED`).
    pub state: Option<String>,
}

/// A device's updates, oldest first.
#[utoipa::path(get, path = "/devices/{id}/updates", tag = "updates",
    params(("id" = Uuid, Path, description = "Device id"), DeviceUpdateFilter, PageParams),
    responses(
        (status = 200, description = "A page", body = PageOf<UpdateView>),
        (status = 400, description = "Bad filter, cursor or limit", body = ErrorBody),
        (status = 404, description = "Unknown device", body = ErrorBody),
    ))]
async fn device_updates(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Path(id): Path<Uuid>,
    Query(filter): Query<DeviceUpdateFilter>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<PageOf<UpdateView>>> {
    let tenant = caller.tenant();
    let f = UpdateFilter {
        device_id: Some(id.into()),
        kind: parse_opt_kind(filter.kind.as_deref())?,
        states: parse_update_states(filter.state.as_deref())?,
        ..UpdateFilter::default()
    };
    let request = page.request()?;
    state.ota.device(tenant, id.into()).await?;
    let got = state.ota.store().list_updates(tenant, &f, request).await?;
    Ok(Json(PageOf::from_store(got, Into::into)))
}

/// A device's latest update of a kind.
#[utoipa::path(get, path = "/devices/{id}/updates/{kind}", tag = "updates",
    params(("id" = Uuid, Path, description = "Device id"),
           ("kind" = String, Path, description = "`FIRMWARE`/`fw` or `SOFTWARE`/`sw`")),
    responses(
        (status = 200, description = "The latest update", body = UpdateView),
        (status = 404, description = "Unknown device, or it has no update of this kind", body = ErrorBody),
    ))]
async fn latest_update(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Path((id, kind)): Path<(Uuid, String)>,
) -> ApiResult<Json<UpdateView>> {
    let kind = parse_kind(&kind)?;
    let tenant = caller.tenant();
    state.ota.device(tenant, id.into()).await?;
    match state
        .ota
        .store()
        .latest_update(tenant, id.into(), kind)
        .await?
    {
        Some(u) => Ok(Json(u.into())),
        None => Err(ApiError::not_found(format!(
            "device {id} has no {kind} update"
        ))),
    }
}

/// One update.
#[utoipa::path(get, path = "/updates/{id}", tag = "updates",
    params(("id" = Uuid, Path, description = "Update id")),
    responses(
        (status = 200, description = "The update", body = UpdateView),
        (status = 404, description = "Unknown", body = ErrorBody),
    ))]
async fn get_update(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<UpdateView>> {
    let u = state
        .ota
        .store()
        .get_update(caller.tenant(), id.into())
        .await?;
    Ok(Json(u.into()))
}

/// The history of an update (every attempt), oldest first.
#[utoipa::path(get, path = "/updates/{id}/history", tag = "updates",
    params(("id" = Uuid, Path, description = "Update id")),
    responses(
        (status = 200, description = "Every event", body = Vec<HistoryView>),
        (status = 404, description = "Unknown", body = ErrorBody),
    ))]
async fn update_history(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<HistoryView>>> {
    let store = state.ota.store();
    store.get_update(caller.tenant(), id.into()).await?;
    let h = store.update_history(caller.tenant(), id.into()).await?;
    Ok(Json(h.into_iter().map(Into::into).collect()))
}

/// Why an update is canceled.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Free text kept in the history.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Cancel a device's unfinished update of a kind.
#[utoipa::path(post, path = "/devices/{id}/updates/{kind}/cancel", tag = "updates",
    request_body = CancelBody,
    params(("id" = Uuid, Path, description = "Device id"),
           ("kind" = String, Path, description = "`FIRMWARE`/`fw` or `SOFTWARE`/`sw`")),
    responses(
        (status = 200, description = "The canceled update", body = UpdateView),
        (status = 404, description = "Unknown device", body = ErrorBody),
        (status = 409, description = "Nothing to cancel (names the state)", body = ErrorBody),
    ))]
async fn cancel(
    State(state): State<AppState>,
    caller: Caller<CanOperate>,
    Path((id, kind)): Path<(Uuid, String)>,
    Json(body): Json<CancelBody>,
) -> ApiResult<Json<UpdateView>> {
    let kind = parse_kind(&kind)?;
    state.ota.device(caller.tenant(), id.into()).await?;
    let reason = body.reason.unwrap_or_else(|| "operator request".into());
    let u = state
        .ota
        .cancel_update(caller.actor(), caller.tenant(), id.into(), kind, &reason)
        .await?;
    Ok(Json(u.into()))
}

/// Retry a device's failed or canceled update of a kind (a new attempt).
#[utoipa::path(post, path = "/devices/{id}/updates/{kind}/retry", tag = "updates",
    params(("id" = Uuid, Path, description = "Device id"),
           ("kind" = String, Path, description = "`FIRMWARE`/`fw` or `SOFTWARE`/`sw`")),
    responses(
        (status = 200, description = "The update, QUEUED again", body = UpdateView),
        (status = 404, description = "Unknown device", body = ErrorBody),
        (status = 409, description = "Nothing to retry (names the state)", body = ErrorBody),
    ))]
async fn retry(
    State(state): State<AppState>,
    caller: Caller<CanOperate>,
    Path((id, kind)): Path<(Uuid, String)>,
) -> ApiResult<Json<UpdateView>> {
    let kind = parse_kind(&kind)?;
    state.ota.device(caller.tenant(), id.into()).await?;
    let u = state
        .ota
        .retry_update(caller.actor(), caller.tenant(), id.into(), kind)
        .await?;
    Ok(Json(u.into()))
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(device_updates))
        .routes(routes!(latest_update))
        .routes(routes!(get_update))
        .routes(routes!(update_history))
        .routes(routes!(cancel))
        .routes(routes!(retry))
}
