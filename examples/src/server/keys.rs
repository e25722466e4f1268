//! The server's API keys: the ones configured with `--api-key`, or a new admin key made
//! and printed once when none is configured.

use ota_core::TenantId;
use ota_transport_http::management::{ApiKeys, Role};
use std::sync::Arc;

/// The keys the management API accepts, and the key made at this start (to print once).
pub struct Keys {
    /// The authenticator of the management API.
    pub auth: Arc<ApiKeys>,
    /// A key made now because none was configured.
    pub created: Option<String>,
}

/// The SHA-256 of a key given as `sha256:<64 hex digits>`.
fn parse_hashed(text: &str) -> Result<[u8; 32], String> {
    let hex = text.trim();
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
    Ok(out)
}

/// The admin keys of `tenant`: `configured` (plain, or `sha256:<hex>`), or a new one.
pub fn setup(tenant: TenantId, configured: &[String]) -> Result<Keys, String> {
    let keys = Arc::new(ApiKeys::new());
    let configured: Vec<&str> = configured
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .collect();
    for (i, key) in configured.iter().enumerate() {
        let name = format!("configured-{}", i + 1);
        let hash = match key.strip_prefix("sha256:") {
            Some(hex) => parse_hashed(hex)?,
            None => ApiKeys::hash(key),
        };
        keys.insert_hashed(hash, tenant, &name, Role::Admin);
    }
    let created = if configured.is_empty() {
        Some(keys.issue(tenant, "admin", Role::Admin))
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
    use ota_transport_http::management::Authenticator;

    async fn accepts(keys: &ApiKeys, key: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {key}").parse().unwrap());
        keys.authenticate(&headers).await.is_ok()
    }

    #[tokio::test]
    async fn configured_keys_plain_or_hashed_are_accepted_and_none_made() {
        let tenant = TenantId::new();
        let digest: String = ApiKeys::hash("second")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let keys = setup(tenant, &["first".into(), format!("sha256:{digest}")]).unwrap();
        assert!(keys.created.is_none());
        assert!(accepts(&keys.auth, "first").await);
        assert!(accepts(&keys.auth, "second").await);
        assert!(!accepts(&keys.auth, "third").await);
        assert!(setup(tenant, &["sha256:abc".into()]).is_err());
    }

    #[tokio::test]
    async fn with_no_key_configured_an_admin_key_is_made() {
        let keys = setup(TenantId::new(), &[" ".into()]).unwrap();
        let key = keys.created.expect("a key is made");
        assert!(accepts(&keys.auth, &key).await);
    }
}
