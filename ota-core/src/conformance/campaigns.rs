//! Campaign behaviours: definitions by compare-and-set, materialization with skips and waves,
//! claims by wave, and statistics that always equal a full recount.

use super::fixtures::{at, Fixture};
use crate::campaign::{
    Campaign, CampaignSpec, CampaignState, CampaignTarget, StateCounts, Wave, WaveAdvance, WaveSize,
};
use crate::package::{Compatibility, PackageKind, TitleVersion};
use crate::store::{
    skip_reason, ClaimRequest, PageRequest, QueueScope, Store, StoreError, UpdateFilter,
};
use crate::update::{
    apply, EventSource, Outcome, ReportedStatus, UpdateEvent, UpdatePolicy, UpdateState,
};
use chrono::Duration;
use std::collections::BTreeSet;
use std::sync::Arc;

fn selection(profile: crate::ids::ProfileId) -> CampaignTarget {
    CampaignTarget::Selection {
        profile: Some(profile),
        groups: BTreeSet::new(),
        source_versions: BTreeSet::new(),
    }
}

/// Campaigns are stored, read, listed by state and saved by compare-and-set.
pub async fn campaigns_crud_and_compare_and_set(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let p = f.profile("p").await;
    let pkg = f.package(PackageKind::Firmware, "fw", "2.0");
    store.create_package(&pkg, None).await.expect("package");
    let c = Campaign::new(
        f.tenant,
        pkg.kind,
        CampaignSpec::new("rollout", pkg.id, selection(p.id)),
        "op",
        at(0),
    );
    store.create_campaign(&c, None).await.expect("create");
    assert!(matches!(
        store.create_campaign(&c, None).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.get_campaign(f.tenant, c.id).await.expect("get"), c);

    let mut next = c.clone();
    next.state = CampaignState::Scheduled;
    next.revision = 1;
    store.save_campaign(&next, 0, None).await.expect("save");
    let mut stale = c.clone();
    stale.spec.name = "stale".into();
    stale.revision = 1;
    let err = store
        .save_campaign(&stale, 0, None)
        .await
        .expect_err("stale");
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err:?}"
    );
    assert_eq!(store.get_campaign(f.tenant, c.id).await.expect("get"), next);

    let other = Campaign::new(
        f.tenant,
        pkg.kind,
        CampaignSpec::new("other", pkg.id, selection(p.id)),
        "op",
        at(0),
    );
    store.create_campaign(&other, None).await.expect("create");
    let scheduled = store
        .list_campaigns(
            f.tenant,
            &[CampaignState::Scheduled],
            PageRequest::first(10),
        )
        .await
        .expect("list");
    assert_eq!(
        scheduled.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![c.id]
    );
    assert_eq!(
        store
            .list_campaigns(f.tenant, &[], PageRequest::first(10))
            .await
            .expect("all")
            .items
            .len(),
        2
    );
    assert!(store
        .active_campaigns()
        .await
        .expect("active")
        .iter()
        .any(|x| x.id == c.id));
    assert!(
        !store
            .active_campaigns()
            .await
            .expect("active")
            .iter()
            .any(|x| x.id == other.id),
        "drafts are not active"
    );
    let theirs = crate::ids::TenantId::new();
    assert!(store
        .get_campaign(theirs, c.id)
        .await
        .is_err_and(|e| e.is_not_found()));
    assert!(store
        .campaign_stats(theirs, c.id)
        .await
        .is_err_and(|e| e.is_not_found()));
}

/// Materialization takes the selected, compatible devices that need the update, splits them
/// into waves in device id order, and counts the rest as skipped per reason; an explicit list
/// works the same way; a second materialization is refused.
pub async fn campaign_materialization_targets_and_skips(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let p = f.profile("p").await;
    let other_profile = f.profile("other").await;
    let g = f.group("g").await;
    let mut devices = Vec::new();
    for i in 0..20 {
        let groups: Vec<_> = if i % 2 == 0 { vec![&g] } else { vec![] };
        devices.push(f.device(&p, &format!("d{i}"), &groups));
    }
    devices.push(f.device(&other_profile, "elsewhere", &[&g]));
    store.create_devices(&devices, None).await.expect("devices");
    let mut pkg = f.package(PackageKind::Firmware, "fw", "2.0");
    pkg.compatibility = Compatibility::Profiles(vec![p.id]);
    store.create_package(&pkg, None).await.expect("package");
    // d0 already runs 2.0, d1 runs 1.0, d2 has another unfinished update.
    store
        .set_current_version(
            f.tenant,
            devices[0].id,
            PackageKind::Firmware,
            Some(TitleVersion::new("fw", "2.0")),
        )
        .await
        .expect("current");
    store
        .set_current_version(
            f.tenant,
            devices[1].id,
            PackageKind::Firmware,
            Some(TitleVersion::new("fw", "1.0")),
        )
        .await
        .expect("current");
    let busy_pkg = f.package(PackageKind::Firmware, "fw", "1.5");
    store
        .create_package(&busy_pkg, None)
        .await
        .expect("package");
    store
        .create_updates(&[f.update(&devices[2], &busy_pkg, at(0))])
        .await
        .expect("busy");

    // Group g: d0, d2, ..., d18 and "elsewhere" (incompatible).
    let mut spec = CampaignSpec::new(
        "by group",
        pkg.id,
        CampaignTarget::Selection {
            profile: None,
            groups: [g.id].into_iter().collect(),
            source_versions: BTreeSet::new(),
        },
    );
    spec.waves = vec![
        Wave {
            size: WaveSize::Count(2),
            advance: WaveAdvance::default(),
        },
        Wave {
            size: WaveSize::Rest,
            advance: WaveAdvance::default(),
        },
    ];
    let c = Campaign::new(f.tenant, pkg.kind, spec, "op", at(0));
    store.create_campaign(&c, None).await.expect("campaign");
    let done = store
        .materialize_campaign(&c, &pkg, at(10))
        .await
        .expect("materialize");
    assert_eq!(done.created, 8, "{done:?}");
    assert_eq!(done.wave_sizes, vec![2, 6]);
    let skipped: std::collections::HashMap<_, _> = done.skipped.iter().cloned().collect();
    assert_eq!(skipped.get(skip_reason::INCOMPATIBLE), Some(&1));
    assert_eq!(skipped.get(skip_reason::UP_TO_DATE), Some(&1));
    assert_eq!(skipped.get(skip_reason::BUSY), Some(&1));
    let in_campaign = UpdateFilter {
        campaign_id: Some(c.id),
        ..UpdateFilter::default()
    };
    let page = store
        .list_updates(f.tenant, &in_campaign, PageRequest::first(100))
        .await
        .expect("list");
    assert_eq!(page.items.len(), 8);
    assert!(page
        .items
        .iter()
        .all(|u| u.state == UpdateState::Queued && u.target == TitleVersion::new("fw", "2.0")));
    let mut by_device: Vec<_> = page.items.iter().map(|u| (u.device_id, u.wave)).collect();
    by_device.sort();
    assert_eq!(
        by_device.iter().map(|(_, w)| *w).collect::<Vec<_>>(),
        vec![0, 0, 1, 1, 1, 1, 1, 1],
        "waves in device id order"
    );
    let stats = store.campaign_stats(f.tenant, c.id).await.expect("stats");
    assert_eq!(stats.counts.not_started(), 8);
    assert_eq!(
        stats.waves.iter().map(|w| w.total()).collect::<Vec<_>>(),
        vec![2, 6]
    );
    assert!(matches!(
        store.materialize_campaign(&c, &pkg, at(11)).await,
        Err(StoreError::Conflict { .. })
    ));

    // Claims take only released waves.
    let req = ClaimRequest {
        now: at(20),
        limit: 100,
        owner: "e".into(),
        lease: Duration::seconds(30),
    };
    let first = store
        .claim_queued(
            &req,
            QueueScope::Campaign {
                id: c.id,
                up_to_wave: 0,
            },
        )
        .await
        .expect("claim");
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|u| u.wave == 0));
    let rest = store
        .claim_queued(
            &req,
            QueueScope::Campaign {
                id: c.id,
                up_to_wave: 1,
            },
        )
        .await
        .expect("claim");
    assert_eq!(rest.len(), 6);
    assert!(store
        .claim_queued(&req, QueueScope::Direct)
        .await
        .expect("direct")
        .iter()
        .all(|u| u.campaign_id.is_none()));

    // Source-version filter and an explicit list.
    let mut by_version = CampaignSpec::new(
        "from 1.0",
        pkg.id,
        CampaignTarget::Selection {
            profile: Some(p.id),
            groups: BTreeSet::new(),
            source_versions: ["1.0".to_string()].into_iter().collect(),
        },
    );
    by_version.description = Some("only devices on 1.0".into());
    let c2 = Campaign::new(f.tenant, pkg.kind, by_version, "op", at(0));
    store.create_campaign(&c2, None).await.expect("campaign");
    let done2 = store
        .materialize_campaign(&c2, &pkg, at(12))
        .await
        .expect("materialize");
    // d1 runs 1.0 but is even (no: odd) and not in campaign 1, so it is taken.
    assert_eq!(done2.created, 1);

    let list = Campaign::new(
        f.tenant,
        pkg.kind,
        CampaignSpec::new("list", pkg.id, CampaignTarget::DeviceList),
        "op",
        at(0),
    );
    store.create_campaign(&list, None).await.expect("campaign");
    let unknown = crate::ids::DeviceId::new();
    assert!(store
        .set_campaign_devices(f.tenant, list.id, &[devices[3].id, unknown], None)
        .await
        .is_err_and(|e| e.is_not_found()));
    store
        .set_campaign_devices(
            f.tenant,
            list.id,
            &[devices[3].id, devices[5].id, devices[20].id],
            None,
        )
        .await
        .expect("list");
    assert_eq!(
        store
            .count_campaign_devices(f.tenant, list.id)
            .await
            .expect("count"),
        3
    );
    let done3 = store
        .materialize_campaign(&list, &pkg, at(13))
        .await
        .expect("materialize");
    assert_eq!(done3.created, 2, "{done3:?}");
    assert_eq!(
        done3.skipped,
        vec![(skip_reason::INCOMPATIBLE.to_string(), 1)]
    );
}

/// After any sequence of creations and transitions, the statistics equal a full recount of
/// the campaign's updates, per wave and in all.
pub async fn campaign_stats_equal_a_recount(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let p = f.profile("p").await;
    let _devices = f.devices(&p, "d", 60).await;
    let pkg = f.package(PackageKind::Firmware, "fw", "2.0");
    store.create_package(&pkg, None).await.expect("package");
    let mut spec = CampaignSpec::new("stats", pkg.id, selection(p.id));
    spec.waves = vec![
        Wave {
            size: WaveSize::Percent(10.0),
            advance: WaveAdvance::default(),
        },
        Wave {
            size: WaveSize::Count(20),
            advance: WaveAdvance::default(),
        },
    ];
    let c = Campaign::new(f.tenant, pkg.kind, spec, "op", at(0));
    store.create_campaign(&c, None).await.expect("campaign");
    store
        .materialize_campaign(&c, &pkg, at(1))
        .await
        .expect("materialize");

    // A deterministic pseudo-random walk of events over the campaign's updates.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rand = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let filter = UpdateFilter {
        campaign_id: Some(c.id),
        ..UpdateFilter::default()
    };
    for round in 0..400 {
        let all = store
            .list_updates(f.tenant, &filter, PageRequest::first(1000))
            .await
            .expect("list")
            .items;
        let u = &all[rand(all.len() as u64) as usize];
        let event = match rand(6) {
            0 => UpdateEvent::Dispatched,
            1 => UpdateEvent::Cancel {
                source: EventSource::Operator,
                reason: "r".into(),
            },
            2 => UpdateEvent::Retry {
                source: EventSource::Operator,
            },
            3 => UpdateEvent::Fail {
                source: EventSource::Server,
                reason: "f".into(),
            },
            _ => UpdateEvent::Report(ReportedStatus {
                state: Some(UpdateState::ALL[rand(9) as usize]),
                ..ReportedStatus::default()
            }),
        };
        if let Outcome::Applied { update, history } =
            apply(u, &event, at(10 + round), &UpdatePolicy::default())
        {
            store
                .transition(&update, u.revision, &history)
                .await
                .expect("transition");
        }
        if round % 50 == 0 || round == 399 {
            let stats = store.campaign_stats(f.tenant, c.id).await.expect("stats");
            let updates = store
                .list_updates(f.tenant, &filter, PageRequest::first(1000))
                .await
                .expect("list")
                .items;
            let mut per_wave = vec![StateCounts::default(); stats.waves.len().max(1)];
            let mut total = StateCounts::default();
            for u in &updates {
                if per_wave.len() <= u.wave as usize {
                    per_wave.resize(u.wave as usize + 1, StateCounts::default());
                }
                per_wave[u.wave as usize].add(u.state, 1);
                total.add(u.state, 1);
            }
            assert_eq!(stats.counts, total, "round {round}");
            assert_eq!(stats.waves, per_wave, "round {round}");
            assert_eq!(stats.counts.total(), 60);
        }
    }
}
