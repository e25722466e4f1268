//! Cron expressions of maintenance windows and schedule specs (`ota_core::window`,
//! `ota_core::schedule`): a window built from `cron`, NUL, time zone, and the whole input as
//! the JSON of a window, a recurrence or a scheduled event; whatever parses is evaluated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ota_core::chrono::{Duration, TimeZone, Utc};
use ota_core::schedule::{Recurrence, ScheduledEvent};
use ota_core::window::MaintenanceWindow;

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

fuzz_target!(|data: &[u8]| {
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
});
