//! The `api_keys` table: keys are created (optionally expiring), looked up by the SHA-256 of
//! the presented key, listed without their secret, revoked and rotated. Each change writes
//! its `api_key_audit` row in the same transaction. The CLI (`altdata keys`) and the admin
//! API (`/v1/admin/keys`) both call these functions.

use super::{Principal, Role};
use crate::error::{ApiError, GatewayError};
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio_postgres::Row;

const KEY_PREFIX: &str = "adx_";
const KEY_RANDOM_CHARS: usize = 32;
/// How much of a key is stored in clear, shown in lists and logged: `adx_` and 4 characters.
const SHOWN_PREFIX_CHARS: usize = 8;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The longest name of a key, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The columns [`key_info`] reads, in its order.
const INFO_COLUMNS: &str =
    "id, key_prefix, name, role, created_at, expires_at, revoked_at, last_used_at, rotated_from";

/// What a presented key turned out to be.
#[derive(Debug, Clone)]
pub enum KeyStatus {
    Valid(Principal),
    Unknown,
    Revoked,
    Expired,
}

impl KeyStatus {
    /// The sentence a refused caller reads; it tells a key holder why, and nobody else
    /// anything (a key must be held to learn that it was revoked).
    pub fn message(&self) -> &'static str {
        match self {
            KeyStatus::Valid(_) => "valid API key",
            KeyStatus::Unknown => "invalid API key",
            KeyStatus::Revoked => "this API key was revoked; ask an admin for a new one",
            KeyStatus::Expired => "this API key has expired; ask an admin for a new one",
        }
    }
}

/// Where a key stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Active,
    Expired,
    Revoked,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Expired => "expired",
            KeyState::Revoked => "revoked",
        }
    }
}

/// A key as listed: everything but its secret, which is never stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    pub id: i64,
    /// The first 8 characters of the key (`adx_` and 4 more), as logs show it.
    pub prefix: String,
    pub name: String,
    pub role: Role,
    pub state: KeyState,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// When a gateway last read the key from the database: at most
    /// `ALTDATA_API_KEY_CACHE_TTL` behind its last use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// The key this one replaced, when it was made by a rotation.
    pub rotated_from: Option<i64>,
}

/// A key just made: the secret, shown this once, and its listing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewKey {
    /// The key itself. It is not stored and cannot be shown again.
    pub key: String,
    #[serde(flatten)]
    pub info: KeyInfo,
}

/// The outcome of a revocation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Revocation {
    #[serde(flatten)]
    pub info: KeyInfo,
    /// False when the key was already revoked (nothing changed, no audit row).
    pub newly_revoked: bool,
}

/// Why a key action was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no API key {0}")]
    NotFound(String),
    /// The key's state forbids the action (rotating a revoked key).
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("no database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
}

impl From<KeyError> for ApiError {
    fn from(error: KeyError) -> ApiError {
        match error {
            KeyError::NotFound(_) => ApiError::NotFound(error.to_string()),
            KeyError::Refused(message) => ApiError::Conflict(message),
            KeyError::Invalid(message) => ApiError::invalid(message),
            KeyError::Database(error) => ApiError::from(error),
            KeyError::Pool(error) => ApiError::from(error),
        }
    }
}

/// Parses a lifetime such as `30d`, `12h` or `90days`, within a minute and ten years.
pub fn parse_lifetime(text: &str) -> Result<Duration, KeyError> {
    static LIFETIME: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(LIFETIME_PATTERN).unwrap_or_else(|e| panic!("LIFETIME_PATTERN: {e}"))
    });
    let invalid = || {
        KeyError::Invalid(format!(
            "expires_in {text:?} is not a lifetime: write a whole number of minutes, hours or \
             days, such as 90m, 12h or 30d (1 minute to 3660 days)"
        ))
    };
    if !LIFETIME.is_match(text) {
        return Err(invalid());
    }
    let (number, unit) = text.split_at(text.len() - 1);
    let seconds_per_unit = match unit {
        "m" => 60,
        "h" => 3600,
        _ => 86_400,
    };
    let count: u64 = number.parse().map_err(|_| invalid())?;
    Ok(Duration::from_secs(count * seconds_per_unit))
}

/// The lifetimes [`parse_lifetime`] accepts, also stated in the API document: 1 to 999999
/// minutes, 1 to 9999 hours, or 1 to 3660 days (all within 1 minute and 3660 days).
pub const LIFETIME_PATTERN: &str = r"^([1-9][0-9]{0,5}m|[1-9][0-9]{0,3}h|[1-9][0-9]{0,2}d|[12][0-9]{3}d|3[0-5][0-9]{2}d|36[0-5][0-9]d|3660d)$";

/// Creates a key with `role`, expiring after `lifetime` if given, and its audit row.
pub async fn create(
    pool: &deadpool_postgres::Pool,
    role: Role,
    name: &str,
    lifetime: Option<Duration>,
    actor: &str,
) -> Result<NewKey, KeyError> {
    check_name(name)?;
    let expires_at = lifetime.map(expiry_after);
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    let created = insert_key(&transaction, role, name, expires_at, None).await?;
    audit(&transaction, created.info.id, "create", actor, json!({})).await?;
    transaction.commit().await?;
    Ok(created)
}

/// Installs the operator's first admin key (`ALTDATA_BOOTSTRAP_ADMIN_KEY`, read by
/// `altdata migrate`): stored by its hash as an admin key named "bootstrap" unless a key with
/// that hash exists already, so a later migration neither duplicates it nor revives it once
/// revoked. Returns whether it was installed now.
pub async fn install_bootstrap_key(
    client: &mut tokio_postgres::Client,
    key: &str,
) -> Result<bool, KeyError> {
    if !well_formed(key) {
        return Err(KeyError::Invalid(format!(
            "ALTDATA_BOOTSTRAP_ADMIN_KEY is not a key: write {KEY_PREFIX} and {KEY_RANDOM_CHARS} \
             letters or digits (for example from `openssl rand -hex 16`, prefixed with {KEY_PREFIX})"
        )));
    }
    let transaction = client.transaction().await?;
    let row = transaction
        .query_opt(
            "INSERT INTO api_keys (key_sha256, key_prefix, role, name)
             VALUES ($1, $2, 'admin', 'bootstrap')
             ON CONFLICT (key_sha256) DO NOTHING RETURNING id",
            &[&hash_key(key), &&key[..SHOWN_PREFIX_CHARS]],
        )
        .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    audit(&transaction, row.get(0), "create", "bootstrap", json!({})).await?;
    transaction.commit().await?;
    Ok(true)
}

/// Creates a key that never expires and returns only the key: for tests and `altdata demo`.
pub async fn create_key(
    pool: &deadpool_postgres::Pool,
    role: Role,
    name: &str,
) -> Result<String, GatewayError> {
    create(pool, role, name, None, "altdata")
        .await
        .map(|created| created.key)
        .map_err(|error| GatewayError::Database(error.to_string()))
}

/// Looks a key up by its SHA-256 and, when it is valid, records that it was used. One round
/// trip: this runs on every cache miss.
pub async fn lookup(pool: &deadpool_postgres::Pool, hash: &str) -> Result<KeyStatus, ApiError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "WITH found AS (
                 SELECT id, key_prefix, name, role, expires_at,
                        revoked_at IS NOT NULL AS revoked,
                        expires_at IS NOT NULL AND expires_at <= now() AS expired
                 FROM api_keys WHERE key_sha256 = $1
             ), used AS (
                 UPDATE api_keys SET last_used_at = now()
                 WHERE id = (SELECT id FROM found WHERE NOT revoked AND NOT expired)
             )
             SELECT id, key_prefix, name, role, expires_at, revoked, expired FROM found",
            &[&hash],
        )
        .await?;
    let Some(row) = row else {
        return Ok(KeyStatus::Unknown);
    };
    if row.get::<_, bool>(5) {
        return Ok(KeyStatus::Revoked);
    }
    if row.get::<_, bool>(6) {
        return Ok(KeyStatus::Expired);
    }
    let role: String = row.get(3);
    Ok(match role.parse() {
        Ok(role) => KeyStatus::Valid(Principal {
            key_id: row.get(0),
            key_prefix: row.get(1),
            name: row.get(2),
            role,
            expires_at: row.get(4),
        }),
        Err(_) => KeyStatus::Unknown,
    })
}

/// Every key, newest first, without secrets.
pub async fn list(
    pool: &deadpool_postgres::Pool,
    limit: i64,
    offset: i64,
) -> Result<Vec<KeyInfo>, KeyError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!("SELECT {INFO_COLUMNS} FROM api_keys ORDER BY id DESC LIMIT $1 OFFSET $2"),
            &[&limit, &offset],
        )
        .await?;
    rows.iter().map(key_info).collect()
}

/// Revokes key `id` and writes the audit row; revoking a revoked key changes nothing.
/// The caller announces the revocation ([`super::revocation::announce`]).
pub async fn revoke(
    pool: &deadpool_postgres::Pool,
    id: i64,
    actor: &str,
) -> Result<Revocation, KeyError> {
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    let revoked = transaction
        .query_opt(
            &format!(
                "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
                 RETURNING {INFO_COLUMNS}"
            ),
            &[&id],
        )
        .await?;
    let revocation = match revoked {
        Some(row) => {
            audit(&transaction, id, "revoke", actor, json!({})).await?;
            Revocation {
                info: key_info(&row)?,
                newly_revoked: true,
            }
        }
        None => Revocation {
            info: find_by_id(&transaction, id).await?,
            newly_revoked: false,
        },
    };
    transaction.commit().await?;
    Ok(revocation)
}

/// Replaces key `id` by a new secret with the same name and role, and revokes the old one at
/// once, in one transaction. The new key keeps the old expiry unless `lifetime` is given.
/// The caller announces the old key's revocation.
pub async fn rotate(
    pool: &deadpool_postgres::Pool,
    id: i64,
    lifetime: Option<Duration>,
    actor: &str,
) -> Result<NewKey, KeyError> {
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    let old = transaction
        .query_opt(
            &format!("SELECT {INFO_COLUMNS} FROM api_keys WHERE id = $1 FOR UPDATE"),
            &[&id],
        )
        .await?
        .ok_or_else(|| KeyError::NotFound(id.to_string()))
        .and_then(|row| key_info(&row))?;
    let expires_at = match lifetime {
        Some(lifetime) => Some(expiry_after(lifetime)),
        None => old.expires_at,
    };
    check_rotatable(&old, expires_at)?;
    let created = insert_key(&transaction, old.role, &old.name, expires_at, Some(id)).await?;
    transaction
        .execute(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1",
            &[&id],
        )
        .await?;
    let detail = json!({"new_key_id": created.info.id, "new_key_prefix": created.info.prefix});
    audit(&transaction, id, "rotate", actor, detail).await?;
    transaction.commit().await?;
    Ok(created)
}

/// The id of a key named by its id or its 8-character prefix (what `keys list` and the logs
/// show); an ambiguous prefix is refused.
pub async fn find(pool: &deadpool_postgres::Pool, reference: &str) -> Result<i64, KeyError> {
    if let Ok(id) = reference.parse::<i64>() {
        return Ok(id);
    }
    let client = pool.get().await?;
    let ids: Vec<i64> = client
        .query(
            "SELECT id FROM api_keys WHERE key_prefix = $1 ORDER BY id",
            &[&reference],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    match ids.as_slice() {
        [] => Err(KeyError::NotFound(reference.to_owned())),
        [id] => Ok(*id),
        _ => Err(KeyError::Refused(format!(
            "{reference} is the prefix of keys {ids:?}; name one by its id"
        ))),
    }
}

/// The SHA-256 of a key, in hex: what is stored and looked up.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Whether a text has the shape of a key; anything else is refused without a lookup.
pub fn well_formed(key: &str) -> bool {
    key.len() == KEY_PREFIX.len() + KEY_RANDOM_CHARS
        && key.starts_with(KEY_PREFIX)
        && key[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
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

fn expiry_after(lifetime: Duration) -> DateTime<Utc> {
    // Bounded by LIFETIME_PATTERN (3660 days at most), so the conversion cannot fail.
    Utc::now() + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::zero())
}

pub fn check_name(name: &str) -> Result<(), KeyError> {
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(KeyError::Invalid(format!(
            "a key's name is at most {MAX_NAME_CHARS} characters of printable text"
        )));
    }
    Ok(())
}

fn check_rotatable(old: &KeyInfo, expires_at: Option<DateTime<Utc>>) -> Result<(), KeyError> {
    if old.revoked_at.is_some() {
        return Err(KeyError::Refused(format!(
            "key {} is revoked and cannot be rotated; create a new one",
            old.id
        )));
    }
    if expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(KeyError::Refused(format!(
            "key {} has expired; give the new key a lifetime (expires_in)",
            old.id
        )));
    }
    Ok(())
}

async fn insert_key(
    transaction: &tokio_postgres::Transaction<'_>,
    role: Role,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    rotated_from: Option<i64>,
) -> Result<NewKey, KeyError> {
    let key = generate_key();
    let row = transaction
        .query_one(
            &format!(
                "INSERT INTO api_keys (key_sha256, key_prefix, role, name, expires_at, rotated_from)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING {INFO_COLUMNS}"
            ),
            &[
                &hash_key(&key),
                &&key[..SHOWN_PREFIX_CHARS],
                &role.as_str(),
                &name,
                &expires_at,
                &rotated_from,
            ],
        )
        .await?;
    Ok(NewKey {
        key,
        info: key_info(&row)?,
    })
}

async fn find_by_id(
    transaction: &tokio_postgres::Transaction<'_>,
    id: i64,
) -> Result<KeyInfo, KeyError> {
    let row = transaction
        .query_opt(
            &format!("SELECT {INFO_COLUMNS} FROM api_keys WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or_else(|| KeyError::NotFound(id.to_string()))?;
    key_info(&row)
}

async fn audit(
    transaction: &tokio_postgres::Transaction<'_>,
    key_id: i64,
    action: &str,
    actor: &str,
    detail: serde_json::Value,
) -> Result<(), KeyError> {
    transaction
        .execute(
            "INSERT INTO api_key_audit (key_id, action, actor, detail) VALUES ($1, $2, $3, $4)",
            &[&key_id, &action, &actor, &detail],
        )
        .await?;
    Ok(())
}

/// A row of [`INFO_COLUMNS`].
fn key_info(row: &Row) -> Result<KeyInfo, KeyError> {
    let role: String = row.get(3);
    let role = role
        .parse()
        .map_err(|error: GatewayError| KeyError::Invalid(error.to_string()))?;
    let expires_at: Option<DateTime<Utc>> = row.get(5);
    let revoked_at: Option<DateTime<Utc>> = row.get(6);
    let state = if revoked_at.is_some() {
        KeyState::Revoked
    } else if expires_at.is_some_and(|at| at <= Utc::now()) {
        KeyState::Expired
    } else {
        KeyState::Active
    };
    Ok(KeyInfo {
        id: row.get(0),
        prefix: row.get(1),
        name: row.get(2),
        role,
        state,
        created_at: row.get(4),
        expires_at,
        revoked_at,
        last_used_at: row.get(7),
        rotated_from: row.get(8),
    })
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
    fn lifetimes_are_read_in_days_hours_or_minutes_within_bounds() {
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(parse_lifetime("30d").ok(), Some(30 * day));
        assert_eq!(parse_lifetime("12h").ok(), Some(day / 2));
        assert_eq!(
            parse_lifetime("90m").ok(),
            Some(Duration::from_secs(90 * 60))
        );
        for bad in [
            "", "soon", "10s", "20000d", "-3d", " 90d", "90days", "1h30m", "0m",
        ] {
            assert!(parse_lifetime(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_documented_pattern_accepts_exactly_the_lifetimes_read() {
        let pattern = regex::Regex::new(LIFETIME_PATTERN).expect("compiles");
        let samples = [
            "1m", "90m", "999999m", "1000000m", "0m", "12h", "9999h", "10000h", "1d", "30d",
            "999d", "1000d", "2999d", "3599d", "3660d", "3661d", "4000d", "", "d", "1.5h", "1h30m",
            " 30d", "030d", "30D",
        ];
        for sample in samples {
            assert_eq!(
                pattern.is_match(sample),
                parse_lifetime(sample).is_ok(),
                "{sample:?}"
            );
        }
        // The API document states the same pattern.
        let document = crate::openapi::document(&crate::config::QueryLimits::default());
        let text = document.to_string();
        assert!(
            text.contains(&LIFETIME_PATTERN.replace('\\', "\\\\")),
            "the CreateKey and RotateKey schemas carry LIFETIME_PATTERN"
        );
    }

    #[test]
    fn names_are_short_printable_text() {
        assert!(check_name("").is_ok());
        assert!(check_name("ops laptop").is_ok());
        assert!(check_name("a\nb").is_err());
        assert!(check_name(&"x".repeat(201)).is_err());
    }
}
