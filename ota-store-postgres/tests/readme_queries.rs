//! The operator queries of the README ("Reading the database") run against a schema
//! populated through the engine, and find what they are meant to find. The queries are
//! taken from the README itself, so that what operators copy is what was tested.

mod common;

use common::*;
use ota_core::campaign::{CampaignSpec, CampaignTarget};
use ota_core::engine::{Ota, OtaConfig};
use ota_core::notifier::Notice;
use ota_core::store::{DeviceStore, NoticeLease, NoticeOutbox, OutboxEntry};
use ota_core::wire::DeviceReport;
use ota_core::{Clock, ManualClock, PackageKind, TenantId, UpdateState};
use ota_store_postgres::testing::fresh_store;
use sqlx::postgres::PgRow;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The ```sql blocks of the README's "Reading the database" section: (title, query), the
/// title being the block's first line without `-- `.
fn readme_queries() -> Vec<(String, String)> {
    let readme = include_str!("../README.md");
    let start = readme
        .find("## Reading the database")
        .expect("the README has the section");
    let section = &readme[start + 3..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut queries = Vec::new();
    let mut rest = section;
    while let Some(open) = rest.find("```sql\n") {
        let body = &rest[open + 7..];
        let close = body.find("```").expect("a closed block");
        let sql = body[..close].trim().to_string();
        let title = sql
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("-- "))
            .expect("a block starts with a comment naming it")
            .to_string();
        queries.push((title, sql));
        rest = &body[close + 3..];
    }
    queries
}

/// `sql` with psql's `:'name'` variables replaced by quoted literals.
fn substitute(sql: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = sql.to_string();
    for (name, value) in vars {
        out = out.replace(
            &format!(":'{name}'"),
            &format!("'{}'", value.replace('\'', "''")),
        );
    }
    assert!(!out.contains(":'"), "an unknown variable in {sql}");
    out
}

fn text(row: &PgRow, column: &str) -> String {
    row.try_get::<Option<String>, _>(column)
        .unwrap()
        .unwrap_or_default()
}

fn report(state: UpdateState, progress: Option<u8>) -> DeviceReport {
    DeviceReport {
        kind: PackageKind::Firmware,
        ts: None,
        state: Some(state),
        current_title: None,
        current_version: None,
        error: None,
        progress,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_queries_run_and_find_what_they_describe() {
    let store = fresh_store().await;
    let clock = Arc::new(ManualClock::at_epoch_2024());
    let (_, notifier) = recorder();
    let ota = Ota::new(
        Arc::new(store.clone()),
        notifier,
        clock.clone(),
        OtaConfig::default(),
    );
    let tenant = TenantId::new();
    // Six devices in a running campaign: one updated, one downloading (no timeout in that
    // state), four notified and never answering (their INITIATED timeout passes).
    let (profile, package) = fleet_without_assignment(&ota, tenant, 6).await;
    let spec = CampaignSpec::new(
        "spring rollout",
        package.id,
        CampaignTarget::Selection {
            profile: Some(profile.id),
            groups: BTreeSet::new(),
            source_versions: BTreeSet::new(),
        },
    );
    let campaign = ota.create_campaign(ACTOR, tenant, spec).await.unwrap();
    ota.start_campaign(ACTOR, tenant, campaign.id)
        .await
        .unwrap();
    ota.tick().await.unwrap();
    let devices = store
        .find_devices_by_name(
            tenant,
            &(0..6).map(|i| format!("dev-{i}")).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let id_of = |name: &str| devices.iter().find(|d| d.name == name).unwrap().id;
    ota.handle_report(tenant, id_of("dev-0"), &installed())
        .await
        .unwrap();
    ota.handle_report(
        tenant,
        id_of("dev-1"),
        &report(UpdateState::Downloading, Some(40)),
    )
    .await
    .unwrap();
    // A notice an instance that died was delivering, its lease lapsed.
    let stranded = OutboxEntry::new(
        Notice::Withdrawal {
            tenant_id: tenant,
            device_id: id_of("dev-5"),
            kind: PackageKind::Software,
            keys: vec!["sw_title".into()],
        },
        clock.now(),
    );
    store
        .enqueue_notice(
            &stranded,
            Some(&NoticeLease {
                owner: "instance-that-died".into(),
                until: clock.now() + chrono::Duration::seconds(30),
            }),
        )
        .await
        .unwrap();
    // A campaign marked ended while updates of it are unfinished: what the last query finds.
    sqlx::query("UPDATE ota_campaigns SET state = 'STOPPED' WHERE id = $1")
        .bind(campaign.id.0)
        .execute(store.pool())
        .await
        .unwrap();

    let vars = BTreeMap::from([
        ("campaign", campaign.id.0.to_string()),
        ("device", "dev-1".to_string()),
    ]);
    let queries = readme_queries();
    let mut results: BTreeMap<String, Vec<PgRow>> = BTreeMap::new();
    for (title, sql) in &queries {
        let rows = sqlx::query(&substitute(sql, &vars))
            .fetch_all(store.pool())
            .await
            .unwrap_or_else(|e| panic!("README query {title:?} fails: {e}\n{sql}"));
        results.insert(title.clone(), rows);
    }
    let rows = |prefix: &str| -> &Vec<PgRow> {
        results
            .iter()
            .find(|(t, _)| t.starts_with(prefix))
            .unwrap_or_else(|| panic!("no README query titled {prefix:?}"))
            .1
    };

    let campaigns = rows("Campaigns");
    assert_eq!(campaigns.len(), 1);
    assert_eq!(text(&campaigns[0], "name"), "spring rollout");

    let per_state: BTreeMap<String, i64> = rows("Devices per state")
        .iter()
        .map(|r| (text(r, "state"), r.get("devices")))
        .collect();
    assert_eq!(
        per_state,
        BTreeMap::from([
            ("INITIATED".into(), 4),
            ("DOWNLOADING".into(), 1),
            ("UPDATED".into(), 1)
        ])
    );
    let per_wave: i64 = rows("The same per wave")
        .iter()
        .map(|r| r.get::<i64, _>("devices"))
        .sum();
    assert_eq!(per_wave, 6);

    let updates = rows("A device's updates");
    assert_eq!(updates.len(), 1);
    assert_eq!(text(&updates[0], "state"), "DOWNLOADING");
    assert_eq!(text(&updates[0], "campaign"), "spring rollout");
    let history = rows("A device's history");
    assert!(history.len() >= 2, "{} history rows", history.len());
    assert_eq!(text(history.last().unwrap(), "to_state"), "DOWNLOADING");

    // The clock stood in 2024: every timeout set then is long overdue.
    let overdue: BTreeSet<String> = rows("Overdue").iter().map(|r| text(r, "device")).collect();
    assert_eq!(
        overdue,
        ["dev-2", "dev-3", "dev-4", "dev-5"]
            .map(String::from)
            .into()
    );
    assert!(rows("Overdue")
        .iter()
        .all(|r| text(r, "state") == "INITIATED"
            && r.get::<Option<sqlx::postgres::types::PgInterval>, _>("campaign_timeout")
                .is_some()));
    let silent: Vec<String> = rows("Silent").iter().map(|r| text(r, "device")).collect();
    assert_eq!(silent, vec!["dev-1".to_string()]);

    let undelivered = rows("Undelivered notices");
    assert_eq!(undelivered.len(), 1);
    assert_eq!(text(&undelivered[0], "device"), "dev-5");
    assert_eq!(text(&undelivered[0], "notice"), "withdrawal");
    let leases = rows("Claims held past their lease");
    assert!(leases
        .iter()
        .any(|r| text(r, "lease_owner") == "instance-that-died"));

    let ended: BTreeMap<String, i64> = rows("Ended campaigns")
        .iter()
        .map(|r| (text(r, "update_state"), r.get("updates")))
        .collect();
    assert_eq!(
        ended,
        BTreeMap::from([("DOWNLOADING".into(), 1), ("INITIATED".into(), 4)])
    );
    assert!(!rows("The latest management actions").is_empty());
    assert_eq!(
        queries.len(),
        results.len(),
        "README query titles are distinct"
    );
    assert_eq!(queries.len(), 11, "a README query was added: check it here");
    store.close().await;
}
