//! Fault injection on the memory store: random sequences of management writes (create,
//! rename and delete profiles, create devices in them), each with its audit entry, some with
//! an injected fault in the audit step (an entry whose id is taken, which the store must
//! refuse) and many that fail on their own (a taken name, an unknown profile, a profile in
//! use). After every step: a write that failed left no entry and no effect, one that
//! succeeded left exactly one entry, and replaying the audit log gives the profiles and
//! devices the store holds (both or neither).

use ota_core::audit::AuditEntry;
use ota_core::device::{CurrentVersions, Device, DeviceProfile};
use ota_core::memory::MemoryStore;
use ota_core::store::{
    AuditStore, DeviceSelector, DeviceStore, PageRequest, StoreError, MAX_PAGE_SIZE,
};
use ota_core::{DeviceId, ProfileId, TenantId, Timestamp};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// One management write; `fault` reuses the id of the first audit entry for its entry.
#[derive(Clone, Debug)]
enum Op {
    Create { slot: usize, name: u8, fault: bool },
    Rename { slot: usize, name: u8, fault: bool },
    Delete { slot: usize, fault: bool },
    AddDevice { slot: usize, fault: bool },
}

fn op() -> impl Strategy<Value = Op> {
    (0u8..4, 0usize..3, 0u8..4, any::<bool>(), 0u8..5).prop_map(|(kind, slot, name, f, p)| {
        // Faults in about one write of five.
        let fault = f && p == 0;
        match kind {
            0 => Op::Create { slot, name, fault },
            1 => Op::Rename { slot, name, fault },
            2 => Op::Delete { slot, fault },
            _ => Op::AddDevice { slot, fault },
        }
    })
}

struct World {
    store: MemoryStore,
    tenant: TenantId,
    /// The profile id of each slot (a slot keeps its id once used, even when deleted).
    slots: Vec<ProfileId>,
    devices: u32,
}

impl World {
    async fn log(&self) -> Vec<AuditEntry> {
        self.store
            .list_audit(self.tenant, PageRequest::first(MAX_PAGE_SIZE))
            .await
            .unwrap()
            .items
    }

    async fn entry(
        &self,
        action: &str,
        target: String,
        fault: bool,
        details: serde_json::Value,
    ) -> AuditEntry {
        let mut e = AuditEntry::new(
            self.tenant,
            "prop",
            action,
            target,
            Timestamp::default(),
            details,
        );
        if fault {
            if let Some(first) = self.log().await.first() {
                e.id = first.id;
            }
        }
        e
    }

    async fn apply(&mut self, op: &Op) -> Result<(), StoreError> {
        let tenant = self.tenant;
        match *op {
            Op::Create { slot, name, fault } => {
                let p = DeviceProfile {
                    id: self.slots[slot],
                    tenant_id: tenant,
                    name: format!("n{name}"),
                    created_at: Timestamp::default(),
                };
                let e = self
                    .entry(
                        "profile.create",
                        format!("{}", p.id),
                        fault,
                        serde_json::json!({"name": p.name}),
                    )
                    .await;
                self.store.create_profile(&p, Some(&e)).await
            }
            Op::Rename { slot, name, fault } => {
                let id = self.slots[slot];
                let to = format!("n{name}");
                let e = self
                    .entry(
                        "profile.rename",
                        format!("{id}"),
                        fault,
                        serde_json::json!({"to": to}),
                    )
                    .await;
                self.store
                    .rename_profile(tenant, id, &to, Some(&e))
                    .await
                    .map(|_| ())
            }
            Op::Delete { slot, fault } => {
                let id = self.slots[slot];
                let e = self
                    .entry(
                        "profile.delete",
                        format!("{id}"),
                        fault,
                        serde_json::json!({}),
                    )
                    .await;
                self.store
                    .delete_profile(tenant, id, Some(&e))
                    .await
                    .map(|_| ())
            }
            Op::AddDevice { slot, fault } => {
                self.devices += 1;
                let d = Device {
                    id: DeviceId::new(),
                    tenant_id: tenant,
                    name: format!("d{}", self.devices),
                    profile_id: self.slots[slot],
                    groups: BTreeSet::new(),
                    access_token: format!("{tenant}-{}", self.devices),
                    current: CurrentVersions::default(),
                    created_at: Timestamp::default(),
                };
                let e = self
                    .entry(
                        "device.create",
                        d.name.clone(),
                        fault,
                        serde_json::json!({}),
                    )
                    .await;
                self.store.create_devices(&[d], Some(&e)).await
            }
        }
    }

    /// Replays the log: profiles (id -> name) and device names.
    async fn replayed(&self) -> (BTreeMap<String, String>, BTreeSet<String>) {
        let mut profiles = BTreeMap::new();
        let mut devices = BTreeSet::new();
        for e in self.log().await {
            match e.action.as_str() {
                "profile.create" => {
                    profiles.insert(e.target, e.details["name"].as_str().unwrap().to_string());
                }
                "profile.rename" => {
                    profiles.insert(e.target, e.details["to"].as_str().unwrap().to_string());
                }
                "profile.delete" => {
                    profiles.remove(&e.target);
                }
                "device.create" => {
                    devices.insert(e.target);
                }
                _ => {}
            }
        }
        (profiles, devices)
    }

    async fn stored(&self) -> (BTreeMap<String, String>, BTreeSet<String>) {
        let profiles = self
            .store
            .list_profiles(self.tenant, PageRequest::first(MAX_PAGE_SIZE))
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|p| (p.id.to_string(), p.name))
            .collect();
        let devices = self
            .store
            .list_devices(
                self.tenant,
                DeviceSelector::All,
                PageRequest::first(MAX_PAGE_SIZE),
            )
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|d| d.name)
            .collect();
        (profiles, devices)
    }
}

fn run(ops: &[Op]) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut world = World {
            store: MemoryStore::new(),
            tenant: TenantId::new(),
            slots: (0..3).map(|_| ProfileId::new()).collect(),
            devices: 0,
        };
        for (i, op) in ops.iter().enumerate() {
            let before = world.log().await.len();
            let stored_before = world.stored().await;
            let answer = world.apply(op).await;
            let after = world.log().await.len();
            match &answer {
                Ok(()) => {
                    if after != before + 1 {
                        return Err(format!(
                            "step {i} {op:?} succeeded with {} entries",
                            after - before
                        ));
                    }
                }
                Err(e) => {
                    if after != before {
                        return Err(format!("step {i} {op:?} failed ({e}) but wrote an entry"));
                    }
                    if world.stored().await != stored_before {
                        return Err(format!(
                            "step {i} {op:?} failed ({e}) but changed the store"
                        ));
                    }
                }
            }
            let faulty = matches!(
                op,
                Op::Create { fault: true, .. }
                    | Op::Rename { fault: true, .. }
                    | Op::Delete { fault: true, .. }
                    | Op::AddDevice { fault: true, .. }
            );
            if faulty && before > 0 && answer.is_ok() {
                return Err(format!(
                    "step {i} {op:?}: an entry reusing an id was accepted"
                ));
            }
            if world.replayed().await != world.stored().await {
                return Err(format!(
                    "step {i} {op:?}: the audit log and the store disagree"
                ));
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn audited_writes_are_both_or_neither_under_faults(ops in proptest::collection::vec(op(), 1..40)) {
        if let Err(e) = run(&ops) {
            prop_assert!(false, "{}", e);
        }
    }
}
