//! Keyset paging: pages never overlap or skip, filtered lists go on across their scan bound,
//! and a CSV import of 10,000 devices.

mod management_support;

use management_support::{id, memory_store, Server};
use ota_transport_http::ManagementOptions;
use serde_json::json;
use std::collections::BTreeSet;

#[tokio::test]
async fn pages_cover_every_item_once_in_id_order() {
    let s = Server::memory().await;
    let admin = s.a.admin.clone();
    s.post(&admin, "/profiles", json!({"name": "p"}))
        .await
        .expect(201);
    let mut csv = String::from("name,profile\n");
    for i in 0..57 {
        csv.push_str(&format!("dev-{i},p\n"));
    }
    s.post_bytes(&admin, "/devices/import", "text/csv", csv.into_bytes())
        .await
        .expect(201);
    for limit in [1, 10, 56, 57, 58, 1000] {
        let all = s.all_pages(&admin, "/devices", limit).await;
        let ids: Vec<String> = all.iter().map(id).collect();
        assert_eq!(ids.len(), 57, "limit {limit}");
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "id order at limit {limit}");
        assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 57);
    }
    // The first page's cursor resumes exactly after its last item.
    let first = s.get(&admin, "/devices?limit=20").await;
    let first = first.expect(200);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = s
        .get(&admin, &format!("/devices?limit=20&cursor={cursor}"))
        .await;
    let second = second.expect(200);
    assert!(id(&second["items"][0]) > id(&first["items"][19]));
    s.stop().await;
}

#[tokio::test]
async fn filtered_lists_page_through_their_scan_bound() {
    let mut options = ManagementOptions::default();
    options.max_scan = 5;
    let s = Server::start(memory_store(), options).await;
    let admin = s.a.admin.clone();
    for i in 0..30 {
        let title = if i % 3 == 0 { "wanted" } else { "other" };
        s.upload(&admin, title, &i.to_string(), b"x")
            .await
            .expect(201);
    }
    // With at most 5 items read per request, some pages are short or empty, but walking the
    // cursors finds every match exactly once.
    let found = s.all_pages(&admin, "/packages?title=want", 4).await;
    let versions: Vec<&str> = found
        .iter()
        .map(|p| p["version"].as_str().unwrap())
        .collect();
    assert_eq!(
        versions,
        ["0", "3", "6", "9", "12", "15", "18", "21", "24", "27"]
    );
    let audit = s
        .all_pages(&admin, "/audit?action=package.upload&target=package", 7)
        .await;
    assert_eq!(audit.len(), 30);
    s.stop().await;
}

#[tokio::test]
async fn ten_thousand_devices_import_from_csv() {
    let s = Server::memory().await;
    let admin = s.a.admin.clone();
    let p = id(s
        .post(&admin, "/profiles", json!({"name": "meter"}))
        .await
        .expect(201));
    let g = id(s
        .post(&admin, "/groups", json!({"name": "north"}))
        .await
        .expect(201));
    let pkg = id(s.upload(&admin, "fw", "1", b"x").await.expect(201));
    s.put(
        &admin,
        &format!("/groups/{g}/assignments/fw"),
        json!({"package_id": pkg}),
    )
    .await
    .expect(200);
    let mut csv = String::from("name,profile,groups,access_token\n");
    for i in 0..10_000 {
        let groups = if i % 2 == 0 { "north" } else { "" };
        csv.push_str(&format!("meter-{i:05},meter,{groups},tok-{i}\n"));
    }
    let imported = s
        .post_bytes(&admin, "/devices/import", "text/csv", csv.into_bytes())
        .await;
    assert_eq!(imported.expect(201)["created"], 10_000);
    let all = s
        .all_pages(&admin, &format!("/devices?profile={p}"), 1000)
        .await;
    assert_eq!(all.len(), 10_000);
    let members = s
        .all_pages(&admin, &format!("/groups/{g}/devices"), 1000)
        .await;
    assert_eq!(members.len(), 5_000);
    // The group's assignment reached every member as it was created.
    let sample = id(&members[1234]);
    let u = s
        .get(&admin, &format!("/devices/{sample}/updates/fw"))
        .await;
    assert_eq!(u.expect(200)["state"], "QUEUED");
    s.stop().await;
}
