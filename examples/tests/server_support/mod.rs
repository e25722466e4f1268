//! Runs the real `ota-server` binary for the `server_*` tests: on free ports, reading the
//! JSON lines it prints on standard output.
#![allow(dead_code)] // each test file uses a part of it

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the server may take to print its `listening` line (it builds nothing; this only
/// bounds a hung start on a loaded machine).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `ota-server`.
pub struct Server {
    child: Child,
    /// `host:port` of the HTTP listener.
    pub http: String,
    /// `host:port` of the MQTT endpoint, when it runs.
    pub mqtt: Option<String>,
    /// The admin key the server made and printed, when it made one.
    pub admin_key: Option<String>,
    /// Every JSON line printed so far (up to `listening`), then the rest as they come.
    lines: mpsc::Receiver<Value>,
    /// The `admin_key` and `listening` lines.
    pub start_lines: Vec<Value>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server on free ports with `args`, in an environment without any of the
    /// server's variables, and waits for its `listening` line.
    pub fn start(args: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ota-server"));
        for (name, _) in std::env::vars() {
            if name.starts_with("OTA_") || name == "DATABASE_URL" {
                command.env_remove(name);
            }
        }
        command
            .args([
                "--http-listen",
                "127.0.0.1:0",
                "--mqtt-listen",
                "127.0.0.1:0",
                "--tick-interval",
                "50ms",
                "--metrics-interval",
                "200ms",
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("ota-server starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let err_text = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                err_text
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            child,
            http: String::new(),
            mqtt: None,
            admin_key: None,
            lines,
            start_lines: Vec::new(),
            stderr,
        };
        loop {
            let line = server.next_line(START_TIMEOUT).unwrap_or_else(|| {
                panic!(
                    "the server printed no `listening` line; stderr:\n{}",
                    server.stderr()
                )
            });
            server.start_lines.push(line.clone());
            match line["event"].as_str() {
                Some("admin_key") => server.admin_key = Some(line["key"].as_str().unwrap().into()),
                Some("listening") => {
                    server.http = line["http"].as_str().unwrap().to_string();
                    server.mqtt = line["mqtt"].as_str().map(str::to_string);
                    return server;
                }
                other => panic!("unexpected line before `listening`: {other:?} {line}"),
            }
        }
    }

    /// The next JSON line, if one comes within `timeout`.
    pub fn next_line(&self, timeout: Duration) -> Option<Value> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// What the server logged so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `http://host:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit (bounded), with the JSON lines it printed after
    /// `listening`.
    pub fn wait_exit(&mut self) -> (ExitStatus, Vec<Value>) {
        for _ in 0..1200 {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // The reader thread ends at EOF; collect what it sent.
                let mut rest = Vec::new();
                while let Some(line) = self.next_line(Duration::from_secs(5)) {
                    rest.push(line);
                }
                return (status, rest);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("the server did not exit; stderr:\n{}", self.stderr());
    }

    /// SIGTERM, then the exit status and the lines printed after `listening`.
    pub fn stop(mut self) -> (ExitStatus, Vec<Value>, String) {
        self.sigterm();
        let (status, lines) = self.wait_exit();
        let stderr = self.stderr();
        (status, lines, stderr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A client of the management API with `key`.
pub struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    /// The management API of `server` (default prefix) with `key`.
    pub fn new(server: &Server, key: &str) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: server.url("/api/ota/v1"),
            key: key.to_string(),
        }
    }

    /// A request to `path` under the prefix, with the key.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
    }

    /// POSTs `body` as JSON; the status and the JSON answer.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.request(reqwest::Method::POST, path).json(&body).send();
        answer(r.await.expect("request sent")).await
    }

    /// PUTs `body` as JSON.
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.request(reqwest::Method::PUT, path).json(&body).send();
        answer(r.await.expect("request sent")).await
    }

    /// GETs `path`.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.request(reqwest::Method::GET, path).send();
        answer(r.await.expect("request sent")).await
    }

    /// Uploads `content` as firmware `title` `version`; the package's id.
    pub async fn upload(&self, title: &str, version: &str, content: Vec<u8>) -> String {
        let path = format!("/packages?kind=FIRMWARE&title={title}&version={version}");
        let r = self
            .request(reqwest::Method::POST, &path)
            .body(content)
            .send();
        let (status, body) = answer(r.await.expect("request sent")).await;
        assert_eq!(status, 201, "upload: {body}");
        body["id"].as_str().unwrap().to_string()
    }
}

/// The status and JSON body (`Null` when empty).
pub async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body read");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// The value of the sample `name` (with its labels, as printed) in a metrics text.
pub fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The text of `/metrics`.
pub async fn metrics(server: &Server) -> String {
    let response = reqwest::get(server.url("/metrics")).await.expect("metrics");
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// Makes a profile, a device with access token `token`, a firmware package of `size`
/// bytes assigned to it; the package's title and version.
pub async fn device_with_firmware(api: &Api, token: &str, size: usize) -> (String, String) {
    let (status, profile) = api
        .post("/profiles", serde_json::json!({"name": "sensor"}))
        .await;
    assert_eq!(status, 201, "{profile}");
    let device = serde_json::json!({
        "name": format!("device-{token}"),
        "profile_id": profile["id"],
        "access_token": token,
    });
    let (status, device) = api.post("/devices", device).await;
    assert_eq!(status, 201, "{device}");
    let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let package = api.upload("sensor-fw", "1.1", content).await;
    let id = device["device"]["id"].as_str().unwrap();
    let body = serde_json::json!({ "package_id": package });
    let (status, assigned) = api
        .put(&format!("/devices/{id}/assignments/fw"), body)
        .await;
    assert_eq!(status, 200, "{assigned}");
    ("sensor-fw".into(), "1.1".into())
}

/// Polls the device's shared attributes until `fw_title` appears (the engine's tick releases
/// the update in the background); the attributes.
pub async fn wait_for_attributes(server: &Server, token: &str) -> Value {
    let url = server.url(&format!(
        "/api/v1/{token}/attributes?sharedKeys=fw_title,fw_version,fw_size"
    ));
    for _ in 0..600 {
        let response = reqwest::get(&url).await.expect("attributes");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        if body["shared"]["fw_title"].is_string() {
            return body["shared"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the device never got its attributes; stderr:\n{}",
        server.stderr()
    );
}
