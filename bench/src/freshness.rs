//! Freshness: a steady load published straight to the transaction stream while an aggregator
//! and a gateway run (child processes); every ~200 ms a marker event for a dedicated
//! merchant and day; the time from its publish to the moment a normal (cached) request to
//! `/v1/timeseries` shows it — so the flush, the outbox relay, the invalidation consumer and
//! the cache are all part of it.

use crate::e2e::{applied_events, wait_for_consumers, Topology};
use crate::events::{encode, EventMaker};
use crate::proc::{Role, Usage};
use crate::sandbox::{Sandbox, StreamBudget};
use crate::stats::{rate, Latency};
use crate::Bench;
use altdata_domain::date_to_epoch_days;
use altdata_proto::v1::{ResolutionSource, TransactionEvent};
use altdata_proto::SCHEMA_VERSION;
use anyhow::{anyhow, bail};
use async_nats::jetstream::{self, context::PublishAckFuture};
use rand::SeedableRng;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct Freshness {
    /// Load before the first marker, until the aggregator had caught up with it.
    pub warm_up_s: f64,
    pub nominal_rate: u64,
    pub target_rate: u64,
    pub rate_note: String,
    pub achieved_rate: f64,
    pub seconds: f64,
    pub published: u64,
    pub markers: usize,
    pub visible: usize,
    pub latency: Latency,
    /// Events published but not yet applied when the load stopped.
    pub lag_events_at_end: u64,
    pub kept_up: bool,
    pub poll_interval_ms: u64,
    pub polls: u64,
    pub cache_hits: u64,
    pub aggregator: Usage,
    pub gateway: Usage,
}

const MARKER_REGION: &str = "CA";
const POLL_INTERVAL: Duration = Duration::from_millis(10);
const MARKER_INTERVAL: Duration = Duration::from_millis(200);

/// A free local port for a gateway.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `altdata keys create --role analyst`; the key is the last line of its output.
pub fn create_key(bench: &Bench, env: &[(String, String)]) -> anyhow::Result<String> {
    let output = std::process::Command::new(&bench.binary)
        .args(["keys", "create", "--role", "analyst", "--name", "bench"])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()?;
    if !output.status.success() {
        bail!(
            "keys create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
        .ok_or_else(|| anyhow!("keys create printed no key"))
}

/// Polls `/healthz` until the gateway answers.
pub async fn wait_for_gateway(base: &str, gateway: &Role) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        if gateway.has_exited() {
            bail!(
                "the gateway exited during start-up:\n{}",
                gateway.log_tail(20)
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "the gateway did not answer within 60s:\n{}",
                gateway.log_tail(20)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The gateway environment for the benchmarks: no rate limit in the way.
pub fn gateway_env(port: u16) -> Vec<(String, String)> {
    [
        ("ALTDATA_HTTP_ADDR", format!("127.0.0.1:{port}")),
        ("ALTDATA_RATE_LIMIT_PER_SECOND", "100000".to_owned()),
        ("ALTDATA_RATE_LIMIT_BURST", "1000000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

pub async fn run(
    bench: &Bench,
    nominal_rate: u64,
    target_rate: u64,
    rate_note: String,
    seconds: u64,
) -> anyhow::Result<Freshness> {
    let sandbox = Sandbox::create(
        "freshness",
        &bench.servers,
        StreamBudget::for_events(target_rate * seconds + 100_000),
        true,
    )
    .await?;
    let outcome = run_in(
        bench,
        &sandbox,
        nominal_rate,
        target_rate,
        rate_note,
        seconds,
    )
    .await;
    sandbox.cleanup().await;
    outcome
}

async fn run_in(
    bench: &Bench,
    sandbox: &Sandbox,
    nominal_rate: u64,
    target_rate: u64,
    rate_note: String,
    seconds: u64,
) -> anyhow::Result<Freshness> {
    sandbox.ensure_streams(&bench.js).await?;
    let shards = 16;
    let port = free_port()?;
    let mut env = sandbox.child_env(shards);
    env.extend(gateway_env(port));
    let client = sandbox.client().await?;
    // One marker has one customer: without this its cell stays withheld (the disclosure rule).
    client
        .batch_execute("UPDATE disclosure SET k = 1; SELECT rebuild_released_rollups();")
        .await?;

    let merchants: Vec<i64> = client
        .query("SELECT id FROM dim_merchants ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let Some((&marker_merchant, traffic)) = merchants.split_last() else {
        bail!("no merchants in the catalogue");
    };
    let today = chrono::Utc::now().date_naive();
    let marker_day = today - chrono::Duration::days(5);
    // A live feed: mostly today's and yesterday's sales.
    let first_traffic_day = date_to_epoch_days(today - chrono::Duration::days(1));

    let aggregator = Role::spawn(
        &bench.binary,
        "freshness-aggregate",
        &["aggregate".to_owned()],
        &env,
        &bench.log_dir,
    )?;
    let gateway = Role::spawn(
        &bench.binary,
        "freshness-gateway",
        &["gateway".to_owned()],
        &env,
        &bench.log_dir,
    )?;
    wait_for_consumers(
        bench,
        sandbox,
        shards,
        Topology::default(),
        std::slice::from_ref(&aggregator),
    )
    .await?;
    let base = format!("http://127.0.0.1:{port}");
    wait_for_gateway(&base, &gateway).await?;
    let key = create_key(bench, &env)?;

    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let marker_times: Arc<Mutex<Vec<Instant>>> = Arc::default();

    // The load: `target_rate` events a second, paced every 10 ms, as ingest publishes them:
    // each tick's events in one batch per shard (ids unique per batch), 4096 acks outstanding.
    let load = {
        let (stop, published) = (stop.clone(), published.clone());
        let js =
            crate::limits::publisher(altdata_common::connect::nats(&bench.servers.nats_url).await?);
        let subjects: Vec<async_nats::Subject> = (0..shards)
            .map(|s| sandbox.subjects.txn_shard(s).into())
            .collect();
        let mut maker = EventMaker::new(traffic.to_vec(), first_traffic_day, 2, "F");
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::from_entropy();
            let started = Instant::now();
            let mut queue: VecDeque<(PublishAckFuture, u64)> = VecDeque::with_capacity(4096);
            let mut sent = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let due = (started.elapsed().as_secs_f64() * target_rate as f64) as u64;
                let mut batches: BTreeMap<u32, (Vec<u8>, u64, String)> = BTreeMap::new();
                while sent < due {
                    let (event, msg_id) = maker.next(&mut rng);
                    let shard = altdata_domain::shard_of(event.merchant_id, shards);
                    let (bytes, count, id) = batches.entry(shard).or_default();
                    if *count == 0 {
                        altdata_proto::batch::start(bytes);
                        *id = msg_id;
                    }
                    altdata_proto::batch::push_event(bytes, &encode(&event));
                    *count += 1;
                    sent += 1;
                }
                for (shard, (bytes, count, id)) in batches {
                    while queue.len() >= 4096 {
                        if let Some((ack, n)) = queue.pop_front() {
                            ack.await.map_err(|e| anyhow!("load ack: {e}"))?;
                            published.fetch_add(n, Ordering::Relaxed);
                        }
                    }
                    let message = jetstream::message::PublishMessage::build()
                        .payload(bytes.into())
                        .message_id(id);
                    let ack = tokio::time::timeout(
                        crate::limits::SEND_TIMEOUT,
                        js.send_publish(subjects[shard as usize].clone(), message),
                    )
                    .await
                    .map_err(|_| anyhow!("load publish stalled"))?
                    .map_err(|e| anyhow!("load publish: {e}"))?;
                    queue.push_back((ack, count));
                }
            }
            while let Some((ack, n)) = queue.pop_front() {
                ack.await.map_err(|e| anyhow!("load ack: {e}"))?;
                published.fetch_add(n, Ordering::Relaxed);
            }
            anyhow::Ok(started.elapsed())
        })
    };

    // Warm-up: the aggregator takes its shards on the first messages; markers start once it
    // is applying the load and has caught up with it.
    let warm_started = Instant::now();
    let warm_deadline = warm_started + Duration::from_secs(60);
    loop {
        let applied = applied_events(&client).await?;
        let sent = published.load(Ordering::Relaxed);
        if applied > 0 && sent.saturating_sub(applied) < target_rate.max(2_000) {
            break;
        }
        if Instant::now() >= warm_deadline || load.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let warm_up_s = warm_started.elapsed().as_secs_f64();

    // Markers on a connection of their own (as a second ingest instance would be).
    let markers = {
        let (stop, published, marker_times) =
            (stop.clone(), published.clone(), marker_times.clone());
        let js =
            crate::limits::publisher(altdata_common::connect::nats(&bench.servers.nats_url).await?);
        let subject = sandbox
            .subjects
            .txn_shard(altdata_domain::shard_of(marker_merchant, shards));
        let metric_date = date_to_epoch_days(marker_day);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(MARKER_INTERVAL);
            let mut index = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                index += 1;
                let event = TransactionEvent {
                    schema_version: SCHEMA_VERSION,
                    provider: "bench-marker".to_owned(),
                    txn_id: format!("M{index}"),
                    metric_date,
                    amount_cents: 100,
                    customer_key: index,
                    merchant_id: marker_merchant,
                    region: MARKER_REGION.to_owned(),
                    mcc: "5814".to_owned(),
                    resolution: ResolutionSource::Alias as i32,
                    confidence: 1.0,
                    retraction: false,
                };
                let mut batch = Vec::new();
                altdata_proto::batch::start(&mut batch);
                altdata_proto::batch::push_event(&mut batch, &encode(&event));
                let message = jetstream::message::PublishMessage::build()
                    .payload(batch.into())
                    .message_id(format!("marker:{index}"));
                let sent_at = Instant::now();
                let ack = tokio::time::timeout(
                    crate::limits::SEND_TIMEOUT,
                    js.send_publish(subject.clone(), message),
                )
                .await
                .map_err(|_| anyhow!("marker publish stalled"))?
                .map_err(|e| anyhow!("marker publish: {e}"))?;
                if let Ok(mut times) = marker_times.lock() {
                    times.push(sent_at);
                }
                ack.await.map_err(|e| anyhow!("marker ack: {e}"))?;
                published.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        })
    };

    // One poller: the marker count through the normal, cached path.
    let url = format!(
        "{base}/v1/timeseries?merchant={marker_merchant}&metric=transactions&granularity=day&from={marker_day}&to={marker_day}"
    );
    let poller = {
        let (stop, marker_times) = (stop.clone(), marker_times.clone());
        let http = reqwest::Client::new();
        let key = key.clone();
        tokio::spawn(async move {
            let mut latencies: Vec<Duration> = Vec::new();
            let (mut polls, mut hits) = (0u64, 0u64);
            let mut stopped_at: Option<Instant> = None;
            loop {
                let response = http
                    .get(&url)
                    .bearer_auth(&key)
                    .send()
                    .await
                    .map_err(|e| anyhow!("poll: {e}"))?;
                let now = Instant::now();
                polls += 1;
                if response
                    .headers()
                    .get("x-cache")
                    .is_some_and(|v| v.as_bytes() == b"hit")
                {
                    hits += 1;
                }
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                if !status.is_success() {
                    bail!("poll answered {status}: {text}");
                }
                let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                let visible = body["points"][0]["value"].as_f64().unwrap_or(0.0) as usize;
                let times = marker_times.lock().map(|t| t.clone()).unwrap_or_default();
                for sent_at in times.iter().take(visible).skip(latencies.len()) {
                    latencies.push(now.saturating_duration_since(*sent_at));
                }
                if stop.load(Ordering::Relaxed) {
                    let since = *stopped_at.get_or_insert(now);
                    if latencies.len() >= times.len() || now - since > Duration::from_secs(90) {
                        return anyhow::Ok((latencies, times.len(), polls, hits));
                    }
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        })
    };

    let started = Instant::now();
    let run_for = Duration::from_secs(seconds);
    while started.elapsed() < run_for {
        if load.is_finished() || markers.is_finished() || poller.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let load_elapsed = load.await.map_err(|e| anyhow!("load task: {e}"))??;
    markers.await.map_err(|e| anyhow!("marker task: {e}"))??;
    let total = published.load(Ordering::Relaxed);
    let lag = total.saturating_sub(applied_events(&client).await?);
    let (latencies, marker_count, polls, hits) =
        poller.await.map_err(|e| anyhow!("poller: {e}"))??;
    let aggregator = aggregator.stop(Duration::from_secs(60)).await?;
    let gateway = gateway.stop(Duration::from_secs(30)).await?;
    Ok(Freshness {
        warm_up_s,
        nominal_rate,
        target_rate,
        rate_note,
        achieved_rate: rate(total, load_elapsed),
        seconds: load_elapsed.as_secs_f64(),
        published: total,
        markers: marker_count,
        visible: latencies.len(),
        latency: Latency::of(&latencies),
        lag_events_at_end: lag,
        kept_up: (lag as f64) < (target_rate as f64 * 3.0).max(10_000.0),
        poll_interval_ms: POLL_INTERVAL.as_millis() as u64,
        polls,
        cache_hits: hits,
        aggregator,
        gateway,
    })
}
