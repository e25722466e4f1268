//! Campaign statistics and a page of campaign devices read over HTTP for a large campaign on
//! PostgreSQL, requests per second with 32 clients, beside the same reads made directly
//! through the engine (and the store) in the same run.
//!
//! `cargo bench -p ota-transport-http --bench management_reads`
//! (`OTA_BENCH_CAMPAIGN_DEVICES`, default 1,000,000; `OTA_BENCH_SECONDS` per measurement,
//! default 5; `OTA_BENCH_ROUNDS`, default 3: the median is reported).

use ota_core::campaign::{CampaignSpec, CampaignTarget};
use ota_core::engine::{NewPackage, Ota, OtaConfig};
use ota_core::notifier::RecordingNotifier;
use ota_core::store::{PageRequest, UpdateFilter};
use ota_core::{CampaignId, PackageKind, SystemClock, TenantId};
use ota_store_postgres::testing::fresh_database;
use ota_store_postgres::PgStore;
use ota_transport_http::management::{ApiKeys, Role};
use ota_transport_http::{management_router, ManagementOptions};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 32;
const PAGE: u32 = 100;

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `CLIENTS` loops of `op` for `secs` and answers requests per second.
async fn rate<F, Fut>(secs: u64, op: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (op, done) = (op.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while Instant::now() < deadline {
                op(i).await;
                done.fetch_add(1, Ordering::Relaxed);
                i += CLIENTS;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn setup(ota: &Ota, n: usize) -> (TenantId, CampaignId) {
    let tenant = TenantId::new();
    let profile = ota.create_profile("bench", tenant, "bench").await.unwrap();
    for start in (0..n).step_by(10_000) {
        let batch: Vec<_> = (start..(start + 10_000).min(n))
            .map(|i| {
                ota.new_device(
                    tenant,
                    &format!("d{i}"),
                    profile.id,
                    BTreeSet::new(),
                    &format!("{tenant}-{i}"),
                )
            })
            .collect();
        ota.store().create_devices(&batch, None).await.unwrap();
    }
    let new = NewPackage::new(tenant, PackageKind::Firmware, "fw", "2.0");
    let package = ota
        .create_external_package("bench", new, "https://example.com/fw.bin")
        .await
        .unwrap();
    let target = CampaignTarget::Selection {
        profile: Some(profile.id),
        groups: BTreeSet::new(),
        source_versions: BTreeSet::new(),
    };
    let spec = CampaignSpec::new("bench", package.id, target);
    let c = ota.create_campaign("bench", tenant, spec).await.unwrap();
    ota.start_campaign("bench", tenant, c.id).await.unwrap();
    (tenant, c.id)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --benches` and test listers (`--list`): nothing to do here.
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let n = size("OTA_BENCH_CAMPAIGN_DEVICES", 1_000_000);
    let secs = size("OTA_BENCH_SECONDS", 5) as u64;
    let rounds = size("OTA_BENCH_ROUNDS", 3);
    let db = fresh_database().await;
    let mut options = db.options();
    options = options.max_connections(CLIENTS as u32);
    let store = PgStore::connect(options).await.unwrap();
    let ota = Ota::new(
        Arc::new(store),
        Arc::new(RecordingNotifier::new()),
        Arc::new(SystemClock),
        OtaConfig::default(),
    );
    let t = Instant::now();
    let (tenant, campaign) = setup(&ota, n).await;
    eprintln!(
        "{n} devices and the campaign set up in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let stats = ota.campaign_stats(tenant, campaign).await.unwrap();
    assert_eq!(stats.counts.total(), n as u64);

    let keys = Arc::new(ApiKeys::new());
    let key = keys.issue(tenant, "bench", Role::ReadOnly);
    let router = management_router(ota.clone(), keys, ManagementOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/ota/v1", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();

    // Page starts spread over the first pages of the campaign.
    let filter = UpdateFilter {
        campaign_id: Some(campaign),
        ..UpdateFilter::default()
    };
    let mut starts = vec![None];
    let mut page = PageRequest::first(PAGE);
    for _ in 0..63 {
        let got = ota
            .store()
            .list_updates(tenant, &filter, page)
            .await
            .unwrap();
        match got.next {
            Some(next) => {
                starts.push(next.after);
                page = next;
            }
            None => break,
        }
    }
    let starts = Arc::new(starts);

    let (mut http_stats, mut direct_stats, mut http_page, mut direct_page) =
        (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        let (c, k, b) = (client.clone(), key.clone(), base.clone());
        http_stats.push(
            rate(secs, move |_| {
                let req = c
                    .get(format!("{b}/campaigns/{campaign}/stats"))
                    .bearer_auth(&k)
                    .send();
                async move {
                    let r = req.await.unwrap();
                    assert!(r.status().is_success());
                    r.bytes().await.unwrap();
                }
            })
            .await,
        );
        let o = ota.clone();
        direct_stats.push(
            rate(secs, move |_| {
                let o = o.clone();
                async move {
                    o.campaign(tenant, campaign).await.unwrap();
                    o.campaign_stats(tenant, campaign).await.unwrap();
                }
            })
            .await,
        );
        let (c, k, b, s) = (client.clone(), key.clone(), base.clone(), starts.clone());
        http_page.push(
            rate(secs, move |i| {
                let cursor = s[i % s.len()]
                    .map(|id| {
                        format!(
                            "&cursor={}",
                            ota_transport_http::management::paging::encode_cursor(id)
                        )
                    })
                    .unwrap_or_default();
                let req = c
                    .get(format!(
                        "{b}/campaigns/{campaign}/devices?limit={PAGE}{cursor}"
                    ))
                    .bearer_auth(&k)
                    .send();
                async move {
                    let r = req.await.unwrap();
                    assert!(r.status().is_success());
                    r.bytes().await.unwrap();
                }
            })
            .await,
        );
        let (o, s, f) = (ota.clone(), starts.clone(), filter.clone());
        direct_page.push(
            rate(secs, move |i| {
                let (o, f) = (o.clone(), f.clone());
                let page = PageRequest {
                    after: s[i % s.len()],
                    limit: PAGE,
                };
                async move {
                    o.campaign(tenant, campaign).await.unwrap();
                    let got = o.store().list_updates(tenant, &f, page).await.unwrap();
                    assert_eq!(got.items.len(), PAGE as usize);
                }
            })
            .await,
        );
    }
    tx.send(()).unwrap();
    server.await.unwrap();
    let (hs, ds, hp, dp) = (
        median(http_stats),
        median(direct_stats),
        median(http_page),
        median(direct_page),
    );
    println!("campaign of {n} devices on PostgreSQL, {CLIENTS} clients, median of {rounds} runs of {secs} s:");
    println!(
        "  statistics: HTTP {hs:.0} req/s, engine directly {ds:.0} req/s ({:.2}x)",
        hs / ds
    );
    println!(
        "  page of {PAGE} devices: HTTP {hp:.0} req/s, engine directly {dp:.0} req/s ({:.2}x)",
        hp / dp
    );
    db.drop_schema().await;
}
