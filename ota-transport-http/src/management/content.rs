//! Downloading a package's stored content, whole or by a single `Range` (206/416), with an
//! `ETag` from its SHA-256 and `If-Range`.

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{AppState, Caller, CanRead, Path};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use ota_core::store::ByteRange;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// The one range of a `Range: bytes=...` header, against content of `size` bytes.
/// `Ok(None)`: serve the whole content (no header, or one this server does not narrow, such
/// as several ranges). `Err(())`: unsatisfiable.
pub(super) fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        let Ok(suffix) = last.parse::<u64>() else {
            return Ok(None);
        };
        if suffix == 0 || size == 0 {
            return Err(());
        }
        (size.saturating_sub(suffix), size)
    } else {
        let Ok(start) = first.parse::<u64>() else {
            return Ok(None);
        };
        let end = if last.is_empty() {
            size
        } else {
            match last.parse::<u64>() {
                Ok(l) if l >= start => (l + 1).min(size),
                _ => return Ok(None),
            }
        };
        if start >= size {
            return Err(());
        }
        (start, end)
    };
    Ok(Some(range))
}

/// Download a package's stored content (`Range` supported).
#[utoipa::path(get, path = "/packages/{id}/content", tag = "packages",
    params(
        ("id" = Uuid, Path, description = "Package id"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1023`"),
        ("If-Range" = Option<String>, Header, description = "The ETag the range applies to"),
    ),
    responses(
        (status = 200, description = "The whole content", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 206, description = "The range asked for", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 404, description = "Unknown package", body = ErrorBody),
        (status = 409, description = "Served from an external URL", body = ErrorBody),
        (status = 416, description = "Range outside the content", body = ErrorBody),
    ))]
async fn download(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller<CanRead>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let tenant = caller.tenant();
    let package = state.ota.package(tenant, id.into()).await?;
    if let Some(url) = package.url() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "external_content",
            format!("package {id} is served from its external URL {url}"),
        ));
    }
    let size = package.size.unwrap_or(0);
    let etag = package.sha256.as_ref().map(|s| format!("\"{s}\""));
    let if_range_ok = match headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(v) => etag.as_deref() == Some(v.trim()),
    };
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) if if_range_ok => parse_range(v, size).map_err(|()| {
            let mut e = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("range {v:?} is outside the content of {size} bytes"),
            );
            e.details = Some(serde_json::json!({ "size": size }));
            e
        })?,
        _ => None,
    };
    let (start, end) = range.unwrap_or((0, size));
    let stream = state
        .ota
        .store()
        .read_content(tenant, package.id, ByteRange::new(start, end))
        .await?;
    let body = Body::from_stream(stream.map_err(std::io::Error::other));
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    let content_type = package
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, content_type);
    if let Some(etag) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        h.insert(header::ETAG, etag);
    }
    let file_name = package
        .file_name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", package.title, package.version));
    let safe: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if range.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let v = format!("bytes {}-{}/{}", start, end.saturating_sub(1), size);
        if let Ok(v) = HeaderValue::from_str(&v) {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(download))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 10))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 100))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 100))));
        assert_eq!(parse_range("bytes=95-200", 100), Ok(Some((95, 100))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=5-1", 100), Ok(None));
    }
}
