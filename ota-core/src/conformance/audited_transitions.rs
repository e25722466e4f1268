//! An operator's transitions of updates (a cancel, a retry) written with their audit entry
//! and notice ([`crate::store::UpdateStore::transition_audited`]): all or none.

use super::fixtures::{at, Fixture};
use crate::audit::AuditEntry;
use crate::device::Device;
use crate::ids::UpdateId;
use crate::notifier::Notice;
use crate::package::{Package, PackageKind};
use crate::store::{
    AuditedTransition, NoticeClaim, NoticeLease, OutboxEntry, PageRequest, Store, StoreError,
    Transition,
};
use crate::update::{apply, EventSource, Outcome, Update, UpdateEvent, UpdatePolicy, UpdateState};
use chrono::Duration;
use std::sync::Arc;

async fn fleet(f: &Fixture, n: usize) -> (Vec<Device>, Package) {
    let p = f.profile("p").await;
    let devices = f.devices(&p, "d", n).await;
    let pkg = f.package(PackageKind::Firmware, "fw", "2.0");
    f.store.create_package(&pkg, None).await.expect("package");
    (devices, pkg)
}

fn cancel() -> UpdateEvent {
    UpdateEvent::Cancel {
        source: EventSource::Operator,
        reason: "conformance".into(),
    }
}

fn retry() -> UpdateEvent {
    UpdateEvent::Retry {
        source: EventSource::Operator,
    }
}

/// The transition of `u` by `event` at `secs`.
fn transition_of(u: &Update, event: &UpdateEvent, secs: i64) -> Transition {
    match apply(u, event, at(secs), &UpdatePolicy::default()) {
        Outcome::Applied { update, history } => Transition {
            expected_revision: u.revision,
            update,
            history,
        },
        other => panic!(
            "{} applies to a {} update, got {other:?}",
            event.name(),
            u.state
        ),
    }
}

/// `event` on `u` with its entry and, for a cancel, the withdrawal notice (leased to
/// `writer`).
fn audited(f: &Fixture, u: &Update, event: &UpdateEvent, secs: i64) -> AuditedTransition {
    let transition = transition_of(u, event, secs);
    let audit = AuditEntry::new(
        f.tenant,
        "conformance",
        format!("update.{}", event.name()),
        format!("device {}", u.device_id),
        at(secs),
        serde_json::json!({"update": u.id, "attempt": transition.update.attempt}),
    );
    let notice = matches!(event, UpdateEvent::Cancel { .. }).then(|| {
        OutboxEntry::new(
            Notice::Withdrawal {
                tenant_id: f.tenant,
                device_id: u.device_id,
                kind: u.kind,
                keys: vec!["fw_title".into(), "fw_version".into()],
            },
            at(secs),
        )
    });
    AuditedTransition {
        transition,
        audit,
        notice,
        lease: Some(NoticeLease {
            owner: "writer".into(),
            until: at(secs + 30),
        }),
    }
}

async fn write(store: &Arc<dyn Store>, w: &AuditedTransition) -> Result<(), StoreError> {
    store
        .transition_audited(w)
        .await
        .expect("the store writes an operator's transition with its audit entry")
}

async fn log(f: &Fixture) -> Vec<AuditEntry> {
    f.store
        .list_audit(f.tenant, PageRequest::first(crate::store::MAX_PAGE_SIZE))
        .await
        .expect("list audit")
        .items
}

/// What a refused write must leave as it was: the update, its history, the outbox and the
/// audit log.
async fn snapshot(f: &Fixture, id: UpdateId) -> (Option<Update>, usize, u64, usize) {
    let update = f.store.get_update(f.tenant, id).await.ok();
    let history = f
        .store
        .update_history(f.tenant, id)
        .await
        .map_or(0, |h| h.len());
    let notices = f
        .store
        .count_undelivered(Some(f.tenant))
        .await
        .expect("count notices");
    (update, history, notices, log(f).await.len())
}

/// A cancel is written with its entry and its withdrawal notice, a retry with its entry:
/// afterwards the update is in its new state with one history entry per transition, the
/// entries are logged exactly as given, and the notice waits in the outbox under its lease.
pub async fn operator_transitions_are_written_with_their_audit_entry(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let (devices, pkg) = fleet(&f, 2).await;
    let updates: Vec<Update> = devices.iter().map(|d| f.update(d, &pkg, at(0))).collect();
    store.create_updates(&updates).await.expect("create");
    let u = &updates[0];

    let canceled = audited(&f, u, &cancel(), 10);
    write(&store, &canceled).await.expect("cancel");
    let stored = store.get_update(f.tenant, u.id).await.expect("get");
    assert_eq!(stored, canceled.transition.update);
    assert_eq!(stored.state, UpdateState::Canceled);
    assert_eq!(
        log(&f).await,
        vec![canceled.audit.clone()],
        "the cancel's entry"
    );
    assert_eq!(
        store
            .count_undelivered(Some(f.tenant))
            .await
            .expect("count"),
        1,
        "the withdrawal notice"
    );
    let claim = |owner: &str, secs: i64| NoticeClaim {
        now: at(secs),
        limit: 10,
        owner: owner.to_string(),
        lease: Duration::seconds(30),
        devices: None,
    };
    assert!(
        store
            .claim_notices(&claim("other", 11))
            .await
            .expect("claim")
            .is_empty(),
        "the notice is leased to its writer"
    );
    let taken = store
        .claim_notices(&claim("other", 41))
        .await
        .expect("claim");
    assert_eq!(
        taken.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![canceled.notice.clone().expect("notice").id],
        "the notice, once its lease lapsed"
    );

    let retried = audited(&f, &stored, &retry(), 20);
    assert!(retried.notice.is_none());
    write(&store, &retried).await.expect("retry");
    let again = store.get_update(f.tenant, u.id).await.expect("get");
    assert_eq!(again, retried.transition.update);
    assert_eq!(again.state, UpdateState::Queued);
    assert_eq!(again.attempt, u.attempt + 1, "a new attempt");
    assert_eq!(
        log(&f).await,
        vec![canceled.audit.clone(), retried.audit.clone()],
        "both entries, in order"
    );
    assert_eq!(
        store
            .update_history(f.tenant, u.id)
            .await
            .expect("history")
            .len(),
        2,
        "one history entry per transition"
    );
    assert_eq!(
        store
            .count_undelivered(Some(f.tenant))
            .await
            .expect("count"),
        1,
        "a retry writes no notice"
    );
    // The other device's update was not touched.
    assert_eq!(
        store
            .get_update(f.tenant, updates[1].id)
            .await
            .expect("get"),
        updates[1]
    );
}

/// A refused operator transition writes nothing: not the transition, not its history, not
/// its notice and not its entry. Refused are a stale revision, an unknown update, another
/// tenant's update, an entry whose id is logged already, and a retry that would give a
/// device a second unfinished update.
pub async fn refused_operator_transitions_write_no_entry(store: Arc<dyn Store>) {
    let f = Fixture::new(store.clone());
    let other = Fixture::new(store.clone());
    let (devices, pkg) = fleet(&f, 3).await;
    let updates: Vec<Update> = devices.iter().map(|d| f.update(d, &pkg, at(0))).collect();
    store.create_updates(&updates).await.expect("create");

    // Stale: another writer moved the update first.
    let u = &updates[0];
    let first = transition_of(u, &UpdateEvent::Dispatched, 5);
    store
        .transition(&first.update, first.expected_revision, &first.history)
        .await
        .expect("first writer");
    let before = snapshot(&f, u.id).await;
    let stale = audited(&f, u, &cancel(), 10);
    let answer = write(&store, &stale).await;
    assert!(
        matches!(answer, Err(StoreError::PreconditionFailed { .. })),
        "stale: {answer:?}"
    );
    assert_eq!(
        snapshot(&f, u.id).await,
        before,
        "a stale cancel wrote something"
    );

    // Unknown update.
    let mut unknown = audited(&f, &updates[1], &cancel(), 10);
    unknown.transition.update.id = UpdateId::new();
    unknown.transition.history.update_id = unknown.transition.update.id;
    let before = snapshot(&f, updates[1].id).await;
    let answer = write(&store, &unknown).await;
    assert!(
        matches!(&answer, Err(e) if e.is_not_found()),
        "unknown: {answer:?}"
    );
    assert_eq!(snapshot(&f, updates[1].id).await, before);

    // Another tenant's update, as seen from this tenant.
    let (other_devices, other_pkg) = fleet(&other, 1).await;
    let foreign = other.update(&other_devices[0], &other_pkg, at(0));
    store
        .create_updates(std::slice::from_ref(&foreign))
        .await
        .expect("create");
    let mut spoofed = audited(&other, &foreign, &cancel(), 10);
    spoofed.transition.update.tenant_id = f.tenant;
    spoofed.transition.history.tenant_id = f.tenant;
    spoofed.audit.tenant_id = f.tenant;
    let answer = write(&store, &spoofed).await;
    assert!(
        matches!(&answer, Err(e) if e.is_not_found()),
        "another tenant's: {answer:?}"
    );
    assert_eq!(
        store
            .get_update(other.tenant, foreign.id)
            .await
            .expect("get"),
        foreign
    );
    assert!(log(&other).await.is_empty() && log(&f).await.is_empty());

    // An entry whose id is logged: refused with its transition.
    let logged = AuditEntry::new(
        f.tenant,
        "conformance",
        "logged",
        "target",
        at(1),
        serde_json::json!({}),
    );
    store.append_audit(&logged).await.expect("append");
    let before = snapshot(&f, updates[1].id).await;
    let mut reused = audited(&f, &updates[1], &cancel(), 10);
    reused.audit.id = logged.id;
    let answer = write(&store, &reused).await;
    assert!(
        matches!(answer, Err(StoreError::Conflict { .. })),
        "a reused entry id: {answer:?}"
    );
    assert_eq!(
        snapshot(&f, updates[1].id).await,
        before,
        "a refused entry's action"
    );
    assert_eq!(
        log(&f).await,
        vec![logged],
        "the logged entry is not replaced"
    );

    // A retry of an update that a newer one replaced.
    let replaced = &updates[2];
    let done = transition_of(replaced, &cancel(), 5);
    store
        .transition(&done.update, done.expected_revision, &done.history)
        .await
        .expect("cancel");
    let newer = f.update(&devices[2], &pkg, at(6));
    store
        .create_updates(std::slice::from_ref(&newer))
        .await
        .expect("newer update");
    let before = snapshot(&f, replaced.id).await;
    let retry_old = audited(&f, &done.update, &retry(), 10);
    let answer = write(&store, &retry_old).await;
    assert!(
        matches!(answer, Err(StoreError::Conflict { .. })),
        "a second unfinished update: {answer:?}"
    );
    assert_eq!(snapshot(&f, replaced.id).await, before);
}
