//! Drives 10,000 devices to completion through a simulated device loop that duplicates and
//! reorders reports, and checks the final state of every device and that no attempt was
//! notified twice.

mod support;

use ota_core::engine::OtaConfig;
use ota_core::notifier::Notice;
use ota_core::store::{UpdateFilter, UpdateStore};
use ota_core::wire::DeviceReport;
use ota_core::{AssignmentTarget, DeviceId, PackageKind, UpdateState};
use std::collections::HashMap;
use support::*;

/// A small deterministic generator (SplitMix64) so the run is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The reports one device sends for an update, with duplicates and some reordering.
fn device_script(rng: &mut Rng) -> Vec<DeviceReport> {
    let mut script = Vec::new();
    for state in [
        UpdateState::Downloading,
        UpdateState::Downloaded,
        UpdateState::Verified,
        UpdateState::Updating,
    ] {
        let mut r = report(Some(state));
        if matches!(state, UpdateState::Downloading | UpdateState::Updating) {
            r.progress = Some((rng.below(101)) as u8);
        }
        script.push(r.clone());
        if rng.below(4) == 0 {
            script.push(r); // duplicate
        }
    }
    // Swap two neighbours now and then (the network reorders).
    if rng.below(3) == 0 {
        let i = rng.below(script.len() - 1);
        script.swap(i, i + 1);
    }
    let mut done = running("fw", "2.0");
    done.state = Some(UpdateState::Updated);
    script.push(done.clone());
    if rng.below(2) == 0 {
        script.push(done);
    }
    // A late duplicate of an early state arrives after completion.
    if rng.below(5) == 0 {
        script.push(report(Some(UpdateState::Downloading)));
    }
    script
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_devices_complete_with_each_attempt_notified_once() {
    const DEVICES: usize = 10_000;
    let h = Harness::new(OtaConfig::default());
    let p = h.profile("fleet").await;
    let devices = h.devices(&p, "dev", DEVICES).await;
    let f2 = h.package("fw", "2.0").await;
    h.ota
        .assign(ACTOR, h.tenant, AssignmentTarget::Profile(p.id), f2.id)
        .await
        .unwrap();

    let mut rng = Rng(42);
    let mut notified: HashMap<DeviceId, u32> = HashMap::new();
    let mut pending: Vec<(DeviceId, Vec<DeviceReport>)> = Vec::new();
    for _round in 0..1_000 {
        h.ota.tick().await.unwrap();
        for notice in h.notifier.take() {
            if let Notice::Update {
                device_id,
                attributes,
                ..
            } = notice
            {
                assert_eq!(attributes["fw_version"], "2.0");
                *notified.entry(device_id).or_default() += 1;
                pending.push((device_id, device_script(&mut rng)));
            }
        }
        if pending.is_empty() {
            break;
        }
        // Devices interleave: each step, a random device sends its next report.
        let steps = pending.len() * 3;
        for _ in 0..steps {
            if pending.is_empty() {
                break;
            }
            let i = rng.below(pending.len());
            let (device, script) = &mut pending[i];
            let r = script.remove(0);
            h.ota.handle_report(h.tenant, *device, &r).await.unwrap();
            if script.is_empty() {
                pending.swap_remove(i);
            }
        }
        h.advance_ms(1_000);
    }
    assert!(pending.is_empty(), "every device finished its script");
    assert_eq!(notified.len(), DEVICES, "every device was notified");
    assert!(
        notified.values().all(|n| *n == 1),
        "no attempt notified twice"
    );
    let updated = h
        .store
        .count_updates(
            Some(h.tenant),
            &UpdateFilter::in_state(UpdateState::Updated),
        )
        .await
        .unwrap();
    assert_eq!(updated, DEVICES as u64);
    for d in devices.iter().step_by(97) {
        let u = h
            .store
            .latest_update(h.tenant, d.id, PackageKind::Firmware)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((u.state, u.attempt), (UpdateState::Updated, 1));
        let device = h.ota.device(h.tenant, d.id).await.unwrap();
        assert_eq!(
            device.current.firmware.as_ref().map(|t| t.version.as_str()),
            Some("2.0")
        );
    }
}
