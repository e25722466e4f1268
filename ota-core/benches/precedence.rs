//! Resolving the effective package of 1,000,000 devices (10 profiles, 100 groups, each device
//! in 0–3 groups, assignments at every level) with `AssignmentIndex`, next to a reference loop
//! that only reads every device's profile and groups (the memory walk no resolver can avoid).
//! `assignment_index` uses a realistic compatibility check (a hash map of packages'
//! `Compatibility`); `assignment_index_always_compatible` shows the index's own cost.

use chrono::{DateTime, Duration, Utc};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ota_core::precedence::AssignmentIndex;
use ota_core::{
    Assignment, AssignmentId, AssignmentTarget, Compatibility, CurrentVersions, Device, DeviceId,
    GroupId, PackageId, PackageKind, ProfileId, TenantId,
};
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

const DEVICES: usize = 1_000_000;
const PROFILES: usize = 10;
const GROUPS: usize = 100;
const PACKAGES: usize = 20;

/// A small deterministic generator (xorshift64*), so every run measures the same fleet.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn uuid(&mut self) -> Uuid {
        Uuid::from_u128((u128::from(self.next()) << 64) | u128::from(self.next()))
    }
}

struct Fleet {
    devices: Vec<Device>,
    assignments: Vec<Assignment>,
    compatibility: HashMap<PackageId, Compatibility>,
}

fn fleet() -> Fleet {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let tenant = TenantId::from_uuid(rng.uuid());
    let t0 = DateTime::<Utc>::from_timestamp(1_704_067_200, 0).unwrap_or_default();
    let profiles: Vec<ProfileId> = (0..PROFILES).map(|_| ProfileId::from(rng.uuid())).collect();
    let groups: Vec<GroupId> = (0..GROUPS).map(|_| GroupId::from(rng.uuid())).collect();
    let packages: Vec<PackageId> = (0..PACKAGES).map(|_| PackageId::from(rng.uuid())).collect();
    // Half the packages fit any profile, the others a few profiles each.
    let compatibility = packages
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let c = if i % 2 == 0 {
                Compatibility::AnyProfile
            } else {
                Compatibility::Profiles((0..3).map(|_| profiles[rng.below(PROFILES)]).collect())
            };
            (*id, c)
        })
        .collect();
    let devices: Vec<Device> = (0..DEVICES)
        .map(|_| {
            let n = rng.below(4);
            let groups: BTreeSet<GroupId> = (0..n).map(|_| groups[rng.below(GROUPS)]).collect();
            Device {
                id: DeviceId::from(rng.uuid()),
                tenant_id: tenant,
                name: String::new(),
                profile_id: profiles[rng.below(PROFILES)],
                groups,
                access_token: String::new(),
                current: CurrentVersions::default(),
                created_at: t0,
            }
        })
        .collect();
    let mut assignments = Vec::new();
    let mut at = 0;
    let mut add = |target, rng: &mut Rng| {
        at += 1;
        assignments.push(Assignment {
            id: AssignmentId::from(rng.uuid()),
            tenant_id: tenant,
            kind: PackageKind::Firmware,
            target,
            package_id: packages[rng.below(PACKAGES)],
            assigned_at: t0 + Duration::seconds(at),
            assigned_by: "bench".into(),
        });
    };
    for p in &profiles {
        add(AssignmentTarget::Profile(*p), &mut rng);
    }
    for g in groups.iter().take(GROUPS * 8 / 10) {
        add(AssignmentTarget::Group(*g), &mut rng);
    }
    for d in devices.iter().step_by(100) {
        add(AssignmentTarget::Device(d.id), &mut rng);
    }
    Fleet {
        devices,
        assignments,
        compatibility,
    }
}

fn bench(c: &mut Criterion) {
    let fleet = fleet();
    let index = AssignmentIndex::new(PackageKind::Firmware, fleet.assignments.iter().cloned());
    let compatible = |package: PackageId, profile: ProfileId| {
        fleet
            .compatibility
            .get(&package)
            .is_some_and(|c| c.allows(profile))
    };

    let mut group = c.benchmark_group("precedence_1m_devices");
    group.sample_size(10);
    group.throughput(Throughput::Elements(DEVICES as u64));
    group.bench_function("assignment_index", |b| {
        b.iter(|| {
            let mut resolved = 0usize;
            for d in &fleet.devices {
                if let Some(e) = index.resolve(d, compatible) {
                    resolved += 1;
                    black_box(e);
                }
            }
            black_box(resolved)
        })
    });
    group.bench_function("assignment_index_always_compatible", |b| {
        b.iter(|| {
            let mut resolved = 0usize;
            for d in &fleet.devices {
                if let Some(e) = index.resolve(d, |_, _| true) {
                    resolved += 1;
                    black_box(e);
                }
            }
            black_box(resolved)
        })
    });
    group.bench_function("reference_read_profile_and_groups", |b| {
        b.iter(|| {
            let mut acc = 0u128;
            for d in &fleet.devices {
                acc ^= d.profile_id.as_uuid().as_u128();
                for g in &d.groups {
                    acc = acc.wrapping_add(g.as_uuid().as_u128());
                }
            }
            black_box(acc)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
