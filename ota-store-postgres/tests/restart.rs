//! Connection loss: a PostgreSQL server of the test's own (a private cluster on a free port,
//! so that other tests keep their server) is stopped and started again under a connected
//! store. While it is down, calls fail with transient errors; once it is back, calls succeed
//! again with no manual step, and what was written before is still there.

use ota_core::store::{DeviceStore, PageRequest, StoreError};
use ota_core::Clock;
use ota_core::{DeviceProfile, ManualClock, ProfileId, TenantId};
use ota_store_postgres::{PgStore, PgStoreOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The directory of PostgreSQL's server programs (`initdb`, `pg_ctl`).
fn server_bin_dir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("pg_ctl").exists() {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server programs (initdb, pg_ctl) were not found; install them \
             (on Debian: apt-get install -y postgresql) or run scripts/services"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A private PostgreSQL cluster, removed when dropped.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            // PostgreSQL refuses to run as root.
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = cmd
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn create() -> Self {
        let bin = server_bin_dir();
        let dir = std::env::temp_dir().join(format!("ota-pg-restart-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "cannot hand {} to user postgres", dir.display());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let path = self.bin.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&path)
                .args(args)
                .output()
        } else {
            Command::new(&path).args(args).output()
        };
        remove(&self.dir);
    }
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

fn profile(tenant: TenantId, name: &str) -> DeviceProfile {
    DeviceProfile {
        id: ProfileId::new(),
        tenant_id: tenant,
        name: name.to_string(),
        created_at: ManualClock::at_epoch_2024().now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_transiently_while_the_server_restarts_then_succeed() {
    let cluster = Cluster::create();
    cluster.start();
    let mut options = PgStoreOptions::new(cluster.url()).max_connections(4);
    options.acquire_timeout = Duration::from_secs(2);
    let store = PgStore::connect(options)
        .await
        .expect("connect to the private cluster");
    let tenant = TenantId::new();
    let before = profile(tenant, "before");
    store.create_profile(&before, None).await.unwrap();
    // Keep pooled connections open across the restart.
    for _ in 0..4 {
        store.get_profile(tenant, before.id).await.unwrap();
    }

    cluster.stop();
    for _ in 0..3 {
        match store.get_profile(tenant, before.id).await {
            Err(e @ StoreError::Unavailable { .. }) => assert!(e.is_transient()),
            other => panic!("expected a transient error while the server is down, got {other:?}"),
        }
    }
    let refused = store.create_profile(&profile(tenant, "during"), None).await;
    assert!(
        matches!(&refused, Err(e) if e.is_transient()),
        "a write while the server is down: {refused:?}"
    );

    cluster.start();
    let mut attempts = 0;
    let got = loop {
        attempts += 1;
        match store.get_profile(tenant, before.id).await {
            Ok(p) => break p,
            Err(e) if e.is_transient() && attempts < 50 => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the store did not recover after {attempts} attempts: {e}"),
        }
    };
    assert_eq!(
        got, before,
        "what was written before the restart is still there"
    );
    let after = profile(tenant, "after");
    store.create_profile(&after, None).await.unwrap();
    let listed = store
        .list_profiles(tenant, PageRequest::first(10))
        .await
        .unwrap();
    let names: Vec<&str> = listed.items.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"before") && names.contains(&"after"));
    store.close().await;
}
