//! API keys and roles, and the rate limit per key.
//!
//! A key (`adx_` + 32 base62 characters) is shown once, at creation; only its SHA-256 is
//! stored. Requests send `Authorization: Bearer <key>`. Looked-up keys are remembered in
//! memory for a short time (so a revocation takes effect within that time) to spare the
//! database a query per request. Keys are never logged: only their 8-character prefix is.

use crate::config::RateLimit;
use crate::error::{retry_after_seconds, ApiError, GatewayError};
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use rand::Rng;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const KEY_PREFIX: &str = "adx_";
const KEY_RANDOM_CHARS: usize = 32;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Entries kept in the key cache and the rate limiter before old ones are dropped.
const MAX_REMEMBERED_KEYS: usize = 10_000;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

/// Creates an API key with `role` and returns it; only its SHA-256 is stored, so this is the
/// one time the key can be seen.
pub async fn create_key(
    pool: &deadpool_postgres::Pool,
    role: Role,
    name: &str,
) -> Result<String, GatewayError> {
    let key = generate_key();
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO api_keys (key_sha256, key_prefix, role, name) VALUES ($1, $2, $3, $4)",
            &[&hash_key(&key), &&key[..8], &role.as_str(), &name],
        )
        .await?;
    Ok(key)
}

/// Revokes every key whose 8-character prefix is `key_prefix`; returns how many.
pub async fn revoke_key(
    pool: &deadpool_postgres::Pool,
    key_prefix: &str,
) -> Result<u64, GatewayError> {
    let client = pool.get().await?;
    Ok(client
        .execute(
            "UPDATE api_keys SET revoked_at = now() WHERE key_prefix = $1 AND revoked_at IS NULL",
            &[&key_prefix],
        )
        .await?)
}

fn generate_key() -> String {
    let mut rng = rand::rngs::OsRng;
    let mut key = String::with_capacity(KEY_PREFIX.len() + KEY_RANDOM_CHARS);
    key.push_str(KEY_PREFIX);
    for _ in 0..KEY_RANDOM_CHARS {
        key.push(char::from(BASE62[rng.gen_range(0..BASE62.len())]));
    }
    key
}

fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn well_formed(key: &str) -> bool {
    key.len() == KEY_PREFIX.len() + KEY_RANDOM_CHARS
        && key.starts_with(KEY_PREFIX)
        && key[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

/// Keys looked up recently, valid or not, by SHA-256.
#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Option<Principal>, Instant)>>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> KeyCache {
        KeyCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, hash: &str) -> Option<Option<Principal>> {
        let entries = self.entries.lock().ok()?;
        let (principal, at) = entries.get(hash)?;
        (at.elapsed() < self.ttl).then(|| principal.clone())
    }

    fn put(&self, hash: String, principal: Option<Principal>) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_REMEMBERED_KEYS {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            if entries.len() >= MAX_REMEMBERED_KEYS {
                entries.clear();
            }
        }
        entries.insert(hash, (principal, Instant::now()));
    }
}

/// A token bucket per key: `per_second` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<i64, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key_id`, or says how long until one is available.
    pub fn check(&self, key_id: i64) -> Result<(), Duration> {
        self.check_at(key_id, Instant::now())
    }

    fn check_at(&self, key_id: i64, now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_REMEMBERED_KEYS && !buckets.contains_key(&key_id) {
            buckets.clear();
        }
        let (tokens, last) = buckets.entry(key_id).or_insert((self.limit.burst, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * self.limit.per_second;
        *tokens = (*tokens + refill).min(self.limit.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - *tokens) / self.limit.per_second,
            ))
        }
    }
}

/// Middleware: a valid, unrevoked key within its rate limit, or 401/429/503.
pub async fn require_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let key = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token)
        .ok_or(ApiError::Unauthorized(
            "missing API key: send Authorization: Bearer <key>",
        ))?;
    if !well_formed(key) {
        return Err(ApiError::Unauthorized("invalid API key"));
    }
    let principal = lookup(&state, key).await?;
    if let Err(wait) = state.inner.rate_limiter.check(principal.key_id) {
        state.inner.metrics.rate_limited.increment(1);
        return Err(ApiError::TooManyRequests {
            retry_after_seconds: retry_after_seconds(wait),
        });
    }
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// The token of an `Authorization: Bearer <token>` value; the scheme name is
/// case-insensitive (RFC 9110, section 11.1), so `bearer` and `BEARER` are accepted too.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Middleware, after [`require_key`]: the caller must be an admin.
pub async fn require_admin(request: Request, next: Next) -> Result<Response, ApiError> {
    match request.extensions().get::<Principal>() {
        Some(principal) if principal.role == Role::Admin => Ok(next.run(request).await),
        Some(_) => Err(ApiError::Forbidden("this route needs an admin key")),
        None => Err(ApiError::Unauthorized("missing API key")),
    }
}

async fn lookup(state: &AppState, key: &str) -> Result<Principal, ApiError> {
    let hash = hash_key(key);
    let cache = &state.inner.keys;
    let found = match cache.get(&hash) {
        Some(found) => found,
        None => {
            let client = state.inner.db.get().await?;
            let row = client
                .query_opt(
                    "SELECT id, key_prefix, name, role FROM api_keys
                     WHERE key_sha256 = $1 AND revoked_at IS NULL",
                    &[&hash],
                )
                .await?;
            let principal = row.and_then(|row| {
                let role: String = row.get(3);
                Some(Principal {
                    key_id: row.get(0),
                    key_prefix: row.get(1),
                    name: row.get(2),
                    role: role.parse().ok()?,
                })
            });
            cache.put(hash, principal.clone());
            principal
        }
    };
    found.ok_or(ApiError::Unauthorized("invalid or revoked API key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let a = generate_key();
        let b = generate_key();
        assert!(well_formed(&a), "{a}");
        assert_ne!(a, b);
        assert!(!well_formed("adx_short"));
        assert!(!well_formed(&a.replace("adx_", "xyz_")));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in [
            "Bearer adx_1",
            "bearer adx_1",
            "BEARER  adx_1 ",
            " bEaReR adx_1",
        ] {
            assert_eq!(bearer_token(value), Some("adx_1"), "{value}");
        }
        for value in ["Basic adx_1", "Bearer", "Beareradx_1", "Token adx_1"] {
            assert_eq!(bearer_token(value), None, "{value}");
        }
    }

    #[test]
    fn the_bucket_allows_a_burst_then_refills_at_the_rate() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 3.0,
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(1, start).is_ok());
        }
        let wait = limiter.check_at(1, start).err().unwrap_or_default();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert!(
            limiter.check_at(2, start).is_ok(),
            "keys have their own buckets"
        );
        assert!(limiter
            .check_at(1, start + Duration::from_millis(500))
            .is_ok());
    }
}
