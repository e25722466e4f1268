//! Access tokens and API keys are kept as digests only: after devices are made, a token is
//! changed and keys are issued, no table of the PostgreSQL store holds any of them in plain
//! text (every row of every table of the store's schema is searched), and the memory store
//! gives none back.

use ota_core::engine::{Ota, OtaConfig};
use ota_core::notifier::RecordingNotifier;
use ota_core::store::{ApiKeyStore, Store};
use ota_core::{SystemClock, TenantId};
use ota_transport_http::management::{Role, StoredApiKeys};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::Arc;

const ACTOR: &str = "tester";

struct Secrets {
    tenant: TenantId,
    plain: Vec<String>,
    digests: Vec<String>,
}

/// Makes two devices (one token changed afterwards) and two API keys in `store`.
async fn make_secrets(store: Arc<dyn Store>, keys_store: Arc<dyn ApiKeyStore>) -> Secrets {
    let ota = Ota::new(
        store,
        Arc::new(RecordingNotifier::new()),
        Arc::new(SystemClock),
        OtaConfig::default(),
    );
    let tenant = TenantId::new();
    let profile = ota.create_profile(ACTOR, tenant, "p").await.unwrap();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let first = format!("device-token-one-{unique}");
    let second = format!("device-token-two-{unique}");
    let d1 = ota.new_device(tenant, "d1", profile.id, BTreeSet::new(), &first);
    let d2 = ota.new_device(tenant, "d2", profile.id, BTreeSet::new(), &second);
    ota.create_devices(ACTOR, &[d1.clone(), d2]).await.unwrap();
    let changed = format!("device-token-changed-{unique}");
    ota.set_device_token(ACTOR, tenant, d1.id, Some(changed.as_str()))
        .await
        .unwrap();
    let keys = StoredApiKeys::new(keys_store, Arc::new(SystemClock));
    let (_, admin_key) = keys
        .issue(tenant, "admin", Role::Admin, None)
        .await
        .unwrap();
    let (_, reader_key) = keys
        .issue(tenant, "reader", Role::ReadOnly, None)
        .await
        .unwrap();
    // Every secret still works, and comes back from the store as an empty token.
    let found = ota.store().device_by_token(&changed).await.unwrap();
    assert_eq!(found.id, d1.id);
    assert!(found.access_token.is_empty());
    assert!(ota.store().device_by_token(&first).await.is_err());
    let hex = |s: &str| {
        Sha256::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    Secrets {
        tenant,
        digests: vec![
            hex(&second),
            hex(&changed),
            hex(&admin_key),
            hex(&reader_key),
        ],
        plain: vec![first, second, changed, admin_key, reader_key],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_only_digests_of_tokens_and_keys() {
    let pg = ota_store_postgres::testing::fresh_store().await;
    let secrets = make_secrets(Arc::new(pg.clone()), Arc::new(pg.clone())).await;
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .fetch_all(pg.pool())
    .await
    .unwrap();
    assert!(tables.len() > 5, "{tables:?}");
    let mut everything = String::new();
    for (table,) in &tables {
        let rows: (Option<String>,) = sqlx::query_as(&format!(
            "SELECT string_agg(t::text, E'\\n') FROM \"{table}\" t"
        ))
        .fetch_one(pg.pool())
        .await
        .unwrap();
        everything.push_str(&rows.0.unwrap_or_default());
        everything.push('\n');
    }
    for secret in &secrets.plain {
        assert!(
            !everything.contains(secret.as_str()),
            "a secret is stored in plain text"
        );
    }
    // What is kept instead: the digests (hex text for tokens, bytea for keys).
    for digest in &secrets.digests {
        assert!(
            everything.contains(digest.as_str()),
            "digest {digest} not found"
        );
    }
    pg.close().await;
}

#[tokio::test]
async fn the_memory_store_gives_no_secret_back() {
    let memory = ota_core::memory::MemoryStore::new();
    let secrets = make_secrets(Arc::new(memory.clone()), Arc::new(memory.clone())).await;
    let keys = memory
        .list_api_keys(secrets.tenant, ota_core::store::PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(keys.items.len(), 2);
    let shown = format!("{keys:?}");
    for secret in &secrets.plain {
        assert!(!shown.contains(secret.as_str()));
    }
}
