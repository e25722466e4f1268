//! A Mosquitto of the test's own on a free port, configured from the crate's sample
//! configuration (`mosquitto/mosquitto.conf` and `mosquitto/ota.acl`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BRIDGE_USER: &str = "ota-bridge";
pub const BRIDGE_PASSWORD: &str = "bridge-secret";

pub struct Mosquitto {
    pub port: u16,
    dir: PathBuf,
    config: PathBuf,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("mosquitto")
        .join(name)
}

impl Mosquitto {
    /// Starts a broker whose password file holds the bridge user and `devices` (username =
    /// password = the device key).
    pub async fn start(devices: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("ota-mosquitto-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let passwd = dir.join("ota.passwd");
        let mut users = vec![(BRIDGE_USER, BRIDGE_PASSWORD)];
        users.extend(devices.iter().map(|d| (*d, *d)));
        for (i, (user, password)) in users.iter().enumerate() {
            let mut cmd = Command::new("mosquitto_passwd");
            cmd.arg("-b");
            if i == 0 {
                cmd.arg("-c");
            }
            let status = cmd
                .arg(&passwd)
                .arg(user)
                .arg(password)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("mosquitto_passwd (apt-get install mosquitto)");
            assert!(status.success(), "mosquitto_passwd failed");
        }
        let port = free_port();
        let text = std::fs::read_to_string(sample("mosquitto.conf")).expect("sample config");
        let text = text
            .replace("listener 1883", &format!("listener {port} 127.0.0.1"))
            .replace("/etc/mosquitto/ota.passwd", &passwd.display().to_string())
            .replace(
                "/etc/mosquitto/ota.acl",
                &sample("ota.acl").display().to_string(),
            );
        assert!(text.contains(&format!("listener {port}")), "sample changed");
        // Tests run as root: stay root rather than switch to a `mosquitto` user that may
        // not read the temp files.
        let text = format!("{text}\nuser root\npersistence false\n");
        let config = dir.join("mosquitto.conf");
        std::fs::write(&config, text).expect("config");
        let mut broker = Self {
            port,
            dir,
            config,
            child: None,
        };
        broker.launch().await;
        broker
    }

    async fn launch(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (apt-get install mosquitto)");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("mosquitto did not start on port {}", self.port);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker (everything it held is lost: persistence is off) and starts it again
    /// on the same port.
    pub async fn restart(&mut self) {
        self.kill();
        self.launch().await;
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
