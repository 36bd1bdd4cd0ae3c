//! End to end: generated files → `altdata ingest --once` → JetStream → `altdata aggregate`
//! (service mode, started first) → PostgreSQL, to completion: the sum of
//! `shard_offsets.applied_events` equals what ingest published. Each role is a child
//! process; its CPU and peak RSS come from `wait4`.

use crate::proc::{Role, ServerCpu, Usage};
use crate::sandbox::{Sandbox, StreamBudget};
use crate::stats::rate;
use crate::Bench;
use anyhow::{anyhow, bail};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct E2eRun {
    pub label: String,
    pub shards: u32,
    pub files: usize,
    #[serde(flatten)]
    pub counts: IngestCounts,
    /// From the start of ingest until every published event is applied.
    pub seconds: f64,
    pub events_per_s: f64,
    /// Ingest alone: its wall time (it exits when its last publish is acknowledged).
    pub ingest_seconds: f64,
    pub ingest_rows_per_s: f64,
    /// How long the aggregator needed after ingest finished.
    pub aggregator_tail_seconds: f64,
    pub ingest: Usage,
    /// Every aggregator's CPU summed (peak RSS: the largest), from `wait4`.
    pub aggregator: Usage,
    /// How the run was laid out: aggregators, transaction streams, stream replicas.
    pub topology: Topology,
    pub nats_cpu_s: f64,
    pub postgres_cpu_s: f64,
    /// Busy CPU seconds of the whole machine over the run (all processes, all tenants).
    pub machine_busy_s: f64,
    pub merchants: i64,
    pub daily_cells: i64,
    /// `/proc/loadavg` (1, 5, 15 minutes) when ingest started: others' work on the machine.
    pub loadavg_at_start: String,
    pub extra_env: Vec<(String, String)>,
}

/// The layout of a run: one aggregator on one R1 stream (the default), or the cluster's
/// several aggregators (by ordinal, `ALTDATA_AGG_REPLICAS`) over several R3 streams.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Topology {
    pub aggregators: u32,
    pub txn_streams: u32,
    pub stream_replicas: usize,
}

impl Default for Topology {
    fn default() -> Topology {
        Topology {
            aggregators: 1,
            txn_streams: 1,
            stream_replicas: 1,
        }
    }
}

impl Topology {
    /// What every role of a run with this layout needs in its environment.
    fn env(&self) -> Vec<(String, String)> {
        if self.txn_streams == 1 && self.stream_replicas == 1 {
            return Vec::new();
        }
        vec![
            (
                "ALTDATA_TXN_STREAMS".to_owned(),
                self.txn_streams.to_string(),
            ),
            (
                "ALTDATA_STREAM_REPLICAS".to_owned(),
                self.stream_replicas.to_string(),
            ),
        ]
    }

    /// The environment of aggregator `ordinal`: its share of the shards, as a StatefulSet's
    /// pod `aggregator-<ordinal>` takes it.
    fn aggregator_env(&self, ordinal: u32) -> Vec<(String, String)> {
        if self.aggregators <= 1 {
            return Vec::new();
        }
        vec![
            (
                "ALTDATA_AGG_REPLICAS".to_owned(),
                self.aggregators.to_string(),
            ),
            (
                "ALTDATA_AGG_ORDINAL".to_owned(),
                format!("aggregator-{ordinal}"),
            ),
        ]
    }
}

impl E2eRun {
    pub fn cpu_capacity_s(&self, cores: usize) -> f64 {
        self.seconds * cores as f64
    }
}

/// What ingest did, summed over its files from `ingest_files`:
/// rows read = published + unattributed + unmapped + rejected + duplicates.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct IngestCounts {
    pub rows_read: u64,
    pub published: u64,
    pub unattributed: u64,
    pub unmapped: u64,
    pub rejected: u64,
    pub duplicates: u64,
}

pub async fn ingest_counts(client: &tokio_postgres::Client) -> anyhow::Result<IngestCounts> {
    let row = client
        .query_one(
            "SELECT coalesce(sum(rows_read), 0)::bigint, coalesce(sum(published), 0)::bigint,
                    coalesce(sum(unmapped), 0)::bigint, coalesce(sum(rejected), 0)::bigint,
                    coalesce(sum(duplicates), 0)::bigint, coalesce(sum(unattributed), 0)::bigint
               FROM ingest_files",
            &[],
        )
        .await?;
    let count = |index: usize| row.get::<_, i64>(index) as u64;
    Ok(IngestCounts {
        rows_read: count(0),
        published: count(1),
        unmapped: count(2),
        rejected: count(3),
        duplicates: count(4),
        unattributed: count(5),
    })
}

impl IngestCounts {
    /// Events on the stream: named brands' and unattributed merchants'.
    pub fn events(&self) -> u64 {
        self.published + self.unattributed
    }
}

/// Polls the transaction streams until the aggregators have created a consumer per shard.
pub async fn wait_for_consumers(
    bench: &Bench,
    sandbox: &Sandbox,
    shards: u32,
    topology: Topology,
    aggregators: &[Role],
) -> anyhow::Result<()> {
    let layout = sandbox
        .subjects
        .clone()
        .with_txn_streams(topology.txn_streams, shards);
    let streams: Vec<String> = layout.txn_streams().into_iter().map(|(n, _)| n).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut consumers = 0;
        for name in &streams {
            if let Ok(mut stream) = bench.js.get_stream(name).await {
                if let Ok(info) = stream.info().await {
                    consumers += info.state.consumer_count;
                }
            }
        }
        if consumers >= shards as usize {
            return Ok(());
        }
        if let Some(exited) = aggregators.iter().find(|a| a.has_exited()) {
            bail!(
                "an aggregator exited during start-up:\n{}",
                exited.log_tail(20)
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "the aggregators did not create their {shards} consumers within 60s (found {consumers}):\n{}",
                aggregators
                    .iter()
                    .map(|a| a.log_tail(10))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn applied_events(client: &tokio_postgres::Client) -> anyhow::Result<u64> {
    let row = client
        .query_one(
            "SELECT coalesce(sum(applied_events), 0)::bigint FROM shard_offsets",
            &[],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// One end-to-end run in a fresh sandbox. With `keep`, the sandbox is returned (for the
/// query measurements) instead of cleaned up.
pub async fn run(
    bench: &Bench,
    label: &str,
    files: &[PathBuf],
    shards: u32,
    expected_events: u64,
    extra_env: &[(String, String)],
    keep: bool,
) -> anyhow::Result<(E2eRun, Option<Sandbox>)> {
    run_with(
        bench,
        label,
        files,
        shards,
        expected_events,
        extra_env,
        Topology::default(),
        keep,
    )
    .await
}

/// [`run`] with a layout of aggregators and streams (the cluster comparison).
#[allow(clippy::too_many_arguments)]
pub async fn run_with(
    bench: &Bench,
    label: &str,
    files: &[PathBuf],
    shards: u32,
    expected_events: u64,
    extra_env: &[(String, String)],
    topology: Topology,
    keep: bool,
) -> anyhow::Result<(E2eRun, Option<Sandbox>)> {
    let sandbox = Sandbox::create(
        label,
        &bench.servers,
        StreamBudget::for_events(expected_events),
        true,
    )
    .await?;
    match run_in(
        bench,
        &sandbox,
        label,
        files,
        shards,
        expected_events,
        extra_env,
        topology,
    )
    .await
    {
        Ok(run) if keep => Ok((run, Some(sandbox))),
        Ok(run) => {
            sandbox.cleanup().await;
            Ok((run, None))
        }
        Err(error) => {
            sandbox.cleanup().await;
            Err(error)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_in(
    bench: &Bench,
    sandbox: &Sandbox,
    label: &str,
    files: &[PathBuf],
    shards: u32,
    expected_events: u64,
    extra_env: &[(String, String)],
    topology: Topology,
) -> anyhow::Result<E2eRun> {
    let mut env = sandbox.child_env(shards);
    env.extend(topology.env());
    env.extend(extra_env.iter().cloned());
    let client = sandbox.client().await?;

    if topology.aggregators > 1 || topology.stream_replicas > 1 {
        // Several roles creating the same R3 streams at once can time out on a loaded
        // machine (and exit): the streams are made here first, as the roles would make them.
        sandbox
            .ensure_streams_with(
                &bench.js,
                shards,
                topology.txn_streams,
                topology.stream_replicas,
            )
            .await?;
    }
    let mut aggregators = Vec::new();
    for ordinal in 0..topology.aggregators.max(1) {
        let mut aggregator_env = env.clone();
        aggregator_env.extend(topology.aggregator_env(ordinal));
        let name = if topology.aggregators > 1 {
            format!("{label}-aggregate-{ordinal}")
        } else {
            format!("{label}-aggregate")
        };
        aggregators.push(Role::spawn(
            &bench.binary,
            &name,
            &["aggregate".to_owned()],
            &aggregator_env,
            &bench.log_dir,
        )?);
    }
    wait_for_consumers(bench, sandbox, shards, topology, &aggregators).await?;

    let mut args = vec!["ingest".to_owned(), "--once".to_owned()];
    args.extend(files.iter().map(|f| f.to_string_lossy().into_owned()));
    let loadavg_at_start = crate::machine::loadavg();
    let cpu_before = ServerCpu::sample(&bench.nats_pids);
    let started = Instant::now();
    let mut ingest = Some(Role::spawn(
        &bench.binary,
        &format!("{label}-ingest"),
        &args,
        &env,
        &bench.log_dir,
    )?);
    // Generous: ten times slower than anything seen on a 2-core machine.
    let deadline =
        started + Duration::from_secs(120).max(Duration::from_secs(expected_events / 1_000));
    let mut ingest_usage: Option<(Usage, Instant)> = None;
    let mut target: Option<u64> = None;
    let finished = loop {
        if let Some(role) = ingest.take_if(|r| r.has_exited()) {
            let log = role.log.clone();
            let usage = role
                .wait(Duration::from_secs(5))
                .await?
                .succeeded("ingest", &log)?;
            ingest_usage = Some((usage, Instant::now()));
            let row = client
                .query_one(
                    "SELECT coalesce(sum(published), 0)::bigint FROM ingest_files",
                    &[],
                )
                .await?;
            target = Some(row.get::<_, i64>(0) as u64);
        }
        if let Some(target) = target {
            if applied_events(&client).await? >= target {
                break Instant::now();
            }
        }
        if let Some(exited) = aggregators.iter().find(|a| a.has_exited()) {
            bail!("an aggregator exited early:\n{}", exited.log_tail(20));
        }
        if Instant::now() >= deadline {
            bail!(
                "end to end {label} did not complete within {:?} (applied {} of {:?})",
                deadline - started,
                applied_events(&client).await?,
                target
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let cpu = ServerCpu::sample(&bench.nats_pids).since(&cpu_before);
    for aggregator in &aggregators {
        aggregator.terminate();
    }
    let mut aggregator = Usage::default();
    for role in aggregators {
        let usage = role.wait(Duration::from_secs(60)).await?;
        aggregator.cpu_user_s += usage.cpu_user_s;
        aggregator.cpu_sys_s += usage.cpu_sys_s;
        aggregator.max_rss_mb = aggregator.max_rss_mb.max(usage.max_rss_mb);
        aggregator.wall_s = aggregator.wall_s.max(usage.wall_s);
        if usage.exit_code != 0 {
            aggregator.exit_code = usage.exit_code;
        }
        aggregator.signal = aggregator.signal.max(usage.signal);
    }
    let (ingest, ingest_done) = ingest_usage.ok_or_else(|| anyhow!("ingest usage missing"))?;

    let counts = ingest_counts(&client).await?;
    let shape = client
        .query_one(
            "SELECT count(DISTINCT merchant_id), count(*) FROM agg_daily_merchant_spend",
            &[],
        )
        .await?;
    let seconds = (finished - started).as_secs_f64();
    Ok(E2eRun {
        label: label.to_owned(),
        shards,
        files: files.len(),
        counts,
        seconds,
        events_per_s: rate(counts.events(), finished - started),
        ingest_seconds: ingest.wall_s,
        ingest_rows_per_s: counts.rows_read as f64 / ingest.wall_s.max(1e-9),
        aggregator_tail_seconds: (finished - ingest_done.min(finished)).as_secs_f64(),
        ingest,
        aggregator,
        topology,
        nats_cpu_s: cpu.nats_s,
        postgres_cpu_s: cpu.postgres_s,
        machine_busy_s: cpu.machine_busy_s,
        merchants: shape.get(0),
        daily_cells: shape.get(1),
        loadavg_at_start,
        extra_env: extra_env.to_vec(),
    })
}
