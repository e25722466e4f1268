//! Authentication, roles and tenant isolation of the management API.

mod management_support;

use async_trait::async_trait;
use axum::http::HeaderMap;
use management_support::{id, memory_store, Server};
use ota_core::engine::{Ota, OtaConfig};
use ota_core::notifier::RecordingNotifier;
use ota_core::{SystemClock, TenantId};
use ota_transport_http::management::{AuthError, Authenticator, Principal, Role};
use ota_transport_http::{management_router, ManagementOptions};
use proptest::prelude::*;
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn missing_or_wrong_keys_answer_401() {
    let s = Server::memory().await;
    let no_key = s.send(s.client.get(s.url("/devices"))).await;
    no_key.expect_error(401, "unauthorized");
    assert!(no_key.message().contains("Bearer"), "{}", no_key.message());
    s.get("ota_not-a-key", "/devices")
        .await
        .expect_error(401, "unauthorized");
    let basic = s
        .send(
            s.client
                .get(s.url("/devices"))
                .header("authorization", "Basic YTpi"),
        )
        .await;
    basic.expect_error(401, "unauthorized");
    // Authentication comes before the body is read.
    let bad_body = s
        .send(
            s.client
                .post(s.url("/profiles"))
                .header("content-type", "application/json")
                .body("{"),
        )
        .await;
    bad_body.expect_error(401, "unauthorized");
    // A revoked key stops working.
    assert!(s.keys.revoke(&s.a.reader));
    s.get(&s.a.reader, "/devices")
        .await
        .expect_error(401, "unauthorized");
    s.stop().await;
}

#[tokio::test]
async fn roles_are_checked_on_every_route() {
    let s = Server::memory().await;
    let (admin, op, assigner, reader) = (&s.a.admin, &s.a.operator, &s.a.assigner, &s.a.reader);
    let p = id(s
        .post(admin, "/profiles", json!({"name": "p"}))
        .await
        .expect(201));
    let pkg = id(s.upload(admin, "fw", "1", b"x").await.expect(201));
    // Reading: every role.
    for key in [admin, op, assigner, reader] {
        s.get(key, "/packages").await.expect(200);
    }
    // Admin routes: packages, profiles, groups.
    for key in [op, assigner, reader] {
        s.upload(key, "fw", "2", b"y")
            .await
            .expect_error(403, "forbidden");
        s.post(key, "/groups", json!({"name": "g"}))
            .await
            .expect_error(403, "forbidden");
        s.delete(key, &format!("/packages/{pkg}"))
            .await
            .expect_error(403, "forbidden");
    }
    // Assigning: assigner, operator, admin; not read-only.
    let path = format!("/profiles/{p}/assignments/fw");
    s.put(reader, &path, json!({"package_id": pkg}))
        .await
        .expect_error(403, "forbidden");
    s.put(assigner, &path, json!({"package_id": pkg}))
        .await
        .expect(200);
    s.put(op, &path, json!({"package_id": pkg}))
        .await
        .expect(200);
    // Operating: operator and admin.
    let spec =
        json!({"name": "c", "package_id": pkg, "target": {"type": "selection", "profile": p}});
    s.post(assigner, "/campaigns", spec.clone())
        .await
        .expect_error(403, "forbidden");
    s.post(reader, "/campaigns", spec.clone())
        .await
        .expect_error(403, "forbidden");
    s.post(op, "/campaigns", spec.clone()).await.expect(201);
    s.post(admin, "/campaigns", spec).await.expect(201);
    // The role is checked before the body is read.
    let forbidden = s
        .send(
            s.req(Method::POST, reader, "/campaigns")
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    forbidden.expect_error(403, "forbidden");
    s.stop().await;
}

struct Platform;

#[async_trait]
impl Authenticator for Platform {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let user = headers
            .get("x-user")
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::Missing)?;
        if user == "idp-down" {
            return Err(AuthError::Unavailable("identity provider timed out".into()));
        }
        let tenant = headers
            .get("x-tenant")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.parse().ok())
            .map(TenantId)
            .ok_or_else(|| AuthError::Invalid("no tenant".into()))?;
        Ok(Principal::new(tenant, format!("user:{user}"), Role::Admin))
    }
}

#[tokio::test]
async fn a_platform_authenticator_names_the_actor_in_the_audit_log() {
    let ota = Ota::new(
        memory_store(),
        Arc::new(RecordingNotifier::new()),
        Arc::new(SystemClock),
        OtaConfig::default(),
    );
    let router = management_router(ota, Arc::new(Platform), ManagementOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/ota/v1", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    let client = reqwest::Client::new();
    let tenant = TenantId::new().0.to_string();
    let created = client
        .post(format!("{base}/profiles"))
        .header("x-user", "alice")
        .header("x-tenant", &tenant)
        .json(&json!({"name": "p"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let log: serde_json::Value = client
        .get(format!("{base}/audit"))
        .header("x-user", "bob")
        .header("x-tenant", &tenant)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log["items"][0]["actor"], "user:alice");
    assert_eq!(log["items"][0]["action"], "profile.create");
    let down = client
        .get(format!("{base}/audit"))
        .header("x-user", "idp-down")
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 503);
    assert!(down.headers().contains_key("retry-after"));
    tx.send(()).unwrap();
    server.await.unwrap();
}

/// Resources of one tenant, made through the API.
struct Made {
    profiles: Vec<String>,
    groups: Vec<String>,
    devices: Vec<String>,
    packages: Vec<String>,
    campaigns: Vec<String>,
    schedules: Vec<String>,
    updates: Vec<String>,
}

async fn make(s: &Server, key: &str, tag: &str, n: usize) -> Made {
    let mut m = Made {
        profiles: vec![],
        groups: vec![],
        devices: vec![],
        packages: vec![],
        campaigns: vec![],
        schedules: vec![],
        updates: vec![],
    };
    for i in 0..n {
        let p = id(s
            .post(key, "/profiles", json!({"name": format!("{tag}-p{i}")}))
            .await
            .expect(201));
        let g = id(s
            .post(key, "/groups", json!({"name": format!("{tag}-g{i}")}))
            .await
            .expect(201));
        let d = s
            .post(
                key,
                "/devices",
                json!({"name": format!("{tag}-d{i}"), "profile_id": p, "groups": [g]}),
            )
            .await;
        let d = id(&d.expect(201)["device"]);
        let pkg = id(s
            .upload(key, &format!("{tag}fw"), &i.to_string(), b"x")
            .await
            .expect(201));
        s.put(
            key,
            &format!("/devices/{d}/assignments/fw"),
            json!({"package_id": pkg}),
        )
        .await
        .expect(200);
        let u = id(s
            .get(key, &format!("/devices/{d}/updates/fw"))
            .await
            .expect(200));
        let c = s
            .post(key, "/campaigns", json!({"name": "c", "package_id": pkg, "target": {"type": "selection", "profile": p}}))
            .await;
        let c = id(c.expect(201));
        let e = s
            .post(key, "/schedules", json!({
                "name": "e",
                "recurrence": {"start": "2030-01-01T03:00:00", "time_zone": "UTC", "repeat": {"type": "once"}, "until": null},
                "action": {"type": "assign", "target": {"type": "profile", "id": p}, "package_id": pkg},
            }))
            .await;
        let e = id(e.expect(201));
        m.profiles.push(p);
        m.groups.push(g);
        m.devices.push(d);
        m.packages.push(pkg);
        m.campaigns.push(c);
        m.schedules.push(e);
        m.updates.push(u);
    }
    m
}

/// Every call another tenant could make on `m`'s resources, as (method, path, body).
fn foreign_calls(m: &Made, own: &Made) -> Vec<(Method, String, Option<serde_json::Value>)> {
    let mut calls = Vec::new();
    let own_pkg = &own.packages[0];
    for p in &m.profiles {
        calls.push((Method::GET, format!("/profiles/{p}"), None));
        calls.push((
            Method::PUT,
            format!("/profiles/{p}/assignments/fw"),
            Some(json!({"package_id": own_pkg})),
        ));
        calls.push((
            Method::DELETE,
            format!("/profiles/{p}/assignments/fw"),
            None,
        ));
        calls.push((Method::GET, format!("/devices?profile={p}"), None));
    }
    for g in &m.groups {
        calls.push((Method::GET, format!("/groups/{g}"), None));
        calls.push((Method::GET, format!("/groups/{g}/devices"), None));
        calls.push((
            Method::PUT,
            format!("/groups/{g}/assignments/fw"),
            Some(json!({"package_id": own_pkg})),
        ));
        calls.push((
            Method::PUT,
            format!("/groups/{g}/devices/{}", own.devices[0]),
            None,
        ));
    }
    for d in &m.devices {
        calls.push((Method::GET, format!("/devices/{d}"), None));
        calls.push((
            Method::PATCH,
            format!("/devices/{d}"),
            Some(json!({"groups": []})),
        ));
        calls.push((
            Method::GET,
            format!("/devices/{d}/effective-packages"),
            None,
        ));
        calls.push((Method::GET, format!("/devices/{d}/updates"), None));
        calls.push((Method::GET, format!("/devices/{d}/updates/fw"), None));
        calls.push((
            Method::POST,
            format!("/devices/{d}/updates/fw/cancel"),
            Some(json!({})),
        ));
        calls.push((Method::POST, format!("/devices/{d}/updates/fw/retry"), None));
        calls.push((
            Method::PUT,
            format!("/devices/{d}/assignments/fw"),
            Some(json!({"package_id": own_pkg})),
        ));
        calls.push((
            Method::PUT,
            format!("/groups/{}/devices/{d}", own.groups[0]),
            None,
        ));
    }
    for p in &m.packages {
        calls.push((Method::GET, format!("/packages/{p}"), None));
        calls.push((Method::GET, format!("/packages/{p}/content"), None));
        calls.push((Method::GET, format!("/packages/{p}/uses"), None));
        calls.push((Method::DELETE, format!("/packages/{p}"), None));
        calls.push((
            Method::PUT,
            format!("/profiles/{}/assignments/fw", own.profiles[0]),
            Some(json!({"package_id": p})),
        ));
    }
    for c in &m.campaigns {
        calls.push((Method::GET, format!("/campaigns/{c}"), None));
        calls.push((Method::GET, format!("/campaigns/{c}/stats"), None));
        calls.push((Method::GET, format!("/campaigns/{c}/devices"), None));
        for action in [
            "start",
            "pause",
            "resume",
            "stop",
            "archive",
            "advance-wave",
            "retry-failed",
        ] {
            calls.push((Method::POST, format!("/campaigns/{c}/{action}"), None));
        }
        calls.push((
            Method::POST,
            format!("/campaigns/{c}/copy"),
            Some(json!({})),
        ));
    }
    for e in &m.schedules {
        calls.push((Method::GET, format!("/schedules/{e}"), None));
        calls.push((Method::DELETE, format!("/schedules/{e}"), None));
    }
    for u in &m.updates {
        calls.push((Method::GET, format!("/updates/{u}"), None));
        calls.push((Method::GET, format!("/updates/{u}/history"), None));
    }
    calls
}

async fn cross_tenant_calls_are_refused(na: usize, nb: usize) {
    let s = Server::memory().await;
    let a = make(&s, &s.a.admin, "a", na).await;
    let b = make(&s, &s.b.admin, "b", nb).await;
    for (m, own, key) in [(&a, &b, &s.b.admin), (&b, &a, &s.a.admin)] {
        for (method, path, body) in foreign_calls(m, own) {
            let mut req = s.req(method.clone(), key, &path);
            if let Some(body) = body {
                req = req.json(&body);
            }
            let answer = s.send(req).await;
            if path.contains('?') {
                // A list filtered by a foreign id is empty, never the other tenant's items.
                assert_eq!(answer.expect(200)["items"], json!([]), "{method} {path}");
            } else {
                answer.expect_error(404, "not_found");
            }
        }
    }
    // Lists never show the other tenant's items.
    for (key, own, tag) in [(&s.a.admin, &a, "a"), (&s.b.admin, &b, "b")] {
        let devices: Vec<String> = s
            .all_pages(key, "/devices", 100)
            .await
            .iter()
            .map(id)
            .collect();
        assert_eq!(devices, own.devices);
        let packages: Vec<String> = s
            .all_pages(key, "/packages", 100)
            .await
            .iter()
            .map(id)
            .collect();
        assert_eq!(packages, own.packages);
        let audit = s.all_pages(key, "/audit", 100).await;
        assert!(!audit.is_empty());
        let actor = format!("api-key:{tag}-admin");
        assert!(
            audit.iter().all(|e| e["actor"] == actor.as_str()),
            "{audit:?}"
        );
    }
    // Nothing of the foreign calls changed anything: every campaign is still a DRAFT.
    for (key, own) in [(&s.a.admin, &a), (&s.b.admin, &b)] {
        for c in &own.campaigns {
            assert_eq!(
                s.get(key, &format!("/campaigns/{c}")).await.expect(200)["state"],
                "DRAFT"
            );
        }
        for d in &own.devices {
            let u = s.get(key, &format!("/devices/{d}/updates/fw")).await;
            assert_eq!(u.expect(200)["state"], "QUEUED");
        }
    }
    s.stop().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn no_call_reaches_another_tenants_resources(na in 1usize..4, nb in 1usize..4) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(cross_tenant_calls_are_refused(na, nb));
    }
}
