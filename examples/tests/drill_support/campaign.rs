//! The drill's campaign, as every drill runs it: started once the simulated fleet is
//! connected, waited for until the simulator has seen it end, and its outcome read back from
//! the database and the management API and checked ([`super::checks`]).

use super::checks::{check_campaign, Findings};
use super::{campaign_body, Sim};
use crate::sim_support::{assert_tally_matches, Api};
use ota_core::{CampaignId, TenantId};
use ota_store_postgres::testing::TestDatabase;
use ota_store_postgres::PgStore;
use serde_json::{json, Value};
use std::time::Instant;

/// A started campaign.
pub struct Started {
    /// Its id.
    pub id: String,
    /// When it was started.
    pub at: Instant,
}

/// Waits until `sim` has made its devices and connected them, then creates the drill's
/// campaign of `package` over `profile` (released at `per_second`, see
/// [`campaign_body`]) and starts it.
pub async fn start_campaign(
    api: &Api,
    sim: &mut Sim,
    package: &str,
    profile: &str,
    per_second: u64,
) -> Started {
    sim.until("devices").await;
    sim.until("connected").await;
    let c = api
        .post(
            "/campaigns",
            campaign_body("drill", package, profile, per_second),
        )
        .await;
    let id = c["id"].as_str().expect("campaign id").to_string();
    api.post(&format!("/campaigns/{id}/start"), json!({})).await;
    Started {
        id,
        at: Instant::now(),
    }
}

/// Waits until `sim` has seen `campaign` end and has exited; the campaign must be FINISHED.
/// The simulator's `campaign_ended` line and its summary.
pub async fn until_finished(api: &Api, mut sim: Sim, campaign: &Started) -> (Value, Value) {
    let ended = sim.until("campaign_ended").await;
    let summary = sim.summary().await;
    eprintln!(
        "{:?}: campaign {}",
        campaign.at.elapsed(),
        ended["state"].as_str().unwrap_or_default()
    );
    let c = api.get(&format!("/campaigns/{}", campaign.id)).await;
    assert_eq!(c["state"], "FINISHED", "{c}");
    (ended, summary)
}

/// The outcome of the finished `campaign` over `devices` devices, from the database `db`
/// and the management API: every check of [`check_campaign`] holds, every device has an
/// update, and the simulator's `summary` equals the server's cards and versions device by
/// device ([`assert_tally_matches`]). The updates that failed are printed.
pub async fn check_outcome(
    db: &TestDatabase,
    api: &Api,
    campaign: &Started,
    devices: u64,
    summary: &Value,
) -> Findings {
    let store = PgStore::connect(db.options().max_connections(4))
        .await
        .expect("store");
    let tenant: TenantId = ota_examples::server::config::DEFAULT_TENANT
        .parse()
        .expect("tenant");
    let campaign_id: CampaignId = campaign.id.parse().expect("campaign id");
    let stats = api.stats(&campaign.id).await;
    let findings = check_campaign(&store, tenant, campaign_id, &stats).await;
    store.close().await;
    findings.assert_clean("campaign");
    assert_eq!(findings.updates.len() as u64, devices);
    eprintln!("updates that failed: {:#?}", findings.failed());
    assert_tally_matches(api, &campaign.id, summary).await;
    findings
}
