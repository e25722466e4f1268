//! The router and its OpenAPI 3.1 document, both built from the same annotated handlers, so
//! no route is served without being documented.

use super::error::{ApiError, ErrorBody};
use super::extract::AppState;
use axum::extract::{DefaultBodyLimit, Extension};
use axum::http::StatusCode;
use axum::Router;
use std::sync::Arc;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, Header, OpenApi as Document, Ref, RefOr, Response, ResponseBuilder,
};
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
        .merge(super::api_keys::routes())
        .routes(routes!(openapi_json));
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest(prefix, inner)
}

/// The document served under `prefix`.
pub(super) fn document(prefix: &str) -> Document {
    finish(api(&normalized(prefix)).into_openapi())
}

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// Adds what every operation may answer (the answers of the extractors, the authenticator and
/// a store that is down) where a handler did not document it itself, and the version.
fn finish(mut doc: Document) -> Document {
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let unavailable = {
        let mut r = error_response("The store (or the identity provider) is unavailable; retry after `Retry-After` seconds");
        r.headers.insert(
            "Retry-After".to_string(),
            Header::new(ObjectBuilder::new().schema_type(Type::Integer).build()),
        );
        r
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        if path.ends_with("/openapi.json") {
            continue;
        }
        let with_body = |op: &Option<utoipa::openapi::path::Operation>| {
            op.as_ref().is_some_and(|o| o.request_body.is_some())
        };
        let has_body = [&item.post, &item.put, &item.patch].map(with_body);
        let ops = [
            (&mut item.get, false),
            (&mut item.delete, false),
            (&mut item.post, has_body[0]),
            (&mut item.put, has_body[1]),
            (&mut item.patch, has_body[2]),
        ];
        for (op, body) in ops {
            let Some(op) = op else { continue };
            let responses = &mut op.responses.responses;
            let mut add = |code: &str, r: Response| {
                responses.entry(code.to_string()).or_insert(RefOr::T(r));
            };
            add(
                "400",
                error_response("A path parameter or the query string is malformed"),
            );
            add(
                "401",
                error_response("No credential, or one that is not valid"),
            );
            add(
                "403",
                error_response("The caller's role does not allow this"),
            );
            add("503", unavailable.clone());
            if body {
                add("413", error_response("The body is larger than the limit"));
                add(
                    "415",
                    error_response("The body is not of the content type documented"),
                );
                add(
                    "422",
                    error_response("The body does not fit the documented schema"),
                );
            }
        }
    }
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
    let (router, doc) = api(&prefix).split_for_parts();
    let doc = finish(doc);
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
