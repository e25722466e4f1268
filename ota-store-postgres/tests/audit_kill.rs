//! Audit entries commit with their action, across a crash: a child process runs management
//! actions through the engine in a loop (create a profile, rename it, create a group, delete
//! it, create a device, assign and unassign a package) and the test kills it (SIGKILL) at
//! random moments, several times. Before audit entries were written with their action, the
//! engine wrote the action, then the entry in a second step: a kill in between left an action
//! without its entry.
//!
//! Afterwards, both ways: every action's effect has its entry (each profile, group and device
//! that exists was logged as created, a profile's name is the one its last logged rename gave
//! it, a deleted group was logged as deleted), and every entry's action took effect (each
//! logged profile, group and device exists unless its deletion is logged too, and a group
//! logged as deleted is gone).

use ota_core::assignment::AssignmentTarget;
use ota_core::audit::AuditEntry;
use ota_core::engine::{Ota, OtaConfig};
use ota_core::notifier::RecordingNotifier;
use ota_core::store::{AuditStore, DeviceSelector, DeviceStore, PageRequest, MAX_PAGE_SIZE};
use ota_core::{NewPackage, PackageKind, SystemClock, TenantId};
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
    // Tell the parent the loop runs (it kills only from then on).
    println!("ready");
    for i in 0.. {
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
        ota.create_devices(ACTOR, &[device]).await.unwrap();
        let target = AssignmentTarget::Profile(profile.id);
        ota.assign(ACTOR, tenant, target, package.id).await.unwrap();
        ota.unassign(ACTOR, tenant, PackageKind::Firmware, target)
            .await
            .unwrap();
    }
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
    eprintln!(
        "audit kill: {} entries, {} profiles, {} groups, {} devices, {KILLS} kills",
        log.len(),
        stored_profiles.len(),
        stored_groups.len(),
        stored_devices.len()
    );
}
