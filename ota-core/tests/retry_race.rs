//! An automatic retry that loses a race to a new update of its device: a new assignment
//! (another writer) creates the device's next update after the tick judged the retry allowed
//! and before it wrote it. The store refuses the retry (a device never has two unfinished
//! updates of one kind); the tick must skip that device, which is busy with the newer
//! update, and go on with the rest of its work, and a later tick drops the retry.
//!
//! The other writer runs inside the engine's clock: the clock is read at many points of a
//! tick, and the test sweeps over them, so that one of the runs puts the new update exactly
//! between the retry's check and its write.

use chrono::Duration;
use futures_util::FutureExt;
use ota_core::assignment::AssignmentTarget;
use ota_core::engine::{NewPackage, Ota, OtaConfig};
use ota_core::memory::MemoryStore;
use ota_core::notifier::RecordingNotifier;
use ota_core::store::{UpdateFilter, UpdateStore};
use ota_core::update::{EventSource, RetryPolicy, UpdatePolicy};
use ota_core::wire::DeviceReport;
use ota_core::{
    Clock, ManualClock, PackageKind, TenantId, Timestamp, TitleVersion, Update, UpdateState,
};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const ACTOR: &str = "tester";

type Hook = Box<dyn FnOnce() + Send>;

/// A manual clock that runs a hook (another writer) at one of its readings.
struct HookClock {
    inner: ManualClock,
    readings: AtomicUsize,
    fire_at: AtomicUsize,
    hook: Mutex<Option<Hook>>,
}

impl std::fmt::Debug for HookClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookClock").finish_non_exhaustive()
    }
}

impl HookClock {
    /// Runs `hook` at the `at`-th reading from now (0: the next one).
    fn arm(&self, at: usize, hook: Hook) {
        *self.hook.lock().unwrap() = Some(hook);
        self.readings.store(0, Ordering::SeqCst);
        self.fire_at.store(at, Ordering::SeqCst);
    }
}

impl Clock for HookClock {
    fn now(&self) -> Timestamp {
        if self.readings.fetch_add(1, Ordering::SeqCst) == self.fire_at.load(Ordering::SeqCst) {
            let hook = self.hook.lock().unwrap().take();
            if let Some(hook) = hook {
                hook();
            }
        }
        self.inner.now()
    }
}

fn failed_report() -> DeviceReport {
    DeviceReport {
        kind: PackageKind::Firmware,
        ts: None,
        state: Some(UpdateState::Failed),
        current_title: None,
        current_version: None,
        error: Some("flash error".into()),
        progress: None,
    }
}

/// What one run saw.
struct Run {
    /// The other writer's new update was stored.
    created: bool,
    /// The failed update after the tick.
    failed: Update,
    /// The tick dropped the retry as refused (it saw the newer update before writing).
    refused: bool,
}

/// A device whose update failed with an automatic retry due; the other writer is set to
/// create the device's next update at the clock's `at`-th reading of the next tick.
async fn run(at: usize) -> Run {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(HookClock {
        inner: ManualClock::at_epoch_2024(),
        readings: AtomicUsize::new(0),
        fire_at: AtomicUsize::new(usize::MAX),
        hook: Mutex::new(None),
    });
    let mut config = OtaConfig::default();
    let mut policy = UpdatePolicy::default();
    policy.retry = RetryPolicy::attempts(3, Duration::seconds(10));
    config.policy = policy;
    let ota = Ota::new(
        store.clone(),
        Arc::new(RecordingNotifier::new()),
        clock.clone(),
        config,
    );
    let tenant = TenantId::new();
    let profile = ota.create_profile(ACTOR, tenant, "p").await.unwrap();
    let device = ota.new_device(tenant, "d", profile.id, BTreeSet::new(), "token-d");
    ota.create_devices(ACTOR, std::slice::from_ref(&device))
        .await
        .unwrap();
    let package =
        |version: &str| NewPackage::new(tenant, PackageKind::Firmware, "fw", version.to_string());
    let a = ota
        .create_external_package(ACTOR, package("2.0"), "https://example.com/2.bin")
        .await
        .unwrap();
    let b = ota
        .create_external_package(ACTOR, package("3.0"), "https://example.com/3.bin")
        .await
        .unwrap();
    ota.assign(ACTOR, tenant, AssignmentTarget::Device(device.id), a.id)
        .await
        .unwrap();
    ota.tick().await.unwrap();
    ota.handle_report(tenant, device.id, &failed_report())
        .await
        .unwrap();
    let failed = store
        .latest_update(tenant, device.id, PackageKind::Firmware)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.state, UpdateState::Failed);
    assert!(failed.retry_at.is_some(), "an automatic retry is pending");
    clock.inner.advance(Duration::seconds(11));

    let created = Arc::new(Mutex::new(false));
    let newer = Update::new(
        tenant,
        device.id,
        PackageKind::Firmware,
        b.id,
        TitleVersion::new("fw", "3.0"),
        None,
        clock.inner.now(),
    );
    let (writer, seen) = (store.clone(), created.clone());
    clock.arm(
        at,
        Box::new(move || {
            // The memory store never waits: its future is ready at the first poll.
            let stored = writer
                .create_updates(std::slice::from_ref(&newer))
                .now_or_never()
                .expect("the memory store answers at once");
            *seen.lock().unwrap() = stored.is_ok();
        }),
    );
    let ticked = ota.tick().await;
    assert!(
        ticked.is_ok(),
        "reading {at}: a retry that lost its race aborted the tick: {ticked:?}"
    );
    let after = store.get_update(tenant, failed.id).await.unwrap();
    let refused = store
        .update_history(tenant, failed.id)
        .await
        .unwrap()
        .iter()
        .any(|h| h.source == EventSource::Retry && h.event == "cancel");
    let created = *created.lock().unwrap();
    if created && after.state == UpdateState::Failed && !refused {
        // The race was lost: the next tick drops the retry, and the device keeps the newer
        // update as its only live one.
        clock.inner.advance(Duration::seconds(1));
        ota.tick().await.unwrap();
        let dropped = store.get_update(tenant, failed.id).await.unwrap();
        assert_eq!(dropped.state, UpdateState::Failed);
        assert_eq!(dropped.retry_at, None, "the retry is dropped");
        let filter = UpdateFilter {
            device_id: Some(device.id),
            ..UpdateFilter::default()
        };
        let live: Vec<Update> = store
            .list_updates(tenant, &filter, Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|u| !u.state.is_terminal())
            .collect();
        assert_eq!(live.len(), 1, "one live update");
        assert_eq!(live[0].package_id, b.id, "the newer one");
    }
    Run {
        created,
        failed: after,
        refused,
    }
}

#[tokio::test]
async fn a_retry_that_loses_its_race_to_a_new_update_skips_the_device() {
    let mut lost = 0;
    for at in 0..80 {
        let r = run(at).await;
        if r.created && r.failed.state == UpdateState::Failed && !r.refused {
            lost += 1;
        }
    }
    assert!(
        lost > 0,
        "no run put the new update between the retry's check and its write"
    );
}
