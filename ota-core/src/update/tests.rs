use super::*;
use crate::clock::{Clock, ManualClock, Timestamp};
use crate::ids::{DeviceId, PackageId, TenantId};
use crate::package::{PackageKind, TitleVersion};
use chrono::Duration;
use proptest::prelude::*;

fn t0() -> Timestamp {
    ManualClock::at_epoch_2024().now()
}

fn target() -> TitleVersion {
    TitleVersion::new("fw", "2.0")
}

fn fresh() -> Update {
    Update::new(
        TenantId::new(),
        DeviceId::new(),
        PackageKind::Firmware,
        PackageId::new(),
        target(),
        None,
        t0(),
    )
}

fn report(state: UpdateState) -> UpdateEvent {
    UpdateEvent::Report(ReportedStatus {
        state: Some(state),
        ..ReportedStatus::default()
    })
}

fn run(u: &Update, event: &UpdateEvent, policy: &UpdatePolicy) -> Outcome {
    apply(u, event, t0(), policy)
}

fn applied(outcome: Outcome) -> Update {
    match outcome {
        Outcome::Applied { update, .. } => update,
        other => panic!("expected applied, got {other:?}"),
    }
}

fn initiated() -> Update {
    applied(run(
        &fresh(),
        &UpdateEvent::Dispatched,
        &UpdatePolicy::default(),
    ))
}

#[test]
fn a_device_walks_through_every_state() {
    let p = UpdatePolicy::default();
    let mut u = initiated();
    assert_eq!((u.state, u.revision), (UpdateState::Initiated, 1));
    for s in [
        UpdateState::Downloading,
        UpdateState::Downloaded,
        UpdateState::Verified,
        UpdateState::Updating,
        UpdateState::Updated,
    ] {
        u = applied(run(&u, &report(s), &p));
        assert_eq!(u.state, s);
    }
    assert_eq!(u.revision, 6);
}

#[test]
fn skipping_forward_is_allowed_and_backward_is_ignored() {
    let p = UpdatePolicy::default();
    let u = applied(run(&initiated(), &report(UpdateState::Verified), &p));
    assert_eq!(u.state, UpdateState::Verified);
    match run(&u, &report(UpdateState::Downloading), &p) {
        Outcome::Ignored { reason, history } => {
            assert!(reason.contains("stale"), "{reason}");
            assert_eq!(
                (history.from, history.to),
                (UpdateState::Verified, UpdateState::Verified)
            );
            assert_eq!(history.outcome, HistoryOutcome::Ignored);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        run(&u, &report(UpdateState::Verified), &p),
        Outcome::Ignored { .. }
    ));
}

#[test]
fn progress_is_kept_while_downloading_and_updating() {
    let p = UpdatePolicy::default();
    let progress = |s, pct| {
        UpdateEvent::Report(ReportedStatus {
            state: Some(s),
            progress: Some(pct),
            ..ReportedStatus::default()
        })
    };
    let u = applied(run(
        &initiated(),
        &progress(UpdateState::Downloading, 10),
        &p,
    ));
    assert_eq!(u.progress, Some(10));
    let u = applied(run(&u, &progress(UpdateState::Downloading, 55), &p));
    assert_eq!((u.state, u.progress), (UpdateState::Downloading, Some(55)));
    assert!(matches!(
        run(&u, &progress(UpdateState::Downloading, 30), &p),
        Outcome::Ignored { .. }
    ));
    let u = applied(run(&u, &report(UpdateState::Downloaded), &p));
    assert_eq!(u.progress, None);
    let u = applied(run(&u, &progress(UpdateState::Updating, 250), &p));
    assert_eq!(u.progress, Some(100));
}

#[test]
fn reporting_the_target_as_current_completes_from_any_unfinished_state() {
    let p = UpdatePolicy::default();
    let done = UpdateEvent::Report(ReportedStatus {
        current: Some(target()),
        ..ReportedStatus::default()
    });
    for u in [fresh(), initiated()] {
        let next = applied(run(&u, &done, &p));
        assert_eq!(next.state, UpdateState::Updated);
    }
}

#[test]
fn updated_with_another_version_fails_with_that_text() {
    let p = UpdatePolicy::default();
    let e = UpdateEvent::Report(ReportedStatus {
        state: Some(UpdateState::Updated),
        current: Some(TitleVersion::new("fw", "1.9")),
        ..ReportedStatus::default()
    });
    let u = applied(run(&initiated(), &e, &p));
    assert_eq!(u.state, UpdateState::Failed);
    let error = u.error.unwrap();
    assert!(
        error.contains("fw 1.9") && error.contains("fw 2.0"),
        "{error}"
    );
}

#[test]
fn device_failure_keeps_its_error_text() {
    let e = UpdateEvent::Report(ReportedStatus {
        state: Some(UpdateState::Failed),
        error: Some("flash write error".into()),
        ..ReportedStatus::default()
    });
    let u = applied(run(&initiated(), &e, &UpdatePolicy::default()));
    assert_eq!(
        (u.state, u.error.as_deref()),
        (UpdateState::Failed, Some("flash write error"))
    );
    assert_eq!(u.retry_at, None, "no automatic retry by default");
}

#[test]
fn server_states_reported_by_a_device_are_rejected() {
    for s in [
        UpdateState::Queued,
        UpdateState::Initiated,
        UpdateState::Canceled,
    ] {
        assert!(matches!(
            run(&initiated(), &report(s), &UpdatePolicy::default()),
            Outcome::Rejected { .. }
        ));
    }
}

#[test]
fn progress_reports_before_dispatch_are_ignored() {
    let outcome = run(
        &fresh(),
        &report(UpdateState::Downloading),
        &UpdatePolicy::default(),
    );
    assert!(matches!(outcome, Outcome::Ignored { .. }), "{outcome:?}");
}

#[test]
fn timeouts_fail_with_the_state_named() {
    let policy = UpdatePolicy {
        timeouts: Timeouts::none().with(UpdateState::Initiated, Duration::minutes(10)),
        ..UpdatePolicy::default()
    };
    let u = initiated();
    assert_eq!(
        timeout_due(&u, t0(), &policy.timeouts),
        Some(t0() + Duration::minutes(10))
    );
    let early = apply(
        &u,
        &UpdateEvent::CheckTimeout,
        t0() + Duration::minutes(9),
        &policy,
    );
    assert!(matches!(early, Outcome::Ignored { .. }));
    let late = applied(apply(
        &u,
        &UpdateEvent::CheckTimeout,
        t0() + Duration::minutes(10),
        &policy,
    ));
    assert_eq!(late.state, UpdateState::Failed);
    assert!(late.error.unwrap().contains("INITIATED"));
}

#[test]
fn the_default_policy_retries_unanswered_notices_only() {
    let policy = UpdatePolicy::default();
    let mut u = initiated();
    let limit = DEFAULT_INITIATED_TIMEOUT;
    assert_eq!(timeout_due(&u, t0(), &policy.timeouts), Some(t0() + limit));
    // INITIATED timing out fails the attempt and queues a new one, up to 3 attempts.
    for attempt in 1..=DEFAULT_UNANSWERED_ATTEMPTS {
        assert_eq!(u.attempt, attempt);
        let since = u.state_changed_at;
        let failed = applied(apply(
            &u,
            &UpdateEvent::CheckTimeout,
            since + limit,
            &policy,
        ));
        assert_eq!(failed.state, UpdateState::Failed);
        assert!(failed.error.as_deref().unwrap().contains("INITIATED"));
        let Some(at) = failed.retry_at else {
            assert_eq!(
                attempt, DEFAULT_UNANSWERED_ATTEMPTS,
                "retried until the last"
            );
            return;
        };
        assert!(attempt < DEFAULT_UNANSWERED_ATTEMPTS);
        let retry = UpdateEvent::Retry {
            source: EventSource::Retry,
        };
        let queued = applied(apply(&failed, &retry, at, &policy));
        assert_eq!(queued.state, UpdateState::Queued);
        u = applied(apply(&queued, &UpdateEvent::Dispatched, at, &policy));
    }
    panic!("the last unanswered attempt is not retried");
}

#[test]
fn the_default_policy_does_not_retry_device_failures_nor_other_timeouts() {
    let policy = UpdatePolicy::default();
    let downloading = applied(run(
        &initiated(),
        &report(UpdateState::Downloading),
        &policy,
    ));
    let failed = applied(run(&downloading, &report(UpdateState::Failed), &policy));
    assert_eq!(failed.state, UpdateState::Failed);
    assert_eq!(failed.retry_at, None, "a device's failure is not retried");
    assert_eq!(timeout_due(&downloading, t0(), &policy.timeouts), None);
    let mut strict = UpdatePolicy::default();
    strict.timeouts = strict
        .timeouts
        .with(UpdateState::Downloading, Duration::minutes(5));
    let timed_out = applied(apply(
        &downloading,
        &UpdateEvent::CheckTimeout,
        t0() + Duration::minutes(5),
        &strict,
    ));
    assert_eq!(timed_out.state, UpdateState::Failed);
    assert_eq!(timed_out.retry_at, None, "only INITIATED gets the net");
    // A policy written without the new fields gets the net; one that names its timeouts
    // keeps exactly those.
    let old: UpdatePolicy = serde_json::from_str(
        r#"{"retry": {"max_attempts": 1,
        "initial_backoff": 1000, "multiplier": 2, "max_backoff": 60000}}"#,
    )
    .unwrap();
    assert_eq!(old.timeouts, policy.timeouts);
    assert_eq!(old.unanswered_attempts, DEFAULT_UNANSWERED_ATTEMPTS);
    let none: UpdatePolicy = serde_json::from_str(r#"{"timeouts": {}}"#).unwrap();
    assert_eq!(none.timeouts, Timeouts::none());
}

#[test]
fn retries_back_off_exponentially_up_to_max_attempts() {
    let policy = UpdatePolicy {
        retry: RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::seconds(10),
            multiplier: 3,
            max_backoff: Duration::seconds(60),
        },
        ..UpdatePolicy::default()
    };
    let fail = UpdateEvent::Fail {
        source: EventSource::Server,
        reason: "boom".into(),
    };
    let mut now = t0();
    let mut u = applied(apply(&fresh(), &UpdateEvent::Dispatched, now, &policy));
    let mut waits = Vec::new();
    loop {
        u = applied(apply(&u, &fail, now, &policy));
        let Some(at) = u.retry_at else { break };
        waits.push((at - now).num_seconds());
        let not_yet = apply(
            &u,
            &UpdateEvent::Retry {
                source: EventSource::Retry,
            },
            now,
            &policy,
        );
        assert!(matches!(not_yet, Outcome::Ignored { .. }));
        now = at;
        u = applied(apply(
            &u,
            &UpdateEvent::Retry {
                source: EventSource::Retry,
            },
            now,
            &policy,
        ));
        assert_eq!(u.state, UpdateState::Queued);
        u = applied(apply(&u, &UpdateEvent::Dispatched, now, &policy));
    }
    assert_eq!(waits, vec![10, 30, 60]);
    assert_eq!((u.state, u.attempt), (UpdateState::Failed, 4));
}

#[test]
fn cancel_ends_an_unfinished_update_and_stops_a_pending_retry() {
    let policy = UpdatePolicy {
        retry: RetryPolicy::attempts(3, Duration::seconds(5)),
        ..UpdatePolicy::default()
    };
    let cancel = UpdateEvent::Cancel {
        source: EventSource::Operator,
        reason: "operator".into(),
    };
    let u = applied(apply(&initiated(), &cancel, t0(), &policy));
    assert_eq!(u.state, UpdateState::Canceled);
    assert!(matches!(
        apply(&u, &cancel, t0(), &policy),
        Outcome::Rejected { .. }
    ));

    let failed = applied(apply(
        &initiated(),
        &UpdateEvent::Fail {
            source: EventSource::Server,
            reason: "x".into(),
        },
        t0(),
        &policy,
    ));
    assert!(failed.retry_at.is_some());
    let stopped = applied(apply(&failed, &cancel, t0(), &policy));
    assert_eq!(
        (stopped.state, stopped.retry_at),
        (UpdateState::Failed, None)
    );
}

#[test]
fn operator_retry_starts_a_new_attempt_and_in_progress_updates_refuse_it() {
    let p = UpdatePolicy::default();
    let retry = UpdateEvent::Retry {
        source: EventSource::Operator,
    };
    assert!(matches!(
        run(&initiated(), &retry, &p),
        Outcome::Rejected { .. }
    ));
    let failed = applied(run(
        &initiated(),
        &UpdateEvent::Fail {
            source: EventSource::Server,
            reason: "x".into(),
        },
        &p,
    ));
    let again = applied(run(&failed, &retry, &p));
    assert_eq!(
        (again.state, again.attempt, again.error),
        (UpdateState::Queued, 2, None)
    );
    let done = applied(run(&initiated(), &report(UpdateState::Updated), &p));
    assert!(matches!(run(&done, &retry, &p), Outcome::Rejected { .. }));
}

fn any_state() -> impl Strategy<Value = UpdateState> {
    proptest::sample::select(UpdateState::ALL.to_vec())
}

fn any_event() -> impl Strategy<Value = UpdateEvent> {
    let status = (
        proptest::option::of(any_state()),
        proptest::option::of(prop_oneof![
            Just(target()),
            Just(TitleVersion::new("fw", "1.0")),
            Just(TitleVersion::new("other", "2.0")),
        ]),
        proptest::option::of(".{0,8}"),
        proptest::option::of(any::<u8>()),
    )
        .prop_map(|(state, current, error, progress)| {
            UpdateEvent::Report(ReportedStatus {
                state,
                current,
                error,
                progress,
            })
        });
    let source = proptest::sample::select(vec![
        EventSource::Device,
        EventSource::Server,
        EventSource::Operator,
        EventSource::Campaign,
        EventSource::Timeout,
        EventSource::Retry,
    ]);
    prop_oneof![
        6 => status,
        1 => Just(UpdateEvent::Dispatched),
        1 => Just(UpdateEvent::CheckTimeout),
        1 => (source.clone(), ".{0,8}").prop_map(|(source, reason)| UpdateEvent::Cancel { source, reason }),
        1 => (source.clone(), ".{0,8}").prop_map(|(source, reason)| UpdateEvent::Fail { source, reason }),
        1 => source.prop_map(|source| UpdateEvent::Retry { source }),
    ]
}

fn any_policy() -> impl Strategy<Value = UpdatePolicy> {
    (
        proptest::collection::vec((any_state(), 0i64..100_000), 0..4),
        0u32..5,
        0i64..10_000,
        0u32..5,
        0u32..4,
    )
        .prop_map(
            |(timeouts, max_attempts, backoff, multiplier, unanswered_attempts)| {
                let mut t = Timeouts::none();
                for (s, ms) in timeouts {
                    t.set(s, Some(Duration::milliseconds(ms)));
                }
                UpdatePolicy {
                    timeouts: t,
                    retry: RetryPolicy {
                        max_attempts,
                        initial_backoff: Duration::milliseconds(backoff),
                        multiplier,
                        max_backoff: Duration::milliseconds(backoff * 4),
                    },
                    unanswered_attempts,
                }
            },
        )
}

proptest! {
    #[test]
    fn device_reports_never_move_backward_nor_leave_a_terminal_state(
        events in proptest::collection::vec(any_event(), 0..40),
        policy in any_policy(),
    ) {
        let mut u = initiated();
        let mut now = t0();
        for event in &events {
            now += Duration::milliseconds(250);
            let before = u.clone();
            let outcome = apply(&u, event, now, &policy);
            let history = outcome.history().clone();
            prop_assert_eq!(history.update_id, u.id);
            prop_assert_eq!(history.at, now);
            prop_assert_eq!(history.from, before.state);
            prop_assert_eq!(history.source, event.source());
            match outcome {
                Outcome::Applied { update, .. } => {
                    prop_assert_eq!(history.to, update.state);
                    prop_assert_eq!(update.revision, before.revision + 1);
                    let recovered = matches!(event, UpdateEvent::Report(_))
                        && before.state == UpdateState::Failed
                        && update.state == UpdateState::Updated;
                    if before.state.is_terminal() && update.state != before.state && !recovered {
                        // Only a retry leaves a terminal state, and only to QUEUED.
                        let is_retry = matches!(event, UpdateEvent::Retry { .. });
                        prop_assert!(is_retry, "left {} by {:?}", before.state, event);
                        prop_assert_eq!(update.state, UpdateState::Queued);
                        prop_assert_eq!(update.attempt, before.attempt + 1);
                    }
                    if let UpdateEvent::Report(status) = event {
                        let forward = update.state.rank() >= before.state.rank()
                            || update.state == UpdateState::Failed;
                        let recovery = before.state == UpdateState::Failed
                            && update.state == UpdateState::Updated
                            && status.current.as_ref() == Some(&before.target);
                        prop_assert!(forward || recovery, "{} -> {}", before.state, update.state);
                        prop_assert!(!before.state.is_terminal() || recovery);
                    }
                    if let Some(p) = update.progress {
                        prop_assert!(p <= 100);
                        prop_assert!(matches!(update.state, UpdateState::Downloading | UpdateState::Updating));
                    }
                    prop_assert!(update.attempt >= before.attempt);
                    u = update;
                }
                Outcome::Ignored { .. } | Outcome::Rejected { .. } => {
                    prop_assert_eq!(history.to, before.state);
                }
            }
        }
    }

    #[test]
    fn apply_never_panics_on_any_update(
        state in any_state(),
        attempt in any::<u32>(),
        revision in any::<u64>(),
        event in any_event(),
        policy in any_policy(),
        offset in -1_000_000_000i64..1_000_000_000,
    ) {
        let mut u = fresh();
        u.state = state;
        u.attempt = attempt;
        u.revision = revision;
        u.retry_at = Some(t0());
        let _ = apply(&u, &event, t0() + Duration::milliseconds(offset), &policy);
    }

    #[test]
    fn backoff_is_monotonic_and_capped(
        initial in 0i64..100_000,
        multiplier in 0u32..10,
        cap in 0i64..1_000_000,
        max_attempts in 0u32..50,
    ) {
        let policy = RetryPolicy {
            max_attempts,
            initial_backoff: Duration::milliseconds(initial),
            multiplier,
            max_backoff: Duration::milliseconds(cap),
        };
        let mut last = Duration::zero();
        for attempt in 1..60u32 {
            match policy.backoff_after(attempt) {
                Some(wait) => {
                    prop_assert!(attempt < max_attempts);
                    prop_assert!(wait >= last);
                    prop_assert!(wait <= Duration::milliseconds(cap.max(initial)));
                    last = wait;
                }
                None => prop_assert!(attempt >= max_attempts),
            }
        }
    }
}
