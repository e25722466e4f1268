//! Notices through the outbox, over the memory store with a manual clock: a delivery that
//! fails (or a process that dies before delivering) leaves the notice in the outbox until its
//! lease lapses; a restarted engine under the same instance id takes its claims back at once;
//! withdrawals go through the outbox and replace older notices; an instance delivers only to
//! the devices it reaches. A property test drives random ticks, restarts, transport failures
//! and device reports and checks that no released device is left untold.
#![allow(clippy::field_reassign_with_default)]

mod support;

use async_trait::async_trait;
use chrono::Duration;
use ota_core::engine::{Ota, OtaConfig};
use ota_core::notifier::{Notice, Notifier, NotifyError};
use ota_core::store::{ClaimRequest, NoticeOutbox, QueueScope, UpdateStore};
use ota_core::{AssignmentTarget, DeviceId, UpdateState};
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use support::*;

/// A transport that can be down, reaches some devices or all, and records what it delivered.
#[derive(Default)]
struct Gate {
    down: AtomicBool,
    reach: Option<Vec<DeviceId>>,
    seen: Mutex<Vec<Notice>>,
}

impl Gate {
    fn up() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn down() -> Arc<Self> {
        let g = Self::default();
        g.down.store(true, Ordering::SeqCst);
        Arc::new(g)
    }

    fn reaching(devices: Vec<DeviceId>) -> Arc<Self> {
        Arc::new(Self {
            reach: Some(devices),
            ..Self::default()
        })
    }

    fn seen(&self) -> Vec<Notice> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl Notifier for Gate {
    async fn notify(&self, notice: &Notice) -> Result<(), NotifyError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(NotifyError {
                message: "transport down".into(),
            });
        }
        self.seen.lock().unwrap().push(notice.clone());
        Ok(())
    }

    fn reachable_devices(&self) -> Option<Vec<DeviceId>> {
        self.reach.clone()
    }
}

fn config(instance: &str) -> OtaConfig {
    let mut c = OtaConfig::default();
    c.instance_id = instance.to_string();
    c
}

/// An engine over the harness's store and clock.
fn engine(h: &Harness, instance: &str, notifier: Arc<Gate>) -> Ota {
    Ota::new(h.store.clone(), notifier, h.clock.clone(), config(instance))
}

async fn undelivered(h: &Harness) -> u64 {
    h.store.count_undelivered(Some(h.tenant)).await.unwrap()
}

async fn assigned_fleet(h: &Harness, n: usize) -> Vec<ota_core::Device> {
    let p = h.profile("p").await;
    let devices = h.devices(&p, "d", n).await;
    let f = h.package("fw", "2.0").await;
    h.ota
        .assign(ACTOR, h.tenant, AssignmentTarget::Profile(p.id), f.id)
        .await
        .unwrap();
    devices
}

#[tokio::test]
async fn a_failed_delivery_stays_in_the_outbox_until_its_lease_lapses() {
    let h = Harness::new(config("setup"));
    assigned_fleet(&h, 3).await;
    let gate = Gate::down();
    let a = engine(&h, "a", gate.clone());
    let first = a.tick().await.unwrap();
    assert_eq!((first.released, first.notify_failures), (3, 3));
    assert_eq!(undelivered(&h).await, 3, "the notices wait in the outbox");
    gate.down.store(false, Ordering::SeqCst);
    let early = a.tick().await.unwrap();
    assert_eq!(
        early.redelivered, 0,
        "the lease of the failed delivery holds"
    );
    h.clock.advance(Duration::seconds(31));
    let late = a.tick().await.unwrap();
    assert_eq!(late.redelivered, 3);
    assert_eq!(undelivered(&h).await, 0);
    assert_eq!(gate.seen().len(), 3, "each device told once");
    let again = a.tick().await.unwrap();
    assert_eq!(again.redelivered, 0, "delivered notices are gone");
}

#[tokio::test]
async fn a_restarted_engine_takes_back_its_claims_and_notices_at_once() {
    let h = Harness::new(config("setup"));
    let devices = assigned_fleet(&h, 5).await;
    // Process "a" released three devices and died before telling them.
    let dead = engine(&h, "a", Gate::down());
    let mut one_by_one = config("a");
    one_by_one.claim_batch = 3;
    one_by_one.max_batches_per_tick = 1;
    let dead_released = Ota::new(h.store.clone(), Gate::down(), h.clock.clone(), one_by_one)
        .tick()
        .await
        .unwrap();
    assert_eq!(dead_released.released, 3);
    drop(dead);
    // ... and had claimed the other two, about to release them.
    let claimed = h
        .store
        .claim_queued(
            &ClaimRequest {
                now: h.ota.now(),
                limit: 10,
                owner: "a".into(),
                lease: Duration::seconds(30),
            },
            QueueScope::Direct,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);

    // Another instance must wait for the leases.
    let other = Gate::up();
    let b = engine(&h, "b", other.clone()).tick().await.unwrap();
    assert_eq!((b.released, b.redelivered), (0, 0));
    // The restarted "a" takes both back at once.
    let gate = Gate::up();
    let restarted = engine(&h, "a", gate.clone()).tick().await.unwrap();
    assert_eq!((restarted.released, restarted.redelivered), (2, 3));
    let mut told: Vec<DeviceId> = gate.seen().iter().map(Notice::device_id).collect();
    told.sort();
    let mut all: Vec<DeviceId> = devices.iter().map(|d| d.id).collect();
    all.sort();
    assert_eq!(told, all, "every device told once");
    assert!(other.seen().is_empty());
}

#[tokio::test]
async fn withdrawals_go_through_the_outbox_and_replace_older_notices() {
    let h = Harness::new(config("setup"));
    let p = h.profile("p").await;
    let devices = h.devices(&p, "d", 1).await;
    let f = h.package("fw", "2.0").await;
    let gate = Gate::down();
    let a = engine(&h, "a", gate.clone());
    a.assign(ACTOR, h.tenant, AssignmentTarget::Profile(p.id), f.id)
        .await
        .unwrap();
    assert_eq!(a.tick().await.unwrap().released, 1);
    a.unassign(ACTOR, h.tenant, f.kind, AssignmentTarget::Profile(p.id))
        .await
        .unwrap();
    assert_eq!(
        undelivered(&h).await,
        1,
        "the withdrawal replaced the undelivered update notice"
    );
    gate.down.store(false, Ordering::SeqCst);
    h.clock.advance(Duration::seconds(31));
    assert_eq!(a.tick().await.unwrap().redelivered, 1);
    let seen = gate.seen();
    assert_eq!(seen.len(), 1);
    assert!(
        matches!(&seen[0], Notice::Withdrawal { device_id, .. } if *device_id == devices[0].id),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_cancel_writes_its_withdrawal_to_the_outbox_with_the_cancel() {
    let h = Harness::new(config("setup"));
    let p = h.profile("p").await;
    let devices = h.devices(&p, "d", 1).await;
    let f = h.package("fw", "2.0").await;
    let gate = Gate::down();
    let a = engine(&h, "a", gate.clone());
    a.assign(ACTOR, h.tenant, AssignmentTarget::Profile(p.id), f.id)
        .await
        .unwrap();
    assert_eq!(a.tick().await.unwrap().released, 1);
    let canceled = a
        .cancel_update(ACTOR, h.tenant, devices[0].id, f.kind, "test")
        .await
        .unwrap();
    assert_eq!(canceled.state, UpdateState::Canceled);
    assert_eq!(
        undelivered(&h).await,
        1,
        "the withdrawal replaced the undelivered update notice"
    );
    gate.down.store(false, Ordering::SeqCst);
    h.clock.advance(Duration::seconds(31));
    assert_eq!(a.tick().await.unwrap().redelivered, 1);
    let seen = gate.seen();
    assert_eq!(seen.len(), 1);
    assert!(
        matches!(&seen[0], Notice::Withdrawal { device_id, .. } if *device_id == devices[0].id),
        "{seen:?}"
    );
    assert_eq!(undelivered(&h).await, 0);
}

#[tokio::test]
async fn an_instance_delivers_only_to_the_devices_it_reaches() {
    let h = Harness::new(config("setup"));
    let devices = assigned_fleet(&h, 4).await;
    let ids: Vec<DeviceId> = devices.iter().map(|d| d.id).collect();
    let here = Gate::reaching(ids[..2].to_vec());
    let there = Gate::reaching(ids[2..].to_vec());
    let a = engine(&h, "a", here.clone());
    let b = engine(&h, "b", there.clone());
    let released = a.tick().await.unwrap();
    assert_eq!(released.released, 4, "a releases every device");
    assert_eq!(here.seen().len(), 2, "and tells the two it reaches");
    assert_eq!(
        undelivered(&h).await,
        2,
        "the others wait for their instance"
    );
    // Told that notices were written for its devices, b delivers them at once.
    assert_eq!(b.deliver_notices_for(&ids[2..]).await.unwrap(), (2, 0));
    let mut told: Vec<DeviceId> = there.seen().iter().map(Notice::device_id).collect();
    told.sort();
    assert_eq!(told, ids[2..].to_vec());
    assert_eq!(undelivered(&h).await, 0);
    // a never takes a notice it cannot deliver.
    assert_eq!(a.tick().await.unwrap().notify_failures, 0);
}

#[derive(Clone, Debug)]
enum Step {
    /// Engine `i` ticks.
    Tick(usize),
    /// Engine `i`'s process dies and starts again (same id or a fresh one).
    Restart(usize, bool),
    /// Engine `i`'s transport goes down or up.
    Transport(usize, bool),
    /// Time passes (ms).
    Advance(i64),
    /// Every device told so far reports the new version.
    Reports,
}

fn any_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..2usize).prop_map(Step::Tick),
        1 => (0..2usize, any::<bool>()).prop_map(|(i, same)| Step::Restart(i, same)),
        2 => (0..2usize, any::<bool>()).prop_map(|(i, up)| Step::Transport(i, up)),
        2 => (0i64..40_000).prop_map(Step::Advance),
        1 => Just(Step::Reports),
    ]
}

struct Instance {
    id: String,
    gate: Arc<Gate>,
    ota: Ota,
}

/// Every device whose update left QUEUED was told, or its notice waits in the outbox.
async fn nobody_left_untold(
    h: &Harness,
    devices: &[ota_core::Device],
    told: &HashMap<DeviceId, u32>,
) {
    let mut untold = 0;
    for d in devices {
        let state = h.state_of(d).await.unwrap();
        if state != UpdateState::Queued && !told.contains_key(&d.id) {
            untold += 1;
        }
    }
    assert!(
        undelivered(h).await >= untold,
        "{untold} released devices untold and not in the outbox"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_restarts_and_transport_failures_leave_no_device_untold(
        steps in proptest::collection::vec(any_step(), 1..40),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let h = Harness::new(config("setup"));
            let devices = assigned_fleet(&h, 12).await;
            let config_small = |id: &str, gate: Arc<Gate>| {
                let mut c = config(id);
                c.claim_batch = 3;
                c.max_batches_per_tick = 1;
                Ota::new(h.store.clone(), gate, h.clock.clone(), c)
            };
            let mut engines: Vec<Instance> = (0..2)
                .map(|i| {
                    let id = format!("e{i}");
                    let gate = Gate::up();
                    Instance { ota: config_small(&id, gate.clone()), id, gate }
                })
                .collect();
            let mut told: HashMap<DeviceId, u32> = HashMap::new();
            let mut generation = 0;
            let collect = |engines: &[Instance], told: &mut HashMap<DeviceId, u32>| {
                for e in engines {
                    for n in e.gate.seen.lock().unwrap().drain(..) {
                        *told.entry(n.device_id()).or_default() += 1;
                    }
                }
            };
            for step in &steps {
                match step {
                    Step::Tick(i) => {
                        engines[*i].ota.tick().await.unwrap();
                    }
                    Step::Restart(i, same) => {
                        collect(&engines, &mut told);
                        generation += 1;
                        let id = if *same {
                            engines[*i].id.clone()
                        } else {
                            format!("e{i}-{generation}")
                        };
                        let gate = Gate::up();
                        gate.down.store(engines[*i].gate.down.load(Ordering::SeqCst), Ordering::SeqCst);
                        engines[*i] = Instance { ota: config_small(&id, gate.clone()), id, gate };
                    }
                    Step::Transport(i, up) => engines[*i].gate.down.store(!up, Ordering::SeqCst),
                    Step::Advance(ms) => h.clock.advance(Duration::milliseconds(*ms)),
                    Step::Reports => {
                        collect(&engines, &mut told);
                        for d in told.keys() {
                            h.ota.handle_report(h.tenant, *d, &running("fw", "2.0")).await.unwrap();
                        }
                    }
                }
                collect(&engines, &mut told);
                nobody_left_untold(&h, &devices, &told).await;
            }
            // Heal: transports up, leases lapse, both engines tick until the queue is empty.
            for e in &engines {
                e.gate.down.store(false, Ordering::SeqCst);
            }
            for _ in 0..10 {
                h.clock.advance(Duration::seconds(31));
                for e in &engines {
                    e.ota.tick().await.unwrap();
                }
            }
            collect(&engines, &mut told);
            assert_eq!(undelivered(&h).await, 0, "the outbox drains");
            for d in &devices {
                let state = h.state_of(d).await.unwrap();
                assert_ne!(state, UpdateState::Queued);
                assert!(told.contains_key(&d.id), "device {} released but never told", d.id);
            }
        });
    }
}
