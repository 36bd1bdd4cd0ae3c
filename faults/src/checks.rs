//! The assertions, once the pipeline has settled. Each is checked against an independent
//! source: the generator's ground truth (`_truth/summary.json`) and the stream itself (every
//! message read back with an ordered consumer), never against the aggregator's own counters.

use crate::harness::Harness;
use crate::poison::Published;
use crate::traffic::Target;
use altdata_proto::v1::{TransactionBatch, TransactionEvent};
use altdata_proto::{Message as _, SCHEMA_VERSION};
use anyhow::Context;
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// One named assertion and its outcome.
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn new(name: &'static str, ok: bool, detail: String) -> Check {
        Check { name, ok, detail }
    }
}

/// (merchant, region, day) -> (gross cents, sales, refund cents, refunds)
type Cells = HashMap<(i64, String, String), (i64, i64, i64, i64)>;

/// What the stream holds, read back message by message.
#[derive(Default)]
pub struct StreamContents {
    /// Events that add a version, minus retractions: the live rows counted by events.
    pub events: i64,
    pub cells: Cells,
    pub duplicate_msg_ids: Vec<String>,
    /// Transactions whose versions minus retractions are not 0 or 1.
    pub duplicate_txns: Vec<String>,
    pub undecodable: Vec<u64>,
    pub poison_seen: Vec<u64>,
    /// (original seq, reason) of each DLQ message.
    pub dlq: Vec<(u64, String)>,
    /// Every `provider:txn_id` published.
    pub txn_ids: Vec<String>,
}

pub async fn read_stream(
    harness: &Harness,
    poison: &[Published],
) -> anyhow::Result<StreamContents> {
    let poison_seqs: HashSet<(String, u64)> =
        poison.iter().map(|p| (p.stream.clone(), p.seq)).collect();
    let prefix = &harness.pipeline.prefix;
    let dlq_subject = format!("{prefix}.txn.v1.dlq");
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let mut contents = StreamContents::default();
    let mut msg_ids = HashSet::new();
    // Per transaction: versions published minus retractions.
    let mut live: HashMap<String, i64> = HashMap::new();
    let names = txn_stream_names(&harness.jetstream, prefix).await?;
    if names.is_empty() {
        anyhow::bail!("no transaction stream of prefix {prefix} on the server");
    }
    for name in names {
        let stream = harness.jetstream.get_stream(&name).await?;
        // No filter: each stream holds only its own shards' subjects (and stream 0 the DLQ).
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
            .await?;
        let pending = consumer.cached_info().num_pending;
        let mut messages = consumer.messages().await?;
        let mut read = 0u64;
        while read < pending {
            let message = match tokio::time::timeout(Duration::from_secs(10), messages.next()).await
            {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(error))) => {
                    return Err(error).with_context(|| format!("reading {name} back"))
                }
                Ok(None) | Err(_) => {
                    anyhow::bail!("reading {name} back stopped after {read} of {pending} messages")
                }
            };
            read += 1;
            let seq = message.info().map(|i| i.stream_sequence).unwrap_or(0);
            let header = |name: &str| {
                message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default()
            };
            if message.subject.as_str() == dlq_subject {
                let original: u64 = header("Altdata-Original-Seq").parse().unwrap_or(0);
                contents.dlq.push((original, header("Altdata-Dlq-Reason")));
                continue;
            }
            if poison_seqs.contains(&(name.clone(), seq)) {
                contents.poison_seen.push(seq);
                continue;
            }
            let batch = match TransactionBatch::decode(message.payload.as_ref()) {
                Ok(batch) if batch.schema_version == SCHEMA_VERSION => batch,
                _ => {
                    contents.undecodable.push(seq);
                    continue;
                }
            };
            let msg_id = header("Nats-Msg-Id");
            if !msg_ids.insert(msg_id.clone()) {
                contents.duplicate_msg_ids.push(msg_id);
            }
            for event in batch.events {
                contents.tally(&mut live, event, epoch);
            }
        }
    }
    contents.txn_ids = live.keys().cloned().collect();
    contents.duplicate_txns = live
        .into_iter()
        .filter(|(_, n)| !(0..=1).contains(n))
        .map(|(txn, _)| txn)
        .collect();
    // A cell every event of which was retracted holds zeros: the aggregate row has them too.
    Ok(contents)
}

/// The pipeline's transaction streams as the server lists them: `<PREFIX>_TXN`, or
/// `<PREFIX>_TXN_0..n-1` when `ALTDATA_TXN_STREAMS` spread the shards (the layout of
/// `altdata_common::connect::Subjects::txn_streams`), in stream order.
pub async fn txn_stream_names(
    jetstream: &async_nats::jetstream::Context,
    prefix: &str,
) -> anyhow::Result<Vec<String>> {
    let base = format!("{}_TXN", prefix.to_ascii_uppercase());
    let mut names = Vec::new();
    let mut listed = jetstream.stream_names();
    while let Some(name) = listed.next().await {
        let name = name.context("listing streams")?;
        let index = name
            .strip_prefix(&base)
            .map(|rest| rest.strip_prefix('_').and_then(|n| n.parse::<u32>().ok()));
        match index {
            Some(None) if name == base => names.push((0, name)),
            Some(Some(i)) => names.push((i, name)),
            _ => {}
        }
    }
    names.sort();
    Ok(names.into_iter().map(|(_, name)| name).collect())
}

impl StreamContents {
    /// Counts one event of a batch: its transaction's live versions and its cell.
    fn tally(
        &mut self,
        live: &mut HashMap<String, i64>,
        event: TransactionEvent,
        epoch: chrono::NaiveDate,
    ) {
        let sign = if event.retraction { -1 } else { 1 };
        *live
            .entry(format!("{}:{}", event.provider, event.txn_id))
            .or_default() += sign;
        self.events += sign;
        let day = (epoch + chrono::Duration::days(i64::from(event.metric_date)))
            .format("%Y-%m-%d")
            .to_string();
        let cell = self
            .cells
            .entry((event.merchant_id, event.region, day))
            .or_default();
        if event.amount_cents < 0 {
            cell.2 += sign * -event.amount_cents;
            cell.3 += sign;
        } else {
            cell.0 += sign * event.amount_cents;
            cell.1 += sign;
        }
    }
}

fn sample<T: std::fmt::Debug>(items: &[T]) -> String {
    let shown: Vec<String> = items.iter().take(5).map(|i| format!("{i:?}")).collect();
    format!(
        "{}{}",
        shown.join(", "),
        if items.len() > 5 { ", ..." } else { "" }
    )
}

pub async fn check_all(
    harness: &Harness,
    summary: &serde_json::Value,
    poison: &[Published],
    stream: &StreamContents,
) -> anyhow::Result<Vec<Check>> {
    let db = harness.db().await?;
    let number = |key: &str| summary[key].as_i64().unwrap_or(-1);
    let mut checks = Vec::new();

    // --- the ingest ledger against the generator's summary
    let ledger = db
        .query_one(
            "SELECT coalesce(sum(rows_read),0)::bigint, coalesce(sum(published),0)::bigint,
                    coalesce(sum(unattributed),0)::bigint, coalesce(sum(unmapped),0)::bigint,
                    coalesce(sum(rejected),0)::bigint, coalesce(sum(duplicates),0)::bigint,
                    count(*) FILTER (WHERE rows_read <> published + unattributed + unmapped + rejected + duplicates + corrected),
                    coalesce(sum(corrected),0)::bigint, coalesce(sum(retracted),0)::bigint
               FROM ingest_files",
            &[],
        )
        .await?;
    let ledger_value = |i: usize| ledger.get::<_, i64>(i);
    let (rows, published, unattributed, unmapped, rejected, duplicates, unbalanced) = (
        ledger_value(0),
        ledger_value(1),
        ledger_value(2),
        ledger_value(3),
        ledger_value(4),
        ledger_value(5),
        ledger_value(6),
    );
    let (corrected, retracted) = (ledger_value(7), ledger_value(8));
    checks.push(Check::new(
        "every row read once and accounted for",
        rows == number("rows") && unbalanced == 0,
        format!(
            "rows read {rows} (generated {}) = published {published} + unattributed {unattributed} + unmapped {unmapped} + rejected {rejected} + duplicates {duplicates} + corrected {corrected}; retracted {retracted}; files whose counts do not add up: {unbalanced}",
            number("rows")
        ),
    ));
    let reject_rows: i64 = db
        .query_one("SELECT count(*) FROM ingest_rejects", &[])
        .await?
        .get(0);
    checks.push(Check::new(
        "rejects exact",
        reject_rows == number("broken_rows") && rejected == number("broken_rows"),
        format!(
            "ingest_rejects has {reject_rows} rows, the ledger says {rejected}, the generator broke {}",
            number("broken_rows")
        ),
    ));

    // --- the stream: each transaction once, nothing undecodable besides our poison
    checks.push(Check::new(
        "each Msg-Id once, each transaction live at most once (versions minus retractions)",
        stream.duplicate_msg_ids.is_empty() && stream.duplicate_txns.is_empty(),
        format!(
            "{} live events; repeated Msg-Ids: {} [{}]; transactions live more than once or retracted more than published: {} [{}]",
            stream.events,
            stream.duplicate_msg_ids.len(),
            sample(&stream.duplicate_msg_ids),
            stream.duplicate_txns.len(),
            sample(&stream.duplicate_txns)
        ),
    ));
    // Rows counted under an unattributed merchant are events too; only held-only rows are not.
    let held: (i64, i64) = {
        let row = db
            .query_one(
                "SELECT count(*), coalesce(sum(amount_cents), 0)::bigint FROM unmapped_transactions
                 WHERE counted_merchant_id IS NULL AND status IN ('pending', 'ignored')",
                &[],
            )
            .await?;
        (row.get(0), row.get(1))
    };
    checks.push(Check::new(
        "nothing lost: events + held only = valid rows",
        stream.events + held.0 == number("valid_rows") && stream.undecodable.is_empty(),
        format!(
            "{} events in the stream + {} held for review only = {} (generator: {} valid unique rows); undecodable non-poison messages: {}",
            stream.events,
            held.0,
            stream.events + held.0,
            number("valid_rows"),
            sample(&stream.undecodable)
        ),
    ));

    // --- aggregates equal the fold of the stream, cell by cell
    let stored = db
        .query(
            "SELECT merchant_id, region, metric_date::text, total_spend_cents, transaction_count,
                    refund_cents, refund_count FROM agg_daily_merchant_spend",
            &[],
        )
        .await?;
    let mut wrong = Vec::new();
    let mut seen = 0usize;
    let (mut named_net, mut unattributed_net) = (0i64, 0i64);
    for row in &stored {
        let key = (
            row.get::<_, i64>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2),
        );
        let got = (
            row.get::<_, i64>(3),
            row.get::<_, i64>(4),
            row.get::<_, i64>(5),
            row.get::<_, i64>(6),
        );
        if altdata_domain::Category::of_unattributed_merchant(key.0).is_some() {
            unattributed_net += got.0 - got.2;
        } else {
            named_net += got.0 - got.2;
        }
        match stream.cells.get(&key) {
            Some(expected) if *expected == got => seen += 1,
            Some(expected) => wrong.push(format!("{key:?}: stored {got:?}, stream {expected:?}")),
            None => wrong.push(format!("{key:?}: stored {got:?}, not in the stream")),
        }
    }
    let missing = stream.cells.len().saturating_sub(seen);
    checks.push(Check::new(
        "every (merchant, region, day) equals the fold of its events",
        wrong.is_empty() && missing == 0,
        format!(
            "{} cells stored, {} in the stream's fold, {seen} equal; wrong: {} [{}]; missing: {missing}",
            stored.len(),
            stream.cells.len(),
            wrong.len(),
            sample(&wrong)
        ),
    ));
    let total_net = named_net + unattributed_net + held.1;
    checks.push(Check::new(
        "net spend conserved to the cent: named + unattributed + held only = valid input",
        total_net == number("valid_net_cents"),
        format!(
            "named {named_net} + unattributed {unattributed_net} + held only {} = {total_net} cents; generator valid_net_cents {}",
            held.1,
            number("valid_net_cents")
        ),
    ));

    // --- rollups agree with the daily table
    let mut totals = BTreeMap::new();
    for table in [
        "agg_daily_merchant_spend",
        "agg_weekly_merchant_spend",
        "agg_monthly_merchant_spend",
        "agg_daily_category_region",
        "agg_weekly_category_region",
        "agg_monthly_category_region",
        "agg_daily_category_national",
        "agg_weekly_category_national",
        "agg_daily_merchant_national",
        "agg_weekly_merchant_national",
    ] {
        let row = db
            .query_one(
                &format!(
                    "SELECT coalesce(sum(total_spend_cents - refund_cents), 0)::bigint,
                            coalesce(sum(transaction_count + refund_count), 0)::bigint FROM {table}"
                ),
                &[],
            )
            .await?;
        totals.insert(table, (row.get::<_, i64>(0), row.get::<_, i64>(1)));
    }
    let first = totals.values().next().copied();
    checks.push(Check::new(
        "rollups (weekly, monthly, category by region, all states) equal the daily table",
        totals.values().all(|t| Some(*t) == first),
        format!("(net cents, transactions) per table: {totals:?}"),
    ));

    // --- the DLQ holds exactly the poison
    let expected: BTreeMap<u64, String> = poison
        .iter()
        .map(|p| (p.seq, format!("{:?}", p.kind)))
        .collect();
    let mut got: BTreeMap<u64, usize> = BTreeMap::new();
    for (seq, _) in &stream.dlq {
        *got.entry(*seq).or_default() += 1;
    }
    let exact = got.len() == expected.len()
        && got
            .iter()
            .all(|(seq, n)| *n == 1 && expected.contains_key(seq))
        && stream.dlq.iter().all(|(_, reason)| !reason.is_empty());
    checks.push(Check::new(
        "the DLQ holds exactly the poison published",
        exact && stream.poison_seen.len() == poison.len(),
        format!(
            "published poison at seqs {:?}; DLQ entries (original seq -> copies) {got:?}; reasons: [{}]",
            expected,
            sample(&stream.dlq.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>())
        ),
    ));
    Ok(checks)
}

/// The gateway's answers (normal requests, so cache hits count) equal SQL on the tables.
pub async fn check_gateway(
    harness: &Harness,
    port: u16,
    targets: &[Target],
    from: &str,
    to: &str,
) -> anyhow::Result<Check> {
    let db = harness.db().await?;
    let auth = format!("Bearer {}", harness.api_key);
    let mut compared = 0;
    let mut hits = 0;
    let mut wrong = Vec::new();
    // The panel: a day outside it has no data (null with a reason), a day inside without
    // activity is a real zero (docs/API.md).
    let panel = db
        .query_one(
            "SELECT coalesce(min(metric_date)::text, ''), coalesce(max(metric_date)::text, '')
               FROM agg_daily_category_region",
            &[],
        )
        .await?;
    let (first_day, last_day): (String, String) = (panel.get(0), panel.get(1));
    for target in targets {
        let (sql, param): (&str, Option<Box<dyn tokio_postgres::types::ToSql + Sync + Send>>) =
            match target {
                Target::Merchant(id) => (
                    "SELECT metric_date::text, sum(total_spend_cents - refund_cents)::bigint, sum(transaction_count)::bigint
                       FROM agg_daily_merchant_spend WHERE merchant_id = $1 GROUP BY 1",
                    Some(Box::new(*id)),
                ),
                Target::Category(c) => (
                    "SELECT metric_date::text, sum(total_spend_cents - refund_cents)::bigint, sum(transaction_count)::bigint
                       FROM agg_daily_category_region WHERE category = $1 GROUP BY 1",
                    Some(Box::new(c.clone())),
                ),
                Target::All => (
                    "SELECT metric_date::text, sum(total_spend_cents - refund_cents)::bigint, sum(transaction_count)::bigint
                       FROM agg_daily_category_region GROUP BY 1",
                    None,
                ),
            };
        let rows = match &param {
            Some(p) => db.query(sql, &[p.as_ref()]).await?,
            None => db.query(sql, &[]).await?,
        };
        let truth: HashMap<String, (i64, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    (r.get::<_, i64>(1), r.get::<_, i64>(2)),
                )
            })
            .collect();
        for metric in ["spend", "transactions"] {
            let path = target.query(metric, from, to);
            // Twice: the first may compute and store, the second should be a cache hit.
            for _ in 0..2 {
                let response = crate::http::get(
                    port,
                    &path,
                    &[("Authorization", auth.as_str())],
                    Duration::from_secs(10),
                )
                .await?;
                if response.status != 200 {
                    wrong.push(format!("{path}: HTTP {}", response.status));
                    continue;
                }
                compared += 1;
                if response.header("x-cache") == "hit" {
                    hits += 1;
                }
                let body: serde_json::Value = serde_json::from_slice(&response.body)
                    .with_context(|| format!("{path}: answer is not JSON"))?;
                for point in body["points"].as_array().cloned().unwrap_or_default() {
                    let day = point["period_start"].as_str().unwrap_or("").to_owned();
                    let (net, count) = truth.get(&day).copied().unwrap_or((0, 0));
                    let value = point["value"].as_f64();
                    let inside = first_day.as_str() <= day.as_str() && day <= last_day;
                    let expected = inside.then_some(if metric == "spend" { net } else { count });
                    let got = value.map(|v| {
                        if metric == "spend" {
                            (v * 100.0).round() as i64
                        } else {
                            v.round() as i64
                        }
                    });
                    let reason = point["reason"].as_str();
                    let missing_says_why = inside
                        || matches!(reason, Some("before_panel_start" | "after_last_delivery"));
                    if got != expected || !missing_says_why {
                        wrong.push(format!(
                            "{path} {day}: gateway {got:?} ({reason:?}, {}), SQL {expected:?} (panel {first_day} to {last_day})",
                            response.header("x-cache")
                        ));
                    }
                }
            }
        }
    }
    Ok(Check::new(
        "no cache answer older than the last invalidation (gateway = SQL)",
        wrong.is_empty() && compared > 0,
        format!(
            "{compared} answers compared point by point with SQL ({hits} of them cache hits); wrong: {} [{}]",
            wrong.len(),
            sample(&wrong)
        ),
    ))
}
