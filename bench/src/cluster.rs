//! `BENCH_CLUSTER=1`: the same end-to-end run on the local cluster of `make cluster` (three
//! nats-servers, the shards over three R3 transaction streams, two aggregators splitting the
//! shards by ordinal, Redis Cluster) and on the single-node stack, in the same process, on the
//! same files: events/s and CPU seconds per million events for each role, side by side.
//!
//! The cluster is used as found, or started with `scripts/cluster.sh up` and stopped again
//! afterwards only if this run started it (as `make cluster-test` does). Its three servers run
//! on the same cores as everything else: the comparison says what replication and several
//! streams cost in CPU, not what three machines would do.

use crate::e2e::{self, E2eRun, Topology};
use crate::report;
use crate::sandbox::Servers;
use crate::stats::thousands;
use crate::{limits, machine, proc, say, Bench, Results, Scale};
use anyhow::{bail, Context};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Shards of both runs (the default deployment's).
const SHARDS: u32 = 16;
/// The cluster run's layout: `make cluster-test`'s streams, two aggregator replicas.
const CLUSTER_TOPOLOGY: Topology = Topology {
    aggregators: 2,
    txn_streams: 3,
    stream_replicas: 3,
};

/// What `BENCH_CLUSTER=1` measured; `cluster-latest.json` is this.
#[derive(Debug, Serialize)]
pub struct Comparison {
    #[serde(flatten)]
    pub results: Results,
    /// Whether this run started the cluster (and so stopped it afterwards).
    pub cluster_started_here: bool,
    pub cluster_nats_url: String,
    pub rows: u64,
    /// In the order they ran: single-node and cluster alternate, each pair's order swapped.
    pub runs: Vec<E2eRun>,
}

/// The local cluster as `scripts/cluster.sh up` left it (`<stack>/cluster.env`).
struct LocalCluster {
    servers: Servers,
    nats_pids: Vec<i32>,
    started_here: bool,
    repo: PathBuf,
    stack_dir: PathBuf,
}

impl LocalCluster {
    /// Reuses the running cluster (restarting any node that is down, as `up` does) or
    /// starts it; remembers which.
    async fn up(repo: &Path, stack_dir: &Path, database_url: &str) -> anyhow::Result<Self> {
        let status = script(repo, stack_dir, &["status"])
            .await
            .unwrap_or_default();
        let running = status
            .lines()
            .filter(|l| l.contains(" running (pid"))
            .count();
        say(if running == 0 {
            "cluster: not running; starting it (`scripts/cluster.sh up`), stopped again at the end"
                .to_owned()
        } else {
            format!("cluster: {running} nodes running; reused (and left running)")
        });
        script(repo, stack_dir, &["up"]).await?;
        let env_file = stack_dir.join("cluster.env");
        let text = std::fs::read_to_string(&env_file)
            .with_context(|| format!("{} (written by `cluster.sh up`)", env_file.display()))?;
        let vars = exports(&text);
        let var = |key: &str| {
            vars.get(key)
                .cloned()
                .with_context(|| format!("{} has no {key}", env_file.display()))
        };
        let pidfiles: Vec<PathBuf> = var("ALTDATA_CLUSTER_PIDFILES")?
            .split_whitespace()
            .filter_map(|entry| entry.split_once('='))
            .filter(|(node, _)| node.starts_with("nats-"))
            .map(|(_, file)| PathBuf::from(file))
            .collect();
        let nats_pids = proc::nats_pids_from_pidfiles(&pidfiles);
        if nats_pids.len() != pidfiles.len() || nats_pids.is_empty() {
            bail!(
                "cluster: found {} running nats-servers of {} pidfiles",
                nats_pids.len(),
                pidfiles.len()
            );
        }
        Ok(LocalCluster {
            servers: Servers {
                database_url: database_url.to_owned(),
                nats_url: var("NATS_URL")?,
                redis_url: var("REDIS_URL")?,
            },
            nats_pids,
            started_here: running == 0,
            repo: repo.to_owned(),
            stack_dir: stack_dir.to_owned(),
        })
    }

    /// Stops the cluster if this run started it.
    async fn down(&self) {
        if self.started_here {
            say("cluster: stopping it (this run started it)");
            if let Err(error) = script(&self.repo, &self.stack_dir, &["down"]).await {
                say(format!("cluster: `cluster.sh down` failed: {error:#}"));
            }
        }
    }
}

/// `bash scripts/cluster.sh ARGS` with the stack directory of this run; its output.
async fn script(repo: &Path, stack_dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = tokio::process::Command::new("bash")
        .arg(repo.join("scripts/cluster.sh"))
        .args(args)
        .current_dir(repo)
        .env("ALTDATA_STACK_DIR", stack_dir)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .context("running scripts/cluster.sh")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let lines: Vec<&str> = text.lines().collect();
        bail!(
            "`scripts/cluster.sh {}` failed ({}):\n{}",
            args.join(" "),
            output.status,
            lines[lines.len().saturating_sub(15)..].join("\n")
        );
    }
    Ok(text)
}

/// `export KEY=VALUE` lines of an env file, quotes removed.
fn exports(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|assignment| assignment.split_once('='))
        .map(|(key, value)| {
            let value = value.trim().trim_matches(|c| c == '\'' || c == '"');
            (key.trim().to_owned(), value.to_owned())
        })
        .collect()
}

/// Rows of the comparison: `BENCH_CLUSTER_ROWS`, else 300k (small) or 1M (default).
fn rows(scale: &Scale) -> u64 {
    std::env::var("BENCH_CLUSTER_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if scale.name == "small" {
            300_000
        } else {
            1_000_000
        })
}

/// Generates the files, runs single-node and cluster end to end (`BENCH_CLUSTER_REPEATS`
/// pairs, default 1, while the budget lasts), prints and writes the report.
pub async fn compare(
    bench: &Bench,
    scale: &Scale,
    mut results: Results,
    budget: Duration,
    deadline: Instant,
    repo: &Path,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let nominal = rows(scale);
    let repeats: u32 = std::env::var("BENCH_CLUSTER_REPEATS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    say("cluster comparison");
    let files = crate::generate_rows(bench, scale.days, nominal)
        .await?
        .files;
    let counted = limits::csv_limit(files.clone()).await?;
    results.generated_rows = counted.rows;
    results.generated_files = files.len();
    results.generated_bytes = counted.bytes;

    let cluster =
        LocalCluster::up(repo, &crate::stack_dir(repo), &bench.servers.database_url).await?;
    let outcome = run_pairs(bench, &cluster, &files, counted.rows, repeats, deadline).await;
    cluster.down().await;
    let runs = outcome?;

    results.machine.loadavg_at_end = machine::loadavg();
    results.total_seconds = started.elapsed().as_secs_f64();
    let comparison = Comparison {
        results,
        cluster_started_here: cluster.started_here,
        cluster_nats_url: cluster.servers.nats_url.clone(),
        rows: counted.rows,
        runs,
    };
    let markdown = markdown(&comparison, budget);
    println!("{markdown}");
    let out_dir = std::env::var("BENCH_RESULTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo.join("bench/results"));
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("cluster-latest.md"), &markdown)?;
    std::fs::write(
        out_dir.join("cluster-latest.json"),
        serde_json::to_vec_pretty(&comparison)?,
    )?;
    say(format!(
        "done in {:.0}s; wrote {} and {}",
        comparison.results.total_seconds,
        out_dir.join("cluster-latest.md").display(),
        out_dir.join("cluster-latest.json").display()
    ));
    Ok(())
}

async fn run_pairs(
    bench: &Bench,
    cluster: &LocalCluster,
    files: &[PathBuf],
    rows: u64,
    repeats: u32,
    deadline: Instant,
) -> anyhow::Result<Vec<E2eRun>> {
    let nats = altdata_common::connect::nats(&cluster.servers.nats_url)
        .await
        .context("the cluster's NATS")?;
    let on_cluster = Bench {
        servers: cluster.servers.clone(),
        binary: bench.binary.clone(),
        js: limits::publisher(nats),
        nats_pids: cluster.nats_pids.clone(),
        log_dir: bench.log_dir.clone(),
        work_dir: bench.work_dir.clone(),
        cores: bench.cores,
    };
    let mut runs: Vec<E2eRun> = Vec::new();
    for pair in 0..repeats {
        if pair > 0 {
            let spent: f64 = runs.iter().map(|r| r.seconds + 15.0).sum();
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_secs_f64();
            if spent / f64::from(pair) > left {
                say(format!(
                    "cluster comparison: pair {} skipped to keep the budget",
                    pair + 1
                ));
                break;
            }
        }
        // Swap the order every pair, so neither side always runs on a warmer machine.
        let order = if pair % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for on_the_cluster in order {
            let (target, topology, label) = if on_the_cluster {
                (&on_cluster, CLUSTER_TOPOLOGY, format!("cluster-{pair}"))
            } else {
                (bench, Topology::default(), format!("single-{pair}"))
            };
            say(format!(
                "end to end ({label}): {} rows, {SHARDS} shards, {} aggregator(s), {} stream(s) R{}, load average {}",
                thousands(rows as f64),
                topology.aggregators,
                topology.txn_streams,
                topology.stream_replicas,
                machine::loadavg()
            ));
            let (run, _) =
                e2e::run_with(target, &label, files, SHARDS, rows, &[], topology, false).await?;
            let per_million = PerMillion::of(&run);
            say(format!(
                "  {} ev/s ({:.1}s); CPU s per million events: ingest {:.1}, aggregator(s) {:.1}, PostgreSQL {:.1}, nats-server(s) {:.1}",
                thousands(run.events_per_s),
                run.seconds,
                per_million.ingest,
                per_million.aggregators,
                per_million.postgres,
                per_million.nats
            ));
            runs.push(run);
        }
    }
    Ok(runs)
}

/// CPU seconds per million events of one run, by role.
#[derive(Debug, Clone, Copy)]
pub struct PerMillion {
    pub ingest: f64,
    pub aggregators: f64,
    pub postgres: f64,
    pub nats: f64,
    pub machine: f64,
}

impl PerMillion {
    pub fn of(run: &E2eRun) -> PerMillion {
        let millions = (run.counts.events() as f64 / 1e6).max(1e-9);
        PerMillion {
            ingest: run.ingest.cpu_s() / millions,
            aggregators: run.aggregator.cpu_s() / millions,
            postgres: run.postgres_cpu_s / millions,
            nats: run.nats_cpu_s / millions,
            machine: run.machine_busy_s / millions,
        }
    }

    pub fn roles(&self) -> f64 {
        self.ingest + self.aggregators + self.postgres + self.nats
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    (count > 0).then(|| sum / count as f64)
}

fn markdown(comparison: &Comparison, budget: Duration) -> String {
    let results = &comparison.results;
    let mut out = report::header(results, budget);
    let runs = &comparison.runs;
    let _ = writeln!(
        out,
        "\n## End to end: the local cluster beside single-node (`BENCH_CLUSTER=1`)\n"
    );
    let _ = writeln!(
        out,
        "{} rows in {} day files, {SHARDS} shards, the same files for every run. Single-node: the stack's one nats-server (R1), one transaction stream, one aggregator. Cluster (`make cluster`, {}): three nats-servers, the shards over {} R{} transaction streams (AGG and CACHE R{} too), {} aggregators splitting the shards by ordinal (`ALTDATA_AGG_REPLICAS`), Redis Cluster. PostgreSQL is the same server for both. Every process shares this machine's {} cores: the cluster's three servers do not add CPU, they add the replication's work. Load average at the start of each run is given: other builds on the machine make the absolute numbers noisy; compare CPU seconds per event.\n",
        thousands(comparison.rows as f64),
        results.generated_files,
        if comparison.cluster_started_here {
            "started for this run and stopped after it"
        } else {
            "already running, reused"
        },
        CLUSTER_TOPOLOGY.txn_streams,
        CLUSTER_TOPOLOGY.stream_replicas,
        CLUSTER_TOPOLOGY.stream_replicas,
        CLUSTER_TOPOLOGY.aggregators,
        results.machine.nproc,
    );
    let mut header = "| | ".to_owned();
    let mut rule = "| --- | ".to_owned();
    for run in runs {
        header += &format!("{} | ", run.label);
        rule += "---: | ";
    }
    header += "cluster ÷ single (means) |";
    rule += "---: |";
    let _ = writeln!(out, "{header}\n{rule}");
    let is_cluster = |r: &&E2eRun| r.topology.stream_replicas > 1;
    let ratio = |f: &dyn Fn(&E2eRun) -> f64| -> String {
        let cluster = mean(runs.iter().filter(is_cluster).map(f));
        let single = mean(runs.iter().filter(|r| !is_cluster(r)).map(f));
        match (cluster, single) {
            (Some(c), Some(s)) if s > 0.0 => format!("{:.2}", c / s),
            _ => "n/a".to_owned(),
        }
    };
    let mut row =
        |name: &str, cell: &dyn Fn(&E2eRun) -> String, f: Option<&dyn Fn(&E2eRun) -> f64>| {
            let mut line = format!("| {name} | ");
            for run in runs {
                line += &format!("{} | ", cell(run));
            }
            line += &format!("{} |", f.map_or(String::new(), |f| ratio(f)));
            let _ = writeln!(out, "{line}");
        };
    row(
        "load average at start (1 / 5 / 15 min)",
        &|r| r.loadavg_at_start.clone(),
        None,
    );
    row(
        "layout",
        &|r| {
            format!(
                "{} agg, {} stream(s) R{}",
                r.topology.aggregators, r.topology.txn_streams, r.topology.stream_replicas
            )
        },
        None,
    );
    row(
        "events (published + unattributed)",
        &|r| thousands(r.counts.events() as f64),
        None,
    );
    row(
        "seconds, ingest start → every event applied",
        &|r| format!("{:.1}", r.seconds),
        Some(&|r| r.seconds),
    );
    row(
        "**events/s end to end**",
        &|r| format!("**{}**", thousands(r.events_per_s)),
        Some(&|r| r.events_per_s),
    );
    row(
        "ingest alone: rows/s (its wall time)",
        &|r| thousands(r.ingest_rows_per_s),
        Some(&|r| r.ingest_rows_per_s),
    );
    row(
        "CPU s per million events: ingest",
        &|r| format!("{:.1}", PerMillion::of(r).ingest),
        Some(&|r| PerMillion::of(r).ingest),
    );
    row(
        "… aggregator(s), summed",
        &|r| format!("{:.1}", PerMillion::of(r).aggregators),
        Some(&|r| PerMillion::of(r).aggregators),
    );
    row(
        "… PostgreSQL (every backend on the server)",
        &|r| format!("{:.1}", PerMillion::of(r).postgres),
        Some(&|r| PerMillion::of(r).postgres),
    );
    row(
        "… nats-server(s), summed",
        &|r| format!("{:.1}", PerMillion::of(r).nats),
        Some(&|r| PerMillion::of(r).nats),
    );
    row(
        "… **all four roles**",
        &|r| format!("**{:.1}**", PerMillion::of(r).roles()),
        Some(&|r| PerMillion::of(r).roles()),
    );
    row(
        "… the whole machine, busy (all tenants)",
        &|r| format!("{:.1}", PerMillion::of(r).machine),
        Some(&|r| PerMillion::of(r).machine),
    );
    row(
        "aggregator peak RSS (largest), MB",
        &|r| format!("{:.0}", r.aggregator.max_rss_mb),
        None,
    );
    let _ = writeln!(
        out,
        "\nCPU of ingest and the aggregators from `wait4` of each child; of the nats-servers and PostgreSQL from `/proc` over the run (PostgreSQL: every backend of the shared server, other tenants' included). Total run {:.0} s; load average at the end {}.",
        results.total_seconds, results.machine.loadavg_at_end
    );
    out
}
