//! The one statement that adds a batch's [`Cells`] to the daily table and every rollup, and the
//! outbox rows that announce what changed.

use crate::cells::{CellKey, Cells};
use altdata_domain::{date_to_epoch_days, epoch_days_to_date};
use altdata_proto::v1::{AggregateUpdate, AggregateUpdateBatch, CacheInvalidation};
use altdata_proto::{Message, SCHEMA_VERSION};
use chrono::NaiveDate;
use deadpool_postgres::Transaction;
use std::collections::BTreeSet;

/// Which `shard` the category × region rows of a change are written under. Rows that many
/// writers would update are kept per writer and summed at read time, so no two writers
/// contend for one row: each aggregator shard writes its own, and review transactions
/// (serialised by their advisory lock) write shard -1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CategoryShard {
    Stream(u32),
    Review,
}

impl CategoryShard {
    /// The value stored in the `shard` column.
    pub fn column(self) -> i32 {
        match self {
            CategoryShard::Stream(shard) => shard as i32,
            CategoryShard::Review => -1,
        }
    }
}

/// What [`apply`] changed: the new totals of every daily cell it touched (also written to the
/// outbox as aggregate updates).
#[derive(Debug, Default)]
pub struct Applied {
    pub updates: Vec<AggregateUpdate>,
}

impl Applied {
    /// Records why these cells changed (`aggregate_changes`, what `GET /v1/changes` lists),
    /// for a change that is not a provider's (a review decision): the net spend and
    /// transactions each cell gained or lost.
    pub async fn log_changes(
        &self,
        transaction: &Transaction<'_>,
        cause: &str,
    ) -> Result<(), tokio_postgres::Error> {
        let changed: Vec<&AggregateUpdate> = self
            .updates
            .iter()
            .filter(|u| u.delta_transaction_count != 0 || u.delta_refund_count != 0)
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let merchants: Vec<i64> = changed.iter().map(|u| u.merchant_id).collect();
        let regions: Vec<&str> = changed.iter().map(|u| u.region.as_str()).collect();
        let dates: Vec<NaiveDate> = changed
            .iter()
            .map(|u| epoch_days_to_date(u.metric_date))
            .collect();
        let spend: Vec<i64> = changed
            .iter()
            .map(|u| u.delta_total_spend_cents - u.delta_refund_cents)
            .collect();
        let transactions: Vec<i64> = changed
            .iter()
            .map(|u| u.delta_transaction_count + u.delta_refund_count)
            .collect();
        transaction
            .execute(
                "INSERT INTO aggregate_changes (cause, merchant_id, region, metric_date,
                     rows_changed, delta_spend_cents, delta_transactions)
                 SELECT $1, m, r, d, abs(t), s, t
                 FROM unnest($2::bigint[], $3::text[], $4::date[], $5::bigint[], $6::bigint[])
                      AS u(m, r, d, s, t)",
                &[&cause, &merchants, &regions, &dates, &spend, &transactions],
            )
            .await?;
        Ok(())
    }
}

/// Adds `cells` to every fact table and writes the outbox rows describing the change, inside
/// the caller's transaction. `cause` names the change in the cache invalidation ("flush",
/// "review", ...). The daily partitions for the cells' days must exist
/// (`ensure_daily_partitions`); callers create them outside their transaction where they can.
pub async fn apply(
    transaction: &Transaction<'_>,
    cells: &Cells,
    shard: CategoryShard,
    cause: &str,
) -> Result<Applied, tokio_postgres::Error> {
    if cells.is_empty() {
        return Ok(Applied::default());
    }
    let columns = CellColumns::from_cells(cells);
    let statement = transaction.prepare_cached(UPSERT_CELLS).await?;
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
                &shard.column(),
            ],
        )
        .await?;
    let committed_at_ms = chrono::Utc::now().timestamp_millis();
    let updates: Vec<AggregateUpdate> = rows
        .iter()
        .map(|row| AggregateUpdate {
            schema_version: SCHEMA_VERSION,
            merchant_id: row.get(0),
            region: row.get(1),
            metric_date: date_to_epoch_days(row.get::<_, NaiveDate>(2)),
            total_spend_cents: row.get(3),
            transaction_count: row.get(4),
            refund_cents: row.get(5),
            refund_count: row.get(6),
            customers: row.get(7),
            committed_at_ms,
            category: row.get(8),
            delta_total_spend_cents: row.get(9),
            delta_transaction_count: row.get(10),
            delta_refund_cents: row.get(11),
            delta_refund_count: row.get(12),
        })
        .collect();
    let invalidation = invalidation_for(&updates, committed_at_ms, cause);
    let batch = AggregateUpdateBatch {
        schema_version: SCHEMA_VERSION,
        updates,
    };
    transaction
        .execute(
            INSERT_OUTBOX,
            &[&invalidation.encode_to_vec(), &batch.encode_to_vec()],
        )
        .await?;
    add_panel(transaction, cells, shard).await?;
    widen_edges(transaction, &columns.dates, shard).await?;
    Ok(Applied {
        updates: batch.updates,
    })
}

/// What changed, for cache invalidation: merchants, categories, regions and the day range.
pub fn invalidation_for(
    updates: &[AggregateUpdate],
    committed_at_ms: i64,
    cause: &str,
) -> CacheInvalidation {
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
        cause: cause.to_owned(),
    }
}

/// Adds the batch's active cards to the panel (`agg_daily_panel`, schema/0011), under the
/// writer's shard like the category rows: a card shops in many shards, and a union of
/// sketches counts it once whichever rows hold it.
/// Widens this writer's row of `data_edges` (schema/0012) to the days of the change.
async fn widen_edges(
    transaction: &Transaction<'_>,
    dates: &[NaiveDate],
    shard: CategoryShard,
) -> Result<(), tokio_postgres::Error> {
    let (Some(first), Some(last)) = (dates.iter().min(), dates.iter().max()) else {
        return Ok(());
    };
    transaction
        .execute(
            "INSERT INTO data_edges AS e (shard, first_day, last_day) VALUES ($1, $2, $3)
             ON CONFLICT (shard) DO UPDATE SET
                 first_day = least(e.first_day, excluded.first_day),
                 last_day = greatest(e.last_day, excluded.last_day)",
            &[&shard.column(), first, last],
        )
        .await?;
    Ok(())
}

async fn add_panel(
    transaction: &Transaction<'_>,
    cells: &Cells,
    shard: CategoryShard,
) -> Result<(), tokio_postgres::Error> {
    let (mut providers, mut regions, mut dates, mut keys) = (vec![], vec![], vec![], vec![]);
    for (provider, days) in &cells.panel {
        for ((region, day), cards) in days {
            let region = std::str::from_utf8(region).unwrap_or("XX");
            for &card in cards {
                providers.push(provider.as_str());
                regions.push(region);
                dates.push(epoch_days_to_date(*day));
                // Customer keys are 64 opaque bits; PostgreSQL stores them as bigint.
                keys.push(card as i64);
            }
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    let statement = transaction.prepare_cached(UPSERT_PANEL).await?;
    transaction
        .execute(
            &statement,
            &[&providers, &regions, &dates, &keys, &shard.column()],
        )
        .await?;
    Ok(())
}

/// The panel's rows of a batch, in primary-key order so that upserts lock in one order.
const UPSERT_PANEL: &str = "
INSERT INTO agg_daily_panel AS t (provider, region, metric_date, shard, cards)
SELECT p.provider, p.region, p.metric_date, $5::integer,
       hll_add_agg_panel(hll_hash_bigint(p.customer_key))
FROM unnest($1::text[], $2::text[], $3::date[], $4::bigint[])
     AS p(provider, region, metric_date, customer_key)
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
ON CONFLICT (provider, region, metric_date, shard) DO UPDATE SET
    cards = hll_union(t.cards, excluded.cards),
    updated_at = now()";

const INSERT_OUTBOX: &str = "INSERT INTO outbox (kind, payload)
    VALUES ('cache_invalidation', $1), ('aggregate_updates', $2)";

/// Adds the cells to the daily table, and what they change in released cells to every rollup
/// (per state, and over all states: schema/0013), in one statement; returns the new totals of
/// each daily cell it touched, with the merchant's category.
///
/// **Released cells** (schema/0008, docs/PRIVACY.md): the rollups hold only cells with at least
/// k customers (`disclosure.k`). A sketch never loses customers, so a cell is released at most
/// once: the upsert marks it (`released`) and says in `last_change` what the rollups receive:
/// a released cell's change; all of a cell released now (and one withheld cell less); a new
/// withheld cell counted; or nothing. `released_cell` turns that into the rollups' deltas.
///
/// The HLLs are built with `hll_add_agg_packed` and `hll_union_agg_packed` (schema/0003): the
/// same additions and unions as `hll_add_agg` and `hll_union_agg`, with the same bytes as
/// result, but without their ~128 KiB per-group state, which dominated the grouping of a
/// batch's small groups. The category rollups are grouped once by day (`category_cell`) and
/// the week and month are derived from those groups instead of from every cell. A cell with
/// negative sums and no customers subtracts: `hll_union` with an empty sketch keeps it.
const UPSERT_CELLS: &str = "
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
         refund_count, customers, released, last_change, updated_at)
    SELECT merchant_id, region, metric_date, gross, sales, refund, refunds, customers,
           hll_cardinality(customers) >= (SELECT k FROM disclosure),
           CASE WHEN hll_cardinality(customers) >= (SELECT k FROM disclosure) THEN 2 ELSE 1 END,
           now()
    FROM cell
    ON CONFLICT (merchant_id, region, metric_date) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers),
        released = t.released
            OR hll_cardinality(hll_union(t.customers, excluded.customers)) >= (SELECT k FROM disclosure),
        last_change = CASE
            WHEN t.released THEN 2
            WHEN hll_cardinality(hll_union(t.customers, excluded.customers)) >= (SELECT k FROM disclosure) THEN 3
            ELSE 0 END,
        updated_at = now()
    RETURNING t.merchant_id, t.region, t.metric_date, t.total_spend_cents, t.transaction_count,
              t.refund_cents, t.refund_count, hll_cardinality(t.customers)::bigint AS customers,
              t.last_change, CASE WHEN t.last_change = 3 THEN t.customers END AS sketch
),
released_cell AS MATERIALIZED (
    SELECT c.merchant_id, c.region, c.metric_date, c.category,
           CASE d.last_change WHEN 3 THEN d.total_spend_cents WHEN 2 THEN c.gross ELSE 0 END AS gross,
           CASE d.last_change WHEN 3 THEN d.transaction_count WHEN 2 THEN c.sales ELSE 0 END AS sales,
           CASE d.last_change WHEN 3 THEN d.refund_cents WHEN 2 THEN c.refund ELSE 0 END AS refund,
           CASE d.last_change WHEN 3 THEN d.refund_count WHEN 2 THEN c.refunds ELSE 0 END AS refunds,
           CASE d.last_change WHEN 3 THEN d.sketch WHEN 2 THEN c.customers ELSE hll_empty() END
               AS customers,
           CASE d.last_change WHEN 1 THEN 1 WHEN 3 THEN -1 ELSE 0 END AS withheld
    FROM daily d JOIN cell c USING (merchant_id, region, metric_date)
    WHERE d.last_change > 0
),
weekly AS (
    INSERT INTO agg_weekly_merchant_spend AS t
        (merchant_id, region, week_start, total_spend_cents, transaction_count, refund_cents,
         refund_count, customers, withheld_cells)
    SELECT merchant_id, region, date_trunc('week', metric_date::timestamp)::date,
           sum(gross), sum(sales), sum(refund), sum(refunds), hll_union_agg_packed(customers),
           sum(withheld)
    FROM released_cell GROUP BY 1, 2, 3
    ON CONFLICT (merchant_id, region, week_start) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers),
        withheld_cells = t.withheld_cells + excluded.withheld_cells
),
monthly AS (
    INSERT INTO agg_monthly_merchant_spend AS t
        (merchant_id, region, month_start, total_spend_cents, transaction_count, refund_cents,
         refund_count, customers, withheld_cells)
    SELECT merchant_id, region, date_trunc('month', metric_date::timestamp)::date,
           sum(gross), sum(sales), sum(refund), sum(refunds), hll_union_agg_packed(customers),
           sum(withheld)
    FROM released_cell GROUP BY 1, 2, 3
    ON CONFLICT (merchant_id, region, month_start) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers),
        withheld_cells = t.withheld_cells + excluded.withheld_cells
),
category_cell AS MATERIALIZED (
    SELECT category, region, metric_date, sum(gross) AS gross, sum(sales) AS sales,
           sum(refund) AS refund, sum(refunds) AS refunds,
           hll_union_agg_packed(customers) AS customers, sum(withheld) AS withheld
    FROM released_cell GROUP BY 1, 2, 3
),
category_daily AS (
    INSERT INTO agg_daily_category_region AS t
        (category, region, metric_date, shard, total_spend_cents, transaction_count,
         refund_cents, refund_count, customers, withheld_cells)
    SELECT category, region, metric_date, $10::integer, gross, sales, refund, refunds, customers,
           withheld
    FROM category_cell
    ON CONFLICT (category, region, metric_date, shard) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers),
        withheld_cells = t.withheld_cells + excluded.withheld_cells
),
category_weekly AS (
    INSERT INTO agg_weekly_category_region AS t
        (category, region, week_start, shard, total_spend_cents, transaction_count,
         refund_cents, refund_count, customers, withheld_cells)
    SELECT category, region, date_trunc('week', metric_date::timestamp)::date, $10::integer,
           sum(gross), sum(sales), sum(refund), sum(refunds), hll_union_agg_packed(customers),
           sum(withheld)
    FROM category_cell GROUP BY 1, 2, 3
    ON CONFLICT (category, region, week_start, shard) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers),
        withheld_cells = t.withheld_cells + excluded.withheld_cells
),
category_monthly AS (
    INSERT INTO agg_monthly_category_region AS t
        (category, region, month_start, shard, total_spend_cents, transaction_count,
         refund_cents, refund_count, customers, withheld_cells)
    SELECT category, region, date_trunc('month', metric_date::timestamp)::date, $10::integer,
           sum(gross), sum(sales), sum(refund), sum(refunds), hll_union_agg_packed(customers),
           sum(withheld)
    FROM category_cell GROUP BY 1, 2, 3
    ON CONFLICT (category, region, month_start, shard) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers),
        withheld_cells = t.withheld_cells + excluded.withheld_cells
),
category_national_daily AS (
    INSERT INTO agg_daily_category_national AS t
        (category, metric_date, shard, total_spend_cents, transaction_count, refund_cents,
         refund_count, customers, withheld_cells)
    SELECT category, metric_date, $10::integer, sum(gross), sum(sales), sum(refund),
           sum(refunds), hll_union_agg_packed(customers), sum(withheld)
    FROM category_cell GROUP BY 1, 2
    ON CONFLICT (category, metric_date, shard) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers),
        withheld_cells = t.withheld_cells + excluded.withheld_cells
),
category_national_weekly AS (
    INSERT INTO agg_weekly_category_national AS t
        (category, week_start, shard, total_spend_cents, transaction_count, refund_cents,
         refund_count, customers, withheld_cells)
    SELECT category, date_trunc('week', metric_date::timestamp)::date, $10::integer,
           sum(gross), sum(sales), sum(refund), sum(refunds), hll_union_agg_packed(customers),
           sum(withheld)
    FROM category_cell GROUP BY 1, 2
    ON CONFLICT (category, week_start, shard) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers),
        withheld_cells = t.withheld_cells + excluded.withheld_cells
),
merchant_national_daily AS (
    INSERT INTO agg_daily_merchant_national AS t
        (merchant_id, metric_date, total_spend_cents, transaction_count, refund_cents,
         refund_count, customers, withheld_cells)
    SELECT merchant_id, metric_date, sum(gross), sum(sales), sum(refund), sum(refunds),
           hll_union_agg_packed(customers), sum(withheld)
    FROM released_cell GROUP BY 1, 2
    ON CONFLICT (merchant_id, metric_date) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers),
        withheld_cells = t.withheld_cells + excluded.withheld_cells
),
merchant_national_weekly AS (
    INSERT INTO agg_weekly_merchant_national AS t
        (merchant_id, week_start, total_spend_cents, transaction_count, refund_cents,
         refund_count, customers, withheld_cells)
    SELECT merchant_id, date_trunc('week', metric_date::timestamp)::date, sum(gross),
           sum(sales), sum(refund), sum(refunds), hll_union_agg_packed(customers), sum(withheld)
    FROM released_cell GROUP BY 1, 2
    ON CONFLICT (merchant_id, week_start) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers),
        withheld_cells = t.withheld_cells + excluded.withheld_cells
)
SELECT d.merchant_id, d.region, d.metric_date, d.total_spend_cents, d.transaction_count,
       d.refund_cents, d.refund_count, d.customers, c.category,
       c.gross, c.sales, c.refund, c.refunds
FROM daily d JOIN cell c USING (merchant_id, region, metric_date)";

/// Parallel arrays of the cells, in the shape `UPSERT_CELLS` takes.
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
    fn from_cells(cells: &Cells) -> CellColumns {
        let n = cells.len();
        let mut columns = CellColumns {
            merchant_ids: Vec::with_capacity(n),
            regions: Vec::with_capacity(n),
            dates: Vec::with_capacity(n),
            gross: Vec::with_capacity(n),
            sales: Vec::with_capacity(n),
            refund: Vec::with_capacity(n),
            refunds: Vec::with_capacity(n),
            customer_cell: Vec::with_capacity(cells.transactions),
            customer_keys: Vec::with_capacity(cells.transactions),
        };
        // In primary-key order, so that consecutive upserts descend to neighbouring index
        // leaves and heap pages (measurably cheaper than the hash map's order), and so that
        // two writers of overlapping cells lock them in the same order.
        let mut sorted: Vec<(&CellKey, _)> = cells.cells.iter().collect();
        sorted.sort_unstable_by_key(|&(key, _)| *key);
        for (index, (key, delta)) in sorted.into_iter().enumerate() {
            columns.merchant_ids.push(key.merchant_id);
            columns.regions.push(key.region_str().to_owned());
            columns.dates.push(epoch_days_to_date(key.metric_date));
            columns.gross.push(delta.gross_cents);
            columns.sales.push(delta.sale_count);
            columns.refund.push(delta.refund_cents);
            columns.refunds.push(delta.refund_count);
            // `WITH ORDINALITY` numbers cells from 1.
            let ordinal = index as i64 + 1;
            for &customer_key in &delta.customers {
                columns.customer_cell.push(ordinal);
                // Customer keys are 64 opaque bits; PostgreSQL stores them as bigint.
                columns.customer_keys.push(customer_key as i64);
            }
        }
        columns
    }
}
