//! Precedence of device, group and profile assignments: the DESIGN examples, and a property
//! test of `resolve` and `AssignmentIndex` against a straightforward reference model.

use chrono::{DateTime, Duration, Utc};
use ota_core::precedence::{resolve, AssignmentIndex, Effective};
use ota_core::{
    Assignment, AssignmentId, AssignmentLevel, AssignmentTarget, CurrentVersions, Device, DeviceId,
    GroupId, PackageId, PackageKind, ProfileId, TenantId,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use uuid::Uuid;

const FW: PackageKind = PackageKind::Firmware;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_704_067_200, 0).unwrap() + Duration::seconds(secs)
}

fn device(tenant: TenantId, profile: ProfileId, groups: &[GroupId]) -> Device {
    Device {
        id: DeviceId::new(),
        tenant_id: tenant,
        name: String::new(),
        profile_id: profile,
        groups: groups.iter().copied().collect(),
        access_token: String::new(),
        current: CurrentVersions::default(),
        created_at: t(0),
    }
}

fn assign(
    tenant: TenantId,
    target: AssignmentTarget,
    package: PackageId,
    at: DateTime<Utc>,
) -> Assignment {
    Assignment {
        id: AssignmentId::new(),
        tenant_id: tenant,
        kind: FW,
        target,
        package_id: package,
        assigned_at: at,
        assigned_by: "test".into(),
    }
}

/// Both resolvers, checked to agree.
fn both(
    d: &Device,
    assignments: &[Assignment],
    compatible: impl Fn(PackageId, ProfileId) -> bool,
) -> Option<Effective> {
    let a = resolve(d, FW, assignments, &compatible);
    let index = AssignmentIndex::new(FW, assignments.iter().cloned());
    let b = index.resolve(d, &compatible);
    assert_eq!(a, b, "free function and index disagree");
    a
}

/// Replaces the assignment of the same target (at most one per target, as in a store).
fn put(list: &mut Vec<Assignment>, a: Assignment) {
    list.retain(|x| x.target != a.target);
    list.push(a);
}

#[test]
fn design_example() {
    let tenant = TenantId::new();
    let p1 = ProfileId::new();
    let d1 = device(tenant, p1, &[]);
    let d2 = device(tenant, p1, &[]);
    let (f1, f2, f3) = (PackageId::new(), PackageId::new(), PackageId::new());
    let any = |_: PackageId, _: ProfileId| true;
    let pkg = |d: &Device, list: &[Assignment]| both(d, list, any).map(|e| e.package_id);
    let mut list = Vec::new();

    assert_eq!(pkg(&d1, &list), None);
    put(
        &mut list,
        assign(tenant, AssignmentTarget::Profile(p1), f1, t(1)),
    );
    assert_eq!((pkg(&d1, &list), pkg(&d2, &list)), (Some(f1), Some(f1)));

    put(
        &mut list,
        assign(tenant, AssignmentTarget::Device(d1.id), f2, t(2)),
    );
    assert_eq!((pkg(&d1, &list), pkg(&d2, &list)), (Some(f2), Some(f1)));
    assert_eq!(
        both(&d1, &list, any).unwrap().level,
        AssignmentLevel::Device
    );

    put(
        &mut list,
        assign(tenant, AssignmentTarget::Profile(p1), f3, t(3)),
    );
    assert_eq!((pkg(&d1, &list), pkg(&d2, &list)), (Some(f2), Some(f3)));

    list.retain(|a| a.target != AssignmentTarget::Device(d1.id));
    assert_eq!((pkg(&d1, &list), pkg(&d2, &list)), (Some(f3), Some(f3)));
    let e = both(&d1, &list, any).unwrap();
    assert_eq!((e.level, e.assigned_at), (AssignmentLevel::Profile, t(3)));
}

#[test]
fn most_recent_compatible_group_wins() {
    let tenant = TenantId::new();
    let p = ProfileId::new();
    let (ga, gb) = (GroupId::new(), GroupId::new());
    let d = device(tenant, p, &[ga, gb]);
    let (a1, a2, a3) = (PackageId::new(), PackageId::new(), PackageId::new());
    let compatible = |pkg: PackageId, _: ProfileId| pkg != a3;
    let mut list = Vec::new();

    put(
        &mut list,
        assign(tenant, AssignmentTarget::Group(ga), a1, t(1)),
    );
    assert_eq!(both(&d, &list, compatible).unwrap().package_id, a1);

    put(
        &mut list,
        assign(tenant, AssignmentTarget::Group(gb), a2, t(2)),
    );
    assert_eq!(both(&d, &list, compatible).unwrap().package_id, a2);

    // A3 replaces A1 on group A, later, but is incompatible: never effective.
    let later = assign(tenant, AssignmentTarget::Group(ga), a3, t(3));
    put(&mut list, later);
    let e = both(&d, &list, compatible).unwrap();
    assert_eq!((e.package_id, e.level), (a2, AssignmentLevel::Group));

    // Without the compatible one, nothing at the group level; the profile decides.
    list.retain(|a| a.target != AssignmentTarget::Group(gb));
    assert_eq!(both(&d, &list, compatible), None);
    put(
        &mut list,
        assign(tenant, AssignmentTarget::Profile(p), a1, t(4)),
    );
    let e = both(&d, &list, compatible).unwrap();
    assert_eq!((e.package_id, e.level), (a1, AssignmentLevel::Profile));
}

#[test]
fn group_ties_go_to_the_smaller_group_id() {
    let tenant = TenantId::new();
    let p = ProfileId::new();
    let small = GroupId::from_uuid(Uuid::from_u128(1));
    let large = GroupId::from_uuid(Uuid::from_u128(2));
    let d = device(tenant, p, &[small, large]);
    let (x, y) = (PackageId::new(), PackageId::new());
    let any = |_: PackageId, _: ProfileId| true;
    // Listed in both orders: the result does not depend on it.
    let mut list = vec![
        assign(tenant, AssignmentTarget::Group(large), x, t(5)),
        assign(tenant, AssignmentTarget::Group(small), y, t(5)),
    ];
    assert_eq!(both(&d, &list, any).unwrap().package_id, y);
    list.reverse();
    assert_eq!(both(&d, &list, any).unwrap().package_id, y);
}

#[test]
fn other_kinds_tenants_and_targets_are_ignored() {
    let tenant = TenantId::new();
    let other_tenant = TenantId::new();
    let p = ProfileId::new();
    let g = GroupId::new();
    let d = device(tenant, p, &[g]);
    let pkg = PackageId::new();
    let any = |_: PackageId, _: ProfileId| true;
    let mut software = assign(tenant, AssignmentTarget::Device(d.id), pkg, t(1));
    software.kind = PackageKind::Software;
    let list = vec![
        software,
        assign(other_tenant, AssignmentTarget::Device(d.id), pkg, t(1)),
        assign(other_tenant, AssignmentTarget::Group(g), pkg, t(1)),
        assign(other_tenant, AssignmentTarget::Profile(p), pkg, t(1)),
        assign(tenant, AssignmentTarget::Device(DeviceId::new()), pkg, t(1)),
        assign(tenant, AssignmentTarget::Group(GroupId::new()), pkg, t(1)),
        assign(
            tenant,
            AssignmentTarget::Profile(ProfileId::new()),
            pkg,
            t(1),
        ),
    ];
    assert_eq!(both(&d, &list, any), None);
    let sw = AssignmentIndex::new(PackageKind::Software, list.clone());
    assert_eq!(sw.kind(), PackageKind::Software);
    assert_eq!(sw.len(), 1);
    assert_eq!(sw.resolve(&d, any).unwrap().level, AssignmentLevel::Device);
}

#[test]
fn duplicate_device_assignments_take_the_most_recent_compatible() {
    let tenant = TenantId::new();
    let p = ProfileId::new();
    let d = device(tenant, p, &[]);
    let (old, new, bad) = (PackageId::new(), PackageId::new(), PackageId::new());
    let compatible = |pkg: PackageId, _: ProfileId| pkg != bad;
    let list = vec![
        assign(tenant, AssignmentTarget::Device(d.id), old, t(1)),
        assign(tenant, AssignmentTarget::Device(d.id), bad, t(3)),
        assign(tenant, AssignmentTarget::Device(d.id), new, t(2)),
    ];
    assert_eq!(both(&d, &list, compatible).unwrap().package_id, new);
}

// ---------------------------------------------------------------------------------------------
// Property test against a reference model.

#[derive(Clone, Debug)]
struct Fleet {
    profiles: usize,
    groups: usize,
    /// Per device: profile index and group indexes.
    devices: Vec<(usize, BTreeSet<usize>)>,
    /// Per package: the profile indexes it is compatible with.
    packages: Vec<BTreeSet<usize>>,
}

#[derive(Clone, Debug)]
enum Op {
    /// Level (0 device, 1 group, 2 profile), target index, package index, kind, time step.
    Assign(u8, usize, usize, bool, i64),
    /// Level, target index, kind.
    Unassign(u8, usize, bool),
}

fn fleet() -> impl Strategy<Value = Fleet> {
    (1usize..4, 0usize..6, 1usize..6).prop_flat_map(|(profiles, groups, packages)| {
        let device = (
            0..profiles,
            prop::collection::btree_set(0..groups.max(1), 0..4),
        )
            .prop_map(move |(p, g)| (p, if groups == 0 { BTreeSet::new() } else { g }));
        (
            prop::collection::vec(device, 1..10),
            prop::collection::vec(
                prop::collection::btree_set(0..profiles, 0..=profiles),
                packages,
            ),
        )
            .prop_map(move |(devices, packages)| Fleet {
                profiles,
                groups,
                devices,
                packages,
            })
    })
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => (0u8..3, 0usize..16, 0usize..16, any::<bool>(), 0i64..3)
            .prop_map(|(l, t, p, k, dt)| Op::Assign(l, t, p, k, dt)),
        1 => (0u8..3, 0usize..16, any::<bool>()).prop_map(|(l, t, k)| Op::Unassign(l, t, k)),
    ];
    prop::collection::vec(op, 0..40)
}

/// The reference: scan every live assignment of the device's groups and pick by the rules.
fn reference(
    device: &Device,
    kind: PackageKind,
    live: &BTreeMap<(PackageKind, AssignmentTarget), Assignment>,
    compatible: &dyn Fn(PackageId, ProfileId) -> bool,
) -> Option<Effective> {
    let eff = |a: &Assignment, level| Effective {
        package_id: a.package_id,
        level,
        assignment_id: a.id,
        assigned_at: a.assigned_at,
    };
    let ok = |a: &Assignment| compatible(a.package_id, device.profile_id);
    if let Some(a) = live.get(&(kind, AssignmentTarget::Device(device.id))) {
        if ok(a) {
            return Some(eff(a, AssignmentLevel::Device));
        }
    }
    let mut best: Option<(&Assignment, GroupId)> = None;
    for g in &device.groups {
        if let Some(a) = live.get(&(kind, AssignmentTarget::Group(*g))) {
            if !ok(a) {
                continue;
            }
            let better = match best {
                None => true,
                Some((b, bg)) => {
                    a.assigned_at > b.assigned_at || (a.assigned_at == b.assigned_at && *g < bg)
                }
            };
            if better {
                best = Some((a, *g));
            }
        }
    }
    if let Some((a, _)) = best {
        return Some(eff(a, AssignmentLevel::Group));
    }
    live.get(&(kind, AssignmentTarget::Profile(device.profile_id)))
        .filter(|a| ok(a))
        .map(|a| eff(a, AssignmentLevel::Profile))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn resolvers_match_the_reference(fleet in fleet(), ops in ops()) {
        let tenant = TenantId::from_uuid(Uuid::from_u128(7));
        let foreign = TenantId::from_uuid(Uuid::from_u128(8));
        // Small, ordered ids so that group-id tie-breaks are exercised deterministically.
        let profiles: Vec<ProfileId> =
            (0..fleet.profiles).map(|i| ProfileId::from_uuid(Uuid::from_u128(100 + i as u128))).collect();
        let groups: Vec<GroupId> =
            (0..fleet.groups).map(|i| GroupId::from_uuid(Uuid::from_u128(200 + i as u128))).collect();
        let packages: Vec<PackageId> =
            (0..fleet.packages.len()).map(|i| PackageId::from_uuid(Uuid::from_u128(300 + i as u128))).collect();
        let devices: Vec<Device> = fleet.devices.iter().enumerate().map(|(i, (p, gs))| Device {
            id: DeviceId::from_uuid(Uuid::from_u128(400 + i as u128)),
            tenant_id: tenant,
            name: String::new(),
            profile_id: profiles[*p],
            groups: gs.iter().map(|g| groups[*g]).collect(),
            access_token: String::new(),
            current: CurrentVersions::default(),
            created_at: t(0),
        }).collect();
        let compat: HashMap<PackageId, HashSet<ProfileId>> = packages.iter().zip(&fleet.packages)
            .map(|(id, ps)| (*id, ps.iter().map(|p| profiles[*p]).collect()))
            .collect();
        let compatible = |pkg: PackageId, profile: ProfileId| {
            compat.get(&pkg).is_some_and(|ps| ps.contains(&profile))
        };
        let target = |level: u8, i: usize| -> AssignmentTarget {
            match level {
                0 => AssignmentTarget::Device(devices[i % devices.len()].id),
                1 if !groups.is_empty() => AssignmentTarget::Group(groups[i % groups.len()]),
                1 => AssignmentTarget::Group(GroupId::from_uuid(Uuid::from_u128(999))),
                _ => AssignmentTarget::Profile(profiles[i % profiles.len()]),
            }
        };
        let kind_of = |sw: bool| if sw { PackageKind::Software } else { PackageKind::Firmware };

        let mut live: BTreeMap<(PackageKind, AssignmentTarget), Assignment> = BTreeMap::new();
        let mut now = 0i64;
        let mut next_id = 1000u128;
        for op in &ops {
            match *op {
                Op::Assign(level, ti, pi, sw, dt) => {
                    now += dt;
                    next_id += 1;
                    let a = Assignment {
                        id: AssignmentId::from_uuid(Uuid::from_u128(next_id)),
                        tenant_id: tenant,
                        kind: kind_of(sw),
                        target: target(level, ti),
                        package_id: packages[pi % packages.len()],
                        assigned_at: t(now),
                        assigned_by: "prop".into(),
                    };
                    live.insert((a.kind, a.target), a);
                }
                Op::Unassign(level, ti, sw) => {
                    live.remove(&(kind_of(sw), target(level, ti)));
                }
            }
        }
        // Another tenant's assignments to the same targets must change nothing.
        let mut all: Vec<Assignment> = live.values().cloned().collect();
        for a in live.values() {
            let mut f = a.clone();
            f.tenant_id = foreign;
            f.id = AssignmentId::from_uuid(Uuid::from_u128(next_id + 1 + all.len() as u128));
            f.assigned_at = t(now + 10);
            all.push(f);
        }
        for kind in PackageKind::ALL {
            let index = AssignmentIndex::new(kind, all.iter().cloned());
            for d in &devices {
                let expected = reference(d, kind, &live, &compatible);
                prop_assert_eq!(resolve(d, kind, &all, compatible), expected);
                prop_assert_eq!(index.resolve(d, compatible), expected);
            }
        }
    }
}
