//! A private PostgreSQL cluster for tests that stop and start their database server (so that
//! other tests keep theirs): `initdb` and `pg_ctl` from `pg_config --bindir` or the newest
//! `/usr/lib/postgresql/*/bin`, a data directory in a temporary directory, a free port on
//! 127.0.0.1, trust authentication, no fsync. Run as root, the programs run as the
//! `postgres` user (PostgreSQL refuses root) through `runuser`, on a directory that user owns.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// What to do when PostgreSQL's server programs are missing.
pub const INSTALL_HELP: &str = "PostgreSQL's server programs (initdb, pg_ctl) were not found \
     (pg_config --bindir, /usr/lib/postgresql/*/bin); install them (on Debian: apt-get install \
     -y postgresql) or run scripts/services";

/// A cluster of the test's own, running once [`PrivateCluster::start`] returns; stopped and
/// removed on drop.
#[derive(Debug)]
pub struct PrivateCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// The directory of PostgreSQL's server programs (`initdb`, `pg_ctl`), if installed.
pub fn server_bin_dir() -> Option<PathBuf> {
    let complete = |dir: &PathBuf| dir.join("initdb").exists() && dir.join("pg_ctl").exists();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if complete(&dir) {
            return Some(dir);
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            complete(&bin).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PrivateCluster {
    /// Makes a cluster and starts its server; `None` when PostgreSQL's server programs are
    /// not installed (see [`INSTALL_HELP`]). Panics when a program fails.
    pub fn start() -> Option<Self> {
        static CLUSTERS: AtomicU32 = AtomicU32::new(0);
        let bin = server_bin_dir()?;
        let dir = std::env::temp_dir().join(format!(
            "ota-pg-cluster-{}-{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the cluster's temporary directory");
        let as_postgres = is_root();
        let cluster = Self {
            bin,
            dir,
            port: free_port(),
            as_postgres,
        };
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&cluster.dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot hand {} to user postgres", cluster.dir.display());
        }
        let data = cluster.data();
        let init = [
            "-D",
            &data,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        ];
        cluster.run("initdb", &init);
        cluster.start_server();
        Some(cluster)
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:{port}/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let output = self
            .command(program)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?}: {}\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log").display().to_string();
        let data = self.data();
        let args = ["-D", &data, "-o", &options, "-l", &log, "-w", "start"];
        self.run("pg_ctl", &args);
    }

    /// Stops the server (fast shutdown: connections are ended) and waits until it is down.
    pub fn stop_server(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
