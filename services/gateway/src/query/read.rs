//! The reads, each in one statement, and the read-only snapshot every answer is computed in.
//!
//! **The disclosure rule** (docs/PRIVACY.md, schema/0008): every answer is a sum of *released
//! cells*. A cell is one merchant's spend in one state on one day, released once it counts at
//! least k distinct customers. The fact writer keeps every rollup (weekly and monthly merchant
//! rows, daily, weekly and monthly category rows, and the daily and weekly rows over all
//! states) as sums of released cells with a count of the withheld ones, and
//! `released_daily_merchant_spend` shows the daily cells the same way; the reads here sum only
//! those. A cell under k contributes to no answer at any granularity, state set or scope, so no
//! difference of answers (states, days, weeks, a category minus its merchants) can isolate it:
//! every such difference is itself a sum of released cells.

use super::coverage::{PanelCoverage, PeriodSpan};
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
        }
    }

    /// Nothing released (a released cell has at least k customers), but something withheld:
    /// the value is unknown, not zero. A point without any activity reveals nothing about
    /// anyone and is reported as zero.
    pub fn suppressed(&self) -> bool {
        self.customers <= 0.0 && self.withheld_cells > 0
    }

    /// Whether any released cell contributes.
    pub fn released(&self) -> bool {
        self.customers > 0.0
    }

    /// The value of `metric` over the released cells; money in dollars with cents precision.
    /// `None` only for an average ticket without sales or a per-customer metric without
    /// customers. Per-customer metrics divide by the HLL estimate of distinct customers.
    pub fn value(&self, metric: Metric) -> Option<f64> {
        let dollars = |cents: i64| cents as f64 / 100.0;
        let per_customer = |amount: f64, decimals: f64| {
            (self.customers >= 1.0).then(|| (amount / self.customers * decimals).round() / decimals)
        };
        match metric {
            Metric::Spend => Some(dollars(self.gross_cents - self.refund_cents)),
            Metric::Gross => Some(dollars(self.gross_cents)),
            Metric::Refunds => Some(dollars(self.refund_cents)),
            Metric::Transactions => Some(self.sales as f64),
            Metric::Customers => Some(self.customers.round()),
            Metric::AvgTicket => (self.sales > 0)
                .then(|| (self.gross_cents as f64 / self.sales as f64).round() / 100.0),
            Metric::SpendPerCustomer => {
                per_customer(dollars(self.gross_cents - self.refund_cents), 100.0)
            }
            Metric::TransactionsPerCustomer => per_customer(self.sales as f64, 1e4),
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
        self
    }
}

/// The aggregate columns of every read over released rows `t`, in [`Totals::from_row`] order.
const TOTALS_COLUMNS: &str = "
       coalesce(sum(t.total_spend_cents), 0)::bigint,
       coalesce(sum(t.transaction_count), 0)::bigint,
       coalesce(sum(t.refund_cents), 0)::bigint,
       coalesce(sum(t.refund_count), 0)::bigint,
       coalesce(hll_cardinality(hll_union_agg(t.customers)), 0)::float8,
       coalesce(sum(t.withheld_cells), 0)::bigint";

/// Where a read finds its released rows: the table, its date column, and the filter on the
/// states asked (`$2`).
struct Source {
    table: &'static str,
    date_column: &'static str,
    region_filter: &'static str,
}

/// The rows to read for a scope at a granularity. A question over every state reads the
/// national rollups of days and weeks (schema/0013): one row per period (for a category, per
/// writer shard until compaction folds them) holding exactly the sums of every state's rows,
/// so the answer is the same from a fiftieth of the rows.
fn source(granularity: Granularity, merchant: bool, every_state: bool) -> Source {
    let national = every_state && matches!(granularity, Granularity::Day | Granularity::Week);
    let (table, date_column) = match (granularity, merchant, national) {
        (Granularity::Day, true, false) => ("released_daily_merchant_spend", "metric_date"),
        (Granularity::Day, true, true) => ("agg_daily_merchant_national", "metric_date"),
        (Granularity::Week, true, false) => ("agg_weekly_merchant_spend", "week_start"),
        (Granularity::Week, true, true) => ("agg_weekly_merchant_national", "week_start"),
        (Granularity::Month | Granularity::Quarter, true, _) => {
            ("agg_monthly_merchant_spend", "month_start")
        }
        (Granularity::Day, false, false) => ("agg_daily_category_region", "metric_date"),
        (Granularity::Day, false, true) => ("agg_daily_category_national", "metric_date"),
        (Granularity::Week, false, false) => ("agg_weekly_category_region", "week_start"),
        (Granularity::Week, false, true) => ("agg_weekly_category_national", "week_start"),
        (Granularity::Month | Granularity::Quarter, false, _) => {
            ("agg_monthly_category_region", "month_start")
        }
    };
    Source {
        table,
        date_column,
        region_filter: if national { EVERY_STATE } else { REGION_FILTER },
    }
}

/// The rows a read sums: which rollups (merchant or category × region), the `WHERE` fragment
/// and its bound value, always parameter `$3`.
pub struct RowSet {
    merchant_tables: bool,
    clause: &'static str,
    value: Box<dyn ToSql + Sync + Send>,
}

impl RowSet {
    /// A scope's rows. "All" reads the category tables with every category listed, so the
    /// primary key (category first) is used.
    pub fn of(scope: &Scope) -> RowSet {
        match scope {
            Scope::Merchant(id) => RowSet {
                merchant_tables: true,
                clause: "t.merchant_id = $3::bigint",
                value: Box::new(*id),
            },
            Scope::Category(category) => RowSet::categories(&[*category]),
            Scope::All => RowSet::categories(&Category::ALL),
        }
    }

    /// The rows of the scope's unattributed merchants (spend at shops whose brand is not
    /// known); `None` for a merchant scope.
    pub fn unattributed_of(scope: &Scope) -> Option<RowSet> {
        let ids: Vec<i64> = match scope {
            Scope::Merchant(_) => return None,
            Scope::Category(category) => vec![category.unattributed_merchant_id()],
            Scope::All => Category::ALL
                .iter()
                .map(|c| c.unattributed_merchant_id())
                .collect(),
        };
        Some(RowSet {
            merchant_tables: true,
            clause: "t.merchant_id = ANY($3::bigint[])",
            value: Box::new(ids),
        })
    }

    /// The rows of these merchants (a company's brands).
    pub fn merchants(ids: Vec<i64>) -> RowSet {
        RowSet {
            merchant_tables: true,
            clause: "t.merchant_id = ANY($3::bigint[])",
            value: Box::new(ids),
        }
    }

    fn categories(categories: &[Category]) -> RowSet {
        RowSet {
            merchant_tables: false,
            clause: "t.category = ANY($3::text[])",
            value: Box::new(
                categories
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect::<Vec<String>>(),
            ),
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

const REGION_FILTER: &str = "(cardinality($2::text[]) = 0 OR t.region = ANY($2::text[]))";

/// The national rows have no region: they answer only for every state (no state asked).
const EVERY_STATE: &str = "cardinality($2::text[]) = 0";

/// The totals of each period, in that order: a whole period from the rollups of the
/// granularity (a quarter sums its three months), a clipped one from the daily cells of the
/// days counted, so that no point includes a day outside the question's range.
pub async fn series(
    client: &deadpool_postgres::Transaction<'_>,
    rows: &RowSet,
    granularity: Granularity,
    spans: &[PeriodSpan],
    states: &[String],
) -> Result<Vec<Totals>, tokio_postgres::Error> {
    let whole: Vec<DateRange> = spans
        .iter()
        .filter(|s| !s.clipped())
        .map(|s| s.whole)
        .collect();
    let clipped: Vec<DateRange> = spans
        .iter()
        .filter(|s| s.clipped())
        .map(|s| s.counted)
        .collect();
    let (whole, clipped) = tokio::try_join!(
        rollup_totals(client, rows, granularity, &whole, states),
        range_totals(client, rows, &clipped, states),
    )?;
    let (mut whole, mut clipped) = (whole.into_iter(), clipped.into_iter());
    Ok(spans
        .iter()
        .map(|span| {
            let next = if span.clipped() {
                clipped.next()
            } else {
                whole.next()
            };
            next.unwrap_or_default()
        })
        .collect())
}

/// The totals of whole periods from the rollups: the rows whose period starts within each.
async fn rollup_totals(
    client: &deadpool_postgres::Transaction<'_>,
    rows: &RowSet,
    granularity: Granularity,
    periods: &[DateRange],
    states: &[String],
) -> Result<Vec<Totals>, tokio_postgres::Error> {
    if periods.is_empty() {
        return Ok(Vec::new());
    }
    let Source {
        table,
        date_column,
        region_filter,
    } = source(granularity, rows.merchant_tables, states.is_empty());
    let (scope_clause, scope_value) = (rows.clause, &rows.value);
    let sql = format!(
        "SELECT p.idx, {TOTALS_COLUMNS}
         FROM unnest($1::date[], $4::date[]) WITH ORDINALITY AS p(first_day, last_day, idx)
         LEFT JOIN {table} t ON t.{date_column} BETWEEN p.first_day AND p.last_day
              AND {scope_clause} AND {region_filter}
         GROUP BY p.idx ORDER BY p.idx"
    );
    let firsts: Vec<NaiveDate> = periods.iter().map(|r| r.from).collect();
    let lasts: Vec<NaiveDate> = periods.iter().map(|r| r.to).collect();
    let states = states.to_vec();
    let rows = client
        .query(
            &client.prepare_cached(&sql).await?,
            &[&firsts, &states, scope_value.as_ref(), &lasts],
        )
        .await?;
    Ok(rows.iter().map(|row| Totals::from_row(row, 1)).collect())
}

/// The totals of each inclusive date range, in that order.
pub async fn range_totals(
    client: &deadpool_postgres::Transaction<'_>,
    rows: &RowSet,
    ranges: &[DateRange],
    states: &[String],
) -> Result<Vec<Totals>, tokio_postgres::Error> {
    if ranges.is_empty() {
        return Ok(Vec::new());
    }
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
    let every_state = split == RangeSplit::Whole && states.is_empty();
    let Source {
        table,
        date_column,
        region_filter,
    } = source(Granularity::Day, rows.merchant_tables, every_state);
    let (scope_clause, scope_value) = (rows.clause, &rows.value);
    let (region_column, region_group) = match split {
        RangeSplit::Whole => ("NULL::text", ""),
        RangeSplit::ByState => ("t.region", ", t.region"),
    };
    let sql = format!(
        "SELECT p.idx, {region_column}, {TOTALS_COLUMNS}
         FROM unnest($1::date[], $4::date[]) WITH ORDINALITY AS p(first_day, last_day, idx)
         LEFT JOIN {table} t ON t.{date_column} BETWEEN p.first_day AND p.last_day
              AND {scope_clause} AND {region_filter}
         GROUP BY p.idx{region_group} ORDER BY p.idx{region_group}"
    );
    let firsts: Vec<NaiveDate> = ranges.iter().map(|r| r.from).collect();
    let lasts: Vec<NaiveDate> = ranges.iter().map(|r| r.to).collect();
    let states = states.to_vec();
    let rows = client
        .query(
            &client.prepare_cached(&sql).await?,
            &[&firsts, &states, scope_value.as_ref(), &lasts],
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

/// One merchant's net spend in the current and previous period of `/v1/top`.
#[derive(Debug, Clone)]
pub struct MerchantPeriods {
    pub merchant_id: i64,
    pub name: String,
    pub category: String,
    pub current: PeriodSpend,
    pub previous: PeriodSpend,
}

/// A merchant's net spend over the released cells of a period, and whether there are any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeriodSpend {
    pub net_cents: i64,
    /// Released cells of the period (over every state: days with one).
    pub released_cells: i64,
}

impl PeriodSpend {
    /// Whether any released cell contributes: the same test as [`Totals::released`], since a
    /// released cell counts at least k ≥ 1 customers.
    pub fn released(&self) -> bool {
        self.released_cells > 0
    }

    /// Net spend in dollars, as [`Totals::value`] gives it for [`Metric::Spend`].
    pub fn spend(&self) -> f64 {
        self.net_cents as f64 / 100.0
    }
}

/// Every merchant with a released cell in either period, with both periods' net spend over
/// their released cells. A ranking needs no customer count, so no daily sketch is read.
///
/// Each merchant of the categories is looked up by its key (`LATERAL`): its cells of the two
/// periods are a few index ranges, where grouping the periods' cells of every merchant read
/// the whole date range of the table. Over every state, the national rows (schema/0013) hold
/// one row per merchant and day; a released cell has at least k ≥ 1 customers, so a national
/// row has a released cell exactly when its sketch is not empty. For the same reason, a
/// merchant whose monthly rows (released cells only) of the states and months have empty
/// sketches has no released cell in either period, and is passed over before its daily cells
/// are read: most of a category's merchants, in one state, for a week.
pub async fn merchant_periods(
    client: &deadpool_postgres::Transaction<'_>,
    category: Option<Category>,
    states: &[String],
    current: DateRange,
    previous: DateRange,
) -> Result<Vec<MerchantPeriods>, tokio_postgres::Error> {
    let (table, released, region_filter) = if states.is_empty() {
        (
            "agg_daily_merchant_national",
            "hll_cardinality(t.customers) > 0",
            "cardinality($6::text[]) = 0",
        )
    } else {
        (
            "released_daily_merchant_spend",
            "t.customers IS NOT NULL",
            "t.region = ANY($6::text[])",
        )
    };
    let period = |name: &str, first: &str, last: &str| {
        let when = format!("t.metric_date BETWEEN {first} AND {last}");
        format!(
            "coalesce(sum(t.total_spend_cents - t.refund_cents) FILTER (WHERE {when}), 0)::bigint
                 AS {name}_cents,
             count(*) FILTER (WHERE {when} AND {released}) AS {name}_cells"
        )
    };
    // Periods that follow each other (week over week, month over month) are one index range
    // per merchant and partition; others (year over year) two.
    let days = if previous.to.succ_opt() == Some(current.from) {
        "t.metric_date BETWEEN $3::date AND $2::date"
    } else {
        "(t.metric_date BETWEEN $1::date AND $2::date OR t.metric_date BETWEEN $3::date AND $4::date)"
    };
    let month_region = if states.is_empty() {
        "cardinality($6::text[]) = 0"
    } else {
        "w.region = ANY($6::text[])"
    };
    let sql = format!(
        "SELECT m.id, m.name, m.category, p.*
         FROM dim_merchants m CROSS JOIN LATERAL (
             SELECT {}, {}
             FROM {table} t
             WHERE t.merchant_id = m.id AND {region_filter} AND {days}) p
         WHERE m.category = ANY($5::text[]) AND NOT m.unattributed
           AND EXISTS (
               SELECT 1 FROM agg_monthly_merchant_spend w
               WHERE w.merchant_id = m.id AND {month_region}
                 AND w.month_start BETWEEN date_trunc('month', least($1::date, $3::date))::date
                                       AND greatest($2::date, $4::date)
                 AND hll_cardinality(w.customers) > 0)
           AND p.current_cells + p.previous_cells > 0",
        period("current", "$1::date", "$2::date"),
        period("previous", "$3::date", "$4::date"),
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
            ],
        )
        .await?;
    let period = |row: &tokio_postgres::Row, first: usize| PeriodSpend {
        net_cents: row.get(first),
        released_cells: row.get(first + 1),
    };
    Ok(rows
        .iter()
        .map(|row| MerchantPeriods {
            merchant_id: row.get(0),
            name: row.get(1),
            category: row.get(2),
            current: period(row, 3),
            previous: period(row, 5),
        })
        .collect())
}

/// What every answer states beside its numbers, read from its snapshot in one statement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Basis {
    /// The newest commit of any shard: what "as of" means for every answer.
    pub as_of: Option<DateTime<Utc>>,
    /// The k of the disclosure rule (`disclosure.k`): the writer released cells at it.
    pub k: u32,
    /// The first and last day with any fact: the rows of `data_edges` (one per writer shard,
    /// widened by the fact writer in its flush transaction, schema/0012), so it costs a
    /// handful of rows however long the history.
    pub coverage: PanelCoverage,
}

pub async fn basis(
    client: &deadpool_postgres::Transaction<'_>,
) -> Result<Basis, tokio_postgres::Error> {
    let statement = client
        .prepare_cached(
            "SELECT (SELECT max(last_commit_at) FROM shard_offsets),
                    (SELECT k FROM disclosure),
                    (SELECT min(first_day) FROM data_edges),
                    (SELECT max(last_day) FROM data_edges)",
        )
        .await?;
    let row = client.query_one(&statement, &[]).await?;
    let k: i32 = row.try_get(1)?;
    Ok(Basis {
        as_of: row.try_get(0)?,
        k: u32::try_from(k).unwrap_or(u32::MAX),
        coverage: PanelCoverage {
            first_day: row.try_get(2)?,
            last_day: row.try_get(3)?,
        },
    })
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
///
/// An answer's reads are awaited together (`tokio::try_join!`): the connection sends them
/// one after another without waiting and PostgreSQL answers them in order, in one round trip
/// instead of one per read, and the same snapshot holds for all of them. Each read must be
/// prepared already, or it waits for its own round trip; [`optional`] is a read only some
/// questions make.
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

/// A read only some questions make (the unattributed part of a category, the panel): `None`
/// without a statement when `read` is `None`.
pub async fn optional<T, E>(
    read: Option<impl std::future::Future<Output = Result<T, E>>>,
) -> Result<Option<T>, E> {
    match read {
        Some(read) => read.await.map(Some),
        None => Ok(None),
    }
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
            ..Default::default()
        };
        assert!(!cell.suppressed());
        assert_eq!(cell.value(Metric::Spend), Some(123.0));
        assert_eq!(cell.value(Metric::AvgTicket), Some(41.15));
    }
}
