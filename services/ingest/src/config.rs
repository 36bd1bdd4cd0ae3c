//! Ingest settings, read from the environment and validated once at start.

use altdata_common::{ConnectionSettings, EnvReader};
use secrecy::SecretString;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub connections: ConnectionSettings,
    /// The landing zone: a local directory, or an object-store URL (`s3://bucket/prefix`).
    pub landing: String,
    /// Provider of files whose path has no `provider=NAME` segment.
    pub default_provider: String,
    /// How often the landing zone is listed in service mode.
    pub poll_interval: Duration,
    /// Key of the HMAC that turns card ids into customer keys.
    pub customer_key_secret: SecretString,
    /// Publishes awaiting their acknowledgement at once.
    pub publish_window: usize,
    /// Rows between two durable checkpoints of a file.
    pub checkpoint_rows: u64,
    /// Directory of provider profiles (`<provider>.toml`).
    pub profiles_dir: String,
    /// Rows dated more than this many days after today are rejected.
    pub max_future_days: i64,
    /// The restatement horizon: rows dated more than this many days before today are
    /// rejected, and identities older than it are purged from the identity record.
    pub restatement_days: i64,
    /// Longest CSV record (and so line) read, in bytes: a longer one is rejected with its line
    /// without being held, so no file can make ingest's memory grow with it.
    pub max_record_bytes: usize,
    /// Distinct raw descriptors kept in the resolution cache.
    pub resolution_cache_size: usize,
    /// Show a progress bar (`--once` on a terminal).
    pub progress: bool,
    /// Try files the ledger marks failed again (`--retry-failed`); otherwise they are skipped,
    /// with the reason they failed, until their bytes change.
    pub retry_failed: bool,
    pub ops_addr: Option<SocketAddr>,
    pub drain_timeout: Duration,
}

impl IngestSettings {
    pub fn from_env(env: &mut EnvReader) -> IngestSettings {
        let connections = ConnectionSettings::read(env);
        let ops_addr = env.string("ALTDATA_INGEST_OPS_ADDR", "");
        let ops_addr = if ops_addr.is_empty() {
            None
        } else {
            ops_addr.parse().map(Some).unwrap_or_else(|_| {
                env.problem(format!(
                    "ALTDATA_INGEST_OPS_ADDR={ops_addr:?} is not valid: expected host:port"
                ));
                None
            })
        };
        IngestSettings {
            connections,
            landing: env.string("ALTDATA_LANDING", "landing"),
            default_provider: env.string("ALTDATA_PROVIDER", "default"),
            poll_interval: env.duration("ALTDATA_INGEST_POLL", Duration::from_secs(5)),
            customer_key_secret: env.secret("ALTDATA_CUSTOMER_KEY_SECRET", 16, None),
            publish_window: env.integer("ALTDATA_PUBLISH_WINDOW", 4096usize, 1, 65_536),
            checkpoint_rows: env.integer("ALTDATA_CHECKPOINT_ROWS", 100_000u64, 100, 10_000_000),
            profiles_dir: env.string("ALTDATA_PROFILES_DIR", "profiles"),
            max_future_days: env.integer("ALTDATA_MAX_FUTURE_DAYS", 1i64, 0, 365),
            restatement_days: env.integer("ALTDATA_RESTATEMENT_DAYS", 400i64, 1, 3653),
            max_record_bytes: env.integer(
                "ALTDATA_MAX_RECORD_BYTES",
                64 * 1024usize,
                1024,
                64 * 1024 * 1024,
            ),
            resolution_cache_size: env.integer(
                "ALTDATA_RESOLUTION_CACHE",
                500_000usize,
                1_000,
                50_000_000,
            ),
            progress: false,
            retry_failed: false,
            ops_addr,
            drain_timeout: env.duration("ALTDATA_DRAIN_TIMEOUT", Duration::from_secs(20)),
        }
    }
}
