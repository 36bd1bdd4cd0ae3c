//! Ingest alone: `altdata ingest --once` over whole day files with nothing consuming, next to
//! bare JetStream publish alone (`Nats-Msg-Id`, the same window of outstanding acks) of as
//! many messages as ingest read rows, run just before and just after it on the same servers.
//! Their ratio is ingest's cost over the bare publish it is built on (goal ≥ 0.8).

use crate::e2e::{ingest_counts, IngestCounts};
use crate::limits;
use crate::proc::{Role, ServerCpu, Usage};
use crate::sandbox::{Sandbox, StreamBudget};
use crate::Bench;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct IngestAlone {
    pub files: usize,
    #[serde(flatten)]
    pub counts: IngestCounts,
    /// Ingest's wall time: from its start (connect, hash, claim) until its last ack.
    pub seconds: f64,
    pub rows_per_s: f64,
    pub ingest: Usage,
    pub nats_cpu_s: f64,
    pub postgres_cpu_s: f64,
    pub publish_window: usize,
    /// Bare publish alone of `rows_read` messages, before and after the ingest run.
    pub publish_alone_msgs_per_s: Vec<f64>,
    /// The identity record ingest wrote (`txn_identity`): rows and bytes on disk, indexes
    /// included.
    pub identity: IdentityCost,
}

/// What the identity record costs PostgreSQL.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IdentityCost {
    pub rows: i64,
    pub bytes: i64,
    pub bytes_per_million_rows: f64,
    /// At 5M rows a day kept for the 400-day horizon (the table holds the horizon, not a year).
    pub gib_at_5m_rows_a_day_for_400_days: f64,
    pub gib_per_year_at_5m_rows_a_day: f64,
    /// PostgreSQL's CPU during the ingest run (identity lookups and writes, checkpoints,
    /// held rows), per million rows read.
    pub postgres_cpu_s_per_million_rows: f64,
}

impl IdentityCost {
    async fn measure(
        client: &tokio_postgres::Client,
        rows_read: u64,
        postgres_cpu_s: f64,
    ) -> anyhow::Result<IdentityCost> {
        let row = client
            .query_one(
                "SELECT count(*), pg_total_relation_size('txn_identity') FROM txn_identity",
                &[],
            )
            .await?;
        let (rows, bytes): (i64, i64) = (row.get(0), row.get(1));
        let per_row = bytes as f64 / rows.max(1) as f64;
        let gib = |rows: f64| rows * per_row / (1u64 << 30) as f64;
        Ok(IdentityCost {
            rows,
            bytes,
            bytes_per_million_rows: per_row * 1e6,
            gib_at_5m_rows_a_day_for_400_days: gib(5e6 * 400.0),
            gib_per_year_at_5m_rows_a_day: gib(5e6 * 365.0),
            postgres_cpu_s_per_million_rows: postgres_cpu_s / (rows_read.max(1) as f64 / 1e6),
        })
    }
}

impl IngestAlone {
    /// The bare publish rate ingest is compared with: the mean of the runs around it.
    pub fn publish_alone_mean(&self) -> f64 {
        let runs = &self.publish_alone_msgs_per_s;
        runs.iter().sum::<f64>() / runs.len().max(1) as f64
    }

    pub fn ratio(&self) -> f64 {
        self.rows_per_s / self.publish_alone_mean().max(1e-9)
    }
}

pub async fn run(
    bench: &Bench,
    files: &[PathBuf],
    rows: u64,
    window: usize,
) -> anyhow::Result<IngestAlone> {
    let before = limits::publish_window_sweep(&bench.servers, rows, &[window]).await?;
    let sandbox = Sandbox::create(
        "ingest-alone",
        &bench.servers,
        StreamBudget::for_events(rows),
        true,
    )
    .await?;
    let outcome = ingest_in(bench, &sandbox, files, window).await;
    sandbox.cleanup().await;
    let mut alone = outcome?;
    let after = limits::publish_window_sweep(&bench.servers, rows, &[window]).await?;
    alone.publish_alone_msgs_per_s = before
        .iter()
        .chain(after.iter())
        .map(|p| p.msgs_per_s)
        .collect();
    Ok(alone)
}

async fn ingest_in(
    bench: &Bench,
    sandbox: &Sandbox,
    files: &[PathBuf],
    window: usize,
) -> anyhow::Result<IngestAlone> {
    let mut env = sandbox.child_env(16);
    env.push(("ALTDATA_PUBLISH_WINDOW".to_owned(), window.to_string()));
    let mut args = vec!["ingest".to_owned(), "--once".to_owned()];
    args.extend(files.iter().map(|f| f.to_string_lossy().into_owned()));
    let cpu_before = ServerCpu::sample(&bench.nats_pids);
    let role = Role::spawn(&bench.binary, "ingest-alone", &args, &env, &bench.log_dir)?;
    let log = role.log.clone();
    let usage = role.wait(Duration::from_secs(1_800)).await?;
    let cpu = ServerCpu::sample(&bench.nats_pids).since(&cpu_before);
    let usage = usage.succeeded("ingest", &log)?;
    let client = sandbox.client().await?;
    let counts = ingest_counts(&client).await?;
    let identity = IdentityCost::measure(&client, counts.rows_read, cpu.postgres_s).await?;
    Ok(IngestAlone {
        files: files.len(),
        counts,
        seconds: usage.wall_s,
        rows_per_s: counts.rows_read as f64 / usage.wall_s.max(1e-9),
        ingest: usage,
        nats_cpu_s: cpu.nats_s,
        postgres_cpu_s: cpu.postgres_s,
        publish_window: window,
        publish_alone_msgs_per_s: Vec::new(),
        identity,
    })
}
