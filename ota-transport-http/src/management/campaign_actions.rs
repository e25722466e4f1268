//! A campaign's lifecycle actions (start, schedule, pause, resume, stop, archive, next
//! wave, retry failed devices), its statistics and its devices filtered by state.

use super::campaigns::CampaignView;
use super::common::parse_update_states;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{AppState, Caller, CanOperate, CanRead, Json, Path, Query};
use super::paging::{PageOf, PageParams};
use super::updates::UpdateView;
use axum::extract::State;
use ota_core::campaign::{CampaignState, StateCounts};
use ota_core::store::UpdateFilter;
use ota_core::UpdateState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

macro_rules! action {
    ($fn:ident, $path:literal, $method:ident, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "campaigns",
            params(("id" = Uuid, Path, description = "Campaign id")),
            responses(
                (status = 200, description = "The campaign after the action", body = CampaignView),
                (status = 404, description = "Unknown", body = ErrorBody),
                (status = 409, description = "Not allowed in its state (named)", body = ErrorBody),
            ))]
        async fn $fn(
            State(state): State<AppState>,
            caller: Caller<CanOperate>,
            Path(id): Path<Uuid>,
        ) -> ApiResult<Json<CampaignView>> {
            let c = state
                .ota
                .$method(caller.actor(), caller.tenant(), id.into())
                .await?;
            Ok(Json(c.into()))
        }
    };
}

action!(
    start,
    "/campaigns/{id}/start",
    start_campaign,
    "Start a DRAFT campaign: RUNNING now, or SCHEDULED when its start time is in the future."
);
action!(
    pause,
    "/campaigns/{id}/pause",
    pause_campaign,
    "Pause a RUNNING campaign: nothing more is released."
);
action!(
    resume,
    "/campaigns/{id}/resume",
    resume_campaign,
    "Resume a PAUSED campaign."
);
action!(
    stop,
    "/campaigns/{id}/stop",
    stop_campaign,
    "Stop a campaign: pending and ongoing device updates are canceled; history is kept."
);
action!(
    archive,
    "/campaigns/{id}/archive",
    archive_campaign,
    "Archive an ended campaign (hidden from default listings)."
);
action!(
    advance_wave,
    "/campaigns/{id}/advance-wave",
    advance_campaign_wave,
    "Start the next wave now."
);

/// When a scheduled campaign starts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    /// The start time; must be in the future.
    pub start_at: chrono::DateTime<chrono::Utc>,
}

/// Schedule a DRAFT campaign to start at a time (it becomes SCHEDULED).
#[utoipa::path(post, path = "/campaigns/{id}/schedule", tag = "campaigns", request_body = ScheduleBody,
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "The SCHEDULED campaign", body = CampaignView),
        (status = 400, description = "Start time not in the future", body = ErrorBody),
        (status = 404, description = "Unknown", body = ErrorBody),
        (status = 409, description = "Not a DRAFT (state named)", body = ErrorBody),
    ))]
async fn schedule(
    State(state): State<AppState>,
    caller: Caller<CanOperate>,
    Path(id): Path<Uuid>,
    Json(body): Json<ScheduleBody>,
) -> ApiResult<Json<CampaignView>> {
    let (tenant, actor) = (caller.tenant(), caller.actor());
    if body.start_at <= state.ota.now() {
        return Err(ApiError::bad_request(
            "invalid_start",
            format!(
                "start_at {} is not in the future; use /start to start now",
                body.start_at
            ),
        ));
    }
    let c = state.ota.campaign(tenant, id.into()).await?;
    if c.state != CampaignState::Draft {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "illegal_transition",
            format!(
                "only a DRAFT campaign can be scheduled; this one is {}",
                c.state
            ),
        ));
    }
    let mut spec = c.spec.clone();
    spec.start_at = Some(body.start_at);
    state
        .ota
        .edit_campaign(actor, tenant, id.into(), spec)
        .await?;
    let c = state.ota.start_campaign(actor, tenant, id.into()).await?;
    Ok(Json(c.into()))
}

/// How many devices an action touched.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RetriedView {
    /// Devices given a new attempt.
    pub retried: u64,
}

/// Retry every failed device of a RUNNING or PAUSED campaign.
#[utoipa::path(post, path = "/campaigns/{id}/retry-failed", tag = "campaigns",
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "How many were retried", body = RetriedView),
        (status = 404, description = "Unknown", body = ErrorBody),
        (status = 409, description = "Not RUNNING or PAUSED", body = ErrorBody),
    ))]
async fn retry_failed(
    State(state): State<AppState>,
    caller: Caller<CanOperate>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<RetriedView>> {
    let retried = state
        .ota
        .retry_failed_in_campaign(caller.actor(), caller.tenant(), id.into())
        .await?;
    Ok(Json(RetriedView { retried }))
}

/// Counts of a campaign or a wave: the dashboard's status cards and every state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CountsView {
    /// QUEUED.
    pub not_started: u64,
    /// INITIATED through UPDATING.
    pub ongoing: u64,
    /// UPDATED.
    pub successful: u64,
    /// FAILED.
    pub failed: u64,
    /// CANCELED.
    pub canceled: u64,
    /// Successful plus failed.
    pub finished: u64,
    /// Every device.
    pub total: u64,
    /// Count per update state.
    pub by_state: BTreeMap<String, u64>,
}

impl From<&StateCounts> for CountsView {
    fn from(c: &StateCounts) -> Self {
        Self {
            not_started: c.not_started(),
            ongoing: c.ongoing(),
            successful: c.successful(),
            failed: c.failed(),
            canceled: c.canceled(),
            finished: c.finished(),
            total: c.total(),
            by_state: c.iter().map(|(s, n)| (s.name().to_string(), n)).collect(),
        }
    }
}

/// A campaign's statistics.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatsView {
    /// Over every wave.
    pub total: CountsView,
    /// Per wave, in order.
    pub waves: Vec<CountsView>,
}

/// A campaign's statistics (read in constant time).
#[utoipa::path(get, path = "/campaigns/{id}/stats", tag = "campaigns",
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "Statistics", body = StatsView),
        (status = 404, description = "Unknown", body = ErrorBody),
    ))]
async fn stats(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<StatsView>> {
    let tenant = caller.tenant();
    state.ota.campaign(tenant, id.into()).await?;
    let s = state.ota.campaign_stats(tenant, id.into()).await?;
    Ok(Json(StatsView {
        total: (&s.counts).into(),
        waves: s.waves.iter().map(Into::into).collect(),
    }))
}

/// Filters of a campaign's devices.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CampaignDeviceFilter {
    /// Only these update states, comma-separated (`FAILED,CANCELED`).
    pub state: Option<String>,
    /// Only a status card: `not_started`, `ongoing`, `successful`, `failed`, `canceled`,
    /// `finished`.
    pub status: Option<String>,
}

fn states_of_status(status: &str) -> ApiResult<Vec<UpdateState>> {
    Ok(match status.to_ascii_lowercase().as_str() {
        "not_started" => vec![UpdateState::Queued],
        "ongoing" => UpdateState::ALL
            .into_iter()
            .filter(|s| s.is_in_progress())
            .collect(),
        "successful" => vec![UpdateState::Updated],
        "failed" => vec![UpdateState::Failed],
        "canceled" => vec![UpdateState::Canceled],
        "finished" => vec![UpdateState::Updated, UpdateState::Failed],
        other => {
            return Err(ApiError::bad_request(
                "invalid_status",
                format!("unknown status {other:?}; use not_started, ongoing, successful, failed, canceled or finished"),
            ))
        }
    })
}

/// A campaign's device updates, optionally by state or status card.
#[utoipa::path(get, path = "/campaigns/{id}/devices", tag = "campaigns",
    params(("id" = Uuid, Path, description = "Campaign id"), CampaignDeviceFilter, PageParams),
    responses(
        (status = 200, description = "A page of its devices' updates", body = PageOf<UpdateView>),
        (status = 400, description = "Bad filter, cursor or limit", body = ErrorBody),
        (status = 404, description = "Unknown", body = ErrorBody),
    ))]
async fn devices(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Path(id): Path<Uuid>,
    Query(filter): Query<CampaignDeviceFilter>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<PageOf<UpdateView>>> {
    let tenant = caller.tenant();
    let states = match (&filter.state, &filter.status) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "filter by `state` or by `status`, not both",
            ))
        }
        (_, Some(status)) => states_of_status(status)?,
        (s, None) => parse_update_states(s.as_deref())?,
    };
    let f = UpdateFilter {
        campaign_id: Some(id.into()),
        states,
        ..UpdateFilter::default()
    };
    let request = page.request()?;
    state.ota.campaign(tenant, id.into()).await?;
    let got = state.ota.store().list_updates(tenant, &f, request).await?;
    Ok(Json(PageOf::from_store(got, Into::into)))
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(schedule))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(stop))
        .routes(routes!(archive))
        .routes(routes!(advance_wave))
        .routes(routes!(retry_failed))
        .routes(routes!(stats))
        .routes(routes!(devices))
}
