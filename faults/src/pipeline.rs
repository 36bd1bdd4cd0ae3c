//! The pipeline's roles as child processes of the `altdata` binary: ingest (watching the
//! landing dir), two aggregators (A owns every shard, B a few of A's at the same time) and the
//! gateway. All share one environment naming the suite's own servers. In the cluster run
//! (`--cluster`) the two aggregators split the shards by ordinal and a second gateway serves
//! beside the first, all on the local cluster's servers.

use crate::proc::{run_to_end, Proc};
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

/// Shards of the suite's deployment (small, so every shard sees traffic and faults).
pub const SHARDS: u32 = 8;
/// The shards the second aggregator claims; aggregator A owns them too.
pub const AGG_B_SHARDS: &str = "0-2";
/// The prefix of the suite's own servers; the cluster run names one per run (its servers are
/// shared and outlive it).
pub const PREFIX: &str = "faults";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Ingest,
    AggregatorA,
    AggregatorB,
    Gateway,
    /// The cluster run's second gateway (its own HTTP port, the same Redis and invalidator).
    GatewayB,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::AggregatorA => "aggregator-a",
            Role::AggregatorB => "aggregator-b",
            Role::Gateway => "gateway",
            Role::GatewayB => "gateway-b",
        }
    }

    fn args(self) -> Vec<String> {
        match self {
            Role::Ingest => vec!["ingest".into()],
            Role::AggregatorA | Role::AggregatorB => vec!["aggregate".into()],
            Role::Gateway | Role::GatewayB => vec!["gateway".into()],
        }
    }
}

pub struct Pipeline {
    pub binary: PathBuf,
    repo: PathBuf,
    logs: PathBuf,
    env: Vec<(String, String)>,
    pub procs: BTreeMap<Role, Proc>,
    pub http_port: u16,
    /// The second gateway's port (cluster run).
    pub http_port_b: u16,
    /// `ALTDATA_PREFIX` of every role: streams, subjects and Redis keys start with it.
    pub prefix: String,
    /// Aggregators A and B split the shards by ordinal (cluster run) instead of A owning
    /// every shard and B a few of them at the same time.
    pub split_aggregators: bool,
    /// Roles that ended without being told to, and were started again.
    pub unexpected_exits: Vec<String>,
}

pub struct Urls {
    pub database: String,
    pub nats: String,
    pub redis: String,
}

impl Pipeline {
    pub fn new(
        repo: &Path,
        altdata: &Path,
        logs: &Path,
        landing: &Path,
        urls: &Urls,
        http_port: u16,
        prefix: &str,
    ) -> Pipeline {
        let env: Vec<(String, String)> = [
            ("DATABASE_URL", urls.database.clone()),
            ("NATS_URL", urls.nats.clone()),
            ("REDIS_URL", urls.redis.clone()),
            ("ALTDATA_PREFIX", prefix.to_owned()),
            ("ALTDATA_SHARDS", SHARDS.to_string()),
            (
                "ALTDATA_CUSTOMER_KEY_SECRET",
                "faults-secret-0123456789abcdef".to_owned(),
            ),
            ("ALTDATA_LANDING", landing.display().to_string()),
            ("ALTDATA_INGEST_POLL", "500ms".to_owned()),
            // Checkpoints inside every file, so a killed ingest resumes mid-file.
            ("ALTDATA_CHECKPOINT_ROWS", "1000".to_owned()),
            ("ALTDATA_PUBLISH_WINDOW", "512".to_owned()),
            ("ALTDATA_TXN_MAX_MB", "512".to_owned()),
            ("ALTDATA_AGG_MAX_MB", "64".to_owned()),
            ("ALTDATA_CACHE_MAX_MB", "32".to_owned()),
            ("ALTDATA_AGG_PIN_TTL", "2s".to_owned()),
            ("ALTDATA_AGG_ACK_WAIT", "5s".to_owned()),
            // Small, frequent flushes: more commits for a SIGKILL to land between.
            ("ALTDATA_AGG_WINDOW_AGE", "250ms".to_owned()),
            ("ALTDATA_AGG_WINDOW_EVENTS", "2000".to_owned()),
            ("ALTDATA_AGG_PULL_BATCH", "500".to_owned()),
            ("ALTDATA_RATE_LIMIT_PER_SECOND", "10000".to_owned()),
            ("ALTDATA_RATE_LIMIT_BURST", "10000".to_owned()),
            ("ALTDATA_DRAIN_TIMEOUT", "5s".to_owned()),
            // The generator's re-sends restate whole days: its profile says so.
            (
                "ALTDATA_PROFILES_DIR",
                landing
                    .parent()
                    .unwrap_or(landing)
                    .join("staging/_profiles")
                    .display()
                    .to_string(),
            ),
            (
                "ALTDATA_WEB_DIR",
                repo.join("web/dist").display().to_string(),
            ),
            ("ALTDATA_HTTP_ADDR", format!("127.0.0.1:{http_port}")),
            ("RUST_LOG", "info".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Pipeline {
            binary: altdata.to_path_buf(),
            repo: repo.to_path_buf(),
            logs: logs.to_path_buf(),
            env,
            procs: BTreeMap::new(),
            http_port,
            http_port_b: 0,
            prefix: prefix.to_owned(),
            split_aggregators: false,
            unexpected_exits: Vec::new(),
        }
    }

    /// A one-shot `altdata` command; returns its stdout.
    pub async fn run(&self, args: &[&str], log: &str) -> anyhow::Result<String> {
        run_to_end(
            &self.binary,
            args,
            &self.env,
            &self.repo,
            &self.logs.join(log),
            None,
        )
        .await
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.run(&["migrate"], "migrate.log").await?;
        // Every cell released, so gateway answers can be compared with SQL to the cent.
        self.run(&["disclosure", "--k", "1"], "disclosure.log")
            .await
            .map(|_| ())
    }

    /// An analyst key (the last line `altdata keys create` prints).
    pub async fn create_key(&self) -> anyhow::Result<String> {
        let out = self
            .run(
                &["keys", "create", "--role", "analyst", "--name", "faults"],
                "keys.log",
            )
            .await?;
        out.lines()
            .last()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .context("`altdata keys create` printed no key")
    }

    /// Sets (or replaces) a variable of every role started from now on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    fn proc_for(&mut self, role: Role) -> &mut Proc {
        let mut env = self.env.clone();
        match role {
            Role::AggregatorA | Role::AggregatorB if self.split_aggregators => {
                let ordinal = if role == Role::AggregatorA { 0 } else { 1 };
                env.push(("HOSTNAME".into(), format!("aggregator-{ordinal}")));
                env.push(("ALTDATA_AGG_REPLICAS".into(), "2".into()));
                env.push((
                    "ALTDATA_AGG_ORDINAL".into(),
                    format!("aggregator-{ordinal}"),
                ));
            }
            Role::AggregatorA => env.push(("HOSTNAME".into(), "agg-a".into())),
            Role::AggregatorB => {
                env.push(("HOSTNAME".into(), "agg-b".into()));
                env.push(("ALTDATA_AGG_SHARDS".into(), AGG_B_SHARDS.into()));
            }
            Role::Ingest => env.push(("HOSTNAME".into(), "ingest".into())),
            Role::Gateway => env.push(("HOSTNAME".into(), "gateway".into())),
            Role::GatewayB => {
                env.push(("HOSTNAME".into(), "gateway-b".into()));
                env.push((
                    "ALTDATA_HTTP_ADDR".into(),
                    format!("127.0.0.1:{}", self.http_port_b),
                ));
            }
        }
        let (binary, repo, log) = (
            self.binary.clone(),
            self.repo.clone(),
            self.logs.join(format!("{}.log", role.name())),
        );
        self.procs
            .entry(role)
            .or_insert_with(|| Proc::new(role.name(), binary, role.args(), env, &repo, log, None))
    }

    pub fn start(&mut self, role: Role) -> anyhow::Result<u32> {
        self.proc_for(role).start()
    }

    pub fn is_running(&mut self, role: Role) -> bool {
        self.procs.get_mut(&role).is_some_and(|p| p.is_running())
    }

    pub fn pid(&self, role: Role) -> Option<u32> {
        self.procs.get(&role).and_then(|p| p.pid())
    }

    pub fn log(&self, role: Role) -> PathBuf {
        self.logs.join(format!("{}.log", role.name()))
    }

    /// SIGKILL, and reap.
    pub async fn kill(&mut self, role: Role) -> Option<ExitStatus> {
        match self.procs.get_mut(&role) {
            Some(proc) => proc.stop(libc::SIGKILL, Duration::from_secs(5)).await,
            None => None,
        }
    }

    /// SIGTERM (graceful: flush and ack), SIGKILL after `grace`.
    pub async fn terminate(&mut self, role: Role, grace: Duration) -> Option<ExitStatus> {
        match self.procs.get_mut(&role) {
            Some(proc) => proc.stop(libc::SIGTERM, grace).await,
            None => None,
        }
    }

    /// Restarts every started role that ended by itself; records each such exit.
    pub fn supervise(&mut self) -> Vec<Role> {
        let mut restarted = Vec::new();
        for (role, proc) in self.procs.iter_mut() {
            if proc.starts == 0 {
                continue;
            }
            if let Some(status) = proc.exited() {
                let what = format!(
                    "{} exited by itself ({status}) at +{:.1}s",
                    role.name(),
                    crate::util::elapsed()
                );
                crate::say!("{what}; starting it again");
                self.unexpected_exits.push(what);
                if proc.start().is_ok() {
                    restarted.push(*role);
                }
            }
        }
        restarted
    }
}
