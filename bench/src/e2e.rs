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
    pub aggregator: Usage,
    pub nats_cpu_s: f64,
    pub postgres_cpu_s: f64,
    /// Busy CPU seconds of the whole machine over the run (all processes, all tenants).
    pub machine_busy_s: f64,
    pub merchants: i64,
    pub daily_cells: i64,
    pub extra_env: Vec<(String, String)>,
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

/// Polls the TXN stream until the aggregator has created a consumer per shard.
pub async fn wait_for_consumers(
    bench: &Bench,
    sandbox: &Sandbox,
    shards: u32,
    aggregator: &Role,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut stream) = bench.js.get_stream(sandbox.subjects.txn_stream_of(0)).await {
            if let Ok(info) = stream.info().await {
                if info.state.consumer_count >= shards as usize {
                    return Ok(());
                }
            }
        }
        if aggregator.has_exited() {
            bail!(
                "the aggregator exited during start-up:\n{}",
                aggregator.log_tail(20)
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "the aggregator did not create its {shards} consumers within 60s:\n{}",
                aggregator.log_tail(20)
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

async fn run_in(
    bench: &Bench,
    sandbox: &Sandbox,
    label: &str,
    files: &[PathBuf],
    shards: u32,
    expected_events: u64,
    extra_env: &[(String, String)],
) -> anyhow::Result<E2eRun> {
    let mut env = sandbox.child_env(shards);
    env.extend(extra_env.iter().cloned());
    let client = sandbox.client().await?;

    let aggregator = Role::spawn(
        &bench.binary,
        &format!("{label}-aggregate"),
        &["aggregate".to_owned()],
        &env,
        &bench.log_dir,
    )?;
    wait_for_consumers(bench, sandbox, shards, &aggregator).await?;

    let mut args = vec!["ingest".to_owned(), "--once".to_owned()];
    args.extend(files.iter().map(|f| f.to_string_lossy().into_owned()));
    let cpu_before = ServerCpu::sample(bench.nats_pid);
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
        if aggregator.has_exited() {
            bail!("the aggregator exited early:\n{}", aggregator.log_tail(20));
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
    let cpu = ServerCpu::sample(bench.nats_pid).since(&cpu_before);
    let aggregator = aggregator.stop(Duration::from_secs(60)).await?;
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
        nats_cpu_s: cpu.nats_s,
        postgres_cpu_s: cpu.postgres_s,
        machine_busy_s: cpu.machine_busy_s,
        merchants: shape.get(0),
        daily_cells: shape.get(1),
        extra_env: extra_env.to_vec(),
    })
}
