//! The update rules under interference on PostgreSQL: the same property as ota-core's
//! `tests/interleaving.rs` (random interleavings of assignments, reports, retries, cancels,
//! campaign actions, moves and ticks with invariants checked after every step), with a fresh
//! store per case and fewer cases, since every step is a few round trips to the database.

use ota_core::conformance::interleaving::{Interleaving, Step};
use ota_store_postgres::testing::fresh_store;
use proptest::prelude::*;
use std::sync::Arc;

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(op, a, b)| Step::decode(op, a, b)),
        1..60,
    )
}

fn run(steps: &[Step]) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let store = fresh_store().await;
        let world = Interleaving::new(Arc::new(store))
            .await
            .map_err(|e| format!("setting up: {e}"))?;
        world.run(steps).await
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_step_keeps_the_update_rules_on_postgres(steps in steps()) {
        if let Err(e) = run(&steps) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// Ending a campaign is resumable on PostgreSQL: a process that saved STOPPED and died
/// before canceling leaves live updates under the ended campaign; the next tick (of any
/// engine) finishes the cancelling, devices that were told get the withdrawal, and a second
/// stop is answered, not refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_stopped_half_way_is_finished_by_the_tick() {
    use ota_core::campaign::{CampaignSpec, CampaignState, CampaignTarget};
    use ota_core::engine::{NewPackage, Ota, OtaConfig};
    use ota_core::notifier::{Notice, RecordingNotifier};
    use ota_core::store::{CampaignStore, UpdateFilter, UpdateStore};
    use ota_core::{ManualClock, PackageKind, TenantId, UpdateState};
    use std::collections::BTreeSet;

    let store = Arc::new(fresh_store().await);
    let notifier = Arc::new(RecordingNotifier::new());
    let mut config = OtaConfig::default();
    config.global_pacing.max_in_progress = Some(10);
    let ota = Ota::new(
        store.clone(),
        notifier.clone(),
        Arc::new(ManualClock::at_epoch_2024()),
        config,
    );
    let tenant = TenantId::new();
    let profile = ota.create_profile("t", tenant, "p").await.unwrap();
    let devices: Vec<_> = (0..60)
        .map(|i| {
            ota.new_device(
                tenant,
                &format!("d{i}"),
                profile.id,
                BTreeSet::new(),
                &format!("tok-{tenant}-{i}"),
            )
        })
        .collect();
    ota.create_devices("t", &devices).await.unwrap();
    let content: ota_core::store::ByteStream =
        Box::pin(futures::stream::iter(vec![Ok(bytes_of(b"firmware"))]));
    let package = ota
        .upload_package(
            "t",
            NewPackage::new(tenant, PackageKind::Firmware, "fw", "2.0"),
            content,
        )
        .await
        .unwrap();
    let spec = CampaignSpec::new(
        "c",
        package.id,
        CampaignTarget::Selection {
            profile: Some(profile.id),
            groups: BTreeSet::new(),
            source_versions: BTreeSet::new(),
        },
    );
    let c = ota.create_campaign("t", tenant, spec).await.unwrap();
    ota.start_campaign("t", tenant, c.id).await.unwrap();
    ota.tick().await.unwrap();
    // The crash: STOPPED saved, nothing canceled.
    let mut stopped = ota.campaign(tenant, c.id).await.unwrap();
    let revision = stopped.revision;
    stopped.state = CampaignState::Stopped;
    stopped.revision += 1;
    store.save_campaign(&stopped, revision, None).await.unwrap();
    let ended = store.ended_campaigns_with_live_updates().await.unwrap();
    assert_eq!(ended.iter().map(|c| c.id).collect::<Vec<_>>(), vec![c.id]);

    let live = UpdateFilter {
        campaign_id: Some(c.id),
        states: UpdateState::ALL
            .into_iter()
            .filter(|s| !s.is_terminal())
            .collect(),
        ..UpdateFilter::default()
    };
    assert_eq!(store.count_updates(Some(tenant), &live).await.unwrap(), 60);
    ota.tick().await.unwrap();
    assert_eq!(store.count_updates(Some(tenant), &live).await.unwrap(), 0);
    assert!(store
        .ended_campaigns_with_live_updates()
        .await
        .unwrap()
        .is_empty());
    let withdrawals = notifier
        .notices()
        .iter()
        .filter(|n| matches!(n, Notice::Withdrawal { .. }))
        .count();
    assert_eq!(withdrawals, 10, "the devices that had been told");
    let stats = ota.campaign_stats(tenant, c.id).await.unwrap();
    assert_eq!(stats.counts.canceled(), 60);
    let again = ota.stop_campaign("t", tenant, c.id).await.unwrap();
    assert_eq!(again.state, CampaignState::Stopped);
}

fn bytes_of(b: &'static [u8]) -> bytes::Bytes {
    bytes::Bytes::from_static(b)
}
