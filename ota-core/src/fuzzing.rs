//! Entry points for the fuzz targets of `fuzz/` (feature `fuzzing`; not part of the API): the
//! bodies of the `wire_payloads`, `device_list_csv` and `schedule_specs` targets. The targets
//! call these functions and `tests/fuzz_corpus.rs` replays the committed corpora
//! (`fuzz/corpus/<target>`) through them on the stable toolchain, so both run the same code.
//! [`replay_corpus`] is that replay, for the tests of every crate with fuzz targets.

use crate::schedule::{Recurrence, ScheduledEvent};
use crate::window::MaintenanceWindow;
use chrono::{Duration, TimeZone, Utc};
use std::path::{Path, PathBuf};

/// Runs `run` on every file of the committed corpus of the fuzz target `target`
/// (`fuzz/corpus/<target>` beside the crate whose manifest folder is `manifest_dir`, as
/// `env!("CARGO_MANIFEST_DIR")` gives it), in the order of their names. Does nothing when
/// there is no `fuzz/` folder at all (a packaged crate has none beside it).
///
/// # Panics
///
/// When `fuzz/` exists but the corpus folder does not or is empty, when a corpus file cannot
/// be read, and when `run` panics on a file (the panic is caught and named by its file).
pub fn replay_corpus(manifest_dir: impl AsRef<Path>, target: &str, run: fn(&[u8])) {
    let fuzz = manifest_dir.as_ref().join("../fuzz");
    let Ok(entries) = std::fs::read_dir(fuzz.join("corpus").join(target)) else {
        assert!(!fuzz.exists(), "fuzz/corpus/{target} is missing");
        return;
    };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("corpus entry").path()).collect();
    paths.sort();
    assert!(!paths.is_empty(), "the corpus of {target} is empty");
    for path in paths {
        let bytes = std::fs::read(&path).expect("corpus file");
        let outcome = std::panic::catch_unwind(|| run(&bytes));
        assert!(outcome.is_ok(), "{} panicked", path.display());
    }
}

/// The `wire_payloads` target: telemetry and client-attribute payloads as devices send them
/// ([`crate::wire::parse_reports`], [`crate::wire::parse_telemetry`]).
pub fn wire_payloads(data: &[u8]) {
    if let Ok(reports) = crate::wire::parse_reports(data) {
        for r in &reports {
            let _ = format!("{r:?}");
        }
    }
    let _ = crate::wire::parse_telemetry(data);
}

/// The `device_list_csv` target: CSV device lists of campaign targets
/// ([`crate::campaign::device_list::parse`]).
pub fn device_list_csv(data: &[u8]) {
    if let Ok(list) = crate::campaign::device_list::parse(data) {
        let _ = format!("{list:?}");
    }
}

/// The `schedule_specs` target: a maintenance window built from `cron`, NUL, time zone, and
/// the whole input as the JSON of a window, a recurrence or a scheduled event; whatever parses
/// is evaluated (next window, occurrences over 30 days around a DST change).
pub fn schedule_specs(data: &[u8]) {
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

/// Asks `w` everything it answers, at a time just before a spring DST change in Europe.
fn evaluate_window(w: &MaintenanceWindow) {
    let at = Utc.with_ymd_and_hms(2024, 3, 31, 0, 30, 0).unwrap();
    let _ = w.contains(at);
    let _ = w.current_or_next(at);
    let _ = w.next_open(at);
}

/// Evaluates a valid `r` around an autumn DST change in Europe.
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
