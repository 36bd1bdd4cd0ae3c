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
    let cpu_before = ServerCpu::sample(bench.nats_pid);
    let role = Role::spawn(&bench.binary, "ingest-alone", &args, &env, &bench.log_dir)?;
    let log = role.log.clone();
    let usage = role.wait(Duration::from_secs(1_800)).await?;
    let cpu = ServerCpu::sample(bench.nats_pid).since(&cpu_before);
    let usage = usage.succeeded("ingest", &log)?;
    let counts = ingest_counts(&sandbox.client().await?).await?;
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
    })
}
