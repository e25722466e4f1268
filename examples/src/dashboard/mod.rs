//! The monitoring dashboard: a single-page web app (plain HTML, CSS and JavaScript modules, no
//! front-end build) that an operator opens at `/` of the example server. It talks only to the
//! public management API (under `/api/ota/v1` by default) with the API key the operator logs in
//! with, kept in the browser's `sessionStorage` for the tab's session.
//!
//! Every asset is compiled into the binary ([`include_str!`]), so the server needs no files at
//! run time. [`dashboard_router`] serves them:
//!
//! - `GET /`: the page (`examples/dashboard/index.html`, with the API prefix filled in);
//! - `GET /assets/...`: the stylesheet and the JavaScript modules.
//!
//! Mount it beside the management API (which it calls from the same origin):
//!
//! ```no_run
//! # async fn run(management: axum::Router) -> std::io::Result<()> {
//! let app = management.merge(ota_examples::dashboard::dashboard_router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

mod assets;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

pub use assets::{asset, Asset, ASSETS};

/// Where the dashboard finds the management API.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DashboardOptions {
    /// The management API's prefix on the same origin (`ManagementOptions::prefix` of
    /// `ota-transport-http`). Default: `/api/ota/v1`.
    pub api_prefix: String,
    /// How often the open view polls the API for changes, in milliseconds. Default: 3000.
    pub poll_ms: u32,
}

impl Default for DashboardOptions {
    fn default() -> Self {
        Self {
            api_prefix: "/api/ota/v1".to_string(),
            poll_ms: 3000,
        }
    }
}

/// The content security policy of the page: everything from this origin only, nothing
/// inline, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The dashboard with its default options, to mount at `/`.
pub fn dashboard_router() -> Router {
    dashboard_router_with(&DashboardOptions::default())
}

/// The dashboard calling the management API at `options.api_prefix`.
pub fn dashboard_router_with(options: &DashboardOptions) -> Router {
    let page: Arc<str> = index_html(options).into();
    Router::new()
        .route(
            "/",
            get(move || {
                let page = page.clone();
                async move { page_response(&page) }
            }),
        )
        .route("/assets/{*path}", get(serve_asset))
}

/// The page with the options filled in (HTML-escaped).
pub fn index_html(options: &DashboardOptions) -> String {
    assets::INDEX_HTML
        .replace("{{API_PREFIX}}", &escape_attribute(&options.api_prefix))
        .replace("{{POLL_MS}}", &options.poll_ms.to_string())
}

fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn common_headers(response: &mut Response, content_type: &'static str) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

fn page_response(page: &str) -> Response {
    let mut response = page.to_string().into_response();
    common_headers(&mut response, "text/html; charset=utf-8");
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
        .headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn serve_asset(Path(path): Path<String>) -> Response {
    match asset(&path) {
        Some(a) => {
            let mut response = a.body.into_response();
            common_headers(&mut response, a.content_type);
            response
        }
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no dashboard asset {path:?}"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests;
