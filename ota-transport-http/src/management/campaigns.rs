//! Campaigns: create, list, get, edit (DRAFT/SCHEDULED), copy, CSV device list. Their
//! lifecycle actions, statistics and devices are in [`super::campaign_actions`].

use super::common::parse_campaign_states;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{read_limited, AppState, Caller, CanOperate, CanRead, Json, Path, Query};
use super::paging::{PageOf, PageParams};
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use ota_core::campaign::{
    Campaign, CampaignSpec, CampaignState, CampaignState as S, CampaignTarget,
};
use ota_core::engine::ImportReport;
use ota_core::{GroupId, PackageId, ProfileId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// Which devices a campaign updates.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetBody {
    /// Devices of a profile and/or members of groups (with both: devices of the profile in
    /// one of the groups), optionally only those running one of `source_versions`.
    Selection {
        /// Only devices of this profile.
        profile: Option<Uuid>,
        /// Only members of one of these groups.
        #[serde(default)]
        groups: Vec<Uuid>,
        /// Only devices running one of these versions.
        #[serde(default)]
        source_versions: Vec<String>,
    },
    /// An explicit list of devices, uploaded as CSV to `/campaigns/{id}/devices`.
    DeviceList,
}

/// A campaign definition. `waves`, `error_threshold`, `pacing`, `policy` and `windows` take
/// the forms the core library defines (see the crate documentation of `ota-core`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignBody {
    /// Name, 1 to 255 characters.
    pub name: String,
    /// Free text, at most 4096 characters.
    pub description: Option<String>,
    /// The package devices are updated to.
    pub package_id: Uuid,
    /// Which devices.
    pub target: TargetBody,
    /// When it starts; absent: when an operator starts it.
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it ends at the latest.
    pub finish_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Ordered waves, e.g. `[{"size":{"type":"percent","value":1.0}},
    /// {"size":{"type":"rest"},"advance":{"success_percent":95.0}}]`.
    #[schema(value_type = Option<Vec<Object>>)]
    pub waves: Option<serde_json::Value>,
    /// Error threshold, e.g. `{"percent":10.0,"min_finished":20,"action":"pause"}`.
    #[schema(value_type = Option<Object>)]
    pub error_threshold: Option<serde_json::Value>,
    /// The campaign's pace, e.g. `{"rate":{"count":100,"per_ms":60000},"max_in_progress":50}`.
    #[schema(value_type = Option<Object>)]
    pub pacing: Option<serde_json::Value>,
    /// Timeouts and retries of its updates.
    #[schema(value_type = Option<Object>)]
    pub policy: Option<serde_json::Value>,
    /// Maintenance windows.
    #[schema(value_type = Option<Vec<Object>>)]
    pub windows: Option<serde_json::Value>,
    /// Whether devices joining the target while it runs are taken too.
    #[serde(default)]
    pub dynamic: bool,
}

fn field<T: DeserializeOwned>(
    name: &str,
    value: Option<serde_json::Value>,
) -> ApiResult<Option<T>> {
    value
        .filter(|v| !v.is_null())
        .map(|v| {
            serde_json::from_value(v).map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    format!("field `{name}` does not fit: {e}"),
                )
            })
        })
        .transpose()
}

impl CampaignBody {
    pub(super) fn into_spec(self) -> ApiResult<CampaignSpec> {
        let target = match self.target {
            TargetBody::Selection {
                profile,
                groups,
                source_versions,
            } => CampaignTarget::Selection {
                profile: profile.map(ProfileId),
                groups: groups.into_iter().map(GroupId).collect(),
                source_versions: source_versions.into_iter().collect(),
            },
            TargetBody::DeviceList => CampaignTarget::DeviceList,
        };
        let mut spec = CampaignSpec::new(self.name, PackageId(self.package_id), target);
        spec.description = self.description;
        spec.start_at = self.start_at;
        spec.finish_at = self.finish_at;
        spec.dynamic = self.dynamic;
        if let Some(w) = field("waves", self.waves)? {
            spec.waves = w;
        }
        spec.error_threshold = field("error_threshold", self.error_threshold)?;
        if let Some(p) = field("pacing", self.pacing)? {
            spec.pacing = p;
        }
        if let Some(p) = field("policy", self.policy)? {
            spec.policy = p;
        }
        if let Some(w) = field("windows", self.windows)? {
            spec.windows = w;
        }
        Ok(spec)
    }
}

/// Devices of the target not taken when it started, per reason.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SkippedView {
    /// Why.
    pub reason: String,
    /// How many.
    pub count: u64,
}

/// A campaign as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CampaignView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// `DRAFT`, `SCHEDULED`, `RUNNING`, `PAUSED`, `FINISHED`, `STOPPED`, `FAILED`, `ARCHIVED`.
    pub state: String,
    /// Why it is in this state, when not by an operator's plain action.
    pub state_reason: Option<String>,
    /// `FIRMWARE` or `SOFTWARE`.
    pub kind: String,
    /// The package.
    pub package_id: Uuid,
    /// The wave being released (from 0).
    pub current_wave: u32,
    /// Devices per wave.
    pub wave_sizes: Vec<u64>,
    /// Devices not taken, per reason.
    pub skipped: Vec<SkippedView>,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// When it started running.
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it ended.
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The whole definition, as the core library writes it.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
}

impl From<Campaign> for CampaignView {
    fn from(c: Campaign) -> Self {
        Self {
            id: c.id.0,
            name: c.spec.name.clone(),
            state: c.state.name().to_string(),
            state_reason: c.state_reason,
            kind: c.kind.to_string(),
            package_id: c.spec.package_id.0,
            current_wave: c.current_wave,
            wave_sizes: c.wave_sizes,
            skipped: c
                .skipped
                .into_iter()
                .map(|(reason, count)| SkippedView { reason, count })
                .collect(),
            created_by: c.created_by,
            created_at: c.created_at,
            updated_at: c.updated_at,
            started_at: c.started_at,
            ended_at: c.ended_at,
            spec: serde_json::to_value(&c.spec).unwrap_or_default(),
        }
    }
}

/// Create a DRAFT campaign.
#[utoipa::path(post, path = "/campaigns", tag = "campaigns", request_body = CampaignBody,
    responses(
        (status = 201, description = "Created (DRAFT)", body = CampaignView),
        (status = 400, description = "Invalid definition", body = ErrorBody),
        (status = 404, description = "Unknown package", body = ErrorBody),
        (status = 422, description = "A field does not fit", body = ErrorBody),
    ))]
async fn create_campaign(
    State(state): State<AppState>,
    caller: Caller<CanOperate>,
    Json(body): Json<CampaignBody>,
) -> ApiResult<(StatusCode, Json<CampaignView>)> {
    let spec = body.into_spec()?;
    let c = state
        .ota
        .create_campaign(caller.actor(), caller.tenant(), spec)
        .await?;
    Ok((StatusCode::CREATED, Json(c.into())))
}

/// Filters of the campaign list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CampaignFilter {
    /// Only these states, comma-separated. Without it ARCHIVED campaigns are left out.
    pub state: Option<String>,
    /// With no `state` filter: include ARCHIVED campaigns too.
    #[serde(default)]
    pub include_archived: bool,
}

/// List campaigns.
#[utoipa::path(get, path = "/campaigns", tag = "campaigns", params(CampaignFilter, PageParams),
    responses(
        (status = 200, description = "A page", body = PageOf<CampaignView>),
        (status = 400, description = "Bad filter, cursor or limit", body = ErrorBody),
    ))]
async fn list_campaigns(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Query(filter): Query<CampaignFilter>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<PageOf<CampaignView>>> {
    let mut states = parse_campaign_states(filter.state.as_deref())?;
    if states.is_empty() && !filter.include_archived {
        states = CampaignState::ALL
            .into_iter()
            .filter(|s| *s != S::Archived)
            .collect();
    }
    let got = state
        .ota
        .store()
        .list_campaigns(caller.tenant(), &states, page.request()?)
        .await?;
    Ok(Json(PageOf::from_store(got, Into::into)))
}

/// One campaign.
#[utoipa::path(get, path = "/campaigns/{id}", tag = "campaigns",
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "The campaign", body = CampaignView),
        (status = 404, description = "Unknown", body = ErrorBody),
    ))]
async fn get_campaign(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<CampaignView>> {
    Ok(Json(
        state.ota.campaign(caller.tenant(), id.into()).await?.into(),
    ))
}

/// Replace the definition of a DRAFT or SCHEDULED campaign.
#[utoipa::path(put, path = "/campaigns/{id}", tag = "campaigns", request_body = CampaignBody,
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "The campaign", body = CampaignView),
        (status = 400, description = "Invalid definition", body = ErrorBody),
        (status = 404, description = "Unknown campaign or package", body = ErrorBody),
        (status = 409, description = "Not editable in its state (named)", body = ErrorBody),
    ))]
async fn edit_campaign(
    State(state): State<AppState>,
    caller: Caller<CanOperate>,
    Path(id): Path<Uuid>,
    Json(body): Json<CampaignBody>,
) -> ApiResult<Json<CampaignView>> {
    let spec = body.into_spec()?;
    let c = state
        .ota
        .edit_campaign(caller.actor(), caller.tenant(), id.into(), spec)
        .await?;
    Ok(Json(c.into()))
}

/// The name of a copy.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyBody {
    /// Name of the copy; default `Copy of <name>`.
    pub name: Option<String>,
}

/// Copy any campaign into a new DRAFT.
#[utoipa::path(post, path = "/campaigns/{id}/copy", tag = "campaigns", request_body = CopyBody,
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 201, description = "The copy (DRAFT)", body = CampaignView),
        (status = 404, description = "Unknown", body = ErrorBody),
    ))]
async fn copy_campaign(
    State(state): State<AppState>,
    caller: Caller<CanOperate>,
    Path(id): Path<Uuid>,
    Json(body): Json<CopyBody>,
) -> ApiResult<(StatusCode, Json<CampaignView>)> {
    let c = state
        .ota
        .copy_campaign(caller.actor(), caller.tenant(), id.into(), body.name)
        .await?;
    Ok((StatusCode::CREATED, Json(c.into())))
}

/// What a device list upload did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportView {
    /// Devices now in the list.
    pub accepted: u64,
    /// Rows not taken: `line`, `name`, `reason`.
    #[schema(value_type = Vec<Object>)]
    pub skipped: serde_json::Value,
}

impl From<ImportReport> for ImportView {
    fn from(r: ImportReport) -> Self {
        Self {
            accepted: r.accepted,
            skipped: serde_json::to_value(&r.skipped).unwrap_or_default(),
        }
    }
}

/// Set the device list of an editable campaign with a `device_list` target from CSV (header
/// `DeviceName`). Unknown or incompatible devices are skipped, each with line and reason.
#[utoipa::path(put, path = "/campaigns/{id}/devices", tag = "campaigns",
    request_body(content = String, content_type = "text/csv", description = "DeviceName\\nsensor-1\\n..."),
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "What was taken and skipped", body = ImportView),
        (status = 400, description = "Not a CSV device list", body = ErrorBody),
        (status = 404, description = "Unknown campaign", body = ErrorBody),
        (status = 409, description = "Campaign not editable", body = ErrorBody),
        (status = 413, description = "File too large", body = ErrorBody),
    ))]
async fn import_devices(
    State(state): State<AppState>,
    caller: Caller<CanOperate>,
    Path(id): Path<Uuid>,
    body: Body,
) -> ApiResult<Json<ImportView>> {
    let csv = read_limited(body, state.options.max_csv_body).await?;
    let r = state
        .ota
        .import_campaign_devices(caller.actor(), caller.tenant(), id.into(), &csv)
        .await?;
    Ok(Json(r.into()))
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_campaign, list_campaigns))
        .routes(routes!(get_campaign, edit_campaign))
        .routes(routes!(copy_campaign))
        .routes(routes!(import_devices))
        .merge(super::campaign_actions::routes())
}
