//! Retention through the engine: old history and audit entries deleted per tenant, in runs of
//! bounded work, younger entries and other tenants' kept.

mod support;

use ota_core::audit::AuditEntry;
use ota_core::chrono::Duration;
use ota_core::engine::{OtaConfig, RetentionPolicy, RetentionRule};
use ota_core::store::{AuditStore, PageRequest, UpdateStore};
use ota_core::{AssignmentTarget, Device, TenantId, UpdateState};
use support::*;

async fn history_len(h: &Harness, devices: &[Device]) -> Vec<usize> {
    let mut out = Vec::new();
    for d in devices {
        out.push(
            h.store
                .device_history(h.tenant, d.id, 1000)
                .await
                .unwrap()
                .len(),
        );
    }
    out
}

async fn audit_len(h: &Harness, tenant: TenantId) -> usize {
    h.store
        .list_audit(tenant, PageRequest::first(1000))
        .await
        .unwrap()
        .items
        .len()
}

async fn audit(h: &Harness, tenant: TenantId, n: usize) {
    for i in 0..n {
        let entry = AuditEntry::new(
            tenant,
            ACTOR,
            "test.action",
            format!("thing {i}"),
            h.ota.now(),
            serde_json::json!({}),
        );
        h.store.append_audit(&entry).await.unwrap();
    }
}

#[tokio::test]
async fn old_entries_go_in_bounded_runs_per_tenant() {
    let h = Harness::new(OtaConfig::default());
    let other = TenantId::new();
    let p = h.profile("p").await;
    let devices = h.devices(&p, "d", 4).await;
    let pkg = h.package("fw", "1.0").await;
    h.ota
        .assign(ACTOR, h.tenant, AssignmentTarget::Profile(p.id), pkg.id)
        .await
        .unwrap();
    h.ota.tick().await.unwrap();
    for d in &devices {
        h.ota
            .handle_report(h.tenant, d.id, &report(Some(UpdateState::Downloading)))
            .await
            .unwrap();
    }
    audit(&h, h.tenant, 7).await;
    audit(&h, other, 5).await;
    let old_history: usize = history_len(&h, &devices).await.iter().sum();
    // The engine's own entries (profile, devices, package, assignment) and the 7 above.
    let old_audit = audit_len(&h, h.tenant).await;
    assert!(old_audit > 7, "{old_audit}");
    assert!(old_history >= 2 * devices.len(), "{old_history}");

    // 100 days later: new events.
    h.clock.advance(Duration::days(100));
    for d in &devices {
        h.ota
            .handle_report(h.tenant, d.id, &report(Some(UpdateState::Downloaded)))
            .await
            .unwrap();
    }
    audit(&h, h.tenant, 2).await;
    audit(&h, other, 1).await;

    let policy = RetentionPolicy::new(RetentionRule::keep_for(Duration::days(30)))
        .tenant(other, RetentionRule::forever())
        .batch_size(3)
        .max_batches(2);
    let (mut history, mut audited, mut runs) = (0, 0, 0);
    loop {
        let report = h.ota.apply_retention(&policy).await.unwrap();
        assert!(report.batches <= 2, "{report:?}");
        history += report.history_deleted;
        audited += report.audit_deleted;
        runs += 1;
        if report.complete {
            break;
        }
        assert!(runs < 100, "retention never completes");
    }
    assert!(runs > 1, "a run's work is bounded, so it took several");
    assert_eq!(history, old_history as u64);
    assert_eq!(audited, old_audit as u64);
    assert_eq!(history_len(&h, &devices).await, vec![1; devices.len()]);
    for d in &devices {
        let left = h.store.device_history(h.tenant, d.id, 10).await.unwrap();
        assert_eq!(left[0].to, UpdateState::Downloaded);
        // The update itself is kept.
        assert_eq!(h.state_of(d).await, Some(UpdateState::Downloaded));
    }
    assert_eq!(audit_len(&h, h.tenant).await, 2);
    assert_eq!(
        audit_len(&h, other).await,
        6,
        "the other tenant keeps its log"
    );

    // Nothing is old any more: one complete run that deletes nothing.
    let again = h.ota.apply_retention(&policy).await.unwrap();
    assert!(again.complete);
    assert_eq!((again.history_deleted, again.audit_deleted), (0, 0));

    // A policy that keeps everything by default visits only the tenants it names.
    h.clock.advance(Duration::days(100));
    let only_other = RetentionPolicy::new(RetentionRule::forever())
        .tenant(other, RetentionRule::keep_for(Duration::days(1)));
    let report = h.ota.apply_retention(&only_other).await.unwrap();
    assert_eq!((report.history_deleted, report.audit_deleted), (0, 6));
    assert_eq!(audit_len(&h, h.tenant).await, 2);
}
