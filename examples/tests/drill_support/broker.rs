//! A Mosquitto of the drill's own on a free port, configured from the sample configuration
//! of ota-transport-mqtt (`mosquitto/mosquitto.conf`, per-device ACLs in `mosquitto/ota.acl`):
//! the bridge's user and each device (user name and password: its access token) in a
//! password file. Restarted on the same port; persistence off, so a restart forgets every
//! session and queued message.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The bridge's user name on the broker.
pub const BRIDGE_USER: &str = "ota-bridge";
/// The bridge's password.
pub const BRIDGE_PASSWORD: &str = "drill-bridge-secret";

/// A running broker; killed and its files removed on drop.
pub struct Broker {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ota-transport-mqtt/mosquitto")
        .join(name)
}

impl Broker {
    /// Starts a broker that lets in the bridge and devices with `tokens`.
    pub async fn start(tokens: &[String]) -> Self {
        let dir = std::env::temp_dir().join(format!("ota-drill-mosquitto-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let passwd = dir.join("ota.passwd");
        let mut users = format!("{BRIDGE_USER}:{BRIDGE_PASSWORD}\n");
        for t in tokens {
            users.push_str(&format!("{t}:{t}\n"));
        }
        std::fs::write(&passwd, users).expect("password file");
        // Hashes every plain password of the file in place.
        let status = Command::new("mosquitto_passwd")
            .arg("-U")
            .arg(&passwd)
            .status()
            .expect("mosquitto_passwd (apt-get install mosquitto)");
        assert!(status.success(), "mosquitto_passwd -U");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let text = std::fs::read_to_string(sample("mosquitto.conf")).expect("sample config");
        let text = text
            .replace("listener 1883", &format!("listener {port} 127.0.0.1"))
            .replace("/etc/mosquitto/ota.passwd", &passwd.display().to_string())
            .replace(
                "/etc/mosquitto/ota.acl",
                &sample("ota.acl").display().to_string(),
            );
        assert!(text.contains(&format!("listener {port}")), "sample changed");
        // Tests may run as root: stay that user rather than switch to one that may not read
        // the temporary files.
        let text = format!("{text}\nuser root\npersistence false\n");
        std::fs::write(dir.join("mosquitto.conf"), text).expect("config");
        let mut broker = Self {
            port,
            dir,
            child: None,
        };
        broker.launch().await;
        broker
    }

    async fn launch(&mut self) {
        for _ in 0..20 {
            let mut child = Command::new("mosquitto")
                .arg("-c")
                .arg(self.dir.join("mosquitto.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("mosquitto (apt-get install mosquitto)");
            for _ in 0..200 {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port is not free yet: try again
                }
                if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                    .await
                    .is_ok()
                {
                    self.child = Some(child);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("mosquitto did not start on port {}", self.port);
    }

    /// Kills the broker (SIGKILL) and starts it again on the same port.
    pub async fn restart(&mut self, down: Duration) {
        self.kill();
        tokio::time::sleep(down).await;
        self.launch().await;
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
