//! One device's MQTT connection on its socket, driven from the connection's own task: the
//! protocol state (acknowledgements, pings, packet ids, the device's in-flight window, size
//! limits, keepalive) is `mqtt-protocol-core`'s sans-I/O connection, which also encodes and
//! decodes every packet; this module only moves bytes.
//!
//! Everything the connection sends between two waits goes out in one write (a chunk and the
//! acknowledgement of its request share a segment), no task is spawned per packet, and the
//! keepalive deadline is one timer moved only when it fires early.

use mqtt::connection::{ConnectionOptions, GenericEvent, TimerKind};
use mqtt::packet::{GenericPacketTrait, Packet};
use mqtt::result_code::MqttError;
use mqtt_protocol_core::mqtt;
use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// How many bytes are read from the socket at once.
const READ_BUFFER: usize = 64 * 1024;
/// Above this many unsent bytes the link stops reading (the device does not read its
/// answers): it only writes until the backlog is below it again.
const WRITE_BACKLOG: usize = 256 * 1024;

/// The connection ended or broke.
#[derive(Debug)]
pub(crate) enum LinkError {
    /// The socket failed.
    Io(std::io::Error),
    /// The device closed the connection, or the protocol asked for it to be closed
    /// (malformed packet, keepalive expired, ...).
    Closed,
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Io(e) => write!(f, "socket failed: {e}"),
            LinkError::Closed => f.write_str("closed"),
        }
    }
}

impl From<std::io::Error> for LinkError {
    fn from(e: std::io::Error) -> Self {
        LinkError::Io(e)
    }
}

/// The timers the protocol asks for, by kind.
#[derive(Default)]
struct Timers {
    /// When each kind fires (`None`: not running).
    due: [Option<Instant>; 3],
    /// The one sleep behind them, set to the earliest due time when it was last armed.
    sleep: Option<Pin<Box<Sleep>>>,
    armed: Option<Instant>,
}

fn timer_index(kind: TimerKind) -> usize {
    match kind {
        TimerKind::PingreqSend => 0,
        TimerKind::PingreqRecv => 1,
        TimerKind::PingrespRecv => 2,
    }
}

const TIMER_KINDS: [TimerKind; 3] = [
    TimerKind::PingreqSend,
    TimerKind::PingreqRecv,
    TimerKind::PingrespRecv,
];

impl Timers {
    fn earliest(&self) -> Option<Instant> {
        self.due.iter().flatten().min().copied()
    }

    /// Arms the sleep for the earliest due time, unless it already fires at or before it (a
    /// deadline moved later is noticed when the sleep fires: no timer work per packet).
    fn arm(&mut self) {
        let Some(earliest) = self.earliest() else {
            return;
        };
        if self.armed.is_some_and(|armed| armed <= earliest) {
            return;
        }
        match &mut self.sleep {
            Some(sleep) => sleep.as_mut().reset(earliest),
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(earliest))),
        }
        self.armed = Some(earliest);
    }

    /// Waits for the armed sleep; forever when none is armed.
    async fn fired(&mut self) {
        match (&mut self.sleep, self.armed) {
            (Some(sleep), Some(_)) => sleep.as_mut().await,
            _ => std::future::pending().await,
        }
    }

    /// The kinds due at `now`, taken out; the sleep is re-armed for the rest.
    fn take_due(&mut self, now: Instant) -> Vec<TimerKind> {
        self.armed = None;
        let mut due = Vec::new();
        for (i, kind) in TIMER_KINDS.into_iter().enumerate() {
            if self.due[i].is_some_and(|at| at <= now) {
                self.due[i] = None;
                due.push(kind);
            }
        }
        self.arm();
        due
    }
}

/// The server side of one MQTT connection.
pub(crate) struct Link {
    stream: TcpStream,
    protocol: mqtt::Connection<mqtt::role::Server>,
    read_buffer: Box<[u8]>,
    /// Bytes to write, from `written` on.
    out: Vec<u8>,
    written: usize,
    /// Packets from the device that the connection has not taken yet.
    received: VecDeque<Packet>,
    timers: Timers,
    /// The protocol asked to close, or the device closed its side.
    closing: bool,
    /// A packet id came free since the last [`Link::take_released`].
    released: bool,
}

impl Link {
    /// A link over an accepted socket, with the limits the server announces (Maximum Packet
    /// Size and Receive Maximum go into the MQTT 5 CONNACK).
    pub(crate) fn new(stream: TcpStream, options: ConnectionOptions) -> Self {
        let mut protocol = mqtt::Connection::<mqtt::role::Server>::with_options(
            mqtt::Version::Undetermined,
            options,
        );
        protocol.set_auto_pub_response(true);
        protocol.set_auto_ping_response(true);
        Self {
            stream,
            protocol,
            read_buffer: vec![0; READ_BUFFER].into_boxed_slice(),
            out: Vec::with_capacity(8 * 1024),
            written: 0,
            received: VecDeque::new(),
            timers: Timers::default(),
            closing: false,
            released: false,
        }
    }

    /// The next packet the device sent, if one is waiting.
    pub(crate) fn take_received(&mut self) -> Option<Packet> {
        self.received.pop_front()
    }

    /// Whether a packet id came free (an acknowledgement arrived) since the last call.
    pub(crate) fn take_released(&mut self) -> bool {
        std::mem::take(&mut self.released)
    }

    /// Whether the device's in-flight window has room for one more QoS 1 message.
    pub(crate) fn has_send_room(&self) -> bool {
        self.protocol.get_receive_maximum_vacancy_for_send() != Some(0)
    }

    /// A packet id for a QoS 1 message; `None` when all are in flight.
    pub(crate) fn acquire_packet_id(&mut self) -> Option<u16> {
        self.protocol.acquire_packet_id().ok()
    }

    /// Gives back a packet id that was not used.
    pub(crate) fn release_packet_id(&mut self, id: u16) {
        let events = self.protocol.release_packet_id(id);
        let _ = self.apply(events);
    }

    /// Queues a packet for the device. `Err` when the protocol refuses it (too large for the
    /// device's Maximum Packet Size, not allowed in this state, window full): nothing is
    /// queued then.
    pub(crate) fn send(&mut self, packet: Packet) -> Result<(), MqttError> {
        let events = self.protocol.send(packet);
        self.apply(events)
    }

    /// Waits until something happened on the connection: bytes read (packets parsed into
    /// [`Link::take_received`], acknowledgements answered), bytes written, or a timer fired.
    /// Cancel-safe: every await inside is, and the state is updated only after one of them
    /// completes.
    pub(crate) async fn io(&mut self) -> Result<(), LinkError> {
        if self.closing && self.pending_out() == 0 {
            return Err(LinkError::Closed);
        }
        let reading = !self.closing && self.pending_out() < WRITE_BACKLOG;
        let (mut reader, mut writer) = self.stream.split();
        let (out, written) = (&self.out, self.written);
        tokio::select! {
            n = writer.write(&out[written..]), if written < out.len() => {
                let n = n?;
                if n == 0 {
                    return Err(LinkError::Closed);
                }
                self.written += n;
                if self.written == self.out.len() {
                    self.out.clear();
                    self.written = 0;
                }
                Ok(())
            }
            n = reader.read(&mut self.read_buffer), if reading => {
                let n = n?;
                if n == 0 {
                    let events = self.protocol.notify_closed();
                    let _ = self.apply(events);
                    self.closing = true;
                    self.out.clear();
                    self.written = 0;
                    return Err(LinkError::Closed);
                }
                self.parse(n);
                Ok(())
            }
            () = self.timers.fired() => {
                for kind in self.timers.take_due(Instant::now()) {
                    let events = self.protocol.notify_timer_fired(kind);
                    let _ = self.apply(events);
                }
                Ok(())
            }
        }
    }

    /// Writes what is queued, giving up after `limit` (a device that does not read).
    pub(crate) async fn flush(&mut self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            if self.written < self.out.len() {
                let _ = self.stream.write_all(&self.out[self.written..]).await;
            }
        })
        .await;
        self.out.clear();
        self.written = 0;
    }

    /// Flushes for at most `limit`, then closes the socket.
    pub(crate) async fn close(mut self, limit: Duration) {
        self.flush(limit).await;
        let _ = tokio::time::timeout(limit, self.stream.shutdown()).await;
    }

    fn pending_out(&self) -> usize {
        self.out.len() - self.written
    }

    /// Feeds `n` bytes just read to the protocol, packet by packet.
    fn parse(&mut self, n: usize) {
        let mut at = 0;
        while at < n && !self.closing {
            let data: &[u8] = &self.read_buffer[at..n];
            let mut cursor = mqtt::common::Cursor::new(data);
            let events = self.protocol.recv(&mut cursor);
            let used = usize::try_from(cursor.position()).unwrap_or(data.len());
            let _ = self.apply(events);
            if used == 0 {
                break;
            }
            at += used;
        }
    }

    /// Carries out what the protocol asks for; the first error it reports, if any.
    fn apply(&mut self, events: Vec<GenericEvent<u16>>) -> Result<(), MqttError> {
        let mut first_error = None;
        for event in events {
            match event {
                GenericEvent::NotifyPacketReceived(packet) => self.received.push_back(packet),
                GenericEvent::RequestSendPacket { packet, .. } => {
                    if !self.closing {
                        for slice in packet.to_buffers() {
                            self.out.extend_from_slice(&slice);
                        }
                    }
                }
                GenericEvent::NotifyPacketIdReleased(_) => self.released = true,
                GenericEvent::RequestTimerReset { kind, duration_ms } => {
                    self.timers.due[timer_index(kind)] =
                        Some(Instant::now() + Duration::from_millis(duration_ms));
                    self.timers.arm();
                }
                GenericEvent::RequestTimerCancel(kind) => {
                    self.timers.due[timer_index(kind)] = None;
                }
                GenericEvent::RequestClose => self.closing = true,
                GenericEvent::NotifyError(e) => {
                    tracing::debug!(error = ?e, "MQTT protocol error");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
