//! Typed gateway settings, read once from the environment and validated at start.

use altdata_common::{ConnectionSettings, EnvReader, SettingsError};
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the gateway needs to know, parsed into types.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub connections: ConnectionSettings,
    /// Queries run on this URL (a read replica or a read-only role); falls back to
    /// `DATABASE_URL`. Admin writes always use `DATABASE_URL`.
    pub readonly_database_url: SecretString,
    /// `ALTDATA_HTTP_ADDR`, default `0.0.0.0:8080`.
    pub http_addr: SocketAddr,
    pub limits: QueryLimits,
    /// Backstop TTL of cached answers; invalidation is what keeps them fresh.
    pub cache_ttl: Duration,
    pub rate_limit: RateLimit,
    /// How long a looked-up API key is trusted before it is read again (revocations take
    /// effect within this time).
    pub api_key_cache_ttl: Duration,
    pub request_body_limit_bytes: usize,
    pub request_timeout: Duration,
    /// The built dashboard; `/` serves it when the directory exists.
    pub web_dir: PathBuf,
}

/// Bounds on what one request may ask for.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// The longest `from`..`to` range, in days.
    pub max_range_days: i64,
    /// The largest `limit` of any list.
    pub max_page_size: i64,
}

/// Token bucket per API key.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl Default for QueryLimits {
    fn default() -> QueryLimits {
        QueryLimits {
            max_range_days: 3 * 366,
            max_page_size: 500,
        }
    }
}

impl GatewaySettings {
    /// Reads every gateway setting; problems are recorded in `env` and reported by
    /// [`EnvReader::finish`].
    pub fn read(env: &mut EnvReader) -> GatewaySettings {
        let connections = ConnectionSettings::read(env);
        let readonly = env.url(
            "ALTDATA_READONLY_DATABASE_URL",
            connections.database_url.expose_secret(),
            &["postgres", "postgresql"],
        );
        let http_addr = env.parsed(
            "ALTDATA_HTTP_ADDR",
            SocketAddr::from(([0, 0, 0, 0], 8080)),
            "a socket address such as 0.0.0.0:8080",
        );
        if env.is_set("ALTDATA_K_ANONYMITY") {
            // k is the database's, so that the writer that releases cells and every gateway
            // agree on it.
            env.problem(
                "ALTDATA_K_ANONYMITY is no longer read: the disclosure rule's k lives in the \
                 database; show it with `altdata disclosure` and set it with \
                 `altdata disclosure --k N`"
                    .to_owned(),
            );
        }
        let defaults = QueryLimits::default();
        let limits = QueryLimits {
            max_range_days: env.integer("ALTDATA_MAX_RANGE_DAYS", defaults.max_range_days, 1, 3660),
            max_page_size: env.integer("ALTDATA_MAX_PAGE_SIZE", defaults.max_page_size, 1, 10_000),
        };
        let cache_ttl = env.duration("ALTDATA_CACHE_TTL", Duration::from_secs(3600));
        if cache_ttl < Duration::from_secs(1) {
            env.problem("ALTDATA_CACHE_TTL must be at least 1s".to_owned());
        }
        let rate_limit = RateLimit {
            per_second: f64::from(env.integer("ALTDATA_RATE_LIMIT_PER_SECOND", 50u32, 1, 100_000)),
            burst: f64::from(env.integer("ALTDATA_RATE_LIMIT_BURST", 100u32, 1, 1_000_000)),
        };
        GatewaySettings {
            connections,
            readonly_database_url: SecretString::from(readonly),
            http_addr,
            limits,
            cache_ttl,
            rate_limit,
            api_key_cache_ttl: env.duration("ALTDATA_API_KEY_CACHE_TTL", Duration::from_secs(30)),
            request_body_limit_bytes: env.integer(
                "ALTDATA_REQUEST_BODY_LIMIT",
                64 * 1024usize,
                1024,
                16 * 1024 * 1024,
            ),
            request_timeout: env.duration("ALTDATA_REQUEST_TIMEOUT", Duration::from_secs(10)),
            web_dir: PathBuf::from(env.string("ALTDATA_WEB_DIR", "web/dist")),
        }
    }

    /// Reads and validates in one go, reporting every problem together.
    pub fn from_env(env: &mut EnvReader) -> Result<GatewaySettings, SettingsError> {
        let settings = GatewaySettings::read(env);
        let reader = std::mem::replace(env, EnvReader::from_map(Default::default()));
        reader.finish()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(pairs: &[(&str, &str)]) -> EnvReader {
        EnvReader::from_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let settings = GatewaySettings::from_env(&mut reader(&[]));
        let Ok(settings) = settings else {
            panic!("defaults must be valid: {settings:?}");
        };
        assert_eq!(settings.http_addr.port(), 8080);
        assert_eq!(settings.limits.max_page_size, 500);
        assert_eq!(settings.cache_ttl, Duration::from_secs(3600));
        assert_eq!(settings.request_body_limit_bytes, 64 * 1024);
        assert_eq!(
            settings.readonly_database_url.expose_secret(),
            settings.connections.database_url.expose_secret()
        );
    }

    #[test]
    fn every_bad_value_is_reported() {
        let result = GatewaySettings::from_env(&mut reader(&[
            ("ALTDATA_HTTP_ADDR", "nowhere"),
            ("ALTDATA_K_ANONYMITY", "0"),
            ("ALTDATA_CACHE_TTL", "soon"),
        ]));
        let message = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("ALTDATA_HTTP_ADDR"), "{message}");
        assert!(message.contains("ALTDATA_K_ANONYMITY"), "{message}");
        assert!(message.contains("ALTDATA_CACHE_TTL"), "{message}");
    }
}
