//! The overlap read: the customer sketches of two groups (a merchant or a category) over a
//! range and states, from released cells only (`released_daily_merchant_spend`, the category
//! rollups), and the sketch of their union, in one statement. Inclusion–exclusion is the
//! caller's.

use super::terms::{DateRange, Scope};
use altdata_domain::Category;
use tokio_postgres::types::ToSql;

/// Distinct customers of each group and of either, HLL estimates over released cells, and
/// the cells withheld (fewer than k customers) from each group.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OverlapCounts {
    pub a: f64,
    pub b: f64,
    pub either: f64,
    pub a_withheld_cells: i64,
    pub b_withheld_cells: i64,
}

/// The released rows of one group, as a subquery yielding `customers` and `withheld_cells`,
/// with its bound value as parameter `$n`.
fn group(scope: &Scope, n: usize) -> (String, Box<dyn ToSql + Sync + Send>) {
    let (table, clause, value): (&str, String, Box<dyn ToSql + Sync + Send>) = match scope {
        Scope::Merchant(id) => (
            "released_daily_merchant_spend",
            format!("t.merchant_id = ${n}::bigint"),
            Box::new(*id),
        ),
        Scope::Category(category) => (
            "agg_daily_category_region",
            format!("t.category = ANY(${n}::text[])"),
            Box::new(vec![category.as_str().to_owned()]),
        ),
        Scope::All => (
            "agg_daily_category_region",
            format!("t.category = ANY(${n}::text[])"),
            Box::new(
                Category::ALL
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect::<Vec<String>>(),
            ),
        ),
    };
    let sql = format!(
        "SELECT hll_union_agg(t.customers) AS customers,
                coalesce(sum(t.withheld_cells), 0)::bigint AS withheld_cells
         FROM {table} t
         WHERE {clause} AND t.metric_date BETWEEN $1 AND $2
           AND (cardinality($3::text[]) = 0 OR t.region = ANY($3::text[]))"
    );
    (sql, value)
}

/// The customers of `a`, of `b` and of either, over the released cells of `range` and
/// `states` (empty: every region).
pub async fn overlap_counts(
    client: &deadpool_postgres::Transaction<'_>,
    a: &Scope,
    b: &Scope,
    range: DateRange,
    states: &[String],
) -> Result<OverlapCounts, tokio_postgres::Error> {
    let (a_sql, a_value) = group(a, 4);
    let (b_sql, b_value) = group(b, 5);
    let sql = format!(
        "WITH a AS ({a_sql}), b AS ({b_sql})
         SELECT coalesce(hll_cardinality(a.customers), 0)::float8,
                coalesce(hll_cardinality(b.customers), 0)::float8,
                coalesce(hll_cardinality(hll_union(coalesce(a.customers, hll_empty()),
                                                   coalesce(b.customers, hll_empty()))), 0)::float8,
                a.withheld_cells, b.withheld_cells
         FROM a, b"
    );
    let states = states.to_vec();
    let row = client
        .query_one(
            &client.prepare_cached(&sql).await?,
            &[
                &range.from,
                &range.to,
                &states,
                a_value.as_ref(),
                b_value.as_ref(),
            ],
        )
        .await?;
    Ok(OverlapCounts {
        a: row.get(0),
        b: row.get(1),
        either: row.get(2),
        a_withheld_cells: row.get(3),
        b_withheld_cells: row.get(4),
    })
}
