//! One measurement's namespace on the shared servers: a fresh database
//! (`altdata_bench_<rand>`, migrated, catalogue loaded) and a prefix (`bench_<rand>`) for its
//! subjects, streams, consumers and Redis keys. [`Sandbox::cleanup`] drops the database,
//! deletes the streams and the Redis keys. The approach is the integration tests' `spawn_app`.

use altdata_common::connect::{self, StreamLimits, Subjects};
use altdata_common::settings::Prefix;
use anyhow::{anyhow, Context};
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The shared servers, from `.stack/env` (or the defaults).
#[derive(Debug, Clone)]
pub struct Servers {
    pub database_url: String,
    pub nats_url: String,
    pub redis_url: String,
}

impl Servers {
    pub fn from_env() -> Servers {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Servers {
            database_url: var(
                "DATABASE_URL",
                altdata_common::settings::DEFAULT_DATABASE_URL,
            ),
            nats_url: var("NATS_URL", altdata_common::settings::DEFAULT_NATS_URL),
            redis_url: var("REDIS_URL", altdata_common::settings::DEFAULT_REDIS_URL),
        }
    }

    pub fn admin_url(&self) -> String {
        with_database(&self.database_url, "postgres")
    }
}

/// Stream sizes of a sandbox, small enough that several fit the dev server's 20 GB store.
#[derive(Debug, Clone, Copy)]
pub struct StreamBudget {
    pub txn_mb: i64,
    pub agg_mb: i64,
    pub cache_mb: i64,
}

impl StreamBudget {
    /// Room for `events` transaction events (~110 bytes stored each) with a margin.
    pub fn for_events(events: u64) -> StreamBudget {
        let txn_mb = ((events as f64 * 250.0) / 1e6).ceil() as i64;
        StreamBudget {
            txn_mb: txn_mb.clamp(128, 4096),
            agg_mb: (txn_mb / 2).clamp(64, 1024),
            cache_mb: 32,
        }
    }

    pub fn limits(&self) -> StreamLimits {
        const MIB: i64 = 1024 * 1024;
        StreamLimits {
            txn_max_bytes: self.txn_mb * MIB,
            agg_max_bytes: self.agg_mb * MIB,
            cache_max_bytes: self.cache_mb * MIB,
            ..StreamLimits::default()
        }
    }
}

/// A sandbox not yet cleaned up: its database, label and servers (the stack's or the cluster's).
type Live = (String, String, Servers);

/// Sandboxes not yet cleaned up, by prefix, so an interrupted run can still clean up.
static LIVE: Mutex<BTreeMap<String, Live>> = Mutex::new(BTreeMap::new());

pub struct Sandbox {
    pub label: String,
    pub prefix: Prefix,
    pub database: String,
    pub database_url: String,
    pub servers: Servers,
    pub budget: StreamBudget,
    pub subjects: Subjects,
    /// Whether `cleanup` drops the database: not for one attached to (`attach`) or kept.
    pub drops_database: bool,
    cleaned: bool,
}

pub fn random_suffix() -> String {
    let mut rng = rand::thread_rng();
    (0..10)
        .map(|_| char::from(b'a' + rng.gen_range(0..26)))
        .collect()
}

/// A URL on the same server as `base`, naming another database (query string kept).
pub fn with_database(base: &str, database: &str) -> String {
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let (server, rest) = match base[authority_start..].find('/') {
        Some(slash) => base.split_at(authority_start + slash),
        None => (base, ""),
    };
    let query = rest.find('?').map_or("", |q| &rest[q..]);
    format!("{server}/{database}{query}")
}

pub async fn pg_connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL ({url})"))?;
    tokio::spawn(connection);
    Ok(client)
}

impl Sandbox {
    /// A fresh database (migrated, catalogue loaded) and prefix. `with_database` false makes
    /// a prefix only (the bare JetStream limit needs no database).
    pub async fn create(
        label: &str,
        servers: &Servers,
        budget: StreamBudget,
        with_database: bool,
    ) -> anyhow::Result<Sandbox> {
        let suffix = random_suffix();
        let prefix = Prefix::parse(&format!("bench_{suffix}")).map_err(|e| anyhow!(e))?;
        let database = format!("altdata_bench_{suffix}");
        let database_url = self::with_database(&servers.database_url, &database);
        if let Ok(mut live) = LIVE.lock() {
            live.insert(
                prefix.to_string(),
                (
                    if with_database {
                        database.clone()
                    } else {
                        String::new()
                    },
                    label.to_owned(),
                    servers.clone(),
                ),
            );
        }
        let sandbox = Sandbox {
            label: label.to_owned(),
            subjects: Subjects::new(prefix.clone()),
            prefix,
            database: if with_database {
                database
            } else {
                String::new()
            },
            database_url,
            servers: servers.clone(),
            budget,
            drops_database: with_database,
            cleaned: false,
        };
        if with_database {
            let admin = pg_connect(&servers.admin_url()).await?;
            admin
                .batch_execute(&format!("CREATE DATABASE {}", sandbox.database))
                .await
                .context("CREATE DATABASE")?;
            let mut client = pg_connect(&sandbox.database_url).await?;
            altdata_common::migrate::run(&mut client)
                .await
                .map_err(|e| anyhow!("migrations: {e}"))?;
            altdata_common::migrate::load_catalogue(
                &mut client,
                "embedded",
                altdata_domain::catalogue::EMBEDDED_CATALOGUE,
            )
            .await
            .map_err(|e| anyhow!("catalogue: {e}"))?;
        }
        Ok(sandbox)
    }

    /// A fresh prefix on an existing database (one a focused run kept, `BENCH_KEEP_DATABASE`),
    /// migrated to this build's schema; `cleanup` leaves the database in place.
    pub async fn attach(label: &str, servers: &Servers, database: &str) -> anyhow::Result<Sandbox> {
        let mut sandbox =
            Sandbox::create(label, servers, StreamBudget::for_events(0), false).await?;
        sandbox.database = database.to_owned();
        sandbox.database_url = self::with_database(&servers.database_url, database);
        let mut client = pg_connect(&sandbox.database_url).await?;
        altdata_common::migrate::run(&mut client)
            .await
            .map_err(|e| anyhow!("migrations: {e}"))?;
        Ok(sandbox)
    }

    /// Creates (or updates) the three streams with this sandbox's limits.
    pub async fn ensure_streams(&self, js: &async_nats::jetstream::Context) -> anyhow::Result<()> {
        connect::ensure_streams(js, &self.subjects, &self.budget.limits())
            .await
            .map_err(|e| anyhow!("{e}"))
    }

    /// Creates (or updates) the streams of a layout of several transaction streams with
    /// `replicas` replicas each, as the roles would with `ALTDATA_TXN_STREAMS` and
    /// `ALTDATA_STREAM_REPLICAS`.
    pub async fn ensure_streams_with(
        &self,
        js: &async_nats::jetstream::Context,
        shards: u32,
        txn_streams: u32,
        replicas: usize,
    ) -> anyhow::Result<()> {
        let subjects = self.subjects.clone().with_txn_streams(txn_streams, shards);
        let limits = StreamLimits {
            replicas,
            txn_streams,
            ..self.budget.limits()
        };
        connect::ensure_streams(js, &subjects, &limits)
            .await
            .map_err(|e| anyhow!("{e}"))
    }

    /// The environment of a child `altdata` process working in this sandbox.
    pub fn child_env(&self, shards: u32) -> Vec<(String, String)> {
        [
            ("DATABASE_URL", self.database_url.clone()),
            ("NATS_URL", self.servers.nats_url.clone()),
            ("REDIS_URL", self.servers.redis_url.clone()),
            ("ALTDATA_PREFIX", self.prefix.to_string()),
            ("ALTDATA_SHARDS", shards.to_string()),
            (
                "ALTDATA_CUSTOMER_KEY_SECRET",
                "bench-secret-0123456789abcdef".to_owned(),
            ),
            ("ALTDATA_TXN_MAX_MB", self.budget.txn_mb.to_string()),
            ("ALTDATA_AGG_MAX_MB", self.budget.agg_mb.to_string()),
            ("ALTDATA_CACHE_MAX_MB", self.budget.cache_mb.to_string()),
            ("ALTDATA_LOG_FORMAT", "text".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    pub async fn client(&self) -> anyhow::Result<tokio_postgres::Client> {
        pg_connect(&self.database_url).await
    }

    /// Drops the database, deletes the streams and the Redis keys.
    pub async fn cleanup(mut self) {
        let database = if self.drops_database {
            self.database.as_str()
        } else {
            ""
        };
        cleanup_names(&self.servers, &self.prefix, database).await;
        if let Ok(mut live) = LIVE.lock() {
            live.remove(self.prefix.as_str());
        }
        self.cleaned = true;
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !self.cleaned {
            eprintln!(
                "bench: sandbox {} ({}) was not cleaned up explicitly; it is cleaned at exit",
                self.label, self.prefix
            );
        }
    }
}

/// Cleans up every sandbox still registered (after an error or an interrupt), each on the
/// servers it was made on.
pub async fn cleanup_all() {
    let live: Vec<(String, String, Servers)> = LIVE
        .lock()
        .map(|l| {
            l.iter()
                .map(|(p, (d, _, s))| (p.clone(), d.clone(), s.clone()))
                .collect()
        })
        .unwrap_or_default();
    for (prefix, database, servers) in live {
        if let Ok(prefix) = Prefix::parse(&prefix) {
            cleanup_names(&servers, &prefix, &database).await;
        }
    }
    if let Ok(mut live) = LIVE.lock() {
        live.clear();
    }
}

async fn cleanup_names(servers: &Servers, prefix: &Prefix, database: &str) {
    // Every stream the prefix owns (found by subject, the bare-limit `LIMITS` one included)
    // and its Redis keys.
    altdata_common::prefixes::remove(&servers.nats_url, &servers.redis_url, prefix).await;
    if !database.is_empty() {
        if let Ok(admin) = pg_connect(&servers.admin_url()).await {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                .await;
        }
    }
}
