//! Two engines over one database drive 20,000 devices: every attempt is notified exactly
//! once, whichever engine releases it, and releases stay within the global pace held in the
//! database. Once with both engines in this process (sharing a manual clock), once with two
//! OS processes (each on the system clock).

mod common;

use common::*;
use futures::StreamExt;
use ota_core::engine::Ota;
use ota_core::store::{UpdateFilter, UpdateStore};
use ota_core::{DeviceId, ManualClock, SystemClock, TenantId, UpdateState};
use ota_store_postgres::testing::{fresh_database, TestDatabase};
use ota_store_postgres::PgStore;
use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The fleet size: 20,000 (`OTA_TWO_ENGINES_DEVICES` changes it for quick runs).
fn devices() -> usize {
    std::env::var("OTA_TWO_ENGINES_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// Reports `fw 2.0` installed for every device, through `ota`, 16 at a time.
async fn report_installed(ota: &Ota, tenant: TenantId, devices: &[DeviceId]) {
    let report = installed();
    futures::stream::iter(devices.iter().copied())
        .map(|d| {
            let report = report.clone();
            async move { ota.handle_report(tenant, d, &report).await }
        })
        .buffer_unordered(16)
        .for_each(|r| async move {
            r.expect("report accepted");
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_in_one_process_notify_each_attempt_once_within_the_pace() {
    const PER_SECOND: u32 = 2_500;
    let db = fresh_database().await;
    let store_a = PgStore::connect(db.options().max_connections(6))
        .await
        .unwrap();
    let store_b = PgStore::connect(db.options().max_connections(6))
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::at_epoch_2024());
    let (seen_a, notifier_a) = recorder();
    let (seen_b, notifier_b) = recorder();
    let a = Ota::new(
        Arc::new(store_a.clone()),
        notifier_a,
        clock.clone(),
        paced_config("engine-a", PER_SECOND),
    );
    let b = Ota::new(
        Arc::new(store_b),
        notifier_b,
        clock.clone(),
        paced_config("engine-b", PER_SECOND),
    );
    let tenant = TenantId::new();
    let started = Instant::now();
    fleet(&a, tenant, devices()).await;
    eprintln!("fleet ready in {:?}", started.elapsed());

    let mut notified: HashMap<DeviceId, u32> = HashMap::new();
    let (mut by_a, mut by_b) = (0usize, 0usize);
    let mut released_so_far = 0usize;
    for round in 0..100u32 {
        let (ra, rb) = tokio::join!(a.tick(), b.tick());
        ra.unwrap();
        rb.unwrap();
        let from_a = seen_a.take();
        let from_b = seen_b.take();
        by_a += from_a.len();
        by_b += from_b.len();
        let this_round = from_a.len() + from_b.len();
        assert!(
            this_round <= PER_SECOND as usize + 1,
            "round {round}: {this_round} released in one second, pace is {PER_SECOND}/s"
        );
        released_so_far += this_round;
        assert!(released_so_far <= PER_SECOND as usize * round as usize + 1);
        for d in from_a.iter().chain(&from_b) {
            *notified.entry(*d).or_default() += 1;
        }
        // Devices answer through either engine.
        tokio::join!(
            report_installed(&a, tenant, &from_b),
            report_installed(&b, tenant, &from_a)
        );
        if notified.len() == devices() {
            break;
        }
        clock.advance(chrono::Duration::seconds(1));
    }
    assert_eq!(notified.len(), devices(), "every device was notified");
    let twice: Vec<_> = notified.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "notified more than once: {twice:?}");
    assert!(
        by_a > 0 && by_b > 0,
        "both engines released ({by_a}, {by_b})"
    );
    let updated = store_a
        .count_updates(Some(tenant), &UpdateFilter::in_state(UpdateState::Updated))
        .await
        .unwrap();
    assert_eq!(updated, devices() as u64);
    // The history agrees: one release per device, paced.
    let times = release_times(&store_a, tenant).await;
    assert_eq!(times.len(), devices());
    assert!(max_per_second(&times) <= PER_SECOND as usize + 1);
}

const CHILD_ENV: &str = "OTA_TWO_ENGINES_CHILD";
const PROCESS_PER_SECOND: u32 = 4_000;

/// One engine process: ticks every 20 ms on the system clock, answers every notice with an
/// "installed" report, prints `NOTIFIED <device>` for each notice, and stops when every
/// device of the tenant is UPDATED (or after three minutes). Run by the test below, never on
/// its own (it is ignored, and returns at once without its environment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "an engine process started by two_engine_processes_notify_each_attempt_once"]
async fn child_engine_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.split(' ');
    let (url, schema, tenant, name) = (
        parts.next().unwrap().to_string(),
        parts.next().unwrap().to_string(),
        parts.next().unwrap().parse::<TenantId>().unwrap(),
        parts.next().unwrap().to_string(),
    );
    let db = TestDatabase { url, schema };
    let store = PgStore::connect(db.options().max_connections(6))
        .await
        .unwrap();
    let (seen, notifier) = recorder();
    let ota = Ota::new(
        Arc::new(store.clone()),
        notifier,
        Arc::new(SystemClock),
        paced_config(&name, PROCESS_PER_SECOND),
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(180);
    let mut last_log = started;
    let mut total = 0usize;
    while Instant::now() < deadline {
        let tick = ota.tick().await.unwrap();
        let notified = seen.take();
        for d in &notified {
            println!("NOTIFIED {d}");
        }
        report_installed(&ota, tenant, &notified).await;
        let updated = store
            .count_updates(Some(tenant), &UpdateFilter::in_state(UpdateState::Updated))
            .await
            .unwrap();
        total += notified.len();
        if last_log.elapsed() > Duration::from_secs(5) {
            last_log = Instant::now();
            eprintln!(
                "{name}: {:?}: released {total}, fleet updated {updated}, last tick {tick:?}",
                started.elapsed()
            );
        }
        if updated == devices() as u64 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the fleet did not finish within three minutes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engine_processes_notify_each_attempt_once_within_the_pace() {
    let db = fresh_database().await;
    let store = PgStore::connect(db.options()).await.unwrap();
    let (_, notifier) = recorder();
    let setup = Ota::new(
        Arc::new(store.clone()),
        notifier,
        Arc::new(SystemClock),
        paced_config("setup", PROCESS_PER_SECOND),
    );
    let tenant = TenantId::new();
    fleet(&setup, tenant, devices()).await;

    let exe = std::env::current_exe().unwrap();
    let spawn = |name: &str| {
        Command::new(&exe)
            .args([
                "--exact",
                "child_engine_process",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                CHILD_ENV,
                format!("{} {} {tenant} {name}", db.url, db.schema),
            )
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start an engine process")
    };
    let children = [spawn("process-a"), spawn("process-b")];
    // Both outputs are read at once: a child whose pipe is full would stop.
    let readers = children.map(|c| {
        tokio::task::spawn_blocking(move || c.wait_with_output().expect("engine process output"))
    });
    let mut outputs = Vec::new();
    for reader in readers {
        outputs.push(reader.await.unwrap());
    }
    let mut notified: HashMap<String, u32> = HashMap::new();
    let mut per_process = Vec::new();
    for out in &outputs {
        assert!(
            out.status.success(),
            "an engine process failed: {:?}",
            out.status
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut n = 0;
        for line in text.lines() {
            // libtest may print its "test ... " header on the first line.
            if let Some((_, d)) = line.split_once("NOTIFIED ") {
                *notified.entry(d.to_string()).or_default() += 1;
                n += 1;
            }
        }
        per_process.push(n);
    }
    assert_eq!(notified.len(), devices(), "every device was notified");
    assert!(
        notified.values().all(|n| *n == 1),
        "an attempt was notified twice"
    );
    assert!(
        per_process.iter().all(|n| *n > 0),
        "both processes released: {per_process:?}"
    );
    let times = release_times(&store, tenant).await;
    assert_eq!(times.len(), devices());
    // Evenly spaced slots, one second of catch-up: at most two seconds' worth in any second.
    let busiest = max_per_second(&times);
    assert!(
        busiest <= 2 * PROCESS_PER_SECOND as usize + 1,
        "{busiest} releases within one second; pace is {PROCESS_PER_SECOND}/s"
    );
}
