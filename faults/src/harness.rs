//! Everything one run owns: its temp dir, its three servers and the pipeline's processes.
//! Dropping the [`Harness`] kills the roles, then the servers, then removes the temp dir, on
//! success, failure, panic or Ctrl-C alike (set `FAULTS_KEEP=1` to keep the dir for a post
//! mortem).

use crate::pipeline::{Pipeline, Role, Urls};
use crate::servers::{Nats, Postgres, Redis};
use crate::util::free_port;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// The run's temp dir under /tmp (reachable by the postgres user), removed on drop.
pub struct RunDir {
    pub path: PathBuf,
    keep: bool,
}

impl RunDir {
    pub fn create(seed: u64) -> anyhow::Result<RunDir> {
        let path =
            std::env::temp_dir().join(format!("altdata-faults-{}-{seed}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir_all(path.join("logs"))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(RunDir {
            path,
            keep: std::env::var("FAULTS_KEEP").is_ok_and(|v| v == "1"),
        })
    }

    pub fn logs(&self) -> PathBuf {
        self.path.join("logs")
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.keep {
            println!("faults: kept {} (FAULTS_KEEP=1)", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Field order is drop order: roles first, then servers, then the directory. In the cluster
/// run NATS and Redis are the local cluster's (`make cluster`), not the suite's: `nats` and
/// `redis` are `None` and nothing of the cluster is stopped on drop.
pub struct Harness {
    pub pipeline: Pipeline,
    pub nats: Option<Nats>,
    pub postgres: Postgres,
    pub redis: Option<Redis>,
    pub jetstream: async_nats::jetstream::Context,
    pub api_key: String,
    pub staging: PathBuf,
    pub landing: PathBuf,
    pub dir: RunDir,
}

impl Harness {
    /// Starts the servers, migrates, creates a key. The roles are started by the caller.
    pub async fn start(repo: &Path, altdata: &Path, seed: u64) -> anyhow::Result<Harness> {
        let dir = RunDir::create(seed)?;
        let logs = dir.logs();
        crate::say!("run dir {}", dir.path.display());
        let mut taken = Vec::new();
        let mut port = || -> anyhow::Result<u16> {
            let p = free_port(&taken)?;
            taken.push(p);
            Ok(p)
        };
        let (nats_port, monitor_port, pg_port, redis_port, http_port) =
            (port()?, port()?, port()?, port()?, port()?);

        let nats = Nats::start_new(
            &repo.join(".stack/venv/bin/nats-server"),
            &dir.path.join("nats"),
            &logs,
            nats_port,
            monitor_port,
        )
        .await
        .context("starting nats-server")?;
        crate::say!(
            "nats-server on 127.0.0.1:{nats_port} (store {}/nats)",
            dir.path.display()
        );
        let postgres = Postgres::start_new(&dir.path.join("pg"), &logs, pg_port)
            .await
            .context("starting PostgreSQL")?;
        crate::say!(
            "PostgreSQL 15 on 127.0.0.1:{pg_port} (fresh cluster {}/pg)",
            dir.path.display()
        );
        let redis = Redis::start_new(&dir.path.join("redis"), &logs, redis_port)
            .await
            .context("starting Redis")?;
        crate::say!("redis-server on 127.0.0.1:{redis_port}");

        let landing = dir.path.join("landing");
        let staging = dir.path.join("staging");
        std::fs::create_dir_all(landing.join("provider=default"))?;
        let urls = Urls {
            database: postgres.url("altdata"),
            nats: nats.url(),
            redis: redis.url(),
        };
        let pipeline = Pipeline::new(
            repo,
            altdata,
            &logs,
            &landing,
            &urls,
            http_port,
            crate::pipeline::PREFIX,
        );
        pipeline.migrate().await.context("altdata migrate")?;
        let api_key = pipeline.create_key().await.context("altdata keys create")?;
        let jetstream = jetstream_of(&[nats.url()]).await?;
        Ok(Harness {
            pipeline,
            nats: Some(nats),
            postgres,
            redis: Some(redis),
            jetstream,
            api_key,
            staging,
            landing,
            dir,
        })
    }

    /// The cluster run's harness: its own PostgreSQL (a fresh cluster, as in every run), the
    /// local cluster's NATS and Redis, a prefix of its own (the cluster outlives the run), the
    /// shards over `txn_streams` R3 streams, two gateways.
    pub async fn start_cluster(
        repo: &Path,
        altdata: &Path,
        seed: u64,
        cluster: &crate::cluster::ClusterEnv,
        txn_streams: u32,
    ) -> anyhow::Result<Harness> {
        let dir = RunDir::create(seed)?;
        let logs = dir.logs();
        crate::say!("run dir {}", dir.path.display());
        let mut taken = Vec::new();
        let mut port = || -> anyhow::Result<u16> {
            let p = free_port(&taken)?;
            taken.push(p);
            Ok(p)
        };
        let (pg_port, http_port, http_port_b) = (port()?, port()?, port()?);
        let postgres = Postgres::start_new(&dir.path.join("pg"), &logs, pg_port)
            .await
            .context("starting PostgreSQL")?;
        crate::say!(
            "PostgreSQL 15 on 127.0.0.1:{pg_port} (fresh cluster {}/pg)",
            dir.path.display()
        );
        let landing = dir.path.join("landing");
        let staging = dir.path.join("staging");
        std::fs::create_dir_all(landing.join("provider=default"))?;
        let urls = Urls {
            database: postgres.url("altdata"),
            nats: cluster.nats_url.clone(),
            redis: cluster.redis_url.clone(),
        };
        let prefix = format!("fc{seed}");
        let mut pipeline = Pipeline::new(repo, altdata, &logs, &landing, &urls, http_port, &prefix);
        pipeline.http_port_b = http_port_b;
        pipeline.split_aggregators = true;
        pipeline.set_env("ALTDATA_TXN_STREAMS", &txn_streams.to_string());
        pipeline.set_env("ALTDATA_STREAM_REPLICAS", "3");
        pipeline.migrate().await.context("altdata migrate")?;
        let api_key = pipeline.create_key().await.context("altdata keys create")?;
        let jetstream = jetstream_of(&cluster.nats_servers()).await?;
        crate::say!(
            "cluster: NATS {}, Redis {}, prefix {prefix}",
            cluster.nats_url,
            cluster.redis_url
        );
        Ok(Harness {
            pipeline,
            nats: None,
            postgres,
            redis: None,
            jetstream,
            api_key,
            staging,
            landing,
            dir,
        })
    }

    /// A fresh connection to the pipeline's database (the server may have restarted).
    pub async fn db(&self) -> anyhow::Result<tokio_postgres::Client> {
        let (client, connection) =
            tokio_postgres::connect(&self.postgres.url("altdata"), tokio_postgres::NoTls)
                .await
                .context("connecting to the suite's PostgreSQL")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// The log of a role or server, for failure reports.
    pub fn log_of(&self, name: &str) -> PathBuf {
        self.dir.logs().join(format!("{name}.log"))
    }

    pub fn print_tails(&self, names: &[&str], lines: usize) {
        for name in names {
            let path = self.log_of(name);
            println!("--- last {lines} lines of {} ---", path.display());
            println!("{}", crate::util::tail(&path, lines));
        }
    }

    pub fn all_roles() -> [Role; 5] {
        [
            Role::Ingest,
            Role::AggregatorA,
            Role::AggregatorB,
            Role::Gateway,
            Role::GatewayB,
        ]
    }
}

/// A JetStream context on one server, or on any of a cluster's (the client follows it).
async fn jetstream_of(servers: &[String]) -> anyhow::Result<async_nats::jetstream::Context> {
    let addrs = servers
        .iter()
        .map(|s| s.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .context("a NATS URL")?;
    let client = async_nats::ConnectOptions::new()
        .name("altdata-faults")
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connect(addrs)
        .await
        .context("connecting to NATS")?;
    Ok(async_nats::jetstream::new(client))
}
