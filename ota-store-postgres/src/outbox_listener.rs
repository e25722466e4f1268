//! Wake-ups when notices are written to the outbox: a `LISTEN` on
//! [`PgStore::outbox_channel`] that reconnects by itself, as a [`Stream`] a transport can
//! wait on without knowing anything of PostgreSQL.
//!
//! Each item says which devices got notices since the last item was taken:
//! `Some(devices)`, or `None` when that is not known (the first item after the listener
//! connected or reconnected: notices written while it was away were missed, so the instance
//! should look at every device it reaches). Items are coalesced while nobody takes them: a
//! slow consumer gets one item with every device named since, never a growing queue.

use crate::PgStore;
use futures_core::Stream;
use ota_core::DeviceId;
use sqlx::postgres::PgListener;
use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Most device ids kept between two items; beyond, the item becomes `None` (every device).
const MAX_PENDING: usize = 10_000;
/// First wait before reconnecting after a failure; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What was announced since the consumer last looked.
#[derive(Default)]
enum Pending {
    /// Nothing.
    #[default]
    Nothing,
    /// Notices for these devices.
    Devices(HashSet<DeviceId>),
    /// Anything may have been written (reconnected, too many ids, unreadable payload).
    Unknown,
}

impl Pending {
    fn add(&mut self, payload: &str) {
        let ids: Option<Vec<DeviceId>> = payload
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| Uuid::parse_str(s.trim()).ok().map(DeviceId))
            .collect();
        let Some(ids) = ids else {
            *self = Self::Unknown;
            return;
        };
        if ids.is_empty() {
            return;
        }
        match self {
            Self::Unknown => {}
            Self::Nothing => *self = Self::Devices(ids.into_iter().collect()),
            Self::Devices(set) => set.extend(ids),
        }
        if matches!(self, Self::Devices(set) if set.len() > MAX_PENDING) {
            *self = Self::Unknown;
        }
    }

    fn take(&mut self) -> Option<Option<Vec<DeviceId>>> {
        match std::mem::take(self) {
            Self::Nothing => None,
            Self::Devices(set) => Some(Some(set.into_iter().collect())),
            Self::Unknown => Some(None),
        }
    }
}

/// The wake-ups of [`PgStore::outbox_wakeups`]: a [`Stream`] of `Option<Vec<DeviceId>>`.
/// `Some(devices)` names the devices that got notices since the consumer last took an item;
/// `None` means that is not known (the listener connected or reconnected). Items are
/// coalesced while nobody takes them, so a slow consumer gets one item naming every device
/// announced since, never a growing queue. Dropping it stops the listener.
pub struct OutboxWakeups {
    pending: Arc<Mutex<Pending>>,
    signal: mpsc::Receiver<()>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for OutboxWakeups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxWakeups").finish_non_exhaustive()
    }
}

impl Drop for OutboxWakeups {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stream for OutboxWakeups {
    type Item = Option<Vec<DeviceId>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.signal.poll_recv(cx) {
                Poll::Ready(Some(())) => {
                    let item = self
                        .pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take();
                    if let Some(item) = item {
                        return Poll::Ready(Some(item));
                    }
                    // Taken with an earlier signal: wait for the next.
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl PgStore {
    /// Listens for notices written to the outbox (by any instance on this schema) and returns
    /// the wake-ups as a stream: `Some(devices)` names the devices that got notices, `None`
    /// means "look at every device" (the listener connected or reconnected, so it may have
    /// missed announcements). The first item is always `None`, once the listener is
    /// listening. The listener keeps one connection of the store's pool; when it is lost, the
    /// listener reconnects (waiting 100 ms, doubling up to 5 s between attempts) and sends
    /// `None` again. It never ends by itself; drop the stream to stop it.
    ///
    /// A transport holding the connections of some devices passes the devices connected to it
    /// to `Ota::deliver_notices_for` (or calls `Ota::deliver_notices` for `None`).
    pub fn outbox_wakeups(&self) -> OutboxWakeups {
        let pending = Arc::new(Mutex::new(Pending::Nothing));
        let (tx, signal) = mpsc::channel(1);
        let task = tokio::spawn(listen(self.clone(), pending.clone(), tx));
        OutboxWakeups {
            pending,
            signal,
            task,
        }
    }
}

/// Records `change` and tells the consumer; false when the consumer is gone.
fn announce(
    pending: &Mutex<Pending>,
    tx: &mpsc::Sender<()>,
    change: impl FnOnce(&mut Pending),
) -> bool {
    change(&mut pending.lock().unwrap_or_else(|e| e.into_inner()));
    match tx.try_send(()) {
        Ok(()) | Err(mpsc::error::TrySendError::Full(())) => true,
        Err(mpsc::error::TrySendError::Closed(())) => false,
    }
}

async fn listen(store: PgStore, pending: Arc<Mutex<Pending>>, tx: mpsc::Sender<()>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        if let Ok(listener) = connect(&store).await {
            backoff = FIRST_BACKOFF;
            if !relay(listener, &pending, &tx).await {
                return;
            }
        }
        if store.pool.is_closed() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = tx.closed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Passes on what `listener` receives until its connection fails (true: start over) or the
/// consumer is gone (false).
async fn relay(mut listener: PgListener, pending: &Mutex<Pending>, tx: &mpsc::Sender<()>) -> bool {
    // Listening (again): what was written before may have been missed.
    if !announce(pending, tx, |p| *p = Pending::Unknown) {
        return false;
    }
    loop {
        let received = tokio::select! {
            received = listener.try_recv() => received,
            () = tx.closed() => return false,
        };
        let alive = match received {
            Ok(Some(notification)) => announce(pending, tx, |p| p.add(notification.payload())),
            // Lost and reconnected by sqlx: announcements may have been missed.
            Ok(None) => announce(pending, tx, |p| *p = Pending::Unknown),
            // Dead connection or closed pool: start over with a new listener.
            Err(_) => return true,
        };
        if !alive {
            return false;
        }
    }
}

async fn connect(store: &PgStore) -> Result<PgListener, sqlx::Error> {
    let channel: String = sqlx::query_scalar("SELECT 'ota_outbox:' || current_schema()")
        .fetch_one(&store.pool)
        .await?;
    let mut listener = PgListener::connect_with(&store.pool).await?;
    listener.listen(&channel).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_are_coalesced_until_taken() {
        let mut p = Pending::Nothing;
        assert_eq!(p.take(), None);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        p.add(&format!("{a},{b}"));
        p.add(&a.to_string());
        let mut got = p.take().flatten().unwrap();
        got.sort();
        let mut want = vec![DeviceId(a), DeviceId(b)];
        want.sort();
        assert_eq!(got, want);
        assert_eq!(p.take(), None);
        // An unreadable payload, or too many ids, means "every device" until taken.
        p.add("not-a-uuid");
        p.add(&a.to_string());
        assert_eq!(p.take(), Some(None));
        for _ in 0..=MAX_PENDING {
            p.add(&Uuid::now_v7().to_string());
        }
        assert_eq!(p.take(), Some(None));
        p.add("");
        assert_eq!(p.take(), None);
    }
}
