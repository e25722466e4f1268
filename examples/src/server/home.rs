//! `/`: the dashboard's place. Until the dashboard is mounted here (its module gives an
//! `axum::Router` for `/`), a small page that says what the server serves.

use axum::response::Html;
use axum::routing::get;
use axum::Router;

/// The router of `/`: replace it with the dashboard's router.
pub fn router(management_prefix: &str) -> Router {
    let page = placeholder_page(management_prefix);
    Router::new().route("/", get(move || async move { Html(page) }))
}

fn placeholder_page(prefix: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>OTA server</title></head>
<body>
<h1>OTA server</h1>
<p>The dashboard will be served here. Until then:</p>
<ul>
<li>Management API: <code>{prefix}</code> (OpenAPI document: <a href="{prefix}/openapi.json">{prefix}/openapi.json</a>; send <code>Authorization: Bearer &lt;API key&gt;</code>)</li>
<li>Device HTTP API: <code>/api/v1/&lt;access token&gt;/attributes</code>, <code>/telemetry</code>, <code>/firmware</code>, <code>/software</code></li>
<li><a href="/metrics">/metrics</a> (Prometheus), <a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a></li>
</ul>
</body></html>
"#
    )
}
