//! Replays the committed fuzz corpora of the targets that feed ota-core's parsers
//! (`fuzz/corpus/{wire_payloads,device_list_csv,schedule_specs}`) through the same calls as
//! the targets in `fuzz/fuzz_targets` (keep both in step), on the stable toolchain: every
//! input once found by a fuzzer still gives a value or a typed error, never a panic.

use ota_core::chrono::{Duration, TimeZone, Utc};
use ota_core::schedule::{Recurrence, ScheduledEvent};
use ota_core::window::MaintenanceWindow;
use std::path::PathBuf;

/// The inputs of `target`'s corpus (none when the repository's `fuzz/` is not there, as in a
/// packaged crate).
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut inputs: Vec<_> = entries
        .map(|e| e.expect("corpus entry").path())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("corpus file");
            (p, bytes)
        })
        .collect();
    inputs.sort();
    inputs
}

fn replay(target: &str, run: fn(&[u8])) {
    let inputs = corpus(target);
    if std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz")).exists() {
        assert!(!inputs.is_empty(), "the corpus of {target} is empty");
    }
    for (path, bytes) in &inputs {
        let outcome = std::panic::catch_unwind(|| run(bytes));
        assert!(outcome.is_ok(), "{} panicked", path.display());
    }
}

fn wire_payloads(data: &[u8]) {
    if let Ok(reports) = ota_core::wire::parse_reports(data) {
        for r in &reports {
            let _ = format!("{r:?}");
        }
    }
    let _ = ota_core::wire::parse_telemetry(data);
}

fn device_list_csv(data: &[u8]) {
    if let Ok(list) = ota_core::campaign::device_list::parse(data) {
        let _ = format!("{list:?}");
    }
}

fn evaluate_window(w: &MaintenanceWindow) {
    let at = Utc.with_ymd_and_hms(2024, 3, 31, 0, 30, 0).unwrap();
    let _ = w.contains(at);
    let _ = w.current_or_next(at);
    let _ = w.next_open(at);
}

fn evaluate_recurrence(r: &Recurrence) {
    let at = Utc.with_ymd_and_hms(2024, 10, 27, 1, 30, 0).unwrap();
    if r.validate().is_ok() {
        let _ = r.first();
        let _ = r.next_after(at);
        let _ = r.latest_at_or_before(at);
        let _ = r.occurrences_between(at, at + Duration::days(30), 50);
        let _ = r.due(None, at);
    }
}

fn schedule_specs(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (cron, tz) = text.split_once('\0').unwrap_or((&text, "UTC"));
    if let Ok(w) = MaintenanceWindow::new(cron, Duration::hours(2), tz) {
        evaluate_window(&w);
    }
    if let Ok(w) = serde_json::from_slice::<MaintenanceWindow>(data) {
        evaluate_window(&w);
    }
    if let Ok(r) = serde_json::from_slice::<Recurrence>(data) {
        evaluate_recurrence(&r);
    }
    if let Ok(e) = serde_json::from_slice::<ScheduledEvent>(data) {
        evaluate_recurrence(&e.recurrence);
    }
}

#[test]
fn wire_payloads_corpus_replays() {
    replay("wire_payloads", wire_payloads);
}

#[test]
fn device_list_csv_corpus_replays() {
    replay("device_list_csv", device_list_csv);
}

#[test]
fn schedule_specs_corpus_replays() {
    replay("schedule_specs", schedule_specs);
}
