//! Fault injection on the memory store: random sequences of management writes (create,
//! rename and delete profiles, create devices in them, an operator's cancel and retry of a
//! device's update), each with its audit entry, some with an injected fault in the audit step
//! (an entry whose id is taken, which the store must refuse) and many that fail on their own
//! (a taken name, an unknown profile, a profile in use, a cancel of a canceled update). After
//! every step: a write that failed left no entry and no effect, one that succeeded left
//! exactly one entry, and replaying the audit log gives the profiles, devices and operator
//! transitions (per update, as its history tells) the store holds (both or neither).

use ota_core::audit::AuditEntry;
use ota_core::device::{CurrentVersions, Device, DeviceProfile};
use ota_core::memory::MemoryStore;
use ota_core::store::{
    AuditStore, AuditedTransition, DeviceSelector, DeviceStore, PageRequest, StoreError,
    Transition, UpdateStore, MAX_PAGE_SIZE,
};
use ota_core::update::{
    apply, EventSource, HistoryOutcome, Outcome, Update, UpdateEvent, UpdatePolicy,
};
use ota_core::{
    DeviceId, PackageId, PackageKind, ProfileId, TenantId, Timestamp, TitleVersion, UpdateId,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// One management write; `fault` reuses the id of the first audit entry for its entry.
#[derive(Clone, Debug)]
enum Op {
    Create {
        slot: usize,
        name: u8,
        fault: bool,
    },
    Rename {
        slot: usize,
        name: u8,
        fault: bool,
    },
    Delete {
        slot: usize,
        fault: bool,
    },
    AddDevice {
        slot: usize,
        fault: bool,
    },
    /// An operator's cancel (`retry: false`) or retry of one of the fixed updates.
    Operate {
        update: usize,
        retry: bool,
        fault: bool,
    },
}

impl Op {
    /// Whether the write's entry takes the id of the first entry (which the store refuses).
    fn fault(&self) -> bool {
        match *self {
            Op::Create { fault, .. }
            | Op::Rename { fault, .. }
            | Op::Delete { fault, .. }
            | Op::AddDevice { fault, .. }
            | Op::Operate { fault, .. } => fault,
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    (0u8..6, 0usize..3, 0u8..4, any::<bool>(), 0u8..5).prop_map(|(kind, slot, name, f, p)| {
        // Faults in about one write of five.
        let fault = f && p == 0;
        match kind {
            0 => Op::Create { slot, name, fault },
            1 => Op::Rename { slot, name, fault },
            2 => Op::Delete { slot, fault },
            3 => Op::AddDevice { slot, fault },
            _ => Op::Operate {
                update: slot,
                retry: name % 2 == 1,
                fault,
            },
        }
    })
}

fn profile(tenant: TenantId, id: ProfileId, name: String) -> DeviceProfile {
    DeviceProfile {
        id,
        tenant_id: tenant,
        name,
        created_at: Timestamp::default(),
    }
}

struct World {
    store: MemoryStore,
    tenant: TenantId,
    /// The profile id of each slot (a slot keeps its id once used, even when deleted).
    slots: Vec<ProfileId>,
    devices: u32,
    /// The updates operator transitions act on (of fixed devices).
    updates: Vec<UpdateId>,
}

/// Operator transitions per (update, event): as logged, or as the history tells.
type Operated = BTreeMap<(String, String), u32>;

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

    /// Creates `profile` with its entry (`fault`: an entry whose id is taken).
    async fn create_profile(&self, profile: &DeviceProfile, fault: bool) -> Result<(), StoreError> {
        let e = self
            .entry(
                "profile.create",
                profile.id.to_string(),
                fault,
                serde_json::json!({"name": profile.name}),
            )
            .await;
        self.store.create_profile(profile, Some(&e)).await
    }

    /// A new device `name` of profile `profile_id`, with an access token of its own.
    fn device(&self, name: String, profile_id: ProfileId) -> Device {
        Device {
            id: DeviceId::new(),
            tenant_id: self.tenant,
            access_token: format!("{}-{name}", self.tenant),
            name,
            profile_id,
            groups: BTreeSet::new(),
            current: CurrentVersions::default(),
            created_at: Timestamp::default(),
        }
    }

    /// Creates `device` with its entry (`fault`: an entry whose id is taken).
    async fn create_device(&self, device: &Device, fault: bool) -> Result<(), StoreError> {
        let e = self
            .entry(
                "device.create",
                device.name.clone(),
                fault,
                serde_json::json!({}),
            )
            .await;
        self.store
            .create_devices(std::slice::from_ref(device), Some(&e))
            .await
    }

    async fn apply(&mut self, op: &Op) -> Result<(), StoreError> {
        let tenant = self.tenant;
        match *op {
            Op::Create { slot, name, fault } => {
                let p = profile(tenant, self.slots[slot], format!("n{name}"));
                self.create_profile(&p, fault).await
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
                let d = self.device(format!("d{}", self.devices), self.slots[slot]);
                self.create_device(&d, fault).await
            }
            Op::Operate {
                update,
                retry,
                fault,
            } => {
                let current = self.store.get_update(tenant, self.updates[update]).await?;
                let event = if retry {
                    UpdateEvent::Retry {
                        source: EventSource::Operator,
                    }
                } else {
                    UpdateEvent::Cancel {
                        source: EventSource::Operator,
                        reason: "prop".into(),
                    }
                };
                let Outcome::Applied { update, history } = apply(
                    &current,
                    &event,
                    Timestamp::default(),
                    &UpdatePolicy::default(),
                ) else {
                    return Err(StoreError::precondition("the event does not apply"));
                };
                let e = self
                    .entry(
                        &format!("update.{}", event.name()),
                        current.id.to_string(),
                        fault,
                        serde_json::json!({}),
                    )
                    .await;
                let write = AuditedTransition {
                    transition: Transition {
                        update,
                        expected_revision: current.revision,
                        history,
                    },
                    audit: e,
                    notice: None,
                    lease: None,
                };
                self.store
                    .transition_audited(&write)
                    .await
                    .expect("the memory store writes operator transitions with their entry")
            }
        }
    }

    /// The fixed profile, devices and their updates the operator transitions act on, each
    /// created with its entry.
    async fn setup(&mut self) {
        let profile = profile(self.tenant, ProfileId::new(), "fixed".into());
        self.create_profile(&profile, false).await.unwrap();
        let package = PackageId::new();
        for i in 0..3 {
            let d = self.device(format!("fixed{i}"), profile.id);
            self.create_device(&d, false).await.unwrap();
            let u = Update::new(
                self.tenant,
                d.id,
                PackageKind::Firmware,
                package,
                TitleVersion::new("fw", "2.0"),
                None,
                Timestamp::default(),
            );
            self.store
                .create_updates(std::slice::from_ref(&u))
                .await
                .unwrap();
            self.updates.push(u.id);
        }
    }

    /// Operator transitions as the updates' history tells.
    async fn operated(&self) -> Operated {
        let mut done = Operated::new();
        for id in &self.updates {
            for h in self.store.update_history(self.tenant, *id).await.unwrap() {
                if h.source == EventSource::Operator && h.outcome == HistoryOutcome::Applied {
                    *done.entry((id.to_string(), h.event)).or_default() += 1;
                }
            }
        }
        done
    }

    /// Replays the log: profiles (id -> name), device names and operator transitions.
    async fn replayed(&self) -> (BTreeMap<String, String>, BTreeSet<String>, Operated) {
        let mut profiles = BTreeMap::new();
        let mut devices = BTreeSet::new();
        let mut operated = Operated::new();
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
                "update.cancel" | "update.retry" => {
                    let event = e.action.trim_start_matches("update.").to_string();
                    *operated.entry((e.target, event)).or_default() += 1;
                }
                _ => {}
            }
        }
        (profiles, devices, operated)
    }

    async fn stored(&self) -> (BTreeMap<String, String>, BTreeSet<String>, Operated) {
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
        (profiles, devices, self.operated().await)
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
            updates: Vec::new(),
        };
        world.setup().await;
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
            if op.fault() && before > 0 && answer.is_ok() {
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
