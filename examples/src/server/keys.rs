//! The server's API keys, kept in the store (by SHA-256 only): the keys configured with
//! `--api-key` are added when missing; with none configured and no valid key stored for the
//! tenant, an admin key is made and printed once.

use ota_core::store::{ApiKeyDigest, ApiKeyStore, PageRequest, StoreError};
use ota_core::{SystemClock, TenantId};
use ota_transport_http::management::{Role, StoredApiKeys};
use std::sync::Arc;

/// The keys the management API accepts, and the key made at this start (to print once).
pub struct Keys {
    /// The authenticator of the management API (also what `/api-keys` manages).
    pub auth: Arc<StoredApiKeys>,
    /// A key made now because none was configured or stored.
    pub created: Option<String>,
}

/// The digest of a key given as `sha256:<64 hex digits>`.
fn parse_hashed(hex: &str) -> Result<ApiKeyDigest, String> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(format!(
            "`sha256:{hex}` is not a SHA-256: give 64 hexadecimal digits"
        ));
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| format!("`sha256:{hex}` has a character that is not hexadecimal"))?;
    }
    Ok(ApiKeyDigest(out))
}

/// The digest of a configured key (plain, or `sha256:<hex>`).
pub fn digest_of(configured: &str) -> Result<ApiKeyDigest, String> {
    match configured.strip_prefix("sha256:") {
        Some(hex) => parse_hashed(hex),
        None => Ok(StoredApiKeys::digest(configured)),
    }
}

fn store_error(what: &str, e: StoreError) -> String {
    format!("cannot {what} the API keys in the store: {e}")
}

/// Whether `tenant` has a valid stored key.
async fn has_active_key(store: &dyn ApiKeyStore, tenant: TenantId) -> Result<bool, String> {
    let mut page = PageRequest::first(100);
    loop {
        let keys = store
            .list_api_keys(tenant, page)
            .await
            .map_err(|e| store_error("read", e))?;
        if keys.items.iter().any(|k| k.is_active()) {
            return Ok(true);
        }
        match keys.next {
            Some(next) => page = next,
            None => return Ok(false),
        }
    }
}

/// Sets up the admin keys of `tenant` in `store`: each of `configured` (plain, or
/// `sha256:<hex>`) is stored unless it is already; with none configured and no valid key
/// stored, a new admin key is made.
pub async fn setup(
    store: Arc<dyn ApiKeyStore>,
    tenant: TenantId,
    configured: &[String],
) -> Result<Keys, String> {
    let keys = Arc::new(StoredApiKeys::new(store.clone(), Arc::new(SystemClock)));
    let configured: Vec<&str> = configured
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .collect();
    for key in &configured {
        let digest = digest_of(key)?;
        match store.api_key_by_digest(&digest).await {
            Ok(record) if record.is_active() => continue,
            Ok(record) => {
                return Err(format!(
                    "the configured API key {:?} was revoked; configure another",
                    record.name
                ))
            }
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(store_error("read", e)),
        }
        // Named after its digest, so that each configured key gets its own name.
        let name = format!("configured-{}", &digest.to_hex()[..12]);
        match keys
            .insert_digest(digest, tenant, &name, Role::Admin, None)
            .await
        {
            // Another instance stored it at the same time.
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(store_error("store", e)),
        }
    }
    let created = if configured.is_empty() && !has_active_key(store.as_ref(), tenant).await? {
        // A fresh name: revoked keys keep theirs.
        let unique = ota_core::ids::ApiKeyId::new().to_string();
        let name = format!("admin-{}", &unique[unique.len() - 8..]);
        let (_, key) = keys
            .issue(tenant, &name, Role::Admin, None)
            .await
            .map_err(|e| store_error("store", e))?;
        Some(key)
    } else {
        None
    };
    Ok(Keys {
        auth: keys,
        created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;
    use ota_core::MemoryStore;
    use ota_transport_http::management::Authenticator;

    async fn accepts(keys: &StoredApiKeys, key: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {key}").parse().unwrap());
        keys.authenticate(&headers).await.is_ok()
    }

    #[tokio::test]
    async fn configured_keys_plain_or_hashed_are_stored_once_and_none_made() {
        let store: Arc<dyn ApiKeyStore> = Arc::new(MemoryStore::new());
        let tenant = TenantId::new();
        let digest = StoredApiKeys::digest("second").to_hex();
        let configured = ["first".to_string(), format!("sha256:{digest}")];
        let keys = setup(store.clone(), tenant, &configured).await.unwrap();
        assert!(keys.created.is_none());
        assert!(accepts(&keys.auth, "first").await);
        assert!(accepts(&keys.auth, "second").await);
        assert!(!accepts(&keys.auth, "third").await);
        // A second start with the same keys stores nothing new.
        setup(store.clone(), tenant, &configured).await.unwrap();
        let listed = store.list_api_keys(tenant, PageRequest::first(10)).await;
        assert_eq!(listed.unwrap().items.len(), 2);
        assert!(setup(store, tenant, &["sha256:abc".into()]).await.is_err());
    }

    #[tokio::test]
    async fn an_admin_key_is_made_only_while_none_is_stored() {
        let store: Arc<dyn ApiKeyStore> = Arc::new(MemoryStore::new());
        let tenant = TenantId::new();
        let keys = setup(store.clone(), tenant, &[" ".into()]).await.unwrap();
        let key = keys.created.expect("a key is made");
        assert!(accepts(&keys.auth, &key).await);
        let again = setup(store.clone(), tenant, &[]).await.unwrap();
        assert!(again.created.is_none(), "the stored key is kept");
        assert!(accepts(&again.auth, &key).await);
        // Once every stored key is revoked, a new one is made.
        let id = store
            .api_key_by_digest(&StoredApiKeys::digest(&key))
            .await
            .unwrap()
            .id;
        again.auth.revoke(tenant, id, None).await.unwrap();
        let third = setup(store, tenant, &[]).await.unwrap();
        assert!(third.created.is_some());
    }
}
