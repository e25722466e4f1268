//! A campaign over 1,000,000 targeted devices on the memory store: materialization (creating
//! every device's QUEUED update, split into waves) and reading the campaign's statistics.
//!
//! References, measured in the same run: building the same 1,000,000 `Update` records in a
//! `Vec` with no store (the floor for materialization), and reading one device by id (the
//! floor for a constant-time store read).
//!
//! `OTA_BENCH_DEVICES` sets the fleet size (default 1,000,000).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ota_core::campaign::{Campaign, CampaignSpec, CampaignTarget, Wave, WaveAdvance, WaveSize};
use ota_core::device::CurrentVersions;
use ota_core::memory::MemoryStore;
use ota_core::package::{Compatibility, PackageSource};
use ota_core::store::{CampaignStore, DeviceStore, PackageStore};
use ota_core::update::Update;
use ota_core::{
    Clock, Device, DeviceId, DeviceProfile, ManualClock, Package, PackageId, PackageKind,
    ProfileId, TenantId,
};
use std::collections::BTreeSet;
use std::time::Duration;

fn fleet_size() -> usize {
    std::env::var("OTA_BENCH_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

struct Setup {
    store: MemoryStore,
    campaign: Campaign,
    package: Package,
    some_device: DeviceId,
}

fn setup(rt: &tokio::runtime::Runtime, n: usize) -> Setup {
    rt.block_on(async {
        let now = ManualClock::at_epoch_2024().now();
        let store = MemoryStore::new();
        let tenant = TenantId::new();
        let profile = DeviceProfile {
            id: ProfileId::new(),
            tenant_id: tenant,
            name: "p".into(),
            created_at: now,
        };
        store.create_profile(&profile, None).await.unwrap();
        let mut some_device = None;
        for start in (0..n).step_by(50_000) {
            let batch: Vec<Device> = (start..(start + 50_000).min(n))
                .map(|i| Device {
                    id: DeviceId::new(),
                    tenant_id: tenant,
                    name: format!("d{i}"),
                    profile_id: profile.id,
                    groups: BTreeSet::new(),
                    access_token: format!("t{i}"),
                    current: CurrentVersions::default(),
                    created_at: now,
                })
                .collect();
            some_device.get_or_insert(batch[0].id);
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
        let mut spec = CampaignSpec::new(
            "bench",
            package.id,
            CampaignTarget::Selection {
                profile: Some(profile.id),
                groups: BTreeSet::new(),
                source_versions: BTreeSet::new(),
            },
        );
        spec.waves = vec![
            Wave {
                size: WaveSize::Percent(1.0),
                advance: WaveAdvance::default(),
            },
            Wave {
                size: WaveSize::Percent(10.0),
                advance: WaveAdvance::default(),
            },
            Wave {
                size: WaveSize::Rest,
                advance: WaveAdvance::default(),
            },
        ];
        let campaign = Campaign::new(tenant, package.kind, spec, "bench", now);
        store.create_campaign(&campaign, None).await.unwrap();
        Setup {
            store,
            campaign,
            package,
            some_device: some_device.unwrap(),
        }
    })
}

fn bench_campaign(c: &mut Criterion) {
    let n = fleet_size();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let now = ManualClock::at_epoch_2024().now();
    let mut group = c.benchmark_group("campaign_memory_store");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));

    group.bench_function(format!("materialize_{n}_devices"), |b| {
        b.iter_batched(
            || setup(&rt, n),
            |s| {
                let done = rt
                    .block_on(s.store.materialize_campaign(&s.campaign, &s.package, now))
                    .unwrap();
                assert_eq!(done.created, n as u64);
                s
            },
            BatchSize::PerIteration,
        )
    });

    group.bench_function(format!("reference_build_{n}_update_records"), |b| {
        let s = setup(&rt, 1);
        b.iter(|| {
            let v: Vec<Update> = (0..n)
                .map(|_| {
                    Update::new(
                        s.campaign.tenant_id,
                        DeviceId::new(),
                        s.package.kind,
                        s.package.id,
                        s.package.title_version(),
                        Some(s.campaign.id),
                        now,
                    )
                })
                .collect();
            v
        })
    });

    let s = setup(&rt, n);
    rt.block_on(s.store.materialize_campaign(&s.campaign, &s.package, now))
        .unwrap();
    group.sample_size(100);
    group.measurement_time(Duration::from_secs(3));
    group.bench_function(format!("read_stats_{n}_devices"), |b| {
        b.iter(|| {
            let stats = rt
                .block_on(s.store.campaign_stats(s.campaign.tenant_id, s.campaign.id))
                .unwrap();
            assert_eq!(stats.counts.total(), n as u64);
            stats
        })
    });
    group.bench_function("reference_read_one_device", |b| {
        b.iter(|| {
            rt.block_on(s.store.get_device(s.campaign.tenant_id, s.some_device))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_campaign);
criterion_main!(benches);
