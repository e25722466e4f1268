//! Package downloads: ThingsBoard's `GET /api/v1/{token}/firmware?title=&version=&size=&chunk=`
//! (and `/software`), and the standard resumable download of the same package on the same
//! routes and on `/firmware/content` and `/software/content` (Range, If-Range, ETag,
//! If-None-Match, HEAD).

use super::content::BodyStream;
use super::query::Query;
use super::{DeviceApi, Token};
use crate::error::ApiError;
use crate::range::{self, RangePlan, Validators};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use ota_core::{Package, PackageKind};
use std::sync::Arc;

/// `GET|HEAD /api/v1/{token}/firmware`.
pub(crate) async fn firmware(
    State(api): State<Arc<DeviceApi>>,
    token: Token,
    RawQuery(raw): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    download(api, token, raw, method, headers, PackageKind::Firmware).await
}

/// `GET|HEAD /api/v1/{token}/software`.
pub(crate) async fn software(
    State(api): State<Arc<DeviceApi>>,
    token: Token,
    RawQuery(raw): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    download(api, token, raw, method, headers, PackageKind::Software).await
}

/// What is sent about the package in every download answer.
struct Representation {
    size: u64,
    etag: Option<String>,
    last_modified: String,
    content_type: HeaderValue,
    disposition: Option<HeaderValue>,
    file_name: Option<HeaderValue>,
}

impl Representation {
    fn of(package: &Package) -> Result<Self, ApiError> {
        let size = package.size.ok_or_else(|| {
            ApiError::not_found(format!("package {} has no stored content", package.id))
        })?;
        let content_type = package
            .content_type
            .as_deref()
            .and_then(|t| HeaderValue::from_str(t).ok())
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        let name = package
            .file_name
            .clone()
            .unwrap_or_else(|| format!("{}-{}.bin", package.title, package.version));
        Ok(Self {
            size,
            etag: package.sha256.as_ref().map(|s| format!("\"{s}\"")),
            last_modified: package
                .created_at
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string(),
            content_type,
            disposition: HeaderValue::from_str(&range::content_disposition(&name)).ok(),
            file_name: HeaderValue::from_str(&name).ok(),
        })
    }

    fn validators(&self) -> Validators<'_> {
        Validators {
            etag: self.etag.as_deref(),
            last_modified: Some(&self.last_modified),
        }
    }

    /// The headers every answer carries (validators, caching, file name).
    fn common(&self, headers: &mut HeaderMap) {
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if let Some(etag) = self
            .etag
            .as_deref()
            .and_then(|e| HeaderValue::from_str(e).ok())
        {
            headers.insert(header::ETAG, etag);
        }
        if let Ok(v) = HeaderValue::from_str(&self.last_modified) {
            headers.insert(header::LAST_MODIFIED, v);
        }
        if let Some(d) = &self.disposition {
            headers.insert(header::CONTENT_DISPOSITION, d.clone());
        }
        if let Some(name) = &self.file_name {
            headers.insert(HeaderName::from_static("x-filename"), name.clone());
        }
    }
}

fn respond(
    status: StatusCode,
    rep: &Representation,
    content_type: HeaderValue,
    length: u64,
    body: Body,
) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    rep.common(headers);
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

async fn download(
    api: Arc<DeviceApi>,
    token: Token,
    raw: Option<String>,
    method: Method,
    headers: HeaderMap,
    kind: PackageKind,
) -> Result<Response, ApiError> {
    let device = api.device(&token.0).await?;
    let query = Query::parse(raw.as_deref());
    let chunk_size = query.u64("size")?.unwrap_or(0);
    let chunk = query.u64("chunk")?.unwrap_or(0);
    let title = query.first("title");
    let version = query.first("version");
    let package = api
        .ota
        .authorize_download(&device, kind, title, version)
        .await
        .map_err(|e| match e {
            // Whatever else exists is not this device's business: the answer is the same.
            ota_core::engine::OtaError::NotAssignedPackage { .. } => {
                ApiError::bad_request(format!(
                    "{} {} is not the {kind} package this device may download now; read the \
                 shared attributes again",
                    title.unwrap_or(""),
                    version.unwrap_or("")
                ))
            }
            other => other.into(),
        })?;
    let rep = Representation::of(&package)?;
    let head = method == Method::HEAD;

    if chunk_size > 0 {
        // ThingsBoard's chunks: bytes [chunk*size, (chunk+1)*size); past the end, empty.
        let start = chunk.checked_mul(chunk_size).ok_or_else(|| {
            ApiError::bad_request(format!(
                "chunk={chunk} of size={chunk_size} is beyond any content"
            ))
        })?;
        let start = start.min(rep.size);
        let end = start.saturating_add(chunk_size).min(rep.size);
        let body = api.body(&package, start, end, head).await?;
        return Ok(respond(
            StatusCode::OK,
            &rep,
            rep.content_type.clone(),
            end - start,
            body,
        ));
    }

    match range::plan(&headers, rep.size, rep.validators(), api.options.max_ranges)? {
        RangePlan::NotModified => {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            rep.common(response.headers_mut());
            Ok(response)
        }
        RangePlan::Full => {
            let body = api.body(&package, 0, rep.size, head).await?;
            Ok(respond(
                StatusCode::OK,
                &rep,
                rep.content_type.clone(),
                rep.size,
                body,
            ))
        }
        RangePlan::Partial(ranges) if ranges.len() == 1 => {
            let (start, end) = ranges[0];
            let body = api.body(&package, start, end, head).await?;
            let mut response = respond(
                StatusCode::PARTIAL_CONTENT,
                &rep,
                rep.content_type.clone(),
                end - start,
                body,
            );
            let content_range = format!("bytes {start}-{}/{}", end - 1, rep.size);
            if let Ok(v) = HeaderValue::from_str(&content_range) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            Ok(response)
        }
        RangePlan::Partial(ranges) => multipart(api, package, rep, ranges, head).await,
    }
}

/// A `multipart/byteranges` answer; the parts stream one after the other.
async fn multipart(
    api: Arc<DeviceApi>,
    package: Package,
    rep: Representation,
    ranges: Vec<(u64, u64)>,
    head: bool,
) -> Result<Response, ApiError> {
    let boundary = format!("ota-byteranges-{}", uuid_fragment());
    let part_type = rep
        .content_type
        .to_str()
        .unwrap_or("application/octet-stream")
        .to_string();
    let heads: Vec<Bytes> = ranges
        .iter()
        .map(|(start, end)| {
            Bytes::from(format!(
                "\r\n--{boundary}\r\nContent-Type: {part_type}\r\nContent-Range: bytes {start}-{}/{}\r\n\r\n",
                end - 1,
                rep.size
            ))
        })
        .collect();
    let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
    let length = heads.iter().map(|h| h.len() as u64).sum::<u64>()
        + ranges.iter().map(|(s, e)| e - s).sum::<u64>()
        + tail.len() as u64;
    let content_type = HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}"))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let body = if head {
        Body::empty()
    } else {
        let package = Arc::new(package);
        let parts = stream::iter(heads.into_iter().zip(ranges)).then(move |(h, (start, end))| {
            let api = api.clone();
            let package = package.clone();
            async move {
                let content: BodyStream = match api
                    .content
                    .stream(api.ota.store(), &package, start, end)
                    .await
                {
                    Ok(s) => s,
                    Err(e) => {
                        stream::once(async move { Err(std::io::Error::other(e.message)) }).boxed()
                    }
                };
                stream::once(async move { Ok(h) }).chain(content)
            }
        });
        let all = parts.flatten().chain(stream::once(async move { Ok(tail) }));
        Body::from_stream(all)
    };
    Ok(respond(
        StatusCode::PARTIAL_CONTENT,
        &rep,
        content_type,
        length,
        body,
    ))
}

/// A random boundary fragment (the content cannot guess it).
fn uuid_fragment() -> String {
    ota_core::DeviceId::new().as_uuid().simple().to_string()
}

impl DeviceApi {
    /// The body with bytes `start..end` of the package (empty for HEAD).
    async fn body(
        &self,
        package: &Package,
        start: u64,
        end: u64,
        head: bool,
    ) -> Result<Body, ApiError> {
        if head || start == end {
            return Ok(Body::empty());
        }
        let content = self
            .content
            .stream(self.ota.store(), package, start, end)
            .await?;
        Ok(Body::from_stream(content))
    }
}
