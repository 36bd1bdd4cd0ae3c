//! `BENCH_ONLY=queries`, `BENCH_ONLY=writepath` or both (`queries,writepath`): those parts
//! of the bench alone, on a smaller data set, to compare a change before and after in the same
//! conditions in a few minutes.
//!
//! One end-to-end run (`BENCH_ROWS` rows, default 1,000,000, over the scale's days, 16
//! shards) fills a fresh database; then the parts asked for run on it exactly as in the full
//! bench: the four questions (cached, uncached at concurrency 32, uncached one at a time; DuckDB
//! over the same files unless `BENCH_DUCKDB=0`), and the aggregator alone against one upsert
//! per event. `BENCH_KEEP_DATABASE=1` keeps the database and names it (to `EXPLAIN` the
//! gateway's statements on it); `BENCH_DATABASE=<name>` runs the questions again on such a
//! database, migrated to this build's schema, without generating or ingesting anything.
//! `BENCH_QUERIES_JSON=<file>` writes the questions' figures and answers there.

use crate::sandbox::Sandbox;
use crate::stats::thousands;
use crate::{e2e, generate_rows, queries, rows_of, say, writepath, Bench, DataSet, Scale};
use anyhow::{bail, Context};
use chrono::NaiveDate;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The parts `BENCH_ONLY` asks for.
#[derive(Debug, Clone, Copy)]
pub struct Parts {
    pub queries: bool,
    pub writepath: bool,
}

impl Parts {
    /// `None` when `BENCH_ONLY` names neither part (the full bench, or `ingest`).
    pub fn from_env() -> anyhow::Result<Option<Parts>> {
        let Ok(only) = std::env::var("BENCH_ONLY") else {
            return Ok(None);
        };
        let names: Vec<&str> = only.split(',').map(str::trim).collect();
        if names == ["ingest"] {
            return Ok(None);
        }
        for name in &names {
            if !["queries", "writepath"].contains(name) {
                bail!(
                    "BENCH_ONLY={only:?}: expected ingest, queries, writepath or queries,writepath"
                );
            }
        }
        Ok(Some(Parts {
            queries: names.contains(&"queries"),
            writepath: names.contains(&"writepath"),
        }))
    }
}

pub async fn run(bench: &Bench, scale: &Scale, parts: Parts, repo: &Path) -> anyhow::Result<()> {
    if let Ok(database) = std::env::var("BENCH_DATABASE") {
        if parts.writepath {
            bail!("BENCH_DATABASE: the write path needs the run's stream; ask for queries only");
        }
        say(format!("queries on the kept database {database}"));
        let sandbox = Sandbox::attach("queries-kept", &bench.servers, &database).await?;
        let outcome = questions(bench, scale, &sandbox, None, repo).await;
        sandbox.cleanup().await;
        return outcome;
    }

    let rows: u64 = match std::env::var("BENCH_ROWS") {
        Ok(value) => value
            .parse()
            .with_context(|| format!("BENCH_ROWS={value:?}"))?,
        Err(_) => 1_000_000,
    };
    let DataSet {
        files, data_dir, ..
    } = generate_rows(bench, scale.days, rows).await?;
    let per_file = crate::limits::csv_limit(files.clone()).await?.per_file_rows;
    let events = rows_of(files.len(), &per_file);
    say(format!(
        "end to end: {} rows ({} day files), 16 shards",
        thousands(events as f64),
        files.len()
    ));
    let (run, sandbox) = e2e::run(bench, "e2e-focused", &files, 16, events, &[], true).await?;
    let mut sandbox = sandbox.context("the end-to-end run's sandbox")?;
    let million = run.counts.events() as f64 / 1e6;
    say(format!(
        "  {} ev/s ({:.1}s); CPU s per million events: ingest {:.1}, aggregator {:.1}, PostgreSQL {:.1}, nats-server {:.1}",
        thousands(run.events_per_s),
        run.seconds,
        run.ingest.cpu_s() / million,
        run.aggregator.cpu_s() / million,
        run.postgres_cpu_s / million,
        run.nats_cpu_s / million,
    ));

    let mut outcome = Ok(());
    if parts.writepath {
        outcome = write_path(bench, scale, &sandbox, run.counts.events()).await;
    }
    if parts.queries && outcome.is_ok() {
        outcome = questions(bench, scale, &sandbox, Some((&files, &data_dir)), repo).await;
    }
    if std::env::var("BENCH_KEEP_DATABASE").is_ok_and(|keep| keep == "1") {
        sandbox.drops_database = false;
        say(format!(
            "kept database {} (BENCH_DATABASE={} reruns the questions on it)",
            sandbox.database, sandbox.database
        ));
    }
    sandbox.cleanup().await;
    outcome
}

/// The aggregator alone over the run's events, against one upsert per event.
async fn write_path(
    bench: &Bench,
    scale: &Scale,
    sandbox: &Sandbox,
    published: u64,
) -> anyhow::Result<()> {
    let events = writepath::read_events(bench, sandbox, scale.write_events.min(published)).await?;
    say(format!(
        "write path: the aggregator alone over {} events (16 shards, default window)",
        thousands(events.len() as f64)
    ));
    let batched = writepath::batched(bench, &events, 16, &[]).await?;
    let steady = batched.steady_events_per_s.unwrap_or(batched.events_per_s);
    say(format!(
        "  {} ev/s from its first commit; PostgreSQL {:.1} CPU s, aggregator {:.1} CPU s",
        thousands(steady),
        batched.postgres_cpu_s,
        batched.aggregator.cpu_s()
    ));
    let subset = (scale.per_event_events as usize).min(events.len());
    let per_event = writepath::per_event(bench, &events[..subset]).await?;
    say(format!(
        "  one upsert per event: {} ev/s; write_path_vs_per_event_ratio {:.0}",
        thousands(per_event.events_per_s),
        steady / per_event.events_per_s.max(1e-9)
    ));
    Ok(())
}

/// The four questions on the sandbox's data; DuckDB over `files` when given.
async fn questions(
    bench: &Bench,
    scale: &Scale,
    sandbox: &Sandbox,
    files: Option<(&[PathBuf], &Path)>,
    repo: &Path,
) -> anyhow::Result<()> {
    let client = sandbox.client().await?;
    let row = client
        .query_one(
            "SELECT min(metric_date), max(metric_date) FROM agg_daily_category_region",
            &[],
        )
        .await?;
    let (start, as_of): (Option<NaiveDate>, Option<NaiveDate>) = (row.get(0), row.get(1));
    let (Some(start), Some(as_of)) = (start, as_of) else {
        bail!("the database holds no aggregates");
    };
    let python = repo.join(".stack/venv/bin/python");
    let script = repo.join("bench/duckdb_bench.py");
    let with_duckdb = std::env::var("BENCH_DUCKDB").map_or(true, |v| v != "0");
    let duckdb = files.filter(|_| with_duckdb).map(|(files, data_dir)| {
        (
            files,
            data_dir.join("_truth/transactions.csv"),
            repo.join("data/merchants.csv"),
        )
    });
    say(format!(
        "queries {start} to {as_of}: 4 questions, cached and uncached, concurrency {}, at most {} requests / {}s each{}",
        queries::CONCURRENCY,
        scale.query_max_requests,
        scale.query_max_seconds,
        if duckdb.is_some() { "; then DuckDB" } else { "" }
    ));
    let results = queries::run(
        bench,
        sandbox,
        16,
        start,
        as_of,
        scale.query_max_requests,
        Duration::from_secs(scale.query_max_seconds),
        duckdb
            .as_ref()
            .map(|(files, transactions, merchants)| queries::DuckDbInput {
                python: &python,
                script: &script,
                files,
                transactions,
                merchants,
                repeats: scale.duckdb_repeats,
                work_dir: &bench.work_dir,
            }),
        &[],
    )
    .await?;
    for q in &results.results {
        say(format!(
            "  {}: uncached p50 one at a time {:.1} ms; at c{} p50 {:.1} ms ({} req/s); cached p50 {:.1} ms; DuckDB {}",
            q.name,
            q.uncached_one_at_a_time.latency.p50_ms,
            queries::CONCURRENCY,
            q.uncached.latency.p50_ms,
            thousands(q.uncached.req_per_s),
            q.cached.latency.p50_ms,
            q.duckdb_median_s.map_or("n/a".to_owned(), |s| format!(
                "{s:.2}s (ratio at c{} {:.0})",
                queries::CONCURRENCY,
                s * 1e3 / q.uncached.latency.p50_ms.max(1e-9)
            ))
        ));
        if q.uncached.errors > 0 {
            say(format!(
                "    {} errors; first: {}",
                q.uncached.errors,
                q.uncached.first_error.as_deref().unwrap_or("?")
            ));
        }
    }
    if !results.duckdb_note.is_empty() {
        say(&results.duckdb_note);
    }
    if let Ok(path) = std::env::var("BENCH_QUERIES_JSON") {
        std::fs::write(&path, serde_json::to_vec_pretty(&results)?)?;
        say(format!("the questions' answers and figures: {path}"));
    }
    Ok(())
}
