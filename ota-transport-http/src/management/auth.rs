//! Who calls the management API: the [`Authenticator`] trait that an embedding platform
//! implements (JWT, sessions, ...), the [`Principal`] it answers with, roles and what they
//! allow, and [`ApiKeys`], a ready implementation with bearer API keys stored hashed.

use async_trait::async_trait;
use axum::http::HeaderMap;
use base64::Engine as _;
use ota_core::TenantId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::RwLock;

/// What a route needs the caller to be allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Read anything of the tenant.
    Read,
    /// Assign and unassign packages.
    Assign,
    /// Operate the fleet: devices, campaigns, updates, scheduled events.
    Operate,
    /// Administer: packages, profiles, groups, access tokens.
    Admin,
}

/// A caller's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Everything but [`Access::Admin`].
    Operator,
    /// Reading and assigning packages.
    Assigner,
    /// Reading only.
    ReadOnly,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Self::Admin, Self::Operator, Self::Assigner, Self::ReadOnly];

    /// The role's name, as JSON and stores spell it (`admin`, `operator`, `assigner`,
    /// `read_only`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Assigner => "assigner",
            Self::ReadOnly => "read_only",
        }
    }

    /// The role named `name` (see [`Role::as_str`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether this role is allowed `access`.
    pub fn allows(self, access: Access) -> bool {
        match self {
            Self::Admin => true,
            Self::Operator => access != Access::Admin,
            Self::Assigner => matches!(access, Access::Read | Access::Assign),
            Self::ReadOnly => access == Access::Read,
        }
    }
}

/// An authenticated caller: its tenant, the name written to the audit log, and its role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The only tenant the caller can see.
    pub tenant: TenantId,
    /// The actor recorded in the audit log.
    pub actor: String,
    /// What it may do.
    pub role: Role,
}

impl Principal {
    /// A principal of `tenant` named `actor` with `role`.
    pub fn new(tenant: TenantId, actor: impl Into<String>, role: Role) -> Self {
        Self {
            tenant,
            actor: actor.into(),
            role,
        }
    }
}

/// Authentication failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No credential was sent (HTTP 401).
    #[error("send an API key as `Authorization: Bearer <key>`")]
    Missing,
    /// The credential is not valid (HTTP 401).
    #[error("the credential is not valid: {0}")]
    Invalid(String),
    /// The identity provider cannot be reached (HTTP 503).
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
}

/// Turns a request's headers into a [`Principal`]. Implement it to plug in the platform's
/// identity (JWT, sessions, ...); [`ApiKeys`] is the ready one.
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// The caller of a request with these headers.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError>;
}

/// The bearer token of `Authorization: Bearer <token>`.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?;
    let text = value
        .to_str()
        .map_err(|_| AuthError::Invalid("the Authorization header is not ASCII".into()))?;
    let (scheme, token) = text
        .split_once(' ')
        .ok_or_else(|| AuthError::Invalid("expected `Authorization: Bearer <key>`".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Invalid(
            "expected `Authorization: Bearer <key>`".into(),
        ));
    }
    Ok(token.trim())
}

/// A key's record: everything but the key itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The tenant the key acts in.
    pub tenant: TenantId,
    /// The key's name (the actor in the audit log).
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// Bearer API keys scoped to one tenant each. Only the SHA-256 of a key is kept; the key
/// itself is shown once, when [`ApiKeys::issue`] makes it.
#[derive(Debug, Default)]
pub struct ApiKeys {
    by_hash: RwLock<HashMap<[u8; 32], ApiKeyRecord>>,
}

fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A new random API key: `ota_` and 32 random bytes in URL-safe base64.
pub(crate) fn new_key() -> String {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("the operating system's random source failed");
    format!(
        "ota_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    )
}

impl ApiKeys {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes a new random key for `tenant` named `name` with `role`, and returns it: it cannot
    /// be read back later.
    pub fn issue(&self, tenant: TenantId, name: &str, role: Role) -> String {
        let key = new_key();
        self.insert_hashed(hash_key(&key), tenant, name, role);
        key
    }

    /// Adds a key known only by its SHA-256 (for keys kept in the platform's configuration).
    pub fn insert_hashed(&self, sha256: [u8; 32], tenant: TenantId, name: &str, role: Role) {
        self.by_hash
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                sha256,
                ApiKeyRecord {
                    tenant,
                    name: name.to_string(),
                    role,
                },
            );
    }

    /// The SHA-256 under which `key` is kept.
    pub fn hash(key: &str) -> [u8; 32] {
        hash_key(key)
    }

    /// Revokes `key`; whether it existed.
    pub fn revoke(&self, key: &str) -> bool {
        self.by_hash
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&hash_key(key))
            .is_some()
    }
}

#[async_trait]
impl Authenticator for ApiKeys {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let key = bearer_token(headers)?;
        let keys = self.by_hash.read().unwrap_or_else(|p| p.into_inner());
        let record = keys
            .get(&hash_key(key))
            .ok_or_else(|| AuthError::Invalid("unknown or revoked API key".into()))?;
        Ok(Principal::new(
            record.tenant,
            format!("api-key:{}", record.name),
            record.role,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_they_should() {
        use Access::*;
        assert!([Read, Assign, Operate, Admin]
            .iter()
            .all(|a| Role::Admin.allows(*a)));
        assert!(Role::Operator.allows(Operate) && !Role::Operator.allows(Admin));
        assert!(Role::Assigner.allows(Assign) && !Role::Assigner.allows(Operate));
        assert!(Role::ReadOnly.allows(Read) && !Role::ReadOnly.allows(Assign));
        for role in Role::ALL {
            assert_eq!(Role::from_name(role.as_str()), Some(role));
            assert_eq!(
                serde_json::to_value(role).unwrap(),
                serde_json::Value::from(role.as_str())
            );
        }
        assert_eq!(Role::from_name("root"), None);
    }

    #[tokio::test]
    async fn keys_are_kept_hashed_and_checked() {
        let keys = ApiKeys::new();
        let tenant = TenantId::new();
        let key = keys.issue(tenant, "ci", Role::Operator);
        assert!(!format!("{keys:?}").contains(&key));
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {key}").parse().unwrap());
        let p = keys.authenticate(&headers).await.unwrap();
        assert_eq!(
            (p.tenant, p.role, p.actor.as_str()),
            (tenant, Role::Operator, "api-key:ci")
        );
        assert!(keys.revoke(&key));
        assert!(matches!(
            keys.authenticate(&headers).await,
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            keys.authenticate(&HeaderMap::new()).await,
            Err(AuthError::Missing)
        ));
    }
}
