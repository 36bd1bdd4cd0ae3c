//! API keys: who may call, and how often.
//!
//! A key (`adx_` + 32 base62 characters) is shown once, at creation or rotation; only its
//! SHA-256 is stored. Requests send `Authorization: Bearer <key>` (the scheme in any case);
//! a key anywhere else, a query string included, is never read, so it cannot end up in access
//! logs or browser history. Keys are never logged: only their 8-character prefix is.
//!
//! # Layout
//! - [`store`]: the `api_keys` table: create, look up, list, revoke, rotate, each action
//!   audited.
//! - [`cache`]: keys found valid, remembered for `ALTDATA_API_KEY_CACHE_TTL`; refused keys
//!   never enter it, so a flood of bad keys evicts nothing.
//! - [`limits`]: token buckets: requests per key, failed authentications per client address.
//! - [`client`]: the client's address, through trusted proxies.
//! - [`revocation`]: the NATS message that makes every gateway forget a revoked key at once.

pub mod cache;
pub mod client;
pub mod limits;
pub mod revocation;
pub mod store;

pub use cache::KeyCache;
pub use client::{ClientAddress, TrustedProxies};
pub use limits::{AuthFailureLimiter, RateLimiter};
pub use store::{create_key, KeyStatus};

use crate::error::{retry_after_seconds, ApiError, GatewayError};
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Analyst,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = GatewayError;
    fn from_str(text: &str) -> Result<Role, GatewayError> {
        match text {
            "analyst" => Ok(Role::Analyst),
            "admin" => Ok(Role::Admin),
            other => Err(GatewayError::InvalidRole(other.to_owned())),
        }
    }
}

/// The caller of a request, attached to it by [`require_key`].
#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: i64,
    pub key_prefix: String,
    pub name: String,
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Principal {
    /// How the caller is named in the audit trail: the key's name, or its prefix.
    pub fn actor(&self) -> String {
        if self.name.is_empty() {
            format!("key:{}", self.key_prefix)
        } else {
            format!("{} ({})", self.name, self.key_prefix)
        }
    }

    pub fn has_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// Middleware: a valid, unrevoked, unexpired key within its rate limit, or 401/429/503.
pub async fn require_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let key = bearer_key(request.headers())
        .ok_or(ApiError::Unauthorized(
            "missing API key: send Authorization: Bearer <key>",
        ))?
        .to_owned();
    let client = ClientAddress::of(&request, &state.inner.settings.trusted_proxies);
    let principal = authenticate(&state, &key, client).await?;
    if let Err(wait) = state.inner.rate_limiter.check(principal.key_id) {
        state.inner.metrics.rate_limited.increment(1);
        return Err(ApiError::TooManyRequests {
            retry_after_seconds: retry_after_seconds(wait),
        });
    }
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// Middleware, after [`require_key`]: the caller must be an admin.
pub async fn require_admin(request: Request, next: Next) -> Result<Response, ApiError> {
    match request.extensions().get::<Principal>() {
        Some(principal) if principal.role == Role::Admin => Ok(next.run(request).await),
        Some(_) => Err(ApiError::Forbidden("this route needs an admin key")),
        None => Err(ApiError::Unauthorized("missing API key")),
    }
}

/// The key of an `Authorization: Bearer <key>` header; the scheme is case-insensitive
/// (RFC 9110, section 11.1).
pub fn bearer_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim())
        .filter(|key| !key.is_empty())
}

/// The principal of a presented key. A key recently found valid costs nothing; any other
/// costs a database lookup, for which a token of the client address's failure budget is
/// reserved (and given back unless the key is refused), except for a key found valid before:
/// re-reading it is no guess. So guessing keys is slow, and it never slows down or evicts
/// the keys that work.
async fn authenticate(
    state: &AppState,
    key: &str,
    client: ClientAddress,
) -> Result<Principal, ApiError> {
    let inner = &state.inner;
    let hash = store::hash_key(key);
    let remembered = inner
        .keys
        .get(&hash)
        .filter(|remembered| !remembered.principal.has_expired(Utc::now()));
    let budgeted = match &remembered {
        Some(remembered) if remembered.fresh => return Ok(remembered.principal.clone()),
        Some(_) => false,
        None => true,
    };
    if budgeted {
        if let Err(wait) = inner.auth_failures.reserve(client) {
            inner.metrics.auth_throttled.increment(1);
            return Err(ApiError::AuthThrottled {
                retry_after_seconds: retry_after_seconds(wait),
            });
        }
    }
    let status = if store::well_formed(key) {
        store::lookup(&inner.db, &hash).await
    } else {
        Ok(KeyStatus::Unknown)
    };
    // Only a refusal spends the reservation; an accepted key or a database error does not.
    let refused = matches!(
        status,
        Ok(KeyStatus::Unknown | KeyStatus::Revoked | KeyStatus::Expired)
    );
    if budgeted && !refused {
        inner.auth_failures.release(client);
    }
    match status? {
        KeyStatus::Valid(principal) => {
            inner.keys.put(hash, principal.clone());
            Ok(principal)
        }
        refused => {
            // A key found valid before, now revoked or expired, is no longer known.
            inner.keys.remove(&hash);
            inner.metrics.auth_failure(&refused);
            Err(ApiError::Unauthorized(refused.message()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(header::AUTHORIZATION, value);
        }
        headers
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in [
            "Bearer adx_k",
            "bearer adx_k",
            "BEARER adx_k",
            "BeArEr  adx_k ",
        ] {
            assert_eq!(bearer_key(&headers(value)), Some("adx_k"), "{value}");
        }
    }

    #[test]
    fn other_schemes_and_empty_keys_are_no_key() {
        for value in [
            "Basic adx_k",
            "Bearer",
            "Bearer ",
            "Bearertoken adx_k",
            "adx_k",
        ] {
            assert_eq!(bearer_key(&headers(value)), None, "{value}");
        }
        assert_eq!(bearer_key(&HeaderMap::new()), None);
    }
}
