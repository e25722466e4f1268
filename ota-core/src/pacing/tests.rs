use super::*;
use proptest::prelude::*;

fn t0() -> Timestamp {
    DateTime::<Utc>::from_timestamp(1_704_067_200, 0).unwrap()
}

fn at(ms: i64) -> Timestamp {
    t0() + Duration::milliseconds(ms)
}

fn rate(count: u32, per_ms: i64) -> Rate {
    Rate::new(count, Duration::milliseconds(per_ms)).unwrap()
}

fn paced(count: u32, per_ms: i64, catch_up_ms: i64) -> Pacing {
    Pacing {
        rate: Some(rate(count, per_ms)),
        catch_up: Duration::milliseconds(catch_up_ms),
        ..Pacing::default()
    }
}

/// One release decision per tick `(time in ms, wanted)`; returns `(time, released,
/// total released after)` for every tick that released something.
fn simulate(p: &Pacing, ticks: &[(i64, u32)]) -> Vec<(i64, u32, u64)> {
    let mut state = PaceState::default();
    let mut out = Vec::new();
    for &(ms, want) in ticks {
        let now = at(ms);
        let n = p.available(&state, now, 0).min(want);
        p.commit(&mut state, now, n);
        if n > 0 {
            out.push((ms, n, state.released));
        }
    }
    out
}

fn ceil_div(a: i128, b: i128) -> i128 {
    (a + b - 1) / b
}

#[test]
fn one_every_600_ms_at_100_per_minute() {
    assert_eq!(rate(100, 60_000).interval(), Duration::milliseconds(600));
    let ticks: Vec<(i64, u32)> = (0..=24).map(|i| (i * 100, u32::MAX)).collect();
    for catch_up in [0, 100, 1000] {
        let releases = simulate(&paced(100, 60_000, catch_up), &ticks);
        let times: Vec<(i64, u32)> = releases.iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(
            times,
            vec![(0, 1), (600, 1), (1200, 1), (1800, 1), (2400, 1)],
            "catch_up {catch_up} ms"
        );
    }
}

#[test]
fn ticks_every_second_keep_the_pace_with_catch_up() {
    let ticks: Vec<(i64, u32)> = (0..=600).map(|s| (s * 1000, u32::MAX)).collect();
    let total = |p: &Pacing| {
        simulate(p, &ticks)
            .iter()
            .map(|r| u64::from(r.1))
            .sum::<u64>()
    };
    // Slots at 0, 0.6 s, ..., 600 s.
    assert_eq!(total(&paced(100, 60_000, 1000)), 1001);
    // Without catch-up, slots between ticks are forfeited: one per tick.
    assert_eq!(total(&paced(100, 60_000, 0)), 601);
}

#[test]
fn burst_after_idling_is_bounded_by_catch_up() {
    let p = paced(100, 60_000, 3000);
    let mut state = PaceState::default();
    p.commit(&mut state, at(0), 1);
    assert_eq!(p.available(&state, at(60_000), 0), 1 + 3000 / 600);
    assert_eq!(p.next_release(&state, at(100)), Some(at(600)));
    assert_eq!(p.next_release(&state, at(60_000)), Some(at(60_000)));
    assert_eq!(p.next_release(&PaceState::default(), at(5)), Some(at(5)));
    assert_eq!(Pacing::default().next_release(&state, at(5)), None);
}

#[test]
fn concurrency_window_limits_releases() {
    let window = Pacing {
        max_in_progress: Some(3),
        ..Pacing::default()
    };
    let s = PaceState::default();
    assert_eq!(window.available(&s, t0(), 0), 3);
    assert_eq!(window.available(&s, t0(), 2), 1);
    assert_eq!(window.available(&s, t0(), 3), 0);
    assert_eq!(window.available(&s, t0(), 10), 0);
    assert_eq!(Pacing::default().available(&s, t0(), 10), u32::MAX);
    let both = Pacing {
        max_in_progress: Some(3),
        ..paced(100, 60_000, 60_000)
    };
    let mut s = PaceState::default();
    both.commit(&mut s, at(0), 1);
    // 100 slots have come, but only 3 may be in progress.
    assert_eq!(both.available(&s, at(59_400), 0), 3);
    assert_eq!(both.available(&s, at(59_400), 1), 2);
    assert_eq!(both.available(&s, at(300), 0), 0);
}

#[test]
fn ramp_multiplies_the_count_every_step() {
    let ramp = Ramp {
        start_count: 1,
        factor: 2.0,
        step: 2,
    };
    let counts: Vec<u32> = (0..12).map(|r| ramp.count_after(r, 10)).collect();
    assert_eq!(counts, vec![1, 1, 2, 2, 4, 4, 8, 8, 10, 10, 10, 10]);
    assert_eq!(ramp.count_after(u64::MAX, 10), 10);

    let p = Pacing {
        ramp: Some(ramp),
        ..paced(10, 60_000, 0)
    };
    let mut state = PaceState::default();
    let mut times = Vec::new();
    let mut now = 0;
    while times.len() < 10 {
        if p.available(&state, at(now), 0) > 0 {
            p.commit(&mut state, at(now), 1);
            times.push(now);
        }
        now += 500;
    }
    // Intervals 60 s, 60 s, 30 s, 30 s, 15 s, 15 s, 7.5 s, 7.5 s, then 6 s (the rate).
    assert_eq!(
        times,
        vec![0, 60_000, 120_000, 150_000, 180_000, 195_000, 210_000, 217_500, 225_000, 231_000]
    );
    assert_eq!(p.current_count(&state), Some(10));
    assert_eq!(p.current_interval(&state), Some(Duration::seconds(6)));
}

#[test]
fn ramp_crossing_steps_within_one_burst() {
    let p = Pacing {
        ramp: Some(Ramp {
            start_count: 1,
            factor: 2.0,
            step: 1,
        }),
        ..paced(8, 8_000, 100_000)
    };
    let mut state = PaceState::default();
    p.commit(&mut state, at(0), 1);
    // Slots at 0 (8 s), 8 s (4 s), 12 s (2 s), 14 s (1 s), 15 s, 16 s, ...
    assert_eq!(p.available(&state, at(13_999), 0), 2);
    assert_eq!(p.available(&state, at(16_000), 0), 5);
    p.commit(&mut state, at(16_000), 5);
    assert_eq!(state.next_slot, Some(at(17_000)));
    assert_eq!(state.released, 6);
}

#[test]
fn invalid_configurations_are_rejected() {
    assert_eq!(
        Rate::new(0, Duration::seconds(1)),
        Err(PacingError::ZeroCount)
    );
    assert_eq!(
        Rate::new(1, Duration::zero()),
        Err(PacingError::NonPositivePeriod)
    );
    assert_eq!(
        Rate::new(1, Duration::seconds(-1)),
        Err(PacingError::NonPositivePeriod)
    );
    assert_eq!(
        Rate::new(1, Duration::microseconds(1500)),
        Err(PacingError::SubMillisecondPeriod)
    );
    let ok = Ramp {
        start_count: 1,
        factor: 1.5,
        step: 10,
    };
    assert_eq!(ok.validate(), Ok(()));
    for factor in [1.0, 0.5, 5.01, f64::NAN, f64::INFINITY] {
        let bad = Ramp { factor, ..ok };
        assert!(matches!(bad.validate(), Err(PacingError::BadRampFactor(_))));
    }
    assert_eq!(
        Ramp {
            start_count: 0,
            ..ok
        }
        .validate(),
        Err(PacingError::ZeroRampStart)
    );
    assert_eq!(
        Ramp { step: 0, ..ok }.validate(),
        Err(PacingError::ZeroRampStep)
    );
    let ramp_only = Pacing {
        ramp: Some(ok),
        ..Pacing::default()
    };
    assert_eq!(ramp_only.validate(), Err(PacingError::RampWithoutRate));
    let zero_window = Pacing {
        max_in_progress: Some(0),
        ..Pacing::default()
    };
    assert_eq!(zero_window.validate(), Err(PacingError::ZeroWindow));
    let negative = Pacing {
        catch_up: Duration::milliseconds(-1),
        ..Pacing::default()
    };
    assert_eq!(negative.validate(), Err(PacingError::NegativeCatchUp));
    let sub_ms = Pacing {
        catch_up: Duration::microseconds(10),
        ..Pacing::default()
    };
    assert_eq!(sub_ms.validate(), Err(PacingError::SubMillisecondCatchUp));
    assert_eq!(Pacing::default().validate(), Ok(()));
    assert!(PacingError::BadRampFactor(7.0).to_string().contains("7"));
}

#[test]
fn serde_uses_milliseconds_and_validates() {
    let r = rate(100, 60_000);
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        r#"{"count":100,"per_ms":60000}"#
    );
    assert_eq!(
        serde_json::from_str::<Rate>(r#"{"count":100,"per_ms":60000}"#).unwrap(),
        r
    );
    assert!(serde_json::from_str::<Rate>(r#"{"count":0,"per_ms":60000}"#).is_err());
    assert!(serde_json::from_str::<Rate>(r#"{"count":1,"per_ms":0}"#).is_err());

    let p = Pacing {
        max_in_progress: Some(50),
        ramp: Some(Ramp {
            start_count: 5,
            factor: 2.0,
            step: 100,
        }),
        ..paced(100, 60_000, 2500)
    };
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains(r#""catch_up_ms":2500"#), "{json}");
    assert_eq!(serde_json::from_str::<Pacing>(&json).unwrap(), p);
    assert_eq!(
        serde_json::from_str::<Pacing>("{}").unwrap(),
        Pacing::default()
    );
    assert!(serde_json::from_str::<Pacing>(r#"{"catch_up_ms":-1}"#).is_err());
    assert!(serde_json::from_str::<Pacing>(r#"{"max_in_progress":0}"#).is_err());
    assert!(serde_json::from_str::<Pacing>(
        r#"{"ramp":{"start_count":1,"factor":9.0,"step":1},"rate":{"count":1,"per_ms":1}}"#
    )
    .is_err());

    let mut s = PaceState::default();
    p.commit(&mut s, t0(), 3);
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<PaceState>(&json).unwrap(), s);
}

fn ramp_strategy() -> impl Strategy<Value = Option<Ramp>> {
    prop::option::of(
        (1u32..20, 1.01f64..=5.0, 1u32..10).prop_map(|(start_count, factor, step)| Ramp {
            start_count,
            factor,
            step,
        }),
    )
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    let min = DateTime::<Utc>::MIN_UTC.timestamp();
    let max = DateTime::<Utc>::MAX_UTC.timestamp();
    prop_oneof![
        min..=max,
        Just(min),
        Just(max),
        1_700_000_000i64..1_800_000_000
    ]
    .prop_map(|s| DateTime::<Utc>::from_timestamp(s, 0).unwrap_or_default())
}

proptest! {
    #[test]
    fn releases_in_any_period_stay_within_the_bound(
        count in 1u32..200,
        per_ms in 1i64..100_000,
        catch_up_ms in 0i64..5_000,
        ramp in ramp_strategy(),
        gaps in prop::collection::vec((0i64..200_000, 0u32..50), 1..150),
    ) {
        let p = Pacing { ramp, ..paced(count, per_ms, catch_up_ms) };
        let mut now = 0;
        let ticks: Vec<(i64, u32)> = gaps
            .iter()
            .map(|&(gap, want)| {
                now += gap % (2 * per_ms);
                (now, want)
            })
            .collect();
        let releases = simulate(&p, &ticks);
        let r = p.rate.unwrap();
        let catch_up_ns = i128::from(catch_up_ms) * NANOS_PER_MILLI;
        for (i, &(start, _, _)) in releases.iter().enumerate() {
            let in_window: Vec<_> =
                releases[i..].iter().take_while(|x| x.0 < start + per_ms).collect();
            let released: u64 = in_window.iter().map(|x| u64::from(x.1)).sum();
            let total_at_end = in_window.last().map_or(0, |x| x.2);
            let count_end = p.current_count(&PaceState { next_slot: None, released: total_at_end }).unwrap();
            if p.ramp.is_none() {
                prop_assert_eq!(count_end, count);
            }
            let allowance = ceil_div(catch_up_ns, r.interval_nanos(count_end));
            let bound = i128::from(count_end) + allowance;
            prop_assert!(
                i128::from(released) <= bound,
                "{} released in [{}, {}) ms; bound {}", released, start, start + per_ms, bound
            );
        }
    }

    #[test]
    fn long_run_releases_match_the_pace(
        count in 1u32..100,
        per_ms in 10i64..100_000,
        catch_up_ms in 1i64..5_000,
        gaps in prop::collection::vec(1i64..=5_000, 500),
    ) {
        let p = paced(count, per_ms, catch_up_ms);
        let mut now = 0;
        let mut ticks = vec![(0, u32::MAX)];
        for g in gaps {
            // Ticks at least as frequent as the catch-up allowance.
            now += 1 + (g - 1) % catch_up_ms;
            ticks.push((now, u32::MAX));
        }
        let released: u64 = simulate(&p, &ticks).iter().map(|r| u64::from(r.1)).sum();
        let interval = p.rate.unwrap().interval_nanos(count);
        let horizon = i128::from(now) * NANOS_PER_MILLI;
        let ideal = horizon / interval;
        let allowance = 1 + ceil_div(i128::from(catch_up_ms) * NANOS_PER_MILLI, interval);
        prop_assert!((i128::from(released) - ideal).abs() <= allowance,
            "released {} over {} ms, ideal {}", released, now, ideal);
    }

    #[test]
    fn available_never_exceeds_the_window(
        max in 1u32..1000,
        in_progress in any::<u32>(),
        with_rate in any::<bool>(),
        released in any::<u64>(),
        next_ms in prop::option::of(-100_000i64..100_000),
        now_ms in -100_000i64..100_000,
    ) {
        let p = Pacing {
            max_in_progress: Some(max),
            rate: with_rate.then(|| rate(1000, 1000)),
            ..Pacing::default()
        };
        let state = PaceState { next_slot: next_ms.map(at), released };
        prop_assert!(p.available(&state, at(now_ms), in_progress) <= max.saturating_sub(in_progress));
    }

    #[test]
    fn extreme_values_never_panic(
        count in prop_oneof![Just(u32::MAX), 1u32..=u32::MAX],
        per_ms in prop_oneof![Just(1i64), Just(i64::MAX), 1i64..=i64::MAX],
        catch_up_ms in prop_oneof![Just(0i64), Just(i64::MAX), 0i64..=i64::MAX],
        max_in_progress in prop::option::of(any::<u32>()),
        ramp in prop::option::of((any::<u32>(), 1.0f64..=5.0, any::<u32>()).prop_map(
            |(start_count, factor, step)| Ramp { start_count, factor, step })),
        next in prop::option::of(timestamp()),
        released in any::<u64>(),
        now in timestamp(),
        in_progress in any::<u32>(),
        n in any::<u32>(),
    ) {
        let Ok(r) = Rate::new(count, Duration::try_milliseconds(per_ms).unwrap_or(Duration::MAX))
        else {
            return Ok(());
        };
        let _ = r.interval();
        let p = Pacing {
            rate: Some(r),
            max_in_progress,
            ramp,
            catch_up: Duration::try_milliseconds(catch_up_ms).unwrap_or(Duration::MAX),
        };
        let _ = p.validate();
        let mut state = PaceState { next_slot: next, released };
        let a = p.available(&state, now, in_progress);
        prop_assert!(a <= max_in_progress.map_or(u32::MAX, |m| m.saturating_sub(in_progress)));
        let _ = p.next_release(&state, now);
        let _ = p.current_interval(&state);
        p.commit(&mut state, now, a);
        p.commit(&mut state, now, n);
        let _ = p.available(&state, now, in_progress);
        let _ = serde_json::to_string(&p);
    }
}
