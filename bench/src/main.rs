//! `make bench`: what Altdata Explorer does on this machine, measured for real against the
//! stack from `make stack`, with the roles as child processes of `target/release/altdata`.
//!
//! `BENCH_SCALE=small` (under 5 minutes) or `default` (under 20 minutes). The sizes adapt
//! to the speed measured early in the run so that the budget holds; the chosen sizes are
//! printed. Results: a markdown table on stdout and in `bench/results/latest.md`, everything
//! in `bench/results/latest.json`. See `docs/BENCHMARKS.md`.
//!
//! `BENCH_CLUSTER=1` runs only the end-to-end comparison of the local cluster (`make cluster`)
//! with single-node (`cluster.rs`), and writes `bench/results/cluster-latest.{md,json}`.
//!
//! Every measurement runs in its own fresh database (`altdata_bench_<rand>`) and prefix
//! (`bench_<rand>`), removed afterwards; generated files live in a temp dir under /tmp.

mod batch_alternative;
mod cluster;
mod disclosure;
mod e2e;
mod events;
mod focused;
mod freshness;
mod ingest_alone;
mod limits;
mod machine;
mod proc;
mod queries;
mod report;
mod review_queue;
mod sandbox;
mod stats;
mod writepath;

use anyhow::{anyhow, bail, Context};
use chrono::NaiveDate;
use sandbox::Servers;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What every measurement needs.
pub struct Bench {
    pub servers: Servers,
    pub binary: PathBuf,
    pub js: async_nats::jetstream::Context,
    /// The nats-server processes whose CPU a run counts (one, or the cluster's three).
    pub nats_pids: Vec<i32>,
    pub log_dir: PathBuf,
    pub work_dir: PathBuf,
    pub cores: usize,
}

/// Sizes and durations of one scale.
#[derive(Debug, Clone, Serialize)]
pub struct Scale {
    pub name: String,
    /// The whole run (after the build) must end within this.
    pub budget_s: u64,
    pub days: u32,
    /// End-to-end sizes (events) for the growth of cost; the last is the main run.
    pub growth_sizes: Vec<u64>,
    /// The first end-to-end run: measures the speed that sizes the rest.
    pub probe_size: u64,
    /// Shard counts compared at the probe's size (the probe is the 16-shard point).
    pub shard_variants: Vec<u32>,
    /// Rows (whole day files) of the ingest-alone run beside bare publish alone.
    pub ingest_alone_rows: u64,
    pub jetstream_messages: u64,
    pub publish_sweep_messages: u64,
    pub publish_windows: Vec<usize>,
    pub freshness_rate: u64,
    pub freshness_seconds: u64,
    pub write_events: u64,
    pub per_event_events: u64,
    /// Aggregator settings tried on the same events as the default run (name, value).
    pub window_sweep: Vec<(String, String)>,
    pub query_max_requests: u64,
    pub query_max_seconds: u64,
    pub duckdb_repeats: u32,
}

impl Scale {
    fn named(name: &str) -> anyhow::Result<Scale> {
        match name {
            "small" => Ok(Scale {
                name: "small".to_owned(),
                budget_s: 255,
                days: 14,
                growth_sizes: vec![100_000, 200_000, 300_000],
                probe_size: 60_000,
                shard_variants: vec![4, 64],
                ingest_alone_rows: 300_000,
                jetstream_messages: 200_000,
                publish_sweep_messages: 60_000,
                publish_windows: vec![256, 1_024, 4_096, 16_384],
                freshness_rate: 10_000,
                freshness_seconds: 10,
                write_events: 100_000,
                per_event_events: 8_000,
                window_sweep: sweep_variants(false),
                query_max_requests: 1_500,
                query_max_seconds: 3,
                duckdb_repeats: 3,
            }),
            "default" | "" => Ok(Scale {
                name: "default".to_owned(),
                budget_s: 1_080,
                days: 28,
                growth_sizes: vec![1_000_000, 2_000_000, 5_000_000],
                probe_size: 400_000,
                shard_variants: vec![4, 64],
                ingest_alone_rows: 1_000_000,
                jetstream_messages: 1_000_000,
                publish_sweep_messages: 200_000,
                publish_windows: vec![256, 1_024, 4_096, 16_384],
                freshness_rate: 50_000,
                freshness_seconds: 30,
                write_events: 250_000,
                per_event_events: 20_000,
                window_sweep: sweep_variants(true),
                query_max_requests: 5_000,
                query_max_seconds: 6,
                duckdb_repeats: 2,
            }),
            other => bail!("BENCH_SCALE={other:?}: expected small or default"),
        }
    }
}

fn sweep_variants(full: bool) -> Vec<(String, String)> {
    // The old pin TTL first: it decided when an aggregator's first commit came (a rewind
    // waits for it); the default is now 3 s and a clean start skips the rewind.
    let mut variants = vec![
        ("ALTDATA_AGG_PIN_TTL", "10s"),
        ("ALTDATA_AGG_WINDOW_EVENTS", "5000"),
    ];
    if full {
        variants.push(("ALTDATA_AGG_WINDOW_EVENTS", "200000"));
    }
    variants
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Everything measured; `latest.json` is this.
#[derive(Debug, Serialize, Default)]
pub struct Results {
    pub started_at: String,
    pub total_seconds: f64,
    pub scale: Option<Scale>,
    pub machine: machine::Machine,
    pub versions: machine::Versions,
    pub settings: Vec<(String, String)>,
    pub chosen: Vec<String>,
    pub notes: Vec<String>,
    pub generated_rows: u64,
    pub generated_files: usize,
    pub generated_bytes: u64,
    pub csv: Option<limits::CsvLimit>,
    pub jetstream: Option<limits::JetStreamLimit>,
    pub publish_sweep: Vec<limits::PublishOnly>,
    pub ingest_alone: Option<ingest_alone::IngestAlone>,
    pub e2e: Vec<e2e::E2eRun>,
    pub main_run: Option<usize>,
    pub write_batched: Option<writepath::BatchedRun>,
    pub write_per_event: Option<writepath::PerEventRun>,
    pub window_sweep: Vec<writepath::BatchedRun>,
    pub queries: Option<queries::Queries>,
    pub pool_probe: Vec<(String, queries::Load)>,
    pub freshness: Option<freshness::Freshness>,
    pub review_queue: Option<review_queue::ReviewQueue>,
    pub disclosure: Option<disclosure::Disclosure>,
    pub batch_alternative: Option<batch_alternative::BatchAlternative>,
    pub ratios: report::Ratios,
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async_main())
}

async fn async_main() -> anyhow::Result<()> {
    let servers = Servers::from_env();
    let work_dir = std::env::temp_dir().join(format!("altdata-bench-{}", sandbox::random_suffix()));
    std::fs::create_dir_all(work_dir.join("logs"))?;
    let outcome = tokio::select! {
        outcome = run(&servers, &work_dir) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    // Whatever happened: no database, stream or key of ours is left behind.
    sandbox::cleanup_all().await;
    let _ = std::fs::remove_dir_all(work_dir.join("data"));
    match outcome {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&work_dir);
            Ok(())
        }
        Err(error) => {
            eprintln!(
                "bench failed; the roles' logs are kept in {}",
                work_dir.join("logs").display()
            );
            Err(error)
        }
    }
}

pub(crate) fn say(message: impl AsRef<str>) {
    eprintln!(
        "[bench {}] {}",
        chrono::Local::now().format("%H:%M:%S"),
        message.as_ref()
    );
}

async fn ingest_given_files(bench: &Bench, list: &str) -> anyhow::Result<()> {
    let files: Vec<PathBuf> = list
        .split(',')
        .filter(|f| !f.trim().is_empty())
        .map(|f| PathBuf::from(f.trim()))
        .collect();
    if files.is_empty() {
        bail!("BENCH_INGEST_FILES names no file");
    }
    let counted = limits::csv_limit(files.clone()).await?;
    say(format!(
        "ingest alone: {} rows in {} given files; bare publish alone of as many messages before and after",
        stats::thousands(counted.rows as f64),
        files.len()
    ));
    let alone = ingest_alone::run(bench, &files, counted.rows, 4_096).await?;
    say(format!(
        "  ingest {} rows/s ({:.1}s, {:.1} CPU s, nats-server {:.1} CPU s); bare publish {} msg/s ({}); ratio {:.2}",
        stats::thousands(alone.rows_per_s),
        alone.seconds,
        alone.ingest.cpu_s(),
        alone.nats_cpu_s,
        stats::thousands(alone.publish_alone_mean()),
        alone
            .publish_alone_msgs_per_s
            .iter()
            .map(|r| stats::thousands(*r))
            .collect::<Vec<_>>()
            .join(" before, ")
            + " after",
        alone.ratio()
    ));
    Ok(())
}

/// Generated day files of about `rows` rows over `days` days ending two days ago, in
/// `<work dir>/data`.
pub(crate) struct DataSet {
    pub files: Vec<PathBuf>,
    pub start: NaiveDate,
    pub data_dir: PathBuf,
}

/// Generates about `rows` rows over `days` days (the generator writes ~1.86 rows per card and
/// day), ending two days ago.
pub(crate) async fn generate_rows(bench: &Bench, days: u32, rows: u64) -> anyhow::Result<DataSet> {
    let cards = (rows as f64 / (f64::from(days) * 1.86)).ceil() as u64;
    let start = chrono::Utc::now().date_naive() - chrono::Duration::days(i64::from(days) + 2);
    let data_dir = bench.work_dir.join("data");
    say(format!(
        "generating ~{} rows: {days} days x {cards} cards from {start} into {}",
        stats::thousands(rows as f64),
        data_dir.display()
    ));
    let files = generate(bench, days, cards, start, &data_dir).await?;
    Ok(DataSet {
        files,
        start,
        data_dir,
    })
}

/// `altdata generate` of `days` days of `cards` cards from `start` into `data_dir` (seed 7, with
/// the ground-truth sidecar); the day files, in order.
async fn generate(
    bench: &Bench,
    days: u32,
    cards: u64,
    start: NaiveDate,
    data_dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let generate = proc::Role::spawn(
        &bench.binary,
        "generate",
        &[
            "generate".to_owned(),
            "--days".to_owned(),
            days.to_string(),
            "--cards".to_owned(),
            cards.to_string(),
            "--seed".to_owned(),
            "7".to_owned(),
            "--start".to_owned(),
            start.to_string(),
            "--out".to_owned(),
            data_dir.to_string_lossy().into_owned(),
            "--truth-detail".to_owned(),
        ],
        &[],
        &bench.log_dir,
    )?;
    let generate_log = generate.log.clone();
    generate
        .wait(Duration::from_secs(600))
        .await?
        .succeeded("generate", &generate_log)?;
    let provider_dir = data_dir.join("provider=default");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&provider_dir)
        .with_context(|| format!("{}", provider_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    Ok(files)
}

/// The stack's state directory: `ALTDATA_STACK_DIR`, else `<repo>/.stack` (as the scripts).
fn stack_dir(repo: &Path) -> PathBuf {
    std::env::var("ALTDATA_STACK_DIR")
        .ok()
        .filter(|d| !d.is_empty())
        .map_or_else(|| repo.join(".stack"), PathBuf::from)
}

/// Files of the first `k` days (the smallest `k` reaching `size` rows).
fn files_for(size: u64, per_file: &[u64]) -> usize {
    let mut total = 0;
    for (index, rows) in per_file.iter().enumerate() {
        total += rows;
        if total as f64 >= size as f64 * 0.97 {
            return index + 1;
        }
    }
    per_file.len()
}

fn rows_of(k: usize, per_file: &[u64]) -> u64 {
    per_file.iter().take(k).sum()
}

/// Settings the roles run with that the reader should know.
fn effective_settings() -> Vec<(String, String)> {
    let known = [
        ("ALTDATA_SHARDS", "16"),
        ("ALTDATA_AGG_WINDOW_EVENTS", "50000"),
        ("ALTDATA_AGG_WINDOW_AGE", "1s"),
        ("ALTDATA_AGG_PULL_BATCH", "256"),
        ("ALTDATA_AGG_COMPACT_INTERVAL", "60s"),
        ("ALTDATA_PUBLISH_WINDOW", "4096"),
        ("ALTDATA_CHECKPOINT_ROWS", "100000"),
        (
            "ALTDATA_DB_POOL_SIZE",
            "8 (gateway, ingest); aggregator: shards + 3",
        ),
        ("ALTDATA_RESOLUTION_CACHE", "500000"),
        ("ALTDATA_CACHE_TTL", "1h"),
        ("RUST_LOG", "info"),
    ];
    let mut settings: Vec<(String, String)> = known
        .iter()
        .map(|(name, default)| {
            let value = std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{v} (from the environment)"))
                .unwrap_or_else(|| (*default).to_owned());
            ((*name).to_owned(), value)
        })
        .collect();
    for (name, value) in std::env::vars() {
        if name.starts_with("ALTDATA_") && !known.iter().any(|(k, _)| *k == name) {
            settings.push((name, format!("{value} (from the environment)")));
        }
    }
    settings.push((
        "bench overrides".to_owned(),
        "gateway rate limit 100000/s; freshness gateway k-anonymity 1; stream limits sized per run"
            .to_owned(),
    ));
    settings
}

async fn run(servers: &Servers, work_dir: &Path) -> anyhow::Result<()> {
    let run_started = Instant::now();
    let scale_name = std::env::var("BENCH_SCALE").unwrap_or_default();
    let scale = Scale::named(scale_name.trim())?;
    let budget = Duration::from_secs(
        std::env::var("BENCH_BUDGET_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(scale.budget_s),
    );
    let deadline = run_started + budget;
    let repo = std::env::current_dir()?;
    // `BENCH_ALTDATA` drives another build of the roles (say, the one before a change) with
    // this bench.
    let binary = std::env::var("BENCH_ALTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo.join("target/release/altdata"));
    if !binary.exists() {
        bail!("{} is missing: run `make build`", binary.display());
    }
    let nats = altdata_common::connect::nats(&servers.nats_url)
        .await
        .context("NATS (run `make stack`)")?;
    let bench = Bench {
        servers: servers.clone(),
        binary: binary.clone(),
        js: limits::publisher(nats.clone()),
        nats_pids: proc::nats_pid(&stack_dir(&repo), &servers.nats_url)
            .into_iter()
            .collect(),
        log_dir: work_dir.join("logs"),
        work_dir: work_dir.to_owned(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut results = Results {
        started_at: chrono::Utc::now().to_rfc3339(),
        machine: machine::machine(),
        versions: machine::versions(servers, &nats).await,
        settings: effective_settings(),
        scale: Some(scale.clone()),
        ..Results::default()
    };
    if bench.nats_pids.is_empty() {
        results
            .notes
            .push("nats-server's process was not found: its CPU is not reported".to_owned());
    }
    print!("{}", report::header(&results, budget));

    // ---- `BENCH_INGEST_FILES=a.csv,b.csv`: issue 3's number on files of your choosing (say,
    // one 1M-row file), bare publish alone before and after, nothing else.
    if let Ok(list) = std::env::var("BENCH_INGEST_FILES") {
        return ingest_given_files(&bench, &list).await;
    }
    // ---- `BENCH_ONLY=queries` and/or `writepath`: those parts alone, on a smaller data set.
    if let Some(parts) = focused::Parts::from_env()? {
        return focused::run(&bench, &scale, parts, &repo).await;
    }

    // ---- `BENCH_CLUSTER=1`: end to end on the local cluster beside single-node, nothing else.
    if std::env::var("BENCH_CLUSTER").is_ok_and(|v| !v.is_empty() && v != "0") {
        return cluster::compare(&bench, &scale, results, budget, deadline, &repo).await;
    }

    // ---- Generate the data set of the largest run once; smaller runs take its first days.
    let main_nominal = *scale.growth_sizes.last().unwrap_or(&300_000);
    let DataSet {
        files,
        start,
        data_dir,
    } = generate_rows(&bench, scale.days, main_nominal).await?;

    // ---- 1. Limits.
    say("limit: CSV parse (csv ByteRecord, one thread)");
    let csv = limits::csv_limit(files.clone()).await?;
    let per_file = csv.per_file_rows.clone();
    results.generated_rows = csv.rows;
    results.generated_files = files.len();
    results.generated_bytes = csv.bytes;
    say(format!(
        "  {} rows in {:.2}s: {} rows/s",
        stats::thousands(csv.rows as f64),
        csv.seconds,
        stats::thousands(csv.rows_per_s)
    ));
    results.csv = Some(csv);
    say(format!(
        "limit: bare JetStream, {} messages, publish (Msg-Id, window 4096) + pull consume (ack) together",
        stats::thousands(scale.jetstream_messages as f64)
    ));
    let jetstream = limits::jetstream_limit(servers, scale.jetstream_messages, 4_096).await?;
    say(format!(
        "  together {} msg/s (publisher done at {} msg/s)",
        stats::thousands(jetstream.together_msgs_per_s),
        stats::thousands(jetstream.publish_msgs_per_s)
    ));
    results.jetstream = Some(jetstream);
    say("limit: publish alone at several windows of outstanding acks");
    results.publish_sweep = limits::publish_window_sweep(
        servers,
        scale.publish_sweep_messages,
        &scale.publish_windows,
    )
    .await?;
    for p in &results.publish_sweep {
        say(format!(
            "  window {:>6}: {} msg/s",
            p.publish_window,
            stats::thousands(p.msgs_per_s)
        ));
    }

    // ---- Ingest alone beside bare publish alone (the ingest issue's number).
    let alone_files = files_for(scale.ingest_alone_rows, &per_file);
    let alone_rows = rows_of(alone_files, &per_file);
    say(format!(
        "ingest alone: {} rows ({} day files), no consumer; bare publish alone of as many messages before and after",
        stats::thousands(alone_rows as f64),
        alone_files
    ));
    let alone = ingest_alone::run(&bench, &files[..alone_files], alone_rows, 4_096).await?;
    say(format!(
        "  ingest {} rows/s ({:.1}s, {:.1} CPU s); bare publish {} msg/s; ratio {:.2}",
        stats::thousands(alone.rows_per_s),
        alone.seconds,
        alone.ingest.cpu_s(),
        stats::thousands(alone.publish_alone_mean()),
        alone.ratio()
    ));
    results.ingest_alone = Some(alone);
    if std::env::var("BENCH_ONLY").is_ok_and(|only| only == "ingest") {
        say("BENCH_ONLY=ingest: stopping after ingest alone (no report written)");
        return Ok(());
    }

    // ---- 2 + 6. End to end and growth of cost. A probe first (16 shards): it measures the
    // speed that sizes the rest so the budget holds; the shard variants run at its size.
    let probe_files = files_for(scale.probe_size, &per_file);
    let probe_events = rows_of(probe_files, &per_file);
    say(format!(
        "end to end (probe): {} rows ({} day files), 16 shards",
        stats::thousands(probe_events as f64),
        probe_files
    ));
    let (probe, _) = e2e::run(
        &bench,
        "e2e-probe",
        &files[..probe_files],
        16,
        probe_events,
        &[],
        false,
    )
    .await?;
    say(format!(
        "  {} ev/s ({:.1}s; ingest {:.1}s at {} rows/s)",
        stats::thousands(probe.events_per_s),
        probe.seconds,
        probe.ingest_seconds,
        stats::thousands(probe.ingest_rows_per_s)
    ));
    // The model that sizes the rest: a fixed cost (the aggregator's start until its first
    // commit, the tail after ingest) plus the rows at ingest's rate, which is the slower stage.
    // Larger runs were ~20% slower per row than the probe here (more distinct descriptors,
    // bigger indexes): plan with that margin.
    let ingest_rate = (probe.ingest_rows_per_s * 0.8).max(500.0);
    let fixed = (probe.seconds - probe.counts.rows_read as f64 / ingest_rate)
        .max(probe.aggregator_tail_seconds);
    let speed = ingest_rate;
    results.e2e.push(probe);

    let overhead = 2.0 + fixed; // database, migrations, role start-up and shutdown per run
    let e2e_time = |rows: u64| rows as f64 / speed + overhead;
    let left = |now: Instant| deadline.saturating_duration_since(now).as_secs_f64();
    for &shards in &scale.shard_variants {
        if e2e_time(probe_events) * 1.3 > left(Instant::now()) * 0.25 {
            results.notes.push(format!(
                "shards: the {shards}-shard run was skipped to keep the budget"
            ));
            continue;
        }
        say(format!(
            "end to end (shards): {} rows, {shards} shards",
            stats::thousands(probe_events as f64)
        ));
        let (run, _) = e2e::run(
            &bench,
            &format!("e2e-shards-{shards}"),
            &files[..probe_files],
            shards,
            probe_events,
            &[],
            false,
        )
        .await?;
        say(format!("  {} ev/s", stats::thousands(run.events_per_s)));
        results.e2e.push(run);
    }

    // Time the phases after the growth runs need, at the speeds seen so far (the aggregator
    // alone is assumed no faster than the pipeline, which is what this machine shows).
    let (generated_bytes, generated_rows) = (results.generated_bytes, results.generated_rows);
    let reserve = |main_rows: u64| -> f64 {
        let write = scale.write_events.min(main_rows) as f64;
        // Each aggregator start costs ~10 s before its first commit on this machine.
        let write_s = (1 + scale.window_sweep.len()) as f64 * (write / (speed * 2.0) + overhead)
            + write / 40_000.0;
        let per_event_s = scale.per_event_events as f64 / 1_000.0 + 3.0;
        let main_bytes = generated_bytes as f64 * main_rows as f64 / generated_rows.max(1) as f64;
        let duckdb_s = f64::from(scale.duckdb_repeats + 3) * (main_bytes / 30e6 + 1.0);
        let queries_s = 5.0 * scale.query_max_seconds as f64 + 10.0 + duckdb_s;
        let freshness_s = scale.freshness_seconds as f64 + 35.0;
        write_s + per_event_s + queries_s + freshness_s + 5.0
    };
    // Growth sizes keep the nominal proportions (e.g. 1M / 2M / 5M) scaled by one factor.
    let nominal: Vec<u64> = scale.growth_sizes.clone();
    let main_nominal = *nominal.last().unwrap_or(&300_000);
    let mut factor = (results.generated_rows as f64 / main_nominal as f64).min(1.0);
    loop {
        let needed: f64 = nominal
            .iter()
            .map(|&n| e2e_time((n as f64 * factor) as u64))
            .sum::<f64>()
            + reserve((main_nominal as f64 * factor) as u64);
        if needed <= left(Instant::now()) || factor < 0.05 {
            break;
        }
        factor *= 0.93;
    }
    let mut growth_files: Vec<usize> = nominal
        .iter()
        .map(|&n| files_for((n as f64 * factor) as u64, &per_file))
        .collect();
    growth_files.dedup();
    let main_files = *growth_files.last().unwrap_or(&probe_files);
    if factor < 0.97 {
        results.chosen.push(format!(
            "growth sizes scaled to {:.0}% of the nominal {} so the {}s budget holds at the measured {} rows/s of ingest plus {:.0} s per run (BENCH_BUDGET_SECS changes the budget)",
            factor * 100.0,
            nominal
                .iter()
                .map(|n| stats::thousands(*n as f64))
                .collect::<Vec<_>>()
                .join(" / "),
            budget.as_secs(),
            stats::thousands(speed),
            overhead
        ));
    }
    results.chosen.push(format!(
        "growth runs: {} rows ({} of {} day files), 16 shards; shard variants at {} rows",
        growth_files
            .iter()
            .map(|&k| stats::thousands(rows_of(k, &per_file) as f64))
            .collect::<Vec<_>>()
            .join(" / "),
        growth_files
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(" / "),
        files.len(),
        stats::thousands(probe_events as f64)
    ));
    say(results.chosen.join("; "));
    for &k in &growth_files[..growth_files.len().saturating_sub(1)] {
        let rows = rows_of(k, &per_file);
        say(format!(
            "end to end (growth): {} rows, 16 shards",
            stats::thousands(rows as f64)
        ));
        let (run, _) = e2e::run(
            &bench,
            &format!("e2e-growth-{k}d"),
            &files[..k],
            16,
            rows,
            &[],
            false,
        )
        .await?;
        say(format!("  {} ev/s", stats::thousands(run.events_per_s)));
        results.e2e.push(run);
    }

    let main_rows = rows_of(main_files, &per_file);
    say(format!(
        "end to end (main): {} rows, 16 shards",
        stats::thousands(main_rows as f64)
    ));
    let (main_run, main_sandbox) = e2e::run(
        &bench,
        "e2e-main",
        &files[..main_files],
        16,
        main_rows,
        &[],
        true,
    )
    .await?;
    say(format!(
        "  {} ev/s ({:.1}s), {} merchants",
        stats::thousands(main_run.events_per_s),
        main_run.seconds,
        main_run.merchants
    ));
    let main_sandbox = main_sandbox.ok_or_else(|| anyhow!("main sandbox missing"))?;
    let main_outcome = after_main(
        &bench,
        &scale,
        &mut results,
        main_run,
        &main_sandbox,
        &files[..main_files],
        &data_dir,
        start,
        start + chrono::Duration::days(main_files as i64 - 1),
        deadline,
        &repo,
    )
    .await;
    main_sandbox.cleanup().await;
    main_outcome?;

    // ---- 3. Freshness, at a rate the aggregator can sustain.
    let aggregator_capacity = results
        .write_batched
        .as_ref()
        .map_or(speed, |b| b.steady_events_per_s.unwrap_or(b.events_per_s));
    let nominal = std::env::var("BENCH_FRESHNESS_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(scale.freshness_rate);
    let (target, note) = if std::env::var("BENCH_FRESHNESS_RATE").is_ok() {
        (nominal, "rate from BENCH_FRESHNESS_RATE".to_owned())
    } else if (nominal as f64) > aggregator_capacity * 0.7 {
        let target = ((aggregator_capacity * 0.5 / 1_000.0).round() * 1_000.0).max(1_000.0) as u64;
        (
            target,
            format!(
                "the nominal {} ev/s is above what the aggregator sustains here ({} ev/s alone, measured above): at that rate the backlog, not freshness, would be measured; run at half the capacity instead",
                stats::thousands(nominal as f64),
                stats::thousands(aggregator_capacity)
            ),
        )
    } else {
        (nominal, "nominal rate".to_owned())
    };
    let seconds = scale
        .freshness_seconds
        .min(left(Instant::now()).max(20.0) as u64 - 15)
        .max(5);
    say(format!(
        "freshness: {} ev/s for {seconds}s, a marker every 200 ms, polled through the gateway",
        stats::thousands(target as f64)
    ));
    let fresh = freshness::run(&bench, nominal, target, note, seconds).await?;
    say(format!(
        "  publish -> visible p50 {:.0} ms, p99 {:.0} ms ({} of {} markers; lag at end {})",
        fresh.latency.p50_ms,
        fresh.latency.p99_ms,
        fresh.visible,
        fresh.markers,
        fresh.lag_events_at_end
    ));
    results.freshness = Some(fresh);

    // ---- Report.
    results.machine.loadavg_at_end = machine::loadavg();
    results.total_seconds = run_started.elapsed().as_secs_f64();
    results.ratios = report::ratios(&results);
    let markdown = report::markdown(&results, budget);
    println!("{markdown}");
    let out_dir = std::env::var("BENCH_RESULTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo.join("bench/results"));
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("latest.md"), &markdown)?;
    std::fs::write(
        out_dir.join("latest.json"),
        serde_json::to_vec_pretty(&results)?,
    )?;
    say(format!(
        "done in {:.0}s; wrote {} and {}",
        results.total_seconds,
        out_dir.join("latest.md").display(),
        out_dir.join("latest.json").display()
    ));
    Ok(())
}

/// What needs the main run's data: the write path (its events) and the queries (its
/// database and files).
#[allow(clippy::too_many_arguments)]
async fn after_main(
    bench: &Bench,
    scale: &Scale,
    results: &mut Results,
    main_run: e2e::E2eRun,
    main_sandbox: &sandbox::Sandbox,
    main_files: &[PathBuf],
    data_dir: &Path,
    start: NaiveDate,
    as_of: NaiveDate,
    deadline: Instant,
    repo: &Path,
) -> anyhow::Result<()> {
    results.main_run = Some(results.e2e.len());
    let main_published = main_run.counts.events();
    results.e2e.push(main_run);

    // ---- The review queue the main run left, and category answers against the truth.
    let queue = review_queue::measure(main_sandbox, data_dir, main_files, as_of).await?;
    say(format!(
        "review queue: {} groups need a person ({:.0} per million rows), {} local shops counted in their category; brand spend attributed automatically {:.4}; top 50 groups cover {:.4} of waiting spend ({:.4} of all held spend); coffee shops in CA {} to {}: counted {:+.1}% vs truth, WoW {} vs {}",
        queue.groups_waiting,
        queue.groups_per_million_rows,
        queue.local_groups,
        queue.brand_spend_attributed_automatically,
        queue.top50_share_of_waiting_spend,
        queue.top50_share_of_held_spend,
        queue.coffee_ca.week_from,
        queue.coffee_ca.week_to,
        queue.coffee_ca.counted_gap * 100.0,
        queue.coffee_ca.counted_growth.map_or("n/a".to_owned(), |g| format!("{:+.1}%", g * 100.0)),
        queue.coffee_ca.truth_growth.map_or("n/a".to_owned(), |g| format!("{:+.1}%", g * 100.0)),
    ));
    results.review_queue = Some(queue);
    let price = disclosure::measure(main_sandbox, as_of).await?;
    for q in &price.questions {
        say(format!(
            "disclosure (k = {}): {}: {:.4} of net spend withheld ({} of {} cells)",
            price.k, q.question, q.withheld_share, q.withheld_cells, q.cells
        ));
    }
    results.disclosure = Some(price);

    // ---- The batch alternative over the same files, given the run's resolution.
    let python = repo.join(".stack/venv/bin/python");
    match batch_alternative::measure(
        main_sandbox,
        &python,
        &repo.join("bench/batch_alternative.py"),
        main_files,
        &bench.work_dir,
    )
    .await
    {
        Ok(batch) => {
            say(format!(
                "batch alternative ({}): the same daily cells in {:.1}s ({} cells, {} mapped transactions)",
                batch.engine,
                batch.seconds,
                batch.cells,
                stats::thousands(batch.mapped_transactions as f64)
            ));
            results.batch_alternative = Some(batch);
        }
        Err(error) => results
            .notes
            .push(format!("the batch alternative did not run: {error:#}")),
    }

    // ---- 4. Write path.
    let write_events = scale.write_events.min(main_published);
    say(format!(
        "write path: reading {} events of the main run's stream",
        stats::thousands(write_events as f64)
    ));
    let events = writepath::read_events(bench, main_sandbox, write_events).await?;
    say(format!(
        "write path: the aggregator alone over {} events (16 shards, default window)",
        stats::thousands(events.len() as f64)
    ));
    let batched = writepath::batched(bench, &events, 16, &[]).await?;
    say(format!(
        "  {} ev/s from its first commit (at {:.1}s), {} ev/s from its start",
        batched
            .steady_events_per_s
            .map_or("n/a".to_owned(), stats::thousands),
        batched.first_commit_s.unwrap_or(0.0),
        stats::thousands(batched.events_per_s)
    ));
    let subset = (scale.per_event_events as usize).min(events.len());
    say(format!(
        "write path: one autocommit INSERT … ON CONFLICT per event over the first {} of them",
        stats::thousands(subset as f64)
    ));
    let per_event = writepath::per_event(bench, &events[..subset]).await?;
    say(format!(
        "  {} ev/s",
        stats::thousands(per_event.events_per_s)
    ));
    let capacity = batched.steady_events_per_s.unwrap_or(batched.events_per_s);
    results.write_batched = Some(batched);
    results.write_per_event = Some(per_event);
    let sweep_events = events.len();
    for (name, value) in &scale.window_sweep {
        let needed = sweep_events as f64 / capacity.max(1.0) + 20.0;
        let later = 8.0 * scale.query_max_seconds as f64 + scale.freshness_seconds as f64 + 60.0;
        if deadline
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
            < needed + later
        {
            results.notes.push(format!(
                "aggregator settings: {name}={value} skipped to keep the budget"
            ));
            continue;
        }
        say(format!(
            "write path: aggregator alone, {name}={value}, {} events",
            stats::thousands(sweep_events as f64)
        ));
        let run = writepath::batched(
            bench,
            &events[..sweep_events],
            16,
            &[(name.clone(), value.clone())],
        )
        .await?;
        say(format!(
            "  {} ev/s from its first commit, {} ev/s from its start",
            run.steady_events_per_s
                .map_or("n/a".to_owned(), stats::thousands),
            stats::thousands(run.events_per_s)
        ));
        results.window_sweep.push(run);
    }
    drop(events);

    // ---- 5. Queries.
    let python = repo.join(".stack/venv/bin/python");
    let script = repo.join("bench/duckdb_bench.py");
    let duckdb_ready = std::process::Command::new(&python)
        .args(["-c", "import duckdb"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !duckdb_ready {
        results.notes.push(
            "DuckDB is not installed in .stack/venv (`make bench` installs it): its comparison is missing"
                .to_owned(),
        );
    }
    let transactions = data_dir.join("_truth/transactions.csv");
    let merchants = repo.join("data/merchants.csv");
    say(format!(
        "queries: 4 questions, cached and uncached, concurrency {}, at most {} requests / {}s each; then DuckDB",
        queries::CONCURRENCY,
        scale.query_max_requests,
        scale.query_max_seconds
    ));
    let query_results = queries::run(
        bench,
        main_sandbox,
        16,
        start,
        as_of,
        scale.query_max_requests,
        Duration::from_secs(scale.query_max_seconds),
        duckdb_ready.then_some(queries::DuckDbInput {
            python: &python,
            script: &script,
            files: main_files,
            transactions: &transactions,
            merchants: &merchants,
            repeats: scale.duckdb_repeats,
            work_dir: &bench.work_dir,
        }),
        &[],
    )
    .await?;
    for q in &query_results.results {
        say(format!(
            "  {}: uncached p50 {:.1} ms ({} req/s), cached p50 {:.1} ms ({} req/s), DuckDB {}",
            q.name,
            q.uncached.latency.p50_ms,
            stats::thousands(q.uncached.req_per_s),
            q.cached.latency.p50_ms,
            stats::thousands(q.cached.req_per_s),
            q.duckdb_median_s
                .map_or("n/a".to_owned(), |s| format!("{s:.2}s"))
        ));
    }
    results.versions.duckdb = query_results.duckdb_version.clone();
    if !query_results.duckdb_note.is_empty() {
        results.notes.push(query_results.duckdb_note.clone());
    }
    let canonical_path = query_results
        .results
        .first()
        .map(|q| q.path.clone())
        .unwrap_or_default();
    results.queries = Some(query_results);

    // The gateway's pool size against the uncached canonical question.
    for pool in ["32"] {
        if deadline
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
            < scale.query_max_seconds as f64 + scale.freshness_seconds as f64 + 50.0
        {
            results
                .notes
                .push(format!("pool probe {pool} skipped to keep the budget"));
            continue;
        }
        say(format!(
            "queries: uncached canonical with ALTDATA_DB_POOL_SIZE={pool}"
        ));
        let load = pool_probe(bench, main_sandbox, &canonical_path, pool, scale).await?;
        say(format!(
            "  p50 {:.1} ms, {} req/s",
            load.latency.p50_ms,
            stats::thousands(load.req_per_s)
        ));
        results.pool_probe.push((pool.to_owned(), load));
    }
    Ok(())
}

async fn pool_probe(
    bench: &Bench,
    sandbox: &sandbox::Sandbox,
    path: &str,
    pool: &str,
    scale: &Scale,
) -> anyhow::Result<queries::Load> {
    let port = freshness::free_port()?;
    let mut env = sandbox.child_env(16);
    env.extend(freshness::gateway_env(port));
    env.push(("ALTDATA_DB_POOL_SIZE".to_owned(), pool.to_owned()));
    let gateway = proc::Role::spawn(
        &bench.binary,
        &format!("pool-{pool}-gateway"),
        &["gateway".to_owned()],
        &env,
        &bench.log_dir,
    )?;
    let base = format!("http://127.0.0.1:{port}");
    freshness::wait_for_gateway(&base, &gateway).await?;
    let key = freshness::create_key(bench, &env)?;
    let load = queries::load(
        &format!("{base}{path}"),
        &key,
        true,
        scale.query_max_requests,
        Duration::from_secs(scale.query_max_seconds),
        queries::CONCURRENCY,
    )
    .await;
    let _ = gateway.stop(Duration::from_secs(30)).await;
    load
}
