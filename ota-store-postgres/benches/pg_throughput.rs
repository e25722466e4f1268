//! Throughput of the PostgreSQL store, each figure beside a reference measured in the same run
//! on the same database:
//!
//! - campaign materialization of 1,000,000 devices (devices/s), against a plain
//!   `INSERT ... SELECT` of as many rows into a copy of the updates table (same indexes);
//! - stopping that campaign (every update canceled with its history entry and counters),
//!   against one plain `UPDATE` of as many rows of the copy;
//! - claims with two dispatchers (two engines, each with its own pool, releasing every QUEUED
//!   update of a fleet), in claims/s, also against a set-based claim+release in raw SQL (one
//!   statement claiming 500 queued rows with `FOR UPDATE SKIP LOCKED` and releasing them, with
//!   history and outbox rows, on two connections) on the same tables;
//! - device report ingestion (transitions/s), twice: half the fleet with 64 concurrent
//!   reporters, the other half with 256, as many transitions in flight as the batched
//!   reference below has (each reporter sends a device's five reports one after the other),
//!
//! both against `pgbench -N` (simple update, 64 clients) run in the same schema; report
//! ingestion also against the same writes as batched raw SQL (64 transitions per statement
//! over 4 connections, 256 in flight) on the same tables.
//!
//! `cargo bench -p ota-store-postgres --bench pg_throughput`. `OTA_BENCH_CAMPAIGN_DEVICES`
//! (default 1,000,000; 0 skips the campaign part) and `OTA_BENCH_FLEET` (default 20,000)
//! change the sizes, `OTA_BENCH_PGBENCH_SECS` (default 20) pgbench's duration; `DATABASE_URL`
//! the database; `PGBENCH` the pgbench binary (default: on the PATH or under
//! `/usr/lib/postgresql/*/bin`).

use futures::StreamExt;
use ota_core::campaign::{CampaignSpec, CampaignTarget, Wave, WaveAdvance, WaveSize};
use ota_core::device::CurrentVersions;
use ota_core::engine::{Ota, OtaConfig};
use ota_core::notifier::RecordingNotifier;
use ota_core::package::{Compatibility, PackageSource};
use ota_core::store::{DeviceStore, PackageStore, UpdateFilter, UpdateStore};
use ota_core::update::Update;
use ota_core::wire::DeviceReport;
use ota_core::{
    Clock, Device, DeviceId, DeviceProfile, Package, PackageId, PackageKind, ProfileId,
    SystemClock, TenantId, UpdateState,
};
use ota_store_postgres::testing::{fresh_database, TestDatabase};
use ota_store_postgres::PgStore;
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

/// Connections of the reporters' store, and pgbench's clients.
const REPORTERS: usize = 64;
/// Reporters of the second half of the fleet: as many transitions in flight as the batched
/// reference ([`REFERENCE_BATCH`] x [`REFERENCE_CONNECTIONS`]).
const REPORTERS_AS_REFERENCE: usize = REFERENCE_BATCH * REFERENCE_CONNECTIONS;

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A profile, `n` devices on it and a firmware package, all in a new tenant.
async fn fleet(store: &PgStore, n: usize) -> (TenantId, ProfileId, Vec<DeviceId>, Package) {
    let now = SystemClock.now();
    let tenant = TenantId::new();
    let profile = DeviceProfile {
        id: ProfileId::new(),
        tenant_id: tenant,
        name: "bench".into(),
        created_at: now,
    };
    store.create_profile(&profile, None).await.unwrap();
    let mut ids = Vec::with_capacity(n);
    for start in (0..n).step_by(10_000) {
        let batch: Vec<Device> = (start..(start + 10_000).min(n))
            .map(|i| Device {
                id: DeviceId::new(),
                tenant_id: tenant,
                name: format!("d{i}"),
                profile_id: profile.id,
                groups: BTreeSet::new(),
                access_token: format!("{tenant}-{i}"),
                current: CurrentVersions::default(),
                created_at: now,
            })
            .collect();
        ids.extend(batch.iter().map(|d| d.id));
        store.create_devices(&batch, None).await.unwrap();
    }
    let package = Package {
        id: PackageId::new(),
        tenant_id: tenant,
        kind: PackageKind::Firmware,
        title: "fw".into(),
        version: "2.0".into(),
        compatibility: Compatibility::AnyProfile,
        source: PackageSource::External {
            url: "https://example.com/fw.bin".into(),
        },
        size: None,
        checksum: None,
        sha256: None,
        content_type: None,
        file_name: None,
        description: None,
        tag: None,
        created_at: now,
        created_by: "bench".into(),
    };
    store.create_package(&package, None).await.unwrap();
    (tenant, profile.id, ids, package)
}

/// What the campaign part measured, in seconds.
struct CampaignFigures {
    materialize: f64,
    materialize_reference: f64,
    stop: f64,
    stop_reference: f64,
}

/// Starts a three-wave campaign over `n` devices (materialization), then stops it (every
/// update canceled); each against a plain statement over as many rows.
/// A [`fleet`] of `n` devices with one queued update each: its tenant, devices and updates.
async fn queued_fleet(store: &PgStore, n: usize) -> (TenantId, Vec<DeviceId>, Vec<Update>) {
    let (tenant, _, devices, package) = fleet(store, n).await;
    let now = SystemClock.now();
    let updates: Vec<Update> = devices
        .iter()
        .map(|d| {
            Update::new(
                tenant,
                *d,
                package.kind,
                package.id,
                package.title_version(),
                None,
                now,
            )
        })
        .collect();
    for chunk in updates.chunks(10_000) {
        store.create_updates(chunk).await.unwrap();
    }
    (tenant, devices, updates)
}

async fn campaign(db: &TestDatabase, n: usize) -> CampaignFigures {
    let store = PgStore::connect(db.options()).await.unwrap();
    let started = Instant::now();
    let (tenant, profile, _, package) = fleet(&store, n).await;
    println!(
        "  ({n} devices created in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let ota = engine(store.clone(), "campaigns");
    let mut spec = CampaignSpec::new(
        "bench",
        package.id,
        CampaignTarget::Selection {
            profile: Some(profile),
            groups: BTreeSet::new(),
            source_versions: BTreeSet::new(),
        },
    );
    spec.waves = [
        WaveSize::Percent(1.0),
        WaveSize::Percent(10.0),
        WaveSize::Rest,
    ]
    .into_iter()
    .map(|size| Wave {
        size,
        advance: WaveAdvance::default(),
    })
    .collect();
    let campaign = ota.create_campaign("bench", tenant, spec).await.unwrap();
    let started = Instant::now();
    ota.start_campaign("bench", tenant, campaign.id)
        .await
        .unwrap();
    let materialize = started.elapsed().as_secs_f64();
    let stats = ota.campaign_stats(tenant, campaign.id).await.unwrap();
    assert_eq!(stats.counts.total(), n as u64);

    // Reference: the same number of rows written to a copy of the table, indexes included,
    // with no classification, waves or counters.
    sqlx::query("CREATE TABLE bench_reference_updates (LIKE ota_updates INCLUDING ALL)")
        .execute(store.pool())
        .await
        .unwrap();
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO bench_reference_updates (id, tenant_id, device_id, kind, package_id,
             target_title, target_version, campaign_id, wave, state, attempt,
             created_at, state_changed_at, updated_at, revision)
         SELECT ota_uuid_v7(), tenant_id, id, 'fw', $1, 'fw', '2.0', $2, 0, 'QUEUED', 1,
             0, 0, 0, 0
         FROM ota_devices WHERE tenant_id = $3",
    )
    .bind(package.id.0)
    .bind(campaign.id.0)
    .bind(tenant.0)
    .execute(store.pool())
    .await
    .unwrap();
    let materialize_reference = started.elapsed().as_secs_f64();

    let started = Instant::now();
    ota.stop_campaign("bench", tenant, campaign.id)
        .await
        .unwrap();
    let stop = started.elapsed().as_secs_f64();
    let stats = ota.campaign_stats(tenant, campaign.id).await.unwrap();
    assert_eq!(stats.counts.canceled(), n as u64);
    // Reference: one UPDATE of as many rows (state and revision), with no history.
    let started = Instant::now();
    sqlx::query(
        "UPDATE bench_reference_updates SET state = 'CANCELED', revision = revision + 1,
             error = 'the campaign was stopped'",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let stop_reference = started.elapsed().as_secs_f64();
    store.pool().close().await;
    CampaignFigures {
        materialize,
        materialize_reference,
        stop,
        stop_reference,
    }
}

fn engine(store: PgStore, name: &str) -> Ota {
    Ota::new(
        Arc::new(store),
        Arc::new(RecordingNotifier::default()),
        Arc::new(SystemClock),
        OtaConfig::default().instance_id(name),
    )
}

fn report(state: UpdateState) -> DeviceReport {
    let done = state == UpdateState::Updated;
    DeviceReport {
        kind: PackageKind::Firmware,
        ts: None,
        state: Some(state),
        current_title: done.then(|| "fw".into()),
        current_version: done.then(|| "2.0".into()),
        error: None,
        progress: None,
    }
}

/// Claims/s with two dispatchers over `n` devices, then transitions/s with 64 reporters over
/// half of them and with 256 over the other half.
async fn dispatch_and_reports(db: &TestDatabase, n: usize) -> (f64, [f64; 2]) {
    let store = PgStore::connect(db.options().max_connections(REPORTERS as u32))
        .await
        .unwrap();
    let (tenant, devices, _) = queued_fleet(&store, n).await;

    let a = engine(
        PgStore::connect(db.options().max_connections(8))
            .await
            .unwrap(),
        "dispatcher-a",
    );
    let b = engine(
        PgStore::connect(db.options().max_connections(8))
            .await
            .unwrap(),
        "dispatcher-b",
    );
    let started = Instant::now();
    let dispatch = |ota: Ota| async move {
        let mut released = 0u64;
        loop {
            let report = ota.tick().await.unwrap();
            if report.released == 0 {
                return released;
            }
            released += report.released as u64;
        }
    };
    let (ra, rb) = tokio::join!(dispatch(a), dispatch(b));
    let claims_per_sec = n as f64 / started.elapsed().as_secs_f64();
    assert_eq!(ra + rb, n as u64, "every update released once");
    println!("  (dispatcher a released {ra}, b {rb})");

    let ota = engine(store.clone(), "reporters");
    let (first, second) = devices.split_at(devices.len() / 2);
    let transitions_per_sec = [
        reports(&ota, tenant, first, REPORTERS).await,
        reports(&ota, tenant, second, REPORTERS_AS_REFERENCE).await,
    ];
    let updated = store
        .count_updates(Some(tenant), &UpdateFilter::in_state(UpdateState::Updated))
        .await
        .unwrap();
    assert_eq!(updated, n as u64, "every device reached UPDATED");
    store.pool().close().await;
    (claims_per_sec, transitions_per_sec)
}

/// Transitions/s of `devices` each sending its five reports in order, `reporters` devices at
/// a time.
async fn reports(ota: &Ota, tenant: TenantId, devices: &[DeviceId], reporters: usize) -> f64 {
    let sequence = [
        UpdateState::Downloading,
        UpdateState::Downloaded,
        UpdateState::Verified,
        UpdateState::Updating,
        UpdateState::Updated,
    ];
    let started = Instant::now();
    let cpu_before = own_cpu_secs();
    futures::stream::iter(devices.iter().copied())
        .map(|d| async move {
            for state in sequence {
                ota.handle_report(tenant, d, &report(state)).await.unwrap();
            }
        })
        .buffer_unordered(reporters)
        .for_each(|()| async {})
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    if let (Some(a), Some(b)) = (cpu_before, own_cpu_secs()) {
        println!(
            "  (reports, {reporters} reporters: {elapsed:.1} s wall, the bench process used \
             {:.1} s of CPU)",
            b - a
        );
    }
    (devices.len() * sequence.len()) as f64 / elapsed
}

/// Statements of the batched reference run at once (each on its own connection).
const REFERENCE_CONNECTIONS: usize = 4;
/// Transitions per statement of the batched reference.
const REFERENCE_BATCH: usize = 64;

/// The harder reference for report ingestion: the same writes as the reports make (each
/// update row moved through the five states with its revision checked and bumped, one
/// history row per transition, the device's current version on UPDATED), as raw SQL,
/// [`REFERENCE_BATCH`] transitions per statement over [`REFERENCE_CONNECTIONS`] connections,
/// on the same tables (a fleet of its own in the bench's schema). Transitions per second.
async fn batched_reference(db: &TestDatabase, n: usize) -> f64 {
    let store = PgStore::connect(db.options().max_connections(REFERENCE_CONNECTIONS as u32))
        .await
        .unwrap();
    let (_, _, updates) = queued_fleet(&store, n).await;
    let sequence = [
        UpdateState::Downloading,
        UpdateState::Downloaded,
        UpdateState::Verified,
        UpdateState::Updating,
        UpdateState::Updated,
    ];
    let started = Instant::now();
    let pool = store.pool().clone();
    futures::stream::iter(updates.chunks(REFERENCE_BATCH))
        .map(|chunk| {
            let pool = pool.clone();
            async move {
                let ids: Vec<uuid::Uuid> = chunk.iter().map(|u| u.id.0).collect();
                let devices: Vec<uuid::Uuid> = chunk.iter().map(|u| u.device_id.0).collect();
                let mut previous = UpdateState::Queued;
                for (step, state) in sequence.into_iter().enumerate() {
                    let at = SystemClock.now();
                    let expected: Vec<i64> = chunk
                        .iter()
                        .map(|u| u.revision as i64 + step as i64)
                        .collect();
                    let docs: Vec<String> = chunk
                        .iter()
                        .map(|u| {
                            serde_json::json!({
                                "update_id": u.id, "tenant_id": u.tenant_id,
                                "device_id": u.device_id, "kind": "FIRMWARE",
                                "attempt": u.attempt, "at": at,
                                "from": previous, "to": state, "source": "DEVICE",
                                "event": "report", "message": null, "outcome": "APPLIED",
                            })
                            .to_string()
                        })
                        .collect();
                    let done = state == UpdateState::Updated;
                    let written = sqlx::query(
                        "WITH i AS (
                            SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::uuid[])
                                AS t(id, expected, doc, device_id)
                         ),
                         upd AS (
                            UPDATE ota_updates u SET state = $5, revision = i.expected + 1,
                                updated_at = $6, state_changed_at = $6
                            FROM i WHERE u.id = i.id AND u.revision = i.expected
                            RETURNING u.id, u.tenant_id, u.device_id, i.doc
                         ),
                         dev AS (
                            UPDATE ota_devices d SET fw_title = 'fw', fw_version = '2.0'
                            FROM i WHERE $7 AND d.id = i.device_id
                         ),
                         hist AS (
                            INSERT INTO ota_history (update_id, tenant_id, device_id, doc)
                            SELECT id, tenant_id, device_id, doc::jsonb FROM upd
                         )
                         SELECT count(*) FROM upd",
                    )
                    .bind(&ids)
                    .bind(&expected)
                    .bind(&docs)
                    .bind(&devices)
                    .bind(state.name())
                    .bind(at)
                    .bind(done)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                    let written: i64 = sqlx::Row::get(&written, 0);
                    assert_eq!(written as usize, chunk.len(), "every row moved");
                    previous = state;
                }
            }
        })
        .buffer_unordered(REFERENCE_CONNECTIONS)
        .for_each(|()| async {})
        .await;
    let per_sec = (n * sequence.len()) as f64 / started.elapsed().as_secs_f64();
    store.pool().close().await;
    per_sec
}

/// Queued updates each statement of the claim reference claims and releases.
const CLAIM_REFERENCE_BATCH: i64 = 500;
/// Connections of the claim reference (as many as the dispatchers).
const CLAIM_REFERENCE_CONNECTIONS: usize = 2;

/// The set-based reference for claims: each statement picks [`CLAIM_REFERENCE_BATCH`]
/// queued updates with `FOR UPDATE SKIP LOCKED` and releases them (QUEUED -> INITIATED,
/// revision bumped, a wake time set), with a history row and an outbox notice per update, on
/// [`CLAIM_REFERENCE_CONNECTIONS`] connections at once until the queue is empty, over a fleet
/// of its own on the same tables. The store's path does the same writes and, besides, its
/// pacing, the lease, the notifier and deleting the delivered notices. Claims per second.
async fn claim_reference(db: &TestDatabase, n: usize) -> f64 {
    let store = PgStore::connect(
        db.options()
            .max_connections(CLAIM_REFERENCE_CONNECTIONS as u32),
    )
    .await
    .unwrap();
    queued_fleet(&store, n).await;
    let notice = serde_json::json!({"fw_title": "fw", "fw_version": "2.0"}).to_string();
    let started = Instant::now();
    let pool = store.pool().clone();
    let claimer = |pool: sqlx::PgPool, notice: String| async move {
        let mut claimed = 0i64;
        loop {
            let at = SystemClock.now();
            let row = sqlx::query(
                "WITH picked AS (
                    SELECT id FROM ota_updates
                    WHERE state = 'QUEUED' AND campaign_id IS NULL
                      AND (lease_until IS NULL OR lease_until <= $1)
                    ORDER BY state_changed_at, id LIMIT $2
                    FOR UPDATE SKIP LOCKED
                 ),
                 upd AS (
                    UPDATE ota_updates u SET state = 'INITIATED', revision = u.revision + 1,
                        updated_at = $1, state_changed_at = $1,
                        wake_at = $1 + interval '600 seconds'
                    FROM picked WHERE u.id = picked.id
                    RETURNING u.id, u.tenant_id, u.device_id, u.kind, u.attempt
                 ),
                 hist AS (
                    INSERT INTO ota_history (update_id, tenant_id, device_id, doc)
                    SELECT id, tenant_id, device_id, jsonb_build_object(
                        'update_id', id, 'tenant_id', tenant_id, 'device_id', device_id,
                        'kind', 'FIRMWARE', 'attempt', attempt, 'at', $1, 'from', 'QUEUED',
                        'to', 'INITIATED', 'source', 'SERVER', 'event', 'dispatched',
                        'message', NULL, 'outcome', 'APPLIED')
                    FROM upd
                 ),
                 noticed AS (
                    INSERT INTO ota_outbox (id, tenant_id, device_id, kind, doc, created_at)
                    SELECT ota_uuid_v7(), tenant_id, device_id, kind, $3::jsonb, $1 FROM upd
                 )
                 SELECT count(*) FROM upd",
            )
            .bind(at)
            .bind(CLAIM_REFERENCE_BATCH)
            .bind(&notice)
            .fetch_one(&pool)
            .await
            .unwrap();
            let got: i64 = sqlx::Row::get(&row, 0);
            if got == 0 {
                return claimed;
            }
            claimed += got;
        }
    };
    let handles: Vec<_> = (0..CLAIM_REFERENCE_CONNECTIONS)
        .map(|_| claimer(pool.clone(), notice.clone()))
        .collect();
    let total: i64 = futures::future::join_all(handles).await.into_iter().sum();
    let per_sec = n as f64 / started.elapsed().as_secs_f64();
    assert_eq!(total as usize, n, "every update released once");
    store.pool().close().await;
    per_sec
}

/// CPU seconds (user + system) this process used so far (Linux).
fn own_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn pgbench_binary() -> Option<String> {
    if let Ok(p) = std::env::var("PGBENCH") {
        return Some(p);
    }
    if Command::new("pgbench").arg("--version").output().is_ok() {
        return Some("pgbench".into());
    }
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin/pgbench"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().map(|p| p.display().to_string())
}

/// `pgbench -N` with 64 clients for 20 s in the bench's schema: transactions per second.
fn pgbench(db: &TestDatabase) -> Option<f64> {
    let bin = pgbench_binary()?;
    let options = format!("-c search_path={}", db.schema);
    let run = |args: &[&str]| {
        Command::new(&bin)
            .args(args)
            .arg(&db.url)
            .env("PGOPTIONS", &options)
            .output()
            .expect("run pgbench")
    };
    let init = run(&["-i", "-s", "10", "-q"]);
    assert!(
        init.status.success(),
        "pgbench -i failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let clients = REPORTERS.to_string();
    let secs = size("OTA_BENCH_PGBENCH_SECS", 20).to_string();
    let out = run(&["-N", "-n", "-c", &clients, "-j", "2", "-T", &secs]);
    assert!(
        out.status.success(),
        "pgbench -N failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l["tps = ".len()..].split_whitespace().next()?.parse().ok())
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --benches` and test listers: nothing to do here.
        return;
    }
    let campaign_devices = size("OTA_BENCH_CAMPAIGN_DEVICES", 1_000_000);
    let fleet_size = size("OTA_BENCH_FLEET", 20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let db = fresh_database().await;
        println!("PostgreSQL store throughput (schema {})", db.schema);
        if campaign_devices > 0 {
            let f = campaign(&db, campaign_devices).await;
            let n = campaign_devices as f64;
            println!(
            "campaign materialization of {campaign_devices} devices: {:.2} s, {:.0} devices/s; \
             reference INSERT ... SELECT of as many rows: {:.2} s ({:.2}x)",
            f.materialize,
            n / f.materialize,
            f.materialize_reference,
            f.materialize_reference / f.materialize
        );
            println!(
                "campaign stop (every update canceled, with history and counters): {:.2} s, \
             {:.0} devices/s; reference UPDATE of as many rows: {:.2} s ({:.2}x)",
                f.stop,
                n / f.stop,
                f.stop_reference,
                f.stop_reference / f.stop
            );
        }
        let (claims, transitions) = dispatch_and_reports(&db, fleet_size).await;
        let claims_reference = claim_reference(&db, fleet_size).await;
        let batched = batched_reference(&db, fleet_size).await;
        let tps = pgbench(&db);
        let vs = |x: f64| tps.map_or(String::new(), |t| format!(" ({:.2}x pgbench -N)", x / t));
        println!(
            "claims with two dispatchers over {fleet_size} devices: {claims:.0} claims/s{}; \
             {:.2}x the set-based reference",
            vs(claims),
            claims / claims_reference
        );
        println!(
            "reference set-based claim+release, {CLAIM_REFERENCE_BATCH} per statement over \
             {CLAIM_REFERENCE_CONNECTIONS} connections: {claims_reference:.0} claims/s"
        );
        for (reporters, rate) in [REPORTERS, REPORTERS_AS_REFERENCE].iter().zip(transitions) {
            println!(
                "report ingestion, {reporters} concurrent reporters, {} devices x 5 reports: \
                 {rate:.0} transitions/s{}; {:.2}x the batched reference",
                fleet_size / 2,
                vs(rate),
                rate / batched
            );
        }
        println!(
            "reference batched SQL, the same writes, {REFERENCE_BATCH} transitions per \
             statement over {REFERENCE_CONNECTIONS} connections: {batched:.0} transitions/s"
        );
        match tps {
            Some(t) => {
                println!("reference pgbench -N, {REPORTERS} clients, same schema: {t:.0} tps")
            }
            None => println!("reference pgbench -N: pgbench not found (set PGBENCH)"),
        }
        db.drop_schema().await;
    });
}
