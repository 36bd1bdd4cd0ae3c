//! The cluster run (`altdata-faults --cluster`, `make cluster-test`): the pipeline on the local
//! cluster of `make cluster` (3 nats-servers, JetStream R3; a Redis Cluster of 3 masters and 3
//! replicas) with the shards over three R3 transaction streams, two aggregators splitting the
//! shards by ordinal and two gateways. While provider files arrive it SIGKILLs, one after the
//! other, the nats-server leading a transaction stream, the Redis master holding the
//! `{all}` answers, and an aggregator; it restarts each and measures its failover. Then it
//! checks conservation against the generator's ground truth, and that an answer cached before
//! new data is not served after it.
//!
//! The cluster's servers are not the suite's: they are found in `.stack/cluster.env`, killed and
//! restarted only through `scripts/cluster.sh` (pidfile-checked), and left as they were found
//! (a killed Redis master is made master again once it has rejoined as a replica). The run
//! uses a prefix of its own (`fc<seed>`) and deletes its streams and Redis keys at the end.

use crate::checks::{self, Check};
use crate::config::Settings;
use crate::harness::Harness;
use crate::pipeline::{Pipeline, Role, SHARDS};
use crate::report::{Failover, Report};
use crate::say;
use crate::traffic::{self, ProbeStats, Target};
use anyhow::{bail, Context};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Transaction streams the shards are spread over (`ALTDATA_TXN_STREAMS`).
pub const TXN_STREAMS: u32 = 3;
/// How long a failover may take before it counts as not recovered.
const FAILOVER_DEADLINE: Duration = Duration::from_secs(60);
/// How long an aggregator stays dead before its restart (a pod's restart, roughly).
const AGGREGATOR_DOWN: Duration = Duration::from_secs(1);
/// The span over which the provider files arrive.
const DROP_SPAN: Duration = Duration::from_secs(75);

/// What `scripts/cluster.sh up` wrote into `.stack/cluster.env`.
#[derive(Debug, Clone)]
pub struct ClusterEnv {
    pub nats_url: String,
    pub redis_url: String,
    /// `127.0.0.1:PORT` of redis-1..redis-6, in order.
    pub redis_nodes: Vec<String>,
    /// Monitoring ports of nats-1..nats-3 (`/healthz`).
    pub nats_monitor_ports: Vec<u16>,
    pub script: PathBuf,
    pub repo: PathBuf,
    log: PathBuf,
}

impl ClusterEnv {
    pub fn read(repo: &Path) -> anyhow::Result<ClusterEnv> {
        let stack = match std::env::var("ALTDATA_STACK_DIR") {
            Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => repo.join(".stack"),
        };
        let path = stack.join("cluster.env");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} is missing: start the local cluster first (`make cluster`)",
                path.display()
            )
        })?;
        let mut vars = BTreeMap::new();
        for line in text.lines() {
            let Some(assignment) = line.trim().strip_prefix("export ") else {
                continue;
            };
            if let Some((key, value)) = assignment.split_once('=') {
                let value = value.trim().trim_matches(|c| c == '\'' || c == '"');
                vars.insert(key.trim().to_owned(), value.to_owned());
            }
        }
        let var = |key: &str| {
            vars.get(key)
                .cloned()
                .with_context(|| format!("{} has no {key}", path.display()))
        };
        Ok(ClusterEnv {
            nats_url: var("NATS_URL")?,
            redis_url: var("REDIS_URL")?,
            redis_nodes: var("ALTDATA_CLUSTER_REDIS_NODES")?
                .split(',')
                .map(str::to_owned)
                .collect(),
            nats_monitor_ports: var("ALTDATA_CLUSTER_NATS_MONITOR")?
                .split(',')
                .filter_map(|url| url.rsplit(':').next()?.trim_end_matches('/').parse().ok())
                .collect(),
            script: repo.join("scripts/cluster.sh"),
            repo: repo.to_path_buf(),
            log: PathBuf::new(),
        })
    }

    pub fn nats_servers(&self) -> Vec<String> {
        self.nats_url.split(',').map(str::to_owned).collect()
    }

    /// `nats-N` for the server named `altdata_cN` (scripts/cluster.sh names them so).
    fn nats_node(server_name: &str) -> anyhow::Result<String> {
        server_name
            .strip_prefix("altdata_c")
            .filter(|n| n.parse::<u32>().is_ok())
            .map(|n| format!("nats-{n}"))
            .with_context(|| format!("{server_name:?} is not a server of scripts/cluster.sh"))
    }

    /// `redis-N` for the node on `port`.
    fn redis_node(&self, port: u16) -> anyhow::Result<String> {
        self.redis_nodes
            .iter()
            .position(|node| node.ends_with(&format!(":{port}")))
            .map(|i| format!("redis-{}", i + 1))
            .with_context(|| format!("no Redis node of the cluster on port {port}"))
    }

    fn redis_port(&self, node: &str) -> Option<u16> {
        let index: usize = node.strip_prefix("redis-")?.parse().ok()?;
        self.redis_nodes
            .get(index.checked_sub(1)?)?
            .rsplit(':')
            .next()?
            .parse()
            .ok()
    }

    /// `bash scripts/cluster.sh ARGS`, its output appended to the run's cluster.log.
    async fn script(&self, args: &[&str]) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let status = tokio::process::Command::new("bash")
            .arg(&self.script)
            .args(args)
            .current_dir(&self.repo)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .await
            .context("running scripts/cluster.sh")?;
        if !status.success() {
            bail!(
                "`scripts/cluster.sh {}` failed ({status}):\n{}",
                args.join(" "),
                crate::util::tail(&self.log, 10)
            );
        }
        Ok(())
    }
}

impl ClusterEnv {
    /// `cluster.sh up` after a kill: restarts the node and verifies the cluster. A restarted
    /// nats-server's `/healthz` can turn unhealthy again while it catches up on its streams,
    /// which fails `up`'s second look; then wait (with a deadline) until every server is
    /// healthy and run `up` once more.
    async fn restart(&self) -> anyhow::Result<()> {
        let first = match self.script(&["up"]).await {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        say!("`cluster.sh up` failed once; waiting for every nats-server's /healthz, then again");
        let ports = self.nats_monitor_ports.clone();
        crate::util::wait_until(
            "every nats-server healthy",
            FAILOVER_DEADLINE,
            Duration::from_millis(200),
            || {
                let ports = ports.clone();
                async move {
                    for port in ports {
                        let healthy =
                            crate::http::get(port, "/healthz", &[], Duration::from_secs(2))
                                .await
                                .is_ok_and(|r| r.status == 200);
                        if !healthy {
                            return false;
                        }
                    }
                    true
                }
            },
        )
        .await
        .with_context(|| format!("after: {first:#}"))?;
        self.script(&["up"]).await
    }
}

/// `redis-cli -h 127.0.0.1 -p PORT ARGS`, its stdout (errors as `Err`).
async fn redis_cli(port: u16, args: &[&str]) -> anyhow::Result<String> {
    let output = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::process::Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await
    .context("redis-cli timed out")??;
    let text = String::from_utf8_lossy(&output.stdout).replace('\r', "");
    if !output.status.success() || text.starts_with("Could not connect") {
        bail!("redis-cli -p {port} {}: {text}", args.join(" "));
    }
    Ok(text)
}

/// One line of CLUSTER NODES: (port, flags, master id or `-`, slot ranges).
struct RedisNode {
    port: u16,
    master: bool,
    failed: bool,
    slots: Vec<(u16, u16)>,
}

async fn redis_nodes(cluster: &ClusterEnv, skip: Option<u16>) -> anyhow::Result<Vec<RedisNode>> {
    let mut last_error = None;
    for node in &cluster.redis_nodes {
        let Some(port) = node.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()) else {
            continue;
        };
        if Some(port) == skip {
            continue;
        }
        match redis_cli(port, &["cluster", "nodes"]).await {
            Ok(text) => {
                return Ok(text
                    .lines()
                    .filter_map(|line| {
                        let fields: Vec<&str> = line.split_whitespace().collect();
                        let port = fields
                            .get(1)?
                            .split('@')
                            .next()?
                            .rsplit(':')
                            .next()?
                            .parse()
                            .ok()?;
                        let flags = fields.get(2)?;
                        let slots = fields
                            .iter()
                            .skip(8)
                            .filter_map(|range| {
                                let (a, b) = range.split_once('-').unwrap_or((range, range));
                                Some((a.parse().ok()?, b.parse().ok()?))
                            })
                            .collect();
                        Some(RedisNode {
                            port,
                            master: flags.contains("master"),
                            failed: flags.contains("fail"),
                            slots,
                        })
                    })
                    .collect())
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no Redis node answered")))
}

/// Polls `check` every 100 ms until it is true, within `deadline` of `since`, restarting any
/// role that died by itself meanwhile; returns the seconds since `since`.
async fn time_until<F, Fut>(
    what: &str,
    since: Instant,
    deadline: Duration,
    pipeline: &mut Pipeline,
    mut check: F,
) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        pipeline.supervise();
        if check().await {
            return Ok(since.elapsed().as_secs_f64());
        }
        if since.elapsed() >= deadline {
            bail!("{what}: not within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn phases(
    settings: &Settings,
    report: &mut Report,
    slot: &mut Option<Harness>,
) -> anyhow::Result<()> {
    let mut cluster = ClusterEnv::read(&settings.repo)?;
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    say!(
        "seed {} (cluster run), {} days x {} cards, shards over {TXN_STREAMS} R3 streams",
        settings.seed,
        settings.days,
        settings.cards
    );
    let setup_started = Instant::now();
    let harness = slot.insert(
        Harness::start_cluster(
            &settings.repo,
            &settings.altdata,
            settings.seed,
            &cluster,
            TXN_STREAMS,
        )
        .await?,
    );
    cluster.log = harness.dir.logs().join("cluster.log");

    let staging = harness.staging.display().to_string();
    harness
        .pipeline
        .run(
            &[
                "generate",
                "--days",
                &settings.days.to_string(),
                "--cards",
                &settings.cards.to_string(),
                "--seed",
                &settings.seed.to_string(),
                "--out",
                &staging,
                "--truth-detail",
                "--resends",
                &(settings.days / 3).max(1).to_string(),
            ],
            "generate.log",
        )
        .await?;
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(harness.staging.join("_truth/summary.json")).context("summary.json")?,
    )?;
    let mut files = traffic::staged_files(&harness.staging)?;
    if files.len() < 5 {
        bail!("only {} files generated: raise FAULTS_DAYS", files.len());
    }
    // The last file is held back: it is the data change of the stale-answer check. The one
    // before arrives while an aggregator is dead.
    let held_back = files.pop().context("no file")?;
    let during_aggregator_kill = files.pop().context("no file")?;
    say!(
        "generated {} rows in {} files ({} valid); the last is held back for the invalidation check",
        summary["rows"],
        files.len() + 2,
        summary["valid_rows"]
    );
    let targets = crate::run::targets(&harness.staging, &mut rng)?;
    let start = summary["start"].as_str().unwrap_or("2025-01-01").to_owned();
    let from = (chrono::NaiveDate::parse_from_str(&start, "%Y-%m-%d")? - chrono::Duration::days(7))
        .format("%Y-%m-%d")
        .to_string();
    let to = (chrono::Utc::now().date_naive() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();

    // Ingest first: it creates the R3 streams, which several roles creating them at once on a
    // loaded machine time out on (and exit); the others start once the streams exist.
    let pid = harness.pipeline.start(Role::Ingest)?;
    say!("started ingest (pid {pid})");
    let (js, prefix) = (&harness.jetstream, harness.pipeline.prefix.clone());
    let prefix = &prefix;
    time_until(
        "the transaction streams",
        Instant::now(),
        Duration::from_secs(120),
        &mut harness.pipeline,
        || async move {
            checks::txn_stream_names(js, prefix)
                .await
                .is_ok_and(|names| names.len() == TXN_STREAMS as usize)
        },
    )
    .await?;
    for role in [
        Role::AggregatorA,
        Role::AggregatorB,
        Role::Gateway,
        Role::GatewayB,
    ] {
        let pid = harness.pipeline.start(role)?;
        say!("started {} (pid {pid})", role.name());
    }
    let ports = [harness.pipeline.http_port, harness.pipeline.http_port_b];
    for port in ports {
        time_until(
            "a gateway",
            Instant::now(),
            Duration::from_secs(120),
            &mut harness.pipeline,
            || async move {
                crate::http::get(port, "/healthz", &[], Duration::from_secs(1))
                    .await
                    .is_ok_and(|r| r.status == 200)
            },
        )
        .await?;
    }
    let streams = checks::txn_stream_names(&harness.jetstream, &harness.pipeline.prefix).await?;
    say!("streams {streams:?}; both gateways healthy");
    report
        .timings
        .push(("setup", setup_started.elapsed().as_secs_f64()));

    // ---------------------------------------------------------------- fault phase
    let n = files.len();
    let drops: Vec<Duration> = (0..n)
        .map(|i| DROP_SPAN * i as u32 / n as u32 + Duration::from_secs(1))
        .collect();
    // Each kill comes right after a file arrived, so data is in flight while it fails over.
    let kill_after_drop = [n / 3 + 1, (2 * n) / 3 + 1, n].map(|k| k.min(n));
    say!(
        "fault phase: {n} files over {:.0}s; kills after drops {kill_after_drop:?}",
        DROP_SPAN.as_secs_f64()
    );
    let phase_started = Instant::now();
    let dropped = Rc::new(RefCell::new(Vec::new()));
    let (drop_tx, drop_rx) = watch::channel(0usize);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stats = Rc::new(RefCell::new(ProbeStats::default()));
    let probe_paths: Vec<String> = targets
        .iter()
        .flat_map(|t| {
            [
                t.query("spend", &from, &to),
                t.query("transactions", &from, &to),
            ]
        })
        .collect();
    let dropper = traffic::drop_files(
        files.clone(),
        harness.landing.clone(),
        drops,
        phase_started,
        dropped,
        drop_tx,
    );
    let probers = futures::future::join(
        traffic::probe_gateway(
            ports[0],
            harness.api_key.clone(),
            probe_paths.clone(),
            stop_rx.clone(),
            stats.clone(),
        ),
        traffic::probe_gateway(
            ports[1],
            harness.api_key.clone(),
            probe_paths,
            stop_rx,
            stats.clone(),
        ),
    );
    let all_path = Target::All.query("spend", &from, &to);
    let injector = async {
        let mut failovers = Vec::new();
        for (i, after) in kill_after_drop.iter().enumerate() {
            let mut drops = drop_rx.clone();
            // The guard `wait_for` returns is dropped at once: held, it blocks the dropper.
            let arrived = tokio::time::timeout(
                Duration::from_secs(30),
                drops.wait_for(|count| *count >= *after),
            )
            .await
            .is_ok_and(|r| r.is_ok());
            if !arrived {
                say!("file {after} did not arrive within 30s; killing anyway");
            }
            harness.pipeline.supervise();
            let at = crate::util::elapsed();
            let outcome = match i {
                0 => kill_stream_leader(harness, &cluster, &streams, &mut rng).await,
                1 => kill_redis_master(harness, &cluster, &all_path).await,
                _ => kill_aggregator(harness, &during_aggregator_kill).await,
            };
            let failover = match outcome {
                Ok(failover) => failover,
                Err(error) => Failover {
                    what: ["nats stream leader", "redis master", "aggregator"][i].to_owned(),
                    at,
                    survived: false,
                    seconds: None,
                    note: format!("{error:#}"),
                },
            };
            say!(
                "  -> {}: {}",
                if failover.survived {
                    "ok"
                } else {
                    "NOT RECOVERED"
                },
                failover.note
            );
            failovers.push(failover);
        }
        let _ = stop_tx.send(true);
        failovers
    };
    let (dropped_result, _, failovers) = tokio::join!(dropper, probers, injector);
    dropped_result.context("dropping files")?;
    report.failovers = failovers;
    report
        .timings
        .push(("fault phase", phase_started.elapsed().as_secs_f64()));
    report.notes.push(format!(
        "gateway answers during the fault phase, both gateways (X-Cache or error): {:?}",
        stats.borrow().outcomes
    ));

    // ---------------------------------------------------------------- settle
    let settle_started = Instant::now();
    say!("kills done; waiting for the pipeline to settle");
    let expect = crate::settle::Files {
        done: n + 1,
        failed: 0,
    };
    crate::settle::settle(harness, expect, 0, Duration::from_secs(180)).await?;
    say!("settled in {:.1}s", settle_started.elapsed().as_secs_f64());

    // ---------------------------------------------------------------- stale answers
    // Ask both gateways (twice: the second answer comes from the cache), then change the data
    // (the held-back file), let it flow, and ask again: every answer must equal SQL, and the
    // answers that the new file touches must have changed.
    let before = answers(harness, &ports, &targets, &from, &to).await?;
    let cached = before.values().filter(|(_, cache)| cache == "hit").count();
    let name = held_back.file_name().context("file name")?.to_owned();
    std::fs::rename(
        &held_back,
        harness.landing.join("provider=default").join(&name),
    )?;
    say!(
        "asked {} questions ({cached} answered from the cache); dropped the held-back file {}",
        before.len(),
        name.to_string_lossy()
    );
    let expect = crate::settle::Files {
        done: n + 2,
        failed: 0,
    };
    crate::settle::settle(harness, expect, 0, Duration::from_secs(120)).await?;
    let after = answers(harness, &ports, &targets, &from, &to).await?;
    let changed = before
        .iter()
        .filter(|(key, (body, _))| after.get(*key).is_some_and(|(b, _)| b != body))
        .count();
    let all_changed = before
        .iter()
        .filter(|((_, path), _)| {
            path.contains("metric=spend")
                && !path.contains("merchant=")
                && !path.contains("category=")
        })
        .all(|(key, (body, _))| after.get(key).is_some_and(|(b, _)| b != body));
    report
        .timings
        .push(("settle", settle_started.elapsed().as_secs_f64()));

    // ---------------------------------------------------------------- checks
    let checks_started = Instant::now();
    let stream = checks::read_stream(harness, &[]).await?;
    let mut results = checks::check_all(harness, &summary, &[], &stream).await?;
    results.push(Check::new(
        "the new file changed the answers cached before it (both gateways)",
        all_changed && changed > 0 && cached > 0,
        format!(
            "{changed} of {} answers changed ({cached} were cache hits before the file); the all-merchants spend changed on both gateways: {all_changed}",
            before.len()
        ),
    ));
    for port in ports {
        let mut check = checks::check_gateway(harness, port, &targets, &from, &to).await?;
        check.detail = format!("gateway on :{port}: {}", check.detail);
        results.push(check);
    }
    report
        .timings
        .push(("checks", checks_started.elapsed().as_secs_f64()));
    report.timings.push(("total", crate::util::elapsed()));
    let failed_any = results.iter().any(|c| !c.ok);
    report.checks = results;
    for exit in &harness.pipeline.unexpected_exits {
        report.notes.push(format!("unexpected exit: {exit}"));
    }
    if failed_any {
        harness.print_tails(
            &[
                "ingest",
                "aggregator-a",
                "aggregator-b",
                "gateway",
                "gateway-b",
            ],
            30,
        );
    }
    Ok(())
}

/// (port, path) -> (the answer's points, X-Cache) of both gateways, each question asked twice
/// (the second answer is the one kept: a cache hit when the cache works).
async fn answers(
    harness: &Harness,
    ports: &[u16],
    targets: &[Target],
    from: &str,
    to: &str,
) -> anyhow::Result<BTreeMap<(u16, String), (String, String)>> {
    let auth = format!("Bearer {}", harness.api_key);
    let mut out = BTreeMap::new();
    for port in ports {
        for target in targets {
            for metric in ["spend", "transactions"] {
                let path = target.query(metric, from, to);
                for _ in 0..2 {
                    let response = crate::http::get(
                        *port,
                        &path,
                        &[("Authorization", auth.as_str())],
                        Duration::from_secs(10),
                    )
                    .await?;
                    if response.status != 200 {
                        bail!("{path} on :{port}: HTTP {}", response.status);
                    }
                    let body: serde_json::Value = serde_json::from_slice(&response.body)?;
                    out.insert(
                        (*port, path.clone()),
                        (
                            body["points"].to_string(),
                            response.header("x-cache").to_owned(),
                        ),
                    );
                }
            }
        }
    }
    Ok(out)
}

/// Sum of the stored offsets of `shards` (progress of the aggregators on them) and their
/// highest epoch (bumped by each new owner).
/// Seconds from `killed` until the shards' stored offsets pass `offsets_before`: the
/// aggregates committed again.
async fn committed_since(
    killed: Instant,
    pipeline: &mut Pipeline,
    db: &tokio_postgres::Client,
    shards: &[u32],
    offsets_before: i64,
) -> anyhow::Result<f64> {
    time_until(
        "aggregates committed",
        killed,
        FAILOVER_DEADLINE,
        pipeline,
        || async move {
            offsets_of(db, shards)
                .await
                .is_ok_and(|(sum, _)| sum > offsets_before)
        },
    )
    .await
}

async fn offsets_of(db: &tokio_postgres::Client, shards: &[u32]) -> anyhow::Result<(i64, i64)> {
    let shards: Vec<i32> = shards.iter().map(|s| *s as i32).collect();
    let row = db
        .query_one(
            "SELECT coalesce(sum(stream_seq), 0)::bigint, coalesce(max(epoch), 0)::bigint
               FROM shard_offsets WHERE shard = ANY($1)",
            &[&shards],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// (leader, last sequence) of a stream, as the cluster answers within 2 s; `None` while it
/// cannot (no leader yet, or the server asked is the one that died).
async fn stream_state(
    js: async_nats::jetstream::Context,
    name: String,
) -> Option<(Option<String>, u64)> {
    let info = tokio::time::timeout(Duration::from_secs(2), async {
        let mut stream = js.get_stream(&name).await.map_err(anyhow::Error::from)?;
        let info = stream.info().await.map_err(anyhow::Error::from)?;
        Ok::<_, anyhow::Error>(info.clone())
    })
    .await
    .ok()?
    .ok()?;
    Some((
        info.cluster.and_then(|c| c.leader),
        info.state.last_sequence,
    ))
}

/// Kills the nats-server leading one transaction stream; measures until the stream has a new
/// leader, until it stores new batches (ingest publishes again), and until the aggregators
/// commit past their offsets of the kill. Then restarts the server (`cluster.sh up`).
async fn kill_stream_leader(
    harness: &mut Harness,
    cluster: &ClusterEnv,
    streams: &[String],
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<Failover> {
    let index = rng.gen_range(0..streams.len());
    let name = &streams[index];
    let shards: Vec<u32> = (0..SHARDS)
        .filter(|s| s % TXN_STREAMS == index as u32)
        .collect();
    let js = harness.jetstream.clone();
    let db = harness.db().await?;
    let (leader, last_before) = stream_state(js.clone(), name.clone())
        .await
        .context("stream info")?;
    let leader = leader.context("the stream has no leader")?;
    let node = ClusterEnv::nats_node(&leader)?;
    let (offsets_before, _) = offsets_of(&db, &shards).await?;
    let at = crate::util::elapsed();
    say!("KILL {node} (server {leader}, leader of {name}, shards {shards:?}; stream last seq {last_before})");
    let killed = Instant::now();
    cluster.script(&["kill", &node]).await?;
    let pipeline = &mut harness.pipeline;
    let (js, leader, db) = (&js, &leader, &db);
    let elected = time_until("a new leader", killed, FAILOVER_DEADLINE, pipeline, || async move {
        matches!(stream_state(js.clone(), name.clone()).await, Some((Some(new), _)) if new != *leader)
    })
    .await?;
    let (new_leader, _) = stream_state(js.clone(), name.clone())
        .await
        .unwrap_or((None, 0));
    let stored = time_until("a new batch stored", killed, FAILOVER_DEADLINE, pipeline, || async move {
        matches!(stream_state(js.clone(), name.clone()).await, Some((_, last)) if last > last_before)
    })
    .await?;
    let shards = &shards;
    let committed = committed_since(killed, pipeline, db, shards, offsets_before).await?;
    let restarted = Instant::now();
    cluster.restart().await?;
    let note = format!(
        "{node} leading {name} SIGKILLed: new leader {} after {elected:.1}s, new batches stored after {stored:.1}s, aggregates committed after {committed:.1}s; {node} restarted and the cluster verified in {:.1}s",
        new_leader.unwrap_or_default(),
        restarted.elapsed().as_secs_f64()
    );
    Ok(Failover {
        what: "nats stream leader".into(),
        at,
        survived: true,
        seconds: Some(committed),
        note,
    })
}

/// Kills the Redis master holding the `{all}` slot (the all-merchants answers and their
/// generation counter); measures until its replica is promoted and until both gateways answer
/// from the cache again. Restarts it (it rejoins as a replica) and hands it its slots back.
async fn kill_redis_master(
    harness: &mut Harness,
    cluster: &ClusterEnv,
    all_path: &str,
) -> anyhow::Result<Failover> {
    let first = cluster
        .redis_port("redis-1")
        .context("no redis-1 in cluster.env")?;
    let slot: u16 = redis_cli(first, &["cluster", "keyslot", "{all}"])
        .await?
        .trim()
        .parse()
        .context("CLUSTER KEYSLOT")?;
    let owns = move |node: &RedisNode| node.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot));
    let nodes = redis_nodes(cluster, None).await?;
    let master = nodes
        .iter()
        .find(|n| n.master && !n.failed && owns(n))
        .context("no master owns the {all} slot")?;
    let (port, node) = (master.port, cluster.redis_node(master.port)?);
    let at = crate::util::elapsed();
    say!("KILL {node} (master of slot {slot}, port {port})");
    let killed = Instant::now();
    cluster.script(&["kill", &node]).await?;
    let auth = format!("Bearer {}", harness.api_key);
    let ports = [harness.pipeline.http_port, harness.pipeline.http_port_b];
    let pipeline = &mut harness.pipeline;
    let promoted = time_until(
        "a replica promoted",
        killed,
        FAILOVER_DEADLINE,
        pipeline,
        || async move {
            redis_nodes(cluster, Some(port)).await.is_ok_and(|nodes| {
                nodes
                    .iter()
                    .any(|n| n.port != port && n.master && !n.failed && owns(n))
            })
        },
    )
    .await?;
    let unavailable = std::cell::Cell::new(0u32);
    let (unavailable_ref, auth) = (&unavailable, auth.as_str());
    let cached = time_until(
        "both gateways answer from the cache",
        killed,
        FAILOVER_DEADLINE,
        pipeline,
        || async move {
            let mut all = true;
            for port in ports {
                let response = crate::http::get(
                    port,
                    all_path,
                    &[("Authorization", auth)],
                    Duration::from_secs(5),
                )
                .await;
                match response {
                    Ok(r) if r.status == 200 && r.header("x-cache") == "hit" => {}
                    Ok(r) if r.status == 200 && r.header("x-cache") == "unavailable" => {
                        unavailable_ref.set(unavailable_ref.get() + 1);
                        all = false;
                    }
                    _ => all = false,
                }
            }
            all
        },
    )
    .await?;
    let restarted = Instant::now();
    cluster.restart().await?;
    // Back as it was: the restarted node, now a replica, takes its slots over again (one
    // CLUSTER FAILOVER once its link is up, again only if it has not happened after 5 s).
    let asked = std::cell::Cell::new(None::<Instant>);
    let asked = &asked;
    let restored = time_until(
        "the old master restored",
        restarted,
        FAILOVER_DEADLINE,
        pipeline,
        || async move {
            if redis_cli(port, &["role"])
                .await
                .is_ok_and(|t| t.starts_with("master"))
            {
                return true;
            }
            let due = asked
                .get()
                .is_none_or(|at| at.elapsed() > Duration::from_secs(5));
            if due
                && redis_cli(port, &["info", "replication"])
                    .await
                    .is_ok_and(|t| t.contains("master_link_status:up"))
            {
                let _ = redis_cli(port, &["cluster", "failover"]).await;
                asked.set(Some(Instant::now()));
            }
            false
        },
    )
    .await;
    let restored = match restored {
        Ok(s) => format!("master again after {s:.1}s"),
        Err(error) => format!("not master again ({error:#}); the cluster works, its roles moved"),
    };
    let note = format!(
        "{node} (master of the {{all}} slot {slot}) SIGKILLed: replica promoted after {promoted:.1}s, both gateways answering from the cache after {cached:.1}s ({} answers computed from PostgreSQL meanwhile, none failed); {node} restarted, {restored}",
        unavailable.get()
    );
    Ok(Failover {
        what: "redis master".into(),
        at,
        survived: true,
        seconds: Some(cached),
        note,
    })
}

/// SIGKILLs aggregator B (the odd shards) and drops a file at once (so its shards have work
/// while it is dead), restarts it after a pod's restart time, and measures until it re-owned
/// its shards (epoch bumped) and committed past their offsets.
async fn kill_aggregator(harness: &mut Harness, file: &Path) -> anyhow::Result<Failover> {
    let shards: Vec<u32> = (0..SHARDS).filter(|s| s % 2 == 1).collect();
    let db = harness.db().await?;
    let (offsets_before, epoch_before) = offsets_of(&db, &shards).await?;
    let pid = harness.pipeline.pid(Role::AggregatorB).unwrap_or(0);
    let at = crate::util::elapsed();
    say!("KILL aggregator-b (pid {pid}, ordinal 1: shards {shards:?})");
    let killed = Instant::now();
    harness.pipeline.kill(Role::AggregatorB).await;
    let name = file.file_name().context("file name")?;
    std::fs::rename(file, harness.landing.join("provider=default").join(name))?;
    say!(
        "dropped file {} while aggregator-b is dead",
        name.to_string_lossy()
    );
    // The injected downtime (a pod's restart), not a synchronisation.
    tokio::time::sleep(AGGREGATOR_DOWN).await;
    let pid = harness.pipeline.start(Role::AggregatorB)?;
    let (pipeline, db, shards) = (&mut harness.pipeline, &db, &shards);
    let reowned = time_until(
        "shards re-owned",
        killed,
        FAILOVER_DEADLINE,
        pipeline,
        || async move {
            offsets_of(db, shards)
                .await
                .is_ok_and(|(_, epoch)| epoch > epoch_before)
        },
    )
    .await?;
    let committed = committed_since(killed, pipeline, db, shards, offsets_before).await?;
    Ok(Failover {
        what: "aggregator".into(),
        at,
        survived: true,
        seconds: Some(reowned),
        note: format!(
            "aggregator-b SIGKILLed, restarted after {:.1}s as pid {pid}: its shards re-owned (epoch bumped) after {reowned:.1}s, aggregates committed after {committed:.1}s",
            AGGREGATOR_DOWN.as_secs_f64()
        ),
    })
}

/// Deletes what the run left on the cluster: its streams (and their consumers) and its Redis
/// keys. Best effort; says what it could not.
pub async fn clean_up(harness: &Harness, repo: &Path) {
    let prefix = harness.pipeline.prefix.clone();
    let upper = format!("{}_", prefix.to_ascii_uppercase());
    let mut names = Vec::new();
    {
        use futures::StreamExt;
        let mut listed = harness.jetstream.stream_names();
        while let Some(Ok(name)) = listed.next().await {
            if name.starts_with(&upper) {
                names.push(name);
            }
        }
    }
    for name in &names {
        if let Err(error) = harness.jetstream.delete_stream(name).await {
            say!("could not delete stream {name}: {error}");
        }
    }
    let Ok(cluster) = ClusterEnv::read(repo) else {
        return;
    };
    let mut deleted = 0usize;
    if let Ok(nodes) = redis_nodes(&cluster, None).await {
        for node in nodes.iter().filter(|n| n.master && !n.failed) {
            let pattern = format!("{prefix}:*");
            let Ok(keys) = redis_cli(node.port, &["--scan", "--pattern", &pattern]).await else {
                continue;
            };
            for key in keys.lines().filter(|k| !k.is_empty()) {
                if redis_cli(node.port, &["unlink", key]).await.is_ok() {
                    deleted += 1;
                }
            }
        }
    }
    say!(
        "cluster left as found: deleted {} streams and {deleted} Redis keys of prefix {prefix}",
        names.len()
    );
}
