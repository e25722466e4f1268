//! The router and its OpenAPI 3.1 document, both built from the same annotated handlers, so
//! no route is served without being documented.

use super::error::{ApiError, ErrorBody};
use super::extract::AppState;
use axum::extract::{DefaultBodyLimit, Extension};
use axum::http::StatusCode;
use axum::Router;
use std::sync::Arc;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};
use utoipa_axum::{router::OpenApiRouter, routes};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description =
            Some("An API key (or the platform's token), scoped to one tenant, with a role".into());
        components.add_security_scheme("api_key", SecurityScheme::Http(scheme));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "OTA management API",
        description = "Packages, devices, assignments, updates, campaigns, scheduled events and the audit log of the OTA library. Every error answers `{\"code\",\"message\"}`; lists page by `limit` and `cursor`.",
    ),
    modifiers(&BearerAuth),
    security(("api_key" = [])),
    components(schemas(ErrorBody)),
)]
struct ApiDoc;

/// This document (no authentication needed).
#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
async fn openapi_json(
    Extension(doc): Extension<Arc<serde_json::Value>>,
) -> axum::Json<serde_json::Value> {
    axum::Json((*doc).clone())
}

fn api(prefix: &str) -> OpenApiRouter<AppState> {
    let inner = OpenApiRouter::new()
        .merge(super::packages::routes())
        .merge(super::fleet::routes())
        .merge(super::devices::routes())
        .merge(super::assignments::routes())
        .merge(super::updates::routes())
        .merge(super::campaigns::routes())
        .merge(super::schedules::routes())
        .merge(super::audit_log::routes())
        .routes(routes!(openapi_json));
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest(prefix, inner)
}

/// The document served under `prefix`.
pub(super) fn document(prefix: &str) -> Document {
    let mut doc = api(prefix).into_openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route {}; the OpenAPI document lists every route",
        uri.path()
    ))
}

async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}; the OpenAPI document lists the methods",
            uri.path()
        ),
    )
}

pub(super) fn router(state: AppState) -> Router {
    let prefix = normalized(&state.options.prefix);
    let (router, mut doc) = api(&prefix).split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let json = serde_json::to_value(&doc).expect("the OpenAPI document serializes");
    let limit = state.options.max_json_body;
    router
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(Extension(Arc::new(json)))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

fn normalized(prefix: &str) -> String {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}
