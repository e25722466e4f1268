//! The effective package of a device: precedence between device, group and profile
//! assignments, and compatibility.
//!
//! For one kind, a device's effective package is decided level by level:
//!
//! 1. its **device**-level assignment, if the package is compatible with the device's profile;
//! 2. else, among the **group**-level assignments of the groups it belongs to whose package is
//!    compatible, the most recent one (ties broken by the smaller group id, then the smaller
//!    assignment id);
//! 3. else, its **profile**'s assignment, if compatible.
//!
//! An incompatible package is never effective: resolution falls through to the next level.
//! Only assignments of the requested kind and of the device's tenant are considered.
//!
//! ## Who wins
//!
//! The engine keeps **at most one live update per device and kind** (live: not yet UPDATED,
//! FAILED or CANCELED, or FAILED with an automatic retry pending). This table says which of
//! two competing wishes a device ends up with. "Newer" and "older" compare the time of the
//! assignment with the creation time of the update.
//!
//! | competing | who wins | what happens to the loser |
//! | --- | --- | --- |
//! | device-level vs group-level vs profile-level assignment | **device > group > profile** | the lower level is not effective while a higher one yields a compatible package |
//! | two group assignments of the device's groups | the **most recent** compatible one (ties: smaller group id, then smaller assignment id) | not effective |
//! | an assignment whose package is incompatible with the device's profile | **the next level** | never effective, never sent |
//! | a live update vs a newly effective package | **the newer package** (latest assignment wins) | canceled ("replaced by ..."); a device that was told gets the withdrawal notice |
//! | a live update vs the package the device already runs becoming effective | **what the device runs**: no new update | canceled, withdrawal notice if it was sent |
//! | a campaign's update vs an assignment **older** than the update (a device moved, an older assignment re-evaluated) | **the campaign** | the assignment waits; re-evaluations never undo or downgrade a campaign's work |
//! | a campaign's update vs an assignment **newer** than the update, to another package | **the assignment** | the campaign update is canceled (counted as canceled in the campaign) |
//! | a campaign's update vs a newer assignment of the same package | **the update stands** | nothing to do |
//! | a campaign's update vs its device moving to a profile the package does not support | **compatibility** | canceled with the reason "incompatible with the device's profile" (counted as canceled), never released |
//! | a new campaign vs a device with a live update or a pending automatic retry | **the update in hand** | the device is skipped as busy |
//! | a retry (automatic, operator, or a campaign's "retry all failed") vs a newer update, a changed effective package, an unassignment, an ended campaign, an incompatible package, or a device that already runs the target | **the current state of things** | the automatic retry is dropped (history says why; when the device is recorded as running the target, the update completes as UPDATED instead), the operator's retry refused with the reason, the campaign retry skips the device |
//!
//! [`resolve`] answers for one device from a list of assignments; [`AssignmentIndex`] is built
//! once from all assignments of a tenant and kind and answers in O(groups of the device), for
//! resolving whole fleets.

use crate::assignment::{Assignment, AssignmentLevel, AssignmentTarget};
use crate::clock::Timestamp;
use crate::device::Device;
use crate::ids::{AssignmentId, GroupId, PackageId, ProfileId, TenantId};
use crate::package::PackageKind;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// The package that is effective for a device, and the assignment that made it so.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effective {
    /// The effective package.
    pub package_id: PackageId,
    /// The level of the deciding assignment.
    pub level: AssignmentLevel,
    /// The deciding assignment.
    pub assignment_id: AssignmentId,
    /// When the deciding assignment was made.
    pub assigned_at: Timestamp,
}

/// One candidate assignment, reduced to what precedence needs.
#[derive(Clone, Copy, Debug)]
struct Entry {
    tenant_id: TenantId,
    package_id: PackageId,
    assignment_id: AssignmentId,
    assigned_at: Timestamp,
}

impl Entry {
    fn of(a: &Assignment) -> Self {
        Self {
            tenant_id: a.tenant_id,
            package_id: a.package_id,
            assignment_id: a.id,
            assigned_at: a.assigned_at,
        }
    }

    fn effective(&self, level: AssignmentLevel) -> Effective {
        Effective {
            package_id: self.package_id,
            level,
            assignment_id: self.assignment_id,
            assigned_at: self.assigned_at,
        }
    }
}

/// Preference between two candidates of the same level: `Less` when `a` is preferred.
/// The most recent wins, then the smaller group id (`None` for non-group levels), then the
/// smaller assignment id.
fn prefer(a: (&Entry, Option<GroupId>), b: (&Entry, Option<GroupId>)) -> Ordering {
    b.0.assigned_at
        .cmp(&a.0.assigned_at)
        .then_with(|| a.1.cmp(&b.1))
        .then_with(|| a.0.assignment_id.cmp(&b.0.assignment_id))
}

/// Keeps in `best` the preferred compatible candidate; `compatible` is only asked when the
/// candidate would be preferred.
fn consider<F>(
    best: &mut Option<(Entry, Option<GroupId>)>,
    candidate: &Entry,
    group: Option<GroupId>,
    profile: ProfileId,
    compatible: &F,
) where
    F: Fn(PackageId, ProfileId) -> bool,
{
    let better = match best {
        None => true,
        Some((e, g)) => prefer((candidate, group), (e, *g)) == Ordering::Less,
    };
    if better && compatible(candidate.package_id, profile) {
        *best = Some((*candidate, group));
    }
}

/// The effective package of `device` for `kind`, from `assignments` (which may contain
/// assignments of other kinds, tenants and targets: they are ignored).
///
/// `compatible(package, profile)` says whether a package can be installed on a profile.
/// Returns `None` when no level yields a compatible package.
pub fn resolve(
    device: &Device,
    kind: PackageKind,
    assignments: &[Assignment],
    compatible: impl Fn(PackageId, ProfileId) -> bool,
) -> Option<Effective> {
    let profile = device.profile_id;
    let mut device_best = None;
    let mut group_best = None;
    let mut profile_best = None;
    for a in assignments {
        if a.kind != kind || a.tenant_id != device.tenant_id {
            continue;
        }
        let entry = Entry::of(a);
        match a.target {
            AssignmentTarget::Device(id) if id == device.id => {
                consider(&mut device_best, &entry, None, profile, &compatible);
            }
            AssignmentTarget::Group(id) if device.groups.contains(&id) => {
                consider(&mut group_best, &entry, Some(id), profile, &compatible);
            }
            AssignmentTarget::Profile(id) if id == profile => {
                consider(&mut profile_best, &entry, None, profile, &compatible);
            }
            _ => {}
        }
    }
    device_best
        .map(|(e, _)| e.effective(AssignmentLevel::Device))
        .or_else(|| group_best.map(|(e, _)| e.effective(AssignmentLevel::Group)))
        .or_else(|| profile_best.map(|(e, _)| e.effective(AssignmentLevel::Profile)))
}

/// The assignments of one kind, indexed by target, for resolving many devices.
///
/// Built once (O(assignments)); [`AssignmentIndex::resolve`] then answers in O(groups of the
/// device) hash look-ups, with the same result as [`resolve`] over the same assignments.
/// Assignments of other kinds passed to [`AssignmentIndex::new`] are dropped; assignments of
/// other tenants than the device's are ignored when resolving.
#[derive(Clone, Debug)]
pub struct AssignmentIndex {
    kind: PackageKind,
    // Keyed by the target's UUID as a number, which hashes in one step.
    devices: HashMap<u128, Vec<Entry>, IdHashBuilder>,
    groups: HashMap<u128, Vec<Entry>, IdHashBuilder>,
    profiles: HashMap<u128, Vec<Entry>, IdHashBuilder>,
}

/// Builds [`IdHasher`]s with a per-index random seed.
#[derive(Clone, Debug)]
struct IdHashBuilder(u64);

impl IdHashBuilder {
    fn new() -> Self {
        Self(RandomState::new().hash_one(0x07a5_u64))
    }
}

impl BuildHasher for IdHashBuilder {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.0)
    }
}

/// A fast hasher for ids (UUIDs): a multiply-rotate fold of 8-byte words and a final mix.
/// The keys are ids the library generated, so flooding resistance matters less than speed
/// when resolving whole fleets; the seed is still random per index.
#[derive(Clone, Debug)]
struct IdHasher(u64);

impl IdHasher {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(
                <[u8; 8]>::try_from(chunk).unwrap_or_default(),
            ));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            self.add(rest.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)));
        }
    }

    #[inline]
    fn write_u128(&mut self, i: u128) {
        // Both halves; the truncation is the split.
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The finalizer of MurmurHash3: every input bit affects every output bit.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

impl AssignmentIndex {
    /// Indexes the assignments of `kind` among `assignments`.
    pub fn new(kind: PackageKind, assignments: impl IntoIterator<Item = Assignment>) -> Self {
        let mut index = Self {
            kind,
            devices: HashMap::with_hasher(IdHashBuilder::new()),
            groups: HashMap::with_hasher(IdHashBuilder::new()),
            profiles: HashMap::with_hasher(IdHashBuilder::new()),
        };
        for a in assignments {
            if a.kind != kind {
                continue;
            }
            let entry = Entry::of(&a);
            match a.target {
                AssignmentTarget::Device(id) => index
                    .devices
                    .entry(id.as_uuid().as_u128())
                    .or_default()
                    .push(entry),
                AssignmentTarget::Group(id) => index
                    .groups
                    .entry(id.as_uuid().as_u128())
                    .or_default()
                    .push(entry),
                AssignmentTarget::Profile(id) => index
                    .profiles
                    .entry(id.as_uuid().as_u128())
                    .or_default()
                    .push(entry),
            }
        }
        // Within one target, the preferred entry first: resolution takes the first compatible.
        let order = |a: &Entry, b: &Entry| prefer((a, None), (b, None));
        for list in index.devices.values_mut() {
            list.sort_by(order);
        }
        for list in index.groups.values_mut() {
            list.sort_by(order);
        }
        for list in index.profiles.values_mut() {
            list.sort_by(order);
        }
        index
    }

    /// The kind this index holds.
    pub fn kind(&self) -> PackageKind {
        self.kind
    }

    /// The number of indexed assignments.
    pub fn len(&self) -> usize {
        self.devices.values().map(Vec::len).sum::<usize>()
            + self.groups.values().map(Vec::len).sum::<usize>()
            + self.profiles.values().map(Vec::len).sum::<usize>()
    }

    /// Whether no assignment is indexed.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty() && self.groups.is_empty() && self.profiles.is_empty()
    }

    /// The effective package of `device` for this index's kind; same result as [`resolve`].
    pub fn resolve(
        &self,
        device: &Device,
        compatible: impl Fn(PackageId, ProfileId) -> bool,
    ) -> Option<Effective> {
        let tenant = device.tenant_id;
        let profile = device.profile_id;
        let first_compatible = |list: Option<&Vec<Entry>>| {
            list.into_iter()
                .flatten()
                .find(|e| e.tenant_id == tenant && compatible(e.package_id, profile))
                .copied()
        };
        if !self.devices.is_empty() {
            if let Some(e) = first_compatible(self.devices.get(&device.id.as_uuid().as_u128())) {
                return Some(e.effective(AssignmentLevel::Device));
            }
        }
        if !self.groups.is_empty() {
            let mut best: Option<(&Entry, GroupId)> = None;
            for group in &device.groups {
                let Some(list) = self.groups.get(&group.as_uuid().as_u128()) else {
                    continue;
                };
                // Sorted by preference: the first compatible entry is this group's candidate.
                for e in list {
                    let better = match best {
                        None => true,
                        Some((b, g)) => prefer((e, Some(*group)), (b, Some(g))) == Ordering::Less,
                    };
                    if !better {
                        break;
                    }
                    if e.tenant_id == tenant && compatible(e.package_id, profile) {
                        best = Some((e, *group));
                        break;
                    }
                }
            }
            if let Some((e, _)) = best {
                return Some(e.effective(AssignmentLevel::Group));
            }
        }
        first_compatible(self.profiles.get(&profile.as_uuid().as_u128()))
            .map(|e| e.effective(AssignmentLevel::Profile))
    }
}
