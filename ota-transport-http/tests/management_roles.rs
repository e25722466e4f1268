//! Every route of the management API (as its OpenAPI document lists them) × every role: a
//! role without the route's access is refused with 403 before anything else happens; a role
//! with it is never refused for its role. The access each route needs is written here, from
//! the roles' definitions, independently of the handlers.

mod management_support;

use management_support::Server;
use ota_transport_http::management::{openapi_document, Access, Role};
use ota_transport_http::ManagementOptions;
use reqwest::Method;

/// The access a route needs, by the rules of the roles: reading needs `Read`; packages,
/// profiles, groups, access tokens and API keys need `Admin`; assignments need `Assign`;
/// every other change (devices, memberships, campaigns, updates, schedules) needs `Operate`.
fn needed(method: &Method, path: &str) -> Access {
    let admin_resource = path.starts_with("/api-keys")
        || path.starts_with("/packages")
        || path.ends_with("/access-token")
        || ((path.starts_with("/profiles") || path.starts_with("/groups"))
            && !path.contains("/devices")
            && !path.contains("/assignments"));
    if path.starts_with("/api-keys") {
        return Access::Admin;
    }
    if *method == Method::GET {
        return Access::Read;
    }
    if path.contains("/assignments/") {
        return Access::Assign;
    }
    if admin_resource {
        return Access::Admin;
    }
    Access::Operate
}

/// `template` with its parameters filled: ids by a fresh UUID, kinds by `fw`.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|part| match part {
            "{kind}" => "fw".to_string(),
            p if p.starts_with('{') => uuid::Uuid::new_v4().to_string(),
            p => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_checks_every_role() {
    let s = Server::memory().await;
    let doc = serde_json::to_value(openapi_document(&ManagementOptions::default())).unwrap();
    let prefix = "/api/ota/v1";
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let template = path.strip_prefix(prefix).unwrap();
        if template == "/openapi.json" {
            continue;
        }
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let access = needed(&method, template);
            for (role, key) in [
                (Role::Admin, &s.a.admin),
                (Role::Operator, &s.a.operator),
                (Role::Assigner, &s.a.assigner),
                (Role::ReadOnly, &s.a.reader),
            ] {
                let mut req = s.req(method.clone(), key, &concrete(template));
                if method != Method::GET && method != Method::DELETE {
                    req = req.header("content-type", "application/json").body("{}");
                }
                let answer = s.send(req).await;
                let what = format!("{method} {template} as {role:?} (needs {access:?})");
                if role.allows(access) {
                    assert_ne!(answer.status.as_u16(), 403, "{what}: {:?}", answer.body);
                    assert_ne!(answer.status.as_u16(), 401, "{what}: {:?}", answer.body);
                } else {
                    answer.expect_error(403, "forbidden");
                    assert!(answer.message().contains(role_word(role)), "{what}");
                }
                checked += 1;
            }
        }
    }
    // Every documented operation, four roles each (the API has well over 50 operations).
    assert!(checked >= 4 * 60, "only {checked} checks");
    s.stop().await;
}

fn role_word(role: Role) -> &'static str {
    match role {
        Role::Admin => "Admin",
        Role::Operator => "Operator",
        Role::Assigner => "Assigner",
        Role::ReadOnly => "ReadOnly",
    }
}
