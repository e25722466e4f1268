//! Retention behaviours: logs trimmed from their head in bounded batches, per tenant.

use super::fixtures::{at, Fixture};
use crate::audit::AuditEntry;
use crate::device::Device;
use crate::ids::TenantId;
use crate::package::PackageKind;
use crate::store::{PageRequest, RetainedLog, Store};
use crate::update::{EventSource, HistoryEntry, HistoryOutcome, Update, UpdateState};
use std::sync::Arc;

/// A stored update of a fresh device of `f`'s tenant.
async fn stored_update(f: &Fixture, name: &str) -> (Device, Update) {
    let p = f.profile(&format!("p-{name}")).await;
    let device = f.devices(&p, name, 1).await.remove(0);
    let pkg = f.package(PackageKind::Firmware, &format!("fw-{name}"), "1.0");
    f.store.create_package(&pkg, None).await.expect("package");
    let u = f.update(&device, &pkg, at(0));
    f.store
        .create_updates(std::slice::from_ref(&u))
        .await
        .expect("update");
    (device, u)
}

/// Appends a history entry of `u` at `secs`, with `secs` as its message.
async fn history_at(store: &Arc<dyn Store>, u: &Update, secs: i64) {
    let entry = HistoryEntry {
        update_id: u.id,
        tenant_id: u.tenant_id,
        device_id: u.device_id,
        kind: u.kind,
        attempt: 1,
        at: at(secs),
        from: UpdateState::Queued,
        to: UpdateState::Queued,
        source: EventSource::Server,
        event: "check".into(),
        message: Some(secs.to_string()),
        outcome: HistoryOutcome::Ignored,
    };
    store.append_history(&entry).await.expect("append history");
}

/// Appends an audit entry at `secs` (its UUID v7 id sorts after every earlier one of this
/// process: ids are in append order).
async fn audit_at(store: &Arc<dyn Store>, tenant: TenantId, secs: i64) {
    let entry = AuditEntry::new(tenant, "t", "x.y", "z", at(secs), serde_json::json!({}));
    store.append_audit(&entry).await.expect("append audit");
}

async fn history_seconds(store: &Arc<dyn Store>, u: &Update) -> Vec<String> {
    store
        .update_history(u.tenant_id, u.id)
        .await
        .expect("history")
        .into_iter()
        .filter_map(|h| h.message)
        .collect()
}

async fn audit_seconds(store: &Arc<dyn Store>, tenant: TenantId) -> Vec<i64> {
    store
        .list_audit(tenant, PageRequest::first(100))
        .await
        .expect("audit")
        .items
        .into_iter()
        .map(|e| (e.at - at(0)).num_seconds())
        .collect()
}

/// Entries older than the cutoff go from the head of each log in batches of at most the limit;
/// younger ones and other tenants' stay; an update's and a device's history read the rest.
pub async fn retention_trims_logs_in_batches(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let other = Fixture::new(store.clone());
    let (device, u) = stored_update(&f, "d").await;
    let (_, ou) = stored_update(&other, "o").await;
    for s in 0..10 {
        history_at(&store, &u, s).await;
        history_at(&store, &ou, s).await;
        audit_at(&store, f.tenant, s).await;
        audit_at(&store, other.tenant, s).await;
    }
    let cutoff = at(5);
    for log in RetainedLog::ALL {
        let batches: Vec<u64> = [
            store.purge_log(log, f.tenant, cutoff, 3).await,
            store.purge_log(log, f.tenant, cutoff, 3).await,
            store.purge_log(log, f.tenant, cutoff, 3).await,
        ]
        .into_iter()
        .map(|r| r.expect("purge"))
        .collect();
        assert_eq!(batches, vec![3, 2, 0], "{log:?}");
        assert_eq!(
            store.purge_log(log, f.tenant, cutoff, 0).await.ok(),
            Some(0)
        );
    }
    let want: Vec<String> = (5..10).map(|s| s.to_string()).collect();
    assert_eq!(history_seconds(&store, &u).await, want);
    let recent = store
        .device_history(f.tenant, device.id, 100)
        .await
        .expect("device history");
    assert_eq!(recent.len(), 5);
    assert!(recent.iter().all(|h| h.at >= cutoff));
    assert_eq!(
        audit_seconds(&store, f.tenant).await,
        (5..10).collect::<Vec<_>>()
    );
    // The other tenant keeps everything.
    assert_eq!(history_seconds(&store, &ou).await.len(), 10);
    assert_eq!(audit_seconds(&store, other.tenant).await.len(), 10);
    // New entries append after a purge as before.
    history_at(&store, &u, 20).await;
    assert_eq!(history_seconds(&store, &u).await.len(), 6);
    // A cutoff after everything empties the logs.
    for (log, left) in [(RetainedLog::History, 6), (RetainedLog::Audit, 5)] {
        let n = store.purge_log(log, f.tenant, at(100), 100).await;
        assert_eq!(n.ok(), Some(left), "{log:?}");
    }
    assert!(history_seconds(&store, &u).await.is_empty());
    assert!(audit_seconds(&store, f.tenant).await.is_empty());
}

/// A batch stops at the first entry that is not older than the cutoff: an old entry written
/// after a young one stays until the young one has aged too.
pub async fn retention_stops_at_a_younger_entry(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let (_, u) = stored_update(&f, "d").await;
    for s in [1, 2, 50, 3] {
        history_at(&store, &u, s).await;
        audit_at(&store, f.tenant, s).await;
    }
    for log in RetainedLog::ALL {
        let n = store
            .purge_log(log, f.tenant, at(10), 100)
            .await
            .expect("purge");
        assert_eq!(n, 2, "{log:?}");
    }
    assert_eq!(history_seconds(&store, &u).await, vec!["50", "3"]);
    assert_eq!(audit_seconds(&store, f.tenant).await, vec![50, 3]);
    for log in RetainedLog::ALL {
        let n = store
            .purge_log(log, f.tenant, at(51), 100)
            .await
            .expect("purge");
        assert_eq!(n, 2, "{log:?}");
    }
}

/// Tenants with entries are listed in id order, a page at a time; a tenant whose entries
/// are all gone is not listed.
pub async fn retention_lists_tenants_with_entries(store: Arc<dyn Store>) {
    let mut mine = Vec::new();
    for i in 0..3 {
        let f = Fixture::new(store.clone());
        let (_, u) = stored_update(&f, &format!("d{i}")).await;
        history_at(&store, &u, 1).await;
        audit_at(&store, f.tenant, 1).await;
        mine.push(f.tenant);
    }
    mine.sort();
    for log in RetainedLog::ALL {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .retention_tenants(log, after, 2)
                .await
                .expect("tenants");
            assert!(page.len() <= 2);
            let Some(last) = page.last().copied() else {
                break;
            };
            seen.extend(page);
            after = Some(last);
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(seen, sorted, "ascending, no repeats ({log:?})");
        assert!(mine.iter().all(|t| seen.contains(t)), "{log:?}");
        store
            .purge_log(log, mine[1], at(2), 10)
            .await
            .expect("purge");
        let all = store
            .retention_tenants(log, None, 10_000)
            .await
            .expect("tenants");
        assert!(!all.contains(&mine[1]), "{log:?}");
        assert!(all.contains(&mine[0]) && all.contains(&mine[2]), "{log:?}");
    }
}
