//! Stopping a large campaign on PostgreSQL: its unfinished updates are canceled a page at a
//! time with set-based writes (`transition_many`), the counters follow in the same
//! statements, finished updates and all history are kept.

mod common;

use common::*;
use ota_core::campaign::{
    CampaignSpec, CampaignState, CampaignTarget, Wave, WaveAdvance, WaveSize,
};
use ota_core::engine::{Ota, OtaConfig};
use ota_core::store::{UpdateFilter, UpdateStore};
use ota_core::{CampaignId, ManualClock, TenantId, UpdateState};
use ota_store_postgres::testing::fresh_database;
use ota_store_postgres::PgStore;
use std::collections::BTreeSet;
use std::sync::Arc;

const DEVICES: usize = 5_000;
const FIRST_WAVE: u64 = 1_000;
const FINISHED: usize = 200;

async fn recount(
    store: &PgStore,
    tenant: TenantId,
    campaign: CampaignId,
    state: UpdateState,
) -> u64 {
    store
        .count_updates(
            Some(tenant),
            &UpdateFilter {
                campaign_id: Some(campaign),
                states: vec![state],
                ..UpdateFilter::default()
            },
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_campaign_of_five_thousand_cancels_the_unfinished_and_keeps_the_rest() {
    let db = fresh_database().await;
    let store = PgStore::connect(db.options().max_connections(8))
        .await
        .unwrap();
    let (seen, notifier) = recorder();
    let ota = Ota::new(
        Arc::new(store.clone()),
        notifier,
        Arc::new(ManualClock::at_epoch_2024()),
        OtaConfig::default(),
    );
    let tenant = TenantId::new();
    let (profile, package) = fleet_without_assignment(&ota, tenant, DEVICES).await;
    let mut spec = CampaignSpec::new(
        "stop me",
        package.id,
        CampaignTarget::Selection {
            profile: Some(profile.id),
            groups: BTreeSet::new(),
            source_versions: BTreeSet::new(),
        },
    );
    spec.waves = vec![
        Wave {
            size: WaveSize::Count(FIRST_WAVE),
            advance: WaveAdvance::default(),
        },
        Wave {
            size: WaveSize::Rest,
            advance: WaveAdvance::default(),
        },
    ];
    let c = ota.create_campaign(ACTOR, tenant, spec).await.unwrap();
    ota.start_campaign(ACTOR, tenant, c.id).await.unwrap();
    ota.tick().await.unwrap();
    let notified = seen.take();
    assert_eq!(
        notified.len() as u64,
        FIRST_WAVE,
        "the first wave is released"
    );
    for d in &notified[..FINISHED] {
        ota.handle_report(tenant, *d, &installed()).await.unwrap();
    }

    let stopped = ota.stop_campaign(ACTOR, tenant, c.id).await.unwrap();
    assert_eq!(stopped.state, CampaignState::Stopped);
    let stats = ota.campaign_stats(tenant, c.id).await.unwrap();
    assert_eq!(
        (
            stats.counts.successful(),
            stats.counts.canceled(),
            stats.counts.ongoing(),
            stats.counts.not_started()
        ),
        (FINISHED as u64, (DEVICES - FINISHED) as u64, 0, 0)
    );
    // The counters equal a recount of the rows.
    for state in UpdateState::ALL {
        assert_eq!(
            stats.counts.get(state),
            recount(&store, tenant, c.id, state).await,
            "{state:?}"
        );
    }
    // A notified device's update went INITIATED -> CANCELED; a finished one is untouched.
    let canceled = store
        .latest_update(tenant, notified[FINISHED], ota_core::PackageKind::Firmware)
        .await
        .unwrap()
        .unwrap();
    let history = store.update_history(tenant, canceled.id).await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.to).collect::<Vec<_>>(),
        vec![UpdateState::Initiated, UpdateState::Canceled]
    );
    let done = store
        .latest_update(tenant, notified[0], ota_core::PackageKind::Firmware)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, UpdateState::Updated);
    assert_eq!(
        ota.tick().await.unwrap().released,
        0,
        "nothing more is released"
    );
    db.drop_schema().await;
}
