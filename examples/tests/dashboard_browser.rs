//! The dashboard in a real browser (headless Chromium over WebDriver): log in with an API key,
//! upload a package, create and start a campaign over simulated devices, watch the status
//! cards follow the devices' reports, cancel one device, and read the history, the devices and
//! the audit log; at 1280x800 and in a narrow window. Screenshots are kept in
//! `target/dashboard-screenshots/`.
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (scripts/browser installs them;
//! `CHROME_BIN` and `CHROMEDRIVER` override the programs). Without them the test fails.

mod dashboard_support;

use dashboard_support::browser::{screenshot_dir, Browser, TempDir};
use dashboard_support::Host;
use ota_core::UpdateState;

/// The count a status card shows.
fn card(key: &str) -> String {
    format!("[data-card=\"{key}\"] .card-count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_a_campaign_from_the_dashboard() {
    let host = Host::start().await;
    let devices = host
        .devices(
            "sensor",
            &["sim-1", "sim-2", "sim-3", "sim-4"],
            ("sensor-fw", "1.0.0"),
        )
        .await;
    let b = Browser::start(screenshot_dir()).await;

    // Login: the key is checked, a wrong one is refused with the API's message.
    b.client.goto(&format!("{}/", host.base)).await.unwrap();
    b.find("#api-key").await;
    b.shot("01-login").await;
    b.type_into("#api-key", "ota_not-a-key").await;
    b.click("form.login button[type=submit]").await;
    b.wait_text("#login-error", "the refusal", |t| {
        t.contains("not accepted")
    })
    .await;
    b.type_into("#api-key", &host.admin_key).await;
    b.click("form.login button[type=submit]").await;
    b.wait_text("main h1", "the campaign list", |t| t == "Campaigns")
        .await;
    b.wait_text("#campaign-list", "the empty state", |t| {
        t.contains("No campaigns yet") && t.contains("Upload a package")
    })
    .await;
    b.wait_js(
        "sessionStorage.getItem('ota-dashboard.api-key') !== null",
        "the key is kept for the session",
    )
    .await;
    b.shot("02-no-campaigns").await;

    // Upload a package: title and version come from the file name, progress is shown.
    b.click("nav a[data-section=packages]").await;
    b.wait_text("#package-list", "the empty state", |t| {
        t.contains("No packages yet")
    })
    .await;
    let files = TempDir::new("upload");
    let file = files.0.join("sensor-fw-2.0.0.bin");
    std::fs::write(&file, vec![0x5a_u8; 300 * 1024]).unwrap();
    b.find("#p-file")
        .await
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    b.wait_js(
        "document.querySelector('#p-title').value === 'sensor-fw' && document.querySelector('#p-version').value === '2.0.0'",
        "title and version guessed from the file name",
    )
    .await;
    b.click("#p-submit").await;
    b.find("tr[data-package=\"sensor-fw 2.0.0\"]").await;
    b.wait_text("#p-status", "the finished upload", |t| {
        t.contains("Uploaded sensor-fw 2.0.0")
    })
    .await;
    b.wait_js(
        "document.querySelector('#p-progress').value === 100",
        "the progress bar at 100 %",
    )
    .await;
    b.shot("03-package-uploaded").await;

    // An API error is shown as a message: the same title and version again is refused.
    b.find("#p-file")
        .await
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    b.click("#p-submit").await;
    b.wait_text("#messages [role=alert]", "the refusal", |t| {
        t.contains("(conflict)")
    })
    .await;
    b.wait_text("#p-error", "the refusal in the form", |t| !t.is_empty())
        .await;
    b.shot("04-duplicate-refused").await;
    b.click("#messages [role=alert] button").await;

    // Another package, deleted after confirming.
    let other = files.0.join("spare-0.1.bin");
    std::fs::write(&other, b"spare").unwrap();
    b.find("#p-file")
        .await
        .send_keys(other.to_str().unwrap())
        .await
        .unwrap();
    b.type_into("#p-title", "spare").await;
    b.type_into("#p-version", "0.1").await;
    b.click("#p-submit").await;
    b.click("tr[data-package=\"spare 0.1\"] button").await;
    b.click("dialog button[data-confirm]").await;
    b.wait_js(
        "!document.querySelector('tr[data-package=\"spare 0.1\"]') && document.querySelector('tr[data-package=\"sensor-fw 2.0.0\"]')",
        "only the deleted package gone",
    )
    .await;

    // Create and start a campaign over the profile's devices.
    b.click("nav a[data-section=campaigns]").await;
    b.click("a.button[href=\"#/campaigns/new\"]").await;
    b.type_into("#c-name", "Rollout 2.0").await;
    b.find("#c-package")
        .await
        .select_by_label("sensor-fw 2.0.0 (firmware)")
        .await
        .unwrap();
    b.find("#c-profile")
        .await
        .select_by_label("sensor")
        .await
        .unwrap();
    b.type_into("#c-waves", "2, rest").await;
    b.type_into("#c-advance", "50").await;
    b.type_into("#c-threshold", "60").await;
    b.shot("05-new-campaign").await;
    b.click("#c-submit-start").await;
    b.wait_text("#campaign-meta", "the campaign's facts", |t| {
        t.contains("sensor-fw 2.0.0")
    })
    .await;
    b.wait_text("main .title-row", "the RUNNING state", |t| {
        t.contains("RUNNING")
    })
    .await;
    // The engine's tick releases the first wave (2 devices); the second waits for 50 %.
    b.wait_text(&card("ongoing"), "2 ongoing", |t| t == "2")
        .await;
    b.wait_text(&card("not_started"), "2 not started", |t| t == "2")
        .await;
    b.wait_text("#waves", "the waves", |t| {
        t.contains("when 50 % of the earlier waves are updated") && t.contains("60 %")
    })
    .await;
    b.shot("06-campaign-started").await;

    // Devices report: the cards follow without reloading the page.
    let released: Vec<_> = {
        let mut out = Vec::new();
        for d in &devices {
            if host.state(d).await == Some(UpdateState::Initiated) {
                out.push(d.clone());
            }
        }
        out
    };
    assert_eq!(released.len(), 2, "the first wave holds two devices");
    for d in &released {
        host.report(d, r#"{"fw_state":"DOWNLOADING","fw_progress":40}"#)
            .await;
        host.report(d, r#"{"fw_state":"DOWNLOADED"}"#).await;
        host.report(d, r#"{"fw_state":"VERIFIED"}"#).await;
        host.report(d, r#"{"fw_state":"UPDATING"}"#).await;
        host.report(
            d,
            r#"{"fw_state":"UPDATED","current_fw_title":"sensor-fw","current_fw_version":"2.0.0"}"#,
        )
        .await;
        assert_eq!(host.state(d).await, Some(UpdateState::Updated));
    }
    b.wait_text(&card("successful"), "2 successful", |t| t == "2")
        .await;
    // 2 of 2 updated passes the 50 % rule: the second wave is released.
    b.wait_text(&card("ongoing"), "the second wave ongoing", |t| t == "2")
        .await;
    b.wait_text(&card("not_started"), "none left", |t| t == "0")
        .await;
    let second: Vec<_> = {
        let mut out = Vec::new();
        for d in &devices {
            if host.state(d).await == Some(UpdateState::Initiated) {
                out.push(d.clone());
            }
        }
        out
    };
    assert_eq!(second.len(), 2);
    let (failing, stuck) = (&second[0], &second[1]);
    host.report(
        failing,
        r#"{"fw_state":"FAILED","fw_error":"checksum mismatch"}"#,
    )
    .await;
    host.report(stuck, r#"{"fw_state":"DOWNLOADING","fw_progress":30}"#)
        .await;
    b.wait_text(&card("failed"), "1 failed", |t| t == "1").await;
    b.wait_text(&card("ongoing"), "1 ongoing", |t| t == "1")
        .await;
    b.wait_text("#chart", "the chart", |t| {
        t.contains("Successful: 2") && t.contains("Failed: 1")
    })
    .await;
    b.shot("07-devices-reported").await;

    // Cancel the stuck device from its row (after confirming).
    let row = format!("tr[data-device=\"{}\"]", stuck.name);
    b.wait_text(&row, "its DOWNLOADING row", |t| {
        t.contains("DOWNLOADING") && t.contains("30 %")
    })
    .await;
    b.click(&format!("{row} button[data-act=cancel]")).await;
    b.click("dialog button[data-confirm]").await;
    b.wait_text(&card("canceled"), "1 canceled", |t| t == "1")
        .await;
    b.wait_text(&card("ongoing"), "none ongoing", |t| t == "0")
        .await;
    assert_eq!(host.state(stuck).await, Some(UpdateState::Canceled));
    b.wait_text("#messages", "the confirmation", |t| {
        t.contains("Canceled the update")
    })
    .await;
    b.shot("08-device-canceled").await;

    // A status card filters the device table; a device's history opens in a dialog.
    b.click("[data-card=failed]").await;
    let failed_row = format!("tr[data-device=\"{}\"]", failing.name);
    b.wait_text("#device-table", "only the failed device", |t| {
        t.contains(&failing.name) && !t.contains(&stuck.name)
    })
    .await;
    b.wait_text(&failed_row, "the error", |t| {
        t.contains("checksum mismatch")
    })
    .await;
    b.click(&format!("{failed_row} button[aria-label^=History]"))
        .await;
    b.wait_text("dialog", "the history", |t| {
        t.contains("FAILED") && t.contains("INITIATED")
    })
    .await;
    b.shot("09-device-history").await;
    b.click("dialog .dialog-head button").await;
    b.wait_js("!document.querySelector('dialog')", "the dialog closed")
        .await;

    // Devices: current, target and effective versions.
    b.click("nav a[data-section=devices]").await;
    let updated_row = format!("tr[data-device=\"{}\"]", released[0].name);
    b.wait_text(&updated_row, "its versions", |t| {
        t.contains("sensor-fw 2.0.0")
    })
    .await;
    b.wait_text(
        &format!("tr[data-device=\"{}\"]", stuck.name),
        "the canceled target",
        |t| t.contains("sensor-fw 1.0.0") && t.contains("CANCELED"),
    )
    .await;
    b.shot("10-devices").await;

    // The audit log names the key for every action.
    b.click("nav a[data-section=audit]").await;
    b.wait_text("#audit-list", "the campaign's actions", |t| {
        t.contains("campaign.start")
            && t.contains("package.upload")
            && t.contains("api-key:dashboard-admin")
    })
    .await;
    b.shot("11-audit").await;

    // Keyboard: navigating moves the focus to the page's heading; Tab reaches "New
    // campaign" and Enter opens the form.
    b.click("nav a[data-section=campaigns]").await;
    b.wait_js(
        "document.activeElement === document.querySelector('main h1') && document.activeElement.textContent === 'Campaigns'",
        "the focus on the heading",
    )
    .await;
    let new_link = "document.activeElement.matches('a[href=\"#/campaigns/new\"]')";
    for _ in 0..10 {
        if b.js(&format!("return {new_link};")).await == serde_json::Value::Bool(true) {
            break;
        }
        b.press(fantoccini::key::Key::Tab).await;
    }
    b.wait_js(new_link, "Tab reaches the New campaign link")
        .await;
    b.press(fantoccini::key::Key::Enter).await;
    b.wait_text("main h1", "the form", |t| t == "New campaign")
        .await;

    // A draft over an explicit device list (unknown names are reported), then edited.
    b.type_into("#c-name", "Listed").await;
    b.find("#c-package")
        .await
        .select_by_label("sensor-fw 2.0.0 (firmware)")
        .await
        .unwrap();
    b.click("#c-target-list").await;
    b.type_into("#c-devices", &format!("{}\nnobody", failing.name))
        .await;
    b.click("#c-submit").await;
    b.wait_text("#messages", "the device list report", |t| {
        t.contains("Device list: 1 taken, 1 skipped") && t.contains("line 3 nobody")
    })
    .await;
    b.wait_text("main .title-row", "the draft", |t| {
        t.contains("Listed") && t.contains("DRAFT")
    })
    .await;
    b.wait_text("#device-table", "what a draft shows", |t| {
        t.contains("chosen when the campaign starts")
    })
    .await;
    b.click("#campaign-actions a[href$=\"/edit\"]").await;
    b.wait_js(
        "document.querySelector('#c-name') && document.querySelector('#c-name').value === 'Listed' && document.querySelector('#c-target-list').checked",
        "the form filled with the draft",
    )
    .await;
    b.type_into("#c-name", "Listed again").await;
    b.click("#c-submit").await;
    b.wait_text("main .title-row", "the new name", |t| {
        t.contains("Listed again")
    })
    .await;

    // A narrow window: nothing wider than the window, the cards and tables still readable.
    b.client.set_window_size(420, 900).await.unwrap();
    b.client
        .goto(&format!("{}/#/campaigns", host.base))
        .await
        .unwrap();
    b.find("tr[data-name=\"Rollout 2.0\"] a")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text(&card("successful"), "the cards", |t| t == "2")
        .await;
    b.wait_js(
        "document.documentElement.scrollWidth <= window.innerWidth + 1",
        "no sideways scrolling in a narrow window",
    )
    .await;
    b.shot("12-narrow").await;

    // Log out: the key leaves the session.
    b.click("#logout").await;
    b.find("#api-key").await;
    b.wait_js(
        "sessionStorage.getItem('ota-dashboard.api-key') === null",
        "the key is gone",
    )
    .await;
    b.close().await;
    host.stop();
}
