//! [`StoredApiKeys`]: bearer API keys kept in a store ([`ApiKeyStore`]: the memory store, the
//! PostgreSQL store, or the platform's own), so that they survive restarts and are shared by
//! every server instance on one database. Only each key's SHA-256 is stored; the key itself
//! is shown once, when it is made.

use super::auth::{bearer_token, new_key, AuthError, Authenticator, Principal, Role};
use async_trait::async_trait;
use axum::http::HeaderMap;
use ota_core::clock::Clock;
use ota_core::ids::ApiKeyId;
use ota_core::store::{
    ApiKeyDigest, ApiKeyRecord, ApiKeyStore, AuditOf, Page, PageRequest, StoreError,
};
use ota_core::TenantId;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// API keys in an [`ApiKeyStore`]; an [`Authenticator`]. Hand it to
/// [`management_router`](super::management_router) as the authenticator and set
/// [`ManagementOptions::api_keys`](super::ManagementOptions::api_keys) to it too, so that
/// admins manage keys over the API (`/api-keys`).
#[derive(Clone)]
pub struct StoredApiKeys {
    store: Arc<dyn ApiKeyStore>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for StoredApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredApiKeys").finish_non_exhaustive()
    }
}

/// The actor an API key's calls are written to the audit log as.
pub fn actor_of(name: &str) -> String {
    format!("api-key:{name}")
}

impl StoredApiKeys {
    /// Keys in `store`, with creation and revocation times from `clock`.
    pub fn new(store: Arc<dyn ApiKeyStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// The store the keys are in.
    pub fn store(&self) -> &Arc<dyn ApiKeyStore> {
        &self.store
    }

    /// The digest under which `key` is stored (SHA-256 of its UTF-8 bytes).
    pub fn digest(key: &str) -> ApiKeyDigest {
        ApiKeyDigest(Sha256::digest(key.as_bytes()).into())
    }

    /// Makes a new random key for `tenant` named `name` with `role`, stores its digest and
    /// returns the record with the key: the key cannot be read back later.
    /// [`StoreError::Conflict`] when the name is taken in the tenant. `audit` builds the audit
    /// entry written with the key, in one step (see
    /// [audited writes](ota_core::store#audited-writes)).
    pub async fn issue(
        &self,
        tenant: TenantId,
        name: &str,
        role: Role,
        audit: Option<AuditOf<'_, ApiKeyRecord>>,
    ) -> Result<(ApiKeyRecord, String), StoreError> {
        let key = new_key();
        let record = self
            .insert_digest(Self::digest(&key), tenant, name, role, audit)
            .await?;
        Ok((record, key))
    }

    /// Stores a key known only by its digest (for keys kept in the platform's
    /// configuration). [`StoreError::Conflict`] when the digest or the name is stored already.
    /// `audit` as for [`StoredApiKeys::issue`].
    pub async fn insert_digest(
        &self,
        digest: ApiKeyDigest,
        tenant: TenantId,
        name: &str,
        role: Role,
        audit: Option<AuditOf<'_, ApiKeyRecord>>,
    ) -> Result<ApiKeyRecord, StoreError> {
        let record = ApiKeyRecord {
            id: ApiKeyId::new(),
            tenant_id: tenant,
            name: name.to_string(),
            role: role.as_str().to_string(),
            digest,
            created_at: self.clock.now(),
            revoked_at: None,
        };
        let entry = audit.map(|of| of(&record));
        self.store.create_api_key(&record, entry.as_ref()).await?;
        Ok(record)
    }

    /// The tenant's keys (revoked ones included), ordered by id.
    pub async fn list(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<ApiKeyRecord>, StoreError> {
        self.store.list_api_keys(tenant, page).await
    }

    /// The key `id` of `tenant`.
    pub async fn get(&self, tenant: TenantId, id: ApiKeyId) -> Result<ApiKeyRecord, StoreError> {
        self.store.get_api_key(tenant, id).await
    }

    /// Revokes the key `id` of `tenant` now (no effect on a revoked key) and returns it;
    /// `audit` builds the entry written with the revocation, from the key (its name and role
    /// never change).
    pub async fn revoke(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        audit: Option<AuditOf<'_, ApiKeyRecord>>,
    ) -> Result<ApiKeyRecord, StoreError> {
        let entry = match audit {
            Some(of) => Some(of(&self.store.get_api_key(tenant, id).await?)),
            None => None,
        };
        self.store
            .revoke_api_key(tenant, id, self.clock.now(), entry.as_ref())
            .await
    }
}

#[async_trait]
impl Authenticator for StoredApiKeys {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let key = bearer_token(headers)?;
        let invalid = || AuthError::Invalid("unknown or revoked API key".into());
        let record = match self.store.api_key_by_digest(&Self::digest(key)).await {
            Ok(r) => r,
            Err(StoreError::NotFound { .. }) => return Err(invalid()),
            Err(e) => return Err(AuthError::Unavailable(e.to_string())),
        };
        if !record.is_active() {
            return Err(invalid());
        }
        let role = Role::from_name(&record.role).ok_or_else(|| {
            AuthError::Invalid(format!(
                "the API key's stored role {:?} is not one this server knows",
                record.role
            ))
        })?;
        Ok(Principal::new(
            record.tenant_id,
            actor_of(&record.name),
            role,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_core::{ManualClock, MemoryStore};

    fn headers(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {key}").parse().unwrap());
        h
    }

    #[tokio::test]
    async fn stored_keys_authenticate_until_revoked() {
        let store = Arc::new(MemoryStore::new());
        let keys = StoredApiKeys::new(store.clone(), Arc::new(ManualClock::at_epoch_2024()));
        let tenant = TenantId::new();
        let (record, key) = keys
            .issue(tenant, "ci", Role::ReadOnly, None)
            .await
            .unwrap();
        assert_eq!(record.digest, StoredApiKeys::digest(&key));
        let listed = keys.list(tenant, PageRequest::first(10)).await.unwrap();
        assert!(
            !format!("{listed:?}").contains(&key),
            "the key is never stored"
        );
        let p = keys.authenticate(&headers(&key)).await.unwrap();
        assert_eq!(
            (p.tenant, p.role, p.actor.as_str()),
            (tenant, Role::ReadOnly, "api-key:ci")
        );
        // A second handle on the same store (another instance, a restart) knows the key.
        let again = StoredApiKeys::new(store, Arc::new(ManualClock::at_epoch_2024()));
        assert!(again.authenticate(&headers(&key)).await.is_ok());
        keys.revoke(tenant, record.id, None).await.unwrap();
        assert!(matches!(
            again.authenticate(&headers(&key)).await,
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            keys.authenticate(&headers("ota_nope")).await,
            Err(AuthError::Invalid(_))
        ));
        assert!(keys.issue(tenant, "ci", Role::Admin, None).await.is_err());
    }
}
