//! Queries: the canonical question and three typical ones through the gateway (a child
//! process on the main end-to-end run's database), cached and uncached
//! (`Cache-Control: no-cache`), at concurrency 32 with a bounded request count and time; and
//! DuckDB answering the same questions from the raw CSV files.

use crate::freshness::{create_key, free_port, gateway_env, wait_for_gateway};
use crate::proc::{Role, Usage};
use crate::sandbox::Sandbox;
use crate::stats::{median, rate, Latency};
use crate::Bench;
use anyhow::{anyhow, bail, Context};
use chrono::NaiveDate;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const CONCURRENCY: usize = 32;

#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub req_per_s: f64,
    pub latency: Latency,
    pub cache_hits: u64,
    pub first_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueryResult {
    pub name: String,
    pub path: String,
    pub cached: Load,
    pub uncached: Load,
    /// Uncached, one request at a time (40 requests): the latency without queueing.
    pub uncached_one_at_a_time: Load,
    pub duckdb_seconds: Vec<f64>,
    pub duckdb_median_s: Option<f64>,
    pub duckdb_answer: serde_json::Value,
    pub our_answer: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Queries {
    pub as_of: NaiveDate,
    pub start: NaiveDate,
    pub merchant_id: i64,
    pub merchant_brand: String,
    pub concurrency: usize,
    pub max_requests: u64,
    pub max_seconds: f64,
    pub gateway_pool_size: String,
    pub results: Vec<QueryResult>,
    pub duckdb_version: String,
    pub duckdb_note: String,
    pub gateway: Option<Usage>,
}

/// What the DuckDB script needs.
pub struct DuckDbInput<'a> {
    pub python: &'a Path,
    pub script: &'a Path,
    pub files: &'a [PathBuf],
    pub transactions: &'a Path,
    pub merchants: &'a Path,
    pub repeats: u32,
    pub work_dir: &'a Path,
}

/// `concurrency` workers share a request budget; each stops at `max_requests` or `max_time`.
pub async fn load(
    url: &str,
    key: &str,
    no_cache: bool,
    max_requests: u64,
    max_time: Duration,
    concurrency: usize,
) -> anyhow::Result<Load> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency * 2)
        .build()?;
    let issued = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let hits = Arc::new(AtomicU64::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, issued, errors, hits, first_error) = (
            http.clone(),
            issued.clone(),
            errors.clone(),
            hits.clone(),
            first_error.clone(),
        );
        let (url, key) = (url.to_owned(), key.to_owned());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while issued.fetch_add(1, Ordering::Relaxed) < max_requests
                && started.elapsed() < max_time
            {
                let mut request = http.get(&url).bearer_auth(&key);
                if no_cache {
                    request = request.header("cache-control", "no-cache");
                }
                let sent = Instant::now();
                let outcome = match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        let hit = response
                            .headers()
                            .get("x-cache")
                            .is_some_and(|v| v.as_bytes() == b"hit");
                        match response.bytes().await {
                            Ok(_) if status.is_success() => Ok(hit),
                            Ok(body) => Err(format!(
                                "{status}: {}",
                                String::from_utf8_lossy(&body[..body.len().min(300)])
                            )),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                latencies.push(sent.elapsed());
                match outcome {
                    Ok(hit) => {
                        if hit {
                            hits.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(message) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut first) = first_error.lock() {
                            first.get_or_insert(message);
                        }
                    }
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.map_err(|e| anyhow!("load worker: {e}"))?);
    }
    let elapsed = started.elapsed();
    let first_error = first_error.lock().ok().and_then(|f| f.clone());
    Ok(Load {
        requests: latencies.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        seconds: elapsed.as_secs_f64(),
        req_per_s: rate(latencies.len() as u64, elapsed),
        latency: Latency::of(&latencies),
        cache_hits: hits.load(Ordering::Relaxed),
        first_error,
    })
}

/// Runs the four questions against a gateway on `sandbox` (the main run's database).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    bench: &Bench,
    sandbox: &Sandbox,
    shards: u32,
    start: NaiveDate,
    as_of: NaiveDate,
    max_requests: u64,
    max_time: Duration,
    duckdb: Option<DuckDbInput<'_>>,
    extra_env: &[(String, String)],
) -> anyhow::Result<Queries> {
    let client = sandbox.client().await?;
    // A running aggregator folds the writers' category rows every minute; the run's aggregator
    // has stopped, so the questions read what it would have left.
    let compacted = altdata_facts::compact(&client).await?;
    crate::say(format!(
        "category rows compacted before the questions: {} (left: {:?})",
        compacted.folded, compacted.skipped
    ));
    let row = client
        .query_one(
            "SELECT m.id, coalesce(m.brand_id, '') FROM agg_daily_merchant_spend a
               JOIN dim_merchants m ON m.id = a.merchant_id
              GROUP BY 1, 2 ORDER BY sum(a.transaction_count) DESC LIMIT 1",
            &[],
        )
        .await
        .context("no aggregates to query")?;
    let (merchant_id, brand): (i64, String) = (row.get(0), row.get(1));
    let questions: Vec<(&str, String)> = vec![
        (
            "canonical: WoW spend, coffee_shop, CA",
            format!("/v1/growth?metric=spend&category=coffee_shop&state=CA&period=wow&as_of={as_of}"),
        ),
        (
            "weekly spend, grocery, all states",
            format!("/v1/timeseries?metric=spend&category=grocery&granularity=week&from={start}&to={as_of}"),
        ),
        (
            "top movers, coffee_shop, CA",
            format!("/v1/top?category=coffee_shop&state=CA&by=growth&period=wow&as_of={as_of}&limit=10"),
        ),
        (
            "merchant daily spend",
            format!("/v1/timeseries?metric=spend&merchant={merchant_id}&granularity=day&from={start}&to={as_of}"),
        ),
    ];

    let port = free_port()?;
    let mut env = sandbox.child_env(shards);
    env.extend(gateway_env(port));
    env.extend(extra_env.iter().cloned());
    let pool_size = env
        .iter()
        .rfind(|(k, _)| k == "ALTDATA_DB_POOL_SIZE")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("ALTDATA_DB_POOL_SIZE").ok())
        .unwrap_or_else(|| "8 (default)".to_owned());
    let gateway = Role::spawn(
        &bench.binary,
        "queries-gateway",
        &["gateway".to_owned()],
        &env,
        &bench.log_dir,
    )?;
    let base = format!("http://127.0.0.1:{port}");
    wait_for_gateway(&base, &gateway).await?;
    let key = create_key(bench, &env)?;

    let mut results = Vec::new();
    let http = reqwest::Client::new();
    for (name, path) in &questions {
        let url = format!("{base}{path}");
        // The answer (and a warm cache for the cached run).
        let response = http.get(&url).bearer_auth(&key).send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{name}: {path} answered {status}: {text}");
        }
        let our_answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let single = load(&url, &key, true, 40, max_time, 1).await?;
        let uncached = load(&url, &key, true, max_requests, max_time, CONCURRENCY).await?;
        let cached = load(&url, &key, false, max_requests * 4, max_time, CONCURRENCY).await?;
        results.push(QueryResult {
            name: (*name).to_owned(),
            path: path.clone(),
            cached,
            uncached,
            uncached_one_at_a_time: single,
            duckdb_seconds: Vec::new(),
            duckdb_median_s: None,
            duckdb_answer: serde_json::Value::Null,
            our_answer: summarize(&our_answer),
        });
    }
    let gateway = gateway.stop(Duration::from_secs(30)).await.ok();

    let mut queries = Queries {
        as_of,
        start,
        merchant_id,
        merchant_brand: brand.clone(),
        concurrency: CONCURRENCY,
        max_requests,
        max_seconds: max_time.as_secs_f64(),
        gateway_pool_size: pool_size,
        results,
        duckdb_version: String::new(),
        duckdb_note: String::new(),
        gateway,
    };
    match duckdb {
        None => queries.duckdb_note = "DuckDB skipped".to_owned(),
        Some(input) => match run_duckdb(&input, start, as_of, &brand).await {
            Ok(value) => {
                queries.duckdb_version = value["version"].as_str().unwrap_or("").to_owned();
                let keys = [
                    "canonical",
                    "weekly_category",
                    "top_movers",
                    "merchant_daily",
                ];
                for (result, key) in queries.results.iter_mut().zip(keys) {
                    let entry = &value["queries"][key];
                    result.duckdb_seconds = entry["seconds"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
                        .unwrap_or_default();
                    result.duckdb_median_s =
                        (!result.duckdb_seconds.is_empty()).then(|| median(&result.duckdb_seconds));
                    result.duckdb_answer = entry["answer"].clone();
                }
            }
            Err(error) => queries.duckdb_note = format!("DuckDB failed: {error:#}"),
        },
    }
    Ok(queries)
}

/// The interesting part of an answer, for the report.
fn summarize(answer: &serde_json::Value) -> serde_json::Value {
    if answer.get("growth").is_some() {
        serde_json::json!({
            "current": answer["current"], "previous": answer["previous"], "growth": answer["growth"]
        })
    } else if let Some(points) = answer.get("points").and_then(|p| p.as_array()) {
        serde_json::json!({ "points": points.len(), "first": points.first() })
    } else if let Some(merchants) = answer.get("merchants").and_then(|p| p.as_array()) {
        serde_json::json!({
            "merchants": merchants.len(),
            "first": merchants.first().map(|m| serde_json::json!({"name": m["name"], "growth": m["growth"]}))
        })
    } else {
        serde_json::Value::Null
    }
}

async fn run_duckdb(
    input: &DuckDbInput<'_>,
    start: NaiveDate,
    as_of: NaiveDate,
    brand: &str,
) -> anyhow::Result<serde_json::Value> {
    let args_path = input.work_dir.join("duckdb-args.json");
    let args = serde_json::json!({
        "files": input.files,
        "transactions": input.transactions,
        "merchants": input.merchants,
        "as_of": as_of.to_string(),
        "start": start.to_string(),
        "category": "coffee_shop",
        "state": "CA",
        "ts_category": "grocery",
        "brand": brand,
        "repeats": input.repeats,
        "repeats_other": 1,
    });
    std::fs::write(&args_path, serde_json::to_vec(&args)?)?;
    let (python, script) = (input.python.to_owned(), input.script.to_owned());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(&script)
            .arg(&args_path)
            .output()
            .with_context(|| format!("cannot run {}", python.display()))
    })
    .await
    .map_err(|e| anyhow!("duckdb task: {e}"))??;
    if !output.status.success() {
        bail!(
            "duckdb script failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}
