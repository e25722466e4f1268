//! The engine on the memory store: a fleet of devices driven through every state (QUEUED,
//! INITIATED, DOWNLOADING, DOWNLOADED, VERIFIED, UPDATING, UPDATED).
//!
//! Reference, measured in the same run: the pure state machine (`update::apply`) fed the same
//! events with no store, no engine and no async, i.e. the floor the engine's overhead is
//! compared to.
//!
//! `OTA_BENCH_DEVICES` sets the fleet size (default 100,000).

use bytes::Bytes;
use chrono::Duration;
use criterion::{criterion_group, criterion_main, Criterion};
use ota_core::engine::{NewPackage, Ota, OtaConfig};
use ota_core::notifier::{Notice, RecordingNotifier};
use ota_core::store::ByteStream;
use ota_core::update::{self, ReportedStatus, Update, UpdateEvent, UpdatePolicy};
use ota_core::wire::DeviceReport;
use ota_core::{AssignmentTarget, ManualClock, PackageKind, TenantId, TitleVersion, UpdateState};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

const STEPS: [UpdateState; 5] = [
    UpdateState::Downloading,
    UpdateState::Downloaded,
    UpdateState::Verified,
    UpdateState::Updating,
    UpdateState::Updated,
];

fn fleet_size() -> usize {
    std::env::var("OTA_BENCH_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

struct Fleet {
    ota: Ota,
    notifier: Arc<RecordingNotifier>,
    clock: Arc<ManualClock>,
    tenant: TenantId,
}

async fn fleet(n: usize) -> Fleet {
    let store = Arc::new(ota_core::memory::MemoryStore::new());
    let clock = Arc::new(ManualClock::at_epoch_2024());
    let notifier = Arc::new(RecordingNotifier::new());
    let config = OtaConfig::default()
        .claim_batch(5_000)
        .max_batches_per_tick(100);
    let ota = Ota::new(store, notifier.clone(), clock.clone(), config);
    let tenant = TenantId::new();
    let profile = ota.create_profile("bench", tenant, "p").await.unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let devices: Vec<_> = chunk
            .iter()
            .map(|i| {
                ota.new_device(
                    tenant,
                    &format!("d{i}"),
                    profile.id,
                    BTreeSet::new(),
                    &format!("t{i}"),
                )
            })
            .collect();
        ota.create_devices("bench", &devices).await.unwrap();
    }
    let content: ByteStream = Box::pin(futures_util::stream::iter(vec![Ok(Bytes::from_static(
        b"firmware",
    ))]));
    let package = ota
        .upload_package(
            "bench",
            NewPackage::new(tenant, PackageKind::Firmware, "fw", "2.0"),
            content,
        )
        .await
        .unwrap();
    ota.assign(
        "bench",
        tenant,
        AssignmentTarget::Profile(profile.id),
        package.id,
    )
    .await
    .unwrap();
    Fleet {
        ota,
        notifier,
        clock,
        tenant,
    }
}

/// Releases every queued update and sends every device's reports; returns (dispatches,
/// reports).
async fn drive(f: &Fleet) -> (u64, u64) {
    let mut dispatched = 0u64;
    let mut reports = 0u64;
    loop {
        let t = f.ota.tick().await.unwrap();
        dispatched += u64::from(t.released);
        let notices = f.notifier.take();
        if notices.is_empty() {
            break;
        }
        for state in STEPS {
            for n in &notices {
                if let Notice::Update { device_id, .. } = n {
                    let mut r = DeviceReport {
                        kind: PackageKind::Firmware,
                        ts: None,
                        state: Some(state),
                        current_title: None,
                        current_version: None,
                        error: None,
                        progress: None,
                    };
                    if state == UpdateState::Updated {
                        r.current_title = Some("fw".into());
                        r.current_version = Some("2.0".into());
                    }
                    f.ota.handle_report(f.tenant, *device_id, &r).await.unwrap();
                    reports += 1;
                }
            }
        }
        f.clock.advance(Duration::seconds(1));
    }
    (dispatched, reports)
}

fn bench_engine(c: &mut Criterion) {
    let n = fleet_size();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("engine_memory_store");
    group.sample_size(10);
    group.bench_function(format!("drive_{n}_devices_through_every_state"), |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let f = rt.block_on(fleet(n));
                let start = Instant::now();
                let (dispatched, reports) = rt.block_on(drive(&f));
                let took = start.elapsed();
                assert_eq!(dispatched as usize, n);
                eprintln!(
                    "engine: {n} devices in {:.2} s: {:.0} dispatches/s, {:.0} reports/s",
                    took.as_secs_f64(),
                    dispatched as f64 / took.as_secs_f64(),
                    reports as f64 / took.as_secs_f64()
                );
                total += took;
            }
            total
        })
    });
    group.bench_function(format!("reference_pure_state_machine_{n}_devices"), |b| {
        let policy = UpdatePolicy::default();
        let now = ManualClock::at_epoch_2024();
        let now = ota_core::Clock::now(&now);
        let tenant = TenantId::new();
        let target = TitleVersion::new("fw", "2.0");
        b.iter(|| {
            let mut done = 0usize;
            for _ in 0..n {
                let mut u = Update::new(
                    tenant,
                    ota_core::DeviceId::new(),
                    PackageKind::Firmware,
                    ota_core::PackageId::new(),
                    target.clone(),
                    None,
                    now,
                );
                let mut events = vec![UpdateEvent::Dispatched];
                events.extend(STEPS.iter().map(|s| {
                    UpdateEvent::Report(ReportedStatus {
                        state: Some(*s),
                        current: None,
                        error: None,
                        progress: None,
                    })
                }));
                for e in &events {
                    if let update::Outcome::Applied { update, .. } =
                        update::apply(&u, e, now, &policy)
                    {
                        u = update;
                    }
                }
                done += usize::from(u.state == UpdateState::Updated);
            }
            assert_eq!(done, n);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_engine);
criterion_main!(benches);
