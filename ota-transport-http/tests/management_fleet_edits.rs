//! Renaming and deleting profiles, groups and devices, and setting a device's access token,
//! through real sockets, on the memory store and on PostgreSQL.

mod management_support;

use management_support::{id, memory_store, Server};
use ota_core::store::Store;
use ota_transport_http::ManagementOptions;
use serde_json::json;
use std::sync::Arc;

async fn profiles_and_groups(s: &Server) {
    let (admin, op) = (s.a.admin.clone(), s.a.operator.clone());
    let p = id(s
        .post(&admin, "/profiles", json!({"name": "p"}))
        .await
        .expect(201));
    let p2 = id(s
        .post(&admin, "/profiles", json!({"name": "p2"}))
        .await
        .expect(201));
    let g = id(s
        .post(&admin, "/groups", json!({"name": "g"}))
        .await
        .expect(201));
    let g2 = id(s
        .post(&admin, "/groups", json!({"name": "g2"}))
        .await
        .expect(201));

    // Renames: 200, names unique, admin only, other tenants 404.
    let r = s
        .patch(&admin, &format!("/profiles/{p}"), json!({"name": "p-new"}))
        .await;
    assert_eq!(r.expect(200)["name"], "p-new");
    assert_eq!(
        s.get(&op, &format!("/profiles/{p}")).await.expect(200)["name"],
        "p-new"
    );
    s.patch(&admin, &format!("/profiles/{p}"), json!({"name": "p2"}))
        .await
        .expect_error(409, "conflict");
    s.patch(&op, &format!("/profiles/{p}"), json!({"name": "x"}))
        .await
        .expect_error(403, "forbidden");
    s.patch(&s.b.admin, &format!("/profiles/{p}"), json!({"name": "x"}))
        .await
        .expect_error(404, "not_found");
    s.patch(&admin, &format!("/profiles/{p}"), json!({"name": " "}))
        .await
        .expect_error(400, "invalid_request");
    let r = s
        .patch(&admin, &format!("/groups/{g}"), json!({"name": "g-new"}))
        .await;
    assert_eq!(r.expect(200)["name"], "g-new");
    s.patch(&admin, &format!("/groups/{g}"), json!({"name": "g2"}))
        .await
        .expect_error(409, "conflict");

    // In use by a device, by an assignment: 409 listing what.
    let d = s
        .post(
            &op,
            "/devices",
            json!({"name": "d", "profile_id": p, "groups": [g]}),
        )
        .await;
    let d = id(&d.expect(201)["device"]);
    let used = s.delete(&admin, &format!("/profiles/{p}")).await;
    used.expect_error(409, "in_use");
    assert_eq!(
        used.body["details"]["uses"],
        json!([{"by": "device", "id": d}])
    );
    assert!(used.message().contains(&d), "{}", used.message());
    let used = s.delete(&admin, &format!("/groups/{g}")).await;
    used.expect_error(409, "in_use");
    assert_eq!(used.body["details"]["uses"][0]["id"], d);
    let fw = id(s.upload(&admin, "fw", "1.0", b"one").await.expect(201));
    s.put(
        &op,
        &format!("/groups/{g2}/assignments/fw"),
        json!({"package_id": fw}),
    )
    .await
    .expect(200);
    let used = s.delete(&admin, &format!("/groups/{g2}")).await;
    used.expect_error(409, "in_use");
    assert_eq!(used.body["details"]["uses"][0]["by"], "assignment");
    s.delete(&s.b.admin, &format!("/profiles/{p2}"))
        .await
        .expect_error(404, "not_found");
    s.delete(&op, &format!("/profiles/{p2}"))
        .await
        .expect_error(403, "forbidden");

    // Unused: deleted, then 404, and gone from the list.
    s.delete(&op, &format!("/groups/{g2}/assignments/fw"))
        .await
        .expect(204);
    assert_eq!(
        s.delete(&admin, &format!("/groups/{g2}")).await.expect(200)["name"],
        "g2"
    );
    s.get(&op, &format!("/groups/{g2}"))
        .await
        .expect_error(404, "not_found");
    s.delete(&admin, &format!("/groups/{g2}"))
        .await
        .expect_error(404, "not_found");
    s.delete(&admin, &format!("/profiles/{p2}"))
        .await
        .expect(200);
    let listed = s.all_pages(&op, "/profiles", 10).await;
    assert_eq!(listed.iter().map(id).collect::<Vec<_>>(), [p]);
    let audit = s.all_pages(&admin, "/audit", 100).await;
    for action in [
        "profile.rename",
        "group.rename",
        "group.delete",
        "profile.delete",
    ] {
        assert!(
            audit
                .iter()
                .any(|e| e["action"] == action && e["actor"] == "api-key:a-admin"),
            "{action}"
        );
    }
}

async fn devices(s: &Server) {
    let (admin, op) = (s.a.admin.clone(), s.a.operator.clone());
    let p = id(s
        .post(&admin, "/profiles", json!({"name": "dp"}))
        .await
        .expect(201));
    let g = id(s
        .post(&admin, "/groups", json!({"name": "dg"}))
        .await
        .expect(201));
    let make = |name: &str, token: &str| json!({"name": name, "profile_id": p, "groups": [g], "access_token": token});
    let d = id(&s
        .post(&op, "/devices", make("d1", "tok-d1"))
        .await
        .expect(201)["device"]);
    let e = id(&s
        .post(&op, "/devices", make("d2", "tok-d2"))
        .await
        .expect(201)["device"]);

    // Rename through PATCH.
    let r = s
        .patch(&op, &format!("/devices/{d}"), json!({"name": "d1-new"}))
        .await;
    assert_eq!(r.expect(200)["name"], "d1-new");
    s.patch(&op, &format!("/devices/{d}"), json!({"name": "d2"}))
        .await
        .expect_error(409, "conflict");

    // Access tokens: a generated one, a chosen one; the old one stops working.
    let store = s.ota.store();
    let t = s
        .put(&admin, &format!("/devices/{d}/access-token"), json!({}))
        .await;
    let token = t.expect(200)["access_token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 32);
    assert_eq!(t.body["device"]["id"], d.as_str());
    assert!(store.device_by_token("tok-d1").await.is_err());
    assert_eq!(
        store.device_by_token(&token).await.unwrap().id.to_string(),
        d
    );
    let t = s
        .put(
            &admin,
            &format!("/devices/{d}/access-token"),
            json!({"access_token": "tok-new"}),
        )
        .await;
    assert_eq!(t.expect(200)["access_token"], "tok-new");
    assert!(store.device_by_token(&token).await.is_err());
    let taken = s
        .put(
            &admin,
            &format!("/devices/{d}/access-token"),
            json!({"access_token": "tok-d2"}),
        )
        .await;
    taken.expect_error(409, "conflict");
    assert!(!taken.message().contains("tok-d2"));
    s.put(
        &admin,
        &format!("/devices/{d}/access-token"),
        json!({"access_token": ""}),
    )
    .await
    .expect_error(400, "invalid_request");
    s.put(&op, &format!("/devices/{d}/access-token"), json!({}))
        .await
        .expect_error(403, "forbidden");
    s.put(&s.b.admin, &format!("/devices/{d}/access-token"), json!({}))
        .await
        .expect_error(404, "not_found");
    let audit = s
        .all_pages(&admin, "/audit?action=device.set_token", 100)
        .await;
    assert_eq!(audit.len(), 2);
    assert!(!serde_json::to_string(&audit).unwrap().contains("tok-new"));

    // Delete: its live update is canceled, its device-level assignment removed.
    let fw = id(s.upload(&admin, "dfw", "1.0", b"one").await.expect(201));
    s.put(
        &op,
        &format!("/devices/{d}/assignments/fw"),
        json!({"package_id": fw}),
    )
    .await
    .expect(200);
    let update = s.get(&op, &format!("/devices/{d}/updates/firmware")).await;
    assert_eq!(update.expect(200)["state"], "QUEUED");
    let update = id(&update.body);
    s.delete(&s.a.reader, &format!("/devices/{d}"))
        .await
        .expect_error(403, "forbidden");
    s.delete(&s.b.admin, &format!("/devices/{d}"))
        .await
        .expect_error(404, "not_found");
    let gone = s.delete(&op, &format!("/devices/{d}")).await;
    assert_eq!(gone.expect(200)["name"], "d1-new");
    s.get(&op, &format!("/devices/{d}"))
        .await
        .expect_error(404, "not_found");
    s.delete(&op, &format!("/devices/{d}"))
        .await
        .expect_error(404, "not_found");
    let canceled = s.get(&op, &format!("/updates/{update}")).await;
    assert_eq!(canceled.expect(200)["state"], "CANCELED");
    let assignments = s
        .all_pages(&op, &format!("/assignments?package={fw}"), 10)
        .await;
    assert!(assignments.is_empty(), "{assignments:?}");
    assert!(store.device_by_token("tok-new").await.is_err());
    let members = s.all_pages(&op, &format!("/groups/{g}/devices"), 10).await;
    assert_eq!(members.iter().map(id).collect::<Vec<_>>(), [e]);
    // Its package is no longer in use by it; the name is free again.
    s.post(&op, "/devices", make("d1-new", "tok-again"))
        .await
        .expect(201);
    let audit = s
        .all_pages(&admin, "/audit?action=device.delete", 100)
        .await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["details"]["canceled_updates"], json!([update]));
}

async fn run(store: Arc<dyn Store>) {
    let s = Server::start(store, ManagementOptions::default()).await;
    profiles_and_groups(&s).await;
    devices(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn profiles_groups_and_devices_are_renamed_and_deleted_on_memory() {
    run(memory_store()).await;
}

#[tokio::test]
async fn profiles_groups_and_devices_are_renamed_and_deleted_on_postgres() {
    run(Arc::new(ota_store_postgres::testing::fresh_store().await)).await;
}
