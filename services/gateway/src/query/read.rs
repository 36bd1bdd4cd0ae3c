//! The reads, each in one statement, and the read-only snapshot every answer is computed in.
//!
//! **The disclosure rule** (docs/PRIVACY.md): every answer is a sum of *released cells*. A
//! cell is one merchant's spend in one state on one day (`agg_daily_merchant_spend`), and it
//! is released when it covers at least k distinct customers. A cell under k contributes to no
//! answer at any granularity, state set or scope, so no difference of answers (states, days,
//! weeks, a category minus its merchants) can isolate it: every such difference is itself a
//! sum of released cells. Category and "all" answers are sums of their merchants' cells (the
//! unattributed merchants included), not of the category rollups, whose cells would leave the
//! remainder of a withheld merchant exposed.

use super::terms::{DateRange, Granularity, Metric, Scope};
use altdata_domain::{Category, Region};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use tokio_postgres::types::ToSql;

/// The sums of the released cells of a point or period: gross sales, sales count, refunds,
/// refund count, the HLL estimate of distinct customers, and how many cells were withheld.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub gross_cents: i64,
    pub sales: i64,
    pub refund_cents: i64,
    pub refunds: i64,
    pub customers: f64,
    /// Cells (merchant × state × day) with fewer than k customers, left out of the sums.
    pub withheld_cells: i64,
    pub released_cells: i64,
}

impl Totals {
    fn from_row(row: &tokio_postgres::Row, first: usize) -> Totals {
        Totals {
            gross_cents: row.get(first),
            sales: row.get(first + 1),
            refund_cents: row.get(first + 2),
            refunds: row.get(first + 3),
            customers: row.get(first + 4),
            withheld_cells: row.get(first + 5),
            released_cells: row.get(first + 6),
        }
    }

    /// Nothing released, but something withheld: the value is unknown, not zero. A point
    /// without any activity reveals nothing about anyone and is reported as zero.
    pub fn suppressed(&self) -> bool {
        self.released_cells == 0 && self.withheld_cells > 0
    }

    /// The value of `metric` over the released cells; money in dollars with cents precision.
    /// `None` only for an average ticket without sales.
    pub fn value(&self, metric: Metric) -> Option<f64> {
        let dollars = |cents: i64| cents as f64 / 100.0;
        match metric {
            Metric::Spend => Some(dollars(self.gross_cents - self.refund_cents)),
            Metric::Gross => Some(dollars(self.gross_cents)),
            Metric::Refunds => Some(dollars(self.refund_cents)),
            Metric::Transactions => Some(self.sales as f64),
            Metric::Customers => Some(self.customers.round()),
            Metric::AvgTicket => (self.sales > 0)
                .then(|| (self.gross_cents as f64 / self.sales as f64).round() / 100.0),
        }
    }

    /// The sums of two sets of cells (their customers are not added: a point's customers are
    /// not a sum of its parts).
    pub fn plus_sums(mut self, other: &Totals) -> Totals {
        self.gross_cents += other.gross_cents;
        self.sales += other.sales;
        self.refund_cents += other.refund_cents;
        self.refunds += other.refunds;
        self.withheld_cells += other.withheld_cells;
        self.released_cells += other.released_cells;
        self
    }
}

/// The aggregate columns of every read over released cells `t` (with `t.released`), in
/// [`Totals::from_row`] order.
const TOTALS_COLUMNS: &str = "
       coalesce(sum(t.total_spend_cents) FILTER (WHERE t.released), 0)::bigint,
       coalesce(sum(t.transaction_count) FILTER (WHERE t.released), 0)::bigint,
       coalesce(sum(t.refund_cents) FILTER (WHERE t.released), 0)::bigint,
       coalesce(sum(t.refund_count) FILTER (WHERE t.released), 0)::bigint,
       coalesce(hll_cardinality(hll_union_agg(t.customers) FILTER (WHERE t.released)), 0)::float8,
       count(t.merchant_id) FILTER (WHERE NOT t.released),
       count(t.merchant_id) FILTER (WHERE t.released)";

/// The daily cells of a scope a read sums, and the k that releases them: the `WHERE`
/// fragment over `d` (a row of `agg_daily_merchant_spend`) with its bound value, always
/// parameter `$3`; k is always `$5`.
pub struct RowSet {
    clause: &'static str,
    value: Box<dyn ToSql + Sync + Send>,
    k: i64,
}

/// The merchants of a list of categories (their unattributed merchants included).
const IN_CATEGORIES: &str =
    "d.merchant_id IN (SELECT id FROM dim_merchants WHERE category = ANY($3::text[]))";

impl RowSet {
    /// A scope's cells, released at `k` customers.
    pub fn of(scope: &Scope, k: u32) -> RowSet {
        match scope {
            Scope::Merchant(id) => RowSet {
                clause: "d.merchant_id = $3::bigint",
                value: Box::new(*id),
                k: i64::from(k),
            },
            Scope::Category(category) => RowSet::categories(&[*category], k),
            Scope::All => RowSet::categories(&Category::ALL, k),
        }
    }

    /// The cells of the scope's unattributed merchants (spend at shops whose brand is not
    /// known); `None` for a merchant scope.
    pub fn unattributed_of(scope: &Scope, k: u32) -> Option<RowSet> {
        let ids: Vec<i64> = match scope {
            Scope::Merchant(_) => return None,
            Scope::Category(category) => vec![category.unattributed_merchant_id()],
            Scope::All => Category::ALL
                .iter()
                .map(|c| c.unattributed_merchant_id())
                .collect(),
        };
        Some(RowSet {
            clause: "d.merchant_id = ANY($3::bigint[])",
            value: Box::new(ids),
            k: i64::from(k),
        })
    }

    fn categories(categories: &[Category], k: u32) -> RowSet {
        RowSet {
            clause: IN_CATEGORIES,
            value: Box::new(
                categories
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect::<Vec<String>>(),
            ),
            k: i64::from(k),
        }
    }
}

/// The share of `whole`'s net spend that named brands account for: what is not in
/// `unattributed`. `None` without positive net spend.
pub fn attributed_share(whole: &Totals, unattributed: &Totals) -> Option<f64> {
    let net = whole.gross_cents - whole.refund_cents;
    let unattributed = unattributed.gross_cents - unattributed.refund_cents;
    (net > 0).then(|| {
        let share = 1.0 - unattributed as f64 / net as f64;
        (share.clamp(0.0, 1.0) * 1e4).round() / 1e4
    })
}

const REGION_FILTER: &str = "(cardinality($2::text[]) = 0 OR d.region = ANY($2::text[]))";

/// The totals of each period starting at `starts`, in that order: the released daily cells
/// of each whole period.
pub async fn series(
    client: &deadpool_postgres::Transaction<'_>,
    rows: &RowSet,
    granularity: Granularity,
    starts: &[NaiveDate],
    states: &[String],
) -> Result<Vec<Totals>, tokio_postgres::Error> {
    let ranges: Vec<DateRange> = starts
        .iter()
        .map(|start| DateRange {
            from: *start,
            to: granularity.period_end(*start),
        })
        .collect();
    range_totals(client, rows, &ranges, states).await
}

/// The totals of each inclusive date range, in that order.
pub async fn range_totals(
    client: &deadpool_postgres::Transaction<'_>,
    rows: &RowSet,
    ranges: &[DateRange],
    states: &[String],
) -> Result<Vec<Totals>, tokio_postgres::Error> {
    let cells = range_cells(client, rows, ranges, states, RangeSplit::Whole).await?;
    Ok(cells.into_iter().map(|cell| cell.totals).collect())
}

/// One state's totals over each range of [`range_totals_by_state`].
#[derive(Debug, Clone, PartialEq)]
pub struct StateTotals {
    pub state: String,
    /// One per range, in the order asked; zero where the state had no activity.
    pub totals: Vec<Totals>,
}

/// The totals of each inclusive date range, per state, in one statement: every US state with
/// activity in at least one of the ranges, sorted by code. Each state's totals are exactly
/// what [`range_totals`] answers for that state alone (the same cells, sums and sketch
/// unions). Rows without a location (region `XX`) belong to no state and are left out.
pub async fn range_totals_by_state(
    client: &deadpool_postgres::Transaction<'_>,
    rows: &RowSet,
    ranges: &[DateRange],
) -> Result<Vec<StateTotals>, tokio_postgres::Error> {
    let cells = range_cells(client, rows, ranges, &[], RangeSplit::ByState).await?;
    let mut by_state: BTreeMap<String, Vec<Totals>> = BTreeMap::new();
    for cell in cells {
        let Some(region) = cell.region.as_deref().and_then(Region::parse) else {
            continue;
        };
        let totals = by_state
            .entry(region.as_str().to_owned())
            .or_insert_with(|| vec![Totals::default(); ranges.len()]);
        if let Some(slot) = totals.get_mut(cell.index) {
            *slot = cell.totals;
        }
    }
    Ok(by_state
        .into_iter()
        .map(|(state, totals)| StateTotals { state, totals })
        .collect())
}

/// Whether [`range_cells`] sums each range as a whole or per region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeSplit {
    Whole,
    ByState,
}

/// One row of [`range_cells`]: a range (0-based, in the order asked), the region when split
/// by state (`None` for a range without any row), and its totals.
struct RangeCell {
    index: usize,
    region: Option<String>,
    totals: Totals,
}

/// The one statement behind every series, range and state read. Unsplit, it returns exactly
/// one row per range, in order; split by state, one row per (range, region) with activity,
/// and one row with no region for a range without any.
async fn range_cells(
    client: &deadpool_postgres::Transaction<'_>,
    rows: &RowSet,
    ranges: &[DateRange],
    states: &[String],
    split: RangeSplit,
) -> Result<Vec<RangeCell>, tokio_postgres::Error> {
    let scope_clause = rows.clause;
    let (region_column, region_group) = match split {
        RangeSplit::Whole => ("NULL::text", ""),
        RangeSplit::ByState => ("t.region", ", t.region"),
    };
    let sql = format!(
        "SELECT p.idx, {region_column}, {TOTALS_COLUMNS}
         FROM unnest($1::date[], $4::date[]) WITH ORDINALITY AS p(first_day, last_day, idx)
         LEFT JOIN LATERAL (
             SELECT d.*, hll_cardinality(d.customers) >= $5::bigint AS released
             FROM agg_daily_merchant_spend d
             WHERE d.metric_date BETWEEN p.first_day AND p.last_day
               AND {scope_clause} AND {REGION_FILTER}
         ) t ON true
         GROUP BY p.idx{region_group} ORDER BY p.idx{region_group}"
    );
    let firsts: Vec<NaiveDate> = ranges.iter().map(|r| r.from).collect();
    let lasts: Vec<NaiveDate> = ranges.iter().map(|r| r.to).collect();
    let states = states.to_vec();
    let rows = client
        .query(
            &client.prepare_cached(&sql).await?,
            &[&firsts, &states, rows.value.as_ref(), &lasts, &rows.k],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| RangeCell {
            // WITH ORDINALITY counts from 1.
            index: usize::try_from(row.get::<_, i64>(0) - 1).unwrap_or(usize::MAX),
            region: row.get(1),
            totals: Totals::from_row(row, 2),
        })
        .collect())
}

/// One merchant's totals in the current and previous period of `/v1/top`.
#[derive(Debug, Clone)]
pub struct MerchantPeriods {
    pub merchant_id: i64,
    pub name: String,
    pub category: String,
    pub current: Totals,
    pub previous: Totals,
}

/// Every merchant with a released cell in either period, with both periods' totals over
/// their released cells.
pub async fn merchant_periods(
    client: &deadpool_postgres::Transaction<'_>,
    category: Option<Category>,
    states: &[String],
    current: DateRange,
    previous: DateRange,
    k: u32,
) -> Result<Vec<MerchantPeriods>, tokio_postgres::Error> {
    let columns = |first: &str, last: &str| {
        let when = format!("t.released AND t.metric_date BETWEEN {first} AND {last}");
        format!(
            "coalesce(sum(t.total_spend_cents) FILTER (WHERE {when}), 0)::bigint,
             coalesce(sum(t.transaction_count) FILTER (WHERE {when}), 0)::bigint,
             coalesce(sum(t.refund_cents) FILTER (WHERE {when}), 0)::bigint,
             coalesce(sum(t.refund_count) FILTER (WHERE {when}), 0)::bigint,
             coalesce(hll_cardinality(hll_union_agg(t.customers) FILTER (WHERE {when})), 0)::float8,
             count(*) FILTER (WHERE NOT t.released AND t.metric_date BETWEEN {first} AND {last}),
             count(*) FILTER (WHERE {when})"
        )
    };
    let sql = format!(
        "SELECT m.id, m.name, m.category, {}, {}
         FROM (SELECT d.*, hll_cardinality(d.customers) >= $7::bigint AS released
               FROM agg_daily_merchant_spend d
               WHERE (d.metric_date BETWEEN $1::date AND $2::date
                      OR d.metric_date BETWEEN $3::date AND $4::date)
                 AND (cardinality($6::text[]) = 0 OR d.region = ANY($6::text[]))) t
         JOIN dim_merchants m ON m.id = t.merchant_id
         WHERE m.category = ANY($5::text[]) AND NOT m.unattributed
         GROUP BY m.id, m.name, m.category
         HAVING bool_or(t.released)",
        columns("$1::date", "$2::date"),
        columns("$3::date", "$4::date"),
    );
    let categories: Vec<String> = match category {
        Some(category) => vec![category.as_str().to_owned()],
        None => Category::ALL
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
    };
    let states = states.to_vec();
    let rows = client
        .query(
            &client.prepare_cached(&sql).await?,
            &[
                &current.from,
                &current.to,
                &previous.from,
                &previous.to,
                &categories,
                &states,
                &i64::from(k),
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| MerchantPeriods {
            merchant_id: row.get(0),
            name: row.get(1),
            category: row.get(2),
            current: Totals::from_row(row, 3),
            previous: Totals::from_row(row, 10),
        })
        .collect())
}

/// The newest commit of any shard: what "as of" means for every answer.
pub async fn data_as_of(
    client: &deadpool_postgres::Transaction<'_>,
) -> Result<Option<DateTime<Utc>>, tokio_postgres::Error> {
    let statement = client
        .prepare_cached("SELECT max(last_commit_at) FROM shard_offsets")
        .await?;
    let row = client.query_one(&statement, &[]).await?;
    row.try_get(0)
}

/// The newest day with aggregates, if any: the default "as of" of `altdata ask`.
pub async fn newest_day(
    client: &deadpool_postgres::Transaction<'_>,
) -> Result<Option<NaiveDate>, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT max(metric_date) FROM agg_daily_category_region",
            &[],
        )
        .await?;
    row.try_get(0)
}

/// The longest any gateway statement may run: set on every connection of the gateway's pools
/// (`connect::postgres_pool_lazy_bounded`).
pub const STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// Starts the read-only, repeatable-read transaction every answer is computed in, so that
/// its "as of" and its numbers come from one snapshot; [`STATEMENT_TIMEOUT`], set on the
/// pool's connections, bounds it.
pub async fn read_snapshot(
    client: &mut deadpool_postgres::Client,
) -> Result<deadpool_postgres::Transaction<'_>, tokio_postgres::Error> {
    let transaction = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    Ok(transaction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_is_suppressed_only_when_nothing_is_released_and_something_is_withheld() {
        let withheld_only = Totals {
            withheld_cells: 2,
            ..Default::default()
        };
        assert!(withheld_only.suppressed());
        assert!(!Totals::default().suppressed());
        let cell = Totals {
            customers: 10.0,
            gross_cents: 12345,
            refund_cents: 45,
            sales: 3,
            withheld_cells: 4,
            released_cells: 1,
            ..Default::default()
        };
        assert!(!cell.suppressed());
        assert_eq!(cell.value(Metric::Spend), Some(123.0));
        assert_eq!(cell.value(Metric::AvgTicket), Some(41.15));
    }
}
