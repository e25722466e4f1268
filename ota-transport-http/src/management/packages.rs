//! Packages: streaming upload (checksum verified while the bytes come in), external packages,
//! search, get, where used, delete. The content download is in [`super::content`].

use super::common::{parse_ids, parse_opt_kind};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{AppState, Caller, CanAdmin, CanRead, Json, Path, Query};
use super::paging::{filtered_page, PageOf, PageParams};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use futures_util::StreamExt;
use ota_core::checksum::{Checksum, ChecksumAlgorithm};
use ota_core::engine::{NewPackage, PackageUse};
use ota_core::store::{ByteStream, StoreError};
use ota_core::{Compatibility, Package, PackageKind, ProfileId};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// A package as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PackageView {
    /// Id.
    pub id: Uuid,
    /// `FIRMWARE` or `SOFTWARE`.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Version.
    pub version: String,
    /// The profiles it can be installed on; `null`: any profile.
    pub compatible_profiles: Option<Vec<Uuid>>,
    /// The external URL devices fetch it from; `null` when the library stores the content.
    pub url: Option<String>,
    /// Size in bytes.
    pub size: Option<u64>,
    /// Checksum algorithm devices verify (`SHA256`, `MD5`, `CRC32`, ...).
    pub checksum_algorithm: Option<String>,
    /// Checksum, lowercase hex.
    pub checksum: Option<String>,
    /// SHA-256 of stored content.
    pub sha256: Option<String>,
    /// MIME type.
    pub content_type: Option<String>,
    /// File name offered in downloads.
    pub file_name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Tag pushed to devices (`fw_tag`).
    pub tag: Option<String>,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Who created it.
    pub created_by: String,
}

impl From<Package> for PackageView {
    fn from(p: Package) -> Self {
        Self {
            id: p.id.0,
            kind: p.kind.to_string(),
            compatible_profiles: match &p.compatibility {
                Compatibility::AnyProfile => None,
                Compatibility::Profiles(list) => Some(list.iter().map(|p| p.0).collect()),
            },
            url: p.url().map(str::to_string),
            size: p.size,
            checksum_algorithm: p.checksum.as_ref().map(|c| c.algorithm.name().to_string()),
            checksum: p.checksum.as_ref().map(|c| c.value.clone()),
            sha256: p.sha256,
            content_type: p.content_type,
            file_name: p.file_name,
            description: p.description,
            tag: p.tag,
            created_at: p.created_at,
            created_by: p.created_by,
            title: p.title,
            version: p.version,
        }
    }
}

/// Metadata of an upload, as query parameters; the body is the raw content.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    /// `FIRMWARE`/`fw` or `SOFTWARE`/`sw`.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Version.
    pub version: String,
    /// Algorithm of `checksum` (`MD5`, `SHA256`, `SHA384`, `SHA512`, `CRC32`, `MURMUR3_32`,
    /// `MURMUR3_128`); with no checksum, SHA256 is computed.
    pub checksum_algorithm: Option<String>,
    /// The checksum the content must have (lowercase hex); verified while it streams in.
    pub checksum: Option<String>,
    /// Comma-separated profile ids it is compatible with (absent: any profile).
    pub compatible_profiles: Option<String>,
    /// MIME type of the content.
    pub content_type: Option<String>,
    /// File name offered in downloads.
    pub file_name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Tag pushed to devices.
    pub tag: Option<String>,
}

/// A package whose bytes live at an external URL.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewExternalPackage {
    /// `FIRMWARE`/`fw` or `SOFTWARE`/`sw`.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Version.
    pub version: String,
    /// Where devices download it.
    pub url: String,
    /// Size in bytes, passed to devices.
    pub size: Option<u64>,
    /// Checksum algorithm, passed to devices.
    pub checksum_algorithm: Option<String>,
    /// Checksum, passed to devices.
    pub checksum: Option<String>,
    /// Profiles it is compatible with (absent: any profile).
    pub compatible_profiles: Option<Vec<Uuid>>,
    /// MIME type.
    pub content_type: Option<String>,
    /// File name.
    pub file_name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Tag pushed to devices.
    pub tag: Option<String>,
}

/// Filters of the package list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PackageFilter {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only titles containing this text (case-insensitive).
    pub title: Option<String>,
    /// Only packages installable on this profile.
    pub profile: Option<Uuid>,
}

pub(super) fn checksum_from(
    algorithm: Option<&str>,
    value: Option<&str>,
) -> Result<Option<Checksum>, ApiError> {
    let bad = |m: String| ApiError::bad_request("invalid_checksum", m);
    match (algorithm, value) {
        (None, None) => Ok(None),
        (alg, Some(v)) => {
            let alg = match alg {
                Some(a) => ChecksumAlgorithm::from_str(a).map_err(|e| bad(e.to_string()))?,
                None => ChecksumAlgorithm::Sha256,
            };
            Checksum::new(alg, v)
                .map(Some)
                .map_err(|e| bad(e.to_string()))
        }
        (Some(_), None) => Err(bad(
            "checksum_algorithm is given without checksum; give both or neither".into(),
        )),
    }
}

fn compatibility(profiles: Vec<Uuid>) -> Compatibility {
    if profiles.is_empty() {
        Compatibility::AnyProfile
    } else {
        Compatibility::Profiles(profiles.into_iter().map(ProfileId).collect())
    }
}

fn required_kind(value: &str) -> Result<PackageKind, ApiError> {
    super::common::parse_kind(value)
}

/// Counts the bytes of an upload and fails the stream once they pass `limit`.
fn limited(body: Body, limit: Option<u64>) -> ByteStream {
    let mut seen = 0u64;
    Box::pin(body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(|e| StoreError::SourceFailed {
            message: e.to_string(),
        })?;
        seen += chunk.len() as u64;
        match limit {
            Some(limit) if seen > limit => Err(StoreError::TooLarge { limit }),
            _ => Ok(chunk),
        }
    }))
}

/// Upload a package: metadata in the query, raw content as the body.
#[utoipa::path(post, path = "/packages", tag = "packages",
    params(UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The package content, streamed"),
    responses(
        (status = 201, description = "Stored", body = PackageView),
        (status = 400, description = "Bad metadata", body = ErrorBody),
        (status = 409, description = "Title and version exist", body = ErrorBody),
        (status = 413, description = "Over the size limit", body = ErrorBody),
        (status = 422, description = "Checksum mismatch", body = ErrorBody),
    ))]
async fn upload_package(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller<CanAdmin>,
    Query(params): Query<UploadParams>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<PackageView>)> {
    let kind = required_kind(&params.kind)?;
    let mut new = NewPackage::new(caller.tenant(), kind, params.title, params.version);
    new.checksum = checksum_from(
        params.checksum_algorithm.as_deref(),
        params.checksum.as_deref(),
    )?;
    new.compatibility = compatibility(parse_ids("profile", params.compatible_profiles.as_deref())?);
    new.content_type = params.content_type.or_else(|| {
        headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    new.file_name = params.file_name;
    new.description = params.description;
    new.tag = params.tag;
    let limit = state.options.max_upload_size;
    if let (Some(limit), Some(length)) = (
        limit,
        headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok()),
    ) {
        if length > limit {
            return Err(StoreError::TooLarge { limit }.into());
        }
    }
    let package = state
        .ota
        .upload_package(caller.actor(), new, limited(body, limit))
        .await?;
    Ok((StatusCode::CREATED, Json(package.into())))
}

/// Register a package whose bytes live at an external URL.
#[utoipa::path(post, path = "/packages/external", tag = "packages",
    request_body = NewExternalPackage,
    responses(
        (status = 201, description = "Created", body = PackageView),
        (status = 400, description = "Bad field", body = ErrorBody),
        (status = 409, description = "Title and version exist", body = ErrorBody),
    ))]
async fn create_external(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller<CanAdmin>,
    Json(body): Json<NewExternalPackage>,
) -> ApiResult<(StatusCode, Json<PackageView>)> {
    let kind = required_kind(&body.kind)?;
    let mut new = NewPackage::new(caller.tenant(), kind, body.title, body.version);
    new.checksum = checksum_from(body.checksum_algorithm.as_deref(), body.checksum.as_deref())?;
    new.size = body.size;
    new.compatibility = compatibility(body.compatible_profiles.unwrap_or_default());
    new.content_type = body.content_type;
    new.file_name = body.file_name;
    new.description = body.description;
    new.tag = body.tag;
    let package = state
        .ota
        .create_external_package(caller.actor(), new, &body.url)
        .await?;
    Ok((StatusCode::CREATED, Json(package.into())))
}

/// List packages, optionally by kind, title text and compatible profile.
#[utoipa::path(get, path = "/packages", tag = "packages",
    params(PackageFilter, PageParams),
    responses(
        (status = 200, description = "A page", body = PageOf<PackageView>),
        (status = 400, description = "Bad filter or cursor", body = ErrorBody),
    ))]
async fn list_packages(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller<CanRead>,
    Query(filter): Query<PackageFilter>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<PageOf<PackageView>>> {
    let kind = parse_opt_kind(filter.kind.as_deref())?;
    let request = page.request()?;
    let store = state.ota.store().clone();
    let tenant = caller.tenant();
    let title = filter.title.map(|t| t.to_lowercase());
    let profile = filter.profile.map(ProfileId);
    let (items, next_cursor) = filtered_page(
        request,
        state.options.max_scan,
        |p| {
            let store = store.clone();
            async move { Ok(store.list_packages(tenant, kind, p).await?) }
        },
        |p: &Package| {
            title
                .as_ref()
                .is_none_or(|t| p.title.to_lowercase().contains(t))
                && profile.is_none_or(|pr| p.compatibility.allows(pr))
        },
        |p| p.id.0,
    )
    .await?;
    Ok(Json(PageOf {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One package.
#[utoipa::path(get, path = "/packages/{id}", tag = "packages",
    params(("id" = Uuid, Path, description = "Package id")),
    responses(
        (status = 200, description = "The package", body = PackageView),
        (status = 404, description = "Unknown", body = ErrorBody),
    ))]
async fn get_package(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller<CanRead>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<PackageView>> {
    let p = state.ota.package(caller.tenant(), id.into()).await?;
    Ok(Json(p.into()))
}

/// Where a package is used (what keeps it from being deleted).
#[utoipa::path(get, path = "/packages/{id}/uses", tag = "packages",
    params(("id" = Uuid, Path, description = "Package id")),
    responses(
        (status = 200, description = "Its uses", body = Vec<PackageUseView>),
        (status = 404, description = "Unknown", body = ErrorBody),
    ))]
async fn package_uses(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller<CanRead>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<PackageUseView>>> {
    state.ota.package(caller.tenant(), id.into()).await?;
    let uses = state.ota.package_uses(caller.tenant(), id.into()).await?;
    Ok(Json(uses.into_iter().map(Into::into).collect()))
}

/// One use of a package.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PackageUseView {
    /// What uses it: `device`, `group`, `profile`, `update of device`, `... campaign`,
    /// `scheduled event`.
    pub by: String,
    /// The user's id.
    pub id: String,
}

impl From<PackageUse> for PackageUseView {
    fn from(u: PackageUse) -> Self {
        Self { by: u.by, id: u.id }
    }
}

/// Delete a package; refused (409 `package_in_use`, with the uses) while it is used.
#[utoipa::path(delete, path = "/packages/{id}", tag = "packages",
    params(("id" = Uuid, Path, description = "Package id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "Unknown", body = ErrorBody),
        (status = 409, description = "In use; `details.uses` says where", body = ErrorBody),
    ))]
async fn delete_package(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller<CanAdmin>,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state
        .ota
        .delete_package(caller.actor(), caller.tenant(), id.into())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_package, list_packages))
        .routes(routes!(create_external))
        .routes(routes!(get_package, delete_package))
        .routes(routes!(package_uses))
        .merge(super::content::routes())
}
