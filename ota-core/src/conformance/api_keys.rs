//! API key behaviours.

use super::fixtures::at;
use crate::ids::{ApiKeyId, TenantId};
use crate::store::{ApiKeyDigest, ApiKeyRecord, ApiKeyStore, PageRequest, StoreError};
use std::sync::Arc;

fn key(tenant: TenantId, name: &str, seed: u8) -> ApiKeyRecord {
    let mut digest = [seed; 32];
    // Distinct per tenant too: digests are unique across tenants.
    digest[..16].copy_from_slice(tenant.0.as_bytes());
    ApiKeyRecord {
        id: ApiKeyId::new(),
        tenant_id: tenant,
        name: name.to_string(),
        role: "operator".to_string(),
        digest: ApiKeyDigest(digest),
        created_at: at(1),
        revoked_at: None,
    }
}

/// A key is found again by its digest and by id (not from another tenant); names and
/// digests are unique; revoking keeps the key listed with the time of its first revocation.
pub async fn api_keys_create_find_and_revoke(store: Arc<dyn ApiKeyStore>) {
    let (tenant, other) = (TenantId::new(), TenantId::new());
    let k = key(tenant, "ci", 1);
    store.create_api_key(&k, None).await.expect("create");
    assert_eq!(
        store.api_key_by_digest(&k.digest).await.expect("by digest"),
        k
    );
    assert_eq!(store.get_api_key(tenant, k.id).await.expect("get"), k);
    assert!(matches!(
        store.get_api_key(other, k.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.api_key_by_digest(&ApiKeyDigest([0xee; 32])).await,
        Err(StoreError::NotFound { .. })
    ));

    let mut same_name = key(tenant, "ci", 2);
    assert!(matches!(
        store.create_api_key(&same_name, None).await,
        Err(StoreError::Conflict { .. })
    ));
    same_name.tenant_id = other;
    store
        .create_api_key(&same_name, None)
        .await
        .expect("a name is per tenant");
    let mut same_digest = key(tenant, "ci-2", 3);
    same_digest.digest = k.digest;
    assert!(matches!(
        store.create_api_key(&same_digest, None).await,
        Err(StoreError::Conflict { .. })
    ));

    assert!(matches!(
        store.revoke_api_key(other, k.id, at(5), None).await,
        Err(StoreError::NotFound { .. })
    ));
    let revoked = store
        .revoke_api_key(tenant, k.id, at(5), None)
        .await
        .expect("revoke");
    assert_eq!(revoked.revoked_at, Some(at(5)));
    assert!(!revoked.is_active());
    let again = store
        .revoke_api_key(tenant, k.id, at(9), None)
        .await
        .expect("again");
    assert_eq!(again.revoked_at, Some(at(5)), "the first revocation stays");
    let found = store
        .api_key_by_digest(&k.digest)
        .await
        .expect("still found");
    assert_eq!(found.revoked_at, Some(at(5)));
    assert!(
        matches!(
            store.create_api_key(&key(tenant, "ci", 4), None).await,
            Err(StoreError::Conflict { .. })
        ),
        "a revoked key keeps its name"
    );
}

/// The tenant's keys page by id, revoked ones included, other tenants' left out.
pub async fn api_key_listing_pages(store: Arc<dyn ApiKeyStore>) {
    let (tenant, other) = (TenantId::new(), TenantId::new());
    let mut made = Vec::new();
    for i in 0..5u8 {
        let k = key(tenant, &format!("k{i}"), i);
        store.create_api_key(&k, None).await.expect("create");
        store
            .create_api_key(&key(other, &format!("k{i}"), i), None)
            .await
            .expect("create other");
        made.push(k);
    }
    made[1] = store
        .revoke_api_key(tenant, made[1].id, at(3), None)
        .await
        .expect("revoke");
    let mut seen = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let got = store.list_api_keys(tenant, page).await.expect("list");
        assert!(got.items.len() <= 2);
        seen.extend(got.items);
        match got.next {
            Some(next) => page = next,
            None => break,
        }
    }
    assert_eq!(seen, made);
}
