//! API keys of the management API, kept by their digest only.
//!
//! A key is a random secret shown once to whoever creates it; what is stored is its SHA-256
//! ([`ApiKeyDigest`]), by which a request's key is found again. A revoked key stays listed
//! (with the time it was revoked) so that the audit log's actors keep a meaning, and is never
//! accepted again.

use super::{Page, PageRequest, StoreError};
use crate::audit::AuditEntry;
use crate::clock::Timestamp;
use crate::ids::{ApiKeyId, TenantId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The SHA-256 of an API key: what stores keep instead of the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ApiKeyDigest(pub [u8; 32]);

impl ApiKeyDigest {
    /// The digest as lowercase hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for ApiKeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyDigest({})", self.to_hex())
    }
}

/// A stored API key: everything but the key itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Its id.
    pub id: ApiKeyId,
    /// The only tenant the key acts in.
    pub tenant_id: TenantId,
    /// Its name, unique among the tenant's keys (the actor in the audit log).
    pub name: String,
    /// Its role, as the transport names it (for example `admin`, `operator`, `read_only`).
    /// Stores keep it as given.
    pub role: String,
    /// The SHA-256 of the key.
    pub digest: ApiKeyDigest,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked; `None` while it is valid.
    pub revoked_at: Option<Timestamp>,
}

impl ApiKeyRecord {
    /// Whether the key is still accepted.
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// Stores API keys by digest.
///
/// Writes that are management actions take their audit entry: see
/// [audited writes](crate::store#audited-writes).
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores a new key. [`StoreError::Conflict`] when its id or digest is stored already or
    /// its name is taken by another key of the tenant (revoked keys keep their names).
    async fn create_api_key(
        &self,
        record: &ApiKeyRecord,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError>;
    /// The tenant's keys, revoked ones included, ordered by id.
    async fn list_api_keys(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<ApiKeyRecord>, StoreError>;
    /// The key `id` of `tenant` ([`StoreError::NotFound`] in another tenant).
    async fn get_api_key(&self, tenant: TenantId, id: ApiKeyId)
        -> Result<ApiKeyRecord, StoreError>;
    /// The key with this digest, in whatever tenant, revoked or not
    /// ([`StoreError::NotFound`] when none).
    async fn api_key_by_digest(&self, digest: &ApiKeyDigest) -> Result<ApiKeyRecord, StoreError>;
    /// Revokes the key `id` at `at` and returns it. Revoking a revoked key changes nothing
    /// (it keeps the time of its first revocation).
    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        at: Timestamp,
        audit: Option<&AuditEntry>,
    ) -> Result<ApiKeyRecord, StoreError>;
}
