//! API keys kept in a store (`StoredApiKeys`), through real sockets: admins create, list and
//! revoke keys over the API, the key is shown once and never stored, keys survive a restart
//! (a new server over the same PostgreSQL database), other tenants' keys answer 404.

use ota_core::engine::{Ota, OtaConfig};
use ota_core::notifier::RecordingNotifier;
use ota_core::store::{ApiKeyStore, PageRequest, Store};
use ota_core::{SystemClock, TenantId};
use ota_transport_http::management::{Role, StoredApiKeys};
use ota_transport_http::{management_router, ManagementOptions};
use serde_json::{json, Value};
use std::sync::Arc;

struct Api {
    base: String,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Api {
    /// A server over `store`, its keys in `keys`; `manage`: whether `/api-keys` is served.
    async fn start(store: Arc<dyn Store>, keys: Arc<StoredApiKeys>, manage: bool) -> Self {
        let ota = Ota::new(
            store,
            Arc::new(RecordingNotifier::new()),
            Arc::new(SystemClock),
            OtaConfig::default(),
        );
        let mut options = ManagementOptions::default();
        options.api_keys = manage.then(|| keys.clone());
        let router = management_router(ota, keys, options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            base: format!("http://{addr}/api/ota/v1"),
            client: reqwest::Client::new(),
            task,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        key: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, key, path, None).await
    }

    async fn post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, key, path, Some(body))
            .await
    }

    async fn delete(&self, key: &str, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, key, path, None).await
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The whole life of a key over the API; `store` holds both the fleet and the keys.
async fn key_life<S: Store + ApiKeyStore + 'static>(store: Arc<S>) -> String {
    let keys = Arc::new(StoredApiKeys::new(store.clone(), Arc::new(SystemClock)));
    let tenant = TenantId::new();
    let (_, admin) = keys
        .issue(tenant, "bootstrap", Role::Admin, None)
        .await
        .unwrap();
    let (_, operator) = keys
        .issue(tenant, "ops", Role::Operator, None)
        .await
        .unwrap();
    let (_, other_admin) = keys
        .issue(TenantId::new(), "other", Role::Admin, None)
        .await
        .unwrap();
    let api = Api::start(store.clone(), keys.clone(), true).await;

    // Only admins manage keys.
    let (status, body) = api
        .post(
            &operator,
            "/api-keys",
            json!({"name": "x", "role": "admin"}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));

    let (status, made) = api
        .post(
            &admin,
            "/api-keys",
            json!({"name": "dashboard", "role": "read_only"}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let secret = made["secret"].as_str().unwrap().to_string();
    let id = made["id"].as_str().unwrap().to_string();
    assert_eq!(made["role"], "read_only");
    assert!(made["revoked_at"].is_null());

    // The key is never stored nor listed; only its digest is.
    let stored = store
        .list_api_keys(tenant, PageRequest::first(100))
        .await
        .unwrap();
    assert!(!format!("{stored:?}").contains(&secret));
    assert!(stored
        .items
        .iter()
        .any(|k| k.digest == StoredApiKeys::digest(&secret)));
    let (status, listed) = api.get(&admin, "/api-keys").await;
    assert_eq!(status, 200);
    assert!(!listed.to_string().contains(&secret));
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bootstrap", "ops", "dashboard"]);

    // The new key works with its role.
    assert_eq!(api.get(&secret, "/profiles").await.0, 200);
    let (status, _) = api.post(&secret, "/profiles", json!({"name": "p"})).await;
    assert_eq!(status, 403);

    // Names are unique in the tenant; bad bodies are 4xx.
    let (status, body) = api
        .post(
            &admin,
            "/api-keys",
            json!({"name": "dashboard", "role": "admin"}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (409, Some("conflict")));
    let (status, _) = api
        .post(&admin, "/api-keys", json!({"name": "r", "role": "root"}))
        .await;
    assert_eq!(status, 422);
    let (status, body) = api
        .post(&admin, "/api-keys", json!({"name": "", "role": "admin"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_field"))
    );

    // Another tenant sees nothing of it.
    assert_eq!(
        api.get(&other_admin, &format!("/api-keys/{id}")).await.0,
        404
    );
    assert_eq!(
        api.delete(&other_admin, &format!("/api-keys/{id}")).await.0,
        404
    );
    assert_eq!(api.get(&secret, "/profiles").await.0, 200);

    // Created and revoked, audited with the admin as the actor.
    let (status, revoked) = api.delete(&admin, &format!("/api-keys/{id}")).await;
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    let (status, body) = api.get(&secret, "/profiles").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let (_, again) = api.delete(&admin, &format!("/api-keys/{id}")).await;
    assert_eq!(again["revoked_at"], revoked["revoked_at"]);
    let (_, audit) = api.get(&admin, "/audit").await;
    let actions: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert!(
        actions.contains(&("api_key.create", "api-key:bootstrap")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("api_key.revoke", "api-key:bootstrap")),
        "{actions:?}"
    );
    admin
}

#[tokio::test]
async fn keys_are_managed_over_the_api_on_the_memory_store() {
    key_life(Arc::new(ota_core::MemoryStore::new())).await;
}

#[tokio::test]
async fn keys_survive_a_restart_on_postgres() {
    let store = Arc::new(ota_store_postgres::testing::fresh_store().await);
    let admin = key_life(store.clone()).await;
    // A new server (a restart, or a second instance) over the same database.
    let keys = Arc::new(StoredApiKeys::new(store.clone(), Arc::new(SystemClock)));
    let api = Api::start(store, keys, true).await;
    let (status, listed) = api.get(&admin, "/api-keys").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn without_managed_keys_the_routes_answer_404() {
    let store = Arc::new(ota_core::MemoryStore::new());
    let keys = Arc::new(StoredApiKeys::new(store.clone(), Arc::new(SystemClock)));
    let (_, admin) = keys
        .issue(TenantId::new(), "a", Role::Admin, None)
        .await
        .unwrap();
    let api = Api::start(store, keys, false).await;
    let (status, body) = api.get(&admin, "/api-keys").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    assert_eq!(api.get(&admin, "/profiles").await.0, 200);
}
