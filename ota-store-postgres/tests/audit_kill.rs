//! Audit entries commit with their action, across a crash: a child process runs management
//! actions through the engine in a loop (create a profile, rename it, create a group, delete
//! it, create a device, assign a package, cancel and retry the device's update, unassign;
//! run a campaign whose update fails and retry its failed devices; a scheduled assignment run
//! by a tick) and the test kills it (SIGKILL) at random moments, several times. Before audit
//! entries were written with their action, the engine wrote the action, then the entry in a
//! second step: a kill in between left an action without its entry.
//!
//! Afterwards, both ways: every action's effect has its entry (each profile, group and device
//! that exists was logged as created, a profile's name is the one its last logged rename gave
//! it, a deleted group was logged as deleted, each operator cancel and retry in an update's
//! history was logged for that update, each assignment left was logged), and every entry's
//! action took effect (each logged profile, group and device exists unless its deletion is
//! logged too, a group logged as deleted is gone, each logged cancel and retry is in the
//! update's history, a logged scheduled run's event has run).

use chrono::Utc;
use ota_core::assignment::AssignmentTarget;
use ota_core::audit::AuditEntry;
use ota_core::engine::{Ota, OtaConfig};
use ota_core::notifier::RecordingNotifier;
use ota_core::schedule::{Recurrence, Repeat, ScheduledAction};
use ota_core::store::{
    AuditStore, DeviceSelector, DeviceStore, PageRequest, ScheduleStore, UpdateFilter, UpdateStore,
    MAX_PAGE_SIZE,
};
use ota_core::update::{EventSource, HistoryOutcome};
use ota_core::wire::DeviceReport;
use ota_core::{
    CampaignSpec, CampaignTarget, NewPackage, PackageKind, SystemClock, TenantId, UpdateState,
};
use ota_store_postgres::testing::{fresh_database, TestDatabase};
use ota_store_postgres::PgStore;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const CHILD_ENV: &str = "OTA_AUDIT_KILL_CHILD";
const KILLS: usize = 6;
const ACTOR: &str = "kill-test";

/// The process that runs management actions until it is killed. Started by the test below,
/// never on its own (ignored, and returns at once without its environment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a process started by audit_entries_and_actions_survive_kills_together"]
async fn audit_kill_actions_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.split(' ');
    let (url, schema, tenant, round) = (
        parts.next().unwrap().to_string(),
        parts.next().unwrap().to_string(),
        parts.next().unwrap().parse::<TenantId>().unwrap(),
        parts.next().unwrap().to_string(),
    );
    // Named, so that the test waits for these connections to end after a kill.
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}application_name={}", app_name(&schema));
    let db = TestDatabase { url, schema };
    let store = PgStore::connect(db.options()).await.unwrap();
    let ota = Ota::new(
        Arc::new(store),
        Arc::new(RecordingNotifier::new()),
        Arc::new(SystemClock),
        OtaConfig::default(),
    );
    let package = ota
        .create_external_package(
            ACTOR,
            NewPackage::new(tenant, PackageKind::Firmware, "fw", round.to_string()),
            "https://example.com/fw.bin",
        )
        .await
        .unwrap();
    for i in 0.. {
        if i == 1 {
            // Tell the parent a whole iteration ran (it kills only from then on).
            println!("ready");
        }
        let profile = ota
            .create_profile(ACTOR, tenant, &format!("p-{round}-{i}"))
            .await
            .unwrap();
        if i % 2 == 0 {
            ota.rename_profile(ACTOR, tenant, profile.id, &format!("r-{round}-{i}"))
                .await
                .unwrap();
        }
        let group = ota
            .create_group(ACTOR, tenant, &format!("g-{round}-{i}"))
            .await
            .unwrap();
        if i % 3 == 0 {
            ota.delete_group(ACTOR, tenant, group.id).await.unwrap();
        }
        let device = ota.new_device(
            tenant,
            &format!("d-{round}-{i}"),
            profile.id,
            BTreeSet::new(),
            "",
        );
        ota.create_devices(ACTOR, std::slice::from_ref(&device))
            .await
            .unwrap();
        let target = AssignmentTarget::Profile(profile.id);
        ota.assign(ACTOR, tenant, target, package.id).await.unwrap();
        // The device's update: canceled and retried by an operator.
        ota.cancel_update(ACTOR, tenant, device.id, PackageKind::Firmware, "kill test")
            .await
            .unwrap();
        ota.retry_update(ACTOR, tenant, device.id, PackageKind::Firmware)
            .await
            .unwrap();
        ota.unassign(ACTOR, tenant, PackageKind::Firmware, target)
            .await
            .unwrap();
        // A campaign whose update fails, and the retry of its failed devices.
        let spec = CampaignSpec::new(
            format!("c-{round}-{i}"),
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
        let failed = DeviceReport {
            kind: PackageKind::Firmware,
            ts: None,
            state: Some(UpdateState::Failed),
            current_title: None,
            current_version: None,
            error: Some("flash error".into()),
            progress: None,
        };
        ota.handle_report(tenant, device.id, &failed).await.unwrap();
        ota.retry_failed_in_campaign(ACTOR, tenant, campaign.id)
            .await
            .unwrap();
        ota.stop_campaign(ACTOR, tenant, campaign.id).await.unwrap();
        // A scheduled assignment of the profile, run by a tick.
        let start = (Utc::now() - chrono::Duration::minutes(1)).naive_utc();
        let once = Recurrence::new(start, "UTC", Repeat::Once, None).unwrap();
        let action = ScheduledAction::Assign {
            target,
            package_id: package.id,
        };
        ota.create_schedule(ACTOR, tenant, &format!("s-{round}-{i}"), once, action)
            .await
            .unwrap();
        ota.tick().await.unwrap();
    }
}

/// The `application_name` of the actions process's connections.
fn app_name(schema: &str) -> String {
    let tail: String = schema.chars().rev().take(24).collect();
    format!("audit-kill-{}", tail.chars().rev().collect::<String>())
}

/// Waits until the killed process's connections are gone: a statement it sent before the kill
/// may still commit on the server, and the checks must see the final state.
async fn wait_for_backends(db: &TestDatabase) {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .unwrap();
    for _ in 0..600 {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
                .bind(app_name(&db.schema))
                .fetch_one(&pool)
                .await
                .unwrap();
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the killed process's connections did not end");
}

/// A small xorshift generator: the kill times, reproducible from the printed seed.
struct Random(u64);

impl Random {
    fn millis(&mut self, from: u64, to: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(from + self.0 % (to - from))
    }
}

fn spawn(db: &TestDatabase, tenant: TenantId, round: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "audit_kill_actions_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{} {} {tenant} {round}", db.url, db.schema),
        )
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the actions process")
}

/// Waits (in a blocking thread) for the child's "ready" line; `false` when it never came.
async fn ready(child: &mut Child) -> bool {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("piped stdout");
    tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let seen = lines.any(|l| l.is_ok_and(|l| l.contains("ready")));
        // Keep draining so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        seen
    })
    .await
    .unwrap()
}

async fn audit_log(store: &PgStore, tenant: TenantId) -> Vec<AuditEntry> {
    let mut all = Vec::new();
    let mut page = PageRequest::first(MAX_PAGE_SIZE);
    loop {
        let got = store.list_audit(tenant, page).await.unwrap();
        all.extend(got.items);
        match got.next {
            Some(next) => page = next,
            None => return all,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_entries_and_actions_survive_kills_together() {
    let db = fresh_database().await;
    let store = PgStore::connect(db.options()).await.unwrap();
    let tenant = TenantId::new();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("audit kill seed {seed}");
    let mut random = Random(seed);
    for round in 0..KILLS {
        let mut child = spawn(&db, tenant, round);
        let ran = tokio::time::timeout(Duration::from_secs(120), ready(&mut child)).await;
        assert!(matches!(ran, Ok(true)), "the actions process did not start");
        tokio::time::sleep(random.millis(30, 700)).await;
        assert!(
            child.try_wait().unwrap().is_none(),
            "the actions process ended before it was killed"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        wait_for_backends(&db).await;
    }

    let log = audit_log(&store, tenant).await;
    // What the log says happened.
    let mut profile_names: BTreeMap<String, String> = BTreeMap::new(); // target -> name
    let mut groups_created: BTreeSet<String> = BTreeSet::new();
    let mut groups_deleted: BTreeSet<String> = BTreeSet::new();
    let mut devices_logged: BTreeSet<String> = BTreeSet::new();
    let (mut assigned, mut unassigned) = (0u32, 0u32);
    for e in &log {
        match e.action.as_str() {
            "profile.create" => {
                let name = e.details["name"].as_str().unwrap().to_string();
                profile_names.insert(e.target.clone(), name);
            }
            "profile.rename" => {
                let to = e.details["to"].as_str().unwrap().to_string();
                let known = profile_names.insert(e.target.clone(), to);
                assert!(known.is_some(), "a rename of a profile never logged: {e:?}");
            }
            "group.create" => {
                groups_created.insert(e.target.clone());
            }
            "group.delete" => {
                groups_deleted.insert(e.target.clone());
            }
            "device.create" => {
                for n in e.details["names"].as_array().unwrap() {
                    devices_logged.insert(n.as_str().unwrap().to_string());
                }
            }
            "assignment.set" => assigned += 1,
            "assignment.remove" => unassigned += 1,
            _ => {}
        }
    }
    assert!(
        profile_names.len() >= KILLS,
        "the process should have done some work in each round: {} profiles",
        profile_names.len()
    );

    // Profiles: the store and the log agree on each one and its name.
    let mut stored_profiles = BTreeMap::new();
    let mut page = PageRequest::first(MAX_PAGE_SIZE);
    loop {
        let got = store.list_profiles(tenant, page).await.unwrap();
        for p in got.items {
            stored_profiles.insert(format!("profile {}", p.id), p.name);
        }
        match got.next {
            Some(next) => page = next,
            None => break,
        }
    }
    assert_eq!(
        stored_profiles, profile_names,
        "profiles and their names as stored = as the audit log tells"
    );

    // Groups: those logged as created and not deleted exist, and no other.
    let mut stored_groups = BTreeSet::new();
    let mut page = PageRequest::first(MAX_PAGE_SIZE);
    loop {
        let got = store.list_groups(tenant, page).await.unwrap();
        stored_groups.extend(got.items.iter().map(|g| format!("group {}", g.id)));
        match got.next {
            Some(next) => page = next,
            None => break,
        }
    }
    assert!(groups_deleted.is_subset(&groups_created));
    let live: BTreeSet<String> = groups_created
        .difference(&groups_deleted)
        .cloned()
        .collect();
    assert_eq!(
        stored_groups, live,
        "groups as stored = as the audit log tells"
    );

    // Devices: the logged ones exist, and no other.
    let mut stored_devices = BTreeSet::new();
    let mut page = PageRequest::first(MAX_PAGE_SIZE);
    loop {
        let got = store
            .list_devices(tenant, DeviceSelector::All, page)
            .await
            .unwrap();
        stored_devices.extend(got.items.into_iter().map(|d| d.name));
        match got.next {
            Some(next) => page = next,
            None => break,
        }
    }
    assert_eq!(
        stored_devices, devices_logged,
        "devices as stored = as the audit log tells"
    );

    // Assignments: at most one left (a kill between assign and unassign), and then the log
    // has one more assign than unassign.
    let left = ota_core::store::AssignmentStore::list_assignments(&store, tenant, None)
        .await
        .unwrap();
    assert_eq!(
        u32::try_from(left.len()).unwrap(),
        assigned - unassigned,
        "assignments left = assignments logged - removals logged"
    );
    // Operator cancels and retries: those in the updates' history = those logged, per update.
    let (logged_ops, kinds) = logged_update_actions(&log);
    let done_ops = operator_history(&store, tenant).await;
    assert_eq!(
        done_ops, logged_ops,
        "operator cancels and retries per update: history = audit log"
    );
    for kind in ["update.cancel", "update.retry", "campaign.retry_failed"] {
        assert!(
            kinds.get(kind).is_some_and(|n| *n > 0),
            "the process should have logged some {kind}: {kinds:?}"
        );
    }

    // Scheduled runs: a logged run's event has run (its occurrence taken first), and every
    // run that took effect succeeded (no failure report).
    let mut ran = BTreeMap::new();
    let mut page = PageRequest::first(MAX_PAGE_SIZE);
    loop {
        let got = store.list_schedules(tenant, page).await.unwrap();
        for e in got.items {
            ran.insert(serde_json::json!(e.id).to_string(), e.last_run.is_some());
        }
        match got.next {
            Some(next) => page = next,
            None => break,
        }
    }
    let scheduled: Vec<&AuditEntry> = log
        .iter()
        .filter(|e| e.action == "assignment.set" && !e.details["schedule"].is_null())
        .collect();
    assert!(
        !scheduled.is_empty(),
        "the process should have run schedules"
    );
    for e in &scheduled {
        assert_eq!(
            ran.get(&e.details["schedule"]["event"].to_string()),
            Some(&true),
            "a logged scheduled run of an event that has not run: {e:?}"
        );
    }
    assert!(
        !log.iter().any(|e| e.action == "schedule.run"),
        "no scheduled run failed"
    );
    eprintln!(
        "audit kill: operator actions {kinds:?}, {} scheduled runs",
        scheduled.len()
    );

    eprintln!(
        "audit kill: {} entries, {} profiles, {} groups, {} devices, {KILLS} kills",
        log.len(),
        stored_profiles.len(),
        stored_groups.len(),
        stored_devices.len()
    );
}

/// Operator cancels and retries of updates as the log tells, counted per (update, event),
/// and how many entries of each action.
fn logged_update_actions(
    log: &[AuditEntry],
) -> (BTreeMap<(String, String), u32>, BTreeMap<String, u32>) {
    let mut per_update = BTreeMap::new();
    let mut kinds = BTreeMap::new();
    for e in log {
        let event = match e.action.as_str() {
            "update.cancel" => "cancel",
            "update.retry" | "campaign.retry_failed" => "retry",
            _ => continue,
        };
        // A retry of a campaign's failed devices that found none is logged without an update.
        if e.details["update"].is_null() {
            continue;
        }
        *kinds.entry(e.action.clone()).or_default() += 1;
        *per_update
            .entry((e.details["update"].to_string(), event.to_string()))
            .or_default() += 1;
    }
    (per_update, kinds)
}

/// Operator events applied to the tenant's updates, as their history tells, counted per
/// (update, event).
async fn operator_history(store: &PgStore, tenant: TenantId) -> BTreeMap<(String, String), u32> {
    let mut done = BTreeMap::new();
    let mut page = PageRequest::first(MAX_PAGE_SIZE);
    loop {
        let got = store
            .list_updates(tenant, &UpdateFilter::default(), page)
            .await
            .unwrap();
        for u in &got.items {
            for h in store.update_history(tenant, u.id).await.unwrap() {
                if h.source == EventSource::Operator && h.outcome == HistoryOutcome::Applied {
                    let key = (serde_json::json!(u.id).to_string(), h.event.clone());
                    *done.entry(key).or_default() += 1;
                }
            }
        }
        match got.next {
            Some(next) => page = next,
            None => return done,
        }
    }
}
