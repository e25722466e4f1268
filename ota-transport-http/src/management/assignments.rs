//! Assignments at device, group and profile level (put, delete, list) and a device's
//! effective package with the reason (which level won, and what was considered).

use super::common::{parse_kind, parse_opt_kind};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{AppState, Caller, CanAssign, CanRead, Json, Path, Query};
use super::packages::PackageView;
use super::paging::{PageOf, PageParams};
use axum::extract::State;
use axum::http::StatusCode;
use ota_core::{Assignment, AssignmentLevel, AssignmentTarget, PackageKind, TenantId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// An assignment as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AssignmentView {
    /// Id.
    pub id: Uuid,
    /// `FIRMWARE` or `SOFTWARE`.
    pub kind: String,
    /// `DEVICE`, `GROUP` or `PROFILE`.
    pub level: String,
    /// The device, group or profile id.
    pub target_id: Uuid,
    /// The package assigned.
    pub package_id: Uuid,
    /// When.
    pub assigned_at: chrono::DateTime<chrono::Utc>,
    /// Who.
    pub assigned_by: String,
}

fn level_name(level: AssignmentLevel) -> &'static str {
    match level {
        AssignmentLevel::Device => "DEVICE",
        AssignmentLevel::Group => "GROUP",
        AssignmentLevel::Profile => "PROFILE",
    }
}

fn target_id(t: AssignmentTarget) -> Uuid {
    match t {
        AssignmentTarget::Device(d) => d.0,
        AssignmentTarget::Group(g) => g.0,
        AssignmentTarget::Profile(p) => p.0,
    }
}

impl From<Assignment> for AssignmentView {
    fn from(a: Assignment) -> Self {
        Self {
            id: a.id.0,
            kind: a.kind.to_string(),
            level: level_name(a.target.level()).to_string(),
            target_id: target_id(a.target),
            package_id: a.package_id.0,
            assigned_at: a.assigned_at,
            assigned_by: a.assigned_by,
        }
    }
}

/// The package to assign.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// The package; its kind must be the kind in the path.
    pub package_id: Uuid,
}

async fn check_target(state: &AppState, tenant: TenantId, t: AssignmentTarget) -> ApiResult<()> {
    let store = state.ota.store();
    match t {
        AssignmentTarget::Device(d) => store.get_device(tenant, d).await.map(drop)?,
        AssignmentTarget::Group(g) => store.get_group(tenant, g).await.map(drop)?,
        AssignmentTarget::Profile(p) => store.get_profile(tenant, p).await.map(drop)?,
    }
    Ok(())
}

async fn put(
    state: &AppState,
    tenant: TenantId,
    actor: &str,
    target: AssignmentTarget,
    kind: &str,
    body: AssignBody,
) -> ApiResult<Json<AssignmentView>> {
    let kind = parse_kind(kind)?;
    let package = state.ota.package(tenant, body.package_id.into()).await?;
    if package.kind != kind {
        return Err(ApiError::bad_request(
            "kind_mismatch",
            format!(
                "package {} is {}, but the path assigns {kind}; use the package's kind in the path",
                package.id, package.kind
            ),
        ));
    }
    let a = (state.ota.assign(actor, tenant, target, package.id)).await?;
    Ok(Json(a.into()))
}

async fn delete(
    state: &AppState,
    tenant: TenantId,
    actor: &str,
    target: AssignmentTarget,
    kind: &str,
) -> ApiResult<StatusCode> {
    let kind = parse_kind(kind)?;
    check_target(state, tenant, target).await?;
    match (state.ota.unassign(actor, tenant, kind, target)).await? {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::not_found(format!(
            "{target} has no {kind} assignment"
        ))),
    }
}

macro_rules! level_routes {
    ($put:ident, $delete:ident, $path:literal, $tag:literal, $variant:ident, $what:literal) => {
        #[doc = concat!("Assign a package to a ", $what, " (replacing its assignment of that kind).")]
        #[utoipa::path(put, path = $path, tag = $tag, request_body = AssignBody,
            params(("id" = Uuid, Path, description = concat!($what, " id")),
                   ("kind" = String, Path, description = "`FIRMWARE`/`fw` or `SOFTWARE`/`sw`")),
            responses(
                (status = 200, description = "The assignment", body = AssignmentView),
                (status = 400, description = "Bad kind, or the package is of the other kind", body = ErrorBody),
                (status = 404, description = "Unknown target or package", body = ErrorBody),
                (status = 422, description = "Package not compatible with the profile", body = ErrorBody),
            ))]
        async fn $put(
            State(state): State<AppState>,
            caller: Caller<CanAssign>,
            Path((id, kind)): Path<(Uuid, String)>,
            Json(body): Json<AssignBody>,
        ) -> ApiResult<Json<AssignmentView>> {
            put(
                &state,
                caller.tenant(),
                caller.actor(),
                AssignmentTarget::$variant(id.into()),
                &kind,
                body,
            )
            .await
        }

        #[doc = concat!("Remove a ", $what, "'s assignment of a kind.")]
        #[utoipa::path(delete, path = $path, tag = $tag,
            params(("id" = Uuid, Path, description = concat!($what, " id")),
                   ("kind" = String, Path, description = "`FIRMWARE`/`fw` or `SOFTWARE`/`sw`")),
            responses(
                (status = 204, description = "Removed"),
                (status = 400, description = "Bad kind", body = ErrorBody),
                (status = 404, description = "Unknown target, or nothing assigned", body = ErrorBody),
            ))]
        async fn $delete(
            State(state): State<AppState>,
            caller: Caller<CanAssign>,
            Path((id, kind)): Path<(Uuid, String)>,
        ) -> ApiResult<StatusCode> {
            delete(
                &state,
                caller.tenant(),
                caller.actor(),
                AssignmentTarget::$variant(id.into()),
                &kind,
            )
            .await
        }
    };
}

level_routes!(
    put_device,
    delete_device,
    "/devices/{id}/assignments/{kind}",
    "assignments",
    Device,
    "device"
);
level_routes!(
    put_group,
    delete_group,
    "/groups/{id}/assignments/{kind}",
    "assignments",
    Group,
    "group"
);
level_routes!(
    put_profile,
    delete_profile,
    "/profiles/{id}/assignments/{kind}",
    "assignments",
    Profile,
    "profile"
);

/// Filters of the assignment list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AssignmentFilter {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this level: `DEVICE`, `GROUP`, `PROFILE`.
    pub level: Option<String>,
    /// Only assignments of this package.
    pub package: Option<Uuid>,
}

/// List assignments.
#[utoipa::path(get, path = "/assignments", tag = "assignments",
    params(AssignmentFilter, PageParams),
    responses(
        (status = 200, description = "A page", body = PageOf<AssignmentView>),
        (status = 400, description = "Bad filter, cursor or limit", body = ErrorBody),
    ))]
async fn list_assignments(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Query(filter): Query<AssignmentFilter>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<PageOf<AssignmentView>>> {
    let kind = parse_opt_kind(filter.kind.as_deref())?;
    let level = match filter
        .level
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None => None,
        Some("DEVICE") => Some(AssignmentLevel::Device),
        Some("GROUP") => Some(AssignmentLevel::Group),
        Some("PROFILE") => Some(AssignmentLevel::Profile),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_level",
                format!("unknown level {other:?}; use DEVICE, GROUP or PROFILE"),
            ))
        }
    };
    let request = page.request()?;
    let mut all = state
        .ota
        .store()
        .list_assignments(caller.tenant(), kind)
        .await?;
    all.retain(|a| {
        level.is_none_or(|l| a.target.level() == l)
            && filter.package.is_none_or(|p| a.package_id.0 == p)
            && request.after.is_none_or(|after| a.id.0 > after)
    });
    all.sort_by_key(|a| a.id);
    all.truncate(request.limit as usize);
    let items: Vec<AssignmentView> = all.into_iter().map(Into::into).collect();
    Ok(Json(PageOf::from_items(items, request.limit, |a| a.id)))
}

/// A device's effective package of one kind and why.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EffectiveView {
    /// `FIRMWARE` or `SOFTWARE`.
    pub kind: String,
    /// The effective package; `null` when nothing applies.
    pub package: Option<PackageView>,
    /// The level that decided: `DEVICE`, `GROUP` or `PROFILE`.
    pub level: Option<String>,
    /// The deciding assignment.
    pub assignment_id: Option<Uuid>,
    /// Why, in words.
    pub reason: String,
    /// Every assignment that concerns the device for this kind.
    pub considered: Vec<AssignmentView>,
}

/// A device's effective packages (firmware and software) and which level decided each.
#[utoipa::path(get, path = "/devices/{id}/effective-packages", tag = "assignments",
    params(("id" = Uuid, Path, description = "Device id")),
    responses(
        (status = 200, description = "One entry per kind", body = Vec<EffectiveView>),
        (status = 404, description = "Unknown device", body = ErrorBody),
    ))]
async fn effective(
    State(state): State<AppState>,
    caller: Caller<CanRead>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<EffectiveView>>> {
    let device = state.ota.device(caller.tenant(), id.into()).await?;
    let mut out = Vec::new();
    for kind in PackageKind::ALL {
        let considered = state
            .ota
            .store()
            .assignments_for_device(&device, kind)
            .await?;
        let found = state.ota.effective_package(&device, kind).await?;
        let count = considered.len();
        let considered: Vec<AssignmentView> = considered.into_iter().map(Into::into).collect();
        out.push(match found {
            Some((package, e)) => EffectiveView {
                kind: kind.to_string(),
                reason: format!(
                    "the {} assignment decides: {}",
                    e.level,
                    match e.level {
                        AssignmentLevel::Device => "a device assignment always wins when compatible",
                        AssignmentLevel::Group => "no compatible device assignment; the most recent compatible assignment of one of its groups",
                        AssignmentLevel::Profile => "no compatible device or group assignment; its profile's",
                    }
                ),
                level: Some(level_name(e.level).to_string()),
                assignment_id: Some(e.assignment_id.0),
                package: Some(package.into()),
                considered,
            },
            None => EffectiveView {
                kind: kind.to_string(),
                package: None,
                level: None,
                assignment_id: None,
                reason: if count == 0 {
                    "nothing is assigned to the device, its groups or its profile".into()
                } else {
                    "no assignment concerning the device is compatible with its profile".into()
                },
                considered,
            },
        });
    }
    Ok(Json(out))
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_device, delete_device))
        .routes(routes!(put_group, delete_group))
        .routes(routes!(put_profile, delete_profile))
        .routes(routes!(list_assignments))
        .routes(routes!(effective))
}
