//! The whole operator flow, run against any store: upload, profile, group, devices,
//! assignment, updates, campaign lifecycle and statistics, scheduled events, audit.

use super::{id, Server};
use serde_json::json;
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs the flow as tenant A's admin and operator; returns nothing, asserts everything.
pub async fn operator_flow(s: &Server) {
    let admin = s.a.admin.clone();
    let op = s.a.operator.clone();

    // Profile, group, devices (one by JSON, three by CSV).
    let profile = s.post(&admin, "/profiles", json!({"name": "sensor"})).await;
    let profile = id(profile.expect(201));
    let group = s.post(&admin, "/groups", json!({"name": "canary"})).await;
    let group = id(group.expect(201));
    let d1 = s
        .post(
            &op,
            "/devices",
            json!({"name": "d1", "profile_id": profile, "groups": [group], "access_token": "tok-d1"}),
        )
        .await;
    let created = d1.expect(201);
    assert_eq!(created["access_token"], "tok-d1");
    let d1 = id(&created["device"]);
    let csv =
        "name,profile,groups,access_token\nd2,sensor,canary,\nd3,sensor,,tok-d3\nd4,sensor,,\n";
    let imported = s
        .post_bytes(&op, "/devices/import", "text/csv", csv.as_bytes().to_vec())
        .await;
    let imported = imported.expect(201);
    assert_eq!(imported["created"], 3);
    let names: Vec<&str> = imported["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["d2", "d3", "d4"]);
    assert_eq!(imported["devices"][1]["access_token"], "tok-d3");
    assert!(!imported["devices"][0]["access_token"]
        .as_str()
        .unwrap()
        .is_empty());
    let d2 = id(&imported["devices"][0]);
    let members = s
        .all_pages(&admin, &format!("/groups/{group}/devices"), 10)
        .await;
    let mut member_names: Vec<&str> = members
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    member_names.sort_unstable();
    assert_eq!(member_names, ["d1", "d2"]);

    // Upload with a checksum verified while streaming; download whole and by range.
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let sha = hex(&Sha256::digest(&content));
    let up = s
        .post_bytes(
            &admin,
            &format!("/packages?kind=FIRMWARE&title=fw&version=1.0&checksum_algorithm=SHA256&checksum={sha}&file_name=fw-1.0.bin"),
            "application/octet-stream",
            content.clone(),
        )
        .await;
    let pkg = up.expect(201);
    assert_eq!(pkg["size"], 100_000);
    assert_eq!(pkg["checksum"], sha.as_str());
    assert_eq!(pkg["checksum_algorithm"], "SHA256");
    let fw1 = id(pkg);
    let whole = s.get(&op, &format!("/packages/{fw1}/content")).await;
    assert_eq!(whole.status.as_u16(), 200);
    assert_eq!(whole.bytes, content);
    assert_eq!(whole.headers["accept-ranges"], "bytes");
    let etag = whole.headers["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{sha}\""));
    let part = s
        .send(
            s.req(
                reqwest::Method::GET,
                &op,
                &format!("/packages/{fw1}/content"),
            )
            .header("range", "bytes=1000-1999")
            .header("if-range", &etag),
        )
        .await;
    assert_eq!(part.status.as_u16(), 206);
    assert_eq!(part.bytes, &content[1000..2000]);
    assert_eq!(part.headers["content-range"], "bytes 1000-1999/100000");
    let stale = s
        .send(
            s.req(
                reqwest::Method::GET,
                &op,
                &format!("/packages/{fw1}/content"),
            )
            .header("range", "bytes=0-9")
            .header("if-range", "\"other\""),
        )
        .await;
    assert_eq!((stale.status.as_u16(), stale.bytes.len()), (200, 100_000));
    s.send(
        s.req(
            reqwest::Method::GET,
            &op,
            &format!("/packages/{fw1}/content"),
        )
        .header("range", "bytes=100000-"),
    )
    .await
    .expect_error(416, "range_not_satisfiable");

    // A wrong checksum stores nothing; a duplicate title+version is refused.
    let wrong = s
        .post_bytes(
            &admin,
            &format!(
                "/packages?kind=fw&title=fw&version=1.1&checksum_algorithm=SHA256&checksum={}",
                "0".repeat(64)
            ),
            "application/octet-stream",
            content.clone(),
        )
        .await;
    wrong.expect_error(422, "checksum_mismatch");
    s.upload(&admin, "fw", "1.0", b"again")
        .await
        .expect_error(409, "conflict");
    let listed = s.all_pages(&op, "/packages?title=FW", 10).await;
    assert_eq!(listed.len(), 1, "nothing of the failed uploads was kept");

    // Assign at profile level, then device level: the effective package and why.
    let a = s
        .put(
            &op,
            &format!("/profiles/{profile}/assignments/fw"),
            json!({"package_id": fw1}),
        )
        .await;
    assert_eq!(a.expect(200)["level"], "PROFILE");
    let latest = s.get(&op, &format!("/devices/{d2}/updates/firmware")).await;
    let latest = latest.expect(200);
    assert_eq!(
        (latest["state"].as_str(), latest["target_version"].as_str()),
        (Some("QUEUED"), Some("1.0"))
    );
    let fw2 = id(s.upload(&admin, "fw", "2.0", b"two").await.expect(201));
    s.put(
        &op,
        &format!("/devices/{d1}/assignments/FIRMWARE"),
        json!({"package_id": fw2}),
    )
    .await
    .expect(200);
    let eff = s
        .get(&op, &format!("/devices/{d1}/effective-packages"))
        .await;
    let eff = eff.expect(200);
    assert_eq!(eff[0]["kind"], "FIRMWARE");
    assert_eq!(eff[0]["level"], "DEVICE");
    assert_eq!(eff[0]["package"]["version"], "2.0");
    assert_eq!(eff[0]["considered"].as_array().unwrap().len(), 2);
    assert!(eff[1]["package"].is_null());
    let eff2 = s
        .get(&op, &format!("/devices/{d2}/effective-packages"))
        .await;
    assert_eq!(eff2.expect(200)[0]["level"], "PROFILE");
    let assignments = s.all_pages(&op, "/assignments?kind=fw", 1).await;
    assert_eq!(assignments.len(), 2);
    let in_use = s.delete(&admin, &format!("/packages/{fw1}")).await;
    in_use.expect_error(409, "package_in_use");
    assert!(in_use.body["details"]["uses"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["by"] == "profile"));
    let uses = s.get(&op, &format!("/packages/{fw1}/uses")).await;
    assert!(!uses.expect(200).as_array().unwrap().is_empty());

    // Cancel and retry one device; the history keeps both attempts.
    let canceled = s
        .post(
            &op,
            &format!("/devices/{d2}/updates/fw/cancel"),
            json!({"reason": "field test"}),
        )
        .await;
    assert_eq!(canceled.expect(200)["state"], "CANCELED");
    s.post(&op, &format!("/devices/{d2}/updates/fw/cancel"), json!({}))
        .await
        .expect_error(409, "not_allowed");
    let retried = s
        .post(&op, &format!("/devices/{d2}/updates/fw/retry"), json!({}))
        .await;
    let retried = retried.expect(200);
    assert_eq!(
        (retried["state"].as_str(), retried["attempt"].as_u64()),
        (Some("QUEUED"), Some(2))
    );
    let history = s
        .get(&op, &format!("/updates/{}/history", id(retried)))
        .await;
    let history = history.expect(200).as_array().unwrap().clone();
    assert!(history.iter().any(|h| h["to"] == "CANCELED"));
    assert!(history
        .iter()
        .any(|h| h["to"] == "QUEUED" && h["attempt"] == 2));
    let d2_updates = s
        .all_pages(&op, &format!("/devices/{d2}/updates?kind=fw"), 10)
        .await;
    assert_eq!(d2_updates.len(), 1);

    // Unassigning the device level falls back to the profile.
    s.delete(&op, &format!("/devices/{d1}/assignments/fw"))
        .await
        .expect(204);
    s.delete(&op, &format!("/devices/{d1}/assignments/fw"))
        .await
        .expect_error(404, "not_found");
    let eff = s
        .get(&op, &format!("/devices/{d1}/effective-packages"))
        .await;
    assert_eq!(eff.expect(200)[0]["level"], "PROFILE");

    // A campaign through its whole lifecycle.
    // (Software: every device has a firmware update in progress, which a firmware campaign
    // would skip as busy.)
    let fw3 = s
        .post_bytes(
            &admin,
            "/packages?kind=sw&title=app&version=3.0",
            "application/octet-stream",
            b"three".to_vec(),
        )
        .await;
    let fw3 = id(fw3.expect(201));
    let spec = json!({
        "name": "rollout 3.0",
        "package_id": fw3,
        "target": {"type": "selection", "profile": profile},
        "pacing": {"rate": {"count": 100, "per_ms": 60000}, "max_in_progress": 10},
        "waves": [{"size": {"type": "count", "value": 1}}, {"size": {"type": "rest"}}],
    });
    let c = s.post(&op, "/campaigns", spec.clone()).await;
    let c = c.expect(201);
    assert_eq!(c["state"], "DRAFT");
    let cid = id(c);
    let mut edited = spec.clone();
    edited["description"] = json!("edited");
    let e = s.put(&op, &format!("/campaigns/{cid}"), edited).await;
    assert_eq!(e.expect(200)["spec"]["description"], "edited");
    let started = s
        .post(&op, &format!("/campaigns/{cid}/start"), json!({}))
        .await;
    let started = started.expect(200);
    assert_eq!(started["state"], "RUNNING");
    assert_eq!(started["wave_sizes"], json!([1, 3]));
    s.put(&op, &format!("/campaigns/{cid}"), spec.clone())
        .await
        .expect_error(409, "not_allowed");
    let stats = s.get(&op, &format!("/campaigns/{cid}/stats")).await;
    let stats = stats.expect(200);
    assert_eq!(stats["total"]["total"], 4);
    assert_eq!(stats["total"]["not_started"], 4);
    assert_eq!(stats["waves"].as_array().unwrap().len(), 2);
    let queued = s
        .all_pages(
            &op,
            &format!("/campaigns/{cid}/devices?status=not_started"),
            3,
        )
        .await;
    assert_eq!(queued.len(), 4);
    let none = s
        .all_pages(&op, &format!("/campaigns/{cid}/devices?state=FAILED"), 3)
        .await;
    assert!(none.is_empty());
    let paused = s
        .post(&op, &format!("/campaigns/{cid}/pause"), json!({}))
        .await;
    assert_eq!(paused.expect(200)["state"], "PAUSED");
    let again = s
        .post(&op, &format!("/campaigns/{cid}/pause"), json!({}))
        .await;
    again.expect_error(409, "illegal_transition");
    assert!(again.message().contains("PAUSED"), "{}", again.message());
    s.post(&op, &format!("/campaigns/{cid}/resume"), json!({}))
        .await
        .expect(200);
    let adv = s
        .post(&op, &format!("/campaigns/{cid}/advance-wave"), json!({}))
        .await;
    assert_eq!(adv.expect(200)["current_wave"], 1);
    let r = s
        .post(&op, &format!("/campaigns/{cid}/retry-failed"), json!({}))
        .await;
    assert_eq!(r.expect(200)["retried"], 0);
    let stopped = s
        .post(&op, &format!("/campaigns/{cid}/stop"), json!({}))
        .await;
    assert_eq!(stopped.expect(200)["state"], "STOPPED");
    let stats = s.get(&op, &format!("/campaigns/{cid}/stats")).await;
    assert_eq!(stats.expect(200)["total"]["canceled"], 4);
    s.post(&op, &format!("/campaigns/{cid}/archive"), json!({}))
        .await
        .expect(200);
    let visible = s.all_pages(&op, "/campaigns", 10).await;
    assert!(
        visible.iter().all(|c| id(c) != cid),
        "archived campaigns are hidden by default"
    );
    let all = s
        .all_pages(&op, "/campaigns?include_archived=true", 10)
        .await;
    assert!(all.iter().any(|c| id(c) == cid));
    let copy = s
        .post(
            &op,
            &format!("/campaigns/{cid}/copy"),
            json!({"name": "retry 3.0"}),
        )
        .await;
    let copy = copy.expect(201);
    assert_eq!(
        (copy["state"].as_str(), copy["name"].as_str()),
        (Some("DRAFT"), Some("retry 3.0"))
    );

    // A campaign over an explicit device list from CSV, scheduled for later.
    let mut listed_spec = spec.clone();
    listed_spec["name"] = json!("listed");
    listed_spec["target"] = json!({"type": "device_list"});
    listed_spec.as_object_mut().unwrap().remove("waves");
    let lc = id(s.post(&op, "/campaigns", listed_spec).await.expect(201));
    let report = s
        .put_bytes(
            &op,
            &format!("/campaigns/{lc}/devices"),
            "text/csv",
            b"DeviceName\nd1\nd3\nnobody\n".to_vec(),
        )
        .await;
    let report = report.expect(200);
    assert_eq!(report["accepted"], 2);
    assert_eq!(report["skipped"][0]["line"], 4);
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    let scheduled = s
        .post(
            &op,
            &format!("/campaigns/{lc}/schedule"),
            json!({"start_at": later}),
        )
        .await;
    assert_eq!(scheduled.expect(200)["state"], "SCHEDULED");

    // Scheduled events: create, list, edit, delete.
    let event = json!({
        "name": "nightly",
        "recurrence": {"start": "2030-01-01T03:00:00", "time_zone": "Europe/Berlin", "repeat": {"type": "daily"}, "until": null},
        "action": {"type": "assign", "target": {"type": "group", "id": group}, "package_id": fw2},
    });
    let ev = id(s.post(&op, "/schedules", event.clone()).await.expect(201));
    let mut renamed = event.clone();
    renamed["name"] = json!("nightly 2");
    assert_eq!(
        s.put(&op, &format!("/schedules/{ev}"), renamed)
            .await
            .expect(200)["name"],
        "nightly 2"
    );
    assert_eq!(s.all_pages(&op, "/schedules", 5).await.len(), 1);
    s.get(&op, &format!("/schedules/{ev}")).await.expect(200);
    s.delete(&op, &format!("/schedules/{ev}")).await.expect(204);
    s.get(&op, &format!("/schedules/{ev}"))
        .await
        .expect_error(404, "not_found");

    // The audit log names the key of every action.
    let log = s.all_pages(&op, "/audit?action=campaign.", 50).await;
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    for wanted in [
        "campaign.create",
        "campaign.edit",
        "campaign.start",
        "campaign.pause",
        "campaign.resume",
        "campaign.stop",
        "campaign.archive",
    ] {
        assert!(
            actions.contains(&wanted),
            "{wanted} missing from {actions:?}"
        );
    }
    assert!(log.iter().all(|e| e["actor"] == "api-key:a-operator"));
    let uploads = s
        .all_pages(
            &op,
            "/audit?actor=api-key:a-admin&action=package.upload",
            50,
        )
        .await;
    assert_eq!(uploads.len(), 3);
    let on_campaign = s.all_pages(&op, &format!("/audit?target={cid}"), 50).await;
    assert!(on_campaign.len() >= 7);
    let future = s
        .all_pages(&op, "/audit?from=2100-01-01T00:00:00Z", 50)
        .await;
    assert!(future.is_empty());
}
