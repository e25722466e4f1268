//! The checks at the end of a drill, read from the database and the simulator's summary:
//!
//! - every update of the campaign is settled (UPDATED, CANCELED, or FAILED with no retry to
//!   come);
//! - the campaign's statistics (management API) equal a recount of its updates, state by
//!   state;
//! - no attempt lost: each update's applied history is a path of ota-core's state machine
//!   from QUEUED attempt 1 to the update's state and attempt, every step one that
//!   [`ota_core::update::apply`] makes from the step's state with the step's event;
//! - notices ([`check_notices`]): no attempt's notice reaches its device twice, except a
//!   notice in flight at a kill.

use ota_core::store::{PageRequest, UpdateFilter, UpdateStore};
use ota_core::update::{
    apply, EventSource, HistoryEntry, HistoryOutcome, Outcome, ReportedStatus, RetryPolicy,
    Timeouts, UpdateEvent, UpdatePolicy,
};
use ota_core::{CampaignId, DeviceId, TenantId, Update, UpdateState};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// What the campaign's updates and their histories show.
#[derive(Debug, Default)]
pub struct Findings {
    /// The campaign's updates.
    pub updates: Vec<Update>,
    /// Updates per state (recount).
    pub by_state: BTreeMap<String, u64>,
    /// Attempts dispatched (QUEUED -> INITIATED), per device: (attempt, Unix ms).
    pub dispatches: HashMap<DeviceId, Vec<(u32, i64)>>,
    /// History entries read.
    pub history_entries: u64,
    /// What is wrong (empty when all is well).
    pub problems: Vec<String>,
}

impl Findings {
    /// The updates that ended FAILED: device, attempt and error.
    pub fn failed(&self) -> Vec<String> {
        self.updates
            .iter()
            .filter(|u| u.state == UpdateState::Failed)
            .map(|u| format!("{} attempt {}: {:?}", u.device_id.0, u.attempt, u.error))
            .collect()
    }

    /// Panics with the first problems found, if any.
    pub fn assert_clean(&self, what: &str) {
        assert!(
            self.problems.is_empty(),
            "{what}: {} problems; first: {:#?}",
            self.problems.len(),
            &self.problems[..self.problems.len().min(10)]
        );
    }
}

/// Every update of `campaign`.
pub async fn campaign_updates(
    store: &dyn UpdateStore,
    tenant: TenantId,
    campaign: CampaignId,
) -> Vec<Update> {
    let filter = UpdateFilter {
        campaign_id: Some(campaign),
        ..UpdateFilter::default()
    };
    let mut all = Vec::new();
    let mut page = PageRequest::first(1000);
    loop {
        let got = store
            .list_updates(tenant, &filter, page)
            .await
            .expect("list the campaign's updates");
        all.extend(got.items);
        match got.next {
            Some(next) => page = next,
            None => return all,
        }
    }
}

/// Reads the campaign's updates and histories and checks them (see the module docs); the
/// statistics the management API gave (`stats`, its `total`) are compared with the recount.
pub async fn check_campaign(
    store: &dyn UpdateStore,
    tenant: TenantId,
    campaign: CampaignId,
    stats: &Value,
) -> Findings {
    let mut f = Findings {
        updates: campaign_updates(store, tenant, campaign).await,
        ..Findings::default()
    };
    for u in &f.updates {
        *f.by_state.entry(u.state.name().to_string()).or_default() += 1;
        if !u.is_settled() {
            f.problems.push(format!(
                "update {} of device {} is not settled: {} attempt {} retry_at {:?}",
                u.id.0, u.device_id.0, u.state, u.attempt, u.retry_at
            ));
        }
    }
    for state in UpdateState::ALL {
        let recount = f.by_state.get(state.name()).copied().unwrap_or(0);
        let counted = stats["total"]["by_state"][state.name()]
            .as_u64()
            .unwrap_or(0);
        if counted != recount {
            f.problems.push(format!(
                "statistics say {counted} {state}, the updates {recount}"
            ));
        }
    }
    if stats["total"]["total"].as_u64() != Some(f.updates.len() as u64) {
        f.problems.push(format!(
            "statistics count {} updates, the campaign has {}",
            stats["total"]["total"],
            f.updates.len()
        ));
    }
    let updates = std::mem::take(&mut f.updates);
    for u in &updates {
        let history = store
            .update_history(tenant, u.id)
            .await
            .expect("read an update's history");
        f.history_entries += history.len() as u64;
        match walk(u, &history) {
            Ok(dispatched) => {
                f.dispatches
                    .entry(u.device_id)
                    .or_default()
                    .extend(dispatched);
            }
            Err(why) => f.problems.push(format!(
                "update {} of device {}: {why}; history: {:?}",
                u.id.0,
                u.device_id.0,
                history
                    .iter()
                    .map(|e| format!(
                        "{}#{} {}->{} {:?} {:?}",
                        e.event, e.attempt, e.from, e.to, e.outcome, e.message
                    ))
                    .collect::<Vec<_>>()
            )),
        }
    }
    f.updates = updates;
    f
}

/// Follows the applied entries of `history` from QUEUED attempt 1 to `u`'s state and
/// attempt; the dispatches met on the way as (attempt, Unix ms).
fn walk(u: &Update, history: &[HistoryEntry]) -> Result<Vec<(u32, i64)>, String> {
    let (mut state, mut attempt) = (UpdateState::Queued, 1u32);
    let mut dispatched = Vec::new();
    for e in history {
        if e.outcome != HistoryOutcome::Applied {
            if e.from != e.to {
                return Err(format!("an {:?} {} changed the state", e.outcome, e.event));
            }
            continue;
        }
        if e.from != state {
            return Err(format!(
                "{} from {} while the update was {state} (a step lost or doubled)",
                e.event, e.from
            ));
        }
        step_is_a_rule(u, e, attempt)?;
        if e.to == UpdateState::Initiated && e.from == UpdateState::Queued {
            dispatched.push((e.attempt, e.at.timestamp_millis()));
        }
        state = e.to;
        attempt = e.attempt;
    }
    if (state, attempt) != (u.state, u.attempt) {
        return Err(format!(
            "the history ends in {state} attempt {attempt}, the update is {} attempt {}",
            u.state, u.attempt
        ));
    }
    Ok(dispatched)
}

/// Whether ota-core's transition function takes an update in `e.from` (attempt `attempt`)
/// to `e.to` (attempt `e.attempt`) on an event of `e`'s kind and source.
fn step_is_a_rule(u: &Update, e: &HistoryEntry, attempt: u32) -> Result<(), String> {
    let t0 = e.at - ota_core::chrono::Duration::hours(1);
    let mut before = u.clone();
    before.state = e.from;
    before.attempt = attempt;
    before.state_changed_at = t0;
    before.progress = None;
    before.retry_at = None;
    let reason = e.message.clone().unwrap_or_default();
    let mut timeouts = Timeouts::none();
    let event = match e.event.as_str() {
        "dispatch" => UpdateEvent::Dispatched,
        "report" => {
            let mut status = ReportedStatus::default();
            if e.to == UpdateState::Updated {
                status.current = Some(u.target.clone());
            } else if e.to == e.from {
                status.state = Some(e.from);
                status.progress = Some(50);
            } else {
                status.state = Some(e.to);
                status.error = Some(reason);
            }
            UpdateEvent::Report(status)
        }
        "timeout" => {
            timeouts.set(e.from, Some(ota_core::chrono::Duration::seconds(1)));
            UpdateEvent::CheckTimeout
        }
        "retry" => {
            if e.source == EventSource::Retry {
                before.retry_at = Some(t0);
            }
            UpdateEvent::Retry { source: e.source }
        }
        "fail" => UpdateEvent::Fail {
            source: e.source,
            reason,
        },
        "cancel" => {
            if e.from == UpdateState::Failed {
                before.retry_at = Some(e.at);
            }
            UpdateEvent::Cancel {
                source: e.source,
                reason,
            }
        }
        other => return Err(format!("unknown event {other:?}")),
    };
    let policy = UpdatePolicy::new(timeouts, RetryPolicy::attempts(2, Default::default()));
    match apply(&before, &event, e.at, &policy) {
        Outcome::Applied { update, .. } if update.state == e.to && update.attempt == e.attempt => {
            Ok(())
        }
        other => Err(format!(
            "{} #{} {} -> {} is no rule of the state machine (it gives {:?})",
            e.event,
            e.attempt,
            e.from,
            e.to,
            other.applied().map(|n| (n.state, n.attempt))
        )),
    }
}

/// What [`check_notices`] counted.
#[derive(Debug, Default)]
pub struct NoticeCount {
    /// Notices the devices heard.
    pub heard: u64,
    /// Attempts notified more than once (allowed: each repeat after a kill).
    pub repeated: u64,
    /// Dispatched attempts whose device heard no pushed notice (it found the update by
    /// asking for its attributes after connecting again).
    pub unheard: u64,
    /// What is wrong.
    pub problems: Vec<String>,
}

/// Checks the notices the devices heard (`heard`: Unix ms of each pushed update notice, per
/// device) against the attempts dispatched (`dispatches`) and the kills (Unix ms at which
/// each killed server was gone).
///
/// A notice belongs to the latest attempt of its device dispatched at or before its arrival
/// (the notice is written with the dispatch and sent after it commits; server and devices
/// share the clock). The rule: the n-th copy of one attempt's notice (n >= 2) is allowed
/// only when at least n - 1 kills fall between that attempt's dispatch and the copy's
/// arrival: a copy comes only from a notice in flight at a kill (sent, the kill before its
/// outbox row was marked delivered), sent again by the next server. A notice that arrives
/// before any dispatch of its device is a problem too.
pub fn check_notices(
    dispatches: &HashMap<DeviceId, Vec<(u32, i64)>>,
    heard: &HashMap<DeviceId, Vec<u64>>,
    kills: &[u64],
) -> NoticeCount {
    let mut count = NoticeCount::default();
    for (device, times) in heard {
        let mut attempts = dispatches.get(device).cloned().unwrap_or_default();
        attempts.sort_by_key(|(_, at)| *at);
        let mut per_attempt: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        for &t in times {
            count.heard += 1;
            match attempts.iter().rposition(|(_, at)| *at <= t as i64) {
                Some(i) => per_attempt.entry(i).or_default().push(t),
                None => count.problems.push(format!(
                    "device {} heard a notice at {t} before any dispatch ({attempts:?})",
                    device.0
                )),
            }
        }
        for (i, mut copies) in per_attempt {
            copies.sort_unstable();
            let dispatched_at = attempts[i].1;
            if copies.len() > 1 {
                count.repeated += 1;
            }
            for (n, &arrived) in copies.iter().enumerate().skip(1) {
                let kills_between = kills
                    .iter()
                    .filter(|&&k| k as i64 >= dispatched_at && k <= arrived)
                    .count();
                if kills_between < n {
                    count.problems.push(format!(
                        "device {} heard attempt {}'s notice {} times (at {copies:?}, \
                         dispatched at {dispatched_at}) with {kills_between} kills between",
                        device.0,
                        attempts[i].0,
                        copies.len()
                    ));
                    break;
                }
            }
        }
    }
    for (device, attempts) in dispatches {
        let times = heard.get(device).map(Vec::as_slice).unwrap_or_default();
        let mut sorted = attempts.clone();
        sorted.sort_by_key(|(_, at)| *at);
        for (i, (_, at)) in sorted.iter().enumerate() {
            let next = sorted.get(i + 1).map(|(_, n)| *n).unwrap_or(i64::MAX);
            if !times.iter().any(|&t| t as i64 >= *at && (t as i64) < next) {
                count.unheard += 1;
            }
        }
    }
    count
}

/// Each device's pushed notices from a simulator summary (`--per-device`), by device id
/// (`ids`: device name to id).
pub fn heard_by_device(
    summary: &Value,
    ids: &HashMap<String, DeviceId>,
) -> HashMap<DeviceId, Vec<u64>> {
    let mut heard = HashMap::new();
    for d in summary["devices_detail"]
        .as_array()
        .expect("per-device summary")
    {
        let name = d["name"].as_str().expect("device name");
        let id = *ids
            .get(name)
            .unwrap_or_else(|| panic!("unknown device {name}"));
        let times: Vec<u64> = d["notices_ms"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        heard.insert(id, times);
    }
    heard
}
