//! Typed settings read from environment variables, validated once at start.
//!
//! Every role builds its settings through [`EnvReader`], which records each bad or missing
//! value instead of stopping at the first, so an operator sees every mistake in one go.

use secrecy::SecretString;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// All the problems found in the environment, reported together.
#[derive(Debug, thiserror::Error)]
pub struct SettingsError {
    pub problems: Vec<String>,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid settings ({} problem(s)):", self.problems.len())?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

/// Reads settings from a snapshot of the environment and collects every problem.
pub struct EnvReader {
    vars: HashMap<String, String>,
    problems: Vec<String>,
}

impl EnvReader {
    /// A reader over the process environment.
    pub fn from_process() -> EnvReader {
        EnvReader::from_map(std::env::vars().collect())
    }

    /// A reader over an explicit map, for tests and embedded runs.
    pub fn from_map(vars: HashMap<String, String>) -> EnvReader {
        EnvReader {
            vars,
            problems: Vec::new(),
        }
    }

    /// Whether `name` is set (to anything but blanks).
    pub fn is_set(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// A value parsed with `FromStr`, or `default` when unset.
    pub fn parsed<T>(&mut self, name: &str, default: T, expected: &str) -> T
    where
        T: FromStr,
    {
        match self.raw(name) {
            None => default,
            Some(text) => match text.parse() {
                Ok(value) => value,
                Err(_) => {
                    self.problems
                        .push(format!("{name}={text:?} is not valid: expected {expected}"));
                    default
                }
            },
        }
    }

    /// An integer in an inclusive range, or `default` when unset.
    pub fn integer<T>(&mut self, name: &str, default: T, min: T, max: T) -> T
    where
        T: FromStr + PartialOrd + Copy + fmt::Display,
    {
        let value = self.parsed(name, default, &format!("an integer from {min} to {max}"));
        if value < min || value > max {
            self.problems.push(format!(
                "{name}={value} is out of range: expected an integer from {min} to {max}"
            ));
            return default;
        }
        value
    }

    /// A duration such as `500ms`, `2s` or `1m 30s`, or `default` when unset.
    pub fn duration(&mut self, name: &str, default: Duration) -> Duration {
        match self.raw(name) {
            None => default,
            Some(text) => match humantime::parse_duration(text) {
                Ok(value) => value,
                Err(error) => {
                    self.problems.push(format!(
                        "{name}={text:?} is not a duration ({error}): expected e.g. 500ms, 2s, 1m"
                    ));
                    default
                }
            },
        }
    }

    /// A URL whose scheme is one of `schemes`, or `default` when unset.
    pub fn url(&mut self, name: &str, default: &str, schemes: &[&str]) -> String {
        let text = self.raw(name).unwrap_or(default).to_owned();
        self.check_url(name, &text, default, schemes);
        text
    }

    /// A comma-separated list of URLs (the servers of one cluster), each with one of
    /// `schemes`, or `default` when unset.
    pub fn url_list(&mut self, name: &str, default: &str, schemes: &[&str]) -> String {
        let text = self.raw(name).unwrap_or(default).to_owned();
        for part in text.split(',') {
            self.check_url(name, part.trim(), default, schemes);
        }
        text
    }

    fn check_url(&mut self, name: &str, text: &str, default: &str, schemes: &[&str]) {
        match url::Url::parse(text) {
            Ok(url) if schemes.contains(&url.scheme()) => {}
            Ok(url) => self.problems.push(format!(
                "{name} has scheme {:?}: expected one of {schemes:?}",
                url.scheme()
            )),
            // Never echo the value: URLs carry passwords.
            Err(error) => self.problems.push(format!(
                "{name} is not a URL ({error}): expected e.g. {default}"
            )),
        }
    }

    /// A free-form string, or `default` when unset.
    pub fn string(&mut self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or(default).to_owned()
    }

    /// A secret that must be set and at least `min_len` bytes long. Its value is never
    /// printed, not even in an error.
    pub fn secret(&mut self, name: &str, min_len: usize, fallback: Option<&str>) -> SecretString {
        match self.raw(name).or(fallback) {
            Some(text) if text.len() >= min_len => SecretString::from(text.to_owned()),
            Some(_) => {
                self.problems.push(format!(
                    "{name} is too short: expected at least {min_len} bytes (value not shown)"
                ));
                SecretString::from(String::new())
            }
            None => {
                self.problems.push(format!(
                    "{name} is not set: expected a secret of at least {min_len} bytes"
                ));
                SecretString::from(String::new())
            }
        }
    }

    /// Records a problem found by a role's own cross-field checks.
    pub fn problem(&mut self, message: String) {
        self.problems.push(message);
    }

    /// Ends reading: `Ok` only when no problem was recorded.
    pub fn finish(self) -> Result<(), SettingsError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(SettingsError {
                problems: self.problems,
            })
        }
    }
}

/// The namespace of one pipeline: subjects, stream and consumer names, and Redis keys all
/// start with it, so several pipelines (or parallel tests) share one set of servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    /// Lower-case letters, digits and underscores, starting with a letter, at most 32 bytes.
    pub fn parse(text: &str) -> Result<Prefix, String> {
        let valid = !text.is_empty()
            && text.len() <= 32
            && text.as_bytes()[0].is_ascii_lowercase()
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(Prefix(text.to_owned()))
        } else {
            Err(format!(
                "ALTDATA_PREFIX={text:?} is not valid: expected 1-32 lower-case letters, digits or _, starting with a letter"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `<prefix>.<rest>`, e.g. `altdata.txn.v1.3`.
    pub fn subject(&self, rest: &str) -> String {
        format!("{}.{rest}", self.0)
    }

    /// `<PREFIX>_<NAME>`, e.g. `ALTDATA_TXN`.
    pub fn stream(&self, name: &str) -> String {
        format!("{}_{name}", self.0.to_ascii_uppercase())
    }

    /// `<prefix>:<rest>`, for Redis keys.
    pub fn redis_key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.0)
    }
}

impl Default for Prefix {
    fn default() -> Prefix {
        Prefix("altdata".to_owned())
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the shared servers are, and the pipeline's namespace. Every role needs these.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    pub database_url: SecretString,
    pub nats_url: String,
    pub redis_url: String,
    pub prefix: Prefix,
    /// Number of shards of the transaction stream; fixed per deployment.
    pub shard_count: u32,
    /// Size of the PostgreSQL connection pool of this process.
    pub database_pool_size: usize,
    /// Limits of the JetStream streams (created or updated at start).
    pub streams: crate::connect::StreamLimits,
    /// How long one Redis command may take before the gateway answers without the cache.
    pub redis_command_timeout: std::time::Duration,
}

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/altdata";
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:14222";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

impl ConnectionSettings {
    /// The names on NATS of this deployment, with its transaction streams' layout.
    pub fn subjects(&self) -> crate::connect::Subjects {
        crate::connect::Subjects::new(self.prefix.clone())
            .with_txn_streams(self.streams.txn_streams, self.shard_count)
    }

    pub fn read(env: &mut EnvReader) -> ConnectionSettings {
        let database_url = env.url(
            "DATABASE_URL",
            DEFAULT_DATABASE_URL,
            &["postgres", "postgresql"],
        );
        // Several servers of one NATS cluster are separated by commas.
        let nats_url = env.url_list("NATS_URL", DEFAULT_NATS_URL, &["nats", "tls", "ws", "wss"]);
        // `redis-cluster://host:port?node=host:port&node=...` is a Redis Cluster (fred).
        let redis_url = env.url(
            "REDIS_URL",
            DEFAULT_REDIS_URL,
            &["redis", "rediss", "redis-cluster", "rediss-cluster"],
        );
        let prefix_text = env.string("ALTDATA_PREFIX", "altdata");
        let prefix = Prefix::parse(&prefix_text).unwrap_or_else(|problem| {
            env.problem(problem);
            Prefix::default()
        });
        ConnectionSettings {
            database_url: SecretString::from(database_url),
            nats_url,
            redis_url,
            prefix,
            shard_count: env.integer("ALTDATA_SHARDS", 16u32, 1, 1024),
            database_pool_size: env.integer("ALTDATA_DB_POOL_SIZE", 8usize, 1, 256),
            streams: crate::connect::StreamLimits::read(env),
            redis_command_timeout: env.duration(
                "ALTDATA_REDIS_TIMEOUT",
                std::time::Duration::from_millis(500),
            ),
        }
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
    fn every_bad_value_is_reported_at_once() {
        let mut env = reader(&[
            ("DATABASE_URL", "mysql://x"),
            ("ALTDATA_PREFIX", "Bad-Prefix"),
            ("ALTDATA_SHARDS", "0"),
        ]);
        let _ = ConnectionSettings::read(&mut env);
        let error = env
            .finish()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("DATABASE_URL has scheme \"mysql\""),
            "{error}"
        );
        assert!(error.contains("ALTDATA_PREFIX"), "{error}");
        assert!(
            error.contains("ALTDATA_SHARDS=0 is out of range"),
            "{error}"
        );
    }

    #[test]
    fn cluster_urls_are_accepted_and_each_server_is_checked() {
        let mut env = reader(&[
            ("NATS_URL", "nats://127.0.0.1:14231, nats://127.0.0.1:14232"),
            (
                "REDIS_URL",
                "redis-cluster://127.0.0.1:17001?node=127.0.0.1:17002",
            ),
        ]);
        let settings = ConnectionSettings::read(&mut env);
        assert!(env.finish().is_ok());
        assert!(settings.redis_url.starts_with("redis-cluster://"));

        let mut env = reader(&[("NATS_URL", "nats://127.0.0.1:14231,http://x:1")]);
        let _ = ConnectionSettings::read(&mut env);
        let error = env
            .finish()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("NATS_URL has scheme \"http\""), "{error}");
    }

    #[test]
    fn secrets_are_never_echoed() {
        let mut env = reader(&[("ALTDATA_CUSTOMER_KEY_SECRET", "hunter2")]);
        let _ = env.secret("ALTDATA_CUSTOMER_KEY_SECRET", 16, None);
        let error = env
            .finish()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("too short"));
        assert!(!error.contains("hunter2"));
    }

    #[test]
    fn prefix_names_subjects_streams_and_keys() {
        let prefix = Prefix::parse("t_1a").unwrap_or_default();
        assert_eq!(prefix.subject("txn.v1.3"), "t_1a.txn.v1.3");
        assert_eq!(prefix.stream("TXN"), "T_1A_TXN");
        assert_eq!(prefix.redis_key("gen"), "t_1a:gen");
    }
}
