//! Shared harness of the management API tests: an engine over a store, the router served on
//! 127.0.0.1:0 with graceful shutdown, API keys per role, and a reqwest client.
#![allow(dead_code)]

pub mod flow;

use ota_core::engine::{Ota, OtaConfig};
use ota_core::notifier::RecordingNotifier;
use ota_core::store::Store;
use ota_core::{SystemClock, TenantId};
use ota_transport_http::management::{ApiKeys, Role};
use ota_transport_http::{management_router, ManagementOptions};
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;

pub const PREFIX: &str = "/api/ota/v1";

/// Keys of one tenant, one per role.
#[derive(Clone, Debug)]
pub struct TenantKeys {
    pub tenant: TenantId,
    pub admin: String,
    pub operator: String,
    pub assigner: String,
    pub reader: String,
}

pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    pub ota: Ota,
    pub keys: Arc<ApiKeys>,
    pub a: TenantKeys,
    pub b: TenantKeys,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

fn tenant_keys(keys: &ApiKeys, tag: &str) -> TenantKeys {
    let tenant = TenantId::new();
    TenantKeys {
        tenant,
        admin: keys.issue(tenant, &format!("{tag}-admin"), Role::Admin),
        operator: keys.issue(tenant, &format!("{tag}-operator"), Role::Operator),
        assigner: keys.issue(tenant, &format!("{tag}-assigner"), Role::Assigner),
        reader: keys.issue(tenant, &format!("{tag}-reader"), Role::ReadOnly),
    }
}

/// A response: status, headers and the body as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub bytes: Vec<u8>,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }

    /// Asserts an error answer with `status` and `code`, with a non-empty message.
    pub fn expect_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status.as_u16(), status, "{:?}", self.body);
        assert_eq!(self.code(), code, "{:?}", self.body);
        assert!(!self.message().is_empty(), "{:?}", self.body);
        self
    }

    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{:?}", self.body);
        &self.body
    }
}

pub fn memory_store() -> Arc<dyn Store> {
    Arc::new(ota_core::memory::MemoryStore::new())
}

impl Server {
    pub async fn start(store: Arc<dyn Store>, options: ManagementOptions) -> Self {
        Self::start_with(store, OtaConfig::default(), options).await
    }

    pub async fn memory() -> Self {
        Self::start(memory_store(), ManagementOptions::default()).await
    }

    pub async fn start_with(
        store: Arc<dyn Store>,
        config: OtaConfig,
        options: ManagementOptions,
    ) -> Self {
        let ota = Ota::new(
            store,
            Arc::new(RecordingNotifier::new()),
            Arc::new(SystemClock),
            config,
        );
        let keys = Arc::new(ApiKeys::new());
        let a = tenant_keys(&keys, "a");
        let b = tenant_keys(&keys, "b");
        let router = management_router(ota.clone(), keys.clone(), options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let limits = ota_transport_http::ServerLimits::default();
            ota_transport_http::serve(listener, router, limits, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            base: format!("http://{addr}{PREFIX}"),
            client: reqwest::Client::new(),
            ota,
            keys,
            a,
            b,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap().to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            bytes,
        }
    }

    pub fn req(&self, method: reqwest::Method, key: &str, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(key)
    }

    pub async fn get(&self, key: &str, path: &str) -> Answer {
        self.send(self.req(reqwest::Method::GET, key, path)).await
    }

    pub async fn delete(&self, key: &str, path: &str) -> Answer {
        self.send(self.req(reqwest::Method::DELETE, key, path))
            .await
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> Answer {
        self.send(self.req(reqwest::Method::POST, key, path).json(&body))
            .await
    }

    pub async fn put(&self, key: &str, path: &str, body: Value) -> Answer {
        self.send(self.req(reqwest::Method::PUT, key, path).json(&body))
            .await
    }

    pub async fn patch(&self, key: &str, path: &str, body: Value) -> Answer {
        self.send(self.req(reqwest::Method::PATCH, key, path).json(&body))
            .await
    }

    pub async fn post_bytes(
        &self,
        key: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Answer {
        self.send(
            self.req(reqwest::Method::POST, key, path)
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    pub async fn put_bytes(
        &self,
        key: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Answer {
        self.send(
            self.req(reqwest::Method::PUT, key, path)
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    /// Uploads `content` as a firmware package with SHA256 computed by the server.
    pub async fn upload(&self, key: &str, title: &str, version: &str, content: &[u8]) -> Answer {
        self.post_bytes(
            key,
            &format!("/packages?kind=fw&title={title}&version={version}"),
            "application/octet-stream",
            content.to_vec(),
        )
        .await
    }

    /// Walks every page of a list with `limit`, returning all items.
    pub async fn all_pages(&self, key: &str, path: &str, limit: u32) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        let sep = if path.contains('?') { '&' } else { '?' };
        loop {
            let mut url = format!("{path}{sep}limit={limit}");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page = self.get(key, &url).await;
            let body = page.expect(200);
            let items = body["items"].as_array().unwrap();
            assert!(items.len() <= limit as usize);
            out.extend(items.iter().cloned());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }
}

/// The id field of a JSON object.
pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}
