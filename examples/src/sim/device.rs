//! The firmware side of one simulated device, whatever its transport: wait for a notice,
//! download, verify, report every state, reboot, report the new version. The transports
//! ([`super::mqtt_device`], [`super::http_device`]) implement [`Link`].

use super::failures::{FailurePlan, Injected};
use super::firmware::{verify, Notice, Target};
use super::report::{DeviceOutcome, Status, Tally};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why a transport call failed.
#[derive(Debug)]
pub enum LinkError {
    /// The server answered with an error (a refused chunk, a 4xx): the attempt fails and the
    /// device says so.
    Refused(String),
    /// The connection is gone or the server does not answer: the device cannot say anything.
    Lost(String),
}

/// What a device heard while waiting.
#[derive(Debug)]
pub enum Heard {
    /// A pushed notice (shared attributes changed).
    Notice(Map<String, Value>),
    /// The answer to the device's own attribute request after connecting again: the device
    /// says what it runs first (a report lost with the connection is not lost for good).
    Polled(Map<String, Value>),
    /// The answer to a periodic look at the attributes (a long-poll ended with nothing):
    /// nothing was lost, nothing is said again unless a report failed.
    Looked(Map<String, Value>),
}

/// How one download goes.
#[derive(Clone, Copy, Debug)]
pub struct Fetch {
    /// Bytes per chunk request (0: the whole file at once).
    pub chunk_size: usize,
    /// Stop asking for more after this many bytes (a stall).
    pub stop_after: Option<u64>,
    /// Drop the connection once this many bytes arrived, connect again and resume.
    pub drop_after: Option<u64>,
}

/// The result of a download that did not fail.
#[derive(Debug)]
pub enum Fetched {
    /// Every byte.
    Complete(Vec<u8>),
    /// Stopped on purpose (see [`Fetch::stop_after`]).
    Stopped,
}

/// A device's connection to the server.
#[allow(async_fn_in_trait)]
pub trait Link {
    /// Connects (or checks the credentials, for connectionless transports).
    async fn connect(&mut self) -> Result<(), LinkError>;
    /// Waits for the next notice; connects again by itself when the connection is lost.
    async fn next(&mut self) -> Result<Heard, LinkError>;
    /// Asks for the device's shared attributes.
    async fn poll(&mut self) -> Result<Map<String, Value>, LinkError>;
    /// Sends telemetry.
    async fn report(&mut self, values: Value) -> Result<(), LinkError>;
    /// Downloads the target's content.
    async fn download(&mut self, target: &Target, fetch: Fetch) -> Result<Fetched, LinkError>;
    /// Goes away for `downtime` (a reboot) and comes back.
    async fn reboot(&mut self, downtime: Duration) -> Result<(), LinkError>;
    /// Forgets notices queued during an attempt about `target` (they announced the attempt
    /// that just ended).
    fn forget_notices_about(&mut self, target: &Target);
    /// Says goodbye.
    async fn close(&mut self);
    /// When each pushed update notice arrived, in Unix milliseconds (transports that keep
    /// no such log answer nothing).
    fn notices_heard(&self) -> Vec<u64> {
        Vec::new()
    }
}

/// What every device of a run shares.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    /// `current_fw_title` reported before the first update.
    pub initial_title: String,
    /// `current_fw_version` reported before the first update.
    pub initial_version: String,
    /// Bytes per chunk request.
    pub chunk_size: usize,
    /// Pause between two reported states.
    pub step: Duration,
    /// How long the simulated reboot takes.
    pub reboot: Duration,
    /// Failure injection.
    pub failures: FailurePlan,
}

/// One device of the fleet.
#[derive(Clone, Debug)]
pub struct DeviceIdentity {
    /// Its index in the fleet (the failure draw uses it).
    pub index: usize,
    /// Its name.
    pub name: String,
    /// `mqtt` or `http`.
    pub transport: &'static str,
}

struct Firmware {
    current: (String, String),
    attempts: u32,
    last_failed: Option<(String, String)>,
    status: Status,
    /// Rebooted into `current` but the link did not come back, or the `UPDATED` report was
    /// lost: the next announce of `current` says it (the server completes an update when
    /// the device reports running its target).
    unannounced: bool,
    /// A report was lost since the last announce.
    report_lost: bool,
}

struct Device<L> {
    link: L,
    id: DeviceIdentity,
    config: Arc<DeviceConfig>,
    tally: Arc<Tally>,
    fw: Firmware,
}

fn key(t: &Target) -> (String, String) {
    (t.title.clone(), t.version.clone())
}

/// Runs one device until `stop`; its outcome goes to the tally.
pub async fn run<L: Link>(
    link: L,
    id: DeviceIdentity,
    config: Arc<DeviceConfig>,
    tally: Arc<Tally>,
    stop: CancellationToken,
) {
    let fw = Firmware {
        current: (config.initial_title.clone(), config.initial_version.clone()),
        attempts: 0,
        last_failed: None,
        status: Status::Connecting,
        unannounced: false,
        report_lost: false,
    };
    let mut device = Device {
        link,
        id,
        config,
        tally,
        fw,
    };
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = device.live() => {}
    }
    device.link.close().await;
    let outcome = DeviceOutcome {
        name: device.id.name.clone(),
        transport: device.id.transport,
        status: device.fw.status,
        card: device.fw.status.card(),
        version: device.fw.current.1.clone(),
        attempts: device.fw.attempts,
        notices_ms: device.link.notices_heard(),
    };
    device.tally.finish(outcome);
}

impl<L: Link> Device<L> {
    fn set(&mut self, status: Status) {
        self.fw.status = status;
        self.tally.set(self.id.index, status);
    }

    async fn live(&mut self) {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.link.connect().await {
                Ok(()) => break,
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.set(Status::Idle);
        self.announce().await;
        if let Ok(shared) = self.link.poll().await {
            self.handle(shared, true).await;
        }
        loop {
            match self.link.next().await {
                Ok(Heard::Notice(m)) => self.handle(m, false).await,
                Ok(Heard::Polled(m)) => {
                    // Back after a lost connection: say what runs, as after a boot (a report
                    // that was lost with the connection, UPDATED included, is not lost for
                    // good), then look at the attributes.
                    self.announce().await;
                    self.handle(m, true).await
                }
                Ok(Heard::Looked(m)) => {
                    if self.fw.unannounced || self.fw.report_lost {
                        self.announce().await;
                    }
                    self.handle(m, true).await
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// Reports the firmware the device runs (after a reboot whose link did not come back:
    /// that is its `UPDATED`).
    async fn announce(&mut self) {
        let (title, version) = self.fw.current.clone();
        let said = self
            .link
            .report(json!({"current_fw_title": title, "current_fw_version": version}))
            .await
            .is_ok();
        if said {
            self.fw.report_lost = false;
            if std::mem::take(&mut self.fw.unannounced) {
                self.set(Status::Updated);
            }
        }
    }

    async fn handle(&mut self, message: Map<String, Value>, polled: bool) {
        let Ok(Notice::Update(target)) = Notice::read(&message) else {
            return;
        };
        let k = key(&target);
        if self.fw.current == k {
            // A notice of what the device already runs (a retry that crossed its UPDATED
            // report): say so again, as ThingsBoard devices do, so that the attempt ends.
            if !polled {
                let (title, version) = k;
                let _ = self
                    .link
                    .report(
                        json!({"current_fw_title": title, "current_fw_version": version,
                        "fw_state": "UPDATED"}),
                    )
                    .await;
            }
            return;
        }
        // A look at the attributes after a failed attempt shows the same target until the
        // server retries; only a pushed notice starts the next attempt.
        if polled && self.fw.last_failed.as_ref() == Some(&k) {
            return;
        }
        self.attempt(&target).await;
        self.link.forget_notices_about(&target);
    }

    async fn say(&mut self, values: Value) -> bool {
        match self.link.report(values).await {
            Ok(()) => true,
            Err(LinkError::Refused(_)) => true,
            Err(LinkError::Lost(_)) => {
                self.fw.report_lost = true;
                self.set(Status::Silent);
                false
            }
        }
    }

    async fn state(&mut self, state: &str) -> bool {
        if !self.config.step.is_zero() {
            tokio::time::sleep(self.config.step).await;
        }
        self.say(json!({ "fw_state": state })).await
    }

    async fn fail(&mut self, target: &Target, why: String) {
        self.fw.last_failed = Some(key(target));
        if self
            .say(json!({"fw_state": "FAILED", "fw_error": why}))
            .await
        {
            self.set(Status::Failed);
        }
    }

    async fn attempt(&mut self, target: &Target) {
        self.fw.attempts += 1;
        let injected = self
            .config
            .failures
            .draw(self.id.index as u64, self.fw.attempts);
        self.tally.attempt(injected);
        self.set(Status::Downloading);
        if !self.state("DOWNLOADING").await {
            return;
        }
        let Some(size) = target.size else {
            let why = "the package has no size: external URLs are not fetched by the simulator";
            return self.fail(target, why.into()).await;
        };
        let fetch = Fetch {
            chunk_size: self.config.chunk_size,
            stop_after: (injected == Injected::Stall).then_some(size / 2),
            drop_after: (injected == Injected::Drop).then_some(size / 2),
        };
        let mut content = match self.link.download(target, fetch).await {
            Ok(Fetched::Complete(content)) => content,
            Ok(Fetched::Stopped) | Err(LinkError::Lost(_)) => {
                // Stalled, or the link is gone: the server's timeout will fail the attempt.
                self.fw.last_failed = Some(key(target));
                return self.set(Status::Silent);
            }
            Err(LinkError::Refused(why)) => return self.fail(target, why).await,
        };
        if !self.state("DOWNLOADED").await {
            return;
        }
        self.set(Status::Verifying);
        if injected == Injected::Checksum && !content.is_empty() {
            let middle = content.len() / 2;
            content[middle] ^= 0x5a;
        }
        if let Err(why) = verify(target, &content) {
            return self.fail(target, why).await;
        }
        drop(content);
        if !self.state("VERIFIED").await {
            return;
        }
        self.set(Status::Updating);
        if !self.state("UPDATING").await {
            return;
        }
        let back = self.link.reboot(self.config.reboot).await.is_ok();
        // The device runs the new firmware once it rebooted, whether or not its link came
        // back; without a link it says so when it is back (see `announce`).
        self.fw.current = key(target);
        self.fw.last_failed = None;
        if !back {
            self.fw.unannounced = true;
            return self.set(Status::Silent);
        }
        let (title, version) = self.fw.current.clone();
        if self
            .say(
                json!({"current_fw_title": title, "current_fw_version": version,
                "fw_state": "UPDATED"}),
            )
            .await
        {
            self.set(Status::Updated);
        } else {
            self.fw.unannounced = true;
        }
    }
}
