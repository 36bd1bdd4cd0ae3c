//! One flush = one PostgreSQL transaction: fence check and offset advance, additive upserts
//! into the daily table and every rollup, and the outbox rows that describe the change.
//! Acknowledging the messages is the caller's job, after this commits.

use crate::error::AggregatorError;
use crate::window::{CellKey, CellTotals, Window};
use altdata_common::domain::epoch_days_to_date;
use altdata_proto::v1::{AggregateUpdate, AggregateUpdateBatch, CacheInvalidation};
use altdata_proto::{Message, SCHEMA_VERSION};
use chrono::{Datelike, NaiveDate};
use std::collections::{BTreeSet, HashSet};

/// Adds the window's cells to the daily table and every rollup in one statement; returns the
/// new totals of each daily cell it touched, with the merchant's category.
///
/// The HLLs are built with `hll_add_agg_packed` and `hll_union_agg_packed` (schema/0003): the
/// same additions and unions as `hll_add_agg` and `hll_union_agg`, with the same bytes as
/// result, but without their ~128 KiB per-group state, which dominated the grouping of a
/// flush's small groups. The category rollups are grouped once by day (`category_cell`) and
/// the week and month are derived from those groups instead of from every cell.
const UPSERT_WINDOW: &str = "
WITH cell AS MATERIALIZED (
    SELECT c.merchant_id, c.region, c.metric_date, c.gross, c.sales, c.refund, c.refunds,
           coalesce(k.customers, hll_empty()) AS customers,
           coalesce(m.category, 'other') AS category
    FROM unnest($1::bigint[], $2::text[], $3::date[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])
         WITH ORDINALITY AS c(merchant_id, region, metric_date, gross, sales, refund, refunds, idx)
    LEFT JOIN (SELECT idx, hll_add_agg_packed(hll_hash_bigint(customer_key)) AS customers
               FROM unnest($8::bigint[], $9::bigint[]) AS u(idx, customer_key)
               GROUP BY idx) k USING (idx)
    LEFT JOIN dim_merchants m ON m.id = c.merchant_id
),
daily AS (
    INSERT INTO agg_daily_merchant_spend AS t
        (merchant_id, region, metric_date, total_spend_cents, transaction_count, refund_cents,
         refund_count, customers, updated_at)
    SELECT merchant_id, region, metric_date, gross, sales, refund, refunds, customers, now()
    FROM cell
    ON CONFLICT (merchant_id, region, metric_date) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers),
        updated_at = now()
    RETURNING t.merchant_id, t.region, t.metric_date, t.total_spend_cents, t.transaction_count,
              t.refund_cents, t.refund_count, hll_cardinality(t.customers)::bigint AS customers
),
weekly AS (
    INSERT INTO agg_weekly_merchant_spend AS t
        (merchant_id, region, week_start, total_spend_cents, transaction_count, refund_cents,
         refund_count, customers)
    SELECT merchant_id, region, date_trunc('week', metric_date::timestamp)::date,
           sum(gross), sum(sales), sum(refund), sum(refunds), hll_union_agg_packed(customers)
    FROM cell GROUP BY 1, 2, 3
    ON CONFLICT (merchant_id, region, week_start) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers)
),
monthly AS (
    INSERT INTO agg_monthly_merchant_spend AS t
        (merchant_id, region, month_start, total_spend_cents, transaction_count, refund_cents,
         refund_count, customers)
    SELECT merchant_id, region, date_trunc('month', metric_date::timestamp)::date,
           sum(gross), sum(sales), sum(refund), sum(refunds), hll_union_agg_packed(customers)
    FROM cell GROUP BY 1, 2, 3
    ON CONFLICT (merchant_id, region, month_start) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers)
),
category_cell AS MATERIALIZED (
    SELECT category, region, metric_date, sum(gross) AS gross, sum(sales) AS sales,
           sum(refund) AS refund, sum(refunds) AS refunds,
           hll_union_agg_packed(customers) AS customers
    FROM cell GROUP BY 1, 2, 3
),
category_daily AS (
    INSERT INTO agg_daily_category_region AS t
        (category, region, metric_date, shard, total_spend_cents, transaction_count,
         refund_cents, refund_count, customers)
    SELECT category, region, metric_date, $10::integer, gross, sales, refund, refunds, customers
    FROM category_cell
    ON CONFLICT (category, region, metric_date, shard) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers)
),
category_weekly AS (
    INSERT INTO agg_weekly_category_region AS t
        (category, region, week_start, shard, total_spend_cents, transaction_count,
         refund_cents, refund_count, customers)
    SELECT category, region, date_trunc('week', metric_date::timestamp)::date, $10::integer,
           sum(gross), sum(sales), sum(refund), sum(refunds), hll_union_agg_packed(customers)
    FROM category_cell GROUP BY 1, 2, 3
    ON CONFLICT (category, region, week_start, shard) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers)
),
category_monthly AS (
    INSERT INTO agg_monthly_category_region AS t
        (category, region, month_start, shard, total_spend_cents, transaction_count,
         refund_cents, refund_count, customers)
    SELECT category, region, date_trunc('month', metric_date::timestamp)::date, $10::integer,
           sum(gross), sum(sales), sum(refund), sum(refunds), hll_union_agg_packed(customers)
    FROM category_cell GROUP BY 1, 2, 3
    ON CONFLICT (category, region, month_start, shard) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers)
)
SELECT d.merchant_id, d.region, d.metric_date, d.total_spend_cents, d.transaction_count,
       d.refund_cents, d.refund_count, d.customers, c.category
FROM daily d JOIN cell c USING (merchant_id, region, metric_date)";

/// Advances the shard's offset only while this instance still holds the epoch it acquired.
const ADVANCE_OFFSET: &str = "
UPDATE shard_offsets
   SET stream_seq = $2, applied_events = applied_events + $3, last_commit_at = now()
 WHERE shard = $1 AND epoch = $4";

const INSERT_OUTBOX: &str = "INSERT INTO outbox (kind, payload) VALUES ($1, $2), ($3, $4)";

/// What a committed flush did.
#[derive(Debug, Default)]
pub struct FlushOutcome {
    pub cells: usize,
    pub events: usize,
}

/// Why a flush did not commit.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// Another instance acquired the shard: this one must stop consuming it.
    #[error("shard {shard} is owned by a newer instance (our epoch {epoch} is stale)")]
    Fenced { shard: u32, epoch: i64 },
    #[error(transparent)]
    Other(#[from] AggregatorError),
}

impl From<tokio_postgres::Error> for FlushError {
    fn from(e: tokio_postgres::Error) -> FlushError {
        FlushError::Other(e.into())
    }
}

/// Parallel arrays of a window's cells, in the shape `UPSERT_WINDOW` takes.
#[derive(Default)]
struct CellColumns {
    merchant_ids: Vec<i64>,
    regions: Vec<String>,
    dates: Vec<NaiveDate>,
    gross: Vec<i64>,
    sales: Vec<i64>,
    refund: Vec<i64>,
    refunds: Vec<i64>,
    customer_cell: Vec<i64>,
    customer_keys: Vec<i64>,
}

impl CellColumns {
    fn from_window(window: &Window) -> CellColumns {
        let n = window.cells.len();
        let mut columns = CellColumns {
            merchant_ids: Vec::with_capacity(n),
            regions: Vec::with_capacity(n),
            dates: Vec::with_capacity(n),
            gross: Vec::with_capacity(n),
            sales: Vec::with_capacity(n),
            refund: Vec::with_capacity(n),
            refunds: Vec::with_capacity(n),
            customer_cell: Vec::with_capacity(window.events),
            customer_keys: Vec::with_capacity(window.events),
        };
        // In primary-key order, so that consecutive upserts descend to neighbouring index
        // leaves and heap pages (measurably cheaper than the hash map's order).
        let mut cells: Vec<(&CellKey, &CellTotals)> = window.cells.iter().collect();
        cells.sort_unstable_by_key(|&(key, _)| *key);
        for (index, (key, totals)) in cells.into_iter().enumerate() {
            columns.merchant_ids.push(key.merchant_id);
            columns
                .regions
                .push(String::from_utf8_lossy(&key.region).into_owned());
            columns.dates.push(epoch_days_to_date(key.metric_date));
            columns.gross.push(totals.gross_cents);
            columns.sales.push(totals.sale_count);
            columns.refund.push(totals.refund_cents);
            columns.refunds.push(totals.refund_count);
            // `WITH ORDINALITY` numbers cells from 1.
            let ordinal = index as i64 + 1;
            for &customer_key in &totals.customers {
                columns.customer_cell.push(ordinal);
                // Customer keys are 64 opaque bits; PostgreSQL stores them as bigint.
                columns.customer_keys.push(customer_key as i64);
            }
        }
        columns
    }
}

/// Makes sure the monthly partitions for the window's days exist (outside the flush
/// transaction, so the DDL lock is short) and remembers the months already made.
pub async fn ensure_partitions(
    client: &deadpool_postgres::Client,
    window: &Window,
    known_months: &mut HashSet<(i32, u32)>,
) -> Result<(), AggregatorError> {
    let missing: BTreeSet<NaiveDate> = window
        .cells
        .keys()
        .map(|k| epoch_days_to_date(k.metric_date))
        .filter(|d| !known_months.contains(&(d.year(), d.month())))
        .collect();
    let (Some(first), Some(last)) = (missing.first(), missing.last()) else {
        return Ok(());
    };
    client
        .execute("SELECT ensure_daily_partitions($1, $2)", &[first, last])
        .await?;
    for date in missing {
        known_months.insert((date.year(), date.month()));
    }
    Ok(())
}

/// Commits the window: offset (fenced), aggregates, outbox. Nothing is acknowledged here.
pub async fn flush_window(
    client: &mut deadpool_postgres::Client,
    shard: u32,
    epoch: i64,
    window: &Window,
) -> Result<FlushOutcome, FlushError> {
    let columns = CellColumns::from_window(window);
    let transaction = client.transaction().await?;
    let advanced = transaction
        .execute(
            ADVANCE_OFFSET,
            &[
                &(shard as i32),
                &(window.last_stream_seq as i64),
                &(window.events as i64),
                &epoch,
            ],
        )
        .await?;
    if advanced != 1 {
        // Dropping the transaction rolls it back.
        return Err(FlushError::Fenced { shard, epoch });
    }
    let mut updates = Vec::new();
    if !window.cells.is_empty() {
        let statement = transaction.prepare_cached(UPSERT_WINDOW).await?;
        let rows = transaction
            .query(
                &statement,
                &[
                    &columns.merchant_ids,
                    &columns.regions,
                    &columns.dates,
                    &columns.gross,
                    &columns.sales,
                    &columns.refund,
                    &columns.refunds,
                    &columns.customer_cell,
                    &columns.customer_keys,
                    &(shard as i32),
                ],
            )
            .await?;
        let committed_at_ms = chrono::Utc::now().timestamp_millis();
        updates.reserve(rows.len());
        for row in rows {
            let date: NaiveDate = row.get(2);
            updates.push(AggregateUpdate {
                schema_version: SCHEMA_VERSION,
                merchant_id: row.get(0),
                region: row.get(1),
                metric_date: altdata_common::domain::date_to_epoch_days(date),
                total_spend_cents: row.get(3),
                transaction_count: row.get(4),
                refund_cents: row.get(5),
                refund_count: row.get(6),
                customers: row.get(7),
                committed_at_ms,
                category: row.get(8),
            });
        }
        let invalidation = invalidation_for(&updates, committed_at_ms);
        let batch = AggregateUpdateBatch {
            schema_version: SCHEMA_VERSION,
            updates,
        };
        transaction
            .execute(
                INSERT_OUTBOX,
                &[
                    &"cache_invalidation",
                    &invalidation.encode_to_vec(),
                    &"aggregate_updates",
                    &batch.encode_to_vec(),
                ],
            )
            .await?;
    }
    transaction.commit().await?;
    Ok(FlushOutcome {
        cells: window.cells.len(),
        events: window.events,
    })
}

/// What changed, for cache invalidation: merchants, categories, regions and the day range.
pub fn invalidation_for(updates: &[AggregateUpdate], committed_at_ms: i64) -> CacheInvalidation {
    let merchants: BTreeSet<i64> = updates.iter().map(|u| u.merchant_id).collect();
    let categories: BTreeSet<&str> = updates.iter().map(|u| u.category.as_str()).collect();
    let regions: BTreeSet<&str> = updates.iter().map(|u| u.region.as_str()).collect();
    CacheInvalidation {
        schema_version: SCHEMA_VERSION,
        merchant_ids: merchants.into_iter().collect(),
        categories: categories.into_iter().map(str::to_owned).collect(),
        regions: regions.into_iter().map(str::to_owned).collect(),
        first_date: updates.iter().map(|u| u.metric_date).min().unwrap_or(0),
        last_date: updates.iter().map(|u| u.metric_date).max().unwrap_or(0),
        committed_at_ms,
        cause: "flush".to_owned(),
    }
}
