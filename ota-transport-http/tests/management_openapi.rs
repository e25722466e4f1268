//! The OpenAPI document: served without authentication, OpenAPI 3.1, and exactly the routes
//! the router serves (every documented operation reaches a handler; every undocumented
//! method on a documented path is refused by the router).

mod management_support;

use management_support::Server;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every operation the API serves, as (method, path). Adding a route means adding it here.
const OPERATIONS: &[(&str, &str)] = &[
    ("get", "/api/ota/v1/openapi.json"),
    ("get", "/api/ota/v1/packages"),
    ("post", "/api/ota/v1/packages"),
    ("post", "/api/ota/v1/packages/external"),
    ("get", "/api/ota/v1/packages/{id}"),
    ("delete", "/api/ota/v1/packages/{id}"),
    ("get", "/api/ota/v1/packages/{id}/uses"),
    ("get", "/api/ota/v1/packages/{id}/content"),
    ("get", "/api/ota/v1/profiles"),
    ("post", "/api/ota/v1/profiles"),
    ("get", "/api/ota/v1/profiles/{id}"),
    ("get", "/api/ota/v1/groups"),
    ("post", "/api/ota/v1/groups"),
    ("get", "/api/ota/v1/groups/{id}"),
    ("get", "/api/ota/v1/groups/{group_id}/devices"),
    ("put", "/api/ota/v1/groups/{group_id}/devices/{device_id}"),
    (
        "delete",
        "/api/ota/v1/groups/{group_id}/devices/{device_id}",
    ),
    ("get", "/api/ota/v1/devices"),
    ("post", "/api/ota/v1/devices"),
    ("post", "/api/ota/v1/devices/import"),
    ("get", "/api/ota/v1/devices/{id}"),
    ("patch", "/api/ota/v1/devices/{id}"),
    ("get", "/api/ota/v1/devices/{id}/effective-packages"),
    ("put", "/api/ota/v1/devices/{id}/assignments/{kind}"),
    ("delete", "/api/ota/v1/devices/{id}/assignments/{kind}"),
    ("put", "/api/ota/v1/groups/{id}/assignments/{kind}"),
    ("delete", "/api/ota/v1/groups/{id}/assignments/{kind}"),
    ("put", "/api/ota/v1/profiles/{id}/assignments/{kind}"),
    ("delete", "/api/ota/v1/profiles/{id}/assignments/{kind}"),
    ("get", "/api/ota/v1/assignments"),
    ("get", "/api/ota/v1/devices/{id}/updates"),
    ("get", "/api/ota/v1/devices/{id}/updates/{kind}"),
    ("post", "/api/ota/v1/devices/{id}/updates/{kind}/cancel"),
    ("post", "/api/ota/v1/devices/{id}/updates/{kind}/retry"),
    ("get", "/api/ota/v1/updates/{id}"),
    ("get", "/api/ota/v1/updates/{id}/history"),
    ("get", "/api/ota/v1/campaigns"),
    ("post", "/api/ota/v1/campaigns"),
    ("get", "/api/ota/v1/campaigns/{id}"),
    ("put", "/api/ota/v1/campaigns/{id}"),
    ("post", "/api/ota/v1/campaigns/{id}/copy"),
    ("put", "/api/ota/v1/campaigns/{id}/devices"),
    ("get", "/api/ota/v1/campaigns/{id}/devices"),
    ("post", "/api/ota/v1/campaigns/{id}/start"),
    ("post", "/api/ota/v1/campaigns/{id}/schedule"),
    ("post", "/api/ota/v1/campaigns/{id}/pause"),
    ("post", "/api/ota/v1/campaigns/{id}/resume"),
    ("post", "/api/ota/v1/campaigns/{id}/stop"),
    ("post", "/api/ota/v1/campaigns/{id}/archive"),
    ("post", "/api/ota/v1/campaigns/{id}/advance-wave"),
    ("post", "/api/ota/v1/campaigns/{id}/retry-failed"),
    ("get", "/api/ota/v1/campaigns/{id}/stats"),
    ("get", "/api/ota/v1/schedules"),
    ("post", "/api/ota/v1/schedules"),
    ("get", "/api/ota/v1/schedules/{id}"),
    ("put", "/api/ota/v1/schedules/{id}"),
    ("delete", "/api/ota/v1/schedules/{id}"),
    ("get", "/api/ota/v1/audit"),
    ("post", "/api/ota/v1/api-keys"),
    ("get", "/api/ota/v1/api-keys"),
    ("get", "/api/ota/v1/api-keys/{id}"),
    ("delete", "/api/ota/v1/api-keys/{id}"),
];

fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').unwrap() + open;
        let name = &rest[open + 1..close];
        if name == "kind" {
            out.push_str("fw");
        } else {
            out.push_str(&uuid::Uuid::now_v7().to_string());
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn the_served_document_matches_the_router() {
    let s = Server::memory().await;
    let served = s.send(s.client.get(s.url("/openapi.json"))).await;
    let doc = served.expect(200).clone();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"],
        json!({"type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["api_key"]["description"]})
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    // The library's function gives the same document as the route.
    let generated = ota_transport_http::management::openapi_document(&Default::default());
    assert_eq!(serde_json::to_value(generated).unwrap(), doc);

    let paths = doc["paths"].as_object().unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                documented.insert((method.to_string(), path.clone()));
                if path.ends_with("/openapi.json") {
                    continue;
                }
                // Every error answer of every operation is documented as an ErrorBody.
                let responses = op["responses"].as_object().unwrap();
                let errors: Vec<&Value> = responses
                    .iter()
                    .filter(|(code, _)| code.starts_with('4'))
                    .map(|(_, r)| r)
                    .collect();
                assert!(!errors.is_empty(), "{method} {path} documents no error");
                for e in errors {
                    assert_eq!(
                        e["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path}"
                    );
                }
            }
        }
    }
    let expected: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected);

    let origin = s
        .base
        .trim_end_matches(management_support::PREFIX)
        .to_string();
    for (path, item) in paths {
        for method in METHODS {
            let url = format!("{origin}{}", concrete(path));
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let mut req = s.client.request(m, &url).bearer_auth(&s.a.admin);
            if method != "get" && method != "delete" {
                req = req.json(&json!({}));
            }
            let answer = s.send(req).await;
            assert!(
                answer.status.as_u16() < 500,
                "{method} {path}: {:?}",
                answer.body
            );
            if item.get(method).is_some() {
                // Reaches a handler: never the router's own refusals.
                assert_ne!(answer.code(), "method_not_allowed", "{method} {path}");
                assert!(!answer.message().starts_with("no route"), "{method} {path}");
            } else {
                answer.expect_error(405, "method_not_allowed");
            }
        }
    }
    s.stop().await;
}
