//! The panel's reads: active cards (distinct customer keys with an accepted transaction) over
//! date ranges and states, from `released_daily_panel` (schema/0011) only, so every count is a
//! union of released panel cells (one provider, state and day with at least k cards).
//!
//! A count is an HLL estimate at log2m 14: relative standard error 1.04 / sqrt(16384) = 0.81 %,
//! exact below ~1,600 cards per sketch.

use super::terms::DateRange;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};

/// The relative standard error of a panel count (HLL, 2^14 registers).
pub const PANEL_RELATIVE_ERROR: f64 = 0.0081;

/// Active cards of a period over its released panel cells, and the panel cells withheld.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PanelTotals {
    pub cards: f64,
    pub withheld_cells: i64,
}

impl PanelTotals {
    /// Nothing released but something withheld: the count is unknown, not zero.
    pub fn suppressed(&self) -> bool {
        self.cards <= 0.0 && self.withheld_cells > 0
    }
}

/// The active cards of each range, in that order, over `states` (empty: every region).
pub async fn panel_totals(
    client: &deadpool_postgres::Transaction<'_>,
    ranges: &[DateRange],
    states: &[String],
) -> Result<Vec<PanelTotals>, tokio_postgres::Error> {
    let rows = panel_rows(client, ranges, states, false).await?;
    let mut totals = vec![PanelTotals::default(); ranges.len()];
    for (index, _, cell) in rows {
        if let Some(slot) = totals.get_mut(index) {
            *slot = cell;
        }
    }
    Ok(totals)
}

/// The active cards of each range per state (one entry per state with a panel cell in any
/// range, each with one value per range): what [`panel_totals`] answers for that state alone.
pub async fn panel_totals_by_state(
    client: &deadpool_postgres::Transaction<'_>,
    ranges: &[DateRange],
) -> Result<BTreeMap<String, Vec<PanelTotals>>, tokio_postgres::Error> {
    let mut by_state: BTreeMap<String, Vec<PanelTotals>> = BTreeMap::new();
    for (index, region, cell) in panel_rows(client, ranges, &[], true).await? {
        let Some(region) = region else { continue };
        let totals = by_state
            .entry(region)
            .or_insert_with(|| vec![PanelTotals::default(); ranges.len()]);
        if let Some(slot) = totals.get_mut(index) {
            *slot = cell;
        }
    }
    Ok(by_state)
}

/// One statement: the released panel cells of the ranges' days (listed, so the view's grouping
/// reads only those days), unioned per range, or per range and region.
async fn panel_rows(
    client: &deadpool_postgres::Transaction<'_>,
    ranges: &[DateRange],
    states: &[String],
    by_state: bool,
) -> Result<Vec<(usize, Option<String>, PanelTotals)>, tokio_postgres::Error> {
    let (region_column, region_group) = if by_state {
        ("t.region", ", t.region")
    } else {
        ("NULL::text", "")
    };
    let sql = format!(
        "WITH t AS (
             SELECT * FROM released_daily_panel
             WHERE metric_date = ANY($4::date[])
               AND (cardinality($2::text[]) = 0 OR region = ANY($2::text[])))
         SELECT p.idx, {region_column},
                coalesce(hll_cardinality(hll_union_agg(t.cards)), 0)::float8,
                coalesce(sum(t.withheld_cells), 0)::bigint
         FROM unnest($1::date[], $3::date[]) WITH ORDINALITY AS p(first_day, last_day, idx)
         JOIN t ON t.metric_date BETWEEN p.first_day AND p.last_day
         GROUP BY p.idx{region_group}"
    );
    let firsts: Vec<NaiveDate> = ranges.iter().map(|r| r.from).collect();
    let lasts: Vec<NaiveDate> = ranges.iter().map(|r| r.to).collect();
    let days: Vec<NaiveDate> = ranges
        .iter()
        .flat_map(|r| r.from.iter_days().take_while(move |d| *d <= r.to))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let states = states.to_vec();
    let rows = client
        .query(
            &client.prepare_cached(&sql).await?,
            &[&firsts, &states, &lasts, &days],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            // WITH ORDINALITY counts from 1.
            let index = usize::try_from(row.get::<_, i64>(0) - 1).unwrap_or(usize::MAX);
            let cell = PanelTotals {
                cards: row.get(2),
                withheld_cells: row.get(3),
            };
            (index, row.get(1), cell)
        })
        .collect())
}
