//! The simulator's own tally: each device's status as it goes, progress bars per phase while
//! it runs, and the summary at the end (a table for people, JSON for machines).

use super::failures::Injected;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a device is, as the device itself knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[repr(u8)]
pub enum Status {
    /// Not connected yet.
    Connecting = 0,
    /// Connected, no update seen yet.
    Idle,
    /// Fetching content.
    Downloading,
    /// Content received, being verified.
    Verifying,
    /// Installing and rebooting.
    Updating,
    /// Running the target version (UPDATED reported).
    Updated,
    /// Reported FAILED (checksum or download error).
    Failed,
    /// Abandoned an attempt without a word (stall or lost link): the server's timeout fails it.
    Silent,
}

impl Status {
    const ALL: [Status; 8] = [
        Status::Connecting,
        Status::Idle,
        Status::Downloading,
        Status::Verifying,
        Status::Updating,
        Status::Updated,
        Status::Failed,
        Status::Silent,
    ];

    /// The campaign status card a device with this final status counts in, as the server
    /// should count it: `not_started`, `ongoing`, `successful` or `failed` (a silent device
    /// is failed by the server's timeout).
    pub fn card(self) -> &'static str {
        match self {
            Status::Connecting | Status::Idle => "not_started",
            Status::Downloading | Status::Verifying | Status::Updating => "ongoing",
            Status::Updated => "successful",
            Status::Failed | Status::Silent => "failed",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Status::Connecting => "connecting",
            Status::Idle => "idle",
            Status::Downloading => "downloading",
            Status::Verifying => "verifying",
            Status::Updating => "updating",
            Status::Updated => "updated",
            Status::Failed => "failed",
            Status::Silent => "silent (timeout)",
        }
    }
}

/// One device at the end of the run.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceOutcome {
    /// Its name.
    pub name: String,
    /// `mqtt` or `http`.
    pub transport: &'static str,
    /// Its final status.
    pub status: Status,
    /// The status card it should count in.
    pub card: &'static str,
    /// The firmware version it runs at the end.
    pub version: String,
    /// Update attempts it made.
    pub attempts: u32,
    /// When each pushed update notice arrived (Unix milliseconds; MQTT devices only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices_ms: Vec<u64>,
}

/// Counters shared by every device task.
#[derive(Debug)]
pub struct Tally {
    status: Vec<AtomicU8>,
    counts: [AtomicU64; 8],
    attempts: AtomicU64,
    injected: [AtomicU64; 3],
    reconnects: AtomicU64,
    bytes: AtomicU64,
    started: Instant,
    /// Milliseconds since `started` of the last thing any device did.
    last_activity_ms: AtomicU64,
    outcomes: Mutex<Vec<DeviceOutcome>>,
}

impl Tally {
    /// A tally of `devices` devices, all connecting.
    pub fn new(devices: usize) -> Arc<Self> {
        let counts: [AtomicU64; 8] = Default::default();
        counts[Status::Connecting as usize].store(devices as u64, Ordering::Relaxed);
        Arc::new(Self {
            status: (0..devices)
                .map(|_| AtomicU8::new(Status::Connecting as u8))
                .collect(),
            counts,
            attempts: AtomicU64::new(0),
            injected: Default::default(),
            reconnects: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            started: Instant::now(),
            last_activity_ms: AtomicU64::new(0),
            outcomes: Mutex::new(Vec::new()),
        })
    }

    fn touch(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_activity_ms.fetch_max(now, Ordering::Relaxed);
    }

    /// Device `index` is now in `status`.
    pub fn set(&self, index: usize, status: Status) {
        let old = self.status[index].swap(status as u8, Ordering::Relaxed);
        self.counts[usize::from(old)].fetch_sub(1, Ordering::Relaxed);
        self.counts[status as usize].fetch_add(1, Ordering::Relaxed);
        self.touch();
    }

    /// How many devices are in `status` now.
    pub fn count(&self, status: Status) -> u64 {
        self.counts[status as usize].load(Ordering::Relaxed)
    }

    /// An attempt started, with this failure injected.
    pub fn attempt(&self, injected: Injected) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let slot = match injected {
            Injected::None => None,
            Injected::Checksum => Some(0),
            Injected::Stall => Some(1),
            Injected::Drop => Some(2),
        };
        if let Some(i) = slot {
            self.injected[i].fetch_add(1, Ordering::Relaxed);
        }
        self.touch();
    }

    /// A connection was made again (after a drop, a reboot or a lost link).
    pub fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` content bytes arrived.
    pub fn downloaded(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        self.touch();
    }

    /// How long no device did anything.
    pub fn idle_for(&self) -> Duration {
        let last = self.last_activity_ms.load(Ordering::Relaxed);
        self.started
            .elapsed()
            .saturating_sub(Duration::from_millis(last))
    }

    /// Whether every device is settled: updated, failed or silent, none connecting, idle or
    /// in the middle of an attempt.
    pub fn all_settled(&self) -> bool {
        let unsettled = [
            Status::Connecting,
            Status::Idle,
            Status::Downloading,
            Status::Verifying,
            Status::Updating,
        ];
        unsettled.iter().all(|s| self.count(*s) == 0)
    }

    /// Records a device's end.
    pub fn finish(&self, outcome: DeviceOutcome) {
        self.outcomes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(outcome);
    }

    /// The summary of the run so far.
    pub fn summary(&self, per_device: bool) -> Summary {
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut outcomes = self
            .outcomes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        outcomes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut by_status = BTreeMap::new();
        let mut cards: BTreeMap<&'static str, u64> = [
            ("not_started", 0),
            ("ongoing", 0),
            ("successful", 0),
            ("failed", 0),
        ]
        .into_iter()
        .collect();
        for s in Status::ALL {
            let n = self.count(s);
            if n > 0 {
                by_status.insert(s, n);
            }
            *cards.entry(s.card()).or_default() += n;
        }
        let bytes = self.bytes.load(Ordering::Relaxed);
        let updated = self.count(Status::Updated);
        Summary {
            devices: self.status.len() as u64,
            by_status,
            cards,
            attempts: self.attempts.load(Ordering::Relaxed),
            injected: InjectedCounts {
                checksum: self.injected[0].load(Ordering::Relaxed),
                stall: self.injected[1].load(Ordering::Relaxed),
                drop: self.injected[2].load(Ordering::Relaxed),
            },
            reconnects: self.reconnects.load(Ordering::Relaxed),
            bytes_downloaded: bytes,
            elapsed_secs: elapsed,
            bytes_per_sec: if elapsed > 0.0 {
                bytes as f64 / elapsed
            } else {
                0.0
            },
            updates_per_sec: if elapsed > 0.0 {
                updated as f64 / elapsed
            } else {
                0.0
            },
            devices_detail: per_device.then_some(outcomes),
        }
    }
}

/// Failures injected, per kind.
#[derive(Clone, Debug, Serialize)]
pub struct InjectedCounts {
    /// Checksum failures.
    pub checksum: u64,
    /// Stalls.
    pub stall: u64,
    /// Dropped connections.
    pub drop: u64,
}

/// The end of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Devices simulated.
    pub devices: u64,
    /// Devices per final status.
    pub by_status: BTreeMap<Status, u64>,
    /// Devices per campaign status card, as the server should count them.
    pub cards: BTreeMap<&'static str, u64>,
    /// Update attempts made.
    pub attempts: u64,
    /// Failures injected.
    pub injected: InjectedCounts,
    /// Connections made again.
    pub reconnects: u64,
    /// Content bytes downloaded.
    pub bytes_downloaded: u64,
    /// Wall time of the run.
    pub elapsed_secs: f64,
    /// Content bytes per second.
    pub bytes_per_sec: f64,
    /// Devices updated per second.
    pub updates_per_sec: f64,
    /// Each device (with `--per-device`).
    #[serde(rename = "devices_detail", skip_serializing_if = "Option::is_none")]
    pub devices_detail: Option<Vec<DeviceOutcome>>,
}

impl Summary {
    /// The table printed for people.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "{:<20} {:>8}", "final state", "devices");
        let _ = writeln!(t, "{:-<20} {:->8}", "", "");
        for (status, n) in &self.by_status {
            let _ = writeln!(t, "{:<20} {:>8}", status.label(), n);
        }
        let _ = writeln!(t, "{:-<20} {:->8}", "", "");
        let _ = writeln!(t, "{:<20} {:>8}", "total", self.devices);
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "attempts {}   injected: {} checksum, {} stall, {} drop   reconnects {}",
            self.attempts,
            self.injected.checksum,
            self.injected.stall,
            self.injected.drop,
            self.reconnects
        );
        let _ = writeln!(
            t,
            "time {:.1} s   downloaded {:.1} MiB ({:.2} MiB/s)   {:.1} updates/s",
            self.elapsed_secs,
            self.bytes_downloaded as f64 / 1048576.0,
            self.bytes_per_sec / 1048576.0,
            self.updates_per_sec
        );
        t
    }
}

/// Progress bars per phase, redrawn from the tally until dropped.
pub struct Progress {
    task: Option<tokio::task::JoinHandle<()>>,
    bars: MultiProgress,
}

impl Progress {
    /// Bars on stderr (hidden when `visible` is false or stderr is not a terminal).
    pub fn start(tally: Arc<Tally>, visible: bool) -> Self {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bars = MultiProgress::with_draw_target(target);
        let total = tally.status.len() as u64;
        let style = ProgressStyle::with_template("{prefix:>18} [{bar:40}] {pos:>7}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let shown: Vec<(Status, ProgressBar)> = Status::ALL
            .into_iter()
            .map(|s| {
                let bar = bars.add(ProgressBar::new(total).with_style(style.clone()));
                bar.set_prefix(s.label());
                (s, bar)
            })
            .collect();
        let info = bars.add(ProgressBar::new_spinner());
        let task = tokio::spawn(async move {
            loop {
                for (s, bar) in &shown {
                    bar.set_position(tally.count(*s));
                }
                let elapsed = tally.started.elapsed().as_secs_f64().max(0.001);
                let bytes = tally.bytes.load(Ordering::Relaxed) as f64;
                info.set_message(format!(
                    "{:.0} s, {:.1} MiB downloaded ({:.2} MiB/s), {} attempts",
                    elapsed,
                    bytes / 1048576.0,
                    bytes / 1048576.0 / elapsed,
                    tally.attempts.load(Ordering::Relaxed)
                ));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        Self {
            task: Some(task),
            bars,
        }
    }

    /// Stops redrawing and clears the bars.
    pub fn finish(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        let _ = self.bars.clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_move_between_counts_and_cards() {
        let tally = Tally::new(4);
        assert_eq!(tally.count(Status::Connecting), 4);
        for i in 0..4 {
            tally.set(i, Status::Idle);
        }
        tally.set(0, Status::Downloading);
        tally.set(0, Status::Updated);
        tally.set(1, Status::Failed);
        tally.set(2, Status::Silent);
        tally.attempt(Injected::Checksum);
        tally.attempt(Injected::None);
        let s = tally.summary(false);
        assert_eq!(s.cards["successful"], 1);
        assert_eq!(s.cards["failed"], 2);
        assert_eq!(s.cards["not_started"], 1);
        assert_eq!(s.cards["ongoing"], 0);
        assert_eq!(s.attempts, 2);
        assert_eq!(s.injected.checksum, 1);
        assert!(!tally.all_settled());
        tally.set(3, Status::Updated);
        assert!(tally.all_settled());
        assert!(s.table().contains("silent (timeout)"));
    }
}
