//! [`ApiKeyStore`] in memory.

use super::MemoryStore;
use crate::audit::AuditEntry;
use crate::clock::Timestamp;
use crate::ids::{ApiKeyId, TenantId};
use crate::store::{ApiKeyDigest, ApiKeyRecord, ApiKeyStore, Page, PageRequest, StoreError};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

/// The keys with the indexes their lookups need.
#[derive(Default)]
pub(super) struct ApiKeys {
    by_id: BTreeMap<ApiKeyId, ApiKeyRecord>,
    by_digest: HashMap<ApiKeyDigest, ApiKeyId>,
    by_name: HashMap<(TenantId, String), ApiKeyId>,
}

impl ApiKeys {
    fn get(&self, tenant: TenantId, id: ApiKeyId) -> Result<&ApiKeyRecord, StoreError> {
        self.by_id
            .get(&id)
            .filter(|k| k.tenant_id == tenant)
            .ok_or_else(|| StoreError::not_found("api key", id))
    }
}

#[async_trait]
impl ApiKeyStore for MemoryStore {
    async fn create_api_key(
        &self,
        record: &ApiKeyRecord,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        self.audited(audit, |t| {
            let keys = &mut t.api_keys;
            if keys.by_id.contains_key(&record.id) || keys.by_digest.contains_key(&record.digest) {
                return Err(StoreError::conflict("api key", "the key exists already"));
            }
            let name = (record.tenant_id, record.name.clone());
            if keys.by_name.contains_key(&name) {
                return Err(StoreError::conflict(
                    "api key",
                    format!("the name {:?} is taken by another key", record.name),
                ));
            }
            keys.by_name.insert(name, record.id);
            keys.by_digest.insert(record.digest, record.id);
            keys.by_id.insert(record.id, record.clone());
            Ok(())
        })
    }

    async fn list_api_keys(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<ApiKeyRecord>, StoreError> {
        let t = self.lock();
        let from = page
            .after
            .map_or(Bound::Unbounded, |a| Bound::Excluded(ApiKeyId(a)));
        let items = t
            .api_keys
            .by_id
            .range((from, Bound::Unbounded))
            .map(|(_, k)| k)
            .filter(|k| k.tenant_id == tenant)
            .take(page.effective_limit() + 1)
            .cloned()
            .collect();
        Ok(Page::from_overfetch(items, &page, |k| k.id.0))
    }

    async fn get_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
    ) -> Result<ApiKeyRecord, StoreError> {
        self.lock().api_keys.get(tenant, id).cloned()
    }

    async fn api_key_by_digest(&self, digest: &ApiKeyDigest) -> Result<ApiKeyRecord, StoreError> {
        let t = self.lock();
        t.api_keys
            .by_digest
            .get(digest)
            .and_then(|id| t.api_keys.by_id.get(id))
            .cloned()
            .ok_or_else(|| StoreError::not_found("api key", "with this digest"))
    }

    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        at: Timestamp,
        audit: Option<&AuditEntry>,
    ) -> Result<ApiKeyRecord, StoreError> {
        self.audited(audit, |t| {
            t.api_keys.get(tenant, id)?;
            let key = t.api_keys.by_id.get_mut(&id).expect("checked above");
            key.revoked_at.get_or_insert(at);
            Ok(key.clone())
        })
    }
}
