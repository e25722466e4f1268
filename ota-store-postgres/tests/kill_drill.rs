//! The kill drill: two engine processes on one PostgreSQL drive a campaign of 5,000 devices
//! while the test kills one of them (SIGKILL) at random moments, at least five times, and
//! starts it again under the same instance id. Simulated devices take their notices from a
//! table the engines' notifier writes to (the "transport") and report through an engine of
//! their own that is never killed.
//!
//! Afterwards: every device is UPDATED, every release reached its device (no notice lost),
//! the outbox is empty, a device told twice was told first by a process that was killed (a
//! notice in flight at the kill), the campaign's counters equal a recount, and no update is
//! live under an ended campaign. The killed engine comes back under the same instance id, so
//! it takes back its claims at once instead of waiting out their leases.
// Core config structs are built from `Default` plus field assignment (they are becoming
// `#[non_exhaustive]`), which this lint would turn back into struct literals.
#![allow(clippy::field_reassign_with_default)]

mod common;

use common::*;
use futures::StreamExt;
use ota_core::campaign::{CampaignSpec, CampaignState, CampaignTarget};
use ota_core::engine::{Ota, OtaConfig};
use ota_core::notifier::{Notice, Notifier, NotifyError};
use ota_core::pacing::{Pacing, Rate};
use ota_core::store::{UpdateFilter, UpdateStore};
use ota_core::wire::DeviceReport;
use ota_core::{CampaignId, DeviceId, PackageKind, SystemClock, TenantId, UpdateState};
use ota_store_postgres::testing::{fresh_database, TestDatabase};
use ota_store_postgres::PgStore;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const DEVICES: usize = 5_000;
const RELEASES_PER_SECOND: u32 = 400;
const KILLS: usize = 6;
const CHILD_ENV: &str = "OTA_KILL_DRILL_CHILD";
/// The drill gives up after this long (a lost notice shows up as a stall long before).
const GIVE_UP: Duration = Duration::from_secs(80);
/// No device finishing for this long while some are not UPDATED is a stall.
const STALL: Duration = Duration::from_secs(12);

/// The transport of the drill: a notice is "delivered" when its row is in `drill_inbox`, with
/// the process that delivered it.
struct InboxNotifier {
    store: PgStore,
}

#[async_trait::async_trait]
impl Notifier for InboxNotifier {
    async fn notify(&self, notice: &Notice) -> Result<(), NotifyError> {
        if let Notice::Update { device_id, .. } = notice {
            sqlx::query("INSERT INTO drill_inbox (device_id, pid) VALUES ($1, $2)")
                .bind(device_id.0)
                .bind(std::process::id() as i32)
                .execute(self.store.pool())
                .await
                .map_err(|e| NotifyError {
                    message: e.to_string(),
                })?;
        }
        Ok(())
    }
}

fn child_config(name: &str) -> OtaConfig {
    let mut config = OtaConfig::default();
    config.instance_id = name.to_string();
    config.claim_batch = 200;
    config
}

/// One engine process: ticks every 50 ms until the campaign has ended (or it is killed).
/// Started by the drill below, never on its own (ignored, and returns at once without its
/// environment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "an engine process started by engines_killed_at_random_lose_no_notice"]
async fn kill_drill_engine_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.split(' ');
    let (url, schema, tenant, campaign, name) = (
        parts.next().unwrap().to_string(),
        parts.next().unwrap().to_string(),
        parts.next().unwrap().parse::<TenantId>().unwrap(),
        CampaignId(parts.next().unwrap().parse::<Uuid>().unwrap()),
        parts.next().unwrap().to_string(),
    );
    let db = TestDatabase { url, schema };
    let store = PgStore::connect(db.options().max_connections(6))
        .await
        .unwrap();
    let ota = Ota::new(
        Arc::new(store.clone()),
        Arc::new(InboxNotifier {
            store: store.clone(),
        }),
        Arc::new(SystemClock),
        child_config(&name),
    );
    loop {
        if let Err(e) = ota.tick().await {
            eprintln!("{name}: tick failed: {e}");
        }
        match ota.campaign(tenant, campaign).await {
            Ok(c) if c.state.is_ended() => return,
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A small xorshift generator: the drill's kill times, reproducible from the printed seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.next() % (to - from))
    }
}

fn report(state: UpdateState, installed: bool) -> DeviceReport {
    let mut r = DeviceReport {
        kind: PackageKind::Firmware,
        ts: None,
        state: Some(state),
        current_title: None,
        current_version: None,
        error: None,
        progress: None,
    };
    if installed {
        r.current_title = Some("fw".into());
        r.current_version = Some("2.0".into());
    }
    r
}

/// The devices' side: reports DOWNLOADING, then the new version installed.
async fn devices_answer(ota: &Ota, tenant: TenantId, notified: &[DeviceId]) {
    futures::stream::iter(notified.iter().copied())
        .map(|d| async move {
            ota.handle_report(tenant, d, &report(UpdateState::Downloading, false))
                .await?;
            ota.handle_report(tenant, d, &report(UpdateState::Updated, true))
                .await
        })
        .buffer_unordered(16)
        .for_each(|r| async move {
            r.expect("report accepted");
        })
        .await;
}

struct Engines {
    exe: std::path::PathBuf,
    env: String,
    children: Vec<(String, Child)>,
}

impl Engines {
    fn spawn(&self, name: &str) -> Child {
        Command::new(&self.exe)
            .args([
                "--exact",
                "kill_drill_engine_process",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, format!("{} {name}", self.env))
            .stdout(Stdio::null())
            .spawn()
            .expect("start an engine process")
    }
}

impl Drop for Engines {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn count(store: &PgStore, tenant: TenantId, filter: UpdateFilter) -> u64 {
    store.count_updates(Some(tenant), &filter).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_killed_at_random_lose_no_notice() {
    let db = fresh_database().await;
    let store = PgStore::connect(db.options().max_connections(8))
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE drill_inbox (seq bigserial PRIMARY KEY, device_id uuid NOT NULL,
            pid int NOT NULL, taken boolean NOT NULL DEFAULT false)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let (_, notifier) = recorder();
    let mut devices_config = OtaConfig::default();
    devices_config.instance_id = "devices".into();
    let devices = Ota::new(
        Arc::new(store.clone()),
        notifier,
        Arc::new(SystemClock),
        devices_config,
    );
    let tenant = TenantId::new();
    let (profile, package) = fleet_without_assignment(&devices, tenant, DEVICES).await;
    let mut spec = CampaignSpec::new(
        "kill drill",
        package.id,
        CampaignTarget::Selection {
            profile: Some(profile.id),
            groups: BTreeSet::new(),
            source_versions: BTreeSet::new(),
        },
    );
    let mut pacing = Pacing::default();
    pacing.rate = Some(Rate::new(RELEASES_PER_SECOND, chrono::Duration::seconds(1)).unwrap());
    spec.pacing = pacing;
    let campaign = devices.create_campaign(ACTOR, tenant, spec).await.unwrap();
    devices
        .start_campaign(ACTOR, tenant, campaign.id)
        .await
        .unwrap();

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill drill seed {seed}");
    let mut random = Random(seed);
    let mut engines = Engines {
        exe: std::env::current_exe().unwrap(),
        env: format!("{} {} {tenant} {}", db.url, db.schema, campaign.id.0),
        children: Vec::new(),
    };
    for name in ["drill-a", "drill-b"] {
        let child = engines.spawn(name);
        engines.children.push((name.to_string(), child));
    }

    let started = Instant::now();
    let mut killed: HashSet<i32> = HashSet::new();
    let mut next_kill = started + random.millis(700, 2_000);
    let mut updated = 0u64;
    let mut last_progress = Instant::now();
    let ended = loop {
        // Sequence numbers commit out of order: rows are taken by a flag, not by position.
        let notified: Vec<DeviceId> = sqlx::query_scalar(
            "UPDATE drill_inbox SET taken = true WHERE seq IN (
                SELECT seq FROM drill_inbox WHERE NOT taken ORDER BY seq LIMIT 2000)
             RETURNING device_id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap()
        .into_iter()
        .map(DeviceId)
        .collect();
        devices_answer(&devices, tenant, &notified).await;

        if killed.len() < KILLS && Instant::now() >= next_kill {
            let i = (random.next() % engines.children.len() as u64) as usize;
            let (name, child) = &mut engines.children[i];
            killed.insert(child.id() as i32);
            child.kill().expect("SIGKILL an engine process");
            child.wait().unwrap();
            eprintln!("{:?}: killed {name}", started.elapsed());
            let name = name.clone();
            engines.children[i].1 = engines.spawn(&name);
            next_kill = Instant::now() + random.millis(700, 2_000);
        }

        let c = devices.campaign(tenant, campaign.id).await.unwrap();
        if c.state.is_ended() {
            break Some(c.state);
        }
        let now_updated = count(&store, tenant, UpdateFilter::in_state(UpdateState::Updated)).await;
        if now_updated > updated {
            updated = now_updated;
            last_progress = Instant::now();
        }
        if last_progress.elapsed() > STALL || started.elapsed() > GIVE_UP {
            eprintln!(
                "{:?}: no progress ({updated} of {DEVICES} updated)",
                started.elapsed()
            );
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "{:?}: campaign {ended:?} after {} kills",
        started.elapsed(),
        killed.len()
    );
    // The engines stop by themselves once the campaign ended.
    for (_, child) in &mut engines.children {
        if ended.is_none() {
            let _ = child.kill();
        }
        child.wait().unwrap();
    }
    engines.children.clear();

    // Every release reached its device.
    let deliveries: Vec<(Uuid, i32)> =
        sqlx::query_as("SELECT device_id, pid FROM drill_inbox ORDER BY seq")
            .fetch_all(store.pool())
            .await
            .unwrap();
    let mut told: HashMap<Uuid, Vec<i32>> = HashMap::new();
    for (d, pid) in deliveries {
        told.entry(d).or_default().push(pid);
    }
    let released: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT update_id FROM ota_history WHERE tenant_id = $1
         AND doc->>'to' = 'INITIATED'",
    )
    .bind(tenant.0)
    .fetch_all(store.pool())
    .await
    .unwrap();
    let released_devices: Vec<Uuid> =
        sqlx::query_scalar("SELECT device_id FROM ota_updates WHERE id = ANY($1)")
            .bind(&released)
            .fetch_all(store.pool())
            .await
            .unwrap();
    let lost: Vec<&Uuid> = released_devices
        .iter()
        .filter(|d| !told.contains_key(d))
        .collect();
    assert!(
        lost.is_empty(),
        "{} released devices were never told (first: {:?})",
        lost.len(),
        lost.first()
    );
    // A second notice only when the first one was in flight at a kill.
    let mut duplicates = 0;
    for (d, pids) in &told {
        if pids.len() > 1 {
            duplicates += pids.len() - 1;
            assert!(
                pids[..pids.len() - 1].iter().all(|p| killed.contains(p)),
                "device {d} was told {} times by {pids:?}; killed: {killed:?}",
                pids.len()
            );
        }
    }
    eprintln!("{duplicates} duplicate notices over {} kills", killed.len());
    assert!(killed.len() >= 5, "only {} kills", killed.len());

    // Every device finished and the campaign with them.
    let done = count(&store, tenant, UpdateFilter::in_state(UpdateState::Updated)).await;
    if done != DEVICES as u64 {
        type Left = (
            Uuid,
            String,
            Option<String>,
            Option<chrono::DateTime<chrono::Utc>>,
        );
        let left: Vec<Left> = sqlx::query_as(
            "SELECT device_id, state, lease_owner, lease_until FROM ota_updates
             WHERE tenant_id = $1 AND state <> 'UPDATED' LIMIT 20",
        )
        .bind(tenant.0)
        .fetch_all(store.pool())
        .await
        .unwrap();
        let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM ota_outbox")
            .fetch_one(store.pool())
            .await
            .unwrap();
        eprintln!("not updated: {left:?}; {outbox} notices in the outbox");
    }
    assert_eq!(done, DEVICES as u64, "devices UPDATED");
    assert_eq!(ended, Some(CampaignState::Finished));

    // Counters equal a recount.
    let stats = devices.campaign_stats(tenant, campaign.id).await.unwrap();
    for state in UpdateState::ALL {
        let recount = count(
            &store,
            tenant,
            UpdateFilter {
                campaign_id: Some(campaign.id),
                states: vec![state],
                ..UpdateFilter::default()
            },
        )
        .await;
        assert_eq!(stats.counts.get(state), recount, "counter of {state:?}");
    }
    // Every notice was delivered and marked so.
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM ota_outbox")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(waiting, 0, "notices left undelivered in the outbox");
    // Duplicates come only from notices in flight at a kill: at most what the killed
    // processes could have had in hand (one claim batch of releases and one of redeliveries
    // each).
    assert!(
        duplicates <= killed.len() * 2 * child_config("x").claim_batch as usize,
        "{duplicates} duplicates over {} kills",
        killed.len()
    );
    // Nothing live under an ended campaign.
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ota_updates u JOIN ota_campaigns c ON c.id = u.campaign_id
         WHERE u.state NOT IN ('UPDATED', 'FAILED', 'CANCELED')
         AND c.state IN ('FINISHED', 'STOPPED', 'FAILED', 'ARCHIVED')",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(live, 0, "updates live under an ended campaign");
}
