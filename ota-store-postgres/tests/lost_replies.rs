//! A batched transition whose reply is lost after the server committed it is reported as
//! applied, not as stale: a TCP proxy between the store and PostgreSQL cuts the connection
//! that carries the batch, either after the server answered (committed, reply lost) or
//! before the request reached the server (nothing written).

use futures::future::join_all;
use ota_core::conformance::Fixture;
use ota_core::store::{Store, Transition};
use ota_core::update::{apply, HistoryEntry, Outcome, Update, UpdateEvent, UpdatePolicy};
use ota_core::{Clock, ManualClock, PackageKind, UpdateState};
use ota_store_postgres::testing::fresh_database;
use ota_store_postgres::PgStore;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Where the proxy cuts the marked request's connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    /// After the server answered it completely (`ReadyForQuery`, so committed), before the
    /// answer is relayed.
    AfterCommit,
    /// Before the request is forwarded.
    BeforeSending,
}

/// A TCP proxy to PostgreSQL that cuts the first connection whose request carries `marker`
/// (once armed).
struct Proxy {
    port: u16,
    armed: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
}

impl Proxy {
    async fn start(upstream: String, marker: &'static [u8], cut: Cut) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicUsize::new(0));
        let (a, c) = (armed.clone(), cuts.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, marker, cut, a.clone(), c.clone()));
            }
        });
        Self { port, armed, cuts }
    }
}

/// Counts `ReadyForQuery` messages in the server's byte stream (every server message is a
/// type byte and a 4-byte length that counts itself).
#[derive(Default)]
struct Framer {
    header: Vec<u8>,
    skip: usize,
}

impl Framer {
    fn ready_for_query(&mut self, mut data: &[u8]) -> usize {
        let mut seen = 0;
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.header.len()).min(data.len());
            self.header.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.header.len() == 5 {
                if self.header[0] == b'Z' {
                    seen += 1;
                }
                let len = u32::from_be_bytes(self.header[1..5].try_into().unwrap()) as usize;
                self.skip = len.saturating_sub(4);
                self.header.clear();
            }
        }
        seen
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    marker: &'static [u8],
    cut: Cut,
    armed: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let marked = Arc::new(AtomicBool::new(false));
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(false);
    let up = {
        let marked = marked.clone();
        let done_tx = done_tx.clone();
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut tail: Vec<u8> = Vec::new();
            loop {
                let n = match client_read.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let mut window = std::mem::take(&mut tail);
                window.extend_from_slice(&buf[..n]);
                let hit = window.windows(marker.len()).any(|w| w == marker);
                tail = window[window.len().saturating_sub(marker.len())..].to_vec();
                if hit && armed.swap(false, Ordering::SeqCst) {
                    cuts.fetch_add(1, Ordering::SeqCst);
                    if cut == Cut::BeforeSending {
                        let _ = done_tx.send(true);
                        return;
                    }
                    marked.store(true, Ordering::SeqCst);
                }
                if server_write.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut framer = Framer::default();
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let ready = framer.ready_for_query(&buf[..n]);
            if marked.load(Ordering::SeqCst) {
                // The answer to the marked request: swallowed; once the server is ready
                // again (the implicit transaction committed), the connection is cut.
                if ready > 0 {
                    let _ = done_tx.send(true);
                    return;
                }
                continue;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = done_rx.wait_for(|d| *d) => {}
    }
    // Dropping the halves closes both connections.
}

fn applied(u: &Update, event: UpdateEvent, clock: &ManualClock) -> (Update, HistoryEntry) {
    match apply(u, &event, clock.now(), &UpdatePolicy::default()) {
        Outcome::Applied { update, history } => (update, history),
        other => panic!("{event:?} does not apply to {:?}: {other:?}", u.state),
    }
}

const MARKER: &str = "lost-reply-marker";

/// Twelve queued updates, a store reaching PostgreSQL through a proxy that cuts the marked
/// batch as `cut` says, and the dispatch transitions (their history carries the marker).
async fn setup(
    cut: Cut,
) -> (
    ota_store_postgres::testing::TestDatabase,
    Arc<dyn Store>,
    Proxy,
    Fixture,
    Vec<Transition>,
) {
    let db = fresh_database().await;
    // Migrated directly, so that the proxy only sees the test's traffic.
    PgStore::connect(db.options()).await.unwrap().close().await;
    let upstream = "127.0.0.1:5432".to_string();
    let proxy = Proxy::start(upstream, MARKER.as_bytes(), cut).await;
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/test?sslmode=disable",
        proxy.port
    );
    let mut options = db.options();
    options.url = url;
    let store: Arc<dyn Store> = Arc::new(PgStore::connect(options).await.unwrap());
    let clock = ManualClock::at_epoch_2024();
    let f = Fixture::new(store.clone());
    let profile = f.profile("p").await;
    let devices = f.devices(&profile, "d", 12).await;
    let package = f.package(PackageKind::Firmware, "fw", "2.0");
    store.create_package(&package, None).await.unwrap();
    let updates: Vec<Update> = devices
        .iter()
        .map(|d| f.update(d, &package, clock.now()))
        .collect();
    store.create_updates(&updates).await.unwrap();
    clock.advance(chrono::Duration::seconds(1));
    let transitions = updates
        .iter()
        .map(|u| {
            let (update, mut history) = applied(u, UpdateEvent::Dispatched, &clock);
            history.message = Some(MARKER.to_string());
            Transition {
                update,
                expected_revision: u.revision,
                history,
            }
        })
        .collect();
    (db, store, proxy, f, transitions)
}

/// Every transition is stored once, with one history entry.
async fn assert_each_written_once(store: &Arc<dyn Store>, f: &Fixture, transitions: &[Transition]) {
    for t in transitions {
        let stored = store.get_update(f.tenant, t.update.id).await.unwrap();
        assert_eq!(stored.state, UpdateState::Initiated);
        assert_eq!(stored.revision, t.update.revision);
        let history = store.update_history(f.tenant, t.update.id).await.unwrap();
        assert_eq!(history.len(), 1, "one history entry for {}", t.update.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_batch_committed_but_unanswered_is_reported_applied() {
    let (db, store, proxy, f, transitions) = setup(Cut::AfterCommit).await;
    proxy.armed.store(true, Ordering::SeqCst);
    let answers = store.transition_many(&transitions).await;
    assert_eq!(proxy.cuts.load(Ordering::SeqCst), 1, "the batch was cut");
    for (t, answer) in transitions.iter().zip(&answers) {
        assert!(answer.is_ok(), "{}: {answer:?}", t.update.id);
    }
    assert_each_written_once(&store, &f, &transitions).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_of_a_batch_committed_but_unanswered_are_told_applied() {
    let (db, store, proxy, f, transitions) = setup(Cut::AfterCommit).await;
    proxy.armed.store(true, Ordering::SeqCst);
    let answers = join_all(transitions.iter().map(|t| {
        let store = store.clone();
        async move {
            store
                .transition(&t.update, t.expected_revision, &t.history)
                .await
        }
    }))
    .await;
    assert_eq!(proxy.cuts.load(Ordering::SeqCst), 1, "a batch was cut");
    for (t, answer) in transitions.iter().zip(&answers) {
        assert!(answer.is_ok(), "{}: {answer:?}", t.update.id);
    }
    assert_each_written_once(&store, &f, &transitions).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_lost_before_the_server_saw_it_is_written_once() {
    let (db, store, proxy, f, transitions) = setup(Cut::BeforeSending).await;
    proxy.armed.store(true, Ordering::SeqCst);
    let answers = store.transition_many(&transitions).await;
    assert_eq!(proxy.cuts.load(Ordering::SeqCst), 1, "the batch was cut");
    for (t, answer) in transitions.iter().zip(&answers) {
        assert!(answer.is_ok(), "{}: {answer:?}", t.update.id);
    }
    assert_each_written_once(&store, &f, &transitions).await;
    db.drop_schema().await;
}
