//! Whole-package downloads by many concurrent clients: the device API (memory store and
//! PostgreSQL store, content cache on) against nginx (sendfile on) serving the same bytes from
//! a file, in the same run.
//!
//! ```text
//! cargo bench -p ota-transport-http --bench download -- [--mib 256] [--clients 64] [--runs 3]
//!     [--stores memory,postgres]
//! ```
//!
//! Each server runs as its own process pinned to CPU 0 (`taskset`), the clients (one tokio
//! runtime, reqwest) to CPU 1, when the machine has two CPUs or more. For each run and each
//! server: one warm-up download (checked against the SHA256), then `clients` downloads of the
//! whole package at once; throughput is the bytes received over the wall time. The server's
//! resident memory (VmRSS) is sampled during the run; growth is its peak minus what it held
//! before the run. PostgreSQL: `DATABASE_URL` or the test database (`ota_store_postgres::testing`).

use futures::StreamExt;
use ota_core::engine::{NewPackage, Ota, OtaConfig};
use ota_core::{AssignmentTarget, PackageKind, SystemClock, TenantId};
use ota_store_postgres::testing::{fresh_database, generated_content};
use ota_store_postgres::PgStore;
use ota_transport_http::{device_router, ContentCache, DeviceApiOptions, HttpNotifier};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SEED: u64 = 0x00b0_0b1e_5eed;
const PIECE: usize = 256 * 1024;
const MIB: u64 = 1024 * 1024;

struct Args {
    mib: u64,
    clients: usize,
    runs: usize,
    stores: Vec<String>,
    serve: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        mib: 256,
        clients: 64,
        runs: 3,
        stores: vec!["memory".into(), "postgres".into()],
        serve: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match arg.as_str() {
            "--mib" => a.mib = value().parse().expect("--mib N"),
            "--clients" => a.clients = value().parse().expect("--clients N"),
            "--runs" => a.runs = value().parse().expect("--runs N"),
            "--stores" => a.stores = value().split(',').map(str::to_string).collect(),
            "--serve" => a.serve = Some(value()),
            _ => {} // cargo's --bench and filters
        }
    }
    a
}

fn main() {
    let args = args();
    if let Some(store) = &args.serve {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(serve(store, args.mib * MIB));
        return;
    }
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --benches` and test listers (`--list`): nothing to do here.
        return;
    }
    let pinned = pin_self();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(compare(args, pinned));
}

/// Pins this process to CPU 1 when there are two CPUs or more; returns whether it did.
fn pin_self() -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpus >= 2
        && Command::new("taskset")
            .args(["-pc", "1", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// A command run on CPU 0 (when pinning).
fn on_cpu0(pinned: bool, program: &str) -> Command {
    if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", program]);
        c
    } else {
        Command::new(program)
    }
}

/// Server mode: a device API over `store` with one device and a `size`-byte package assigned
/// to it; prints `READY <port> <token> <sha256>` and serves until stdin closes.
async fn serve(store_name: &str, size: u64) {
    let mut db = None;
    let store: Arc<dyn ota_core::store::Store> = match store_name {
        "memory" => Arc::new(ota_core::memory::MemoryStore::new()),
        "postgres" => {
            let d = fresh_database().await;
            let s = PgStore::connect(d.options()).await.expect("PostgreSQL");
            db = Some(d);
            Arc::new(s)
        }
        other => panic!("unknown store {other}"),
    };
    let notifier = HttpNotifier::new();
    let ota = Ota::new(
        store.clone(),
        Arc::new(notifier.clone()),
        Arc::new(SystemClock),
        OtaConfig::default(),
    );
    let tenant = TenantId::new();
    let profile = ota.create_profile("bench", tenant, "bench").await.unwrap();
    let device = ota.new_device(
        tenant,
        "bench-device",
        profile.id,
        BTreeSet::new(),
        "bench-token",
    );
    ota.create_devices("bench", std::slice::from_ref(&device))
        .await
        .unwrap();
    let new = NewPackage::new(tenant, PackageKind::Firmware, "bench", "1");
    let package = ota
        .upload_package("bench", new, generated_content(size, PIECE, SEED))
        .await
        .unwrap();
    ota.assign(
        "bench",
        tenant,
        AssignmentTarget::Device(device.id),
        package.id,
    )
    .await
    .unwrap();
    ota.tick().await.unwrap();
    let cache = ContentCache::new(size + 64 * MIB);
    assert!(
        cache.preload(&store, &package).await,
        "the package is cached"
    );
    let options = DeviceApiOptions::new(notifier).content_cache(cache);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    println!(
        "READY {port} bench-token {}",
        package.sha256.clone().unwrap()
    );
    std::io::stdout().flush().unwrap();
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    });
    axum::serve(listener, device_router(ota, options))
        .with_graceful_shutdown(async move {
            let _ = stdin_closed.await;
        })
        .await
        .unwrap();
    if let Some(db) = db {
        db.drop_schema().await;
    }
}

struct Target {
    name: String,
    url: String,
    pid: u32,
    child: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ota-download-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("www")).unwrap();
    dir
}

async fn write_content(path: &Path, size: u64) {
    let mut file = std::fs::File::create(path).unwrap();
    let mut content = generated_content(size, PIECE, SEED);
    while let Some(piece) = content.next().await {
        file.write_all(&piece.unwrap()).unwrap();
    }
}

fn start_nginx(dir: &Path, pinned: bool) -> Target {
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\ndaemon off;\nmaster_process off;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\nevents {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  default_type application/octet-stream;\n\
           client_body_temp_path {d}/t1; proxy_temp_path {d}/t2; fastcgi_temp_path {d}/t3;\n\
           uwsgi_temp_path {d}/t4; scgi_temp_path {d}/t5;\n\
           server {{ listen 127.0.0.1:{port}; root {d}/www; }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = on_cpu0(pinned, "nginx")
        .args(["-e", &format!("{d}/error.log"), "-p", &d.to_string(), "-c"])
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .spawn()
        .expect("nginx (apt-get install nginx-light)");
    Target {
        name: "nginx".into(),
        url: format!("http://127.0.0.1:{port}/package.bin"),
        pid: child.id(),
        child,
    }
}

fn start_server(store: &str, mib: u64, pinned: bool) -> (Target, String) {
    let exe = std::env::current_exe().unwrap();
    let mut child = on_cpu0(pinned, exe.to_str().unwrap())
        .args(["--serve", store, "--mib", &mib.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let parts: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(parts.first(), Some(&"READY"), "server said {line:?}");
    let target = Target {
        name: store.to_string(),
        url: format!(
            "http://127.0.0.1:{}/api/v1/{}/firmware?title=bench&version=1",
            parts[1], parts[2]
        ),
        pid: child.id(),
        child,
    };
    (target, parts[3].to_string())
}

/// Resident memory of process `pid` in bytes, summed with its children's for nginx-like
/// process trees is not needed: one process each.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

async fn download(client: &reqwest::Client, url: &str, hasher: Option<&mut sha2::Sha256>) -> u64 {
    use sha2::Digest;
    let mut r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    let mut n = 0u64;
    let mut hasher = hasher;
    while let Some(chunk) = r.chunk().await.unwrap() {
        n += chunk.len() as u64;
        if let Some(h) = hasher.as_deref_mut() {
            h.update(&chunk);
        }
    }
    n
}

/// One measured run: MiB/s and the server's resident memory growth in bytes.
async fn measure(
    client: &reqwest::Client,
    target: &Target,
    clients: usize,
    size: u64,
) -> (f64, u64) {
    let baseline = rss(target.pid);
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done, pid) = (peak.clone(), done.clone(), target.pid);
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let started = Instant::now();
    let downloads = (0..clients).map(|_| {
        let client = client.clone();
        let url = target.url.clone();
        tokio::spawn(async move { download(&client, &url, None).await })
    });
    let received: u64 = futures::future::join_all(downloads)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .sum();
    let secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    assert_eq!(received, size * clients as u64);
    let growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    (received as f64 / MIB as f64 / secs, growth)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

async fn compare(args: Args, pinned: bool) {
    use sha2::Digest;
    let size = args.mib * MIB;
    let dir = temp_dir();
    write_content(&dir.join("www/package.bin"), size).await;
    let mut targets = vec![start_nginx(&dir, pinned)];
    let mut sha = String::new();
    for store in &args.stores {
        let (target, sha256) = start_server(store, args.mib, pinned);
        sha = sha256;
        targets.push(target);
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()
        .unwrap();
    // Warm-up: every server answers the same bytes.
    for target in &targets {
        let mut retries = 0;
        while client.get(&target.url).send().await.is_err() && retries < 100 {
            retries += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut hasher = sha2::Sha256::new();
        assert_eq!(
            download(&client, &target.url, Some(&mut hasher)).await,
            size
        );
        let got: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if !sha.is_empty() {
            assert_eq!(got, sha, "{} serves the package", target.name);
        }
    }
    println!(
        "{} clients x {} MiB, {} runs, pinned: {pinned}",
        args.clients, args.mib, args.runs
    );
    let mut results: Vec<(Vec<f64>, Vec<u64>)> = vec![(Vec::new(), Vec::new()); targets.len()];
    for run in 0..args.runs {
        for (i, target) in targets.iter().enumerate() {
            let (mibs, growth) = measure(&client, target, args.clients, size).await;
            println!(
                "run {run} {:>8}: {mibs:>8.0} MiB/s, RSS {:>6.1} MiB (+{:.1} MiB)",
                target.name,
                rss(target.pid) as f64 / MIB as f64,
                growth as f64 / MIB as f64
            );
            results[i].0.push(mibs);
            results[i].1.push(growth);
        }
    }
    let nginx = median(results[0].0.clone());
    println!("median of {} runs:", args.runs);
    for (target, (mibs, growth)) in targets.iter().zip(&results) {
        let m = median(mibs.clone());
        let max_growth = growth.iter().max().copied().unwrap_or(0);
        println!(
            "  {:>8}: {m:>8.0} MiB/s  ratio to nginx {:.2}  max RSS growth {:.1} MiB",
            target.name,
            m / nginx,
            max_growth as f64 / MIB as f64
        );
    }
    for mut target in targets {
        if target.name == "nginx" {
            let _ = target.child.kill();
        } else {
            drop(target.child.stdin.take());
        }
        let _ = target.child.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
