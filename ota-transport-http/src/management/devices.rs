//! Devices: create (one, or many from CSV), get, list (by profile or group), change profile
//! and groups, group membership.

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{read_limited, AppState, Caller, CanOperate, CanRead, Json, Path, Query};
use super::paging::{PageOf, PageParams};
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use ota_core::store::{DeviceSelector, PageRequest, MAX_PAGE_SIZE};
use ota_core::{Device, GroupId, ProfileId, TenantId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// A title and version a device reports as running.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunningVersion {
    /// Title.
    pub title: String,
    /// Version.
    pub version: String,
}

/// A device as the API shows it (its access token is shown only when set).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeviceView {
    /// Id.
    pub id: Uuid,
    /// Name, unique in the tenant.
    pub name: String,
    /// Its profile.
    pub profile_id: Uuid,
    /// Its groups.
    pub groups: Vec<Uuid>,
    /// Firmware it reports running.
    pub current_firmware: Option<RunningVersion>,
    /// Software it reports running.
    pub current_software: Option<RunningVersion>,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Device> for DeviceView {
    fn from(d: Device) -> Self {
        let running = |tv: Option<ota_core::TitleVersion>| {
            tv.map(|tv| RunningVersion {
                title: tv.title,
                version: tv.version,
            })
        };
        Self {
            id: d.id.0,
            name: d.name,
            profile_id: d.profile_id.0,
            groups: d.groups.iter().map(|g| g.0).collect(),
            current_firmware: running(d.current.firmware),
            current_software: running(d.current.software),
            created_at: d.created_at,
        }
    }
}

/// A new device.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    /// Name, unique in the tenant.
    pub name: String,
    /// Its profile.
    pub profile_id: Uuid,
    /// Its groups.
    #[serde(default)]
    pub groups: Vec<Uuid>,
    /// The access token devices authenticate with (unique); absent: a random one is made.
    pub access_token: Option<String>,
}

/// A created device with its access token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedDevice {
    /// The device.
    pub device: DeviceView,
    /// Its access token.
    pub access_token: String,
}

/// What a CSV import created.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportedDevices {
    /// How many devices were created.
    pub created: usize,
    /// Each device's name, id and access token, in file order.
    pub devices: Vec<ImportedDevice>,
}

/// One imported device.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportedDevice {
    /// Name.
    pub name: String,
    /// Id.
    pub id: Uuid,
    /// Access token.
    pub access_token: String,
}

/// Changes to a device; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevicePatch {
    /// Rename it (unique in the tenant).
    pub name: Option<String>,
    /// Move it to this profile.
    pub profile_id: Option<Uuid>,
    /// Replace its groups.
    pub groups: Option<Vec<Uuid>>,
}

/// Filters of the device list (at most one).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeviceFilter {
    /// Only devices of this profile.
    pub profile: Option<Uuid>,
    /// Only members of this group.
    pub group: Option<Uuid>,
}

fn random_token() -> String {
    let mut secret = [0u8; 15];
    getrandom::fill(&mut secret).expect("the operating system's random source failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
}

/// Create a device.
#[utoipa::path(post, path = "/devices", tag = "devices", request_body = NewDevice,
    responses(
        (status = 201, description = "Created", body = CreatedDevice),
        (status = 400, description = "Bad field", body = ErrorBody),
        (status = 404, description = "Unknown profile or group", body = ErrorBody),
        (status = 409, description = "Name or token taken", body = ErrorBody),
    ))]
async fn create_device(
    State(state): State<AppState>,
    caller: Caller<CanOperate>,
    Json(body): Json<NewDevice>,
) -> ApiResult<(StatusCode, Json<CreatedDevice>)> {
    let tenant = caller.tenant();
    state
        .ota
        .store()
        .get_profile(tenant, body.profile_id.into())
        .await?;
    for g in &body.groups {
        state.ota.store().get_group(tenant, (*g).into()).await?;
    }
    let token = body.access_token.unwrap_or_else(random_token);
    let device = state.ota.new_device(
        tenant,
        &body.name,
        body.profile_id.into(),
        body.groups.into_iter().map(GroupId).collect(),
        &token,
    );
    (state
        .ota
        .create_devices(caller.actor(), std::slice::from_ref(&device)))
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedDevice {
            device: device.into(),
            access_token: token,
        }),
    ))
}

/// Every profile and group of the tenant by name.
async fn names(
    state: &AppState,
    tenant: TenantId,
) -> Result<(HashMap<String, Uuid>, HashMap<String, Uuid>), ApiError> {
    let store = state.ota.store();
    let mut profiles = HashMap::new();
    let mut page = PageRequest::first(MAX_PAGE_SIZE);
    loop {
        let got = store.list_profiles(tenant, page).await?;
        profiles.extend(got.items.into_iter().map(|p| (p.name, p.id.0)));
        match got.next {
            Some(n) => page = n,
            None => break,
        }
    }
    let mut groups = HashMap::new();
    let mut page = PageRequest::first(MAX_PAGE_SIZE);
    loop {
        let got = store.list_groups(tenant, page).await?;
        groups.extend(got.items.into_iter().map(|g| (g.name, g.id.0)));
        match got.next {
            Some(n) => page = n,
            None => break,
        }
    }
    Ok((profiles, groups))
}

pub(super) struct CsvContext {
    pub(super) tenant: TenantId,
    pub(super) profiles: HashMap<String, Uuid>,
    pub(super) groups: HashMap<String, Uuid>,
}

impl CsvContext {
    fn resolve(map: &HashMap<String, Uuid>, what: &str, value: &str) -> Result<Uuid, String> {
        if let Ok(id) = Uuid::parse_str(value) {
            if map.values().any(|v| *v == id) {
                return Ok(id);
            }
            return Err(format!("{what} {value} does not exist"));
        }
        map.get(value)
            .copied()
            .ok_or_else(|| format!("{what} {value:?} does not exist"))
    }
}

/// Reads the CSV into devices; every bad row is reported with its line number.
pub(super) fn parse_devices_csv(
    state: &AppState,
    ctx: &CsvContext,
    csv_bytes: &[u8],
) -> Result<Vec<Device>, ApiError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(csv_bytes);
    let header_error = |m: String| ApiError::bad_request("invalid_csv", m);
    let headers = reader
        .headers()
        .map_err(|e| header_error(format!("the CSV header cannot be read: {e}")))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(name_col), Some(profile_col)) = (column("name"), column("profile")) else {
        return Err(header_error(format!(
            "the header must name the columns `name` and `profile` (optional: `groups`, `access_token`); it is {:?}",
            headers.iter().collect::<Vec<_>>().join(",")
        )));
    };
    let (groups_col, token_col) = (column("groups"), column("access_token"));
    let mut errors = Vec::new();
    let mut devices = Vec::new();
    let mut names = HashSet::new();
    let mut tokens = HashSet::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(serde_json::json!({"line": line, "message": e.to_string()}));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let mut row_error =
            |m: String| errors.push(serde_json::json!({"line": line, "message": m}));
        let name = record.get(name_col).unwrap_or("");
        if name.is_empty() {
            row_error("the name is empty".into());
            continue;
        }
        if !names.insert(name.to_string()) {
            row_error(format!("device name {name:?} appears twice in the file"));
            continue;
        }
        let profile = match CsvContext::resolve(
            &ctx.profiles,
            "profile",
            record.get(profile_col).unwrap_or(""),
        ) {
            Ok(p) => p,
            Err(m) => {
                row_error(m);
                continue;
            }
        };
        let mut groups = BTreeSet::new();
        let mut bad_group = None;
        for g in groups_col
            .and_then(|c| record.get(c))
            .unwrap_or("")
            .split(';')
            .map(str::trim)
            .filter(|g| !g.is_empty())
        {
            match CsvContext::resolve(&ctx.groups, "group", g) {
                Ok(id) => {
                    groups.insert(GroupId(id));
                }
                Err(m) => bad_group = Some(m),
            }
        }
        if let Some(m) = bad_group {
            row_error(m);
            continue;
        }
        let token = match token_col
            .and_then(|c| record.get(c))
            .filter(|t| !t.is_empty())
        {
            Some(t) => t.to_string(),
            None => random_token(),
        };
        if !tokens.insert(token.clone()) {
            row_error("the access token appears twice in the file".into());
            continue;
        }
        devices.push(
            state
                .ota
                .new_device(ctx.tenant, name, ProfileId(profile), groups, &token),
        );
    }
    if !errors.is_empty() {
        let shown: Vec<String> = errors
            .iter()
            .take(5)
            .map(|e| {
                format!(
                    "line {}: {}",
                    e["line"],
                    e["message"].as_str().unwrap_or("")
                )
            })
            .collect();
        return Err(ApiError::bad_request(
            "invalid_csv",
            format!(
                "{} bad rows, nothing was created; fix them and upload again ({}{})",
                errors.len(),
                shown.join("; "),
                if errors.len() > 5 { "; ..." } else { "" }
            ),
        )
        .with_details(serde_json::json!({ "rows": errors })));
    }
    if devices.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_csv",
            "the file has a header but no rows",
        ));
    }
    Ok(devices)
}

/// Create devices from CSV, all or none. Header: `name,profile[,groups][,access_token]`;
/// `profile` and `groups` (separated by `;`) by id or name; a missing token is generated.
#[utoipa::path(post, path = "/devices/import", tag = "devices",
    request_body(content = String, content_type = "text/csv",
        description = "name,profile,groups,access_token"),
    responses(
        (status = 201, description = "Created", body = ImportedDevices),
        (status = 400, description = "Bad rows, listed with line numbers in `details.rows`", body = ErrorBody),
        (status = 409, description = "A name or token is taken", body = ErrorBody),
        (status = 413, description = "File too large", body = ErrorBody),
    ))]
async fn import_devices(
    State(state): State<AppState>,
    caller: Caller<CanOperate>,
    body: Body,
) -> ApiResult<(StatusCode, Json<ImportedDevices>)> {
    let csv_bytes = read_limited(body, state.options.max_csv_body).await?;
    let tenant = caller.tenant();
    let (profiles, groups) = names(&state, tenant).await?;
    let ctx = CsvContext {
        tenant,
        profiles,
        groups,
    };
    let devices = parse_devices_csv(&state, &ctx, &csv_bytes)?;
    (state.ota.create_devices(caller.actor(), &devices)).await?;
    Ok((
        StatusCode::CREATED,
        Json(ImportedDevices {
            created: devices.len(),
            devices: devices
                .into_iter()
                .map(|d| ImportedDevice {
                    name: d.name,
                    id: d.id.0,
                    access_token: d.access_token,
                })
                .collect(),
        }),
    ))
}

/// List devices, optionally of one profile or one group.
#[utoipa::path(get, path = "/devices", tag = "devices", params(DeviceFilter, PageParams),
    responses(
        (status = 200, description = "A page", body = PageOf<DeviceView>),
        (status = 400, description = "Bad filter, cursor or limit", body = ErrorBody),
    ))]
async fn list_devices(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Query(filter): Query<DeviceFilter>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<PageOf<DeviceView>>> {
    let selector = match (filter.profile, filter.group) {
        (None, None) => DeviceSelector::All,
        (Some(p), None) => DeviceSelector::Profile(p.into()),
        (None, Some(g)) => DeviceSelector::Group(g.into()),
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "filter by `profile` or by `group`, not both",
            ))
        }
    };
    let got = state
        .ota
        .store()
        .list_devices(caller.tenant(), selector, page.request()?)
        .await?;
    Ok(Json(PageOf::from_store(got, Into::into)))
}

/// One device.
#[utoipa::path(get, path = "/devices/{id}", tag = "devices",
    params(("id" = Uuid, Path, description = "Device id")),
    responses(
        (status = 200, description = "The device", body = DeviceView),
        (status = 404, description = "Unknown", body = ErrorBody),
    ))]
async fn get_device(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<DeviceView>> {
    Ok(Json(
        state.ota.device(caller.tenant(), id.into()).await?.into(),
    ))
}

/// Rename a device, change its profile and/or groups (its effective packages are then
/// re-evaluated).
#[utoipa::path(patch, path = "/devices/{id}", tag = "devices", request_body = DevicePatch,
    params(("id" = Uuid, Path, description = "Device id")),
    responses(
        (status = 200, description = "The device after the change", body = DeviceView),
        (status = 400, description = "Bad name", body = ErrorBody),
        (status = 404, description = "Unknown device, profile or group", body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody),
    ))]
async fn patch_device(
    State(state): State<AppState>,
    caller: Caller<CanOperate>,
    Path(id): Path<Uuid>,
    Json(body): Json<DevicePatch>,
) -> ApiResult<Json<DeviceView>> {
    let (tenant, actor) = (caller.tenant(), caller.actor());
    let mut device = state.ota.device(tenant, id.into()).await?;
    if let Some(name) = body.name.as_deref().filter(|n| *n != device.name) {
        device = state
            .ota
            .rename_device(actor, tenant, id.into(), name)
            .await?;
    }
    if let Some(p) = body.profile_id {
        device = (state
            .ota
            .set_device_profile(actor, tenant, id.into(), p.into()))
        .await?;
    }
    if let Some(groups) = body.groups {
        let groups = groups.into_iter().map(GroupId).collect();
        device = (state
            .ota
            .set_device_groups(actor, tenant, id.into(), groups))
        .await?;
    }
    Ok(Json(device.into()))
}

async fn change_membership(
    state: &AppState,
    tenant: TenantId,
    actor: &str,
    group: Uuid,
    device: Uuid,
    add: bool,
) -> ApiResult<DeviceView> {
    state.ota.store().get_group(tenant, group.into()).await?;
    let d = state.ota.device(tenant, device.into()).await?;
    let mut groups = d.groups.clone();
    let changed = if add {
        groups.insert(GroupId(group))
    } else {
        groups.remove(&GroupId(group))
    };
    if !changed {
        return Ok(d.into());
    }
    Ok((state
        .ota
        .set_device_groups(actor, tenant, device.into(), groups))
    .await?
    .into())
}

/// Add a device to a group.
#[utoipa::path(put, path = "/groups/{group_id}/devices/{device_id}", tag = "groups",
    params(("group_id" = Uuid, Path, description = "Group id"),
           ("device_id" = Uuid, Path, description = "Device id")),
    responses(
        (status = 200, description = "The device", body = DeviceView),
        (status = 404, description = "Unknown group or device", body = ErrorBody),
    ))]
async fn add_member(
    State(state): State<AppState>,
    caller: Caller<CanOperate>,
    Path((group, device)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<DeviceView>> {
    let d = change_membership(&state, caller.tenant(), caller.actor(), group, device, true).await?;
    Ok(Json(d))
}

/// Remove a device from a group.
#[utoipa::path(delete, path = "/groups/{group_id}/devices/{device_id}", tag = "groups",
    params(("group_id" = Uuid, Path, description = "Group id"),
           ("device_id" = Uuid, Path, description = "Device id")),
    responses(
        (status = 200, description = "The device", body = DeviceView),
        (status = 404, description = "Unknown group or device", body = ErrorBody),
    ))]
async fn remove_member(
    State(state): State<AppState>,
    caller: Caller<CanOperate>,
    Path((group, device)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<DeviceView>> {
    let d = change_membership(
        &state,
        caller.tenant(),
        caller.actor(),
        group,
        device,
        false,
    )
    .await?;
    Ok(Json(d))
}

/// The members of a group.
#[utoipa::path(get, path = "/groups/{group_id}/devices", tag = "groups",
    params(("group_id" = Uuid, Path, description = "Group id"), PageParams),
    responses(
        (status = 200, description = "A page", body = PageOf<DeviceView>),
        (status = 404, description = "Unknown group", body = ErrorBody),
    ))]
async fn group_members(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Path(group): Path<Uuid>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<PageOf<DeviceView>>> {
    let store = state.ota.store();
    store.get_group(caller.tenant(), group.into()).await?;
    let got = store
        .list_devices(
            caller.tenant(),
            DeviceSelector::Group(group.into()),
            page.request()?,
        )
        .await?;
    Ok(Json(PageOf::from_store(got, Into::into)))
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_device, list_devices))
        .routes(routes!(import_devices))
        .routes(routes!(get_device, patch_device))
        .routes(routes!(add_member, remove_member))
        .routes(routes!(group_members))
}
